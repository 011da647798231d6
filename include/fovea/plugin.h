/*
** plugin.h: the plugin ABI.  What a component declares (kind, names, option
** table, callbacks) and what the framework gives it (modules with named
** parameters, typed options already parsed and checked).
**
** A plugin is a shared object exporting exactly one symbol:
**
**     FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void);
**
** returning a static, read-only fv_plugin that lists its components.  The
** framework refuses a plugin whose abi_major differs from its own, and reads
** only the fields a component's struct_size covers, so structs grow only at
** their end.  A plugin never sees YAML: the framework parses the component's
** map against its option table (FFmpeg AVOption style), applies defaults,
** checks types, ranges and choices, rejects unknown keys naming the closest
** valid one, and writes the values straight into the module's private state
** (priv_size, as FFmpeg's AVFilter.priv_size) before create().
**
** ABI history: 1.0 had options parsed into a temporary struct of
** options_size and the private state allocated by the plugin; 1.1 added
** priv_size and the optional callbacks after it; 1.2 the DATA kind and its
** data_step() (see data_plugin.h); 1.3 layer_filters().  1.0 plugins keep
** working.
*/
#ifndef FOVEA_PLUGIN_H
#define FOVEA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FV_ABI_MAJOR 1
#define FV_ABI_MINOR 3

#define FV_PLUGIN_EXPORT __attribute__((visibility("default")))
#define FV_PLUGIN_ENTRY_SYMBOL "fv_plugin_entry"

typedef enum fv_kind {
	FV_KIND_CORE,
	FV_KIND_READOUT,
	FV_KIND_OBJECTIVE,
	FV_KIND_REGULARIZER,
	FV_KIND_STOPPER,
	FV_KIND_LOSS,
	FV_KIND_REDUCER,
	FV_KIND_MODEL,      /* compositions, e.g. core + readout */
	FV_KIND_LAYER,      /* building blocks y = f(x): nonlinearities, scaling, channel sums */
	FV_KIND_DATA,       /* data-reading steps: openretina's data_io / dataloader functions */
	FV_KIND_COUNT
} fv_kind;

FV_API const char *fv_kind_name(fv_kind kind); /* "core", "readout", ... */

/* ---- options as data ------------------------------------------------------- */

typedef enum fv_opt_type {
	FV_OPT_BOOL,       /* bool */
	FV_OPT_INT,        /* int64_t */
	FV_OPT_FLOAT,      /* double (ints accepted) */
	FV_OPT_STRING,     /* const char * */
	FV_OPT_ENUM,       /* const char *, one of `choices` ("a|b|c") */
	FV_OPT_INT_LIST,   /* fv_int_list */
	FV_OPT_FLOAT_LIST, /* fv_float_list */
	FV_OPT_NODE,       /* const fv_config_node *: any YAML value, checked by the plugin */
	FV_OPT_KWARGS      /* no value: see FV_OPT_KWARGS_ROW */
} fv_opt_type;

enum {
	FV_OPT_REQUIRED = 1 << 0,       /* no default: the key must be given */
	FV_OPT_NULLABLE = 1 << 1,       /* null / None accepted (see FV_NONE_*) */
	FV_OPT_SCALAR_AS_LIST = 1 << 2, /* lists: a scalar x means [x] */
	FV_OPT_NO_EFFECT = 1 << 3,      /* accepted for compatibility, without effect: the key
	                                ** stays unread (fv_config_unused lists it) */
};

/* How a nullable option reads when null. */
#define FV_NONE_INT INT64_MIN
/* FLOAT: NAN; STRING/ENUM/NODE: NULL; lists: .is_set == false. */

typedef struct fv_int_list {
	size_t n;
	int64_t *v;
	bool is_set;
} fv_int_list;

typedef struct fv_float_list {
	size_t n;
	double *v;
	bool is_set;
} fv_float_list;

typedef struct fv_option {
	const char *name;   /* the YAML key: openretina's argument name */
	fv_opt_type type;
	size_t offset;      /* offsetof(the plugin's private (1.0: options) struct, field) */
	const char *def;    /* default, written as YAML ("true", "0.1", "[3, 3]", "null") */
	double min, max;    /* inclusive range of INT/FLOAT values and list items; unchecked when min == max */
	unsigned flags;
	const char *choices; /* ENUM: "custom_separable|separable|full" */
	const char *doc;
} fv_option;

/* One row of an option table, every field named:
**
**     FV_OPT("init_std", FLOAT, linear, init_std, "0.01", "std of the initial weights",
**            .min = 0, .max = 10),
**
** is the YAML key, the type without its FV_OPT_ prefix, the struct and field
** the value is parsed into, the default as YAML (NULL: none), the one-line
** doc, then any of .min, .max (an inclusive range; unchecked when equal),
** .flags and .choices.  A table ends with {0}.  (The doc opens the variable
** arguments so that a row without extras is still ISO C.) */
#define FV_OPT(name_, type_, struct_, field_, def_, ...)                                  \
	{.name = (name_), .type = FV_OPT_##type_, .offset = offsetof(struct_, field_), \
	 .def = (def_), .doc = __VA_ARGS__}

/* The row of a component whose openretina class takes **kwargs: keys the
** table does not name are then accepted, as Python accepts them, and left
** unread, so that the not-used report (fv_config_unused) lists them and
** --strict refuses them -- except a plausible typo of an option, which is
** still an error with its correction.  Without this row an unknown key is
** an error. */
#define FV_OPT_KWARGS_ROW(doc_) {.name = "**kwargs", .type = FV_OPT_KWARGS, .doc = (doc_)}

/* Parse `map` (may be NULL: all defaults) against `table` (ended by an entry
** with name == NULL) into `opts`.  Keys listed in `ignore` (NULL-terminated,
** may be NULL) are skipped: `_target_` always is.  `what` names the
** component in messages. */
FV_API fv_status fv_options_parse(const fv_option *table, const fv_config_node *map, void *opts,
                                  const char *what, const char *const *ignore);
/* Free what fv_options_parse allocated inside `opts` (lists). */
FV_API void fv_options_free(const fv_option *table, void *opts);
/* Human-readable documentation of an option table. */
FV_API void fv_options_describe(const fv_option *table, FILE *out);

/* ---- modules ------------------------------------------------------------------ */

/* An instantiated component: its descriptor, its private state (`priv`,
** the plugin's own struct: allocated and freed by the framework when the
** component declares priv_size), its named tensors and its children.  Tensor
** names are openretina state_dict names; a child's tensors are prefixed
** with the child's name ("features.layer0.conv.weight"). */
typedef struct fv_module fv_module;
typedef struct fv_component fv_component;
typedef struct fv_registry fv_registry;
typedef struct fv_model fv_model; /* a trained model as seen by objectives */
struct fv_step_terms;             /* a training step's terms (trainer.h) */
struct fv_data_inputs;            /* a data step's nested values (data_plugin.h) */
struct fv_dvalue;                 /* a data step's value (data_plugin.h) */

FV_API void *fv_module_priv(const fv_module *m);
/* For components without priv_size (ABI 1.0 style), which own their state. */
FV_API void fv_module_set_priv(fv_module *m, void *priv);
FV_API const fv_component *fv_module_component(const fv_module *m);
FV_API const char *fv_module_name(const fv_module *m);
FV_API bool fv_module_training(const fv_module *m);
FV_API void fv_module_set_training(fv_module *m, bool training); /* recursive */
/* A trainable parameter / a buffer (running stats), zero-filled, owned by m. */
FV_API fv_tensor *fv_module_add_param(fv_module *m, const char *name, int ndim,
                                      const int64_t *shape);
FV_API fv_tensor *fv_module_add_buffer(fv_module *m, const char *name, int ndim,
                                       const int64_t *shape);
/* A non-persistent buffer (torch's register_buffer(persistent=False)),
** created on first use and replaced when the shape changes: found by
** fv_module_tensor() but not part of the state_dict, checkpoints or
** fv_module_foreach_tensor().  E.g. CorrelationLoss3d's
** _per_neuron_correlations after each forward. */
FV_API fv_tensor *fv_module_set_state(fv_module *m, const char *name, int ndim,
                                      const int64_t *shape);
/* Adopt `child` under `name`; m frees it. */
FV_API fv_status fv_module_add_child(fv_module *m, const char *name, fv_module *child);
FV_API fv_module *fv_module_child(const fv_module *m, const char *name);
/* Look up a tensor by its full dotted name below m. */
FV_API fv_tensor *fv_module_tensor(const fv_module *m, const char *name);
/* Visit every tensor below m with its full name, params and buffers. */
typedef int (*fv_tensor_visit_fn)(void *ud, const char *name, fv_tensor *t, bool is_param);
FV_API int fv_module_foreach_tensor(const fv_module *m, fv_tensor_visit_fn fn, void *ud);
FV_API void fv_module_free(fv_module *m);

/* ---- what create() and the callbacks receive ---------------------------- */

typedef struct fv_build_args {
	size_t struct_size;          /* sizeof(fv_build_args) of the caller */
	fv_registry *registry;       /* to instantiate nested components */
	const fv_config_node *spec;  /* the component's own YAML map */
	const char *session;         /* readouts: the session (data key), else NULL */
	int in_ndim;                 /* input shape without the batch dim, */
	int64_t in_shape[FV_MAX_DIMS]; /* e.g. (C, T, H, W) for readouts */
	int64_t n_neurons;           /* readouts */
	const fv_tensor *mean_activity; /* readouts: (n_neurons) or NULL */
	uint64_t seed;               /* initialisation */
} fv_build_args;

typedef enum fv_reduction {
	FV_REDUCE_DEFAULT = 0, /* the callee's default, as openretina's signature */
	FV_REDUCE_SUM,
	FV_REDUCE_MEAN,
	FV_REDUCE_NONE         /* unreduced (openretina's reduction=None) */
} fv_reduction;

typedef struct fv_forward_args {
	size_t struct_size;
	const char *data_key;  /* session; NULL = all (multi-session readouts) */
	int sample;            /* -1: module default; 0/1: sample positions or not */
	fv_reduction reduction; /* regularizers: openretina's reduction= argument
	                           ("sum", "mean", None) or avg= flag (True: MEAN,
	                           False: SUM); DEFAULT: the module's own default */
	bool crop_input;       /* models: x is the full stimulus as openretina's
	                          training_step receives it; apply the model's own
	                          input preparation (e.g. SingleCellSeparatedLNP's
	                          crop around rf_location) before forward */
	fv_tensor *conditioning; /* conditioned cores (ConditionedGRUCore): the
	                            (B, cond_dim) conditioning, or NULL (zeros);
	                            read only when struct_size covers it */
} fv_forward_args;

/* The defaults every caller starts from (sample -1, sums, no crop). */
#define FV_FORWARD_ARGS_INIT {.struct_size = sizeof(fv_forward_args), .sample = -1}

/* A readout's output as one linear map of each frame, scaled, shifted and
** passed through an elementwise function:
**
**     y = activation(rows(x) weight^T * scale + bias)         (B*T, n) -> (B, T, n)
**
** where rows(x) is the input x (B, C, T, H, W) as (B, T, C, H, W) flattened
** to (B*T, C*H*W).  A container of several such readouts (one per session)
** stacks their weights and runs every session in one product. */
typedef struct fv_linear_readout {
	fv_tensor *weight; /* (n, C*H*W): a module tensor or one of the call's context */
	fv_tensor *scale;  /* (n), or NULL for 1 */
	fv_tensor *bias;   /* (n), or NULL for 0 */
	fv_tensor *(*activation)(fv_ctx *ctx, fv_tensor *y); /* NULL: the identity */
} fv_linear_readout;

/* The extra forward arguments some of openretina's losses take beside
** (output, target), by name: CelltypePoissonLoss3d's group_assignment and
** group_counts, L1CorrelationLoss3d's pre_ca (the second item of its
** `output` pair).  Read them with fv_loss_extra(). */
typedef struct fv_loss_extras {
	size_t n;
	const char *const *names;
	fv_tensor *const *values;
} fv_loss_extras;

/* The extra named `name`, or NULL (ex may be NULL). */
static inline fv_tensor *fv_loss_extra(const fv_loss_extras *ex, const char *name)
{
	for (size_t i = 0; ex != NULL && i < ex->n; i++)
		if (strcmp(ex->names[i], name) == 0)
			return ex->values[i];
	return NULL;
}

/* ---- the component descriptor ----------------------------------------------- */

/* The registry refuses at load a component without the callbacks its kind
** is used through: forward (CORE, READOUT, REDUCER, MODEL), loss (LOSS),
** penalty or project (REGULARIZER), should_stop (STOPPER), objective
** (OBJECTIVE), data_step (DATA).  The others are optional; calling a missing one through
** fv_module_*() is an error naming the module. */
struct fv_component {
	size_t struct_size;        /* sizeof(fv_component) the plugin was built with */
	fv_kind kind;
	const char *const *names;  /* NULL-terminated; [0] is the fovea name, the rest
	                              aliases (openretina dotted class paths) */
	const char *doc;           /* one line */
	const fv_option *options;  /* ended by {NULL}; may be NULL (no options) */
	size_t options_size;       /* 1.0 style only: sizeof a temporary options struct;
	                              0 with priv_size */

	/* Build the module: parameters, buffers, children, the rest of the
	** private state.  With priv_size the options are already in
	** fv_module_priv(m) and `opts` is that same pointer.  Without
	** priv_size (1.0 style) the options are in a temporary struct `opts`,
	** freed right after.  NULL: there is nothing to build (ABI 1.0
	** required it). */
	fv_status (*create)(fv_module *m, const void *opts, const fv_build_args *args);
	/* Free what the plugin allocated itself, before its tensors and
	** children go.  With priv_size the framework frees the state and the
	** options' lists and strings after it: leave it NULL when that is all. */
	void (*destroy)(fv_module *m);

	/* CORE, READOUT, REDUCER, MODEL: y = f(x). */
	fv_tensor *(*forward)(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa);
	/* CORE, READOUT, MODEL: the penalty added to the training loss. */
	fv_tensor *(*regularizer)(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa);
	/* CORE: output shape (without batch) for an input shape (without batch). */
	fv_status (*output_shape)(fv_module *m, int in_ndim, const int64_t *in_shape, int *out_ndim,
	                          int64_t *out_shape);
	/* READOUT: set the bias from the mean activity (openretina's
	** initialize_bias); NULL mean -> plugin's default. */
	fv_status (*initialize_bias)(fv_module *m, const fv_tensor *mean_activity);
	/* LOSS: scalar (or per-neuron) loss of output vs target. */
	fv_tensor *(*loss)(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target);
	/* REGULARIZER: a differentiable penalty of x (weights or a stimulus),
	** and/or an in-place projection of a stimulus (postprocessor). */
	fv_tensor *(*penalty)(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa);
	fv_status (*project)(fv_module *m, fv_tensor *x);
	/* STOPPER: called once per iteration with the loss; true to stop. */
	bool (*should_stop)(fv_module *m, double loss);
	/* OBJECTIVE: the scalar to maximise for a stimulus. */
	fv_tensor *(*objective)(fv_module *m, fv_ctx *ctx, fv_model *model, fv_tensor *stimulus);

	/* ---- ABI 1.1 ---- */

	/* The size of the module's private state, options included.  When
	** nonzero the framework allocates it zero-filled, parses the options
	** into it (the table's offsets are offsets in it), hands it to
	** create(), and frees it, with the options' lists and strings, after
	** destroy().  String and enum options are copies that live as long as
	** the module; node options point into the configuration and are set to
	** NULL when create() returns (a DATA step's stay set: its module lives
	** only for its data_step() call).  0: the 1.0 behaviour (options_size). */
	size_t priv_size;

	/* What the framework and containers may ask a module instead of
	** reading its tensors or its private state (all optional). */

	/* READOUT, MODEL: where the neurons of `session` (NULL: the only one)
	** read the core's output, for figures: row_col[2 k] and row_col[2 k + 1]
	** get neuron k's (row, column) in pixels of the feature map, map_hw
	** its (height, width).  `n` is the caller's count of the session's
	** neurons; another count is an FV_ERR_SHAPE. */
	fv_status (*neuron_positions)(const fv_module *m, const char *session, int64_t n,
	                              double *row_col, int64_t map_hw[2]);
	/* CORE, MODEL: the first layer's filters as one dense kernel (out, in,
	** time, height, width), for figures: *out gets a new tensor the caller
	** frees. */
	fv_status (*first_layer_filters)(const fv_module *m, fv_tensor **out);
	/* READOUT: the readout as an fv_linear_readout for the input x (checked
	** as forward() would), in the context `ctx`. */
	fv_status (*linear_readout)(fv_module *m, fv_ctx *ctx, const fv_tensor *x,
	                            fv_linear_readout *out);
	/* LOSS: the loss with extra named inputs (see fv_loss_extras); a loss
	** without it takes none. */
	fv_tensor *(*loss_with)(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target,
	                        const fv_loss_extras *extras);
	/* MODEL: constraints put on the parameters after each optimizer step
	** (openretina's optimizer_step overrides, e.g. clamping a gain >= 0). */
	void (*after_optimizer_step)(fv_module *m);
	/* MODEL: the model's own training step (openretina's training_step when
	** it is not BaseCoreReadout's), filling the fv_step_terms of trainer.h
	** from the loss modules the trainer built; NULL: core + readout. */
	fv_status (*training_step)(fv_module *m, fv_ctx *ctx, fv_module *loss_fn,
	                           fv_module *eval_loss_fn, fv_tensor *x, fv_tensor *target,
	                           const char *session, struct fv_step_terms *out);

	/* ---- ABI 1.2 ---- */

	/* DATA: run the step (see data_plugin.h): its options are parsed into
	** the module's state as for any component, the values of its nested
	** steps are in `in`; *out gets the value it returns, owned by the
	** caller. */
	fv_status (*data_step)(fv_module *m, struct fv_data_inputs *in, struct fv_dvalue **out);

	/* ---- ABI 1.3 ---- */

	/* CORE, MODEL: the filters of core layer `layer` (0 is the first), as
	** first_layer_filters gives layer 0's; FV_ERR_NOTFOUND past the last
	** layer. */
	fv_status (*layer_filters)(const fv_module *m, int64_t layer, fv_tensor **out);
};

typedef struct fv_plugin {
	uint32_t abi_major;        /* FV_ABI_MAJOR */
	uint32_t abi_minor;        /* FV_ABI_MINOR */
	const char *name;          /* e.g. "readouts-gaussian-mask" */
	size_t n_components;
	const fv_component *const *components;
} fv_plugin;

typedef const fv_plugin *(*fv_plugin_entry_fn)(void);

/* The whole entry of a plugin file in one line, after its components
** (every plugin of fovea's tree uses it):
**
**     FV_PLUGIN_DEFINE("readouts-lnp", &lnp_component);
**
** defines the static component list, the fv_plugin of this ABI version and
** the exported fv_plugin_entry() returning it. */
#define FV_PLUGIN_DEFINE(plugin_name, ...)                                         \
	static const fv_component *const fv_plugin_components_[] = {__VA_ARGS__};   \
	static const fv_plugin fv_plugin_self_ = {                                  \
		.abi_major = FV_ABI_MAJOR,                                          \
		.abi_minor = FV_ABI_MINOR,                                          \
		.name = (plugin_name),                                              \
		.n_components = sizeof fv_plugin_components_ /                      \
		                sizeof fv_plugin_components_[0],                    \
		.components = fv_plugin_components_,                                \
	};                                                                          \
	FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void)                     \
	{                                                                           \
		return &fv_plugin_self_;                                            \
	}                                                                           \
	typedef int fv_plugin_define_needs_a_semicolon_

/* ---- registry and instantiation ------------------------------------------------- */

FV_API fv_registry *fv_registry_new(void);
FV_API void fv_registry_free(fv_registry *reg);
/* Load one plugin file. Errors name the file: dlerror text, missing
** entry symbol, ABI mismatch (both versions), names already registered
** (both files). */
FV_API fv_status fv_registry_load_file(fv_registry *reg, const char *path);
/* Load every *.so in a directory and in its immediate subdirectories
** (the build puts plugins in plugins/<kind>/), sorted by name. */
FV_API fv_status fv_registry_load_dir(fv_registry *reg, const char *dir);
/* The build's plugin directory, each dir of $FOVEA_PLUGIN_PATH, then the
** install prefix's plugin directory; missing directories are skipped. */
FV_API fv_status fv_registry_load_default(fv_registry *reg);
/* Register a plugin already in memory (`origin` names it in messages). */
FV_API fv_status fv_registry_add(fv_registry *reg, const fv_plugin *plugin, const char *origin);

/* Find a component by any of its names; `file` (may be NULL) gets its origin. */
FV_API const fv_component *fv_registry_find(const fv_registry *reg, const char *name,
                                            const char **file);
FV_API size_t fv_registry_size(const fv_registry *reg);
FV_API const fv_component *fv_registry_at(const fv_registry *reg, size_t i, const char **file);
/* The registered name closest to `name` (edit distance), or NULL. */
FV_API const char *fv_registry_closest(const fv_registry *reg, const char *name);

/* Instantiate the component named by spec's `_target_`: parse its options,
** create it.  Errors name file:line, the key and what was expected. */
FV_API fv_module *fv_instantiate(fv_registry *reg, const fv_config_node *spec,
                                 const fv_build_args *args);
/* The same for an explicit component and options map (spec may be NULL). */
FV_API fv_module *fv_instantiate_component(const fv_component *c, const fv_config_node *spec,
                                           const fv_build_args *args, const char *name);

/* Calls through a module's component, checking that the slot exists. */
FV_API fv_tensor *fv_module_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                    const fv_forward_args *fa);
FV_API fv_tensor *fv_module_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa);
FV_API fv_tensor *fv_module_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                    const fv_forward_args *fa);
FV_API fv_tensor *fv_module_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target);
/* The loss with extra named inputs: through loss_with() when the component
** has it, else loss(), refusing extras it would ignore. */
FV_API fv_tensor *fv_module_loss_with(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                      fv_tensor *target, const fv_loss_extras *extras);
FV_API fv_status fv_module_project(fv_module *m, fv_tensor *x);
FV_API fv_status fv_module_initialize_bias(fv_module *m, const fv_tensor *mean_activity);
FV_API fv_status fv_module_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape,
                                        int *out_ndim, int64_t *out_shape);
FV_API bool fv_module_should_stop(fv_module *m, double loss);
/* The model's after_optimizer_step(), if it has one: call it after every
** optimizer step of a training run. */
FV_API void fv_module_after_optimizer_step(fv_module *m);
/* The optional callbacks: a module without one gives FV_ERR_NOTFOUND, with
** a message naming it. */
FV_API fv_status fv_module_neuron_positions(const fv_module *m, const char *session, int64_t n,
                                            double *row_col, int64_t map_hw[2]);
FV_API fv_status fv_module_first_layer_filters(const fv_module *m, fv_tensor **out);
/* Layer `layer`'s filters; a component without layer_filters() gives layer
** 0 through first_layer_filters() and FV_ERR_NOTFOUND for the others. */
FV_API fv_status fv_module_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out);
FV_API fv_status fv_module_linear_readout(fv_module *m, fv_ctx *ctx, const fv_tensor *x,
                                          fv_linear_readout *out);

/* Instantiate a registered component by name with options given as YAML
** text (e.g. "padding: 0"), as a child helper for composite components:
** FactorizedReadout builds its LaplaceL2norm this way, so the child's
** buffers get openretina's state_dict names under the parent. */
FV_API fv_module *fv_instantiate_named(fv_registry *reg, const char *target, const char *yaml,
                                       const fv_build_args *args, const char *instance_name);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_PLUGIN_H */
