/*
** trainer_sched.c: what the learning-rate schedulers accept (one option
** table per torch scheduler) and reading a scheduler spec into an
** fv_lr_scheduler; and early stopping.  The tables are also fv_builtin
** entries (builtins.c), so `fovea describe OneCycleLR` prints what this
** parser accepts.  Their arithmetic is in lr_schedule.c.
*/
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "fovea/trainer.h"
#include "fovea/fovea.h"
#include "train/trainer_internal.h"

/* Hydra's instantiation keys. */
static const char *const ignored_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

typedef struct sched_opts {
	/* Lightning, as openretina's instantiate_scheduler pops them */
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
	/* StepLR, MultiStepLR, ExponentialLR */
	int64_t step_size;
	fv_int_list milestones;
	double gamma;
	/* CosineAnnealingLR, CosineAnnealingWarmRestarts */
	int64_t t_max;
	int64_t t_0, t_mult;
	double eta_min;
	/* OneCycleLR */
	double max_lr;
	int64_t total_steps, epochs, steps_per_epoch;
	double pct_start;
	const char *anneal_strategy;
	bool cycle_momentum;
	double base_momentum, max_momentum, div_factor, final_div_factor;
	bool three_phase;
	int64_t last_epoch;
	const fv_config_node *ignored;
} sched_opts;

#define O(name, type, field, def, ...) FV_OPT(name, type, sched_opts, field, def, __VA_ARGS__)
#define LIGHTNING_OPTIONS(interval_doc)                                                        \
	O("monitor", STRING, monitor, "null",                                                    \
	  "the metric ReduceLROnPlateau watches (val_correlation = val_evaluation_loss)",        \
	  .flags = FV_OPT_NULLABLE),                                                               \
	O("interval", ENUM, interval, "epoch", interval_doc, .choices = "epoch|step"),            \
	O("frequency", INT, frequency, "1", "step at every N-th epoch (or optimizer step)",        \
	  .min = 1, .max = 1e9),                                                                   \
	O("last_epoch", INT, last_epoch, "-1", "only -1 (a new run; fovea resumes with resume=true)"), \
	O("verbose", NODE, ignored, "null", "accepted, no effect (torch's deprecated flag)",        \
	  .flags = FV_OPT_NULLABLE | FV_OPT_NO_EFFECT)
#define PER_EPOCH "epoch: after every epoch; step: after every optimizer step"

static const fv_option plateau_options[] = {
	LIGHTNING_OPTIONS("epoch (fovea validates once per epoch, so only epoch)"),
	O("mode", ENUM, mode, "min", "min: the metric should decrease; max: increase",
	  .choices = "min|max"),
	O("factor", FLOAT, factor, "null", "new lr = lr * factor (< 1; torch's default 0.1)",
	  .min = 0, .max = 0.999999999, .flags = FV_OPT_NULLABLE),
	O("patience", INT, patience, "10", "epochs without improvement before the rate drops",
	  .min = 0, .max = 1e12),
	O("threshold", FLOAT, threshold, "0.0001", "how much better counts as an improvement",
	  .min = 0, .max = 1e12),
	O("threshold_mode", ENUM, threshold_mode, "rel",
	  "rel: best * (1 +- threshold); abs: best +- threshold", .choices = "rel|abs"),
	O("cooldown", INT, cooldown, "0", "epochs to wait after a drop before counting again",
	  .min = 0, .max = 1e12),
	O("min_lr", FLOAT, min_lr, "null",
	  "lower bound of the rate (default: lr * factor^3, factor 0.3 if not given, as openretina)",
	  .min = 0, .max = 1e12, .flags = FV_OPT_NULLABLE),
	O("eps", FLOAT, eps, "1e-8", "drops smaller than this are skipped", .min = 0, .max = 1e12),
	{0},
};

static const fv_option step_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH),
	O("step_size", INT, step_size, NULL, "steps between decays", .min = 1, .max = 1e12,
	  .flags = FV_OPT_REQUIRED),
	O("gamma", FLOAT, gamma, "0.1", "decay factor", .min = 0, .max = 1e12),
	{0},
};

static const fv_option multistep_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH),
	O("milestones", INT_LIST, milestones, NULL,
	  "steps at which the rate is multiplied by gamma (once per listing)", .min = 0,
	  .max = 1e12, .flags = FV_OPT_REQUIRED),
	O("gamma", FLOAT, gamma, "0.1", "decay factor", .min = 0, .max = 1e12),
	{0},
};

static const fv_option exponential_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH),
	O("gamma", FLOAT, gamma, NULL, "decay factor per step", .min = 0, .max = 1e12,
	  .flags = FV_OPT_REQUIRED),
	{0},
};

static const fv_option cosine_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH),
	O("T_max", INT, t_max, NULL, "steps of a half cosine period", .min = 1, .max = 1e12,
	  .flags = FV_OPT_REQUIRED),
	O("eta_min", FLOAT, eta_min, "0.0", "minimum learning rate", .min = 0, .max = 1e12),
	{0},
};

static const fv_option warm_restarts_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH),
	O("T_0", INT, t_0, NULL, "steps of the first period", .min = 1, .max = 1e12,
	  .flags = FV_OPT_REQUIRED),
	O("T_mult", INT, t_mult, "1", "each period is T_mult times the one before", .min = 1,
	  .max = 1e12),
	O("eta_min", FLOAT, eta_min, "0.0", "minimum learning rate", .min = 0, .max = 1e12),
	{0},
};

static const fv_option one_cycle_options[] = {
	LIGHTNING_OPTIONS(PER_EPOCH " (openretina's config: step)"),
	O("max_lr", FLOAT, max_lr, NULL, "the peak learning rate", .min = 0, .max = 1e12,
	  .flags = FV_OPT_REQUIRED),
	O("total_steps", INT, total_steps, "null",
	  "steps of the cycle (default: epochs * steps_per_epoch, else the trainer's estimate "
	  "of its optimizer steps, as openretina)", .min = 1, .max = 1e15, .flags = FV_OPT_NULLABLE),
	O("epochs", INT, epochs, "null", "with steps_per_epoch: total_steps = their product",
	  .min = 1, .max = 1e12, .flags = FV_OPT_NULLABLE),
	O("steps_per_epoch", INT, steps_per_epoch, "null", "see epochs", .min = 1, .max = 1e12,
	  .flags = FV_OPT_NULLABLE),
	O("pct_start", FLOAT, pct_start, "0.3", "fraction of the cycle spent raising the rate",
	  .min = 0, .max = 1),
	O("anneal_strategy", ENUM, anneal_strategy, "cos", "cos or linear annealing",
	  .choices = "cos|linear"),
	O("cycle_momentum", BOOL, cycle_momentum, "true",
	  "cycle the momentum (Adam's beta1, SGD's momentum) inversely to the rate"),
	O("base_momentum", FLOAT, base_momentum, "0.85", "lowest momentum", .min = 0, .max = 1),
	O("max_momentum", FLOAT, max_momentum, "0.95", "highest momentum", .min = 0, .max = 1),
	O("div_factor", FLOAT, div_factor, "25.0", "initial_lr = max_lr / div_factor", .min = 1e-12,
	  .max = 1e12),
	O("final_div_factor", FLOAT, final_div_factor, "10000.0",
	  "final lr = initial_lr / final_div_factor", .min = 1e-12, .max = 1e15),
	O("three_phase", BOOL, three_phase, "false",
	  "a third phase: back to initial_lr, then down to the final rate"),
	{0},
};
#undef O
#undef LIGHTNING_OPTIONS
#undef PER_EPOCH

/* ---- the schedulers, as `fovea describe` documents them ------------------------------- */

#define NAMES(cls) ((const char *const[]){cls, "torch.optim.lr_scheduler." cls, NULL})
const fv_builtin fv__lr_schedulers[FV__N_LR_SCHEDULERS] = {
	{NAMES("ReduceLROnPlateau"), "scheduler",
	 "torch's ReduceLROnPlateau: lower the rate when the monitored metric stalls (after "
	 "validation)", plateau_options},
	{NAMES("StepLR"), "scheduler", "torch's StepLR: lr * gamma every step_size steps",
	 step_options},
	{NAMES("MultiStepLR"), "scheduler", "torch's MultiStepLR: lr * gamma at each milestone",
	 multistep_options},
	{NAMES("ExponentialLR"), "scheduler", "torch's ExponentialLR: lr * gamma every step",
	 exponential_options},
	{NAMES("CosineAnnealingLR"), "scheduler",
	 "torch's CosineAnnealingLR (its recursive form: past T_max the cosine rises again)",
	 cosine_options},
	{NAMES("CosineAnnealingWarmRestarts"), "scheduler",
	 "torch's CosineAnnealingWarmRestarts (SGDR): cosine periods of T_0, T_0*T_mult, ...",
	 warm_restarts_options},
	{NAMES("OneCycleLR"), "scheduler", "torch's OneCycleLR: the 1cycle policy for rate and momentum",
	 one_cycle_options},
};
#undef NAMES

/* in the order of fv__lr_schedulers */
static const fv_sched_kind sched_kinds[FV__N_LR_SCHEDULERS] = {
	FV_SCHED_PLATEAU, FV_SCHED_STEP,        FV_SCHED_MULTISTEP, FV_SCHED_EXPONENTIAL,
	FV_SCHED_COSINE,  FV_SCHED_COSINE_WARM, FV_SCHED_ONE_CYCLE,
};
#define N_SCHED FV__N_LR_SCHEDULERS

/* ---- reading a spec ------------------------------------------------------------------- */

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
	s->best = -INFINITY;
}

static const char *sched_list(void)
{
	return "ReduceLROnPlateau, StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, "
	       "CosineAnnealingWarmRestarts, OneCycleLR";
}

static fv_status find_scheduler(const fv_config_node *spec, size_t *which)
{
	const fv_config_node *target = fv_node_get(spec, "_target_");
	const char *name = target != NULL ? fv_node_text(target) : NULL;
	if (name == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s: a scheduler needs a _target_ (one of %s)",
		                   fv_node_keypath(spec), sched_list());
	const char *names[2 * N_SCHED];
	for (size_t i = 0; i < N_SCHED; i++) {
		names[2 * i] = fv__lr_schedulers[i].names[0];
		names[2 * i + 1] = fv__lr_schedulers[i].names[1];
		if (strcmp(name, names[2 * i]) == 0 || strcmp(name, names[2 * i + 1]) == 0) {
			*which = i;
			return FV_OK;
		}
	}
	const char *near = fv_closest_name(name, names, 2 * N_SCHED);
	return fv_error_at(target, FV_ERR_CONFIG,
	                   "%s._target_: unknown scheduler '%s'%s%s%s (fovea has %s)",
	                   fv_node_keypath(spec), name, near ? "; did you mean '" : "",
	                   near ? near : "", near ? "'?" : "", sched_list());
}

static fv_status sched_error(const fv_config_node *spec, const char *key, const char *what)
{
	const fv_config_node *at = fv_node_get(spec, key);
	return fv_error_at(at != NULL ? at : spec, FV_ERR_CONFIG, "%s.%s: %s", fv_node_keypath(spec),
	                   key, what);
}

static void take_plateau(fv_lr_scheduler *s, const sched_opts *o, double lr)
{
	s->mode_max = strcmp(o->mode, "max") == 0;
	s->factor = isnan(o->factor) ? 0.1 : o->factor;
	s->patience = o->patience;
	s->threshold = o->threshold;
	s->threshold_rel = strcmp(o->threshold_mode, "rel") == 0;
	s->cooldown = o->cooldown;
	/* openretina's _handle_reduce_lr_on_plateau: factor 0.3 when not given */
	s->min_lr = !isnan(o->min_lr) ? o->min_lr : lr * pow(isnan(o->factor) ? 0.3 : o->factor, 3);
	s->eps = o->eps;
	s->best = s->mode_max ? -INFINITY : INFINITY;
}

/* torch's MultiStepLR keeps Counter(milestones): each distinct milestone
** with the number of times it was listed. */
static fv_status take_milestones(fv_lr_scheduler *s, const sched_opts *o,
                                 const fv_config_node *spec)
{
	for (size_t i = 0; i < o->milestones.n; i++) {
		int64_t m = o->milestones.v[i];
		size_t j = 0;
		while (j < s->n_milestones && s->milestones[j] < m)
			j++;
		if (j < s->n_milestones && s->milestones[j] == m) {
			s->milestone_count[j]++;
			continue;
		}
		if (s->n_milestones == FV_SCHED_MAX_MILESTONES)
			return sched_error(spec, "milestones", "more than 64 distinct milestones");
		memmove(s->milestones + j + 1, s->milestones + j,
		        (s->n_milestones - j) * sizeof *s->milestones);
		memmove(s->milestone_count + j + 1, s->milestone_count + j,
		        (s->n_milestones - j) * sizeof *s->milestone_count);
		s->milestones[j] = m;
		s->milestone_count[j] = 1;
		s->n_milestones++;
	}
	return FV_OK;
}

static fv_status take_one_cycle(fv_lr_scheduler *s, const sched_opts *o,
                                const fv_config_node *spec)
{
	s->max_lr = o->max_lr;
	if (o->total_steps != FV_NONE_INT)
		s->total_steps = o->total_steps;
	else if (o->epochs != FV_NONE_INT && o->steps_per_epoch != FV_NONE_INT)
		s->total_steps = o->epochs * o->steps_per_epoch;
	else if (o->epochs != FV_NONE_INT || o->steps_per_epoch != FV_NONE_INT)
		return sched_error(spec, o->epochs != FV_NONE_INT ? "epochs" : "steps_per_epoch",
		                   "give both epochs and steps_per_epoch (or total_steps)");
	s->pct_start = o->pct_start;
	s->anneal_linear = strcmp(o->anneal_strategy, "linear") == 0;
	s->cycle_momentum = o->cycle_momentum;
	s->base_momentum = o->base_momentum;
	s->max_momentum = o->max_momentum;
	s->div_factor = o->div_factor;
	s->final_div_factor = o->final_div_factor;
	s->three_phase = o->three_phase;
	return FV_OK;
}

static fv_status take_options(fv_lr_scheduler *s, const sched_opts *o, double lr,
                              const fv_config_node *spec)
{
	s->monitor = o->monitor != NULL ? o->monitor : "val_correlation";
	s->frequency = o->frequency;
	s->per_step = strcmp(o->interval, "step") == 0;
	s->gamma = o->gamma;
	s->step_size = o->step_size;
	s->t_max = o->t_max;
	s->t_0 = o->t_0;
	s->t_mult = o->t_mult;
	s->eta_min = o->eta_min;
	if (o->last_epoch != -1)
		return sched_error(spec, "last_epoch", "only -1 (a new run); fovea resumes a schedule "
		                   "with resume=true");
	switch (s->kind) {
	case FV_SCHED_PLATEAU:
		if (s->per_step)
			return sched_error(spec, "interval", "ReduceLROnPlateau steps after validation, "
			                   "once per epoch in fovea: use interval: epoch");
		take_plateau(s, o, lr);
		return FV_OK;
	case FV_SCHED_MULTISTEP: return take_milestones(s, o, spec);
	case FV_SCHED_ONE_CYCLE: return take_one_cycle(s, o, spec);
	default: return FV_OK;
	}
}

fv_status fv_lr_scheduler_parse(const fv_config_node *spec, double lr, fv_lr_scheduler *out)
{
	memset(out, 0, sizeof *out);
	out->frequency = 1;
	out->base_lr = lr;
	out->momentum = NAN;
	if (spec == NULL || fv_node_is_null(spec)) {
		default_plateau(out, lr);
		return FV_OK;
	}
	size_t which = 0;
	fv_status rc = find_scheduler(spec, &which);
	if (rc != FV_OK)
		return rc;
	const fv_builtin *b = &fv__lr_schedulers[which];
	sched_opts o = {0};
	rc = fv_options_parse(b->options, spec, &o, b->names[0], ignored_keys);
	if (rc != FV_OK)
		return rc;
	out->kind = sched_kinds[which];
	rc = take_options(out, &o, lr, spec);
	fv_options_free(b->options, &o); /* the strings stay: they point into the config */
	return rc;
}

/* ---- early stopping ------------------------------------------------------------------ */

typedef struct stop_opts {
	const char *monitor;
	double min_delta;
	int64_t patience;
	const char *mode;
	bool check_finite, verbose, strict;
	double stopping_threshold;
	double divergence_threshold;
	const fv_config_node *on_train_epoch_end;
	const fv_config_node *ignored;
} stop_opts;

#define OFF(f) offsetof(stop_opts, f)
const fv_option fv__early_stopping_options[] = {
	{"monitor", FV_OPT_STRING, OFF(monitor), NULL, 0, 0, FV_OPT_REQUIRED, NULL,
	 "the metric to watch (val_evaluation_loss: validation correlation)"},
	{"min_delta", FV_OPT_FLOAT, OFF(min_delta), "0.0", 0, 0, 0, NULL,
	 "smallest change that counts as an improvement (its absolute value)"},
	{"patience", FV_OPT_INT, OFF(patience), "3", 0, 1e12, 0, NULL,
	 "checks without improvement before stopping"},
	{"mode", FV_OPT_ENUM, OFF(mode), "min", 0, 0, 0, "min|max", "min: lower is better"},
	{"check_finite", FV_OPT_BOOL, OFF(check_finite), "true", 0, 0, 0, NULL,
	 "stop when the metric becomes NaN or infinite"},
	{"stopping_threshold", FV_OPT_FLOAT, OFF(stopping_threshold), "null", 0, 0, FV_OPT_NULLABLE,
	 NULL, "stop at once when the metric is better than this"},
	{"divergence_threshold", FV_OPT_FLOAT, OFF(divergence_threshold), "null", 0, 0,
	 FV_OPT_NULLABLE, NULL, "stop at once when the metric is worse than this"},
	{"verbose", FV_OPT_BOOL, OFF(verbose), "false", 0, 0, 0, NULL,
	 "say at each check whether the metric improved and why training stops"},
	{"strict", FV_OPT_BOOL, OFF(strict), "true", 0, 0, 0, NULL,
	 "an unknown monitor is an error; false: a warning, and no early stopping"},
	{"check_on_train_epoch_end", FV_OPT_NODE, OFF(on_train_epoch_end), "null", 0, 0,
	 FV_OPT_NULLABLE, NULL,
	 "true: check after every training epoch (with the last validation's value); false: "
	 "after each validation; null: true when the trainer validates every epoch"},
	{"log_rank_zero_only", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "accepted: fovea runs one process"},
	{0},
};
#undef OFF

fv_status fv_early_stopping_parse(const fv_config_node *spec, fv_early_stopping *out)
{
	memset(out, 0, sizeof *out);
	out->best = INFINITY;
	out->stopping_threshold = out->divergence_threshold = NAN;
	out->on_train_epoch_end = -1;
	if (spec == NULL || fv_node_is_null(spec))
		return FV_OK;
	stop_opts o = {0};
	fv_status rc = fv_options_parse(fv__early_stopping_options, spec, &o, "EarlyStopping",
	                                ignored_keys);
	bool on_train = false;
	if (rc == FV_OK && o.on_train_epoch_end != NULL && !fv_node_is_null(o.on_train_epoch_end))
		rc = fv_node_to_bool(o.on_train_epoch_end, &on_train);
	if (rc != FV_OK) {
		fv_options_free(fv__early_stopping_options, &o);
		return rc;
	}
	out->enabled = true;
	out->monitor = o.monitor;
	out->mode_max = strcmp(o.mode, "max") == 0;
	out->min_delta = fabs(o.min_delta);
	out->patience = o.patience;
	out->check_finite = o.check_finite;
	out->stopping_threshold = o.stopping_threshold;
	out->divergence_threshold = o.divergence_threshold;
	out->verbose = o.verbose;
	out->strict = o.strict;
	out->on_train_epoch_end = o.on_train_epoch_end == NULL || fv_node_is_null(o.on_train_epoch_end)
	                          ? -1 : on_train;
	out->best = out->mode_max ? -INFINITY : INFINITY;
	fv_options_free(fv__early_stopping_options, &o);
	return FV_OK;
}

/* Lightning's monitor_op: torch.gt in max mode, torch.lt in min mode. */
static bool better(bool mode_max, float a, float b)
{
	return mode_max ? a > b : a < b;
}

static bool check(fv_early_stopping *e, double value, char *msg, size_t size);

/* snprintf into msg, when there is one. */
static void say(char *msg, size_t size, const char *fmt, ...)
{
	if (msg == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
}

bool fv_early_stopping_step(fv_early_stopping *e, double value)
{
	e->message[0] = '\0';
	if (!e->enabled)
		return false;
	if (!e->verbose) /* the messages name the monitor, which only verbose needs */
		return check(e, value, NULL, 0);
	return check(e, value, e->message, sizeof e->message);
}

/* The step, with Lightning's verbose line into msg (NULL: none). */
static bool check(fv_early_stopping *e, double value, char *msg, size_t size)
{
	/* Lightning keeps the metric and best_score as float32 tensors */
	float current = (float)value, best = (float)e->best;
	const char *m = e->monitor, *op = e->mode_max ? ">" : "<";
	if (e->check_finite && !isfinite(current)) {
		say(msg, size, "Monitored metric %s = %g is not finite. Previous best value "
		    "was %.3f. Signaling Trainer to stop.", m, current, best);
		return true;
	}
	if (!isnan(e->stopping_threshold) &&
	    better(e->mode_max, current, (float)e->stopping_threshold)) {
		say(msg, size, "Stopping threshold reached: %s = %g %s %g. Signaling "
		    "Trainer to stop.", m, current, op, e->stopping_threshold);
		return true;
	}
	if (!isnan(e->divergence_threshold) &&
	    better(e->mode_max, (float)e->divergence_threshold, current)) {
		say(msg, size, "Divergence threshold reached: %s = %g %s %g. Signaling "
		    "Trainer to stop.", m, current, e->mode_max ? "<" : ">",
		         e->divergence_threshold);
		return true;
	}
	float delta = e->mode_max ? (float)e->min_delta : -(float)e->min_delta;
	float shifted = current - delta;
	if (better(e->mode_max, shifted, best)) {
		if (isfinite(best))
			say(msg, size, "Metric %s improved by %.3f >= min_delta = %g. New best "
			         "score: %.3f", m, fabsf(best - current), e->min_delta, current);
		else
			say(msg, size, "Metric %s improved. New best score: %.3f", m, current);
		e->best = current;
		e->wait_count = 0;
		return false;
	}
	e->wait_count++;
	if (e->wait_count < e->patience)
		return false;
	say(msg, size, "Monitored metric %s did not improve in the last %lld records. "
	         "Best score: %.3f. Signaling Trainer to stop.", m, (long long)e->wait_count, best);
	return true;
}
