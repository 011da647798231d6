/*
** test_checkpoint.c: checkpoints (framework/checkpoint.c): the state_dict
** under its module names, the metadata, the optimizer state (a restored
** optimizer takes exactly the steps the original takes), every error a bad
** file or a mismatched model gives, and that a writer killed mid-write
** leaves a readable checkpoint behind.
**
** Models are built from a test component with fv__module_new, so no plugin
** is needed; expected values are the ones the test puts in.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "plugin/plugin_internal.h"

/* ---- a small model -------------------------------------------------------------- */

static const char *const test_names[] = {"TestNet", NULL};
static const fv_component test_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = test_names,
	.doc = "a container of tensors for the checkpoint tests",
};

/* core.weight (3, width), core.num_batches_tracked (), readout.s1.bias (2),
** filled with base + 0.25 * i. */
static fv_module *make_model(int64_t width, double base)
{
	fv_module *m = fv__module_new(&test_component, "model");
	fv_module *core = fv__module_new(&test_component, "core");
	fv_module *readout = fv__module_new(&test_component, "readout");
	fv_module *s1 = fv__module_new(&test_component, "s1");
	cr_assert(m && core && readout && s1);
	fv_tensor *w = fv_module_add_param(core, "weight", 2, (int64_t[]){3, width});
	fv_tensor *nbt = fv_module_add_buffer(core, "num_batches_tracked", 0, NULL);
	fv_tensor *b = fv_module_add_param(s1, "bias", 1, (int64_t[]){2});
	cr_assert(w && nbt && b);
	w->requires_grad = b->requires_grad = true;
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(base + 0.25 * (double)i);
	b->data[0] = (fv_real)(base - 1);
	b->data[1] = (fv_real)(base - 2);
	nbt->data[0] = 7;
	cr_assert_eq(fv_module_add_child(readout, "s1", s1), FV_OK);
	cr_assert_eq(fv_module_add_child(m, "core", core), FV_OK);
	cr_assert_eq(fv_module_add_child(m, "readout", readout), FV_OK);
	return m;
}

static fv_tensor *tensor(fv_module *m, const char *name)
{
	fv_tensor *t = fv_module_tensor(m, name);
	cr_assert_not_null(t, "no tensor %s", name);
	return t;
}

static char dir[256];

static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/fovea_test_ckpt_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static const char *path_in_dir(const char *name)
{
	static char p[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

/* A data info of two sessions with known values. */
typedef struct info_fixture {
	fv_data_info info;
	const char *sessions[2];
	int64_t n_neurons[2];
	fv_tensor *mean[2];
} info_fixture;

static void make_info(info_fixture *f)
{
	memset(f, 0, sizeof *f);
	f->sessions[0] = "s1";
	f->sessions[1] = "session \"two\"";
	f->n_neurons[0] = 2;
	f->n_neurons[1] = 3;
	f->mean[0] = fv_tensor_new(1, (int64_t[]){2});
	f->mean[1] = fv_tensor_new(1, (int64_t[]){3});
	f->mean[0]->data[0] = 0.1f;
	f->mean[0]->data[1] = 1e-7f;
	f->mean[1]->data[0] = 3.5f;
	f->mean[1]->data[1] = 0.333333343f;
	f->mean[1]->data[2] = 12345.678f;
	f->info = (fv_data_info){.n_sessions = 2, .sessions = f->sessions,
	                         .n_neurons = f->n_neurons, .mean_activity = f->mean,
	                         .input_shape = {2, 18, 16}, .stim_mean = 0.5, .stim_std = 2.0};
}

static void free_info(info_fixture *f)
{
	fv_tensor_free(f->mean[0]);
	fv_tensor_free(f->mean[1]);
}

static void save_plain(fv_module *m, const char *path)
{
	fv_checkpoint_content c = {.model = m, .config_yaml = "seed: 1\n"};
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
}

static void expect_message(const char *fragment)
{
	cr_expect(strstr(fv_errmsg(), fragment) != NULL, "message lacks \"%s\": %s", fragment,
	          fv_errmsg());
}

TestSuite(checkpoint, .init = make_dir, .fini = remove_dir);

/* ---- round trips --------------------------------------------------------------------- */

Test(checkpoint, state_dict_names_and_values_round_trip)
{
	fv_module *a = make_model(4, 1.0), *b = make_model(4, 0.0);
	info_fixture f;
	make_info(&f);
	fv_checkpoint_content c = {.model = a, .config_yaml = "model:\n  x: 1\n",
	                           .data_info = &f.info, .trainer_state = "{\"epochs_done\": 3}"};
	const char *path = path_in_dir("a.safetensors");
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());

	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	const fv_safetensors *st = fv_checkpoint_tensors(ck);
	cr_expect_eq(fv_safetensors_count(st), 3);
	const fv_st_entry *w = fv_safetensors_find(st, "core.weight");
	const fv_st_entry *nbt = fv_safetensors_find(st, "core.num_batches_tracked");
	const fv_st_entry *bias = fv_safetensors_find(st, "readout.s1.bias");
	cr_assert(w && nbt && bias, "missing a state_dict name");
	cr_expect_eq(w->dtype, FV_DTYPE_F32);
	cr_expect_eq(w->ndim, 2);
	cr_expect_eq(w->shape[1], 4);
	cr_expect_eq(nbt->dtype, FV_DTYPE_I64, "torch keeps num_batches_tracked as int64");
	int64_t count;
	memcpy(&count, nbt->data, sizeof count);
	cr_expect_eq(count, 7);

	cr_expect_str_eq(fv_checkpoint_config_yaml(ck), "model:\n  x: 1\n");
	cr_expect_str_eq(fv_checkpoint_model_config_yaml(ck), "model:\n  x: 1\n");
	cr_expect_str_eq(fv_checkpoint_version(ck), FV_VERSION_STRING);
	cr_expect_str_eq(fv_checkpoint_trainer_state(ck), "{\"epochs_done\": 3}");

	cr_assert_eq(fv_checkpoint_load_model(ck, b, false), FV_OK, "%s", fv_errmsg());
	fv_tensor *wb = tensor(b, "core.weight");
	for (int64_t i = 0; i < wb->numel; i++)
		cr_expect_eq(wb->data[i], (fv_real)(1.0 + 0.25 * (double)i));
	cr_expect_eq(tensor(b, "readout.s1.bias")->data[1], (fv_real)-1.0);
	cr_expect_eq(tensor(b, "core.num_batches_tracked")->data[0], 7);
	fv_checkpoint_close(ck);
	free_info(&f);
	fv_module_free(a);
	fv_module_free(b);
}

Test(checkpoint, data_info_round_trips_exactly)
{
	fv_module *a = make_model(2, 1.0);
	info_fixture f;
	make_info(&f);
	fv_checkpoint_content c = {.model = a, .data_info = &f.info};
	const char *path = path_in_dir("info.safetensors");
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	const fv_data_info *in = fv_checkpoint_data_info(ck);
	cr_assert_not_null(in);
	cr_assert_eq(in->n_sessions, 2);
	cr_expect_str_eq(in->sessions[0], "s1");
	cr_expect_str_eq(in->sessions[1], "session \"two\"");
	cr_expect_eq(in->n_neurons[0], 2);
	cr_expect_eq(in->n_neurons[1], 3);
	for (int s = 0; s < 2; s++)
		for (int64_t j = 0; j < f.mean[s]->numel; j++)
			cr_expect_eq(in->mean_activity[s]->data[j], f.mean[s]->data[j],
			             "mean activity %d/%lld not bit-exact", s, (long long)j);
	cr_expect_eq(in->input_shape[0], 2);
	cr_expect_eq(in->input_shape[1], 18);
	cr_expect_eq(in->input_shape[2], 16);
	cr_expect_eq(in->stim_mean, 0.5);
	cr_expect_eq(in->stim_std, 2.0);
	cr_expect_null(fv_checkpoint_trainer_state(ck));
	fv_checkpoint_close(ck);
	free_info(&f);
	fv_module_free(a);
}

Test(checkpoint, data_info_json_text)
{
	info_fixture f;
	make_info(&f);
	f.mean[1]->data[1] = NAN;
	char *json = fv_data_info_to_json(&f.info);
	cr_assert_not_null(json, "%s", fv_errmsg());
	/* the layout, escapes, 17 digits for a float's double, null for NaN */
	cr_expect_str_eq(json, "{\"sessions\": [\"s1\", \"session \\\"two\\\"\"], "
	                       "\"n_neurons_dict\": {\"s1\": 2, \"session \\\"two\\\"\": 3}, "
	                       "\"mean_activity_dict\": {\"s1\": [0.10000000149011612, "
	                       "1.0000000116860974e-7], \"session \\\"two\\\"\": [3.5, null, "
	                       "12345.677734375]}, \"input_shape\": [2, 18, 16], \"stim_mean\": 0.5, "
	                       "\"stim_std\": 2.0}");
	free(json);

	/* null reads back as NaN */
	fv_module *a = make_model(2, 1.0);
	fv_checkpoint_content c = {.model = a, .data_info = &f.info};
	const char *path = path_in_dir("nan.safetensors");
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	cr_expect(isnan(fv_checkpoint_data_info(ck)->mean_activity[1]->data[1]));
	cr_expect_eq(fv_checkpoint_data_info(ck)->mean_activity[1]->data[2], 12345.678f);
	fv_checkpoint_close(ck);

	/* JSON is UTF-8: a session name that is not cannot be written */
	f.sessions[0] = "s\xff";
	cr_expect_null(fv_data_info_to_json(&f.info));
	expect_message("cannot write data_info: out of memory, or a string in it is not UTF-8");
	cr_expect_eq(fv_checkpoint_save(path, &c), FV_ERR_NOMEM);
	expect_message("saving checkpoint");
	free_info(&f);
	fv_module_free(a);
}

Test(checkpoint, model_config_overrides_config)
{
	fv_module *a = make_model(2, 1.0);
	fv_checkpoint_content c = {.model = a, .config_yaml = "run: 1\n",
	                           .model_config_yaml = "model: base\n"};
	const char *path = path_in_dir("mc.safetensors");
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	cr_expect_str_eq(fv_checkpoint_config_yaml(ck), "run: 1\n");
	cr_expect_str_eq(fv_checkpoint_model_config_yaml(ck), "model: base\n");
	fv_checkpoint_close(ck);
	fv_module_free(a);
}

/* ---- optimizer state ------------------------------------------------------------------ */

/* Deterministic gradients for step k. */
static void set_grads(fv_tensor **params, size_t n, int k)
{
	for (size_t i = 0; i < n; i++) {
		fv_tensor *p = params[i];
		if (p->grad == NULL)
			p->grad = fv_tensor_new(p->ndim, p->shape);
		for (int64_t j = 0; j < p->numel; j++)
			p->grad->data[j] = (fv_real)sin(0.7 * (double)(j + 1) + 1.3 * k + (double)i);
	}
}

static void params_of(fv_module *m, fv_tensor **out)
{
	out[0] = tensor(m, "core.weight");
	out[1] = tensor(m, "readout.s1.bias");
}

static void resume_matches(fv_optim_config cfg)
{
	fv_module *a = make_model(5, 0.5), *b = make_model(5, -3.0);
	fv_tensor *pa[2], *pb[2];
	params_of(a, pa);
	params_of(b, pb);
	fv_optimizer *oa = fv_optimizer_new(&cfg, 2, pa);
	for (int k = 0; k < 3; k++) {
		set_grads(pa, 2, k);
		cr_assert_eq(fv_optimizer_step(oa), FV_OK);
	}
	const char *path = path_in_dir("opt.safetensors");
	fv_checkpoint_content c = {.model = a, .optimizer = oa, .n_optim_params = 2,
	                           .optim_params = pa};
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());

	fv_optimizer *ob = fv_optimizer_new(&cfg, 2, pb);
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	cr_assert_eq(fv_checkpoint_load_model(ck, b, false), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_checkpoint_load_optimizer(ck, ob, 2, pb), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(fv_optimizer_param_steps(ob, 0), 3);
	fv_checkpoint_close(ck);
	for (int k = 3; k < 6; k++) {
		set_grads(pa, 2, k);
		set_grads(pb, 2, k);
		cr_assert_eq(fv_optimizer_step(oa), FV_OK);
		cr_assert_eq(fv_optimizer_step(ob), FV_OK);
	}
	for (int i = 0; i < 2; i++)
		for (int64_t j = 0; j < pa[i]->numel; j++)
			cr_expect_eq(pa[i]->data[j], pb[i]->data[j],
			             "param %d[%lld] differs after resuming: %.9g vs %.9g", i,
			             (long long)j, pa[i]->data[j], pb[i]->data[j]);
	fv_optimizer_free(oa);
	fv_optimizer_free(ob);
	fv_module_free(a);
	fv_module_free(b);
}

Test(checkpoint, adamw_state_resumes_exactly)
{
	fv_optim_config cfg = fv_optim_defaults(FV_OPTIM_ADAMW);
	cfg.lr = 0.05;
	resume_matches(cfg);
}

Test(checkpoint, amsgrad_state_resumes_exactly)
{
	fv_optim_config cfg = fv_optim_defaults(FV_OPTIM_ADAM);
	cfg.amsgrad = true;
	cfg.lr = 0.05;
	resume_matches(cfg);
}

Test(checkpoint, sgd_momentum_state_resumes_exactly)
{
	fv_optim_config cfg = fv_optim_defaults(FV_OPTIM_SGD);
	cfg.lr = 0.1;
	cfg.momentum = 0.9;
	resume_matches(cfg);
}

Test(checkpoint, optimizer_state_names)
{
	fv_module *a = make_model(2, 1.0);
	fv_tensor *p[2];
	params_of(a, p);
	fv_optim_config cfg = fv_optim_defaults(FV_OPTIM_ADAM);
	fv_optimizer *o = fv_optimizer_new(&cfg, 2, p);
	/* only the weight has a gradient: the bias gets no state, as in torch */
	set_grads(p, 1, 0);
	cr_assert_eq(fv_optimizer_step(o), FV_OK);
	cr_assert_eq(fv_optimizer_step(o), FV_OK);
	const char *path = path_in_dir("names.safetensors");
	fv_checkpoint_content c = {.model = a, .optimizer = o, .n_optim_params = 2, .optim_params = p};
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
	fv_safetensors *st = fv_safetensors_open(path);
	cr_assert_not_null(st);
	const fv_st_entry *step = fv_safetensors_find(st, "optimizer.core.weight.step");
	cr_assert_not_null(step);
	cr_expect_eq(step->dtype, FV_DTYPE_I64);
	cr_expect_eq(step->ndim, 0);
	int64_t steps;
	memcpy(&steps, step->data, sizeof steps);
	cr_expect_eq(steps, 2);
	cr_expect_not_null(fv_safetensors_find(st, "optimizer.core.weight.exp_avg"));
	cr_expect_not_null(fv_safetensors_find(st, "optimizer.core.weight.exp_avg_sq"));
	cr_expect_null(fv_safetensors_find(st, "optimizer.core.weight.max_exp_avg_sq"));
	cr_expect_null(fv_safetensors_find(st, "optimizer.readout.s1.bias.step"));
	cr_expect_eq(fv_safetensors_count(st), 6);
	fv_safetensors_close(st);
	fv_optimizer_free(o);
	fv_module_free(a);
}

/* ---- a model that does not fit ----------------------------------------------------------- */

Test(checkpoint, missing_tensor_is_an_error_unless_allowed)
{
	fv_module *a = make_model(3, 1.0), *b = make_model(3, 0.0);
	fv_module *extra = fv__module_new(&test_component, "s2");
	fv_tensor *e = fv_module_add_param(extra, "bias", 1, (int64_t[]){2});
	e->data[0] = 42;
	cr_assert_eq(fv_module_add_child(fv_module_child(b, "readout"), "s2", extra), FV_OK);
	const char *path = path_in_dir("m.safetensors");
	save_plain(a, path);
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck);
	cr_expect_eq(fv_checkpoint_load_model(ck, b, false), FV_ERR_NOTFOUND);
	expect_message("the model's tensor 'readout.s2.bias' is not in the checkpoint");
	expect_message("m.safetensors");
	/* fine-tuning: a new session's readout keeps its own values */
	cr_expect_eq(fv_checkpoint_load_model(ck, b, true), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(tensor(b, "readout.s2.bias")->data[0], 42);
	cr_expect_eq(tensor(b, "core.weight")->data[1], (fv_real)1.25);
	fv_checkpoint_close(ck);
	fv_module_free(a);
	fv_module_free(b);
}

Test(checkpoint, tensor_the_model_lacks_is_an_error)
{
	fv_module *a = make_model(3, 1.0), *b = make_model(3, 0.0);
	fv_module *extra = fv__module_new(&test_component, "s2");
	cr_assert_not_null(fv_module_add_param(extra, "bias", 1, (int64_t[]){2}));
	cr_assert_eq(fv_module_add_child(fv_module_child(a, "readout"), "s2", extra), FV_OK);
	const char *path = path_in_dir("x.safetensors");
	save_plain(a, path);
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck);
	cr_expect_eq(fv_checkpoint_load_model(ck, b, true), FV_ERR_NOTFOUND);
	expect_message("tensor 'readout.s2.bias' of the checkpoint is not in the model");
	fv_checkpoint_close(ck);
	fv_module_free(a);
	fv_module_free(b);
}

Test(checkpoint, shape_mismatch_names_both_shapes)
{
	fv_module *a = make_model(3, 1.0), *b = make_model(4, 0.0);
	const char *path = path_in_dir("s.safetensors");
	save_plain(a, path);
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck);
	cr_expect_eq(fv_checkpoint_load_model(ck, b, false), FV_ERR_SHAPE);
	expect_message("tensor 'core.weight' has shape (3, 3), the model expects (3, 4)");
	fv_checkpoint_close(ck);
	fv_module_free(a);
	fv_module_free(b);
}

Test(checkpoint, optimizer_buffer_missing_is_an_error)
{
	fv_module *a = make_model(2, 1.0);
	fv_tensor *p[2];
	params_of(a, p);
	/* a step count without the moment buffers Adam keeps */
	fv_st_writer *w = fv_st_writer_new();
	int64_t steps = 4;
	cr_assert_eq(fv_st_writer_add(w, "optimizer.core.weight.step", FV_DTYPE_I64, 0, NULL, &steps),
	             FV_OK);
	cr_assert_eq(fv_st_writer_meta(w, "format", FV_CHECKPOINT_FORMAT), FV_OK);
	const char *path = path_in_dir("o.safetensors");
	cr_assert_eq(fv_st_writer_save(w, path), FV_OK);
	fv_st_writer_free(w);
	fv_optim_config cfg = fv_optim_defaults(FV_OPTIM_ADAMW);
	fv_optimizer *o = fv_optimizer_new(&cfg, 2, p);
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	cr_expect_eq(fv_checkpoint_load_optimizer(ck, o, 2, p), FV_ERR_NOTFOUND);
	expect_message("'optimizer.core.weight.exp_avg' is missing");
	fv_checkpoint_close(ck);
	fv_optimizer_free(o);
	fv_module_free(a);
}

/* ---- bad files ------------------------------------------------------------------------------ */

Test(checkpoint, plain_safetensors_is_not_a_checkpoint)
{
	fv_st_writer *w = fv_st_writer_new();
	float v = 1;
	cr_assert_eq(fv_st_writer_add(w, "x", FV_DTYPE_F32, 1, (int64_t[]){1}, &v), FV_OK);
	const char *path = path_in_dir("plain.safetensors");
	cr_assert_eq(fv_st_writer_save(w, path), FV_OK);
	fv_st_writer_free(w);
	cr_expect_null(fv_checkpoint_open(path));
	expect_message("not a fovea checkpoint");
	expect_message("plain.safetensors");
}

static long file_size(const char *path)
{
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	return (long)sb.st_size;
}

Test(checkpoint, truncated_file_is_refused_with_the_file_name)
{
	fv_module *a = make_model(8, 1.0);
	const char *path = path_in_dir("t.safetensors");
	save_plain(a, path);
	long size = file_size(path);
	long cuts[] = {size - 1, size / 2, 20, 4, 0};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		cr_assert_eq(truncate(path, cuts[i]), 0);
		fv_clear_error();
		fv_checkpoint *ck = fv_checkpoint_open(path);
		cr_expect_null(ck, "a file cut to %ld bytes was accepted", cuts[i]);
		fv_checkpoint_close(ck);
		expect_message("t.safetensors");
	}
	fv_module_free(a);
}

Test(checkpoint, corrupted_data_info_is_refused)
{
	static const struct {
		const char *json, *message;
	} cases[] = {
		{"{\"sessions\": 3}", "'sessions' is missing or not a list"},
		{"[1, 2]", "expected a JSON object"},
		{"{\"sessions\": [\"a\"], \"n_neurons_dict\": {}}", "n_neurons_dict['a']"},
		{"{\"sessions\": [\"a\"], \"n_neurons_dict\": {\"a\": -2}}", "not a positive integer"},
		{"{\"sessions\": [\"a\"], \"n_neurons_dict\": {\"a\": 2}, "
		 "\"mean_activity_dict\": {\"a\": [1]}, \"input_shape\": [1, 2, 3]}",
		 "mean_activity_dict['a'] is not a list of 2 numbers"},
		{"{\"sessions\": [\"a\"], \"n_neurons_dict\": {\"a\": 2}, \"input_shape\": [1, 2]}",
		 "'input_shape' is missing"},
		{"{\"sessions\": [", "metadata data_info"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fv_st_writer *w = fv_st_writer_new();
		cr_assert_eq(fv_st_writer_meta(w, "format", FV_CHECKPOINT_FORMAT), FV_OK);
		cr_assert_eq(fv_st_writer_meta(w, "data_info", cases[i].json), FV_OK);
		const char *path = path_in_dir("bad_info.safetensors");
		cr_assert_eq(fv_st_writer_save(w, path), FV_OK);
		fv_st_writer_free(w);
		fv_clear_error();
		fv_checkpoint *ck = fv_checkpoint_open(path);
		cr_expect_null(ck, "case %zu accepted", i);
		fv_checkpoint_close(ck);
		expect_message(cases[i].message);
		expect_message("bad_info.safetensors");
	}
}

Test(checkpoint, unwritable_path_is_an_io_error)
{
	fv_module *a = make_model(2, 1.0);
	fv_checkpoint_content c = {.model = a};
	cr_expect_eq(fv_checkpoint_save(path_in_dir("no/such/dir/x.safetensors"), &c), FV_ERR_IO);
	expect_message("no/such/dir/x.safetensors");
	cr_expect_eq(fv_checkpoint_save(path_in_dir("y.safetensors"), NULL), FV_ERR_ARG);
	expect_message("no model");
	fv_module_free(a);
}

/* ---- a crash while writing ----------------------------------------------------------------- */

/* A child rewrites the checkpoint in a loop, alternating two models; it is
** killed at random moments.  Whatever moment, the file must open and hold
** one of the two models whole. */
Test(checkpoint, killed_writer_leaves_old_or_new_file)
{
	fv_module *models[2] = {make_model(60000, 1.0), make_model(60000, 2.0)};
	const char *path = path_in_dir("crash.safetensors");
	save_plain(models[0], path);
	srand((unsigned)time(NULL));
	for (int round = 0; round < 12; round++) {
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			for (int k = 0;; k++)
				save_plain(models[k % 2], path);
		}
		usleep((useconds_t)(2000 + rand() % 30000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fv_checkpoint *ck = fv_checkpoint_open(path);
		cr_assert_not_null(ck, "round %d: the file is broken: %s", round, fv_errmsg());
		fv_module *b = make_model(60000, 0.0);
		cr_assert_eq(fv_checkpoint_load_model(ck, b, false), FV_OK, "%s", fv_errmsg());
		fv_tensor *w = tensor(b, "core.weight");
		double base = w->data[0];
		cr_assert(base == 1.0 || base == 2.0, "round %d: unexpected content %g", round, base);
		cr_expect_eq(w->data[w->numel - 1], (fv_real)(base + 0.25 * (double)(w->numel - 1)),
		             "round %d: the file mixes two writes", round);
		fv_checkpoint_close(ck);
		fv_module_free(b);
	}
	fv_module_free(models[0]);
	fv_module_free(models[1]);
}
