/*
** test_ckpt.c: the checkpoint reader (include/fovea/ckpt.h).
**
** Truth comes from outside the reader: the fixture .yaml files written
** next to each checkpoint when it was made (state_dict names, shapes and
** dtypes, hyper_parameters as plain YAML with tensors and numpy values
** spelled out, their Python types), read here with fovea's YAML loader;
** pickles written opcode by opcode below with values chosen by hand (bit
** patterns of f16/bf16, views with offsets and strides); zip archives
** written with libzip.  Every hostile fixture must be refused with a
** message that names the file and the reason, and none may run its
** payload.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "expect_error.h"
#include "fovea/ckpt.h"
#include "fovea/config.h"
#include "io/ckpt_internal.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif
#define DATA FOVEA_TEST_SRCDIR "/data/ckpt/"

static const char *const good[] = {"hoefling_low_res_gmask", "klindt_factorized",
                                   "gaussian_sampled", "lnp_dummy_core", "single_cell_lnp"};
#define N_GOOD (sizeof good / sizeof good[0])

/* ---- helpers ------------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	cr_assert_not_null(b);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static fv_ckpt *open_good(const char *stem)
{
	char path[512];
	snprintf(path, sizeof path, DATA "%s.ckpt", stem);
	fv_ckpt *c = fv_ckpt_open(path, NULL);
	cr_assert_not_null(c, "%s: %s", path, fv_errmsg());
	return c;
}

static fv_config *fixture_yaml(const char *stem)
{
	char path[512];
	snprintf(path, sizeof path, DATA "%s.yaml", stem);
	fv_config *y = fv_config_load_file(path);
	cr_assert_not_null(y, "%s: %s", path, fv_errmsg());
	return y;
}

static int64_t yaml_int(const fv_config_node *n, const char *path)
{
	int64_t v;
	cr_assert_eq(fv_node_to_int(fv_node_path(n, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	return v;
}

static const char *dtype_python(fv_dtype dt)
{
	switch (dt) {
	case FV_DTYPE_F64: return "float64";
	case FV_DTYPE_F32: return "float32";
	case FV_DTYPE_F16: return "float16";
	case FV_DTYPE_BF16: return "bfloat16";
	case FV_DTYPE_I64: return "int64";
	case FV_DTYPE_I32: return "int32";
	case FV_DTYPE_I16: return "int16";
	case FV_DTYPE_I8: return "int8";
	case FV_DTYPE_U8: return "uint8";
	case FV_DTYPE_BOOL: return "bool";
	}
	return "?";
}

static double elem(const fv_ckpt_array *a, int64_t i)
{
	return a->f32 ? (double)a->f32[i] : (double)a->i64[i];
}

/* The leaves of a nested YAML list, in order. */
static void flatten(const fv_config_node *n, double *out, size_t *k, size_t cap)
{
	if (fv_node_kind(n) == FV_NODE_SEQ) {
		for (size_t i = 0; i < fv_node_size(n); i++)
			flatten(fv_node_at(n, i), out, k, cap);
		return;
	}
	cr_assert_lt(*k, cap);
	cr_assert_eq(fv_node_to_double(n, &out[*k]), FV_OK, "%s", fv_errmsg());
	(*k)++;
}

/* A value equals the fixture's YAML rendering of it: plain values as
** themselves, tensors and numpy values as {type, dtype, shape, values} or
** {type: numpy scalar, dtype, value} maps. */
static void expect_same(const fv_pyval *v, const fv_config_node *n, const char *path)
{
	fv_pyval_kind k = fv_pyval_kind_of(v);
	const fv_config_node *type = fv_node_kind(n) == FV_NODE_MAP ? fv_node_get(n, "type") : NULL;
	if (type != NULL && (k == FV_PY_TENSOR || k == FV_PY_NDARRAY)) {
		const fv_ckpt_array *a = fv_pyval_array(v);
		cr_assert_str_eq(fv_node_text(type), fv_pyval_type_name(v), "%s", path);
		cr_assert_str_eq(fv_node_text(fv_node_get(n, "dtype")), dtype_python(a->dtype), "%s",
		                 path);
		const fv_config_node *shape = fv_node_get(n, "shape");
		cr_assert_eq(fv_node_size(shape), (size_t)a->ndim, "%s", path);
		for (int d = 0; d < a->ndim; d++)
			cr_assert_eq(yaml_int(shape, (char[]){(char)('0' + d), 0}), a->shape[d], "%s", path);
		double *vals = malloc(((size_t)a->numel + 1) * sizeof *vals);
		size_t got = 0;
		const fv_config_node *values = fv_node_get(n, "values");
		if (fv_node_kind(values) == FV_NODE_SEQ)
			flatten(values, vals, &got, (size_t)a->numel);
		else
			cr_assert_eq(fv_node_to_double(values, &vals[got++]), FV_OK);
		cr_assert_eq(got, (size_t)a->numel, "%s", path);
		for (int64_t i = 0; i < a->numel; i++)
			cr_assert_eq(elem(a, i), vals[i], "%s[%lld]: %.9g != %.9g", path, (long long)i,
			             elem(a, i), vals[i]);
		free(vals);
		return;
	}
	if (type != NULL && strcmp(fv_node_text(type), "numpy scalar") == 0) {
		double want, got;
		cr_assert_eq(fv_node_to_double(fv_node_get(n, "value"), &want), FV_OK);
		cr_assert_eq(fv_pyval_to_double(v, &got), FV_OK, "%s: %s", path, fv_errmsg());
		cr_assert_eq(got, want, "%s", path);
		return;
	}
	switch (k) {
	case FV_PY_NONE: cr_assert(fv_node_is_null(n), "%s: expected null", path); return;
	case FV_PY_BOOL: {
		bool want, got;
		cr_assert_eq(fv_node_to_bool(n, &want), FV_OK, "%s: %s", path, fv_errmsg());
		fv_pyval_to_bool(v, &got);
		cr_assert_eq(got, want, "%s", path);
		return;
	}
	case FV_PY_INT: {
		int64_t got;
		fv_pyval_to_int(v, &got);
		cr_assert_eq(got, yaml_int(n, ""), "%s", path);
		return;
	}
	case FV_PY_FLOAT: {
		double want, got;
		cr_assert_eq(fv_node_to_double(n, &want), FV_OK, "%s: %s", path, fv_errmsg());
		fv_pyval_to_double(v, &got);
		cr_assert_eq(got, want, "%s: %.17g != %.17g", path, got, want);
		return;
	}
	case FV_PY_STR:
		cr_assert_eq(fv_node_kind(n), FV_NODE_SCALAR, "%s", path);
		cr_assert_str_eq(fv_pyval_str(v, NULL), fv_node_text(n), "%s", path);
		return;
	case FV_PY_TUPLE:
	case FV_PY_LIST:
		cr_assert_eq(fv_node_kind(n), FV_NODE_SEQ, "%s: a %s, YAML has no list", path,
		             fv_pyval_type_name(v));
		cr_assert_eq(fv_pyval_len(v), fv_node_size(n), "%s", path);
		for (size_t i = 0; i < fv_pyval_len(v); i++) {
			char sub[512];
			snprintf(sub, sizeof sub, "%s.%zu", path, i);
			expect_same(fv_pyval_item(v, i), fv_node_at(n, i), sub);
		}
		return;
	case FV_PY_DICT:
		cr_assert_eq(fv_node_kind(n), FV_NODE_MAP, "%s: a dict, YAML has no map", path);
		cr_assert_eq(fv_pyval_len(v), fv_node_size(n), "%s: %zu keys, YAML %zu", path,
		             fv_pyval_len(v), fv_node_size(n));
		for (size_t i = 0; i < fv_pyval_len(v); i++) {
			const char *key = fv_pyval_str(fv_pyval_key(v, i), NULL);
			cr_assert_not_null(key, "%s: key %zu is not a str", path, i);
			cr_assert_str_eq(key, fv_node_key_at(n, i), "%s: key order", path);
			char sub[512];
			snprintf(sub, sizeof sub, "%s.%s", path, key);
			expect_same(fv_pyval_item(v, i), fv_node_at(n, i), sub);
		}
		return;
	default: cr_assert_fail("%s: unexpected %s", path, fv_pyval_type_name(v));
	}
}

/* ---- the good fixtures ------------------------------------------------------------------ */

Test(ckpt, good_files_state_dict_matches_yaml)
{
	for (size_t f = 0; f < N_GOOD; f++) {
		fv_ckpt *c = open_good(good[f]);
		fv_config *y = fixture_yaml(good[f]);
		const fv_config_node *yr = fv_config_root(y);
		cr_expect_str_eq(fv_ckpt_record_prefix(c), "archive");
		cr_expect_eq(fv_ckpt_protocol(c), 2);
		const fv_pyval *sd = fv_ckpt_state_dict(c);
		cr_assert_not_null(sd, "%s: %s", good[f], fv_errmsg());
		cr_assert_eq(fv_pyval_get(fv_ckpt_root(c), "state_dict"), sd);
		const fv_config_node *ysd = fv_node_get(yr, "state_dict");
		cr_assert_eq(fv_pyval_len(sd), fv_node_size(ysd), "%s", good[f]);
		for (size_t i = 0; i < fv_pyval_len(sd); i++) {
			const char *name = fv_pyval_str(fv_pyval_key(sd, i), NULL);
			cr_assert_str_eq(name, fv_node_key_at(ysd, i), "%s: entry %zu", good[f], i);
			const fv_config_node *ye = fv_node_at(ysd, i);
			const fv_pyval *t = fv_pyval_item(sd, i);
			const fv_ckpt_array *a = fv_pyval_array(t);
			cr_assert_eq(fv_pyval_kind_of(t), FV_PY_TENSOR, "%s", name);
			cr_assert_str_eq(dtype_python(a->dtype), fv_node_text(fv_node_get(ye, "dtype")),
			                 "%s", name);
			const fv_config_node *shape = fv_node_get(ye, "shape");
			cr_assert_eq((size_t)a->ndim, fv_node_size(shape), "%s", name);
			int64_t numel = 1;
			for (int d = 0; d < a->ndim; d++) {
				int64_t want;
				fv_node_to_int(fv_node_at(shape, (size_t)d), &want);
				cr_assert_eq(a->shape[d], want, "%s dim %d", name, d);
				numel *= want;
			}
			cr_assert_eq(a->numel, numel, "%s", name);
			cr_assert((a->f32 != NULL) == (a->dtype == FV_DTYPE_F32), "%s", name);
			cr_assert((a->i64 != NULL) == (a->dtype == FV_DTYPE_I64), "%s", name);
			for (int64_t k = 0; k < a->numel; k++)
				cr_assert(a->f32 ? isfinite(a->f32[k]) : 1, "%s[%lld]", name, (long long)k);
		}
		fv_config_free(y);
		fv_ckpt_close(c);
	}
}

/* Values with a meaning known without the reader: running variances are
** positive, every training step ran each batch norm once, the counters of
** the checkpoint dict are those the fixture was made with. */
Test(ckpt, good_files_buffers_and_counters)
{
	for (size_t f = 0; f < N_GOOD; f++) {
		fv_ckpt *c = open_good(good[f]);
		fv_config *y = fixture_yaml(good[f]);
		const fv_config_node *yr = fv_config_root(y);
		const fv_pyval *root = fv_ckpt_root(c);
		int64_t epoch, step;
		cr_assert_eq(fv_pyval_to_int(fv_pyval_get(root, "epoch"), &epoch), FV_OK);
		cr_assert_eq(fv_pyval_to_int(fv_pyval_get(root, "global_step"), &step), FV_OK);
		cr_expect_eq(epoch, yaml_int(yr, "made_like.checkpoint_epoch"), "%s", good[f]);
		cr_expect_eq(step, yaml_int(yr, "made_like.checkpoint_global_step"), "%s", good[f]);
		cr_expect_str_eq(fv_pyval_str(fv_pyval_get(root, "pytorch-lightning_version"), NULL),
		                 "2.6.5");
		const fv_config_node *keys = fv_node_get(yr, "checkpoint_keys");
		cr_assert_eq(fv_pyval_len(root), fv_node_size(keys));
		for (size_t i = 0; i < fv_node_size(keys); i++)
			cr_expect_str_eq(fv_pyval_str(fv_pyval_key(root, i), NULL),
			                 fv_node_text(fv_node_at(keys, i)));
		const fv_pyval *sd = fv_ckpt_state_dict(c);
		int64_t tracked = -1;
		for (size_t i = 0; i < fv_pyval_len(sd); i++) {
			const char *name = fv_pyval_str(fv_pyval_key(sd, i), NULL);
			const fv_ckpt_array *a = fv_pyval_array(fv_pyval_item(sd, i));
			if (strstr(name, "running_var") != NULL)
				for (int64_t k = 0; k < a->numel; k++)
					cr_expect_gt(a->f32[k], 0.0f, "%s[%lld]", name, (long long)k);
			if (strstr(name, "num_batches_tracked") != NULL) {
				cr_assert_eq(a->ndim, 0);
				cr_assert_eq(a->numel, 1);
				cr_assert_not_null(a->i64);
				cr_expect_geq(a->i64[0], step, "%s: %lld batches, %lld steps", name,
				              (long long)a->i64[0], (long long)step);
				if (tracked >= 0)
					cr_expect_eq(a->i64[0], tracked, "the layers saw the same batches");
				tracked = a->i64[0];
			}
		}
		/* AdamW's step counters are 0-d tensors, keyed by parameter number;
		** a session's readout is stepped only on its own batches. */
		const fv_pyval *st = fv_pyval_path(root, "optimizer_states.0.state");
		cr_assert_eq(fv_pyval_kind_of(st), FV_PY_DICT, "%s", good[f]);
		cr_assert_gt(fv_pyval_len(st), 0);
		for (size_t i = 0; i < fv_pyval_len(st); i++) {
			const fv_pyval *counter = fv_pyval_get(fv_pyval_item(st, i), "step");
			cr_assert_eq(fv_pyval_kind_of(counter), FV_PY_TENSOR);
			float n = fv_pyval_array(counter)->f32[0];
			cr_expect(n > 0 && n <= (float)step, "%s: step %g of %lld", good[f], (double)n,
			          (long long)step);
			int64_t key;
			cr_assert_eq(fv_pyval_to_int(fv_pyval_key(st, i), &key), FV_OK, "int keys");
		}
		fv_config_free(y);
		fv_ckpt_close(c);
	}
}

Test(ckpt, hyper_parameters_match_yaml)
{
	for (size_t f = 0; f < N_GOOD; f++) {
		fv_ckpt *c = open_good(good[f]);
		fv_config *y = fixture_yaml(good[f]);
		const fv_config_node *yhp = fv_node_get(fv_config_root(y), "hyper_parameters");
		const fv_pyval *hp = fv_ckpt_hyper_parameters(c);
		if (fv_node_is_null(yhp)) {
			EXPECT_ERROR(hp == NULL ? FV_ERR_NOTFOUND : FV_OK, FV_ERR_NOTFOUND,
			             "single_cell_lnp.ckpt", "no hyper_parameters");
			fv_config_free(y);
			fv_ckpt_close(c);
			continue;
		}
		cr_assert_not_null(hp, "%s: %s", good[f], fv_errmsg());
		/* The whole tree, key by key: the DictConfigs (core, readout,
		** optimizer with its ${model.learning_rate}), tuples, data_info
		** with its tensors and numpy arrays and scalars. */
		expect_same(hp, yhp, "hyper_parameters");
		/* And the Python type of each, as far as fovea keeps it. */
		const fv_config_node *types = fv_node_get(fv_config_root(y), "hyper_parameters_types");
		for (size_t i = 0; i < fv_node_size(types); i++) {
			const char *path = fv_node_key_at(types, i), *want = fv_node_text(fv_node_at(types, i));
			const fv_pyval *v = strcmp(path, ".") == 0 ? hp : fv_pyval_path(hp, path);
			cr_assert_not_null(v, "%s: %s missing", good[f], path);
			if (strcmp(want, "omegaconf.dictconfig.DictConfig") == 0)
				want = "dict";
			else if (strcmp(want, "omegaconf.listconfig.ListConfig") == 0)
				want = "list";
			else if (strncmp(want, "numpy.int", 9) == 0)
				want = "int";
			cr_expect_str_eq(fv_pyval_type_name(v), want, "%s: %s", good[f], path);
		}
		fv_config_free(y);
		fv_ckpt_close(c);
	}
}

Test(ckpt, lnp_dummy_core_is_torch_1_13_layout)
{
	size_t len;
	char *buf = slurp(DATA "lnp_dummy_core.ckpt", &len);
	fv_ckpt *c = fv_ckpt_from_memory(buf, len, "lnp.ckpt", NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_expect_str_eq(fv_ckpt_name(c), "lnp.ckpt");
	const fv_pyval *w =
		fv_pyval_get(fv_ckpt_state_dict(c), "readout.15-10-07.inner_product_kernel.weight");
	const fv_ckpt_array *a = fv_pyval_array(w);
	cr_assert_not_null(a);
	cr_assert_eq(a->numel, 9 * 20 * 20);
	/* The same weights through fv_pyval_tensor. */
	fv_tensor *t = fv_pyval_tensor(w, "w");
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_str_eq(t->name, "w");
	for (int64_t i = 0; i < a->numel; i++)
		cr_assert_eq(t->data[i], a->f32[i]);
	fv_tensor_free(t);
	fv_ckpt_close(c);
	free(buf);
}

Test(ckpt, hyper_parameters_as_config)
{
	fv_ckpt *c = open_good("hoefling_low_res_gmask");
	fv_config *cfg = fv_pyval_to_config(fv_ckpt_hyper_parameters(c), "hoefling.ckpt");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *r = fv_config_root(cfg);
	cr_expect_eq(yaml_int(r, "core.temporal_kernel_sizes.0"), 21);
	cr_expect_eq(yaml_int(r, "in_shape.3"), 16);
	cr_expect_eq(yaml_int(r, "data_info.n_neurons_dict.session_2_ventral2_20200626"), 27);
	cr_expect_eq(yaml_int(r, "data_info.sessions_kwargs.session_1_ventral1_20200226.roi_ids.1"),
	             105);
	cr_expect_eq(fv_node_size(fv_node_path(r, "data_info.sessions_kwargs."
	                                          "session_1_ventral1_20200226.roi_mask.63")),
	             64);
	double lr;
	cr_assert_eq(fv_node_to_double(fv_node_path(r, "learning_rate"), &lr), FV_OK);
	cr_expect_eq(lr, 0.01);
	cr_expect_str_eq(fv_node_text(fv_node_path(r, "learning_rate")), "0.01");
	cr_expect_str_eq(fv_node_text(fv_node_path(r, "optimizer.eps")), "1e-08");
	cr_expect_str_eq(fv_node_text(fv_node_path(r, "core.gamma_temporal")), "40.0");
	/* Strings stay strings; an interpolation is kept as written. */
	const fv_config_node *olr = fv_node_path(r, "optimizer.lr");
	cr_expect_str_eq(fv_node_text(olr), "${model.learning_rate}");
	cr_expect(fv_node_quoted(olr));
	cr_expect(fv_node_quoted(fv_node_path(r, "data_info.sessions_kwargs."
	                                         "session_1_ventral1_20200226.eye")));
	cr_expect(fv_node_is_null(fv_node_path(r, "loss")));
	bool scale;
	cr_assert_eq(fv_node_to_bool(fv_node_path(r, "readout.scale"), &scale), FV_OK);
	cr_expect(scale);
	double m;
	cr_assert_eq(fv_node_to_double(fv_node_path(r, "data_info.mean_activity_dict."
	                                               "session_1_ventral1_20200226.0"),
	                               &m),
	             FV_OK);
	cr_expect_eq(m, 0.6024288535118103);
	char *text = fv_config_to_yaml(cfg);
	cr_assert_not_null(text, "%s", fv_errmsg());
	/* And back: the YAML text reads as the same tree. */
	fv_config *again = fv_config_load_string(text, strlen(text), "again");
	cr_assert_not_null(again, "%s", fv_errmsg());
	cr_expect_str_eq(fv_node_text(fv_node_path(fv_config_root(again), "optimizer.lr")),
	                 "${model.learning_rate}");
	fv_config_free(again);
	free(text);
	fv_config_free(cfg);
	/* Not everything is configuration. */
	const fv_pyval *root = fv_ckpt_root(c);
	cr_expect_null(fv_pyval_to_config(fv_pyval_get(root, "epoch"), "x"));
	cr_expect(strstr(fv_errmsg(), "a configuration is a dict or a list") != NULL, "%s",
	          fv_errmsg());
	fv_ckpt_close(c);
}

/* ---- hostile fixtures -------------------------------------------------------------------- */

typedef struct hostile {
	const char *file;
	const char *fragment[3];
} hostile;

static const hostile hostiles[] = {
	/* Refused by the first pass, before any object is built: "(GLOBAL)". */
	{"reduce_posix_system",
	 {"GLOBAL posix.system is not allowed", "data.pkl byte 795 (GLOBAL)", NULL}},
	{"builtins_eval", {"GLOBAL builtins.eval is not allowed", "(GLOBAL)", NULL}},
	{"dunder_import", {"GLOBAL __builtin__.getattr is not allowed", "(GLOBAL)", NULL}},
	{"build_unexpected_class", {"GLOBAL subprocess.Popen is not allowed", "(GLOBAL)", NULL}},
	{"zip_bomb_declared", {"archive/data/2", "compressed", NULL}},
	{"zip_bomb_deflate", {"archive/data/2", "compressed", "without being inflated"}},
	{"truncated", {"not a readable zip archive", "truncated", NULL}},
	{"truncated_eocd", {"not a readable zip archive", "truncated", NULL}},
	{"deep_nesting", {"nested deeper than 1000", "max_depth", "(APPEND)"}},
	{"storage_numel_past_record", {"storage '0'", "numel 1000", "larger than its record"}},
	{"tensor_view_past_storage", {"past its storage", "storage_offset 2", "(REDUCE)"}},
	{"legacy_format", {"legacy torch.save file", "unsupported", NULL}},
};

#define PWNED "/tmp/fovea_pwned"

Test(ckpt, hostile_files_are_refused)
{
	unlink(PWNED);
	struct stat sb;
	cr_assert_neq(stat(PWNED, &sb), 0, "%s exists and cannot be removed", PWNED);
	for (size_t i = 0; i < sizeof hostiles / sizeof hostiles[0]; i++) {
		const hostile *h = &hostiles[i];
		char path[512];
		snprintf(path, sizeof path, DATA "hostile/%s.ckpt", h->file);
		for (int mem = 0; mem < 2; mem++) {
			fv_clear_error();
			fv_ckpt *c;
			size_t len = 0;
			char *buf = NULL;
			if (mem) {
				buf = slurp(path, &len);
				c = fv_ckpt_from_memory(buf, len, path, NULL);
			} else {
				c = fv_ckpt_open(path, NULL);
			}
			cr_expect_null(c, "%s was accepted", h->file);
			fv_ckpt_close(c);
			const char *msg = fv_errmsg();
			cr_expect(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s",
			          msg);
			for (int k = 0; k < 3 && h->fragment[k]; k++)
				cr_expect(strstr(msg, h->fragment[k]) != NULL, "%s: \"%s\" lacks \"%s\"",
				          h->file, msg, h->fragment[k]);
			free(buf);
		}
	}
	cr_expect_neq(stat(PWNED, &sb), 0, "a payload ran: %s exists", PWNED);
}

/* The deep list is refused by the depth limit, not by the C stack; with
** the limit raised it loads, and the million-deep tree is freed without
** recursion (this test would overflow the stack otherwise). */
Test(ckpt, million_deep_tree_frees_without_recursion)
{
	fv_ckpt_limits lim = {.max_depth = 2000000};
	fv_ckpt *c = fv_ckpt_open(DATA "hostile/deep_nesting.ckpt", &lim);
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_pyval *v = fv_ckpt_hyper_parameters(c);
	size_t depth = 0;
	while (fv_pyval_kind_of(v) == FV_PY_LIST && fv_pyval_len(v) > 0) {
		v = fv_pyval_item(v, 0);
		depth++;
	}
	cr_expect_eq(depth, 999999);
	fv_config *cfg = fv_pyval_to_config(fv_ckpt_hyper_parameters(c), "deep");
	cr_expect_null(cfg);
	cr_expect(strstr(fv_errmsg(), "nested deeper than a configuration may be") != NULL, "%s",
	          fv_errmsg());
	fv_ckpt_close(c);
}

Test(ckpt, truncated_copies_are_refused)
{
	const char *files[] = {"single_cell_lnp", "hoefling_low_res_gmask"};
	for (int f = 0; f < 2; f++) {
		char path[512];
		snprintf(path, sizeof path, DATA "%s.ckpt", files[f]);
		size_t len;
		char *buf = slurp(path, &len);
		for (int k = 0; k < 100; k++) {
			/* Evenly spread cuts, and the last 20 bytes one by one (EOCD). */
			size_t cut = k < 80 ? len * (size_t)k / 80 : len - (size_t)(100 - k);
			char *copy = malloc(cut + 1);
			memcpy(copy, buf, cut);
			fv_clear_error();
			fv_ckpt *c = fv_ckpt_from_memory(copy, cut, "cut.ckpt", NULL);
			cr_expect_null(c, "%s cut at %zu of %zu was accepted", files[f], cut, len);
			fv_ckpt_close(c);
			cr_expect(strncmp(fv_errmsg(), "cut.ckpt: ", 10) == 0, "%s", fv_errmsg());
			free(copy);
		}
		free(buf);
	}
}

/* Every allocation of a load can fail: the load then reports it and leaks
** nothing (the sanitizer build checks the leaks). */
Test(ckpt, each_failed_allocation_is_reported)
{
	size_t len;
	char *buf = slurp(DATA "single_cell_lnp.ckpt", &len);
	fv_alloc_fail_at(0, false);
	fv_ckpt *c = fv_ckpt_from_memory(buf, len, "sc.ckpt", NULL);
	long n = fv_alloc_fail_at(0, false);
	cr_assert_not_null(c);
	fv_ckpt_close(c);
	cr_assert_gt(n, 10);
	for (long k = 1; k <= n; k++) {
		fv_alloc_fail_at(k, false);
		c = fv_ckpt_from_memory(buf, len, "sc.ckpt", NULL);
		fv_alloc_fail_at(0, false);
		cr_assert_null(c, "allocation %ld of %ld failed unnoticed", k, n);
		cr_assert(strstr(fv_errmsg(), "out of memory") != NULL, "allocation %ld: %s", k,
		          fv_errmsg());
	}
	free(buf);
}

/* ---- hand-written pickles ------------------------------------------------------------------ */

typedef struct pk {
	unsigned char b[16384];
	size_t n;
} pk;

static void op(pk *p, int c)
{
	cr_assert_lt(p->n, sizeof p->b);
	p->b[p->n++] = (unsigned char)c;
}

static void le(pk *p, uint64_t x, int width)
{
	for (int i = 0; i < width; i++)
		op(p, (int)((x >> (8 * i)) & 0xff));
}

static void raw(pk *p, const void *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		op(p, ((const unsigned char *)s)[i]);
}

static void sbu(pk *p, const char *s) /* SHORT_BINUNICODE */
{
	op(p, 0x8c);
	le(p, strlen(s), 1);
	raw(p, s, strlen(s));
}

static void bu(pk *p, const char *s) /* BINUNICODE */
{
	op(p, 'X');
	le(p, strlen(s), 4);
	raw(p, s, strlen(s));
}

static void glob(pk *p, const char *m, const char *n) /* GLOBAL */
{
	op(p, 'c');
	raw(p, m, strlen(m));
	op(p, '\n');
	raw(p, n, strlen(n));
	op(p, '\n');
}

static void binint(pk *p, int32_t v)
{
	op(p, 'J');
	le(p, (uint32_t)v, 4);
}

static void int_tuple(pk *p, int n, const int64_t *v)
{
	op(p, '(');
	for (int i = 0; i < n; i++)
		binint(p, (int32_t)v[i]);
	op(p, 't');
}

/* _rebuild_tensor_v2(storage(type, key, numel), offset, size, stride, False, OrderedDict()) */
static void tensor(pk *p, const char *type, const char *key, int numel, int offset, int ndim,
                   const int64_t *size, const int64_t *stride)
{
	glob(p, "torch._utils", "_rebuild_tensor_v2");
	op(p, '(');
	op(p, '(');
	sbu(p, "storage");
	glob(p, "torch", type);
	sbu(p, key);
	sbu(p, "cpu");
	binint(p, numel);
	op(p, 't');
	op(p, 'Q');
	binint(p, offset);
	int_tuple(p, ndim, size);
	int_tuple(p, ndim, stride);
	op(p, 0x89);
	glob(p, "collections", "OrderedDict");
	op(p, ')');
	op(p, 'R');
	op(p, 't');
	op(p, 'R');
}

typedef struct record {
	const char *key;
	const void *data;
	size_t len;
} record;

typedef struct records {
	const record *r;
	size_t n;
} records;

static fv_status test_get(void *ctx, const char *key, const unsigned char **data, size_t *len)
{
	const records *rs = ctx;
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].key, key) == 0) {
			*data = rs->r[i].data;
			*len = rs->r[i].len;
			return FV_OK;
		}
	return fv_error(FV_ERR_FORMAT, "storage '%s': no record", key);
}

static fv_ckpt *load_pickle(const pk *p, const records *rs, const fv_ckpt_limits *lim)
{
	fv__storage_source src = {(void *)rs, test_get, false};
	return fv__ckpt_from_pickle(p->b, p->n, "hand.pkl", rs ? &src : NULL, lim);
}

static const fv_ckpt_array *tensor_at(const fv_ckpt *c, const char *key)
{
	const fv_ckpt_array *a = fv_pyval_array(fv_pyval_get(fv_ckpt_root(c), key));
	cr_assert_not_null(a, "no tensor '%s'", key);
	return a;
}

Test(ckpt, pickle_protocol4_views_and_dtypes)
{
	float f32[12];
	for (int i = 0; i < 12; i++)
		f32[i] = (float)i;
	/* f16: 1, -2, 65504, the smallest subnormal, inf, 0.5 */
	const uint16_t f16[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3800};
	/* bf16: 1, -2, inf, 0.25 */
	const uint16_t bf16[] = {0x3f80, 0xc000, 0x7f80, 0x3e80};
	const double f64[] = {0.1, 1e300, -3.5};
	const int64_t i64[] = {-1, (int64_t)1 << 40, 7};
	const int32_t i32[] = {-5, 2147483647};
	const int16_t i16[] = {-32768, 12};
	const int8_t i8[] = {-128, 127};
	const uint8_t u8[] = {255, 0};
	const uint8_t b8[] = {0, 1, 2};
	const record recs[] = {
		{"0", f32, sizeof f32},   {"1", f16, sizeof f16}, {"2", bf16, sizeof bf16},
		{"3", f64, sizeof f64},   {"4", i64, sizeof i64}, {"5", i32, sizeof i32},
		{"6", i16, sizeof i16},   {"7", i8, sizeof i8},   {"8", u8, sizeof u8},
		{"9", b8, sizeof b8},
	};
	records rs = {recs, sizeof recs / sizeof recs[0]};
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 4);                   /* PROTO 4 */
	op(&p, 0x95), le(&p, 0, 8);                /* FRAME (its length is only a hint) */
	op(&p, '}'), op(&p, 0x94);                 /* EMPTY_DICT, MEMOIZE -> 0 */
	op(&p, '(');
	sbu(&p, "view"), op(&p, 0x94);             /* memo 1 */
	/* offset 2, size (2, 3), stride (1, 2) over 0..11: [[2,4,6],[3,5,7]] */
	tensor(&p, "FloatStorage", "0", 12, 2, 2, (int64_t[]){2, 3}, (int64_t[]){1, 2});
	sbu(&p, "expand");                         /* stride 0 repeats */
	tensor(&p, "FloatStorage", "0", 12, 11, 2, (int64_t[]){2, 2}, (int64_t[]){0, 0});
	sbu(&p, "f16");
	tensor(&p, "HalfStorage", "1", 6, 0, 1, (int64_t[]){6}, (int64_t[]){1});
	sbu(&p, "bf16");
	tensor(&p, "BFloat16Storage", "2", 4, 0, 1, (int64_t[]){4}, (int64_t[]){1});
	sbu(&p, "f64");
	tensor(&p, "DoubleStorage", "3", 3, 0, 1, (int64_t[]){3}, (int64_t[]){1});
	sbu(&p, "i64");
	tensor(&p, "LongStorage", "4", 3, 1, 0, NULL, NULL); /* 0-d, offset 1 */
	sbu(&p, "i32");
	tensor(&p, "IntStorage", "5", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1});
	sbu(&p, "i16");
	tensor(&p, "ShortStorage", "6", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1});
	sbu(&p, "i8");
	tensor(&p, "CharStorage", "7", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1});
	sbu(&p, "u8");
	tensor(&p, "ByteStorage", "8", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1});
	sbu(&p, "bool");
	tensor(&p, "BoolStorage", "9", 3, 0, 1, (int64_t[]){3}, (int64_t[]){1});
	sbu(&p, "empty");                          /* nothing to read: any offset */
	tensor(&p, "FloatStorage", "0", 12, 40, 2, (int64_t[]){0, 5}, (int64_t[]){5, 1});
	/* STACK_GLOBAL of a memoized module name, and a Parameter. */
	sbu(&p, "param");
	sbu(&p, "torch._utils"), op(&p, 0x94);     /* memo 2 */
	sbu(&p, "_rebuild_parameter"), op(&p, 0x93);
	op(&p, '(');
	tensor(&p, "FloatStorage", "0", 12, 0, 1, (int64_t[]){3}, (int64_t[]){4});
	op(&p, 0x88);                              /* requires_grad */
	glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R');
	op(&p, 't'), op(&p, 'R');
	sbu(&p, "again"), op(&p, 'h'), le(&p, 1, 1); /* BINGET 1: the key 'view' as a value */
	op(&p, 'u');                               /* SETITEMS */
	op(&p, '.');

	fv_ckpt *c = load_pickle(&p, &rs, NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_expect_eq(fv_ckpt_protocol(c), 4);
	const fv_ckpt_array *a = tensor_at(c, "view");
	cr_assert_eq(a->ndim, 2);
	cr_assert_eq(a->dtype, FV_DTYPE_F32);
	const float view[] = {2, 4, 6, 3, 5, 7};
	for (int i = 0; i < 6; i++)
		cr_expect_eq(a->f32[i], view[i], "view[%d]", i);
	a = tensor_at(c, "expand");
	for (int i = 0; i < 4; i++)
		cr_expect_eq(a->f32[i], 11.0f);
	a = tensor_at(c, "f16");
	cr_assert_eq(a->dtype, FV_DTYPE_F16);
	const float want16[] = {1, -2, 65504, 0x1p-24f, INFINITY, 0.5f};
	for (int i = 0; i < 6; i++)
		cr_expect_eq(a->f32[i], want16[i], "f16[%d] = %a", i, (double)a->f32[i]);
	a = tensor_at(c, "bf16");
	const float wantb[] = {1, -2, INFINITY, 0.25f};
	for (int i = 0; i < 4; i++)
		cr_expect_eq(a->f32[i], wantb[i], "bf16[%d]", i);
	a = tensor_at(c, "f64");
	cr_assert_eq(a->dtype, FV_DTYPE_F64);
	cr_expect_eq(a->f32[0], 0.1f);
	cr_expect(isinf(a->f32[1]) && a->f32[1] > 0, "1e300 rounds to inf in float32");
	cr_expect_eq(a->f32[2], -3.5f);
	a = tensor_at(c, "i64");
	cr_assert_eq(a->ndim, 0);
	cr_assert_null(a->f32);
	cr_expect_eq(a->i64[0], (int64_t)1 << 40);
	a = tensor_at(c, "i32");
	cr_expect(a->i64[0] == -5 && a->i64[1] == 2147483647);
	a = tensor_at(c, "i16");
	cr_expect(a->i64[0] == -32768 && a->i64[1] == 12);
	a = tensor_at(c, "i8");
	cr_expect(a->i64[0] == -128 && a->i64[1] == 127);
	a = tensor_at(c, "u8");
	cr_expect(a->i64[0] == 255 && a->i64[1] == 0);
	a = tensor_at(c, "bool");
	cr_assert_eq(a->dtype, FV_DTYPE_BOOL);
	cr_expect(a->i64[0] == 0 && a->i64[1] == 1 && a->i64[2] == 1);
	a = tensor_at(c, "empty");
	cr_expect_eq(a->numel, 0);
	a = tensor_at(c, "param");
	cr_expect(a->is_parameter && a->requires_grad);
	cr_expect(a->f32[0] == 0 && a->f32[1] == 4 && a->f32[2] == 8);
	cr_expect_str_eq(fv_pyval_type_name(fv_pyval_get(fv_ckpt_root(c), "param")),
	                 "torch.nn.Parameter");
	cr_expect_str_eq(fv_pyval_str(fv_pyval_get(fv_ckpt_root(c), "again"), NULL), "view");
	fv_ckpt_close(c);
}

Test(ckpt, pickle_protocol5_values)
{
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 5);
	op(&p, ']'), op(&p, 'q'), le(&p, 0, 1);    /* EMPTY_LIST, BINPUT 0 */
	op(&p, '(');
	op(&p, 0x96), le(&p, 3, 8), raw(&p, "a\0b", 3); /* BYTEARRAY8 */
	op(&p, 0x8e), le(&p, 2, 8), raw(&p, "xy", 2);   /* BINBYTES8 */
	op(&p, 0x98);                                    /* READONLY_BUFFER */
	op(&p, 'C'), le(&p, 1, 1), op(&p, 0xff);         /* SHORT_BINBYTES */
	op(&p, 0x8a), le(&p, 9, 1), raw(&p, "\x00\x00\x00\x00\x00\x00\x00\x80\xff", 9); /* -2^63 */
	op(&p, 0x8a), le(&p, 2, 1), raw(&p, "\xff\x7f", 2); /* 32767 */
	op(&p, 0x8a), le(&p, 0, 1);                      /* LONG1 0 */
	op(&p, 'M'), le(&p, 65535, 2);                   /* BININT2 */
	op(&p, 'G'), raw(&p, "\xbf\xf8\x00\x00\x00\x00\x00\x00", 8); /* BINFLOAT -1.5 */
	op(&p, 'G'), raw(&p, "\xff\xf0\x00\x00\x00\x00\x00\x00", 8); /* -inf */
	op(&p, 0x8f);                                    /* EMPTY_SET */
	op(&p, '('), op(&p, 'K'), le(&p, 1, 1), op(&p, 'K'), le(&p, 2, 1), op(&p, 0x90); /* ADDITEMS */
	op(&p, '('), sbu(&p, "f"), op(&p, 0x91);         /* FROZENSET */
	op(&p, 0x8d), le(&p, 5, 8), raw(&p, "\xc3\xa9t\xc3\xa9", 5); /* BINUNICODE8 "été" */
	glob(&p, "builtins", "slice"), op(&p, 'K'), le(&p, 1, 1), op(&p, 'K'), le(&p, 9, 1),
		op(&p, 0x86), op(&p, 'R');                   /* slice(1, 9) */
	glob(&p, "__builtin__", "set"), op(&p, ']'), op(&p, 'K'), le(&p, 4, 1), op(&p, 'a'),
		op(&p, 0x85), op(&p, 'R');                   /* set([4]) */
	glob(&p, "collections", "defaultdict"), glob(&p, "__builtin__", "list"), op(&p, 0x85),
		op(&p, 'R'), sbu(&p, "k"), op(&p, 'N'), op(&p, 's'); /* defaultdict(list, k=None) */
	glob(&p, "_codecs", "encode"), bu(&p, "\xc3\xbf\x01"), sbu(&p, "latin1"), op(&p, 0x86),
		op(&p, 'R');                                 /* b'\xff\x01' */
	glob(&p, "typing", "Any");
	op(&p, 'e');                                     /* APPENDS */
	op(&p, '.');

	fv_ckpt *c = load_pickle(&p, NULL, NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_pyval *l = fv_ckpt_root(c);
	cr_assert_eq(fv_pyval_len(l), 17);
	size_t n;
	const unsigned char *b = fv_pyval_bytes(fv_pyval_item(l, 0), &n);
	cr_expect(n == 3 && memcmp(b, "a\0b", 3) == 0);
	b = fv_pyval_bytes(fv_pyval_item(l, 1), &n);
	cr_expect(n == 2 && memcmp(b, "xy", 2) == 0);
	b = fv_pyval_bytes(fv_pyval_item(l, 2), &n);
	cr_expect(n == 1 && b[0] == 0xff);
	int64_t i;
	fv_pyval_to_int(fv_pyval_item(l, 3), &i);
	cr_expect_eq(i, INT64_MIN);
	fv_pyval_to_int(fv_pyval_item(l, 4), &i);
	cr_expect_eq(i, 32767);
	fv_pyval_to_int(fv_pyval_item(l, 5), &i);
	cr_expect_eq(i, 0);
	fv_pyval_to_int(fv_pyval_item(l, 6), &i);
	cr_expect_eq(i, 65535);
	double d;
	fv_pyval_to_double(fv_pyval_item(l, 7), &d);
	cr_expect_eq(d, -1.5);
	fv_pyval_to_double(fv_pyval_item(l, 8), &d);
	cr_expect(isinf(d) && d < 0);
	const fv_pyval *set = fv_pyval_item(l, 9);
	cr_expect_str_eq(fv_pyval_type_name(set), "set");
	cr_expect_eq(fv_pyval_len(set), 2);
	cr_expect_str_eq(fv_pyval_type_name(fv_pyval_item(l, 10)), "frozenset");
	cr_expect_str_eq(fv_pyval_str(fv_pyval_item(l, 11), NULL), "\xc3\xa9t\xc3\xa9");
	const fv_pyval *sl = fv_pyval_item(l, 12);
	cr_assert_eq(fv_pyval_kind_of(sl), FV_PY_SLICE);
	fv_pyval_to_int(fv_pyval_item(sl, 1), &i);
	cr_expect_eq(i, 9);
	cr_expect_eq(fv_pyval_kind_of(fv_pyval_item(sl, 2)), FV_PY_NONE);
	cr_expect_eq(fv_pyval_len(fv_pyval_item(l, 13)), 1);
	const fv_pyval *dd = fv_pyval_item(l, 14);
	cr_expect_eq(fv_pyval_kind_of(dd), FV_PY_DICT);
	cr_expect_eq(fv_pyval_kind_of(fv_pyval_get(dd, "k")), FV_PY_NONE);
	cr_expect_not_null(fv_pyval_get(dd, "k"));
	b = fv_pyval_bytes(fv_pyval_item(l, 15), &n);
	cr_expect(n == 2 && b[0] == 0xff && b[1] == 1);
	cr_expect_eq(fv_pyval_kind_of(fv_pyval_item(l, 16)), FV_PY_GLOBAL);
	cr_expect_str_eq(fv_pyval_type_name(fv_pyval_item(l, 16)), "typing.Any");
	fv_ckpt_close(c);
}

/* Protocol 0's text opcodes (a pickle of Python 2 or pickle.dumps(x, 0)). */
Test(ckpt, pickle_protocol0_text)
{
	static const char text[] =
		"(dp0\n"
		"S'a\\'b\\x41\\n'\n"          /* STRING 'a'bA\n' */
		"p1\n"
		"I01\n"                         /* True */
		"sVcaf\\u00e9\n"                /* UNICODE 'café' */
		"p2\n"
		"(lp3\n"
		"L-12345678901L\n"
		"aF1.5e-05\n"
		"aI00\n"                        /* False */
		"aI42\n"
		"ag1\n"                         /* GET 1: "a'bA\n" */
		"aNa(I1\nI2\ntp4\n"
		"a(I7\n0I8\n2ta"                /* (7) popped, (8, 8) */
		"(I9\n1"                        /* POP_MARK */
		"s.";
	pk p = {.n = 0};
	raw(&p, text, sizeof text - 1);
	fv_ckpt *c = load_pickle(&p, NULL, NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_pyval *d = fv_ckpt_root(c);
	cr_assert_eq(fv_pyval_len(d), 2);
	cr_expect_str_eq(fv_pyval_str(fv_pyval_key(d, 0), NULL), "a'bA\n");
	cr_expect_eq(fv_pyval_kind_of(fv_pyval_item(d, 0)), FV_PY_BOOL);
	cr_expect_str_eq(fv_pyval_str(fv_pyval_key(d, 1), NULL), "caf\xc3\xa9");
	const fv_pyval *l = fv_pyval_item(d, 1);
	cr_assert_eq(fv_pyval_len(l), 8);
	int64_t i;
	double x;
	fv_pyval_to_int(fv_pyval_item(l, 0), &i);
	cr_expect_eq(i, -12345678901LL);
	fv_pyval_to_double(fv_pyval_item(l, 1), &x);
	cr_expect_eq(x, 1.5e-05);
	bool b = true;
	fv_pyval_to_bool(fv_pyval_item(l, 2), &b);
	cr_expect(!b);
	fv_pyval_to_int(fv_pyval_item(l, 3), &i);
	cr_expect_eq(i, 42);
	cr_expect_str_eq(fv_pyval_str(fv_pyval_item(l, 4), NULL), "a'bA\n");
	cr_expect_eq(fv_pyval_kind_of(fv_pyval_item(l, 5)), FV_PY_NONE);
	cr_expect_eq(fv_pyval_len(fv_pyval_item(l, 6)), 2);
	const fv_pyval *t = fv_pyval_item(l, 7);
	cr_assert_eq(fv_pyval_len(t), 2, "(8, 8)");
	fv_pyval_to_int(fv_pyval_item(t, 1), &i);
	cr_expect_eq(i, 8);
	fv_ckpt_close(c);
}

static void dtype(pk *p, const char *code, const char *order)
{
	glob(p, "numpy", "dtype");
	sbu(p, code);
	op(p, 0x89), op(p, 0x88), op(p, 0x87), op(p, 'R'); /* (code, False, True) */
	op(p, '(');
	op(p, 'K'), le(p, 3, 1);
	sbu(p, order);
	op(p, 'N'), op(p, 'N'), op(p, 'N');
	binint(p, -1), binint(p, -1);
	op(p, 'K'), le(p, 0, 1);
	op(p, 't'), op(p, 'b');
}

/* An omegaconf value node: NEWOBJ + BUILD {_parent: memo[parent], _val: <emitted by val>}. */
static void any_node(pk *p, int parent, void (*val)(pk *, const void *), const void *arg)
{
	glob(p, "omegaconf.nodes", "AnyNode"), op(p, ')'), op(p, 0x81);
	op(p, '}'), op(p, '(');
	sbu(p, "_metadata"), glob(p, "omegaconf.base", "Metadata"), op(p, ')'), op(p, 0x81);
	op(p, '}'), op(p, '('), sbu(p, "ref_type"), glob(p, "typing", "Any"), op(p, 'u'), op(p, 'b');
	sbu(p, "_parent"), op(p, 'h'), le(p, (uint64_t)parent, 1);
	sbu(p, "_val"), val(p, arg);
	op(p, 'u'), op(p, 'b');
}

static void val_str(pk *p, const void *s)
{
	sbu(p, s);
}

static void val_int(pk *p, const void *i)
{
	binint(p, *(const int32_t *)i);
}

static void val_float(pk *p, const void *f)
{
	(void)f;
	op(p, 'G'), raw(p, "\x3f\xec\xcc\xcc\xcc\xcc\xcc\xcd", 8); /* 0.9 */
}

/* numpy arrays (both pickle forms), dtypes with their byte order, scalars;
** OrderedDict with BUILD; omegaconf containers whose nodes point back at
** them through _parent. */
Test(ckpt, pickle_numpy_and_omegaconf)
{
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 2);
	glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R');
	op(&p, '(');
	/* _reconstruct(ndarray, (0,), b'b') + BUILD((1, (2, 3), <i2, True, data)):
	** Fortran order, so memory 1..6 is [[1, 3, 5], [2, 4, 6]]. */
	sbu(&p, "fortran");
	glob(&p, "numpy.core.multiarray", "_reconstruct");
	glob(&p, "numpy", "ndarray");
	op(&p, 'K'), le(&p, 0, 1), op(&p, 0x85);
	op(&p, 'C'), le(&p, 1, 1), op(&p, 'b');
	op(&p, 0x87), op(&p, 'R');
	op(&p, '(');
	op(&p, 'K'), le(&p, 1, 1);
	op(&p, 'K'), le(&p, 2, 1), op(&p, 'K'), le(&p, 3, 1), op(&p, 0x86);
	dtype(&p, "i2", "<");
	op(&p, 'q'), le(&p, 9, 1);                 /* the dtype: memo 9 */
	op(&p, 0x88);
	op(&p, 'C'), le(&p, 12, 1), raw(&p, "\1\0\2\0\3\0\4\0\5\0\6\0", 12);
	op(&p, 't'), op(&p, 'b');
	/* _frombuffer(b'...', >f4, (2,), 'C'): big-endian 1.0, -2.0 */
	sbu(&p, "big");
	glob(&p, "numpy._core.numeric", "_frombuffer");
	op(&p, '(');
	op(&p, 'C'), le(&p, 8, 1), raw(&p, "\x3f\x80\x00\x00\xc0\x00\x00\x00", 8);
	dtype(&p, "f4", ">");
	op(&p, 'K'), le(&p, 2, 1), op(&p, 0x85);
	sbu(&p, "C");
	op(&p, 't'), op(&p, 'R');
	/* scalar(<i2, b'\xfe\xff') is -2 */
	sbu(&p, "scalar");
	glob(&p, "numpy._core.multiarray", "scalar");
	op(&p, 'h'), le(&p, 9, 1);
	op(&p, 'C'), le(&p, 2, 1), raw(&p, "\xfe\xff", 2);
	op(&p, 0x86), op(&p, 'R');
	/* DictConfig (memo 20) {lr: "${model.lr}", n: 3, list: ListConfig (memo 21) [0.9],
	** missing: "???"} */
	sbu(&p, "cfg");
	glob(&p, "omegaconf.dictconfig", "DictConfig"), op(&p, ')'), op(&p, 0x81);
	op(&p, 'q'), le(&p, 20, 1);
	op(&p, '}'), op(&p, '(');
	sbu(&p, "_metadata"), glob(&p, "omegaconf.base", "ContainerMetadata"), op(&p, ')'),
		op(&p, 0x81);
	op(&p, '}'), op(&p, '('), sbu(&p, "key_type"), glob(&p, "__builtin__", "long");
	sbu(&p, "resolver_cache"), glob(&p, "collections", "defaultdict"),
		glob(&p, "__builtin__", "dict"), op(&p, 0x85), op(&p, 'R');
	op(&p, 'u'), op(&p, 'b');
	sbu(&p, "_parent"), op(&p, 'N');
	sbu(&p, "_content"), op(&p, '}'), op(&p, '(');
	sbu(&p, "lr"), any_node(&p, 20, val_str, "${model.lr}");
	int32_t three = 3;
	sbu(&p, "n"), any_node(&p, 20, val_int, &three);
	sbu(&p, "list");
	glob(&p, "omegaconf.listconfig", "ListConfig"), op(&p, ')'), op(&p, 0x81);
	op(&p, 'q'), le(&p, 21, 1);
	op(&p, '}'), op(&p, '(');
	sbu(&p, "_parent"), op(&p, 'h'), le(&p, 20, 1);
	sbu(&p, "_content"), op(&p, ']'), op(&p, '('), any_node(&p, 21, val_float, NULL), op(&p, 'e');
	op(&p, 'u'), op(&p, 'b');
	sbu(&p, "missing"), any_node(&p, 20, val_str, "???");
	op(&p, 'u');                               /* _content's items */
	op(&p, 'u'), op(&p, 'b');                  /* DictConfig state, BUILD */
	op(&p, 'u');                               /* the OrderedDict's items */
	op(&p, '}'), op(&p, '('), sbu(&p, "_metadata"), op(&p, '}'), op(&p, 'u');
	op(&p, 'b');                               /* OrderedDict attributes: ignored */
	op(&p, '.');

	fv_ckpt *c = load_pickle(&p, NULL, NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_pyval *r = fv_ckpt_root(c);
	cr_assert_eq(fv_pyval_len(r), 4);
	const fv_ckpt_array *a = tensor_at(c, "fortran");
	cr_expect_str_eq(fv_pyval_type_name(fv_pyval_get(r, "fortran")), "numpy.ndarray");
	cr_assert_eq(a->dtype, FV_DTYPE_I16);
	cr_assert(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3);
	const int64_t want[] = {1, 3, 5, 2, 4, 6};
	for (int i = 0; i < 6; i++)
		cr_expect_eq(a->i64[i], want[i], "[%d]", i);
	a = tensor_at(c, "big");
	cr_expect(a->f32[0] == 1.0f && a->f32[1] == -2.0f, "%g %g", (double)a->f32[0],
	          (double)a->f32[1]);
	int64_t i;
	cr_assert_eq(fv_pyval_to_int(fv_pyval_get(r, "scalar"), &i), FV_OK);
	cr_expect_eq(i, -2);
	const fv_pyval *cfg = fv_pyval_get(r, "cfg");
	cr_assert_eq(fv_pyval_kind_of(cfg), FV_PY_DICT, "%s", fv_pyval_type_name(cfg));
	cr_expect_str_eq(fv_pyval_str(fv_pyval_get(cfg, "lr"), NULL), "${model.lr}");
	cr_assert_eq(fv_pyval_to_int(fv_pyval_get(cfg, "n"), &i), FV_OK);
	cr_expect_eq(i, 3);
	double x;
	cr_assert_eq(fv_pyval_to_double(fv_pyval_path(cfg, "list.0"), &x), FV_OK);
	cr_expect_eq(x, 0.9);
	cr_expect_str_eq(fv_pyval_type_name(fv_pyval_get(cfg, "list")), "list");
	cr_expect_str_eq(fv_pyval_str(fv_pyval_get(cfg, "missing"), NULL), "???");
	/* As a configuration, "???" is missing and the interpolation resolves
	** only when asked to, against the configuration itself. */
	fv_config *conf = fv_pyval_to_config(cfg, "cfg");
	cr_assert_not_null(conf, "%s", fv_errmsg());
	cr_expect_eq(fv_config_resolve(conf), FV_ERR_CONFIG);
	fv_config_free(conf);
	fv_ckpt_close(c);
}

/* ---- refusals ---------------------------------------------------------------------------- */

typedef struct refusal {
	const char *what;
	const char *bytes;
	size_t len;
	const char *fragment[2];
} refusal;

#define R(what, lit, f1, f2) {what, lit, sizeof lit - 1, {f1, f2}}

static const refusal refusals[] = {
	R("STACK_GLOBAL", "\x80\x04\x8c\x02os\x8c\x06system\x93.",
	  "byte 14 (STACK_GLOBAL): STACK_GLOBAL os.system is not allowed", NULL),
	R("INST", "(iposix\nsystem\n.", "byte 1 (INST): opcode INST posix.system is refused", NULL),
	R("OBJ", "\x80\x02(o.", "opcode OBJ is refused", NULL),
	R("EXT1", "\x80\x02\x82\x01.", "opcode EXT1 is refused", NULL),
	R("NEXT_BUFFER", "\x80\x05\x97.", "opcode NEXT_BUFFER is refused", NULL),
	R("unknown", "\x80\x02\xff.", "byte 2 (?): unknown opcode 0xff", NULL),
	R("protocol", "\x80\x06N.", "pickle protocol 6 is newer", NULL),
	R("memo", "\x80\x02h\x05.", "memo entry 5 was never stored", NULL),
	R("underflow", "\x80\x02N(a.", "(APPEND): stack underflow", NULL),
	R("no mark", "\x80\x02Nt.", "no MARK", NULL),
	R("reduce Any", "\x80\x02\x63typing\nAny\n)R.", "REDUCE on typing.Any is not allowed", NULL),
	R("reduce dict", "\x80\x02})R.", "REDUCE on a dict (dict)", NULL),
	R("reduce args", "\x80\x02\x63__builtin__\nset\n]R.", "the arguments are a list, not a tuple",
	  NULL),
	R("newobj", "\x80\x02\x63torch._utils\n_rebuild_tensor_v2\n)\x81.",
	  "NEWOBJ on torch._utils._rebuild_tensor_v2 is not allowed", NULL),
	R("newobj list", "\x80\x02\x63__builtin__\nlist\n)\x81.",
	  "NEWOBJ on __builtin__.list is not allowed", NULL),
	R("build dict", "\x80\x02}}b.", "BUILD on a dict (dict) is not allowed", NULL),
	R("build node twice", "\x80\x02\x63omegaconf.nodes\nAnyNode\n)\x81}b}b.",
	  "(BUILD): BUILD on None", NULL),
	R("append to tuple", "\x80\x02)Na.", "the target is a tuple (tuple), not a list", NULL),
	R("cycle", "\x80\x02]q\x00h\x00\x61.", "a container contains itself (a cycle)", NULL),
	R("long", "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.", "wider than 64 bits",
	  NULL),
	R("utf8", "\x80\x02X\x02\x00\x00\x00\xc3\x28.", "not valid UTF-8", NULL),
	R("overlong utf8", "\x80\x02X\x02\x00\x00\x00\xc0\x80.", "not valid UTF-8", NULL),
	R("truncated arg", "\x80\x02X\xff\x00\x00\x00" "ab", "BINUNICODE declares 255 bytes", NULL),
	R("no stop", "\x80\x02N", "ends without STOP", NULL),
	R("two values", "\x80\x02NN.", "STOP with 2 values", NULL),
	R("pid int", "\x80\x02K\x01Q.", "a persistent id is an int", NULL),
	R("pid bare",
	  "\x80\x02(\x8c\x07storage\x63torch\nFloatStorage\n\x8c\x01\x30\x8c\x03\x63puK\x01tQ.",
	  "storage '0': a bare pickle has no storage records", NULL),
	R("pid type", "\x80\x02(\x8c\x07storage\x63typing\nAny\n\x8c\x01\x30\x8c\x03\x63puK\x01tQ.",
	  "storage type is a class or function (typing.Any)", NULL),
	R("unhashable", "\x80\x02}]Ns.", "a dict key is a list", NULL),
	R("dtype O", "\x80\x02\x63numpy\ndtype\n\x8c\x02O8\x85R.", "numpy type 'O8' is not supported",
	  NULL),
	R("codec", "\x80\x02\x63_codecs\nencode\n\x8c\x01\x61\x8c\x05rot13\x86R.",
	  "_codecs.encode: the encoding is a str", NULL),
	R("latin1", "\x80\x02\x63_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80\x8c\x06latin1\x86R.",
	  "character U+0100 is beyond latin-1", NULL),
	R("string quote", "S'abc\n.", "the STRING argument must be quoted", NULL),
	R("int text", "I12x\n.", "'12x' is not a decimal integer", NULL),
	R("rebuild args", "\x80\x02\x63torch._utils\n_rebuild_tensor_v2\n)R.",
	  "called with 0 arguments", NULL),
	R("frozenset add", "\x80\x04(\x91(N\x90.", "not a set", NULL),
	R("setitems odd", "\x80\x02}(Nu.", "odd number of items", NULL),
};

Test(ckpt, pickle_refusals)
{
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const refusal *r = &refusals[i];
		pk p = {.n = 0};
		raw(&p, r->bytes, r->len);
		fv_clear_error();
		fv_ckpt *c = load_pickle(&p, NULL, NULL);
		cr_expect_null(c, "%s: accepted", r->what);
		fv_ckpt_close(c);
		const char *msg = fv_errmsg();
		cr_expect(strncmp(msg, "hand.pkl: data.pkl", 18) == 0, "%s: %s", r->what, msg);
		for (int k = 0; k < 2 && r->fragment[k]; k++)
			cr_expect(strstr(msg, r->fragment[k]) != NULL, "%s: \"%s\" lacks \"%s\"", r->what,
			          msg, r->fragment[k]);
	}
}

/* Nesting made through the memo after the fact (each list was shallow when
** it was put in its parent) is caught by the final check. */
Test(ckpt, depth_grown_behind_the_memo)
{
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 2);
	op(&p, ']'), op(&p, 'q'), le(&p, 0, 1);
	op(&p, ']'), op(&p, 'q'), le(&p, 1, 1), op(&p, 'a'); /* L0 = [L1] */
	for (int k = 2; k < 5; k++) {                          /* L(k-1).append(Lk) */
		op(&p, ']'), op(&p, 'q'), le(&p, (uint64_t)k, 1), op(&p, '0');
		op(&p, 'h'), le(&p, (uint64_t)k - 1, 1), op(&p, 'h'), le(&p, (uint64_t)k, 1);
		op(&p, 'a'), op(&p, '0');
	}
	op(&p, '.');
	fv_ckpt_limits lim = {.max_depth = 4};
	fv_ckpt *c = load_pickle(&p, NULL, &lim);
	cr_expect_null(c);
	cr_expect(strstr(fv_errmsg(), "hand.pkl: data.pkl: containers nested deeper than 4") != NULL,
	          "%s", fv_errmsg());
	lim.max_depth = 5;
	c = load_pickle(&p, NULL, &lim);
	cr_assert_not_null(c, "%s", fv_errmsg());
	fv_ckpt_close(c);
}

Test(ckpt, limits)
{
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 2), op(&p, '(');
	for (int i = 0; i < 5; i++)
		op(&p, 'N');
	op(&p, 't'), op(&p, '.');
	fv_ckpt_limits lim = {.max_stack = 4};
	cr_expect_null(load_pickle(&p, NULL, &lim));
	cr_expect(strstr(fv_errmsg(), "(NONE): the stack grows beyond 4 entries "
	                              "(fv_ckpt_limits.max_stack)") != NULL,
	          "%s", fv_errmsg());
	lim.max_stack = 5;
	fv_ckpt *c = load_pickle(&p, NULL, &lim);
	cr_expect_not_null(c, "%s", fv_errmsg());
	fv_ckpt_close(c);

	pk m = {.n = 0};
	op(&m, 0x80), op(&m, 2), op(&m, 'N'), op(&m, 'r'), le(&m, 256, 4), op(&m, '.');
	fv_ckpt_limits ml = {.max_memo = 100};
	cr_expect_null(load_pickle(&m, NULL, &ml));
	cr_expect(strstr(fv_errmsg(), "memo index 256 is beyond the limit of 100") != NULL, "%s",
	          fv_errmsg());

	/* A stride-0 view of one float as 10^8 elements: refused before any
	** of it is allocated. */
	float one = 1;
	const record rec = {"0", &one, sizeof one};
	records rs = {&rec, 1};
	pk t = {.n = 0};
	op(&t, 0x80), op(&t, 2);
	tensor(&t, "FloatStorage", "0", 1, 0, 3, (int64_t[]){1000, 1000, 100},
	       (int64_t[]){0, 0, 0});
	op(&t, '.');
	fv_ckpt_limits bl = {.max_bytes = 64 << 20};
	cr_expect_null(load_pickle(&t, &rs, &bl));
	cr_expect(strstr(fv_errmsg(), "(REDUCE): reading it needs more than 67108864 bytes") != NULL,
	          "%s", fv_errmsg());
	cr_expect(strstr(fv_errmsg(), "max_bytes") != NULL);
	/* A view whose extent overflows 64 bits. */
	pk o = {.n = 0};
	op(&o, 0x80), op(&o, 2);
	tensor(&o, "FloatStorage", "0", 1, 0, 2, (int64_t[]){3, 2},
	       (int64_t[]){INT32_MAX, INT32_MAX});
	op(&o, '.');
	cr_expect_null(load_pickle(&o, &rs, NULL));
	cr_expect(strstr(fv_errmsg(), "past its storage") != NULL, "%s", fv_errmsg());
	/* A record that is not there. */
	pk q = {.n = 0};
	op(&q, 0x80), op(&q, 2);
	tensor(&q, "FloatStorage", "7", 1, 0, 0, NULL, NULL);
	op(&q, '.');
	cr_expect_null(load_pickle(&q, &rs, NULL));
	cr_expect(strstr(fv_errmsg(), "(BINPERSID): storage '7': no record") != NULL, "%s",
	          fv_errmsg());
}

/* ---- value API ------------------------------------------------------------------------------ */

Test(ckpt, accessors_are_total)
{
	cr_expect_eq(fv_pyval_kind_of(NULL), FV_PY_NONE);
	cr_expect_str_eq(fv_pyval_type_name(NULL), "NoneType");
	cr_expect_eq(fv_pyval_len(NULL), 0);
	cr_expect_null(fv_pyval_item(NULL, 0));
	cr_expect_null(fv_pyval_key(NULL, 0));
	cr_expect_null(fv_pyval_get(NULL, "x"));
	cr_expect_null(fv_pyval_path(NULL, "x"));
	cr_expect_null(fv_pyval_str(NULL, NULL));
	cr_expect_null(fv_pyval_bytes(NULL, NULL));
	cr_expect_null(fv_pyval_array(NULL));
	cr_expect_null(fv_ckpt_root(NULL));
	fv_ckpt_close(NULL);
	int64_t i;
	EXPECT_ERROR(fv_pyval_to_int(NULL, &i), FV_ERR_FORMAT, "expected an int, got None");
	EXPECT_ERROR(fv_ckpt_open(NULL, NULL) ? FV_OK : FV_ERR_ARG, FV_ERR_ARG, "NULL path");
	EXPECT_ERROR(fv_ckpt_open("/nonexistent/x.ckpt", NULL) ? FV_OK : FV_ERR_IO, FV_ERR_IO,
	             "/nonexistent/x.ckpt: cannot open");

	fv_ckpt *c = open_good("single_cell_lnp");
	const fv_pyval *root = fv_ckpt_root(c);
	double d;
	EXPECT_ERROR(fv_pyval_to_double(fv_pyval_get(root, "pytorch-lightning_version"), &d),
	             FV_ERR_FORMAT, "expected a number, got a str (str)");
	bool b;
	EXPECT_ERROR(fv_pyval_to_bool(fv_pyval_get(root, "epoch"), &b), FV_ERR_FORMAT,
	             "expected a bool, got an int");
	cr_expect_null(fv_pyval_get(root, "nope"));
	cr_expect_null(fv_pyval_path(root, "optimizer_states.7"));
	cr_expect_null(fv_pyval_path(root, "optimizer_states.x"));
	cr_expect_not_null(fv_pyval_path(root, "optimizer_states.0.param_groups.0.lr"));
	cr_expect_null(fv_pyval_item(root, 1000));
	EXPECT_ERROR(fv_pyval_tensor(root, "x") ? FV_OK : FV_ERR_FORMAT, FV_ERR_FORMAT,
	             "expected a tensor or numpy array, got a dict");
	/* A 5-d weight fits fovea's tensors. */
	fv_tensor *t = fv_pyval_tensor(fv_pyval_get(fv_ckpt_state_dict(c), "space_conv.weight"), NULL);
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_expect_eq(t->ndim, 5);
	fv_tensor_free(t);
	fv_ckpt_close(c);
}

/* ---- zip containers ------------------------------------------------------------------------ */

typedef struct entry {
	const char *name;
	const void *data;
	size_t len;
	bool deflate;
} entry;

static char tmpdir[] = "/tmp/fovea_ckpt_XXXXXX";
/* A flag, not the template's last character: mkdtemp may well put an 'X'
** there (one run in 62 did, and the next call failed). */
static bool tmpdir_made;

static const char *write_zip(const char *file, const entry *e, size_t n)
{
	static char path[256];
	if (!tmpdir_made) {
		cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
		tmpdir_made = true;
	}
	snprintf(path, sizeof path, "%s/%s", tmpdir, file);
	int err;
	zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
	cr_assert_not_null(z);
	for (size_t i = 0; i < n; i++) {
		zip_source_t *s = zip_source_buffer(z, e[i].data, e[i].len, 0);
		zip_int64_t idx = zip_file_add(z, e[i].name, s, ZIP_FL_OVERWRITE);
		cr_assert_geq(idx, 0, "%s", zip_strerror(z));
		zip_set_file_compression(z, (zip_uint64_t)idx, e[i].deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
		                         0);
	}
	cr_assert_eq(zip_close(z), 0);
	return path;
}

/* {"w": tensor of FloatStorage '0' (2 floats)} */
static pk small_pickle(void)
{
	pk p = {.n = 0};
	op(&p, 0x80), op(&p, 2), op(&p, '}'), sbu(&p, "w");
	tensor(&p, "FloatStorage", "0", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1});
	op(&p, 's'), op(&p, '.');
	return p;
}

Test(ckpt, zip_layouts)
{
	pk p = small_pickle();
	const float le_data[] = {1.5f, -2.0f};
	const unsigned char be_data[] = {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0};
	/* torch 1.13: the file stem as prefix, no byteorder record */
	const entry old[] = {{"mymodel/data.pkl", p.b, p.n, false},
	                     {"mymodel/data/0", le_data, sizeof le_data, false},
	                     {"mymodel/version", "3\n", 2, false}};
	fv_ckpt *c = fv_ckpt_open(write_zip("old.pt", old, 3), NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_expect_str_eq(fv_ckpt_record_prefix(c), "mymodel");
	const fv_ckpt_array *a = tensor_at(c, "w");
	cr_expect(a->f32[0] == 1.5f && a->f32[1] == -2.0f);
	cr_expect_eq(fv_ckpt_state_dict(c), fv_ckpt_root(c), "a bare state dict is its own");
	fv_ckpt_close(c);
	/* a big-endian machine's checkpoint */
	const entry big[] = {{"archive/data.pkl", p.b, p.n, false},
	                     {"archive/byteorder", "big", 3, false},
	                     {"archive/data/0", be_data, sizeof be_data, false}};
	c = fv_ckpt_open(write_zip("big.ckpt", big, 3), NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	a = tensor_at(c, "w");
	cr_expect(a->f32[0] == 1.5f && a->f32[1] == -2.0f, "%g %g", (double)a->f32[0],
	          (double)a->f32[1]);
	fv_ckpt_close(c);

	struct {
		const char *file;
		entry e[3];
		size_t n;
		const char *fragment;
	} bad[] = {
		{"two.ckpt",
		 {{"a/data.pkl", p.b, p.n, false}, {"b/data.pkl", p.b, p.n, false}, {0}},
		 2,
		 "two pickles, 'a/data.pkl' and 'b/data.pkl'"},
		{"nopkl.ckpt",
		 {{"archive/data/0", le_data, 8, false}, {0}, {0}},
		 1,
		 "no record PREFIX/data.pkl"},
		{"deflate.ckpt",
		 {{"archive/data.pkl", p.b, p.n, false}, {"archive/data/0", le_data, 8, true}, {0}},
		 2,
		 "record 'archive/data/0' is compressed (zip method 8, deflate)"},
		{"order.ckpt",
		 {{"archive/data.pkl", p.b, p.n, false}, {"archive/byteorder", "middle", 6, false},
		  {"archive/data/0", le_data, 8, false}},
		 3,
		 "byteorder' says 'middle'"},
		{"missing.ckpt",
		 {{"archive/data.pkl", p.b, p.n, false}, {"archive/data/1", le_data, 8, false}, {0}},
		 2,
		 "(BINPERSID): storage '0': the archive has no record archive/data/0"},
		{"short.ckpt",
		 {{"archive/data.pkl", p.b, p.n, false}, {"archive/data/0", le_data, 4, false}, {0}},
		 2,
		 "numel 2 x 4 bytes does not fit in its record data/0 of 4 bytes"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *path = write_zip(bad[i].file, bad[i].e, bad[i].n);
		c = fv_ckpt_open(path, NULL);
		cr_expect_null(c, "%s accepted", bad[i].file);
		fv_ckpt_close(c);
		cr_expect(strncmp(fv_errmsg(), path, strlen(path)) == 0, "%s", fv_errmsg());
		cr_expect(strstr(fv_errmsg(), bad[i].fragment) != NULL, "%s: \"%s\" lacks \"%s\"",
		          bad[i].file, fv_errmsg(), bad[i].fragment);
	}
	cr_expect_null(fv_ckpt_open(tmpdir, NULL));
	cr_expect(strstr(fv_errmsg(), "not a regular file") != NULL, "%s", fv_errmsg());
	cr_expect_null(fv_ckpt_from_memory("PK\3\4", 4, "tiny", NULL));
	cr_expect(strstr(fv_errmsg(), "tiny: not a readable zip archive") != NULL, "%s", fv_errmsg());
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	cr_expect_eq(system(cmd), 0);
}
