/*
** lr_schedule.c: the arithmetic of torch's learning-rate schedulers
** (torch/optim/lr_scheduler.py), as their step() computes it.
**
** torch derives each new rate from the current one ("chainable" forms) for
** StepLR, MultiStepLR, ExponentialLR and CosineAnnealingLR, and the closed
** forms differ in the last bits (and, for CosineAnnealingLR past T_max, in
** more), so these use the current rate too.  CosineAnnealingWarmRestarts and
** OneCycleLR are functions of the step count alone.  The constructor's own
** step (torch's last_epoch -1 -> 0) is fv_lr_scheduler_start().
*/
#include <math.h>

#include "fovea/trainer.h"
#include "fovea/fovea.h"

/* ---- ReduceLROnPlateau ------------------------------------------------------------- */

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

/* ---- the recursive forms ---------------------------------------------------------- */

static double multistep_step(const fv_lr_scheduler *s, double lr)
{
	for (size_t i = 0; i < s->n_milestones; i++)
		if (s->milestones[i] == s->last_epoch)
			return lr * pow(s->gamma, (double)s->milestone_count[i]);
	return lr;
}

static double cosine_step(const fv_lr_scheduler *s, double lr)
{
	double e = (double)s->last_epoch, t = (double)s->t_max;
	/* the step after a trough: torch adds the rise instead of the ratio,
	** whose denominator would be 0 there */
	if ((s->last_epoch - 1 - s->t_max) % (2 * s->t_max) == 0)
		return lr + (s->base_lr - s->eta_min) * (1 - cos(M_PI / t)) / 2;
	return (1 + cos(M_PI * e / t)) / (1 + cos(M_PI * (e - 1) / t)) * (lr - s->eta_min) +
	       s->eta_min;
}

/* ---- CosineAnnealingWarmRestarts ----------------------------------------------------- */

static double warm_restarts_lr(const fv_lr_scheduler *s)
{
	return s->eta_min + (s->base_lr - s->eta_min) *
	                            (1 + cos(M_PI * (double)s->t_cur / (double)s->t_i)) / 2;
}

static double warm_restarts_step(fv_lr_scheduler *s)
{
	s->t_cur++;
	if (s->t_cur >= s->t_i) {
		s->t_cur -= s->t_i;
		s->t_i *= s->t_mult;
	}
	return warm_restarts_lr(s);
}

/* ---- OneCycleLR ----------------------------------------------------------------------- */

typedef struct cycle_phase {
	double end_step;
	double start_lr, end_lr;
	double start_momentum, end_momentum;
} cycle_phase;

static double anneal(const fv_lr_scheduler *s, double start, double end, double pct)
{
	if (s->anneal_linear)
		return (end - start) * pct + start;
	return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1);
}

/* torch's _schedule_phases; returns their number. */
static int cycle_phases(const fv_lr_scheduler *s, cycle_phase *p)
{
	double total = (double)s->total_steps, lo = s->base_momentum, hi = s->max_momentum;
	double up = s->pct_start * total - 1;
	if (!s->three_phase) {
		p[0] = (cycle_phase){up, s->initial_lr, s->max_lr, hi, lo};
		p[1] = (cycle_phase){total - 1, s->max_lr, s->min_lr, lo, hi};
		return 2;
	}
	p[0] = (cycle_phase){up, s->initial_lr, s->max_lr, hi, lo};
	p[1] = (cycle_phase){2 * s->pct_start * total - 2, s->max_lr, s->initial_lr, lo, hi};
	p[2] = (cycle_phase){total - 1, s->initial_lr, s->min_lr, hi, hi};
	return 3;
}

/* OneCycleLR.get_lr: the phase holding the step (the last one past its
** end), and the position within it. */
static double one_cycle_lr(fv_lr_scheduler *s)
{
	if (s->last_epoch > s->total_steps) {
		fv_error(FV_ERR_ARG, "OneCycleLR: tried to step %lld times; total_steps is %lld "
		         "(raise total_steps, or leave it unset for the trainer's count)",
		         (long long)s->last_epoch, (long long)s->total_steps);
		return NAN;
	}
	cycle_phase p[3];
	int n = cycle_phases(s, p);
	double step = (double)s->last_epoch, start = 0;
	for (int i = 0; i < n; i++) {
		if (step <= p[i].end_step || i == n - 1) {
			if (p[i].end_step == start) {
				fv_error(FV_ERR_ARG, "OneCycleLR: phase %d has no steps (pct_start %g of "
				         "total_steps %lld); torch divides by zero here", i + 1, s->pct_start,
				         (long long)s->total_steps);
				return NAN;
			}
			double pct = (step - start) / (p[i].end_step - start);
			if (s->cycle_momentum)
				s->momentum = anneal(s, p[i].start_momentum, p[i].end_momentum, pct);
			return anneal(s, p[i].start_lr, p[i].end_lr, pct);
		}
		start = p[i].end_step;
	}
	return NAN; /* not reached: the last phase always matches */
}

static double one_cycle_start(fv_lr_scheduler *s)
{
	if (s->total_steps <= 0) {
		fv_error(FV_ERR_CONFIG, "OneCycleLR: total_steps is not set (give total_steps, or "
		         "epochs and steps_per_epoch)");
		return NAN;
	}
	s->initial_lr = s->max_lr / s->div_factor;
	s->min_lr = s->initial_lr / s->final_div_factor;
	s->base_lr = s->initial_lr;
	return one_cycle_lr(s);
}

/* ---- stepping ------------------------------------------------------------------------- */

double fv_lr_scheduler_start(fv_lr_scheduler *s, double lr)
{
	s->base_lr = lr;
	s->last_epoch = 0;
	s->momentum = NAN;
	switch (s->kind) {
	case FV_SCHED_COSINE_WARM:
		s->t_i = s->t_0;
		s->t_cur = 0;
		return warm_restarts_lr(s);
	case FV_SCHED_ONE_CYCLE:
		return one_cycle_start(s);
	default:
		return lr;
	}
}

double fv_lr_scheduler_step(fv_lr_scheduler *s, double lr, double metric)
{
	s->last_epoch++;
	switch (s->kind) {
	case FV_SCHED_PLATEAU:
		return plateau_step(s, lr, metric);
	case FV_SCHED_STEP:
		return s->last_epoch % s->step_size == 0 ? lr * s->gamma : lr;
	case FV_SCHED_MULTISTEP:
		return multistep_step(s, lr);
	case FV_SCHED_EXPONENTIAL:
		return lr * s->gamma;
	case FV_SCHED_COSINE:
		return cosine_step(s, lr);
	case FV_SCHED_COSINE_WARM:
		return warm_restarts_step(s);
	case FV_SCHED_ONE_CYCLE:
		return one_cycle_lr(s);
	case FV_SCHED_NONE:
		break;
	}
	return lr;
}

/* Lightning's Trainer.estimated_stepping_batches (with a finite
** max_epochs): ceil(batches / accumulate) optimizer steps per epoch. */
int64_t fv_estimated_stepping_batches(int64_t batches, int64_t accumulate, int64_t max_epochs,
                                      int64_t max_steps)
{
	int64_t per_epoch = (batches + accumulate - 1) / accumulate;
	int64_t epochs = max_epochs > 1 ? max_epochs : 1;
	int64_t total = per_epoch > 0 && epochs > INT64_MAX / per_epoch ? INT64_MAX
	                                                                : per_epoch * epochs;
	return max_steps >= 0 && max_steps < total ? max_steps : total;
}
