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
#include <stdlib.h>

#include <fovea/plugin.h>

typedef struct stopper_opts {
	int64_t max_iterations;
	int64_t patience;  /* EarlyStopper */
	double min_delta;  /* EarlyStopper */
} stopper_opts;

typedef struct stopper {
	stopper_opts o;
	bool early;        /* EarlyStopper */
	int64_t calls;
	int64_t counter;
	double min_loss;
} stopper;

#define OPT(field) offsetof(stopper_opts, field)

static const fv_option optimization_options[] = {
	{"max_iterations", FV_OPT_INT, OPT(max_iterations), NULL, 1, 1e18,
	 FV_OPT_REQUIRED | FV_OPT_NULLABLE, NULL,
	 "number of iterations to run (null: until another criterion stops)"},
	{NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const fv_option early_options[] = {
	{"max_iterations", FV_OPT_INT, OPT(max_iterations), "null", 1, 1e18, FV_OPT_NULLABLE, NULL,
	 "most iterations to run (null: no limit)"},
	{"patience", FV_OPT_INT, OPT(patience), "1", 0, 1e18, 0, NULL,
	 "number of non-improving losses (above best + min_delta) that stop"},
	{"min_delta", FV_OPT_FLOAT, OPT(min_delta), "0.0", 0, 0, 0, NULL,
	 "a loss within min_delta above the best neither improves nor counts"},
	{NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static fv_status create(fv_module *m, const void *opts, bool early)
{
	stopper *s = calloc(1, sizeof *s);
	if (s == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", fv_module_component(m)->names[0]);
	s->o = *(const stopper_opts *)opts;
	s->early = early;
	s->min_loss = INFINITY;
	fv_module_set_priv(m, s);
	return FV_OK;
}

static fv_status optimization_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)args;
	return create(m, opts, false);
}

static fv_status early_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)args;
	return create(m, opts, true);
}

static void stopper_destroy(fv_module *m)
{
	free(fv_module_priv(m));
}

/* openretina's EarlyStopper.early_stop. */
static bool early_stop(stopper *s, double loss)
{
	if (loss < s->min_loss) {
		s->min_loss = loss;
		s->counter = 0;
	} else if (loss > s->min_loss + s->o.min_delta) {
		s->counter++;
		if (s->counter >= s->o.patience)
			return true;
	}
	return false;
}

static bool should_stop(fv_module *m, double loss)
{
	stopper *s = fv_module_priv(m);
	s->calls++;
	bool stop = s->early && early_stop(s, loss);
	if (s->o.max_iterations != FV_NONE_INT && s->calls >= s->o.max_iterations)
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
	.options_size = sizeof(stopper_opts),
	.create = optimization_create,
	.destroy = stopper_destroy,
	.should_stop = should_stop,
};

static const fv_component early_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_STOPPER,
	.names = early_names,
	.doc = "stop when the loss has not improved by min_delta `patience` times, or after "
	       "max_iterations",
	.options = early_options,
	.options_size = sizeof(stopper_opts),
	.create = early_create,
	.destroy = stopper_destroy,
	.should_stop = should_stop,
};

FV_PLUGIN_DEFINE("stoppers", &optimization_component, &early_component);
