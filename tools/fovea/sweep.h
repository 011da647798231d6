/*
** sweep.h: the search space of `fovea sweep`, as Hydra's Optuna sweeper
** reads hydra.sweeper.params: one entry per config key, whose value is
**   choice(a, b, ...)          one of the values (CategoricalDistribution)
**   range(start, stop[, step]) a number from start to stop, both included,
**                              on the step's grid (Optuna's IntDistribution;
**                              a float bound or step: FloatDistribution)
**   interval(a, b)             a number in [a, b] (an integer one when both
**                              bounds are integers)
**   tag(log, interval(a, b))   the same, drawn uniformly in log space
** or a plain value, which every trial gets.  A trial is one value per
** entry, written as the override KEY=VALUE that the trial's config gets.
*/
#ifndef FOVEA_TOOLS_SWEEP_H
#define FOVEA_TOOLS_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sweep_kind { SWEEP_FIXED, SWEEP_CHOICE, SWEEP_RANGE, SWEEP_INTERVAL } sweep_kind;

typedef struct sweep_param {
	char *key;
	sweep_kind kind;
	size_t n_choices;   /* FIXED: 1 */
	char **choices;     /* FIXED, CHOICE: the values as written */
	double lo, hi, step; /* RANGE, INTERVAL */
	bool integer, log;
} sweep_param;

typedef struct sweep_space {
	size_t n;
	sweep_param *params;
} sweep_space;

/* Built in: random and grid; SAMPLER_OPTUNA: the config's Optuna sampler,
** run by Optuna itself (sweep_optuna.c). */
typedef enum sweep_sampler { SAMPLER_RANDOM, SAMPLER_GRID, SAMPLER_OPTUNA } sweep_sampler;

/* Add the entry KEY: TEXT; false after reporting what is wrong (`where`
** names the entry for the message). */
bool sweep_space_add(sweep_space *s, const char *key, const char *text, const char *where);
void sweep_space_free(sweep_space *s);

/* Whether the text is a sweep (choice(...), range(...), ...) rather than a
** value: a command-line override with one joins the search space. */
bool sweep_is_sweep(const char *text);

/* The number of points of the grid, or 0 after reporting the entry that has
** none (an interval). */
uint64_t sweep_grid_size(const sweep_space *s);

/* The value of every entry for trial `trial` (0-based), written into
** values[i] (malloc'd; the caller frees each): the grid's trial-th point
** (the last entry varying fastest), or a draw from the sampler's seeded
** stream for this trial alone, so that any process computes any trial's
** values.  false when out of memory. */
bool sweep_trial_values(const sweep_space *s, sweep_sampler sampler, uint64_t seed,
                        uint64_t trial, char **values);

#endif /* FOVEA_TOOLS_SWEEP_H */
