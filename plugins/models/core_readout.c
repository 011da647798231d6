/*
** core_readout.c: UnifiedCoreReadout, openretina's core + multi-session
** readout model (openretina.models.core_readout.UnifiedCoreReadout).
**
** Construction follows openretina step by step:
**   1. the core is instantiated from the `core` spec with
**      n_neurons_dict added and, when hidden_channels is given,
**      channels = (in_shape[0], *hidden_channels);
**   2. unless the readout spec sets in_shape, the core is run once on
**      zeros of shape (1, *in_shape) -- in train mode, without grad, as
**      compute_readout_input_shape() does, so every BatchNorm leaves
**      construction with running_var 0.9 and num_batches_tracked 1 -- and
**      the output shape without the batch dim becomes the readout's in_shape;
**   3. the readout is instantiated from the `readout` spec with in_shape,
**      n_neurons_dict and mean_activity_dict (from data_info) added.
** The derived specs are written as YAML flow text and parsed again, so the
** children get exactly the keyword arguments openretina's Hydra call gives.
**
** forward(x, data_key) = readout(core(x), data_key) and
** regularizer(data_key) = core.regularizer() + readout.regularizer(data_key),
** the two penalties BaseCoreReadout.training_step adds to the loss.  The
** loss, optimizer and scheduler options are accepted for the trainer.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/plugin.h>

#define NAME "UnifiedCoreReadout"

/* The options (the specs are read during create()), then the children. */
typedef struct core_readout {
	fv_int_list in_shape;
	const fv_config_node *n_neurons_dict;
	const fv_config_node *core_spec;
	const fv_config_node *readout_spec;
	fv_int_list hidden_channels;
	double learning_rate;
	const fv_config_node *loss;
	const fv_config_node *evaluation_loss;
	const fv_config_node *data_info;
	const fv_config_node *optimizer;
	const fv_config_node *lr_scheduler;
	fv_module *core;    /* child "core" */
	fv_module *readout; /* child "readout" */
} core_readout;

static const fv_option cr_options[] = {
	FV_OPT("in_shape", INT_LIST, core_readout, in_shape, NULL,
	       "stimulus shape (channels, time, height, width)", .min = 1, .max = 1e9,
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("n_neurons_dict", NODE, core_readout, n_neurons_dict, NULL,
	       "number of neurons of each session: {session: n}", .flags = FV_OPT_REQUIRED),
	FV_OPT("core", NODE, core_readout, core_spec, NULL, "the core's spec (a map with _target_)",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("readout", NODE, core_readout, readout_spec, NULL,
	       "the multi-session readout's spec (a map with _target_)", .flags = FV_OPT_REQUIRED),
	FV_OPT("hidden_channels", INT_LIST, core_readout, hidden_channels, "null",
	       "when set, the core's channels become (in_shape[0], *hidden_channels)", .min = 1,
	       .max = 1e9, .flags = FV_OPT_NULLABLE),
	FV_OPT("learning_rate", FLOAT, core_readout, learning_rate, "0.001",
	       "learning rate (used by the trainer)"),
	FV_OPT("loss", NODE, core_readout, loss, "null",
	       "training loss spec (trainer; default PoissonLoss3d)", .flags = FV_OPT_NULLABLE),
	FV_OPT("evaluation_loss", NODE, core_readout, evaluation_loss, "null",
	       "evaluation metric spec (trainer; default CorrelationLoss3d(avg=True))",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("data_info", NODE, core_readout, data_info, "null",
	       "data information; its mean_activity_dict initialises the readout biases",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("optimizer", NODE, core_readout, optimizer, "null",
	       "optimizer spec (trainer; default AdamW)", .flags = FV_OPT_NULLABLE),
	FV_OPT("lr_scheduler", NODE, core_readout, lr_scheduler, "null",
	       "learning-rate scheduler spec (trainer)", .flags = FV_OPT_NULLABLE),
	{0},
};

/* ---- derived specs as YAML flow text -------------------------------------------- */

typedef struct text {
	char *p;
	size_t len, cap;
	bool failed;
} text;

static void put(text *t, const char *fmt, ...) FV_PRINTF(2, 3);

static void put(text *t, const char *fmt, ...)
{
	if (t->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || t->len + (size_t)n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (n >= 0 && cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *p = n < 0 ? NULL : realloc(t->p, cap);
		if (p == NULL) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* A plain scalar that reads back the same inside a flow collection:
** numbers, booleans, names, dotted paths.  Anything else was a string in
** the first place, so quoting it keeps its meaning. */
static bool plain_is_safe(const char *s)
{
	if (s[0] == '\0' || s[0] == ' ' || s[strlen(s) - 1] == ' ')
		return false;
	if (strchr("?:,[]{}#&*!|>'\"%@`", s[0]) != NULL)
		return false;
	if (s[0] == '-' && (s[1] == '\0' || s[1] == ' '))
		return false;
	return strpbrk(s, ",[]{}:#'\"\n\r\t") == NULL;
}

static void put_scalar(text *t, const char *s, bool quoted)
{
	if (!quoted && plain_is_safe(s)) {
		put(t, "%s", s);
		return;
	}
	put(t, "'");
	for (const char *c = s; *c; c++) {
		if (*c == '\'')
			put(t, "''");
		else
			put(t, "%c", *c);
	}
	put(t, "'");
}

static void put_node(text *t, const fv_config_node *n)
{
	size_t size = fv_node_size(n);
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL:
		put(t, "null");
		return;
	case FV_NODE_SCALAR:
		put_scalar(t, fv_node_text(n), fv_node_quoted(n));
		return;
	case FV_NODE_SEQ:
		put(t, "[");
		for (size_t i = 0; i < size; i++) {
			put(t, i ? ", " : "");
			put_node(t, fv_node_at(n, i));
		}
		put(t, "]");
		return;
	case FV_NODE_MAP:
		put(t, "{");
		for (size_t i = 0; i < size; i++) {
			put(t, i ? ", " : "");
			put_scalar(t, fv_node_key_at(n, i), false);
			put(t, ": ");
			put_node(t, fv_node_at(n, i));
		}
		put(t, "}");
		return;
	}
}

/* A key whose value openretina's `key in cfg` treats as absent: a missing
** value (???) or null. */
static bool is_absent(const fv_config_node *n)
{
	if (n == NULL || fv_node_is_null(n))
		return true;
	return fv_node_kind(n) == FV_NODE_SCALAR && !fv_node_quoted(n) &&
	       strcmp(fv_node_text(n), "???") == 0;
}

typedef struct extra_key {
	const char *key;
	const char *value; /* flow YAML */
} extra_key;

/* `spec` with the `extra` keys set (replacing the spec's own). */
static char *derive_spec(const fv_config_node *spec, const extra_key *extra, int n_extra)
{
	text t = {0};
	put(&t, "{");
	bool first = true;
	for (size_t i = 0; i < fv_node_size(spec); i++) {
		const char *key = fv_node_key_at(spec, i);
		bool replaced = false;
		for (int e = 0; e < n_extra; e++)
			replaced |= strcmp(extra[e].key, key) == 0;
		if (replaced)
			continue;
		put(&t, first ? "" : ", ");
		put_scalar(&t, key, false);
		put(&t, ": ");
		put_node(&t, fv_node_at(spec, i));
		first = false;
	}
	for (int e = 0; e < n_extra; e++) {
		put(&t, first ? "%s: %s" : ", %s: %s", extra[e].key, extra[e].value);
		first = false;
	}
	put(&t, "}");
	if (t.failed) {
		free(t.p);
		fv_error(FV_ERR_NOMEM, "out of memory deriving a child spec");
		return NULL;
	}
	return t.p;
}

static char *node_flow(const fv_config_node *n)
{
	text t = {0};
	if (n == NULL)
		put(&t, "null");
	else
		put_node(&t, n);
	if (t.failed) {
		free(t.p);
		fv_error(FV_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return t.p;
}

static void shape_flow(char *buf, size_t size, int n, const int64_t *v)
{
	size_t len = (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, i ? ", %lld" : "%lld", (long long)v[i]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

/* Instantiate `spec` + `extra` as child `name` of m. */
static fv_module *build_child(fv_module *m, const fv_build_args *args, const char *name,
                              const fv_config_node *spec, const extra_key *extra, int n_extra,
                              const fv_build_args *child_args)
{
	if (fv_node_kind(spec) != FV_NODE_MAP) {
		fv_error_at(spec, FV_ERR_CONFIG, "%s: expected a map with a _target_", name);
		return NULL;
	}
	char *yaml = derive_spec(spec, extra, n_extra);
	if (yaml == NULL)
		return NULL;
	fv_config *cfg = fv_config_load_derived(yaml, strlen(yaml), spec);
	free(yaml);
	if (cfg == NULL)
		return NULL;
	fv_module *child = fv_instantiate(args->registry, fv_config_root(cfg), child_args);
	fv_config_free(cfg);
	if (child == NULL)
		return NULL;
	/* add_child owns the child whatever happens */
	return fv_module_add_child(m, name, child) == FV_OK ? child : NULL;
}

/* ---- construction ---------------------------------------------------------------- */

static fv_status build_core(fv_module *m, core_readout *cr, const fv_build_args *args,
                            fv_build_args *child_args)
{
	char channels[512];
	int64_t ch[64];
	size_t n_hidden = cr->hidden_channels.is_set ? cr->hidden_channels.n : 0;
	if (n_hidden + 1 > sizeof ch / sizeof ch[0])
		return fv_error(FV_ERR_CONFIG, "hidden_channels: at most 63 layers, got %zu",
		                n_hidden);
	ch[0] = cr->in_shape.v[0];
	for (size_t i = 0; i < n_hidden; i++)
		ch[i + 1] = cr->hidden_channels.v[i];
	shape_flow(channels, sizeof channels, (int)n_hidden + 1, ch);
	char *neurons = node_flow(cr->n_neurons_dict);
	if (neurons == NULL)
		return FV_ERR_NOMEM;
	extra_key extra[2] = {{"n_neurons_dict", neurons}, {"channels", channels}};
	cr->core = build_child(m, args, "core", cr->core_spec, extra, cr->hidden_channels.is_set ? 2 : 1,
	                      child_args);
	free(neurons);
	return cr->core != NULL ? FV_OK : fv_errcode();
}

/* openretina's compute_readout_input_shape(): the core's output on zeros
** (1, *in_shape), computed in train mode under no_grad. */
static fv_status core_output_shape(core_readout *cr, int *ndim, int64_t *shape)
{
	int64_t in[5] = {1, cr->in_shape.v[0], cr->in_shape.v[1], cr->in_shape.v[2], cr->in_shape.v[3]};
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_ctx_set_grad_enabled(ctx, false);
	fv_module_set_training(cr->core, true);
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fv_tensor *y = fv_module_forward(cr->core, ctx, fv_ctx_zeros(ctx, 5, in), &fa);
	fv_status rc = FV_OK;
	if (y == NULL) {
		fv_error_prefix("running the core on zeros %s to find the readout's in_shape: ",
		                fv_shape_str(5, in));
		rc = FV_ERR_SHAPE;
	} else {
		*ndim = y->ndim - 1;
		memcpy(shape, y->shape + 1, (size_t)*ndim * sizeof *shape);
	}
	fv_ctx_free(ctx);
	return rc;
}

static fv_status build_readout(fv_module *m, core_readout *cr, const fv_build_args *args,
                               fv_build_args *child_args)
{
	extra_key extra[3];
	int n_extra = 0;
	char in_shape[512];
	const fv_config_node *given = fv_node_get(cr->readout_spec, "in_shape");
	if (is_absent(given)) {
		fv_status rc = core_output_shape(cr, &child_args->in_ndim, child_args->in_shape);
		if (rc != FV_OK)
			return rc;
		shape_flow(in_shape, sizeof in_shape, child_args->in_ndim, child_args->in_shape);
		extra[n_extra++] = (extra_key){"in_shape", in_shape};
	}
	const fv_config_node *mean = cr->data_info != NULL && fv_node_kind(cr->data_info) == FV_NODE_MAP
	                                     ? fv_node_get(cr->data_info, "mean_activity_dict")
	                                     : NULL;
	char *neurons = node_flow(cr->n_neurons_dict), *means = node_flow(mean);
	fv_status rc = FV_ERR_NOMEM;
	if (neurons != NULL && means != NULL) {
		extra[n_extra++] = (extra_key){"n_neurons_dict", neurons};
		extra[n_extra++] = (extra_key){"mean_activity_dict", means};
		child_args->seed = args->seed + 1;
		cr->readout = build_child(m, args, "readout", cr->readout_spec, extra, n_extra, child_args);
		rc = cr->readout != NULL ? FV_OK : fv_errcode();
	}
	free(neurons);
	free(means);
	return rc;
}

static fv_status check_options(const core_readout *o)
{
	if (o->in_shape.n != 4)
		return fv_error(FV_ERR_CONFIG,
		                "in_shape: expected (channels, time, height, width), got %zu "
		                "sizes",
		                o->in_shape.n);
	if (fv_node_kind(o->n_neurons_dict) != FV_NODE_MAP || fv_node_size(o->n_neurons_dict) == 0)
		return fv_error_at(o->n_neurons_dict, FV_ERR_CONFIG,
		                   "n_neurons_dict: expected a map {session: neurons} "
		                   "with at least one session");
	return FV_OK;
}

static fv_status cr_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	core_readout *cr = fv_module_priv(m);
	fv_status rc = check_options(cr);
	if (rc != FV_OK)
		return rc;
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "no registry to build the core and readout from");
	fv_build_args child_args = {.struct_size = sizeof child_args,
	                            .registry = args->registry,
	                            .seed = args->seed};
	rc = build_core(m, cr, args, &child_args);
	if (rc == FV_OK)
		rc = build_readout(m, cr, args, &child_args);
	/* a torch module starts in train mode */
	if (rc == FV_OK)
		fv_module_set_training(m, true);
	return rc;
}

/* ---- forward and regularizer ----------------------------------------------------------- */

static fv_tensor *cr_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	const core_readout *cr = fv_module_priv(m);
	/* openretina's BaseCoreReadout calls core(x) without the data_key: a
	** core's per-session state (ConvGRUCore's batch adaptation) is unused */
	fv_forward_args core_fa = FV_FORWARD_ARGS_INIT;
	if (fa != NULL) /* a caller built against an older, shorter struct */
		memcpy(&core_fa, fa, fa->struct_size < sizeof core_fa ? fa->struct_size : sizeof core_fa);
	core_fa.struct_size = sizeof core_fa;
	core_fa.data_key = NULL;
	fv_tensor *features = fv_module_forward(cr->core, ctx, x, &core_fa);
	if (features == NULL) {
		fv_error_prefix(NAME ": core: ");
		return NULL;
	}
	fv_tensor *y = fv_module_forward(cr->readout, ctx, features, fa);
	if (y == NULL)
		fv_error_prefix(NAME ": readout: ");
	return y;
}

static fv_tensor *cr_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const core_readout *cr = fv_module_priv(m);
	fv_tensor *core = fv_module_regularizer(cr->core, ctx, fa);
	if (core == NULL) {
		fv_error_prefix(NAME ": core: ");
		return NULL;
	}
	fv_tensor *readout = fv_module_regularizer(cr->readout, ctx, fa);
	if (readout == NULL) {
		fv_error_prefix(NAME ": readout: ");
		return NULL;
	}
	return fv_add(ctx, core, readout);
}

/* ---- what figures ask, answered by the parts ---------------------------------------------- */

static fv_status cr_neuron_positions(const fv_module *m, const char *session, int64_t n,
                                     double *row_col, int64_t map_hw[2])
{
	const core_readout *cr = fv_module_priv(m);
	return fv_module_neuron_positions(cr->readout, session, n, row_col, map_hw);
}

static fv_status cr_first_layer_filters(const fv_module *m, fv_tensor **out)
{
	const core_readout *cr = fv_module_priv(m);
	return fv_module_first_layer_filters(cr->core, out);
}

static fv_status cr_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out)
{
	const core_readout *cr = fv_module_priv(m);
	return fv_module_layer_filters(cr->core, layer, out);
}

/* ---- descriptor -------------------------------------------------------------------------- */

static const char *const cr_names[] = {
	NAME,
	"openretina.models.core_readout.UnifiedCoreReadout",
	"openretina.models.UnifiedCoreReadout",
	NULL,
};

static const fv_component core_readout_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = cr_names,
	.doc = "a shared core followed by a multi-session readout, as openretina's "
	       "UnifiedCoreReadout",
	.options = cr_options,
	.priv_size = sizeof(core_readout),
	.create = cr_create,
	.forward = cr_forward,
	.regularizer = cr_regularizer,
	.neuron_positions = cr_neuron_positions,
	.first_layer_filters = cr_first_layer_filters,
	.layer_filters = cr_layer_filters,
};

FV_PLUGIN_DEFINE("models-core-readout", &core_readout_component);
