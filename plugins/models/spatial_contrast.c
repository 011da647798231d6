/*
** spatial_contrast.c: openretina's spatial-contrast models
** (openretina.models.spatial_contrast, Sridhar et al. 2025).  Each neuron
** has frozen spatial and temporal filters from its spike-triggered average
** (sta_filters.c) and four learnt scalars: the contrast weight w and the
** nonlinearity's a, b, c.
**
** SingleCellSpatialContrast (one neuron, 0-d parameters nl_a, nl_b, nl_c, w;
** buffers spatial_filter, temporal_filter, spatial_filter_sum):
**   [crop a spat_crop_size patch around rf_location]
**   f     = every pixel's time series through the temporal filter (valid)
**   imean = sum(sf f) / (sum(sf) + 1e-8)
**   lsc   = sqrt(sum(sf (f - imean)^2) / (sum(sf) + 1e-8))   (no clamp)
**   y     = nl_a softplus(nl_b (imean + w lsc) + nl_c),  (B, T_out, 1)
** rf_location = (int(centre_y), int(centre_x)) of the fitted Gaussian; the
** spatial filter is cropped with the input's bounds at construction.
**
** SpatialContrastCoreReadout: DummyCore(cut_first_n_frames) as `core` and a
** MultiSpatialContrastReadout as `readout`, one SpatialContrastReadout per
** session with the filters of the STA files
** sta_file_pattern.format(retina_index=session, cell_index=c) for the
** session's data_info.sessions_kwargs[session].cell_indices.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/plugin.h>
#include <fovea/trainer.h>

#include "sta_filters.h"

/* ---- SingleCellSpatialContrast -------------------------------------------------- */

#define SINGLE "SingleCellSpatialContrast"

typedef struct single_sc {
	fv_int_list in_shape;
	const char *sta_dir, *sta_file_name;
	bool flip_sta;
	int64_t temporal_crop_frames;
	double sigma_contour;
	fv_int_list spat_crop_size;
	double learning_rate, w_init, a_init, b_init, c_init;
	const fv_config_node *loss, *validation_loss;
	/* what create() builds */
	int64_t rf_location[2]; /* (y, x) */
	bool do_crop;
	fv_tensor *spatial, *temporal, *spatial_sum;
	fv_tensor *nl_a, *nl_b, *nl_c, *w;
} single_sc;

#define STA_OPTIONS(type, crop_default)                                                        \
	FV_OPT("sta_dir", STRING, type, sta_dir, NULL, "directory of the STA .npy files",      \
	       .flags = FV_OPT_REQUIRED),                                                       \
	FV_OPT("flip_sta", BOOL, type, flip_sta, "false",                                      \
	       "flip the STAs along the width (stimulus and STA mirrored)"),                   \
	FV_OPT("temporal_crop_frames", INT, type, temporal_crop_frames, crop_default,          \
	       "keep the last n frames of the temporal filter; null: all", .min = 1,         \
	       .max = 1e9, .flags = FV_OPT_NULLABLE),                                           \
	FV_OPT("sigma_contour", FLOAT, type, sigma_contour, "3.0",                             \
	       "the spatial filter is zero beyond this many sigmas of the fitted Gaussian",    \
	       .min = 0, .max = 1e9)

static const fv_option single_options[] = {
	FV_OPT("in_shape", INT_LIST, single_sc, in_shape, NULL,
	       "stimulus (1, time, height, width)", .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("sta_file_name", STRING, single_sc, sta_file_name, NULL, "this cell's STA file",
	       .flags = FV_OPT_REQUIRED),
	STA_OPTIONS(single_sc, "null"),
	FV_OPT("spat_crop_size", INT_LIST, single_sc, spat_crop_size, "null",
	       "(height, width) patch around the receptive field; null: the whole frame", .min = 1,
	       .max = 1e9, .flags = FV_OPT_NULLABLE),
	FV_OPT("learning_rate", FLOAT, single_sc, learning_rate, "0.001", "AdamW learning rate"),
	FV_OPT("w_init", FLOAT, single_sc, w_init, "0.0", "initial contrast weight w"),
	FV_OPT("a_init", FLOAT, single_sc, a_init, "1.0", "initial nl_a"),
	FV_OPT("b_init", FLOAT, single_sc, b_init, "1.0", "initial nl_b"),
	FV_OPT("c_init", FLOAT, single_sc, c_init, "0.0", "initial nl_c"),
	FV_OPT("loss", NODE, single_sc, loss, "{_target_: PoissonLoss3d, per_neuron: true, avg: true}",
	       "training loss; training_step divides it by the number of predictions",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("validation_loss", NODE, single_sc, validation_loss, "null",
	       "validation metric (default CorrelationLoss3d(avg))", .flags = FV_OPT_NULLABLE),
	{0},
};

/* openretina's boundary-safe crop along one axis of length n. */
static void crop_bounds(int64_t centre, int64_t k, int64_t n, int64_t *start, int64_t *stop)
{
	int64_t s = centre - k / 2 > 0 ? centre - k / 2 : 0;
	int64_t e = s + k < n ? s + k : n;
	*start = e - k > 0 ? e - k : 0;
	*stop = e;
}

static fv_tensor *scalar_param(fv_module *m, const char *name, double v)
{
	fv_tensor *t = fv_module_add_param(m, name, 0, NULL);
	if (t != NULL)
		t->data[0] = (fv_real)v;
	return t;
}

/* The buffers from the filters, the spatial one cropped to [y0, y1) x [x0, x1). */
static fv_status single_buffers(fv_module *m, single_sc *s, const sta_filters *f,
                                const int64_t box[4])
{
	const int64_t shape[2] = {box[1] - box[0], box[3] - box[2]};
	s->spatial = fv_module_add_buffer(m, "spatial_filter", 2, shape);
	s->temporal = fv_module_add_buffer(m, "temporal_filter", 1, &f->frames);
	s->spatial_sum = fv_module_add_buffer(m, "spatial_filter_sum", 0, NULL);
	if (!s->spatial || !s->temporal || !s->spatial_sum)
		return FV_ERR_NOMEM;
	double sum = 0;
	for (int64_t y = 0; y < shape[0]; y++)
		for (int64_t x = 0; x < shape[1]; x++) {
			fv_real v = (fv_real)f->spatial[(box[0] + y) * f->w + box[2] + x];
			s->spatial->data[y * shape[1] + x] = v;
			sum += v;
		}
	s->spatial_sum->data[0] = (fv_real)sum;
	for (int64_t t = 0; t < f->frames; t++)
		s->temporal->data[t] = (fv_real)f->temporal[t];
	return FV_OK;
}

static fv_status single_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	single_sc *s = fv_module_priv(m);
	if (s->in_shape.n != 4)
		return fv_error(FV_ERR_CONFIG, SINGLE ": in_shape: expected (channels, time, height, "
		                "width), got %zu values", s->in_shape.n);
	if (s->in_shape.v[0] != 1)
		return fv_error(FV_ERR_CONFIG, SINGLE ": the model only supports a single input channel "
		                "(got %lld); average the channels first", (long long)s->in_shape.v[0]);
	if (s->spat_crop_size.is_set && s->spat_crop_size.n != 2)
		return fv_error(FV_ERR_CONFIG, SINGLE ": spat_crop_size: expected (height, width)");
	int64_t H = s->in_shape.v[2], W = s->in_shape.v[3];
	sta_filters f;
	fv_status st = sta_load_filters(SINGLE, s->sta_dir, s->sta_file_name, s->flip_sta, H, W,
	                                s->temporal_crop_frames, s->sigma_contour, &f);
	if (st == FV_OK) {
		/* int() truncates (the temporal filter's pixel is rounded) */
		s->rf_location[0] = (int64_t)f.fit.center_y;
		s->rf_location[1] = (int64_t)f.fit.center_x;
		int64_t box[4] = {0, H, 0, W};
		s->do_crop = s->spat_crop_size.is_set &&
		             (s->spat_crop_size.v[0] != H || s->spat_crop_size.v[1] != W);
		if (s->do_crop) {
			crop_bounds(s->rf_location[0], s->spat_crop_size.v[0], H, &box[0], &box[1]);
			crop_bounds(s->rf_location[1], s->spat_crop_size.v[1], W, &box[2], &box[3]);
		}
		st = single_buffers(m, s, &f, box);
	}
	sta_filters_free(&f);
	if (st != FV_OK)
		return st;
	s->nl_a = scalar_param(m, "nl_a", s->a_init);
	s->nl_b = scalar_param(m, "nl_b", s->b_init);
	s->nl_c = scalar_param(m, "nl_c", s->c_init);
	s->w = scalar_param(m, "w", s->w_init);
	return s->nl_a && s->nl_b && s->nl_c && s->w ? FV_OK : FV_ERR_NOMEM;
}

/* The patch the model sees, kept as "x_cropped" (openretina's crop_input). */
static fv_tensor *single_crop(fv_module *m, fv_ctx *ctx, fv_tensor *x)
{
	const single_sc *s = fv_module_priv(m);
	if (!s->do_crop)
		return x;
	int64_t y0, y1, x0, x1;
	crop_bounds(s->rf_location[0], s->spat_crop_size.v[0], x->shape[3], &y0, &y1);
	crop_bounds(s->rf_location[1], s->spat_crop_size.v[1], x->shape[4], &x0, &x1);
	x = fv_slice(ctx, fv_slice(ctx, x, 3, y0, y1, 1), 4, x0, x1, 1);
	fv_tensor *kept = x ? fv_module_set_state(m, "x_cropped", x->ndim, x->shape) : NULL;
	if (kept == NULL || fv_tensor_copy(kept, x) != FV_OK)
		return NULL;
	return x;
}

static fv_tensor *single_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                 const fv_forward_args *fa)
{
	(void)fa;
	const single_sc *s = fv_module_priv(m);
	int64_t h = s->spatial->shape[0], w = s->spatial->shape[1], tf = s->temporal->numel;
	if (x->ndim != 5 || x->shape[1] != 1 || x->shape[2] < tf) {
		fv_error(FV_ERR_SHAPE, SINGLE ": forward: expected an input (N, 1, T, H, W) with T >= "
		         "%lld, got %s", (long long)tf, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	x = single_crop(m, ctx, x);
	if (x != NULL && (x->shape[3] != h || x->shape[4] != w)) {
		fv_error(FV_ERR_SHAPE, SINGLE ": forward: the input's frames %s do not match the "
		         "spatial filter (%lld, %lld)", fv_shape_str(x->ndim, x->shape), (long long)h,
		         (long long)w);
		return NULL;
	}
	const int64_t kernel[5] = {1, 1, tf, 1, 1}, sf_shape[5] = {1, 1, 1, h, w};
	const int space[2] = {3, 4};
	const fv_conv3d_params valid = {0};
	fv_tensor *f = fv_conv3d(ctx, x, fv_reshape(ctx, s->temporal, 5, kernel), NULL, &valid);
	fv_tensor *sf = fv_reshape(ctx, s->spatial, 5, sf_shape);
	fv_tensor *denominator = fv_add_scalar(ctx, s->spatial_sum, 1e-8);
	fv_tensor *imean = fv_div(ctx, fv_sum(ctx, fv_mul(ctx, sf, f), 2, space, true), denominator);
	fv_tensor *dev = fv_square(ctx, fv_sub(ctx, f, imean));
	fv_tensor *lsc = fv_sqrt(ctx, fv_div(ctx, fv_sum(ctx, fv_mul(ctx, sf, dev), 2, space, true),
	                                     denominator));
	fv_tensor *combined = fv_add(ctx, imean, fv_mul(ctx, s->w, lsc));
	fv_tensor *drive = fv_add(ctx, fv_mul(ctx, s->nl_b, combined), s->nl_c);
	fv_tensor *y = fv_mul(ctx, s->nl_a, fv_softplus(ctx, drive, 1.0, 20.0));
	if (y == NULL)
		return NULL;
	const int64_t out[3] = {x->shape[0], y->shape[2], 1};
	return fv_reshape(ctx, y, 3, out);
}

/* openretina's training_step: loss_fn(y, target) / y.numel() (a per-neuron
** mean divided again), no regularizer; the evaluation metric is logged. */
static fv_status single_training_step(fv_module *m, fv_ctx *ctx, fv_module *loss_fn,
                                      fv_module *eval_loss_fn, fv_tensor *x, fv_tensor *target,
                                      const char *session, fv_step_terms *out)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = session;
	memset(out, 0, sizeof *out);
	out->output = fv_module_forward(m, ctx, x, &fa);
	if (out->output == NULL)
		return fv_errcode();
	out->loss = fv_mul_scalar(ctx, fv_module_loss(loss_fn, ctx, out->output, target),
	                          1.0 / (double)out->output->numel);
	out->reg_core = fv_ctx_scalar(ctx, 0);
	out->reg_readout = fv_ctx_scalar(ctx, 0);
	out->total = fv_sum_all(ctx, out->loss);
	if (out->total == NULL)
		return fv_errcode();
	return fv_step_evaluate(ctx, eval_loss_fn, target, out);
}

/* openretina's optimizer_step override: w >= 0 after every step. */
static void single_after_step(fv_module *m)
{
	const single_sc *s = fv_module_priv(m);
	if (s->w->data[0] < 0)
		s->w->data[0] = 0;
}

static const char *const single_names[] = {
	SINGLE,
	"openretina.models.spatial_contrast.SingleCellSpatialContrast",
	NULL,
};

static const fv_component single_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = single_names,
	.doc = "one neuron's spatial-contrast model: frozen STA filters, "
	       "y = a softplus(b (imean + w lsc) + c)",
	.options = single_options,
	.priv_size = sizeof(single_sc),
	.create = single_create,
	.forward = single_forward,
	.after_optimizer_step = single_after_step,
	.training_step = single_training_step,
};

/* ---- SpatialContrastCoreReadout ---------------------------------------------------- */

#define MULTI "SpatialContrastCoreReadout"

typedef struct sc_core_readout {
	fv_int_list in_shape;
	const fv_config_node *n_neurons_dict;
	const char *sta_dir, *sta_file_pattern;
	bool flip_sta;
	int64_t temporal_crop_frames;
	double sigma_contour;
	int64_t cut_first_n_frames;
	double w_init, a_init, b_init, c_init, learning_rate;
	int64_t neuron_chunk_size;
	const fv_config_node *loss, *evaluation_loss, *data_info;
	fv_module *core, *readout;
} sc_core_readout;

static const fv_option multi_options[] = {
	FV_OPT("in_shape", INT_LIST, sc_core_readout, in_shape, NULL,
	       "stimulus (1, time, height, width)", .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("n_neurons_dict", NODE, sc_core_readout, n_neurons_dict, NULL,
	       "number of neurons of each session: {session: n}", .flags = FV_OPT_REQUIRED),
	STA_OPTIONS(sc_core_readout, "30"),
	FV_OPT("sta_file_pattern", STRING, sc_core_readout, sta_file_pattern,
	       "cell_data_{retina_index}_WN_stas_cell_{cell_index}.npy",
	       "STA file name; {retina_index} is the session, {cell_index} the cell"),
	FV_OPT("cut_first_n_frames", INT, sc_core_readout, cut_first_n_frames, "0",
	       "frames the DummyCore drops", .min = 0, .max = 1e9),
	FV_OPT("w_init", FLOAT, sc_core_readout, w_init, "0.0", "initial contrast weight w"),
	FV_OPT("a_init", FLOAT, sc_core_readout, a_init, "4.0", "initial nl_a"),
	FV_OPT("b_init", FLOAT, sc_core_readout, b_init, "1.0", "initial nl_b"),
	FV_OPT("c_init", FLOAT, sc_core_readout, c_init, "-5.0", "initial nl_c"),
	FV_OPT("learning_rate", FLOAT, sc_core_readout, learning_rate, "0.01", "AdamW learning rate"),
	FV_OPT("neuron_chunk_size", INT, sc_core_readout, neuron_chunk_size, "32",
	       "neurons per chunk in openretina (GPU memory); no effect on the numbers", .min = 1,
	       .max = 1e12),
	FV_OPT("loss", NODE, sc_core_readout, loss, "{_target_: PoissonLoss3d, avg: true}",
	       "training loss; its mean, not openretina's usual sum, keeps the gradients of large "
	       "sessions finite", .flags = FV_OPT_NULLABLE),
	FV_OPT("evaluation_loss", NODE, sc_core_readout, evaluation_loss, "null",
	       "evaluation metric (default CorrelationLoss3d(avg: true))", .flags = FV_OPT_NULLABLE),
	FV_OPT("data_info", NODE, sc_core_readout, data_info, NULL,
	       "data information: sessions_kwargs.<session>.cell_indices (required), "
	       "mean_activity_dict", .flags = FV_OPT_REQUIRED),
	{0},
};

/* sta_file_pattern with {retina_index} and {cell_index} filled in. */
static void file_name(char *out, size_t size, const char *pattern, const char *session,
                      const char *cell)
{
	size_t len = 0;
	for (const char *p = pattern; *p != '\0' && len + 1 < size;) {
		const char *value = NULL;
		size_t skip = 1;
		if (strncmp(p, "{retina_index}", 14) == 0)
			value = session, skip = 14;
		else if (strncmp(p, "{cell_index}", 12) == 0)
			value = cell, skip = 12;
		if (value != NULL)
			len += (size_t)snprintf(out + len, size - len, "%s", value);
		else
			out[len++] = *p;
		p += skip;
		if (len >= size)
			len = size - 1;
	}
	out[len] = '\0';
}

static void write_values(FILE *out, const double *v, int64_t n)
{
	fputc('[', out);
	for (int64_t i = 0; i < n; i++)
		fprintf(out, "%s%.9g", i ? ", " : "", (double)(float)v[i]);
	fputc(']', out);
}

/* A node as flow YAML; scalars that were strings are single-quoted. */
static void put_flow(FILE *out, const fv_config_node *n)
{
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL:
		fputs("null", out);
		return;
	case FV_NODE_SCALAR:
		if (!fv_node_quoted(n) && strpbrk(fv_node_text(n), ",[]{}:#'\"") == NULL) {
			fputs(fv_node_text(n), out);
			return;
		}
		fputc('\'', out);
		for (const char *c = fv_node_text(n); *c; c++)
			fputs(*c == '\'' ? "''" : (char[]){*c, 0}, out);
		fputc('\'', out);
		return;
	case FV_NODE_SEQ:
	case FV_NODE_MAP: {
		bool map = fv_node_kind(n) == FV_NODE_MAP;
		fputc(map ? '{' : '[', out);
		for (size_t i = 0; i < fv_node_size(n); i++) {
			fputs(i ? ", " : "", out);
			if (map)
				fprintf(out, "'%s': ", fv_node_key_at(n, i));
			put_flow(out, fv_node_at(n, i));
		}
		fputc(map ? '}' : ']', out);
		return;
	}
	}
}

/* One session's filters as "key: [[...], ...]" entries of the two dicts. */
static fv_status session_filters(const sc_core_readout *o, const char *key,
                                 const fv_config_node *cells, FILE *sf, FILE *tf)
{
	int64_t H = o->in_shape.v[2], W = o->in_shape.v[3];
	if (cells == NULL || fv_node_kind(cells) != FV_NODE_SEQ)
		return fv_error(FV_ERR_CONFIG, MULTI ": data_info.sessions_kwargs.%s.cell_indices: "
		                "expected the session's list of cell indices", key);
	fprintf(sf, "%s: [", key);
	fprintf(tf, "%s: [", key);
	for (size_t i = 0; i < fv_node_size(cells); i++) {
		char name[1024];
		file_name(name, sizeof name, o->sta_file_pattern, key, fv_node_text(fv_node_at(cells, i)));
		sta_filters f;
		fv_status st = sta_load_filters(MULTI, o->sta_dir, name, o->flip_sta, H, W,
		                                o->temporal_crop_frames, o->sigma_contour, &f);
		if (st == FV_OK) {
			fputs(i ? ", [" : "[", sf);
			for (int64_t y = 0; y < H; y++) {
				fputs(y ? ", " : "", sf);
				write_values(sf, f.spatial + y * W, W);
			}
			fputc(']', sf);
			fputs(i ? ", " : "", tf);
			write_values(tf, f.temporal, f.frames);
		}
		sta_filters_free(&f);
		if (st != FV_OK)
			return st;
	}
	fputs("]", sf);
	fputs("]", tf);
	return FV_OK;
}

/* The readout's spec: every session's filters from its cells' STAs. */
static fv_status readout_yaml(const sc_core_readout *o, char **yaml)
{
	const fv_config_node *sessions = fv_node_path(o->data_info, "sessions_kwargs");
	char *sf_text = NULL, *tf_text = NULL;
	size_t sf_len = 0, tf_len = 0;
	FILE *sf = open_memstream(&sf_text, &sf_len), *tf = open_memstream(&tf_text, &tf_len);
	fv_status st = sf && tf ? FV_OK : fv_error(FV_ERR_NOMEM, MULTI ": out of memory");
	size_t n = fv_node_size(o->n_neurons_dict);
	for (size_t i = 0; st == FV_OK && i < n; i++) {
		const char *key = fv_node_key_at(o->n_neurons_dict, i);
		const fv_config_node *kw = sessions ? fv_node_get(sessions, key) : NULL;
		fputs(i ? ", " : "{", sf);
		fputs(i ? ", " : "{", tf);
		st = session_filters(o, key, kw ? fv_node_get(kw, "cell_indices") : NULL, sf, tf);
	}
	if (sf)
		fputs("}", sf), fclose(sf);
	if (tf)
		fputs("}", tf), fclose(tf);
	const fv_config_node *mean = fv_node_path(o->data_info, "mean_activity_dict");
	FILE *out = st == FV_OK ? open_memstream(yaml, &sf_len) : NULL;
	if (out != NULL) {
		fprintf(out, "{in_shape: [%lld, %lld, %lld, %lld], spatial_filters_dict: %s, "
		        "temporal_filters_dict: %s, w_init: %.17g, a_init: %.17g, b_init: %.17g, "
		        "c_init: %.17g, neuron_chunk_size: %lld, n_neurons_dict: ",
		        (long long)o->in_shape.v[0], (long long)o->in_shape.v[1],
		        (long long)o->in_shape.v[2], (long long)o->in_shape.v[3], sf_text, tf_text,
		        o->w_init, o->a_init, o->b_init, o->c_init, (long long)o->neuron_chunk_size);
		put_flow(out, o->n_neurons_dict);
		if (mean != NULL && !fv_node_is_null(mean)) {
			fputs(", mean_activity_dict: ", out);
			put_flow(out, mean);
		}
		fputs("}", out);
		fclose(out);
	} else if (st == FV_OK) {
		st = fv_error(FV_ERR_NOMEM, MULTI ": out of memory");
	}
	free(sf_text);
	free(tf_text);
	return st;
}

static fv_module *child(fv_module *m, const fv_build_args *args, const char *target,
                        const char *yaml, const char *name)
{
	fv_build_args a = *args;
	a.struct_size = sizeof a;
	a.spec = NULL;
	fv_module *c = fv_instantiate_named(args->registry, target, yaml, &a, name);
	if (c == NULL) {
		fv_error_at(args->spec, fv_errcode(), MULTI ": building its %s (%s): %s", name, target,
		            fv_errmsg());
		return NULL;
	}
	return fv_module_add_child(m, name, c) == FV_OK ? c : NULL; /* m owns it */
}

static fv_status multi_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	sc_core_readout *o = fv_module_priv(m);
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, MULTI ": needs the registry to build its core and readout");
	if (o->in_shape.n != 4)
		return fv_error(FV_ERR_CONFIG, MULTI ": in_shape: expected (channels, time, height, "
		                "width), got %zu values", o->in_shape.n);
	if (fv_node_kind(o->n_neurons_dict) != FV_NODE_MAP)
		return fv_error_at(o->n_neurons_dict, FV_ERR_CONFIG,
		                   MULTI ": n_neurons_dict: expected a map {session: neurons}");
	char core_yaml[64];
	snprintf(core_yaml, sizeof core_yaml, "cut_first_n_frames: %lld",
	         (long long)o->cut_first_n_frames);
	if ((o->core = child(m, args, "DummyCore", core_yaml, "core")) == NULL)
		return fv_errcode();
	char *yaml = NULL;
	fv_status st = readout_yaml(o, &yaml);
	if (st == FV_OK)
		o->readout = child(m, args, "MultiSpatialContrastReadout", yaml, "readout");
	free(yaml);
	return st != FV_OK ? st : o->readout ? FV_OK : fv_errcode();
}

static fv_tensor *multi_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	const sc_core_readout *o = fv_module_priv(m);
	return fv_module_forward(o->readout, ctx, fv_module_forward(o->core, ctx, x, fa), fa);
}

static fv_tensor *multi_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const sc_core_readout *o = fv_module_priv(m);
	return fv_add(ctx, fv_module_regularizer(o->core, ctx, fa),
	              fv_module_regularizer(o->readout, ctx, fa));
}

static int clamp_gain(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)ud;
	size_t len = strlen(name);
	if (!is_param || len < 5 || strcmp(name + len - 5, ".nl_a") != 0)
		return 0;
	for (int64_t i = 0; i < t->numel; i++)
		if (t->data[i] < 0)
			t->data[i] = 0;
	return 0;
}

/* openretina's optimizer_step override: every session's nl_a >= 0. */
static void multi_after_step(fv_module *m)
{
	const sc_core_readout *o = fv_module_priv(m);
	fv_module_foreach_tensor(o->readout, clamp_gain, NULL);
}

static const char *const multi_names[] = {
	MULTI,
	"openretina.models.spatial_contrast.SpatialContrastCoreReadout",
	NULL,
};

static const fv_component multi_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = multi_names,
	.doc = "multi-cell spatial-contrast model: DummyCore + MultiSpatialContrastReadout with "
	       "filters from each cell's STA",
	.options = multi_options,
	.priv_size = sizeof(sc_core_readout),
	.create = multi_create,
	.forward = multi_forward,
	.regularizer = multi_regularizer,
	.after_optimizer_step = multi_after_step,
};

FV_PLUGIN_DEFINE("models-spatial-contrast", &single_component, &multi_component);
