/*
** test_registry.c: plugin loading and checking, instantiation from YAML,
** and modules (tensor names, visit order, children, training flag).
**
** The plugin files are the build's example plugin and the broken plugins of
** tests/fixtures/plugins/; the module tests use small components declared here and
** registered from memory.  Expected names, orders and values are written
** out by hand or computed here with plain loops.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/trainer.h"
#include "plugin_testing.h"


static char path_buf[8][1024];
static int path_next;

/* $FOVEA_BUILD_DIR/rel, in a small ring of buffers. */
static const char *build_path(const char *rel)
{
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	char *p = path_buf[path_next++ % 8];
	snprintf(p, sizeof path_buf[0], "%s/%s", build, rel);
	return p;
}

#define EXAMPLE_SO "plugins/examples/example_linear_readout.so"

static fv_registry *registry_with_example(void)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_not_null(reg);
	cr_assert_eq(fv_registry_load_file(reg, build_path(EXAMPLE_SO)), FV_OK, "%s", fv_errmsg());
	return reg;
}

static fv_config *yaml(const char *text)
{
	fv_config *cfg = fv_config_load_string(text, strlen(text), "spec.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return cfg;
}

/* ---- loading and finding ----------------------------------------------------------- */

Test(registry, finds_the_example_by_name_and_alias)
{
	fv_registry *reg = registry_with_example();
	const char *file = NULL, *file2 = NULL;
	const fv_component *c = fv_registry_find(reg, "ExampleLinearReadout", &file);
	cr_assert_not_null(c);
	cr_assert_eq(fv_registry_find(reg, "fovea.examples.LinearReadout", &file2), c);
	cr_assert_str_eq(file, build_path(EXAMPLE_SO));
	cr_assert_str_eq(file2, file);
	cr_assert_eq(c->kind, FV_KIND_READOUT);
	cr_assert_str_eq(c->names[0], "ExampleLinearReadout");
	cr_assert_null(fv_registry_find(reg, "examplelinearreadout", NULL)); /* case matters */
	cr_assert_null(fv_registry_find(reg, "ExampleLinear", NULL));
	cr_assert_eq(fv_registry_size(reg), 1);
	cr_assert_eq(fv_registry_at(reg, 0, &file2), c);
	cr_assert_null(fv_registry_at(reg, 1, NULL));
	fv_registry_free(reg);
}

Test(registry, closest_name)
{
	fv_registry *reg = registry_with_example();
	cr_assert_str_eq(fv_registry_closest(reg, "ExampleLinearReadot"), "ExampleLinearReadout");
	cr_assert_str_eq(fv_registry_closest(reg, "fovea.examples.LinearReadou"),
	                 "fovea.examples.LinearReadout");
	fv_registry_free(reg);
	fv_registry *empty = fv_registry_new();
	cr_assert_null(fv_registry_closest(empty, "Anything"));
	fv_registry_free(empty);
}

Test(registry, loading_the_same_file_twice_is_harmless)
{
	fv_registry *reg = registry_with_example();
	cr_assert_eq(fv_registry_load_file(reg, build_path(EXAMPLE_SO)), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_registry_size(reg), 1);
	fv_registry_free(reg);
}

/* DIR/NAME.so and DIR/SUB/NAME.so load, deeper ones do not, other files are
** ignored: the layout of build/plugins/<kind>/. */
Test(registry, load_dir_descends_one_level)
{
	/* Two levels below the build root, like build/plugins/<kind>/, so the
	** plugin's $ORIGIN-relative RUNPATH still finds libfovea. */
	char dir[2048], path[4096];
	snprintf(dir, sizeof dir, "%s", build_path("test_registry_XXXXXX"));
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/readouts", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/readouts/deeper", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/readouts/example.so", dir);
	cr_assert_eq(symlink(build_path(EXAMPLE_SO), path), 0);
	snprintf(path, sizeof path, "%s/readouts/deeper/bad_abi.so", dir);
	cr_assert_eq(symlink(build_path("tests/fixtures/plugins/bad_abi.so"), path), 0);
	snprintf(path, sizeof path, "%s/README.txt", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);

	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_dir(reg, dir), FV_OK, "%s", fv_errmsg());
	const char *file = NULL;
	cr_assert_not_null(fv_registry_find(reg, "ExampleLinearReadout", &file));
	snprintf(path, sizeof path, "%s/readouts/example.so", dir);
	cr_assert_str_eq(file, path);
	cr_assert_eq(fv_registry_size(reg), 1);
	fv_registry_free(reg);

	const char *rm[] = {"README.txt", "readouts/deeper/bad_abi.so", "readouts/deeper",
	                    "readouts/example.so", "readouts"};
	for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
		remove(path);
	}
	remove(dir);
}

Test(registry, load_default_uses_the_build_tree_and_the_path)
{
	fv_registry *reg = fv_registry_new();
	setenv("FOVEA_PLUGIN_PATH", "", 1);
	cr_assert_eq(fv_registry_load_default(reg), FV_OK, "%s", fv_errmsg());
	cr_assert_not_null(fv_registry_find(reg, "ExampleLinearReadout", NULL));
	fv_registry_free(reg);

	/* A file on the path is loaded after the built-in ones: the duplicate
	** is blamed on it.  Missing and empty entries are skipped. */
	char env[2048];
	snprintf(env, sizeof env, "/nonexistent::%s", build_path("tests/fixtures/plugins/dup_name.so"));
	setenv("FOVEA_PLUGIN_PATH", env, 1);
	reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_default(reg), FV_ERR_PLUGIN);
	pt_expect_msg("tests/fixtures/plugins/dup_name.so is already registered by");
	pt_expect_msg(EXAMPLE_SO);
	fv_registry_free(reg);
	setenv("FOVEA_PLUGIN_PATH", "", 1);
}

/* ---- broken plugin files ------------------------------------------------------------ */

static void expect_load_error(fv_registry *reg, const char *rel, const char *message)
{
	size_t before = fv_registry_size(reg);
	const char *path = build_path(rel);
	cr_assert_eq(fv_registry_load_file(reg, path), FV_ERR_PLUGIN, "%s", rel);
	cr_assert(strncmp(fv_errmsg(), path, strlen(path)) == 0 || strstr(fv_errmsg(), path),
	          "message '%s' does not name %s", fv_errmsg(), path);
	pt_expect_msg(message);
	cr_assert_eq(fv_registry_size(reg), before, "a failed load changed the registry");
}

/* The same into an empty registry. */
static void expect_first_load_error(const char *rel, const char *message)
{
	fv_registry *reg = fv_registry_new();
	expect_load_error(reg, rel, message);
	fv_registry_free(reg);
}

Test(registry, bad_abi)
{
	expect_first_load_error("tests/fixtures/plugins/bad_abi.so",
	                        ": plugin ABI 99.3, this fovea has ABI 1.3; rebuild the plugin "
	                        "against fovea's headers");
}

Test(registry, no_entry_symbol)
{
	expect_first_load_error("tests/fixtures/plugins/no_entry.so",
	                        ": not a fovea plugin: it does not export fv_plugin_entry()");
}

Test(registry, not_a_shared_object)
{
	expect_first_load_error("tests/fixtures/plugins/not_a_plugin.so", ": cannot load plugin: ");
}

Test(registry, missing_file)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_file(reg, "/nonexistent/x.so"), FV_ERR_PLUGIN);
	pt_expect_msg("/nonexistent/x.so: cannot load plugin: ");
	cr_assert_eq(fv_registry_load_dir(reg, "/nonexistent/dir"), FV_ERR_IO);
	pt_expect_msg("/nonexistent/dir: cannot open plugin directory");
	fv_registry_free(reg);
}

Test(registry, duplicate_name_names_both_files)
{
	fv_registry *reg = registry_with_example();
	char want[4096];
	snprintf(want, sizeof want,
	         "name 'fovea.examples.LinearReadout' of %s is already registered by %s",
	         build_path("tests/fixtures/plugins/dup_name.so"), build_path(EXAMPLE_SO));
	expect_load_error(reg, "tests/fixtures/plugins/dup_name.so", want);
	/* Nothing of the refused plugin got in, not even its new name. */
	cr_assert_null(fv_registry_find(reg, "DupNameReadout", NULL));
	fv_registry_free(reg);
}

Test(registry, callbacks_are_checked_at_load)
{
	expect_first_load_error("tests/fixtures/plugins/no_forward.so",
	                        ": readout 'NoForwardReadout' has no forward(), which every readout "
	                        "needs");
}

/* A plugin built against ABI 1.0's shorter fv_component: its options come
** in a temporary struct of options_size, and it keeps and frees its own
** state. */
Test(registry, abi_1_0_plugin_keeps_working)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_file(reg, build_path("tests/fixtures/plugins/abi_1_0.so")),
	             FV_OK, "%s", fv_errmsg());
	const fv_component *c = fv_registry_find(reg, "Abi10Affine", NULL);
	cr_assert_not_null(c);
	cr_assert_eq(c->struct_size, offsetof(fv_component, objective) + sizeof c->objective,
	             "the fixture must have 1.0's size, got %zu", c->struct_size);
	cr_assert_eq(c->priv_size, 0, "the registry's copy reads 0 where 1.0 had nothing");
	fv_config *cfg = yaml("_target_: Abi10Affine\nscale: 3\noffsets: [0.25, 0.5]\n");
	fv_build_args a = {.struct_size = sizeof a, .registry = reg};
	fv_module *m = fv_instantiate(reg, fv_config_root(cfg), &a);
	fv_config_free(cfg);
	cr_assert_not_null(m, "%s", fv_errmsg());
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_from_data(ctx, 1, (int64_t[]){2}, (fv_real[]){1, -2});
	fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_float_eq(y->data[0], 3.75, 1e-6);
	cr_assert_float_eq(y->data[1], -5.25, 1e-6);
	fv_ctx_free(ctx);
	fv_module_free(m); /* the plugin's destroy() frees what its create() allocated */
	fv_registry_free(reg);
}

/* ---- components declared here -------------------------------------------------------- */

static int destroyed; /* destroy() calls, to check failure paths clean up */

typedef struct leaf_opts {
	int64_t size;
	bool fail;
} leaf_opts;

static const fv_option leaf_options[] = {
	{"size", FV_OPT_INT, offsetof(leaf_opts, size), "2", 1, 100, 0, NULL, "length of w"},
	{"fail", FV_OPT_BOOL, offsetof(leaf_opts, fail), "false", 0, 0, 0, NULL, "fail in create"},
	{0},
};

static fv_status leaf_create(fv_module *m, const void *o, const fv_build_args *args)
{
	const leaf_opts *opts = o;
	(void)args;
	fv_module_set_priv(m, malloc(16)); /* something destroy must free */
	if (opts->fail)
		return fv_error(FV_ERR_ARG, "asked to fail");
	int64_t one = 1;
	if (fv_module_add_param(m, "w", 1, &opts->size) == NULL ||
	    fv_module_add_buffer(m, "running", 1, &one) == NULL)
		return FV_ERR_NOMEM;
	return FV_OK;
}

static void leaf_destroy(fv_module *m)
{
	destroyed++;
	free(fv_module_priv(m));
}

/* A loss, so that the registry does not ask it for a forward(). */
static fv_tensor *leaf_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	(void)m;
	(void)target;
	return fv_sum_all(ctx, output);
}

static const char *const leaf_names[] = {"TestLeaf", "tests.Leaf", NULL};
static const fv_component leaf = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = leaf_names,
	.doc = "a leaf module",
	.options = leaf_options,
	.options_size = sizeof(leaf_opts),
	.create = leaf_create,
	.destroy = leaf_destroy,
	.loss = leaf_loss,
};

/* Owns `scale` and `count`, and two leaves built from its own spec's keys. */
static fv_status parent_create(fv_module *m, const void *o, const fv_build_args *args)
{
	(void)o;
	int64_t one = 1;
	if (fv_module_add_param(m, "scale", 1, &one) == NULL ||
	    fv_module_add_buffer(m, "count", 1, &one) == NULL)
		return FV_ERR_NOMEM;
	const fv_component *c = fv_registry_find(args->registry, "TestLeaf", NULL);
	fv_status st = fv_module_add_child(m, "left", fv_instantiate_component(c, NULL, args, "l"));
	if (st == FV_OK)
		st = fv_module_add_child(m, "right", fv_instantiate(args->registry,
		                                                    fv_node_get(args->spec, "right"),
		                                                    args));
	return st;
}

static fv_tensor *forward_identity(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                   const fv_forward_args *fa)
{
	(void)m;
	(void)ctx;
	(void)fa;
	return x;
}

static const fv_option parent_options[] = {
	{"right", FV_OPT_NODE, 0, NULL, 0, 0, FV_OPT_REQUIRED, NULL, "spec of the right leaf"},
	{0},
};

static const char *const parent_names[] = {"TestParent", NULL};
static const fv_component parent = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = parent_names,
	.doc = "two leaves",
	.options = parent_options,
	.options_size = sizeof(const fv_config_node *),
	.create = parent_create,
	.forward = forward_identity,
};

static const fv_component *const test_components[] = {&leaf, &parent};
static const fv_plugin test_plugin = {
	.abi_major = FV_ABI_MAJOR,
	.abi_minor = FV_ABI_MINOR,
	.name = "test",
	.n_components = 2,
	.components = test_components,
};

static fv_registry *test_registry(void)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &test_plugin, "test_registry.c"), FV_OK, "%s",
	             fv_errmsg());
	return reg;
}

/* ---- checks of what a plugin declares (from memory) ----------------------------------- */

static fv_status create_nothing(fv_module *m, const void *o, const fv_build_args *a)
{
	(void)m;
	(void)o;
	(void)a;
	return FV_OK;
}

static const char *const one_name[] = {"Solo", NULL};

static void expect_add_error(const fv_component *c, const char *message)
{
	const fv_component *list[] = {c};
	fv_plugin p = {.abi_major = FV_ABI_MAJOR, .name = "bad", .n_components = 1,
	               .components = list};
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &p, "mem.so"), FV_ERR_PLUGIN);
	pt_expect_msg("mem.so: ");
	pt_expect_msg(message);
	cr_assert_eq(fv_registry_size(reg), 0);
	fv_registry_free(reg);
}

Test(registry_checks, struct_too_small)
{
	fv_component c = {.struct_size = 40, .names = one_name, .create = create_nothing};
	char want[128];
	/* The size of ABI 1.0's fv_component, which ends with objective(). */
	snprintf(want, sizeof want, "component #0 has struct_size 40, smaller than the %zu bytes",
	         offsetof(fv_component, objective) + sizeof c.objective);
	expect_add_error(&c, want);
}

Test(registry_checks, no_names)
{
	fv_component c = {.struct_size = sizeof c, .create = create_nothing};
	expect_add_error(&c, "component #0 declares no name");
	static const char *const none[] = {NULL};
	c.names = none;
	expect_add_error(&c, "component #0 declares no name");
}

static fv_status project_nothing(fv_module *m, fv_tensor *x)
{
	(void)m;
	(void)x;
	return FV_OK;
}

/* What each kind is used through must be there when the plugin loads. */
Test(registry_checks, required_callbacks)
{
	static const struct {
		fv_kind kind;
		const char *message;
	} cases[] = {
		{FV_KIND_CORE, "core 'Solo' has no forward(), which every core needs"},
		{FV_KIND_READOUT, "readout 'Solo' has no forward(), which every readout needs"},
		{FV_KIND_OBJECTIVE, "objective 'Solo' has no objective(), which every objective needs"},
		{FV_KIND_REGULARIZER, "regularizer 'Solo' has no penalty() or project(), which every "
		                      "regularizer needs"},
		{FV_KIND_STOPPER, "stopper 'Solo' has no should_stop(), which every stopper needs"},
		{FV_KIND_LOSS, "loss 'Solo' has no loss(), which every loss needs"},
		{FV_KIND_REDUCER, "reducer 'Solo' has no forward(), which every reducer needs"},
		{FV_KIND_MODEL, "model 'Solo' has no forward(), which every model needs"},
		{FV_KIND_LAYER, "layer 'Solo' has no forward(), which every layer needs"},
		{FV_KIND_DATA, "data step 'Solo' has no data_step(), which every data step needs"},
	};
	cr_assert_eq(sizeof cases / sizeof cases[0], FV_KIND_COUNT, "a kind is not covered");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fv_component c = {.struct_size = sizeof c, .names = one_name, .kind = cases[i].kind,
		                  .create = create_nothing};
		expect_add_error(&c, cases[i].message);
	}
	/* A regularizer needs one of its two; a postprocessor has no penalty. */
	fv_component post = {.struct_size = sizeof post, .names = one_name,
	                     .kind = FV_KIND_REGULARIZER, .project = project_nothing};
	const fv_component *list[] = {&post};
	fv_plugin p = {.abi_major = FV_ABI_MAJOR, .n_components = 1, .components = list};
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &p, "post.so"), FV_OK, "%s", fv_errmsg());
	fv_registry_free(reg);
}

Test(registry_checks, priv_size_replaces_options_size)
{
	fv_component c = {.struct_size = sizeof c, .names = one_name, .forward = forward_identity,
	                  .priv_size = 16, .options_size = 8};
	expect_add_error(&c, "component 'Solo' declares both priv_size 16 and options_size 8");
}

typedef struct two_doubles {
	double a, b;
} two_doubles;

Test(registry_checks, option_outside_the_private_state)
{
	static const fv_option opts[] = {
		FV_OPT("x", FLOAT, two_doubles, b, "1", "x"),
		{0},
	};
	fv_component c = {.struct_size = sizeof c, .names = one_name, .forward = forward_identity,
	                  .options = opts, .priv_size = 12};
	expect_add_error(&c, "component 'Solo', option 'x': offset 8 does not fit in priv_size 12");
}

Test(registry_checks, bad_kind)
{
	fv_component c = {.struct_size = sizeof c, .names = one_name, .create = create_nothing,
	                  .kind = (fv_kind)42};
	expect_add_error(&c, "component 'Solo' has an unknown kind 42");
}

Test(registry_checks, option_outside_the_struct)
{
	static const fv_option opts[] = {
		{"x", FV_OPT_FLOAT, 8, "1", 0, 0, 0, NULL, "x"},
		{0},
	};
	fv_component c = {.struct_size = sizeof c, .names = one_name, .create = create_nothing,
	                  .forward = forward_identity, .options = opts, .options_size = 12};
	expect_add_error(&c, "component 'Solo', option 'x': offset 8 does not fit in options_size 12");
}

Test(registry_checks, enum_without_choices)
{
	static const fv_option opts[] = {
		{"mode", FV_OPT_ENUM, 0, "a", 0, 0, 0, NULL, "mode"},
		{0},
	};
	fv_component c = {.struct_size = sizeof c, .names = one_name, .create = create_nothing,
	                  .forward = forward_identity, .options = opts,
	                  .options_size = sizeof(const char *)};
	expect_add_error(&c, "component 'Solo', option 'mode': an enum needs its choices");
}

Test(registry_checks, plugin_level)
{
	fv_registry *reg = fv_registry_new();
	fv_plugin p = {.abi_major = 2, .abi_minor = 0, .name = "x"};
	cr_assert_eq(fv_registry_add(reg, &p, "old.so"), FV_ERR_PLUGIN);
	pt_expect_msg("old.so: plugin ABI 2.0, this fovea has ABI 1.3; rebuild the plugin against "
	              "fovea's headers");
	p.abi_major = FV_ABI_MAJOR;
	cr_assert_eq(fv_registry_add(reg, &p, "empty.so"), FV_ERR_PLUGIN);
	pt_expect_msg("empty.so: the plugin declares no components");
	cr_assert_eq(fv_registry_add(reg, NULL, "null.so"), FV_ERR_PLUGIN);
	pt_expect_msg("null.so: fv_plugin_entry() returned NULL");

	/* The same name twice inside one plugin. */
	fv_component a = {.struct_size = sizeof a, .names = one_name, .create = create_nothing,
	                  .forward = forward_identity};
	const fv_component *twice[] = {&a, &a};
	fv_plugin p2 = {.abi_major = FV_ABI_MAJOR, .n_components = 2, .components = twice};
	cr_assert_eq(fv_registry_add(reg, &p2, "twice.so"), FV_ERR_PLUGIN);
	pt_expect_msg("twice.so: name 'Solo' is declared twice");

	/* Registering the test plugin twice blames the first origin. */
	cr_assert_eq(fv_registry_add(reg, &test_plugin, "first.so"), FV_OK);
	cr_assert_eq(fv_registry_add(reg, &test_plugin, "second.so"), FV_ERR_PLUGIN);
	pt_expect_msg("name 'TestLeaf' of second.so is already registered by first.so");
	cr_assert_eq(fv_registry_size(reg), 2);
	fv_registry_free(reg);
}

/* ---- instantiation -------------------------------------------------------------------- */

static fv_build_args readout_args(fv_registry *reg)
{
	fv_build_args a = {.struct_size = sizeof a, .registry = reg, .in_ndim = 4,
	                   .in_shape = {2, 3, 4, 5}, .n_neurons = 3, .seed = 1};
	return a;
}

/* A module built from YAML text, with the registry and config it came from. */
typedef struct built {
	fv_registry *reg;
	fv_config *cfg;
	fv_module *m;
} built;

static built instantiate(fv_registry *reg, const char *text, const fv_build_args *args)
{
	built b = {reg, yaml(text), NULL};
	b.m = fv_instantiate(reg, fv_config_root(b.cfg), args);
	cr_assert_not_null(b.m, "%s", fv_errmsg());
	return b;
}

static void built_free(built *b)
{
	fv_module_free(b->m);
	fv_config_free(b->cfg);
	fv_registry_free(b->reg);
}

/* The example readout `text` names, for an input (2, 3, 4, 5) and 3 neurons. */
static built build_example(const char *text)
{
	fv_registry *reg = registry_with_example();
	fv_build_args a = readout_args(reg);
	return instantiate(reg, text, &a);
}

/* Instantiate `text`; expect failure with `message`. */
static void expect_instantiate_error(fv_registry *reg, const char *text, const char *message)
{
	fv_config *cfg = yaml(text);
	fv_build_args a = readout_args(reg);
	fv_clear_error();
	cr_assert_null(fv_instantiate(reg, fv_config_root(cfg), &a), "built: %s", text);
	cr_assert(fv_errmsg()[0] != '\0');
	pt_expect_msg(message);
	fv_config_free(cfg);
}

Test(instantiate, example_with_options)
{
	built ex = build_example("_target_: ExampleLinearReadout\ninit_std: 0.5\ngamma: 2\n");
	fv_tensor *w = fv_module_tensor(ex.m, "weight");
	fv_tensor *b = fv_module_tensor(ex.m, "bias");
	cr_assert_not_null(w);
	cr_assert_not_null(b);
	cr_assert_eq(w->ndim, 4);
	int64_t want[4] = {3, 2, 4, 5};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(w->shape[i], want[i]);
	cr_assert_str_eq(w->name, "weight");
	cr_assert(w->requires_grad && b->requires_grad);
	/* init_std reached the plugin: the sample std of 120 N(0, 0.5) draws is near 0.5. */
	double s2 = 0;
	for (int64_t i = 0; i < w->numel; i++)
		s2 += (double)w->data[i] * w->data[i];
	double std = sqrt(s2 / (double)w->numel);
	cr_assert(std > 0.35 && std < 0.65, "std %g", std);
	built_free(&ex);
}

Test(instantiate, example_without_bias)
{
	built ex = build_example("_target_: fovea.examples.LinearReadout\nbias: false\n");
	cr_assert_not_null(fv_module_tensor(ex.m, "weight"));
	cr_assert_null(fv_module_tensor(ex.m, "bias"));
	built_free(&ex);
}

/* The forward pass, regularizer and initialize_bias against plain loops. */
Test(instantiate, example_computes_its_formula)
{
	built ex = build_example("_target_: ExampleLinearReadout\ngamma: 0.5\n");
	fv_module *m = ex.m; /* C=2, T=3, H=4, W=5, N=3 */
	fv_tensor *w = fv_module_tensor(m, "weight");
	fv_tensor *bias = fv_module_tensor(m, "bias");
	fv_real mean[3] = {0.5f, -1.0f, 2.0f};
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *ma = fv_ctx_from_data(ctx, 1, (int64_t[]){3}, mean);
	cr_assert_eq(fv_module_initialize_bias(m, ma), FV_OK, "%s", fv_errmsg());
	for (int n = 0; n < 3; n++)
		cr_assert_eq(bias->data[n], mean[n]);

	enum { B = 2, C = 2, T = 3, H = 4, W = 5, N = 3 };
	fv_tensor *x = fv_ctx_empty(ctx, 5, (int64_t[]){B, C, T, H, W});
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)sin(0.37 * (double)i);
	fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_eq(y->ndim, 3);
	cr_assert(y->shape[0] == B && y->shape[1] == T && y->shape[2] == N);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double s = mean[n];
				for (int c = 0; c < C; c++)
					for (int h = 0; h < H; h++)
						for (int v = 0; v < W; v++)
							s += (double)x->data[(((b * C + c) * T + t) * H + h) * W + v] *
							     w->data[((n * C + c) * H + h) * W + v];
				double got = y->data[(b * T + t) * N + n];
				cr_assert(fabs(got - s) < 1e-4, "y[%d,%d,%d] = %g, want %g", b, t, n, got, s);
			}

	fv_tensor *r = fv_module_regularizer(m, ctx, NULL);
	cr_assert_not_null(r, "%s", fv_errmsg());
	double want = 0;
	for (int64_t i = 0; i < w->numel; i++)
		want += 0.5 * (double)w->data[i] * w->data[i];
	cr_assert(fabs(r->data[0] - want) < 1e-5 * (1 + want), "%g vs %g", r->data[0], want);

	/* A wrong input shape is refused, not read out of bounds. */
	fv_tensor *bad = fv_ctx_zeros(ctx, 5, (int64_t[]){1, 3, 1, 4, 5});
	cr_assert_null(fv_module_forward(m, ctx, bad, NULL));
	fv_ctx_free(ctx);
	built_free(&ex);
}

Test(instantiate, option_errors_name_the_file_and_key)
{
	fv_registry *reg = registry_with_example();
	expect_instantiate_error(reg, "_target_: ExampleLinearReadout\ngamma: -1\n",
	                         "spec.yaml:2:1:");
	expect_instantiate_error(reg, "_target_: ExampleLinearReadout\ngamma: -1\n",
	                         "gamma");
	expect_instantiate_error(reg, "_target_: ExampleLinearReadout\ngama: 1\n",
	                         "'gama'");
	expect_instantiate_error(reg, "_target_: ExampleLinearReadout\ngama: 1\n",
	                         "gamma");
	expect_instantiate_error(reg, "_target_: ExampleLinearReadout\nbias: maybe\n",
	                         "bias");
	fv_registry_free(reg);
}

Test(instantiate, spec_errors)
{
	fv_registry *reg = registry_with_example();
	expect_instantiate_error(reg, "gamma: 1\n",
	                         "spec.yaml:1:1: (root): no _target_: cannot tell which component "
	                         "to build");
	expect_instantiate_error(reg, "- 1\n- 2\n",
	                         "spec.yaml:1:1: (root): expected a map with a _target_, got a list");
	expect_instantiate_error(reg, "_target_: [a, b]\n",
	                         "_target_: expected a component name, got a list");
	expect_instantiate_error(reg, "# line one\n_target_: ExampleLinearReadot\n",
	                         "spec.yaml:2:1: _target_: unknown component 'ExampleLinearReadot'; "
	                         "did you mean 'ExampleLinearReadout'?");
	/* issue 12 item 11: nothing close is not "no plugins are loaded" */
	expect_instantiate_error(reg, "_target_: ZzzzQqqqWwww\n",
	                         "spec.yaml:1:1: _target_: unknown component 'ZzzzQqqqWwww'; no close "
	                         "match among the 1 loaded component (`fovea plugins` lists them)");
	fv_registry_free(reg);
	reg = fv_registry_new();
	expect_instantiate_error(reg, "_target_: ZzzzQqqqWwww\n", "(no plugins are loaded)");
	fv_registry_free(reg);
}

/* Options a program wrote (fv_instantiate_named) have no file or line to
** show: the message names the component and the key only. */
Test(instantiate, named_specs_have_no_made_up_place)
{
	fv_registry *reg = registry_with_example();
	fv_build_args a = readout_args(reg);
	cr_assert_null(fv_instantiate_named(reg, "ExampleLinearReadout", "gamma: -1\n", &a, "r"));
	cr_assert_eq(fv_errcode(), FV_ERR_CONFIG);
	cr_assert_str_eq(fv_errmsg(), "ExampleLinearReadout: gamma: -1 is out of range [0, inf] "
	                              "(option 'gamma' of ExampleLinearReadout)");
	fv_registry_free(reg);
}

/* A plugin's own message reaches the caller, placed at its spec. */
Test(instantiate, plugin_errors_are_placed)
{
	fv_registry *reg = registry_with_example();
	fv_config *cfg = yaml("readout:\n  _target_: ExampleLinearReadout\n");
	fv_build_args a = readout_args(reg);
	a.in_ndim = 2;
	cr_assert_null(fv_instantiate(reg, fv_node_get(fv_config_root(cfg), "readout"), &a));
	cr_assert_str_eq(fv_errmsg(), "spec.yaml:1:1: ExampleLinearReadout: needs an input shape "
	                              "(C, T, H, W), got 2 dims");
	a = readout_args(reg);
	a.n_neurons = 0;
	cr_assert_null(fv_instantiate(reg, fv_node_get(fv_config_root(cfg), "readout"), &a));
	cr_assert_str_eq(fv_errmsg(), "spec.yaml:1:1: ExampleLinearReadout: needs n_neurons > 0, got 0");

	a = readout_args(reg);
	fv_module *m = fv_instantiate(reg, fv_node_get(fv_config_root(cfg), "readout"), &a);
	cr_assert_not_null(m, "%s", fv_errmsg());
	cr_assert_str_eq(fv_module_name(m), "readout");
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *bad = fv_ctx_zeros(ctx, 5, (int64_t[]){1, 3, 1, 4, 5});
	cr_assert_null(fv_module_forward(m, ctx, bad, NULL));
	cr_assert_str_eq(fv_errmsg(), "ExampleLinearReadout: expected input (B, 2, T, 4, 5), got "
	                              "(1, 3, 1, 4, 5)");
	fv_tensor *few = fv_ctx_zeros(ctx, 1, (int64_t[]){2});
	cr_assert_eq(fv_module_initialize_bias(m, few), FV_ERR_SHAPE);
	cr_assert_str_eq(fv_errmsg(), "ExampleLinearReadout: mean_activity has 2 values for 3 "
	                              "neurons");
	fv_ctx_free(ctx);
	fv_module_free(m);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

Test(instantiate, hydra_keys_are_ignored)
{
	built ex = build_example("_target_: ExampleLinearReadout\n_convert_: object\n");
	built_free(&ex);
}

Test(instantiate, create_failure_is_cleaned_up_and_placed)
{
	fv_registry *reg = test_registry();
	fv_config *cfg = yaml("model:\n  _target_: TestLeaf\n  fail: true\n");
	fv_build_args a = {.struct_size = sizeof a};
	destroyed = 0;
	cr_assert_null(fv_instantiate(reg, fv_node_get(fv_config_root(cfg), "model"), &a));
	cr_assert_str_eq(fv_errmsg(), "spec.yaml:1:1: TestLeaf: asked to fail"); /* the map under model: */
	cr_assert_eq(destroyed, 1, "destroy() must run on a failed create()");
	fv_config_free(cfg);
	fv_registry_free(reg);
}

Test(instantiate, component_with_null_spec_uses_defaults)
{
	fv_registry *reg = test_registry();
	const fv_component *c = fv_registry_find(reg, "tests.Leaf", NULL);
	fv_module *m = fv_instantiate_component(c, NULL, NULL, "solo");
	cr_assert_not_null(m, "%s", fv_errmsg());
	cr_assert_str_eq(fv_module_name(m), "solo");
	cr_assert_eq(fv_module_component(m), c);
	cr_assert_eq(fv_module_tensor(m, "w")->shape[0], 2); /* the table's default */
	fv_module_free(m);
	cr_assert_null(fv_instantiate_component(NULL, NULL, NULL, "x"));
	pt_expect_msg("no component given");
	fv_registry_free(reg);
}

/* ---- private state parsed by the framework (priv_size) --------------------------------- */

typedef struct state {
	/* the options */
	double gain;
	fv_int_list sizes;
	const char *label;
	const char *mode;
	const fv_config_node *node;
	bool fail;
	/* the plugin's own, after them */
	bool opts_is_priv; /* create() got the state as its options */
	bool node_seen;    /* the node option was set during create() */
	int64_t total;     /* sum of sizes */
	char *own;         /* allocated by create(), freed by destroy() */
} state;

static const fv_option state_options[] = {
	FV_OPT("gain", FLOAT, state, gain, "1.5", "a number", .min = 0, .max = 10),
	FV_OPT("sizes", INT_LIST, state, sizes, "[1, 2]", "a list the framework frees"),
	FV_OPT("label", STRING, state, label, "'a label'", "a string that lives with the module"),
	FV_OPT("mode", ENUM, state, mode, "fast", "a choice", .choices = "fast|slow"),
	FV_OPT("node", NODE, state, node, "null", "any YAML, for create() only",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("fail", BOOL, state, fail, "false", "fail in create()"),
	{0},
};

static char destroyed_label[64]; /* what destroy() saw */

static fv_status state_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)args;
	state *s = fv_module_priv(m);
	s->opts_is_priv = opts == s;
	s->node_seen = s->node != NULL;
	for (size_t i = 0; i < s->sizes.n; i++)
		s->total += s->sizes.v[i];
	s->own = strdup("mine");
	return s->fail ? fv_error(FV_ERR_ARG, "asked to fail") : FV_OK;
}

/* Runs before the framework releases the state: the options are intact. */
static void state_destroy(fv_module *m)
{
	state *s = fv_module_priv(m);
	destroyed++;
	snprintf(destroyed_label, sizeof destroyed_label, "%s", s->label);
	free(s->own);
}

static fv_tensor *state_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	(void)target;
	const state *s = fv_module_priv(m);
	return fv_mul_scalar(ctx, fv_sum_all(ctx, output), s->gain);
}

/* A component with nothing to build: no create(), no destroy(). */
typedef struct plain {
	double weight;
} plain;

static const fv_option plain_options[] = {
	FV_OPT("weight", FLOAT, plain, weight, "0.5", "the factor"),
	{0},
};

static fv_tensor *plain_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	(void)target;
	const plain *p = fv_module_priv(m);
	return fv_mul_scalar(ctx, fv_sum_all(ctx, output), p->weight);
}

static const char *const state_names[] = {"TestState", NULL};
static const char *const plain_names[] = {"TestPlain", NULL};
static const fv_component state_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = state_names,
	.doc = "options parsed into its state",
	.options = state_options,
	.priv_size = sizeof(state),
	.create = state_create,
	.destroy = state_destroy,
	.loss = state_loss,
};
static const fv_component plain_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = plain_names,
	.doc = "options only",
	.options = plain_options,
	.priv_size = sizeof(plain),
	.loss = plain_loss,
};
FV_PLUGIN_DEFINE("test-state", &state_component, &plain_component);

static fv_registry *state_registry(void)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, fv_plugin_entry(), "state.c"), FV_OK, "%s", fv_errmsg());
	return reg;
}

Test(priv, options_are_parsed_into_the_state)
{
	fv_registry *reg = state_registry();
	fv_config *cfg = yaml("_target_: TestState\ngain: 2\nsizes: [3, 4]\nlabel: hello\n"
	                      "mode: slow\nnode: {a: 1}\n");
	fv_build_args a = {.struct_size = sizeof a, .registry = reg};
	fv_module *m = fv_instantiate(reg, fv_config_root(cfg), &a);
	cr_assert_not_null(m, "%s", fv_errmsg());
	fv_config_free(cfg); /* strings and lists do not point into it */
	const state *s = fv_module_priv(m);
	cr_assert(s->opts_is_priv);
	cr_assert_float_eq(s->gain, 2, 0);
	cr_assert_eq(s->sizes.n, 2);
	cr_assert(s->sizes.v[0] == 3 && s->sizes.v[1] == 4);
	cr_assert_eq(s->total, 7, "create() saw the options");
	cr_assert_str_eq(s->label, "hello");
	cr_assert_str_eq(s->mode, "slow");
	cr_assert(s->node_seen, "the node option is there during create()");
	cr_assert_null(s->node, "and cleared after it: the configuration may go");
	cr_assert_str_eq(s->own, "mine");

	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = fv_module_loss(m, ctx, fv_ctx_from_data(ctx, 1, (int64_t[]){2},
	                                                       (fv_real[]){1, 2}), NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_float_eq(y->data[0], 6, 1e-6);
	fv_ctx_free(ctx);

	destroyed = 0;
	destroyed_label[0] = '\0';
	fv_module_free(m);
	cr_assert_eq(destroyed, 1);
	cr_assert_str_eq(destroyed_label, "hello", "destroy() runs before the state is released");
	fv_registry_free(reg);
}

Test(priv, defaults_fill_the_state)
{
	fv_registry *reg = state_registry();
	fv_module *m = fv_instantiate_component(fv_registry_find(reg, "TestState", NULL), NULL, NULL,
	                                        "s");
	cr_assert_not_null(m, "%s", fv_errmsg());
	const state *s = fv_module_priv(m);
	cr_assert_float_eq(s->gain, 1.5, 0);
	cr_assert_eq(s->total, 3);
	cr_assert_str_eq(s->label, "a label");
	cr_assert_str_eq(s->mode, "fast");
	cr_assert(!s->node_seen);
	fv_module_free(m);
	fv_registry_free(reg);
}

Test(priv, failures_release_the_state)
{
	fv_registry *reg = state_registry();
	fv_build_args a = {.struct_size = sizeof a, .registry = reg};
	destroyed = 0;
	fv_config *cfg = yaml("loss:\n  _target_: TestState\n  label: x\n  fail: true\n");
	cr_assert_null(fv_instantiate(reg, fv_node_get(fv_config_root(cfg), "loss"), &a));
	cr_assert_str_eq(fv_errmsg(), "spec.yaml:1:1: TestState: asked to fail"); /* the map under loss: */
	cr_assert_eq(destroyed, 1, "destroy() runs after a failed create()");
	fv_config_free(cfg);

	/* A bad option: no module, so no create() and no destroy(). */
	cfg = yaml("_target_: TestState\nlabel: kept\nsizes: [1]\nmode: medium\n");
	cr_assert_null(fv_instantiate(reg, fv_config_root(cfg), &a));
	pt_expect_msg("mode: expected one of fast|slow");
	cr_assert_eq(destroyed, 1);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

/* Any allocation of building a module with a private state may fail: the
** build then fails with a message and releases what it had (the
** sanitizer build checks the leaks). */
Test(priv, allocation_failures_are_clean)
{
	fv_registry *reg = state_registry();
	fv_config *cfg = yaml("_target_: TestState\nsizes: [3, 4]\nlabel: hello\nmode: slow\n");
	fv_build_args a = {.struct_size = sizeof a, .registry = reg};
	fv_module_free(fv_instantiate(reg, fv_config_root(cfg), &a)); /* defaults parsed once */
	fv_alloc_fail_at(0, false);
	fv_module_free(fv_instantiate(reg, fv_config_root(cfg), &a));
	long n = fv_alloc_fail_at(0, false);
	/* A few allocations (of names for messages) may fail harmlessly. */
	long failed = 0;
	for (long i = 1; i <= n; i++) {
		fv_clear_error();
		fv_alloc_fail_at(i, false);
		fv_module *m = fv_instantiate(reg, fv_config_root(cfg), &a);
		fv_alloc_fail_at(0, false);
		if (m == NULL)
			cr_assert_neq(fv_errmsg()[0], '\0', "allocation %ld: no message", i);
		failed += m == NULL;
		fv_module_free(m);
	}
	cr_assert_geq(failed, 4, "the state, its list and strings, the module: %ld of %ld", failed,
	              n);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

Test(priv, create_is_optional)
{
	fv_registry *reg = state_registry();
	fv_config *cfg = yaml("_target_: TestPlain\nweight: 3\n");
	fv_build_args a = {.struct_size = sizeof a, .registry = reg};
	fv_module *m = fv_instantiate(reg, fv_config_root(cfg), &a);
	cr_assert_not_null(m, "%s", fv_errmsg());
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = fv_module_loss(m, ctx, fv_ctx_from_data(ctx, 1, (int64_t[]){2},
	                                                       (fv_real[]){1, 2}), NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_float_eq(y->data[0], 9, 1e-6);
	fv_ctx_free(ctx);
	fv_module_free(m);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

/* ---- modules ---------------------------------------------------------------------------- */

typedef struct seen {
	int n;
	char names[16][64];
	bool is_param[16];
} seen;

static int record(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	seen *s = ud;
	cr_assert(s->n < 16);
	snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
	s->is_param[s->n] = is_param;
	cr_assert_eq(t->requires_grad, is_param, "%s", name);
	s->n++;
	return 0;
}

/* A TestParent whose right leaf has size 3, in its own test registry. */
static built build_parent(void)
{
	fv_build_args a = {.struct_size = sizeof a};
	return instantiate(test_registry(),
	                   "_target_: TestParent\nright:\n  _target_: TestLeaf\n  size: 3\n", &a);
}

Test(module, names_and_visit_order)
{
	built parent = build_parent();
	fv_module *m = parent.m;
	seen s = {0};
	cr_assert_eq(fv_module_foreach_tensor(m, record, &s), 0);
	/* torch's state_dict order: own params, own buffers, then children. */
	const char *want[] = {"scale", "count", "left.w", "left.running", "right.w", "right.running"};
	const bool want_param[] = {true, false, true, false, true, false};
	cr_assert_eq(s.n, 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_str_eq(s.names[i], want[i]);
		cr_assert_eq(s.is_param[i], want_param[i], "%s", want[i]);
	}
	fv_module *right = fv_module_child(m, "right");
	cr_assert_not_null(right);
	cr_assert_str_eq(fv_module_name(right), "right");
	cr_assert_eq(fv_module_tensor(m, "right.w"), fv_module_tensor(right, "w"));
	cr_assert_eq(fv_module_tensor(m, "right.w")->shape[0], 3);
	cr_assert_eq(fv_module_tensor(m, "left.w")->shape[0], 2);
	cr_assert_str_eq(fv_module_tensor(right, "w")->name, "right.w");
	cr_assert_null(fv_module_tensor(m, "right"));
	cr_assert_null(fv_module_tensor(m, "w"));
	cr_assert_null(fv_module_tensor(m, "middle.w"));
	cr_assert_null(fv_module_child(m, "middle"));

	/* Visiting a child gives names relative to it. */
	seen sc = {0};
	fv_module_foreach_tensor(right, record, &sc);
	cr_assert_eq(sc.n, 2);
	cr_assert_str_eq(sc.names[0], "w");
	cr_assert_str_eq(sc.names[1], "running");
	built_free(&parent);
}

static int freeze_all(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)ud;
	(void)name;
	if (is_param)
		t->requires_grad = false;
	return 0;
}

/* The trainable parameters: a list, an empty list, or NULL for a failure
** (which the trainer passes on, rather than reading it as "no parameters"). */
Test(module, params_are_a_list_or_a_failure)
{
	built parent = build_parent();
	size_t n = 99;
	fv_tensor **p = fv_module_params(parent.m, &n);
	cr_assert_not_null(p, "%s", fv_errmsg());
	cr_assert_eq(n, 3);
	cr_assert_eq(p[1], fv_module_tensor(parent.m, "left.w"));
	free(p);
	fv_alloc_fail_at(1, false);
	p = fv_module_params(parent.m, &n);
	fv_alloc_fail_at(0, false);
	cr_assert_null(p);
	cr_assert_eq(n, 0);
	cr_assert_eq(fv_errcode(), FV_ERR_NOMEM);
	fv_module_foreach_tensor(parent.m, freeze_all, NULL);
	p = fv_module_params(parent.m, &n);
	cr_assert_not_null(p, "no parameters is an empty list, not a failure");
	cr_assert_eq(n, 0);
	free(p);
	built_free(&parent);
}

Test(module, adoption_renames_the_subtree)
{
	built parent = build_parent();
	fv_module *inner = parent.m;
	fv_module *outer = fv_instantiate_component(fv_registry_find(parent.reg, "TestLeaf", NULL),
	                                            NULL, NULL, "outer");
	cr_assert_not_null(outer, "%s", fv_errmsg());
	cr_assert_eq(fv_module_add_child(outer, "core", inner), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_module_tensor(outer, "core.left.w")->name, "core.left.w");
	cr_assert_str_eq(fv_module_tensor(outer, "core.scale")->name, "core.scale");
	cr_assert_str_eq(fv_module_tensor(outer, "w")->name, "w");
	seen s = {0};
	fv_module_foreach_tensor(inner, record, &s);
	cr_assert_str_eq(s.names[2], "left.w"); /* relative to the module visited */
	parent.m = outer; /* which owns inner now */
	built_free(&parent);
}

static int stop_at_third(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	(void)t;
	(void)is_param;
	return ++*(int *)ud == 3 ? 7 : 0;
}

Test(module, stop_visiting_on_nonzero)
{
	built parent = build_parent();
	fv_module *m = parent.m;
	int calls = 0;
	cr_assert_eq(fv_module_foreach_tensor(m, stop_at_third, &calls), 7);
	cr_assert_eq(calls, 3);
	built_free(&parent);
}

Test(module, name_clashes_and_misuse)
{
	fv_registry *reg = test_registry();
	const fv_component *c = fv_registry_find(reg, "TestLeaf", NULL);
	fv_module *m = fv_instantiate_component(c, NULL, NULL, "m");
	int64_t two = 2;
	cr_assert_null(fv_module_add_param(m, "w", 1, &two));
	pt_expect_msg("module 'm': cannot add parameter 'w': the name is already used");
	cr_assert_null(fv_module_add_buffer(m, "", 1, &two));
	pt_expect_msg("module 'm': a buffer needs a non-empty name");
	int64_t neg = -1;
	cr_assert_null(fv_module_add_param(m, "bad", 1, &neg));
	pt_expect_msg("module 'm', parameter 'bad': negative size -1");

	destroyed = 0;
	fv_module *k = fv_instantiate_component(c, NULL, NULL, "k");
	cr_assert_eq(fv_module_add_child(m, "running", k), FV_ERR_ARG);
	pt_expect_msg("module 'm': cannot add child 'running': the name is already used");
	cr_assert_eq(destroyed, 1, "a refused child is freed");

	fv_error(FV_ERR_CONFIG, "the cause");
	cr_assert_eq(fv_module_add_child(m, "x", NULL), FV_ERR_CONFIG, "the cause's code");
	cr_assert_str_eq(fv_errmsg(), "module 'm', child 'x': the cause");
	fv_clear_error();
	cr_assert_eq(fv_module_add_child(m, "x", NULL), FV_ERR_ARG, "no cause: a misuse");
	cr_assert_str_eq(fv_errmsg(), "module 'm': child 'x' is NULL");

	fv_module *k2 = fv_instantiate_component(c, NULL, NULL, "k2");
	cr_assert_eq(fv_module_add_child(m, "k2", k2), FV_OK);
	cr_assert_eq(fv_module_add_child(m, "again", k2), FV_ERR_ARG);
	pt_expect_msg("module 'm': cannot adopt 'k2': it already has a parent");
	cr_assert_eq(fv_module_add_child(k2, "loop", m), FV_ERR_ARG);
	pt_expect_msg("module 'k2': cannot adopt 'm': it is the module itself or its ancestor");
	fv_module_free(m);
	fv_registry_free(reg);
}

/* Non-persistent state: found by name, replaced on a new shape, never
** visited (so never saved). */
Test(module, transient_state)
{
	built parent = build_parent();
	fv_module *m = parent.m;
	fv_module *left = fv_module_child(m, "left");
	fv_tensor *s1 = fv_module_set_state(left, "_corr", 1, (int64_t[]){4});
	cr_assert_not_null(s1, "%s", fv_errmsg());
	cr_assert_str_eq(s1->name, "left._corr");
	cr_assert_not(s1->requires_grad);
	cr_assert_eq(fv_module_set_state(left, "_corr", 1, (int64_t[]){4}), s1, "same shape: kept");
	fv_tensor *s2 = fv_module_set_state(left, "_corr", 2, (int64_t[]){2, 3});
	cr_assert_not_null(s2);
	cr_assert_eq(s2->ndim, 2);
	cr_assert_eq(s2->numel, 6);
	cr_assert_str_eq(s2->name, "left._corr");
	cr_assert_eq(fv_module_tensor(m, "left._corr"), s2);
	seen s = {0};
	fv_module_foreach_tensor(m, record, &s);
	cr_assert_eq(s.n, 6, "transient state must not be visited");
	for (int i = 0; i < s.n; i++)
		cr_assert(strstr(s.names[i], "_corr") == NULL);
	/* A state may not shadow a parameter. */
	cr_assert_null(fv_module_set_state(left, "w", 1, (int64_t[]){1}));
	pt_expect_msg("cannot add buffer 'w': the name is already used");
	built_free(&parent);
}

Test(module, training_flag_is_recursive)
{
	built parent = build_parent();
	fv_module *m = parent.m;
	fv_module *left = fv_module_child(m, "left"), *right = fv_module_child(m, "right");
	cr_assert(fv_module_training(m) && fv_module_training(left) && fv_module_training(right));
	fv_module_set_training(m, false);
	cr_assert(!fv_module_training(m) && !fv_module_training(left) && !fv_module_training(right));
	fv_module_set_training(left, true);
	cr_assert(!fv_module_training(m) && fv_module_training(left) && !fv_module_training(right));
	built_free(&parent);
}

Test(module, missing_slots_are_errors)
{
	fv_registry *reg = test_registry();
	const fv_component *c = fv_registry_find(reg, "TestLeaf", NULL);
	fv_module *m = fv_instantiate_component(c, NULL, NULL, "left");
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_zeros(ctx, 1, (int64_t[]){2});
	cr_assert_null(fv_module_forward(m, ctx, x, NULL));
	cr_assert_str_eq(fv_errmsg(), "loss 'TestLeaf' (left) has no forward");
	cr_assert_null(fv_module_regularizer(m, ctx, NULL));
	cr_assert_str_eq(fv_errmsg(), "loss 'TestLeaf' (left) has no regularizer");
	fv_ctx_free(ctx);
	fv_module_free(m);
	fv_registry_free(reg);
}

Test(module, kind_names)
{
	const char *want[FV_KIND_COUNT] = {"core", "readout", "objective", "regularizer",
	                                   "stopper", "loss", "reducer", "model", "layer",
	                                   "data step"};
	for (int k = 0; k < FV_KIND_COUNT; k++)
		cr_assert_str_eq(fv_kind_name((fv_kind)k), want[k]);
	cr_assert_str_eq(fv_kind_name(FV_KIND_COUNT), "unknown kind");
}
