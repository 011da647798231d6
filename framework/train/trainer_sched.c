/*
** trainer_sched.c: the learning-rate schedulers and early stopping of the
** training loop (see trainer.h), with torch's and Lightning's semantics.
**
** The schedulers use torch's "chainable" formulas (each step derives the
** new rate from the current one), not the closed forms, because that is
** what torch computes and the two differ in the last bits.
*/
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fovea/trainer.h"
#include "fovea/fovea.h"

/* Hydra's instantiation keys and Lightning's per-scheduler settings that
** fovea reads separately or that have no effect here. */
static const char *const ignored_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

typedef struct sched_opts {
	/* Lightning */
	const char *monitor;
	const char *interval;
	int64_t frequency;
	/* ReduceLROnPlateau */
	const char *mode;
	double factor;
	int64_t patience;
	double threshold;
	const char *threshold_mode;
	int64_t cooldown;
	double min_lr;
	double eps;
	/* StepLR, ExponentialLR, CosineAnnealingLR */
	int64_t step_size;
	double gamma;
	int64_t t_max;
	double eta_min;
	int64_t last_epoch;
	const fv_config_node *ignored;
} sched_opts;

#define OFF(f) offsetof(sched_opts, f)
#define LIGHTNING_OPTIONS                                                                      \
	{"monitor", FV_OPT_STRING, OFF(monitor), "null", 0, 0, FV_OPT_NULLABLE, NULL,            \
	 "the metric ReduceLROnPlateau watches (val_evaluation_loss: validation correlation)"},    \
	{"interval", FV_OPT_ENUM, OFF(interval), "epoch", 0, 0, 0, "epoch",                        \
	 "when the scheduler steps (fovea steps per epoch)"},                                      \
	{"frequency", FV_OPT_INT, OFF(frequency), "1", 1, 1e9, 0, NULL,                            \
	 "step at the end of every N-th epoch"},                                                    \
	{"verbose", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL,               \
	 "accepted, no effect"}

static const fv_option plateau_options[] = {
	LIGHTNING_OPTIONS,
	{"mode", FV_OPT_ENUM, OFF(mode), "min", 0, 0, 0, "min|max",
	 "min: the metric should decrease; max: increase"},
	{"factor", FV_OPT_FLOAT, OFF(factor), "0.1", 0, 0.999999999, 0, NULL,
	 "new lr = lr * factor (must be < 1)"},
	{"patience", FV_OPT_INT, OFF(patience), "10", 0, 1e12, 0, NULL,
	 "epochs without improvement before the rate drops"},
	{"threshold", FV_OPT_FLOAT, OFF(threshold), "0.0001", 0, 1e12, 0, NULL,
	 "how much better counts as an improvement"},
	{"threshold_mode", FV_OPT_ENUM, OFF(threshold_mode), "rel", 0, 0, 0, "rel|abs",
	 "rel: best * (1 +- threshold); abs: best +- threshold"},
	{"cooldown", FV_OPT_INT, OFF(cooldown), "0", 0, 1e12, 0, NULL,
	 "epochs to wait after a drop before counting again"},
	{"min_lr", FV_OPT_FLOAT, OFF(min_lr), "null", 0, 1e12, FV_OPT_NULLABLE, NULL,
	 "lower bound of the rate (default: lr * factor^3, as openretina)"},
	{"eps", FV_OPT_FLOAT, OFF(eps), "1e-8", 0, 1e12, 0, NULL,
	 "drops smaller than this are skipped"},
	{0},
};

static const fv_option step_options[] = {
	LIGHTNING_OPTIONS,
	{"step_size", FV_OPT_INT, OFF(step_size), NULL, 1, 1e12, FV_OPT_REQUIRED, NULL,
	 "epochs between decays"},
	{"gamma", FV_OPT_FLOAT, OFF(gamma), "0.1", 0, 1e12, 0, NULL, "decay factor"},
	{"last_epoch", FV_OPT_INT, OFF(last_epoch), "-1", 0, 0, 0, NULL, "only -1 (a new run)"},
	{0},
};

static const fv_option exponential_options[] = {
	LIGHTNING_OPTIONS,
	{"gamma", FV_OPT_FLOAT, OFF(gamma), NULL, 0, 1e12, FV_OPT_REQUIRED, NULL,
	 "decay factor per epoch"},
	{"last_epoch", FV_OPT_INT, OFF(last_epoch), "-1", 0, 0, 0, NULL, "only -1 (a new run)"},
	{0},
};

static const fv_option cosine_options[] = {
	LIGHTNING_OPTIONS,
	{"T_max", FV_OPT_INT, OFF(t_max), NULL, 1, 1e12, FV_OPT_REQUIRED, NULL,
	 "epochs of a half cosine period"},
	{"eta_min", FV_OPT_FLOAT, OFF(eta_min), "0.0", 0, 1e12, 0, NULL, "minimum learning rate"},
	{"last_epoch", FV_OPT_INT, OFF(last_epoch), "-1", 0, 0, 0, NULL, "only -1 (a new run)"},
	{0},
};
#undef OFF

static const struct {
	const char *name;
	fv_sched_kind kind;
	const fv_option *options;
} sched_names[] = {
	{"torch.optim.lr_scheduler.ReduceLROnPlateau", FV_SCHED_PLATEAU, plateau_options},
	{"ReduceLROnPlateau", FV_SCHED_PLATEAU, plateau_options},
	{"torch.optim.lr_scheduler.StepLR", FV_SCHED_STEP, step_options},
	{"StepLR", FV_SCHED_STEP, step_options},
	{"torch.optim.lr_scheduler.ExponentialLR", FV_SCHED_EXPONENTIAL, exponential_options},
	{"ExponentialLR", FV_SCHED_EXPONENTIAL, exponential_options},
	{"torch.optim.lr_scheduler.CosineAnnealingLR", FV_SCHED_COSINE, cosine_options},
	{"CosineAnnealingLR", FV_SCHED_COSINE, cosine_options},
};
#define N_SCHED (sizeof sched_names / sizeof sched_names[0])

/* openretina's _create_default_scheduler. */
static void default_plateau(fv_lr_scheduler *s, double lr)
{
	s->kind = FV_SCHED_PLATEAU;
	s->monitor = "val_correlation";
	s->mode_max = true;
	s->factor = 0.3;
	s->patience = 5;
	s->threshold = 0.0005;
	s->threshold_rel = false;
	s->min_lr = lr * pow(0.3, 3);
	s->eps = 1e-8;
}

static fv_status find_scheduler(const fv_config_node *spec, size_t *which)
{
	const fv_config_node *target = fv_node_get(spec, "_target_");
	const char *name = target != NULL ? fv_node_text(target) : NULL;
	if (name == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s: a scheduler needs a _target_ (one of "
		                   "ReduceLROnPlateau, StepLR, ExponentialLR, CosineAnnealingLR)",
		                   fv_node_keypath(spec));
	const char *names[N_SCHED];
	for (size_t i = 0; i < N_SCHED; i++) {
		names[i] = sched_names[i].name;
		if (strcmp(name, names[i]) == 0) {
			*which = i;
			return FV_OK;
		}
	}
	const char *near = fv_closest_name(name, names, N_SCHED);
	return fv_error_at(target, FV_ERR_CONFIG,
	                   "%s._target_: unknown scheduler '%s'%s%s%s (fovea has "
	                   "ReduceLROnPlateau, StepLR, ExponentialLR, CosineAnnealingLR)",
	                   fv_node_keypath(spec), name, near ? "; did you mean '" : "",
	                   near ? near : "", near ? "'?" : "");
}

fv_status fv_lr_scheduler_parse(const fv_config_node *spec, double lr, fv_lr_scheduler *out)
{
	memset(out, 0, sizeof *out);
	out->frequency = 1;
	out->base_lr = lr;
	if (spec == NULL || fv_node_is_null(spec)) {
		default_plateau(out, lr);
		out->best = -INFINITY;
		return FV_OK;
	}
	size_t which = 0;
	fv_status rc = find_scheduler(spec, &which);
	if (rc != FV_OK)
		return rc;
	sched_opts o = {0};
	rc = fv_options_parse(sched_names[which].options, spec, &o, sched_names[which].name,
	                      ignored_keys);
	if (rc != FV_OK)
		return rc;
	if (sched_names[which].kind != FV_SCHED_PLATEAU && o.last_epoch != -1) {
		fv_options_free(sched_names[which].options, &o);
		return fv_error_at(fv_node_get(spec, "last_epoch"), FV_ERR_CONFIG, "%s.last_epoch: only -1 "
		                   "(a new run); fovea resumes a schedule with resume=true",
		                   fv_node_keypath(spec));
	}
	out->kind = sched_names[which].kind;
	out->monitor = o.monitor != NULL ? o.monitor : "val_correlation";
	out->frequency = o.frequency;
	if (out->kind == FV_SCHED_PLATEAU) {
		out->mode_max = strcmp(o.mode, "max") == 0;
		out->factor = o.factor;
		out->patience = o.patience;
		out->threshold = o.threshold;
		out->threshold_rel = strcmp(o.threshold_mode, "rel") == 0;
		out->cooldown = o.cooldown;
		out->min_lr = isnan(o.min_lr) ? lr * pow(o.factor, 3) : o.min_lr;
		out->eps = o.eps;
		out->best = out->mode_max ? -INFINITY : INFINITY;
	} else {
		out->step_size = o.step_size;
		out->gamma = o.gamma;
		out->t_max = o.t_max;
		out->eta_min = o.eta_min;
	}
	fv_options_free(sched_names[which].options, &o);
	return FV_OK;
}

/* torch's ReduceLROnPlateau.is_better. */
static bool plateau_better(const fv_lr_scheduler *s, double a)
{
	double best = s->best;
	if (s->threshold_rel)
		return s->mode_max ? a > best * (s->threshold + 1.0) : a < best * (1.0 - s->threshold);
	return s->mode_max ? a > best + s->threshold : a < best - s->threshold;
}

static double plateau_step(fv_lr_scheduler *s, double lr, double metric)
{
	if (plateau_better(s, metric)) {
		s->best = metric;
		s->num_bad_epochs = 0;
	} else {
		s->num_bad_epochs++;
	}
	if (s->cooldown_counter > 0) {
		s->cooldown_counter--;
		s->num_bad_epochs = 0; /* bad epochs in cooldown do not count */
	}
	if (s->num_bad_epochs > s->patience) {
		double new_lr = fmax(lr * s->factor, s->min_lr);
		if (lr - new_lr > s->eps)
			lr = new_lr;
		s->cooldown_counter = s->cooldown;
		s->num_bad_epochs = 0;
	}
	return lr;
}

static double cosine_step(const fv_lr_scheduler *s, double lr)
{
	double e = (double)s->last_epoch, t = (double)s->t_max;
	if ((s->last_epoch - 1 - s->t_max) % (2 * s->t_max) == 0)
		return lr + (s->base_lr - s->eta_min) * (1 - cos(M_PI / t)) / 2;
	return (1 + cos(M_PI * e / t)) / (1 + cos(M_PI * (e - 1) / t)) * (lr - s->eta_min) +
	       s->eta_min;
}

double fv_lr_scheduler_step(fv_lr_scheduler *s, double lr, double metric)
{
	s->last_epoch++;
	switch (s->kind) {
	case FV_SCHED_PLATEAU:
		return plateau_step(s, lr, metric);
	case FV_SCHED_STEP:
		return s->last_epoch % s->step_size == 0 ? lr * s->gamma : lr;
	case FV_SCHED_EXPONENTIAL:
		return lr * s->gamma;
	case FV_SCHED_COSINE:
		return cosine_step(s, lr);
	case FV_SCHED_NONE:
		break;
	}
	return lr;
}

/* ---- early stopping ------------------------------------------------------------------ */

typedef struct stop_opts {
	const char *monitor;
	double min_delta;
	int64_t patience;
	const char *mode;
	bool check_finite;
	double stopping_threshold;
	double divergence_threshold;
	const fv_config_node *ignored;
} stop_opts;

#define OFF(f) offsetof(stop_opts, f)
static const fv_option stop_options[] = {
	{"monitor", FV_OPT_STRING, OFF(monitor), NULL, 0, 0, FV_OPT_REQUIRED, NULL,
	 "the metric to watch (val_evaluation_loss: validation correlation)"},
	{"min_delta", FV_OPT_FLOAT, OFF(min_delta), "0.0", 0, 0, 0, NULL,
	 "smallest change that counts as an improvement"},
	{"patience", FV_OPT_INT, OFF(patience), "3", 0, 1e12, 0, NULL,
	 "epochs without improvement before stopping"},
	{"mode", FV_OPT_ENUM, OFF(mode), "min", 0, 0, 0, "min|max", "min: lower is better"},
	{"check_finite", FV_OPT_BOOL, OFF(check_finite), "true", 0, 0, 0, NULL,
	 "stop when the metric becomes NaN or infinite"},
	{"stopping_threshold", FV_OPT_FLOAT, OFF(stopping_threshold), "null", 0, 0, FV_OPT_NULLABLE,
	 NULL, "stop at once when the metric is better than this"},
	{"divergence_threshold", FV_OPT_FLOAT, OFF(divergence_threshold), "null", 0, 0,
	 FV_OPT_NULLABLE, NULL, "stop at once when the metric is worse than this"},
	{"verbose", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "accepted, no effect"},
	{"strict", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "accepted (fovea always requires a known monitor)"},
	{"check_on_train_epoch_end", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE,
	 NULL, "accepted, no effect (fovea checks after validation)"},
	{"log_rank_zero_only", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "accepted, no effect"},
	{0},
};
#undef OFF

fv_status fv_early_stopping_parse(const fv_config_node *spec, fv_early_stopping *out)
{
	memset(out, 0, sizeof *out);
	out->best = INFINITY;
	out->stopping_threshold = out->divergence_threshold = NAN;
	if (spec == NULL || fv_node_is_null(spec))
		return FV_OK;
	stop_opts o = {0};
	fv_status rc = fv_options_parse(stop_options, spec, &o, "EarlyStopping", ignored_keys);
	if (rc != FV_OK)
		return rc;
	out->enabled = true;
	out->monitor = o.monitor;
	out->mode_max = strcmp(o.mode, "max") == 0;
	out->min_delta = fabs(o.min_delta);
	out->patience = o.patience;
	out->check_finite = o.check_finite;
	out->stopping_threshold = o.stopping_threshold;
	out->divergence_threshold = o.divergence_threshold;
	out->best = out->mode_max ? -INFINITY : INFINITY;
	fv_options_free(stop_options, &o);
	return FV_OK;
}

/* Lightning's monitor_op: torch.gt in max mode, torch.lt in min mode. */
static bool better(bool mode_max, float a, float b)
{
	return mode_max ? a > b : a < b;
}

bool fv_early_stopping_step(fv_early_stopping *e, double value)
{
	if (!e->enabled)
		return false;
	/* Lightning keeps the metric and best_score as float32 tensors */
	float current = (float)value, best = (float)e->best;
	if (e->check_finite && !isfinite(current))
		return true;
	if (!isnan(e->stopping_threshold) &&
	    better(e->mode_max, current, (float)e->stopping_threshold))
		return true;
	if (!isnan(e->divergence_threshold) &&
	    better(e->mode_max, (float)e->divergence_threshold, current))
		return true;
	float delta = e->mode_max ? (float)e->min_delta : -(float)e->min_delta;
	float shifted = current - delta;
	if (better(e->mode_max, shifted, best)) {
		e->best = current;
		e->wait_count = 0;
		return false;
	}
	e->wait_count++;
	return e->wait_count >= e->patience;
}
