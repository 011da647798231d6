/*
** insilico_cli.c: the machinery of `fovea mei` and `fovea mds` (see
** insilico_cli.h): a trained model from a checkpoint, the optimisation
** config, one fv_optimize_stimulus run per job, and its outputs:
**   STEM.npy   the stimulus (channels, time, height, width), float32, in
**              the model's normalised units (`fovea predict --raw` takes it)
**   STEM.png   fv_figure_stimulus
**   STEM.json  the objective and loss per iteration, time per iteration,
**              the final objective and response, the peak pixel, the
**              config used.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fovea/figure.h"
#include "fovea/insilico.h"
#include "fovea/npy.h"
#include "fovea/trainer.h"
#include "insilico_cli.h"

/* ---- options ----------------------------------------------------------------------- */

static int parse_number(const cli_cmd *cmd, const char *opt, const char *text, long long lo,
                        long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = text ? strtoll(text, &end, 10) : 0;
	if (text == NULL || errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
		return cli_usage_error(cmd, "%s needs an integer in %lld..%lld%s%s%s", opt, lo, hi,
		                       text ? ", got '" : "", text ? text : "", text ? "'" : "");
	*out = v;
	return CLI_OK;
}

int ins_parse_indices(const cli_cmd *cmd, const char *opt, const char *text, int64_t **out, int *n)
{
	int count = 1;
	for (const char *p = text; *p; p++)
		count += *p == ',';
	int64_t *v = malloc((size_t)count * sizeof *v);
	if (v == NULL)
		return cli_fail("out of memory");
	const char *p = text;
	for (int k = 0; k < count; k++) {
		char *end;
		errno = 0;
		long long x = strtoll(p, &end, 10);
		if (errno != 0 || end == p || (*end != ',' && *end != '\0') || x < 0) {
			free(v);
			return cli_usage_error(cmd, "%s: expected comma-separated neuron indices (0 or "
			                            "more), got '%s'", opt, text);
		}
		v[k] = x;
		p = end + 1;
	}
	*out = v;
	*n = count;
	return CLI_OK;
}

static int set_value(ins_args *a, const char *opt, const char *val)
{
	long long v = 0;
	int rc = CLI_OK;
	if (strcmp(opt, "--session") == 0)
		a->session = val;
	else if (strcmp(opt, "--out") == 0)
		a->out_dir = val;
	else if (strcmp(opt, "--reference") == 0)
		a->reference = val;
	else if (strcmp(opt, "--seed") == 0 && (rc = parse_number(a->cmd, opt, val, 0, INT64_MAX, &v)) == CLI_OK)
		a->seed = (uint64_t)v;
	else if (strcmp(opt, "--threads") == 0 && (rc = parse_number(a->cmd, opt, val, 1, 4096, &v)) == CLI_OK)
		a->threads = (int)v;
	return rc;
}

static int set_positional(ins_args *a, const char *s)
{
	if (strchr(s, '=') != NULL || s[0] == '~')
		a->overrides[a->n_overrides++] = s;
	else if (a->checkpoint == NULL)
		a->checkpoint = s;
	else if (a->config_file == NULL)
		a->config_file = s;
	else
		return cli_usage_error(a->cmd, "unexpected argument '%s'", s);
	return CLI_OK;
}

int ins_parse_common(ins_args *a, int argc, char **argv, int *i)
{
	static const char *const with_value[] = {"--session", "--seed", "--out", "--reference",
	                                         "--threads"};
	const char *s = argv[*i];
	for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) {
		if (strcmp(s, with_value[k]) != 0)
			continue;
		if (*i + 1 >= argc)
			return cli_usage_error(a->cmd, "%s needs a value", s);
		return set_value(a, s, argv[++*i]);
	}
	if (strcmp(s, "--progress") == 0)
		a->progress = 1;
	else if (strcmp(s, "--no-progress") == 0)
		a->progress = 0;
	else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0)
		a->quiet = true;
	else if (s[0] == '-' && s[1] == '-')
		return cli_usage_error(a->cmd, "unknown option '%s'", s);
	else
		return set_positional(a, s);
	return CLI_OK;
}

int ins_check_args(const ins_args *a)
{
	if (a->checkpoint == NULL)
		return cli_usage_error(a->cmd, "expected a checkpoint");
	if (a->session == NULL)
		return cli_usage_error(a->cmd, "--session is required (whose readout to use)");
	return CLI_OK;
}

/* ---- the config ---------------------------------------------------------------------- */

/* openretina's choices in openretina/cli/visualize_model_neurons.py (SGD
** with lr 100, 10 iterations, SliceMeanReducer(0, 10, 10), a norm/range
** projection and a 0.1 range penalty), written as flow YAML per key.  The
** Hoefling et al. ranges it uses for 2-channel data are data-set specific,
** so min_max_values defaults to unbounded channels; `norm` 5.0 is theirs. */
static const struct {
	const char *key, *value;
} defaults[] = {
	{"time_steps", "50"},
	{"init_std", "0.1"},
	{"norm", "5.0"},
	{"optimizer", "{_target_: torch.optim.SGD, lr: 100.0}"},
	{"stopper", "{_target_: OptimizationStopper, max_iterations: 10}"},
	{"regularizers", "[{_target_: RangeRegularizationLoss, min_max_values: '${min_max_values}', "
	                 "max_norm: '${norm}', factor: 0.1}]"},
	{"postprocessors", "[{_target_: ChangeNormJointlyClipRangeSeparately, min_max_values: "
	                   "'${min_max_values}', norm: '${norm}'}]"},
};

struct ins_session {
	const ins_args *a;
	fv_registry *reg;
	fv_checkpoint *ck;
	fv_module *module;
	fv_model *model;
	fv_config *cfg;
	size_t session;
	double *reference_mean; /* per neuron, or NULL */
};

static int set_default(fv_config *cfg, const char *key, const char *value)
{
	if (fv_node_get(fv_config_root(cfg), key) != NULL)
		return CLI_OK;
	size_t n = strlen(key) + strlen(value) + 4;
	char *arg = malloc(n);
	if (arg == NULL)
		return cli_fail("out of memory");
	snprintf(arg, n, "++%s=%s", key, value);
	int rc = fv_config_override(cfg, arg) == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	free(arg);
	return rc;
}

/* "[[null, null], ...]", one pair per channel. */
static char *unbounded_ranges(int64_t channels)
{
	size_t n = 16 + 14 * (size_t)channels;
	char *s = malloc(n), *p = s;
	if (s == NULL)
		return NULL;
	p += sprintf(p, "[");
	for (int64_t c = 0; c < channels; c++)
		p += sprintf(p, "%s[null, null]", c ? ", " : "");
	sprintf(p, "]");
	return s;
}

static int compose_config(ins_session *s, const char *objective_default)
{
	const ins_args *a = s->a;
	static const char empty[] = "{}";
	s->cfg = a->config_file ? fv_config_compose(a->config_file, NULL, 0, NULL)
	                        : fv_config_load_string(empty, sizeof empty - 1, "<defaults>");
	if (s->cfg == NULL)
		return cli_fail("%s", fv_errmsg());
	char *ranges = unbounded_ranges(fv_checkpoint_data_info(s->ck)->input_shape[0]);
	int rc = ranges ? set_default(s->cfg, "min_max_values", ranges) : cli_fail("out of memory");
	free(ranges);
	for (size_t k = 0; rc == CLI_OK && k < sizeof defaults / sizeof *defaults; k++)
		rc = set_default(s->cfg, defaults[k].key, defaults[k].value);
	if (rc == CLI_OK)
		rc = set_default(s->cfg, "objective", objective_default);
	for (int k = 0; rc == CLI_OK && k < a->n_overrides; k++)
		if (fv_config_override(s->cfg, a->overrides[k]) != FV_OK)
			rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && fv_config_resolve(s->cfg) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	return rc;
}

static int config_int(const ins_session *s, const char *key, int64_t lo, int64_t *out)
{
	const fv_config_node *n = fv_node_get(fv_config_root(s->cfg), key);
	if (fv_node_to_int(n, out) != FV_OK || *out < lo)
		return cli_fail("%s: expected an integer >= %lld, got '%s'", key, (long long)lo,
		                n && fv_node_text(n) ? fv_node_text(n) : "?");
	return CLI_OK;
}

static int config_double(const ins_session *s, const char *key, double *out)
{
	const fv_config_node *n = fv_node_get(fv_config_root(s->cfg), key);
	if (fv_node_to_double(n, out) != FV_OK || !(*out >= 0))
		return cli_fail("%s: expected a number >= 0, got '%s'", key,
		                n && fv_node_text(n) ? fv_node_text(n) : "?");
	return CLI_OK;
}

/* ---- the model ------------------------------------------------------------------------ */

static int find_session(ins_session *s)
{
	const fv_data_info *info = fv_checkpoint_data_info(s->ck);
	for (size_t i = 0; i < info->n_sessions; i++)
		if (strcmp(info->sessions[i], s->a->session) == 0) {
			s->session = i;
			return CLI_OK;
		}
	const char *near = fv_closest_name(s->a->session, info->sessions, info->n_sessions);
	if (near != NULL)
		return cli_fail("%s: no session '%s'; did you mean '%s'?", s->a->checkpoint,
		                s->a->session, near);
	return cli_fail("%s: no session '%s' (the model's %zu sessions: '%s' ... '%s')",
	                s->a->checkpoint, s->a->session, info->n_sessions, info->sessions[0],
	                info->sessions[info->n_sessions - 1]);
}

const fv_data_info *ins_info(const ins_session *s) { return fv_checkpoint_data_info(s->ck); }

int64_t ins_n_neurons(const ins_session *s) { return ins_info(s)->n_neurons[s->session]; }

int ins_check_neuron(const ins_session *s, int64_t n, const char *what)
{
	if (n >= 0 && n < ins_n_neurons(s))
		return CLI_OK;
	return cli_fail("%s %lld is out of range: session '%s' has %lld neurons (0..%lld)", what,
	                (long long)n, s->a->session, (long long)ins_n_neurons(s),
	                (long long)ins_n_neurons(s) - 1);
}

/* The model's responses (T', N) of the session to `x` (1, C, T, H, W), in
** a no-grad context; NULL after reporting. */
static fv_tensor *respond(ins_session *s, fv_ctx *ctx, fv_tensor *x)
{
	fv_ctx_set_grad_enabled(ctx, false);
	fv_tensor *y = fv_model_forward(s->model, ctx, x, s->a->session);
	if (y == NULL)
		cli_fail("%s", fv_errmsg());
	else if (y->ndim != 3 || y->shape[0] != 1 || y->shape[2] != ins_n_neurons(s))
		cli_fail("the model's output %s is not (1, time, neurons)", fv_shape_str(y->ndim, y->shape));
	else
		return y;
	return NULL;
}

static int check_movie(const ins_session *s, const fv_tensor *m)
{
	const int64_t *in = ins_info(s)->input_shape;
	if (m->ndim == 4 && m->shape[0] == in[0] && m->shape[2] == in[1] && m->shape[3] == in[2])
		return CLI_OK;
	return cli_fail("%s: shape %s, expected (channels, time, height, width) with (channels, "
	                "height, width) = (%lld, %lld, %lld)", s->a->reference,
	                fv_shape_str(m->ndim, m->shape), (long long)in[0], (long long)in[1],
	                (long long)in[2]);
}

/* The mean over time of every neuron's response to movie `m`, normalised
** as the data loader normalises training stimuli. */
static int mean_responses(ins_session *s, fv_ctx *ctx, const fv_tensor *m)
{
	const fv_data_info *info = ins_info(s);
	int64_t shape[5] = {1, m->shape[0], m->shape[1], m->shape[2], m->shape[3]};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, shape, m->data);
	if (x == NULL)
		return cli_fail("%s", fv_errmsg());
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(((double)x->data[i] - info->stim_mean) / info->stim_std);
	fv_tensor *y = respond(s, ctx, x);
	int64_t N = ins_n_neurons(s);
	if (y == NULL)
		return CLI_FAILED;
	if ((s->reference_mean = calloc((size_t)N, sizeof(double))) == NULL)
		return cli_fail("out of memory");
	for (int64_t t = 0; t < y->shape[1]; t++)
		for (int64_t n = 0; n < N; n++)
			s->reference_mean[n] += (double)y->data[t * N + n] / (double)y->shape[1];
	return CLI_OK;
}

/* --reference: each neuron's mean predicted response to a movie. */
static int reference_means(ins_session *s)
{
	fv_tensor *m = fv_npy_load(s->a->reference);
	if (m == NULL)
		return cli_fail("%s", fv_errmsg());
	fv_ctx *ctx = NULL;
	int rc = check_movie(s, m);
	if (rc == CLI_OK && (ctx = fv_ctx_new()) == NULL)
		rc = cli_fail("out of memory");
	if (rc == CLI_OK)
		rc = mean_responses(s, ctx, m);
	fv_ctx_free(ctx);
	fv_tensor_free(m);
	return rc;
}

ins_session *ins_open(const ins_args *a, const char *objective_default, int *rc)
{
	ins_session *s = calloc(1, sizeof *s);
	if (s == NULL) {
		*rc = cli_fail("out of memory");
		return NULL;
	}
	s->a = a;
	if (a->threads > 0)
		fv_set_num_threads(a->threads);
	s->ck = fv_checkpoint_open(a->checkpoint);
	*rc = s->ck ? find_session(s) : cli_fail("%s", fv_errmsg());
	if (*rc == CLI_OK && (s->reg = cli_load_registry()) == NULL)
		*rc = CLI_FAILED;
	if (*rc == CLI_OK && (s->module = fv_model_load(s->reg, s->ck, NULL)) == NULL)
		*rc = cli_fail("%s", fv_errmsg());
	if (*rc == CLI_OK && (s->model = fv_model_new(s->module)) == NULL)
		*rc = cli_fail("%s", fv_errmsg());
	if (*rc == CLI_OK)
		*rc = compose_config(s, objective_default);
	if (*rc == CLI_OK && a->reference != NULL)
		*rc = reference_means(s);
	if (*rc == CLI_OK && a->out_dir != NULL && mkdir(a->out_dir, 0777) != 0 && errno != EEXIST)
		*rc = cli_fail("%s: cannot create the output directory: %s", a->out_dir, strerror(errno));
	if (*rc != CLI_OK) {
		ins_close(s);
		return NULL;
	}
	return s;
}

void ins_close(ins_session *s)
{
	if (s == NULL)
		return;
	fv_model_free(s->model);
	fv_module_free(s->module);
	fv_registry_free(s->reg);
	fv_config_free(s->cfg);
	fv_checkpoint_close(s->ck);
	free(s->reference_mean);
	free(s);
}

/* ---- one optimisation ----------------------------------------------------------------------- */

#define MAX_STAGE 16

typedef struct stages {
	fv_module *objective, *stopper;
	fv_module *pen[MAX_STAGE], *post[MAX_STAGE];
	size_t n_pen, n_post;
	fv_optim_config optim;
} stages;

static fv_module *build(ins_session *s, const fv_config_node *spec, const char *key)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = s->reg};
	fv_module *m = spec && !fv_node_is_null(spec) ? fv_instantiate(s->reg, spec, &args) : NULL;
	if (m == NULL)
		cli_fail("%s: %s", key, spec && !fv_node_is_null(spec) ? fv_errmsg() : "missing");
	return m;
}

/* A list of components (one spec or null also do, as openretina's convert_to_list). */
static int build_list(ins_session *s, const char *key, fv_module **mods, size_t *n)
{
	const fv_config_node *node = fv_node_get(fv_config_root(s->cfg), key);
	*n = 0;
	if (node == NULL || fv_node_is_null(node))
		return CLI_OK;
	bool seq = fv_node_kind(node) == FV_NODE_SEQ;
	size_t count = seq ? fv_node_size(node) : 1;
	if (count > MAX_STAGE)
		return cli_fail("%s: at most %d components", key, MAX_STAGE);
	for (size_t i = 0; i < count; i++, (*n)++)
		if ((mods[i] = build(s, seq ? fv_node_at(node, i) : node, key)) == NULL)
			return CLI_FAILED;
	return CLI_OK;
}

static void stages_free(stages *st)
{
	fv_module_free(st->objective);
	fv_module_free(st->stopper);
	for (size_t i = 0; i < st->n_pen; i++)
		fv_module_free(st->pen[i]);
	for (size_t i = 0; i < st->n_post; i++)
		fv_module_free(st->post[i]);
}

static int build_stages(ins_session *s, const ins_job *job, stages *st)
{
	for (int k = 0; k < job->n_objective_overrides; k++)
		if (fv_config_override(s->cfg, job->objective_overrides[k]) != FV_OK)
			return cli_fail("%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(s->cfg);
	if (fv_optim_config_parse(fv_node_get(root, "optimizer"), &st->optim) != FV_OK)
		return cli_fail("optimizer: %s", fv_errmsg());
	if ((st->objective = build(s, fv_node_get(root, "objective"), "objective")) == NULL ||
	    (st->stopper = build(s, fv_node_get(root, "stopper"), "stopper")) == NULL)
		return CLI_FAILED;
	int rc = build_list(s, "regularizers", st->pen, &st->n_pen);
	return rc == CLI_OK ? build_list(s, "postprocessors", st->post, &st->n_post) : rc;
}

/* The start: N(0, init_std^2) from --seed (the same for every job of a
** batch, so that neurons are compared from one start), then every
** postprocessor, as visualize_model_neurons does. */
static fv_tensor *start_stimulus(ins_session *s, const stages *st)
{
	int64_t T;
	double init_std;
	if (config_int(s, "time_steps", 1, &T) != CLI_OK || config_double(s, "init_std", &init_std) != CLI_OK)
		return NULL;
	const int64_t *in = ins_info(s)->input_shape;
	int64_t shape[5] = {1, in[0], T, in[1], in[2]};
	fv_tensor *x = fv_tensor_new(5, shape);
	fv_ctx *rng = fv_ctx_new();
	if (x == NULL || rng == NULL) {
		cli_fail("out of memory");
		fv_ctx_free(rng);
		fv_tensor_free(x);
		return NULL;
	}
	fv_ctx_seed(rng, s->a->seed);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(fv_ctx_random_normal(rng) * init_std);
	fv_ctx_free(rng);
	for (size_t i = 0; i < st->n_post; i++)
		if (fv_module_project(st->post[i], x) != FV_OK) {
			cli_fail("postprocessors[%zu]: %s", i, fv_errmsg());
			fv_tensor_free(x);
			return NULL;
		}
	return x;
}

/* ---- the trace and the progress line -------------------------------------------------------- */

typedef struct trace {
	const ins_session *s;
	const ins_job *job;
	bool live;
	int64_t max_iterations; /* for the progress line; 0: unknown */
	size_t n, cap;
	double *objective, *loss, *seconds;
	double last;
} trace;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static fv_status record(void *ud, const fv_iteration *it)
{
	trace *tr = ud;
	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? 2 * tr->cap : 64;
		double *o = realloc(tr->objective, cap * sizeof *o);
		tr->objective = o ? o : tr->objective;
		double *l = o ? realloc(tr->loss, cap * sizeof *l) : NULL;
		tr->loss = l ? l : tr->loss;
		double *t = l ? realloc(tr->seconds, cap * sizeof *t) : NULL;
		if (t == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory recording the objective trace");
		tr->seconds = t;
		tr->cap = cap;
	}
	double t = now();
	tr->objective[tr->n] = it->objective;
	tr->loss[tr->n] = it->loss;
	tr->seconds[tr->n] = t - tr->last;
	tr->last = t;
	tr->n++;
	if (tr->live) {
		if (tr->max_iterations > 0)
			printf("\r%s: iteration %lld/%lld  objective %.5g ", tr->job->stem,
			       (long long)it->index + 1, (long long)tr->max_iterations, it->objective);
		else
			printf("\r%s: iteration %lld  objective %.5g ", tr->job->stem,
			       (long long)it->index + 1, it->objective);
		fflush(stdout);
	}
	return FV_OK;
}

static void trace_free(trace *tr)
{
	free(tr->objective);
	free(tr->loss);
	free(tr->seconds);
}

/* ---- outputs ---------------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_number(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

static void json_array(FILE *f, const char *key, const double *v, size_t n)
{
	fprintf(f, "  \"%s\": [", key);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ", " : "", f);
		json_number(f, v[i]);
	}
	fputs("],\n", f);
}

/* What the outputs report besides the trace. */
typedef struct result {
	double final_objective, response, total_seconds;
	double *response_trace;
	int64_t n_response;
	int64_t peak[3]; /* channel, row, col */
} result;

static void json_member(FILE *f, const char *key, double v)
{
	fprintf(f, "  \"%s\": ", key);
	json_number(f, v);
	fputs(",\n", f);
}

static void write_json_body(FILE *f, const ins_session *s, const ins_job *job, const trace *tr,
                            const result *r, const fv_tensor *x)
{
	fputs("{\n  \"command\": ", f);
	json_string(f, s->a->cmd->name);
	fputs(",\n  \"checkpoint\": ", f);
	json_string(f, s->a->checkpoint);
	fputs(",\n  \"session\": ", f);
	json_string(f, s->a->session);
	fprintf(f, ",\n  %s,\n  \"seed\": %llu,\n  \"stimulus_shape\": [%lld, %lld, %lld, %lld],\n",
	        job->json_extra, (unsigned long long)s->a->seed, (long long)x->shape[1],
	        (long long)x->shape[2], (long long)x->shape[3], (long long)x->shape[4]);
	fprintf(f, "  \"iterations\": %zu,\n", tr->n);
	json_member(f, "seconds", r->total_seconds);
	json_member(f, "seconds_per_iteration", tr->n ? r->total_seconds / (double)tr->n : NAN);
	json_member(f, "final_objective", r->final_objective);
	if (job->neuron >= 0) {
		json_member(f, "response", r->response);
		const fv_tensor *mean = ins_info(s)->mean_activity[s->session];
		json_member(f, "mean_activity", mean ? (double)mean->data[job->neuron] : NAN);
		json_member(f, "reference_mean_response",
		            s->reference_mean ? s->reference_mean[job->neuron] : NAN);
		json_array(f, "response_trace", r->response_trace, (size_t)r->n_response);
	}
	fprintf(f, "  \"peak_channel\": %lld,\n  \"peak_row\": %lld,\n  \"peak_col\": %lld,\n",
	        (long long)r->peak[0], (long long)r->peak[1], (long long)r->peak[2]);
	json_array(f, "objective_trace", tr->objective, tr->n);
	json_array(f, "loss_trace", tr->loss, tr->n);
	json_array(f, "iteration_seconds", tr->seconds, tr->n);
}

static int write_json(const ins_session *s, const ins_job *job, const trace *tr, const result *r,
                      const fv_tensor *x, const char *path)
{
	char *text = NULL, *yaml = fv_config_to_yaml(s->cfg);
	size_t len = 0;
	FILE *f = yaml ? open_memstream(&text, &len) : NULL;
	if (f == NULL) {
		free(yaml);
		return cli_fail("out of memory");
	}
	write_json_body(f, s, job, tr, r, x);
	fputs("  \"config\": ", f);
	json_string(f, yaml);
	fputs("\n}\n", f);
	fclose(f);
	free(yaml);
	int rc = fv_write_file_atomic(path, text, len) == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	free(text);
	return rc;
}

static int write_outputs(const ins_session *s, const ins_job *job, const trace *tr,
                         const result *r, const fv_tensor *x)
{
	const char *dir = s->a->out_dir ? s->a->out_dir : ".";
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.npy", dir, job->stem);
	if (fv_npy_save_data(path, 4, x->shape + 1, x->data) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	snprintf(path, sizeof path, "%s/%s.png", dir, job->stem);
	if (fv_figure_stimulus(x, job->title, 10, path) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	snprintf(path, sizeof path, "%s/%s.json", dir, job->stem);
	return write_json(s, job, tr, r, x, path);
}

/* The objective and the neuron's response at the final stimulus. */
static int evaluate(ins_session *s, const ins_job *job, stages *st, fv_tensor *x, result *r)
{
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return cli_fail("out of memory");
	fv_ctx_set_grad_enabled(ctx, false);
	fv_tensor *obj = fv_module_objective(st->objective, ctx, s->model, x);
	int rc = obj ? CLI_OK : cli_fail("objective: %s", fv_errmsg());
	if (rc == CLI_OK)
		r->final_objective = r->response = (double)obj->data[0];
	fv_tensor *y = rc == CLI_OK && job->neuron >= 0 ? respond(s, ctx, x) : NULL;
	if (rc == CLI_OK && job->neuron >= 0 && y == NULL)
		rc = CLI_FAILED;
	if (y != NULL && (r->response_trace = malloc((size_t)y->shape[1] * sizeof(double))) == NULL)
		rc = cli_fail("out of memory");
	if (y != NULL && r->response_trace != NULL) {
		r->n_response = y->shape[1];
		for (int64_t t = 0; t < r->n_response; t++)
			r->response_trace[t] = (double)y->data[t * y->shape[2] + job->neuron];
	}
	fv_ctx_free(ctx);
	if (rc == CLI_OK && fv_stimulus_peak(x, &r->peak[0], &r->peak[1], &r->peak[2]) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	return rc;
}

static void report(const ins_session *s, const ins_job *job, const trace *tr, const result *r)
{
	if (s->a->quiet)
		return;
	const char *dir = s->a->out_dir ? s->a->out_dir : ".";
	printf("%s%s: %zu iterations, objective %.5g -> %.5g, %.1f ms/iteration; peak at row %lld, "
	       "col %lld (channel %lld); wrote %s/%s.{npy,png,json}\n",
	       tr->live ? "\r\033[K" : "", job->stem, tr->n, tr->n ? tr->objective[0] : NAN,
	       r->final_objective, tr->n ? 1e3 * r->total_seconds / (double)tr->n : NAN,
	       (long long)r->peak[1], (long long)r->peak[2], (long long)r->peak[0], dir, job->stem);
	fflush(stdout);
}

static int optimise(ins_session *s, const ins_job *job, stages *st, fv_tensor *x)
{
	trace tr = {.s = s, .job = job, .last = now()};
	int progress = s->a->progress;
	tr.live = !s->a->quiet && (progress == 1 || (progress < 0 && isatty(STDOUT_FILENO)));
	const fv_config_node *mi = fv_node_path(fv_config_root(s->cfg), "stopper.max_iterations");
	if (mi == NULL || fv_node_to_int(mi, &tr.max_iterations) != FV_OK)
		tr.max_iterations = 0;
	fv_clear_error();
	fv_optimize_args args = {.struct_size = sizeof args, .model = s->model,
	                         .objective = st->objective, .stopper = st->stopper,
	                         .optimizer = &st->optim, .n_penalties = st->n_pen,
	                         .penalties = st->pen, .n_postprocessors = st->n_post,
	                         .postprocessors = st->post, .on_iteration = record, .ud = &tr};
	double t0 = tr.last;
	int rc = fv_optimize_stimulus(x, &args, NULL) == FV_OK ? CLI_OK : CLI_FAILED;
	result r = {.total_seconds = now() - t0};
	if (tr.live && rc != CLI_OK)
		putchar('\n');
	if (rc != CLI_OK)
		cli_fail("%s", fv_errmsg());
	else
		rc = evaluate(s, job, st, x, &r);
	if (rc == CLI_OK)
		rc = write_outputs(s, job, &tr, &r, x);
	if (rc == CLI_OK)
		report(s, job, &tr, &r);
	free(r.response_trace);
	trace_free(&tr);
	return rc;
}

int ins_run(ins_session *s, const ins_job *job)
{
	stages st = {0};
	int rc = build_stages(s, job, &st);
	fv_tensor *x = rc == CLI_OK ? start_stimulus(s, &st) : NULL;
	if (rc == CLI_OK && x == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		rc = optimise(s, job, &st, x);
	fv_tensor_free(x);
	stages_free(&st);
	return rc;
}

int ins_main(int argc, char **argv, ins_args *common, void *args, const char *objective_default,
             ins_parse_fn parse, ins_work_fn work)
{
	common->progress = -1;
	common->overrides = calloc((size_t)argc, sizeof *common->overrides);
	if (common->overrides == NULL)
		return cli_fail("out of memory");
	int rc = parse(argc, argv, args);
	ins_session *s = rc == CLI_OK ? ins_open(common, objective_default, &rc) : NULL;
	if (s != NULL)
		rc = work(s, args);
	ins_close(s);
	free(common->overrides);
	return rc;
}
