/*
** trainer_options.c: the `trainer` node (Lightning's Trainer arguments) as
** an option table, parsed once into the run's settings.  The table is also
** `fovea describe Trainer` (builtins.c), and the reasons of its no-effect
** keys are what the not-used report says (trainer_unused.c).
**
** The batch limits keep YAML's int/float distinction, as Lightning's
** _determine_batch_limits does: 1 is one batch, 1.0 is all of them.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

typedef struct trainer_opts {
	int64_t max_epochs;
	int64_t min_epochs;
	int64_t max_steps;
	double gradient_clip_val;
	const char *gradient_clip_algorithm;
	int64_t accumulate_grad_batches;
	int64_t check_val_every_n_epoch;
	int64_t num_sanity_val_steps;
	const fv_config_node *limit_train_batches, *limit_val_batches, *limit_test_batches;
	const fv_config_node *val_check_interval;
	const fv_config_node *precision;
	const fv_config_node *ignored;
	bool sync_batchnorm;
} trainer_opts;

#define OFF(f) offsetof(trainer_opts, f)
#define NO_EFFECT(name, why)                                                             \
	{name, FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE | FV_OPT_NO_EFFECT, NULL, why}
/* fovea does what these ask, or they change nothing fovea computes */
#define ACCEPTED(name, why)                                                              \
	{name, FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted: " why}
#define LIMIT(name, doc)                                                                 \
	{#name, FV_OPT_NODE, OFF(name), "1.0", 0, 0, FV_OPT_NULLABLE, NULL, doc}
const fv_option fv__trainer_options[] = {
	{"max_epochs", FV_OPT_INT, OFF(max_epochs), "null", 1, 1e12, FV_OPT_NULLABLE, NULL,
	 "epochs to train (Lightning's default 1000 when null)"},
	{"gradient_clip_val", FV_OPT_FLOAT, OFF(gradient_clip_val), "null", 0, 1e30, FV_OPT_NULLABLE,
	 NULL, "clip the gradients' total L2 norm to this value"},
	{"min_epochs", FV_OPT_INT, OFF(min_epochs), "null", 0, 1e12, FV_OPT_NULLABLE, NULL,
	 "early stopping takes effect only after this many epochs"},
	{"max_steps", FV_OPT_INT, OFF(max_steps), "-1", -1, 1e15, 0, NULL,
	 "stop after this many optimizer steps (-1: no limit)"},
	{"gradient_clip_algorithm", FV_OPT_ENUM, OFF(gradient_clip_algorithm), "null", 0, 0,
	 FV_OPT_NULLABLE, "norm|value",
	 "norm: scale to the total L2 norm (default); value: clamp each element"},
	{"accumulate_grad_batches", FV_OPT_INT, OFF(accumulate_grad_batches), "1", 1, 1e9, 0, NULL,
	 "batches whose gradients add up (loss / k) before one clip and optimizer step"},
	LIMIT(limit_train_batches, "training batches per epoch: an int counts batches, a float in "
	      "[0, 1] is a fraction (int(n * f), an error when that is 0)"),
	LIMIT(limit_val_batches, "validation batches per pass: an int, or 1.0 (openretina's "
	      "validation loader has no length, so Lightning takes no other fraction)"),
	{"check_val_every_n_epoch", FV_OPT_INT, OFF(check_val_every_n_epoch), "1", 1, 1e9, 0, NULL,
	 "validate after every n-th epoch; the other epochs keep the last validation's metrics"},
	{"val_check_interval", FV_OPT_NODE, OFF(val_check_interval), "1.0", 0, 0, FV_OPT_NULLABLE,
	 NULL, "when to validate within an epoch: fovea validates at the epoch's end, so 1.0 or "
	       "an int or fraction that comes to the epoch's batch count"},
	{"num_sanity_val_steps", FV_OPT_INT, OFF(num_sanity_val_steps), "2", -1, 1e12, 0, NULL,
	 "validation batches run before training to catch errors early, not logged (-1: all)"},
	{"precision", FV_OPT_NODE, OFF(precision), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "32 or 32-true; a mixed or half precision runs in float32, said at the start (an "
	 "error with --strict)"},
	{"limit_test_batches", FV_OPT_NODE, OFF(limit_test_batches), "1.0", 0, 0,
	 FV_OPT_NULLABLE | FV_OPT_NO_EFFECT, NULL,
	 "checked, no effect: fovea train runs no test loop (fovea eval tests the best checkpoint)"},
	{"sync_batchnorm", FV_OPT_BOOL, OFF(sync_batchnorm), "true", 0, 0, 0, NULL,
	 "under mpirun (data-parallel training): batch norm takes the statistics of the whole "
	 "global batch, so N processes train as one (SyncBatchNorm); false: each process "
	 "normalises with its share's, as Lightning's DDP without sync_batchnorm"},
	ACCEPTED("deterministic", "fovea is always deterministic: a seed (and --threads) gives "
	         "the same numbers"),
	ACCEPTED("default_root_dir", "fovea writes to paths.output_dir"),
	ACCEPTED("log_every_n_steps", "the loggers write once per epoch"),
	ACCEPTED("enable_progress_bar", "fovea train --progress decides"),
	ACCEPTED("enable_model_summary", "no model summary"),
	ACCEPTED("enable_checkpointing", "fovea always writes best and last checkpoints"),
	ACCEPTED("benchmark", "no cuDNN"),
	ACCEPTED("detect_anomaly", "fovea always stops at the first NaN or inf"),
	ACCEPTED("logger", "the config's logger group decides"),
	ACCEPTED("callbacks", "the config's training_callbacks decide"),
	NO_EFFECT("accelerator", "fovea runs on the CPU"),
	NO_EFFECT("devices", "fovea runs on the CPU; threads with --threads"),
	NO_EFFECT("strategy", "one process, or data-parallel under mpirun (docs/parallel.md)"),
	NO_EFFECT("num_nodes", "the processes are mpirun's or srun's (docs/parallel.md)"),
	NO_EFFECT("profiler", "no profiler; see fovea-bench --profile"),
	{0},
};
#undef OFF
#undef NO_EFFECT
#undef ACCEPTED
#undef LIMIT

static const char *const hydra_ignored[] = {"_partial_", "_convert_", "_recursive_", NULL};

/* Lightning's precision: fovea computes in float32, so 32 and 32-true are
** exact; 16/bf16 variants run in float32 and say so (or fail when strict),
** anything else is an error. */
static fv_status check_precision(const fv__trainer *t, const fv_config_node *n)
{
	static const char *const exact[] = {"32", "32-true"};
	static const char *const lower[] = {"16", "16-mixed", "16-true", "bf16", "bf16-mixed",
	                                    "bf16-true", "transformer-engine",
	                                    "transformer-engine-float16"};
	const char *p = n == NULL || fv_node_is_null(n) ? "32" : fv_node_text(n);
	for (size_t i = 0; p != NULL && i < sizeof exact / sizeof exact[0]; i++)
		if (strcmp(p, exact[i]) == 0)
			return FV_OK;
	for (size_t i = 0; p != NULL && i < sizeof lower / sizeof lower[0]; i++) {
		if (strcmp(p, lower[i]) != 0)
			continue;
		if (t->strict)
			return fv_error_at(n, FV_ERR_CONFIG, "trainer.precision: '%s' asks for less than "
			                   "float32, and fovea computes in float32 (--strict)", p);
		fprintf(stderr, "fovea: trainer.precision '%s': this run computes in float32\n", p);
		return FV_OK;
	}
	return fv_error_at(n, FV_ERR_CONFIG, "trainer.precision: expected 32 or 32-true (or a "
	                   "16/bf16 mixed precision, run in float32), got %s",
	                   p != NULL ? p : "a non-scalar");
}

/* Whether a scalar is written as a float (Python's float vs int). */
static bool is_float_text(const char *s)
{
	return strpbrk(s, ".eE") != NULL || strstr(s, "inf") != NULL || strstr(s, "nan") != NULL;
}

fv_status fv__batch_limit_parse(const fv_config_node *n, const char *name, fv__batch_limit *out)
{
	out->fraction = true;
	out->value = 1.0;
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	double v;
	const char *text = fv_node_kind(n) == FV_NODE_SCALAR ? fv_node_text(n) : NULL;
	if (text == NULL || fv_node_to_double(n, &v) != FV_OK || isnan(v))
		return fv_error_at(n, FV_ERR_CONFIG, "trainer.%s: expected an int or a float in "
		                   "[0.0, 1.0]", name);
	bool frac = is_float_text(text);
	/* _determine_batch_limits: [0, 1] as given, a whole number > 1 as an int */
	if (v >= 0 && v <= 1) {
		out->fraction = frac;
		out->value = v;
		return FV_OK;
	}
	if (v > 1 && v <= 1e15 && fmod(v, 1.0) == 0) {
		out->fraction = false;
		out->value = v;
		return FV_OK;
	}
	return fv_error_at(n, FV_ERR_CONFIG, "trainer.%s: invalid value %s: it has to be in "
	                   "[0.0, 1.0] or an int (Lightning)", name, text);
}

int64_t fv__batch_limit_apply(const fv__batch_limit *l, int64_t length)
{
	if (!l->fraction)
		return (int64_t)l->value < length ? (int64_t)l->value : length;
	return (int64_t)((double)length * l->value);
}

static fv_status read_limits(fv__trainer *t, const trainer_opts *o)
{
	fv_status rc = fv__batch_limit_parse(o->limit_train_batches, "limit_train_batches",
	                                     &t->train_limit);
	if (rc == FV_OK)
		rc = fv__batch_limit_parse(o->limit_val_batches, "limit_val_batches", &t->val_limit);
	fv__batch_limit test;
	if (rc == FV_OK)
		rc = fv__batch_limit_parse(o->limit_test_batches, "limit_test_batches", &test);
	if (rc == FV_OK)
		rc = fv__batch_limit_parse(o->val_check_interval, "val_check_interval",
		                           &t->val_interval);
	/* openretina's ShortCycler has no __len__: Lightning's _parse_num_batches
	** then takes only 1.0 or an int */
	if (rc == FV_OK && t->val_limit.fraction && t->val_limit.value != 1.0)
		rc = fv_error_at(o->limit_val_batches, FV_ERR_CONFIG,
		                 "trainer.limit_val_batches: openretina's validation loader "
		                 "(ShortCycler) has no length, so Lightning takes only 1.0 or an int "
		                 "(a number of batches), got %s", fv_node_text(o->limit_val_batches));
	return rc;
}

fv_status fv__read_trainer(fv__trainer *t, const fv_config_node *root)
{
	trainer_opts o = {0};
	fv_status rc = fv_options_parse(fv__trainer_options, fv_node_get(root, "trainer"), &o,
	                                "trainer", hydra_ignored);
	if (rc != FV_OK)
		return rc;
	/* Lightning: max_epochs 1000 when neither it nor max_steps is given */
	t->max_epochs = o.max_epochs != FV_NONE_INT ? o.max_epochs
	                : o.max_steps == -1         ? 1000
	                                            : INT64_MAX;
	t->min_epochs = o.min_epochs == FV_NONE_INT ? 0 : o.min_epochs;
	t->max_steps = o.max_steps;
	t->accumulate = o.accumulate_grad_batches;
	t->clip = o.gradient_clip_val;
	t->clip_value = o.gradient_clip_algorithm != NULL &&
	                strcmp(o.gradient_clip_algorithm, "value") == 0;
	t->val_every = o.check_val_every_n_epoch;
	t->sanity_steps = o.num_sanity_val_steps < 0 ? INT64_MAX : o.num_sanity_val_steps;
	t->dp.sync_bn = o.sync_batchnorm;
	rc = check_precision(t, o.precision);
	if (rc == FV_OK)
		rc = read_limits(t, &o);
	fv_options_free(fv__trainer_options, &o);
	return rc;
}

/* Lightning's fit loop setup_data: the training batches per epoch
** (limit_train_batches) and val_check_batch, which fovea supports where it
** falls on the epoch's last batch. */
fv_status fv__trainer_batches(fv__trainer *t, int64_t length)
{
	t->train_batches = fv__batch_limit_apply(&t->train_limit, length);
	if (t->train_batches == 0 && t->train_limit.fraction && t->train_limit.value > 0)
		return fv_error(FV_ERR_CONFIG, "trainer.limit_train_batches: %g of %lld training "
		                "batches is less than one; try at least limit_train_batches=%g",
		                t->train_limit.value, (long long)length, 1.0 / (double)length);
	if (t->train_batches == 0)
		return fv_error(FV_ERR_CONFIG, "trainer.limit_train_batches is 0: Lightning would "
		                "skip training altogether; fovea refuses a run that trains nothing");
	const fv__batch_limit *v = &t->val_interval;
	int64_t check = v->fraction ? (int64_t)((double)t->train_batches * v->value)
	                            : (int64_t)v->value;
	if (v->fraction && check < 1)
		check = 1;
	if (!v->fraction && check > t->train_batches)
		return fv_error(FV_ERR_CONFIG, "trainer.val_check_interval (%lld) must be less than or "
		                "equal to the number of the training batches (%lld)", (long long)check,
		                (long long)t->train_batches);
	if (check != t->train_batches)
		return fv_error(FV_ERR_CONFIG, "trainer.val_check_interval: validation every %lld of "
		                "%lld training batches is not supported: fovea validates at the end of "
		                "the epoch (1.0)", (long long)check, (long long)t->train_batches);
	return FV_OK;
}
