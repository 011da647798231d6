/*
** gru_core.h: what the files of the ConvGRUCore plugin share.
**
** gru_core.c is the component (ConvGRUCore and ConditionedGRUCore: options,
** layer stack, forward, regularizer); gru_cell.c is openretina's
** GRU_Module around a ConvGRUCell, the recurrent block that may close the
** layer stack (features.gru.gru.*).  The layers' convolutions come from
** the SimpleCoreWrapper plugin's simple_core_conv.c, compiled in.
*/
#ifndef FOVEA_PLUGIN_GRU_CORE_H
#define FOVEA_PLUGIN_GRU_CORE_H

#include <fovea/plugin.h>

#include "simple_core.h"

/* The six 2-D convolutions of a ConvGRUCell, in openretina's order. */
enum { GRU_RESET_IN, GRU_RESET_H, GRU_UPDATE_IN, GRU_UPDATE_H, GRU_OUT_IN, GRU_OUT_H, GRU_NCONV };

typedef struct gru_cell {
	/* gru_kwargs, as openretina's GRU_Module takes them */
	int64_t rec_channels, input_kern, rec_kern, groups;
	double gamma_rec; /* the cell's own regularizer: not part of the core's */
	bool pad_input;
	/* built */
	int64_t in_channels;
	fv_tensor *w[GRU_NCONV]; /* (R, C/groups, k, k) */
	fv_tensor *b[GRU_NCONV]; /* (R) */
	fv_conv3d_params p_in, p_rec; /* as (1, k, k) 3-D convolutions */
} gru_cell;

/* Parse gru_kwargs (`spec`, may be NULL: openretina then fails; so do we),
** register features.gru.gru.* on m and initialise as openretina does
** (xavier normal weights, zero biases) from `rng`. */
fv_status gru_cell_create(gru_cell *g, fv_module *m, const fv_config_node *spec,
                          int64_t in_channels, fv_ctx *rng);

/* (B, C, T, H, W) -> (B, R, T, H - s, W - s), s the cell's shrinkage: the
** hidden state after each frame, frames in order from a zero state. */
fv_tensor *gru_cell_forward(const gru_cell *g, fv_ctx *ctx, fv_tensor *x);

/* Map (C, T, H, W) to the cell's output shape in place. */
fv_status gru_cell_output_shape(const gru_cell *g, int64_t shape[4]);

/* batch_adaptation (gru_speed.c): register log_speed_<session> for each
** key of n_neurons_dict on m, with its aliases below each conv prefix. */
fv_status gru_speed_create(fv_module *m, const fv_config_node *n_neurons_dict,
                           const char *const *conv_prefixes, int n_convs);
/* The log speed of a session, or NULL with a message. */
fv_tensor *gru_speed_of(const fv_module *m, const char *data_key);
/* A layer's conv at the session's log speed (differentiable in it). */
fv_tensor *gru_speed_conv_forward(const sc_conv *c, fv_ctx *ctx, fv_tensor *x,
                                  fv_tensor *log_speed);

#endif
