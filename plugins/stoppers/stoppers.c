/*
** stoppers.c: when a stimulus optimisation ends
** (openretina.insilico.stimulus_optimization.optimization_stopper).
**
**   OptimizationStopper(max_iterations): after max_iterations iterations
**       (null: never).
**   EarlyStopper(max_iterations, patience, min_delta): also when the loss
**       failed to improve `patience` times.  openretina's counting, exactly:
**       a loss below the best so far becomes the best and resets the
**       counter; a loss above best + min_delta increments it and stops once
**       it reaches patience; anything in between changes nothing.  The best
**       starts at +inf, and the counter is never reset by the stop itself,
**       so later calls keep answering from the same state.
**
** openretina's loop runs `for _ in range(max_iterations)` and asks
** early_stop(loss) after each iteration; fovea's stopper is asked once per
** iteration and counts the calls, which ends the loop at the same place.
** So max_iterations must be at least 1 (openretina would run no iteration
** for 0).
*/
#include <math.h>
#include <stddef.h>

#include <fovea/plugin.h>

typedef struct stopper {
	int64_t max_iterations;
	int64_t patience;  /* EarlyStopper */
	double min_delta;  /* EarlyStopper */
	bool early;        /* EarlyStopper */
	int64_t calls;
	int64_t counter;
	double min_loss;
} stopper;

static const fv_option optimization_options[] = {
	FV_OPT("max_iterations", INT, stopper, max_iterations, NULL,
	       "number of iterations to run (null: until another criterion stops)", .min = 1,
	       .max = 1e18, .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	{0},
};

static const fv_option early_options[] = {
	FV_OPT("max_iterations", INT, stopper, max_iterations, "null",
	       "most iterations to run (null: no limit)", .min = 1, .max = 1e18,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("patience", INT, stopper, patience, "1",
	       "number of non-improving losses (above best + min_delta) that stop", .min = 0,
	       .max = 1e18),
	FV_OPT("min_delta", FLOAT, stopper, min_delta, "0.0",
	       "a loss within min_delta above the best neither improves nor counts"),
	{0},
};

static fv_status optimization_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	stopper *s = fv_module_priv(m);
	s->min_loss = INFINITY;
	return FV_OK;
}

static fv_status early_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	((stopper *)fv_module_priv(m))->early = true;
	return optimization_create(m, opts, args);
}

/* openretina's EarlyStopper.early_stop. */
static bool early_stop(stopper *s, double loss)
{
	if (loss < s->min_loss) {
		s->min_loss = loss;
		s->counter = 0;
	} else if (loss > s->min_loss + s->min_delta) {
		s->counter++;
		if (s->counter >= s->patience)
			return true;
	}
	return false;
}

static bool should_stop(fv_module *m, double loss)
{
	stopper *s = fv_module_priv(m);
	s->calls++;
	bool stop = s->early && early_stop(s, loss);
	if (s->max_iterations != FV_NONE_INT && s->calls >= s->max_iterations)
		stop = true;
	return stop;
}

static const char *const optimization_names[] = {
	"OptimizationStopper",
	"openretina.insilico.stimulus_optimization.optimization_stopper.OptimizationStopper",
	"openretina.insilico.OptimizationStopper",
	NULL,
};

static const char *const early_names[] = {
	"EarlyStopper",
	"openretina.insilico.stimulus_optimization.optimization_stopper.EarlyStopper",
	NULL,
};

static const fv_component optimization_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_STOPPER,
	.names = optimization_names,
	.doc = "stop a stimulus optimisation after max_iterations iterations",
	.options = optimization_options,
	.priv_size = sizeof(stopper),
	.create = optimization_create,
	.should_stop = should_stop,
};

static const fv_component early_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_STOPPER,
	.names = early_names,
	.doc = "stop when the loss has not improved by min_delta `patience` times, or after "
	       "max_iterations",
	.options = early_options,
	.priv_size = sizeof(stopper),
	.create = early_create,
	.should_stop = should_stop,
};

FV_PLUGIN_DEFINE("stoppers", &optimization_component, &early_component);
