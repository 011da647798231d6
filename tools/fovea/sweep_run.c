/*
** sweep_run.c: the study of `fovea sweep` (see sweep_run.h): settings from
** hydra.sweeper as Hydra's Optuna sweeper reads them, the trials, and the
** summary written from the trials' records.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fovea/config.h"
#include "fovea/parallel.h"
#include "sweep_run.h"

/* ---- the study -------------------------------------------------------------------- */

static const char *text_at(const fv_config_node *root, const char *path)
{
	const fv_config_node *n = fv_node_path(root, path);
	return n != NULL && !fv_node_is_null(n) ? fv_node_text(n) : NULL;
}

/* The command line's overrides: sweeps join the space, the rest are fixed. */
static int split_overrides(sweep_study *s, const sweep_args *a)
{
	s->fixed = calloc((size_t)a->n_overrides + 1, sizeof *s->fixed);
	if (s->fixed == NULL)
		return cli_fail("out of memory");
	for (int i = 0; i < a->n_overrides; i++) {
		const char *o = a->overrides[i], *eq = strchr(o, '=');
		if (eq == NULL || !sweep_is_sweep(eq + 1)) {
			s->fixed[s->n_fixed++] = o;
			continue;
		}
		char key[512];
		const char *k = o + strspn(o, "+");
		snprintf(key, sizeof key, "%.*s", (int)(eq - k), k);
		if (!sweep_space_add(&s->space, key, eq + 1, o))
			return CLI_FAILED;
	}
	return CLI_OK;
}

static int read_params(sweep_study *s, const fv_config_node *sweeper)
{
	const fv_config_node *params = sweeper ? fv_node_get(sweeper, "params") : NULL;
	for (size_t i = 0; params != NULL && i < fv_node_size(params); i++) {
		const char *key = fv_node_key_at(params, i), *text = fv_node_text(fv_node_at(params, i));
		char where[600];
		snprintf(where, sizeof where, "hydra.sweeper.params.%s", key);
		if (text == NULL)
			return cli_fail("%s: expected a value or choice/range/interval(...) as text", where);
		if (!sweep_space_add(&s->space, key, text, where))
			return CLI_FAILED;
	}
	if (s->space.n == 0)
		return cli_fail("%s: hydra.sweeper.params is empty: nothing to search (give it, or "
		                "key=choice(...) overrides)", s->args->config);
	return CLI_OK;
}

/* Optuna's samplers that fovea builds in; any other runs in Optuna itself. */
static sweep_sampler sampler_of(const char *target)
{
	if (target == NULL || strstr(target, "RandomSampler") != NULL)
		return SAMPLER_RANDOM;
	return strstr(target, "GridSampler") != NULL ? SAMPLER_GRID : SAMPLER_OPTUNA;
}

static int read_sampler(sweep_study *s, const fv_config_node *root)
{
	const fv_config_node *node = fv_node_path(root, "hydra.sweeper.sampler");
	const char *target = text_at(root, "hydra.sweeper.sampler._target_");
	const char *want = s->args->sampler;
	s->sampler = want == NULL ? sampler_of(target)
	             : strcmp(want, "grid") == 0 ? SAMPLER_GRID
	             : strcmp(want, "random") == 0 ? SAMPLER_RANDOM : SAMPLER_OPTUNA;
	if (s->sampler == SAMPLER_OPTUNA && node != NULL &&
	    (s->sampler_yaml = fv_node_to_yaml(node)) == NULL)
		return cli_fail("out of memory");
	const fv_config_node *seed = fv_node_path(root, "hydra.sweeper.sampler.seed");
	/* without a seed, the time; the tasks of a Slurm array start at other
	** times but must draw the same trials: their array's job id */
	const char *job = getenv("SLURM_ARRAY_JOB_ID");
	int64_t v = job != NULL ? strtoll(job, NULL, 10) : (int64_t)time(NULL);
	s->seed_given = seed != NULL && !fv_node_is_null(seed);
	if (s->seed_given && fv_node_to_int(seed, &v) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	s->seed = (uint64_t)v;
	return CLI_OK;
}

static int read_counts(sweep_study *s, const fv_config_node *root)
{
	const fv_config_node *n = fv_node_path(root, "hydra.sweeper.n_trials");
	int64_t trials = 20; /* the Optuna sweeper's default */
	if (n != NULL && (fv_node_to_int(n, &trials) != FV_OK || trials < 1))
		return cli_fail("hydra.sweeper.n_trials: expected a positive integer");
	s->n_trials = (uint64_t)trials;
	const char *dir = text_at(root, "hydra.sweeper.direction");
	if (dir != NULL && strcmp(dir, "minimize") != 0 && strcmp(dir, "maximize") != 0)
		return cli_fail("hydra.sweeper.direction: expected minimize or maximize, got '%s'", dir);
	s->maximize = dir != NULL && strcmp(dir, "maximize") == 0;
	if (s->sampler == SAMPLER_GRID) {
		uint64_t size = sweep_grid_size(&s->space);
		if (size == 0)
			return CLI_FAILED;
		s->n_trials = size < s->n_trials ? size : s->n_trials;
	}
	return CLI_OK;
}

/* The sweep directory: --out, hydra.sweep.dir, or Hydra's default. */
static int choose_dir(sweep_study *s, const fv_config_node *root)
{
	const char *dir = s->args->out ? s->args->out : text_at(root, "hydra.sweep.dir");
	if (getenv("SLURM_ARRAY_TASK_ID") != NULL && s->args->out == NULL)
		return cli_fail("in a Slurm array every task must write to one directory: give --out "
		                "DIR");
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	if (dir == NULL)
		strftime(s->dir, sizeof s->dir, "multirun/%Y-%m-%d/%H-%M-%S", &tm);
	else if (strstr(dir, "${") != NULL)
		return cli_fail("hydra.sweep.dir: '%s' does not resolve; give --out DIR", dir);
	else if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir - 32)
		return cli_fail("the sweep directory '%s' is too long", dir);
	return CLI_OK;
}

static int read_study(sweep_study *s, fv_config *cfg)
{
	const fv_config_node *root = fv_config_root(cfg);
	const char *name = text_at(root, "hydra.sweeper.study_name");
	const char *objective = text_at(root, "objective_target");
	if ((s->name = strdup(name ? name : "fovea_sweep")) == NULL ||
	    (objective != NULL && (s->objective = strdup(objective)) == NULL))
		return cli_fail("out of memory");
	int rc = read_params(s, fv_node_path(root, "hydra.sweeper"));
	if (rc == CLI_OK)
		rc = read_sampler(s, root);
	if (rc == CLI_OK)
		rc = read_counts(s, root);
	if (rc == CLI_OK && fv_parallel_rank() == 0)
		rc = choose_dir(s, root);
	const char *storage = text_at(root, "hydra.sweeper.storage");
	if (rc == CLI_OK && s->sampler == SAMPLER_OPTUNA && storage != NULL &&
	    (s->storage = strdup(storage)) == NULL)
		rc = cli_fail("out of memory");
	if (rc == CLI_OK && s->sampler != SAMPLER_OPTUNA && storage != NULL && !s->args->quiet &&
	    fv_parallel_rank() == 0)
		printf("sweep: hydra.sweeper.storage is not used by the %s sampler: the trials' "
		       "records are in %s\n", s->sampler == SAMPLER_GRID ? "grid" : "random", s->dir);
	return rc;
}

static int make_dirs(const char *path)
{
	char p[4200];
	snprintf(p, sizeof p, "%s", path);
	for (char *c = p + 1; ; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char was = *c;
		*c = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			return cli_fail("cannot create %s: %s", p, strerror(errno));
		if ((*c = was) == '\0')
			return CLI_OK;
	}
}

/* Optuna's study in the sweep directory, by absolute path: the tasks of a
** Slurm array may start elsewhere. */
static int default_storage(sweep_study *s)
{
	char *abs = realpath(s->dir, NULL);
	if (abs == NULL)
		return cli_fail("cannot resolve %s: %s", s->dir, strerror(errno));
	size_t n = strlen(abs) + 32;
	s->storage = malloc(n);
	if (s->storage != NULL)
		snprintf(s->storage, n, "sqlite:///%s/optuna.db", abs);
	free(abs);
	return s->storage != NULL ? CLI_OK : cli_fail("out of memory");
}

/* Rank 0 chose the directory and seed; every rank must use those. */
static int share(sweep_study *s, int rc)
{
	double failed = rc != CLI_OK;
	if (fv_parallel_allreduce_sum(&failed, 1) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (failed > 0)
		return CLI_FAILED;
	if (fv_parallel_broadcast(s->dir, sizeof s->dir, 0) != FV_OK ||
	    fv_parallel_broadcast(&s->seed, sizeof s->seed, 0) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	return CLI_OK;
}

const char *sweep_sampler_name(sweep_sampler sampler)
{
	return sampler == SAMPLER_GRID ? "grid" : sampler == SAMPLER_RANDOM ? "random" : "optuna";
}

int sweep_study_open(sweep_study *s, const sweep_args *a)
{
	s->args = a;
	int rc = split_overrides(s, a);
	fv_config *cfg = NULL;
	if (rc == CLI_OK && (cfg = fv_config_compose(a->config, NULL, s->n_fixed, s->fixed)) == NULL)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		rc = read_study(s, cfg);
	fv_config_free(cfg);
	if (rc == CLI_OK && fv_parallel_rank() == 0)
		rc = make_dirs(s->dir);
	if (rc == CLI_OK && s->sampler == SAMPLER_OPTUNA && s->storage == NULL &&
	    fv_parallel_rank() == 0)
		rc = default_storage(s);
	rc = share(s, rc);
	s->n_listed = s->n_trials;
	if (rc == CLI_OK && fv_parallel_rank() == 0 && !a->quiet)
		printf("sweep %s: %llu trials (%s sampler, seed %llu) in %s\n", s->name,
		       (unsigned long long)s->n_trials, sweep_sampler_name(s->sampler),
		       (unsigned long long)s->seed, s->dir);
	return rc;
}

void sweep_study_close(sweep_study *s)
{
	sweep_space_free(&s->space);
	free(s->fixed);
	free(s->name);
	free(s->objective);
	free(s->storage);
	free(s->sampler_yaml);
	*s = (sweep_study){0};
}
