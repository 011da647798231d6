/*
** insilico_cli.c: the command line of `fovea mei` and `fovea mds` (see
** insilico_cli.h).  The optimisation itself, its config, its outputs and
** its progress lines are libfovea's fv_optimize_from_config.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/parallel.h"
#include "insilico_cli.h"

static int parse_number(const cli_cmd *cmd, const char *opt, const char *text, long long lo,
                        long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
		return cli_usage_error(cmd, "%s needs an integer in %lld..%lld, got '%s'", opt, lo, hi,
		                       text);
	*out = v;
	return CLI_OK;
}

int ins_parse_indices(const cli_cmd *cmd, const char *opt, const char *noun, const char *text,
                      bool all_ok, fv_indices *out)
{
	*out = (fv_indices){0};
	if (all_ok && strcmp(text, "all") == 0)
		return CLI_OK;
	size_t count = 1;
	for (const char *p = text; *p; p++)
		count += *p == ',';
	int64_t *v = malloc(count * sizeof *v);
	if (v == NULL)
		return cli_fail("out of memory");
	const char *p = text;
	for (size_t k = 0; k < count; k++) {
		char *end;
		errno = 0;
		long long x = strtoll(p, &end, 10);
		if (errno != 0 || end == p || (*end != ',' && *end != '\0') || x < 0) {
			free(v);
			return cli_usage_error(cmd, "%s: expected comma-separated %s indices (0 or more), "
			                            "got '%s'", opt, noun, text);
		}
		v[k] = x;
		p = end + 1;
	}
	*out = (fv_indices){count, v};
	return CLI_OK;
}

static int set_common(ins_args *a, const char *opt, const char *val)
{
	long long v = 0;
	int rc = CLI_OK;
	if (strcmp(opt, "--session") == 0)
		a->session = val;
	else if (strcmp(opt, "--out") == 0)
		a->out_dir = val;
	else if (strcmp(opt, "--model") == 0)
		a->model = val;
	else if (strcmp(opt, "--seed") == 0) {
		rc = parse_number(a->cmd, opt, val, 0, INT64_MAX, &v);
		a->seed = (uint64_t)v;
	} else { /* --threads */
		rc = parse_number(a->cmd, opt, val, 1, 4096, &v);
		a->threads = (int)v;
	}
	return rc;
}

static bool listed(const char *const *names, const char *s)
{
	for (; names != NULL && *names != NULL; names++)
		if (strcmp(*names, s) == 0)
			return true;
	return false;
}

static int parse_one(ins_args *a, int argc, char **argv, int *i, const ins_own *own)
{
	static const char *const with_value[] = {"--session", "--seed", "--out", "--threads", "--model",
	                                           NULL};
	const char *s = argv[*i];
	bool mine = listed(own->names, s);
	if (mine || listed(with_value, s)) {
		if (*i + 1 >= argc)
			return cli_usage_error(a->cmd, "%s needs a value", s);
		const char *val = argv[++*i];
		return mine ? own->set(own->ud, s, val) : set_common(a, s, val);
	}
	if (strcmp(s, "--progress") == 0)
		a->progress = 1;
	else if (strcmp(s, "--no-progress") == 0)
		a->progress = 0;
	else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0)
		a->quiet = true;
	else if (s[0] == '-' && s[1] == '-')
		return cli_usage_error(a->cmd, "unknown option '%s'", s);
	else if (strchr(s, '=') != NULL || s[0] == '~')
		a->overrides[a->n_overrides++] = s;
	else if (a->checkpoint == NULL)
		a->checkpoint = s;
	else if (a->config_file == NULL)
		a->config_file = s;
	else
		return cli_usage_error(a->cmd, "unexpected argument '%s'", s);
	return CLI_OK;
}

int ins_parse(ins_args *a, int argc, char **argv, const ins_own *own)
{
	a->progress = -1;
	a->overrides = calloc((size_t)argc, sizeof *a->overrides);
	if (a->overrides == NULL)
		return cli_fail("out of memory");
	int rc = CLI_OK;
	for (int i = 1; rc == CLI_OK && i < argc; i++)
		rc = parse_one(a, argc, argv, &i, own);
	if (rc == CLI_OK && a->checkpoint == NULL)
		rc = cli_usage_error(a->cmd, "expected a checkpoint");
	return rc;
}

void ins_args_free(ins_args *a)
{
	free(a->overrides);
	a->overrides = NULL;
}

int ins_run(const ins_args *a, fv_insilico_job *job)
{
	if (a->threads > 0)
		fv_set_num_threads(a->threads);
	job->checkpoint = a->checkpoint;
	job->model_yaml = a->model;
	job->session = a->session;
	job->seed = a->seed;
	fv_config *cfg = fv_insilico_config_compose(job->kind, a->config_file, a->n_overrides,
	                                            a->overrides);
	if (cfg == NULL)
		return cli_fail("%s", fv_errmsg());
	fv_registry *reg = cli_load_registry();
	int rc = reg != NULL ? CLI_OK : CLI_FAILED;
	/* under mpirun each process optimises its share of the units, and
	** live lines of several processes on one terminal would be a jumble */
	int progress = fv_parallel_size() > 1 && a->progress < 0 ? 0 : a->progress;
	fv_insilico_options o = {.out_dir = a->out_dir, .progress = progress, .quiet = a->quiet,
	                         .shard_index = fv_parallel_rank(),
	                         .shard_count = fv_parallel_size()};
	if (rc == CLI_OK && fv_optimize_from_config(reg, cfg, job, &o, NULL) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	fv_registry_free(reg);
	fv_config_free(cfg);
	return rc;
}
