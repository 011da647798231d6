/*
** insilico_cli.c: the command line of `fovea mei` and `fovea mds` (see
** insilico_cli.h).  The optimisation itself, its config, its outputs and
** its progress lines are libfovea's fv_optimize_from_config.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/figure.h"
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
	else if (strcmp(opt, "--movie") == 0)
		a->movie = val;
	else if (strcmp(opt, "--format") == 0 || strcmp(opt, "--size") == 0 ||
	         strcmp(opt, "--dpi") == 0) {
		int fig = cli_figure_option(a->cmd, opt, val, &a->figure);
		rc = fig < 0 ? -fig : CLI_OK;
	}
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
	                                           "--movie", "--format", "--size", "--dpi", NULL};
	const char *s = argv[*i];
	if (listed(own->flags, s))
		return own->set(own->ud, s, NULL);
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

void ins_movie_path(char *buf, size_t n, const char *value, bool several,
                    const fv_insilico_record *r)
{
	const char *dot = strrchr(value, '.');
	if (strchr(value, '/') == NULL && dot == NULL)
		snprintf(buf, n, "%s/%s.%s", r->dir, r->stem, value);
	else if (!several || dot == NULL || (strrchr(value, '/') != NULL && dot < strrchr(value, '/')))
		snprintf(buf, n, several ? "%s_%s" : "%s", value, r->stem);
	else
		snprintf(buf, n, "%.*s_%s%s", (int)(dot - value), value, r->stem, dot);
}

fv_status ins_write_movie(const fv_insilico_record *r, const char *path)
{
	fv_movie_args m = {.stimulus = r->stimulus, .title = r->title,
	                   .responses = r->response_trace, .n_time = r->n_response,
	                   .n_traces = 1, .trace_label = "response"};
	fv_status rc = fv_movie_write(&m, path);
	return rc;
}

typedef struct movie_hook {
	const ins_args *a;
	bool several;
	fv_insilico_fn next;
	void *ud;
} movie_hook;

/* --format/--size/--dpi: the figure again, as asked, beside STEM.png. */
static fv_status write_figure(const ins_args *a, const fv_insilico_record *r)
{
	const fv_figure_output *o = &a->figure;
	if (o->format == FV_FIGURE_AUTO && o->width_in <= 0 && o->height_in <= 0 && o->dpi <= 0)
		return FV_OK;
	char path[4400];
	snprintf(path, sizeof path, "%s/%s.%s", r->dir, r->stem, fv_figure_format_ext(o->format));
	fv_status rc = fv_figure_stimulus_to(r->stimulus, r->title, 10, o, path);
	if (rc == FV_OK && !a->quiet && o->format != FV_FIGURE_AUTO && o->format != FV_FIGURE_PNG)
		printf("wrote %s\n", path);
	return rc;
}

static fv_status after_stimulus(void *ud, const fv_insilico_record *r)
{
	movie_hook *h = ud;
	fv_status st = write_figure(h->a, r);
	if (st != FV_OK)
		return st;
	if (h->a->movie != NULL) {
		char path[4400];
		ins_movie_path(path, sizeof path, h->a->movie, h->several, r);
		fv_status rc = ins_write_movie(r, path);
		if (rc != FV_OK)
			return rc;
		if (!h->a->quiet)
			printf("wrote %s\n", path);
	}
	return h->next != NULL ? h->next(h->ud, r) : FV_OK;
}

int ins_run(const ins_args *a, fv_insilico_job *job)
{
	return ins_run_with(a, job, NULL, NULL);
}

fv_status ins_optimize(const ins_args *a, fv_registry *reg, fv_insilico_job *job,
                       fv_insilico_fn on_result, void *ud, fv_insilico_result *result)
{
	job->checkpoint = a->checkpoint;
	job->model_yaml = a->model;
	job->session = a->session;
	job->seed = a->seed;
	fv_config *cfg = fv_insilico_config_compose(job->kind, a->config_file, a->n_overrides,
	                                            a->overrides);
	if (cfg == NULL)
		return fv_errcode();
	movie_hook hook = {a, job->kind != FV_INSILICO_MDS && job->units.n != 1, on_result, ud};
	/* under mpirun each process optimises its share of the units, and
	** live lines of several processes on one terminal would be a jumble */
	int progress = fv_parallel_size() > 1 && a->progress < 0 ? 0 : a->progress;
	fv_insilico_options o = {.out_dir = a->out_dir, .progress = progress, .quiet = a->quiet,
	                         .on_result = after_stimulus, .ud = &hook,
	                         .shard_index = fv_parallel_rank(),
	                         .shard_count = fv_parallel_size()};
	fv_status rc = fv_optimize_from_config(reg, cfg, job, &o, result);
	fv_config_free(cfg);
	return rc;
}

int ins_run_with(const ins_args *a, fv_insilico_job *job, fv_insilico_fn on_result, void *ud)
{
	if (a->threads > 0)
		fv_set_num_threads(a->threads);
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	int rc = CLI_OK;
	if (ins_optimize(a, reg, job, on_result, ud, NULL) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	fv_registry_free(reg);
	return rc;
}
