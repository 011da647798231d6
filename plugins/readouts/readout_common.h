/*
** readout_common.h: what every readout plugin of this directory shares.
**
** openretina's readouts all derive from one base class (Readout in
** openretina/modules/readout/base.py) and take their geometry the same way;
** the helpers here are that base class for fovea's readouts:
**
**   - the input shape (c, t, w, h) and the neuron count, from the
**     component's own `in_shape` / `outdims` keys or, when the spec leaves
**     them out, from what the model gives in fv_build_args;
**   - the mean activity a bias is initialised from, and
**     Readout.initialize_bias() with its "NOT initialized" warning;
**   - dense arrays written as nested YAML lists (init_mask, init_grid, ...);
**   - the output nonlinearities openretina selects by name;
**   - the output of a linear readout (fv_linear_readout);
**   - the random initialisers (a seeded fv_ctx serves as the generator).
**
** It is compiled into each readout plugin (readout_common.c); its symbols
** stay hidden inside each shared object.
*/
#ifndef FOVEA_PLUGIN_READOUT_COMMON_H
#define FOVEA_PLUGIN_READOUT_COMMON_H

#include <fovea/plugin.h>

/* (c, t, w, h): the `in_shape` option when given, else the model's
** args->in_shape.  `who` names the component in messages. */
fv_status ro_in_shape(const char *who, const fv_int_list *opt, const fv_build_args *args,
                      int64_t out[4]);
/* The `outdims` option when given (not FV_NONE_INT), else args->n_neurons. */
fv_status ro_outdims(const char *who, int64_t opt, const fv_build_args *args, int64_t *out);
/* Both: the readout's input shape and its number of neurons. */
fv_status ro_dims(const char *who, const fv_int_list *in_shape, int64_t outdims,
                  const fv_build_args *args, int64_t shape[4], int64_t *n);

/* The mean activity of n neurons: the YAML list `node` when given, else
** args->mean_activity, else none (*out = NULL).  *out is a persistent copy
** the caller frees. */
fv_status ro_mean_activity(const char *who, const fv_config_node *node, const fv_build_args *args,
                           int64_t n, fv_tensor **out);

/* openretina's Readout.initialize_bias(): copy `mean` into `bias`, or
** with no mean fill it with 0 and warn (once per process, on stderr). */
fv_status ro_initialize_bias(const char *who, fv_tensor *bias, const fv_tensor *mean);

/* The bias of n neurons at creation: ro_initialize_bias() with the mean
** activity of ro_mean_activity().  When no mean is known the bias gets the
** 0 and the warning if `warn_without`, else stays as it is.  `bias` may be
** NULL (a readout without one): the mean is then only checked. */
fv_status ro_init_bias(const char *who, fv_tensor *bias, int64_t n, const fv_config_node *node,
                       const fv_build_args *args, bool warn_without);

/* Print "UserWarning: MSG" on stderr the first time `*flag` is false. */
void ro_warn_once(bool *flag, const char *msg);

/* A dense array read from nested YAML sequences of numbers. */
typedef struct ro_array {
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	int64_t numel;
	double *v;
} ro_array;

/* Read `n` (a number or nested lists of equal length) into `out`. */
fv_status ro_array_from_node(const char *who, const char *key, const fv_config_node *n,
                             ro_array *out);
void ro_array_free(ro_array *a);

/* Output nonlinearities selectable by name, as torch functions. */
typedef enum ro_nonlin {
	RO_IDENTITY,
	RO_SOFTPLUS,
	RO_EXP,
	RO_RELU,
	RO_ELU,
	RO_SIGMOID,
	RO_TANH
} ro_nonlin;

/* Accepts "softplus", "exp", ... and dotted callables such as
** "torch.nn.functional.softplus" or "torch.exp" (the last component counts).
** `spec` (may be NULL) places the message. */
fv_status ro_nonlin_parse(const fv_config_node *spec, const char *who, const char *key,
                          const char *name, ro_nonlin *out);
fv_tensor *ro_nonlin_apply(fv_ctx *ctx, ro_nonlin f, fv_tensor *x);

/* Sum, or mean when `mean`, of every element. */
fv_tensor *ro_reduce_all(fv_ctx *ctx, fv_tensor *x, bool mean);

/* Initialisers drawing from a seeded context: ro_rng_new() makes one (NULL
** with the message when out of memory; the caller frees it). */
fv_ctx *ro_rng_new(const char *who, uint64_t seed);
void ro_fill_normal(fv_ctx *rng, fv_tensor *t, double mean, double std);
void ro_fill_uniform(fv_ctx *rng, fv_tensor *t, double lo, double hi);

/* A new parameter / buffer, with the readout's name in the message on failure. */
fv_tensor *ro_param(fv_module *m, const char *who, const char *name, int ndim,
                    const int64_t *shape);
fv_tensor *ro_buffer(fv_module *m, const char *who, const char *name, int ndim,
                     const int64_t *shape);

/* Instantiate a registered regularizer as the child `name` of m
** (FactorizedReadout's FlatLaplaceL23dnorm, LNPReadout's smooth_reg_fn). */
fv_module *ro_child(fv_module *m, const fv_build_args *args, const char *who, const char *target,
                    const char *yaml, const char *name);

/* ---- linear readouts (fv_linear_readout) ----
** A readout that is a linear map of each frame gives it as an
** fv_linear_readout; its forward, and a container running several sessions
** at once, compute the output the same way. */

/* The activation of an fv_linear_readout for `f` (NULL for the identity).
** Each plugin has its own copy of these functions: equal pointers mean the
** same function of the same plugin. */
fv_tensor *(*ro_nonlin_fn(ro_nonlin f))(fv_ctx *ctx, fv_tensor *x);
/* x (N, c, t, w, h) as the rows (N*t, c*w*h) the weights multiply. */
fv_tensor *ro_time_rows(fv_ctx *ctx, fv_tensor *x);
/* The output (N, t, n) activation(rows(x) weight^T * scale + bias) of one
** session's readout, or of several sessions' stacked. */
fv_tensor *ro_linear_output(fv_ctx *ctx, fv_tensor *x, const fv_linear_readout *lin);

#endif
