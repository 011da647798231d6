/*
** cmd_instantiate.c: `fovea instantiate SPEC.yaml`, build a component from a
** config and list its tensors.
**
** The quickest check that a config (or a new plugin) is right: the config is
** composed and resolved exactly as training would, the component is built
** through the registry, and the tensor names printed are the names its
** checkpoints will carry.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

typedef struct inst_args {
	const char *spec_path;
	const char *key;
	fv_build_args build;
	int n_overrides;
	const char **overrides;
} inst_args;

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* "2,50,18,16" */
static int parse_shape(const char *s, fv_build_args *b)
{
	char buf[256];
	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	b->in_ndim = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (b->in_ndim == FV_MAX_DIMS || parse_int64(tok, &b->in_shape[b->in_ndim]) != 0 ||
		    b->in_shape[b->in_ndim] <= 0)
			return -1;
		b->in_ndim++;
	}
	return b->in_ndim > 0 ? 0 : -1;
}

/* Options take their value as the next argument; everything else is the
** spec file (first) or an override. */
static int parse_args(int argc, char **argv, inst_args *a)
{
	const cli_cmd *self = &cli_cmd_instantiate;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		bool takes_value = strcmp(arg, "--key") == 0 || strcmp(arg, "--in-shape") == 0 ||
		                   strcmp(arg, "--neurons") == 0 || strcmp(arg, "--seed") == 0;
		if (takes_value && i + 1 == argc)
			return cli_usage_error(self, "%s needs a value", arg);
		if (strcmp(arg, "--key") == 0) {
			a->key = argv[++i];
		} else if (strcmp(arg, "--in-shape") == 0) {
			if (parse_shape(argv[++i], &a->build) != 0)
				return cli_usage_error(self, "--in-shape: expected sizes like 2,50,18,16, "
				                             "got '%s'", argv[i]);
		} else if (strcmp(arg, "--neurons") == 0) {
			if (parse_int64(argv[++i], &a->build.n_neurons) != 0 || a->build.n_neurons <= 0)
				return cli_usage_error(self, "--neurons: expected a positive integer, "
				                             "got '%s'", argv[i]);
		} else if (strcmp(arg, "--seed") == 0) {
			int64_t seed;
			if (parse_int64(argv[++i], &seed) != 0)
				return cli_usage_error(self, "--seed: expected an integer, got '%s'", argv[i]);
			a->build.seed = (uint64_t)seed;
		} else if (arg[0] == '-' && arg[1] == '-') {
			return cli_usage_error(self, "unknown option '%s'", arg);
		} else if (a->spec_path == NULL) {
			a->spec_path = arg;
		} else {
			a->overrides[a->n_overrides++] = arg;
		}
	}
	if (a->spec_path == NULL)
		return cli_usage_error(self, "expected a YAML spec file");
	return CLI_OK;
}

/* --key, else the root when it has a _target_, else `model`. */
static const fv_config_node *pick_spec(const fv_config *cfg, const inst_args *a)
{
	const fv_config_node *root = fv_config_root(cfg);
	if (a->key != NULL) {
		const fv_config_node *n = fv_node_path(root, a->key);
		if (n == NULL)
			cli_fail("%s: no key '%s'", a->spec_path, a->key);
		return n;
	}
	if (fv_node_get(root, "_target_") != NULL)
		return root;
	const fv_config_node *model = fv_node_get(root, "model");
	if (model != NULL && fv_node_get(model, "_target_") != NULL)
		return model;
	cli_fail("%s: no _target_ at the top and no model._target_; say which key to build "
	         "with --key",
	         a->spec_path);
	return NULL;
}

typedef struct totals {
	size_t tensors;
	int64_t values, trainable;
} totals;

static int print_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	totals *tot = ud;
	printf("%-7s %-40s %s\n", is_param ? "param" : "buffer", name,
	       fv_shape_str(t->ndim, t->shape));
	tot->tensors++;
	tot->values += t->numel;
	if (is_param)
		tot->trainable += t->numel;
	return 0;
}

static int build_and_list(fv_registry *reg, const fv_config_node *spec, inst_args *a)
{
	a->build.registry = reg;
	fv_module *m = fv_instantiate(reg, spec, &a->build);
	if (m == NULL)
		return cli_fail("%s", fv_errmsg());
	const fv_component *c = fv_module_component(m);
	printf("%s %s\n", fv_kind_name(c->kind), c->names[0]);
	totals tot = {0};
	fv_module_foreach_tensor(m, print_tensor, &tot);
	printf("%zu tensors, %" PRId64 " values (%" PRId64 " trainable)\n", tot.tensors, tot.values,
	       tot.trainable);
	fv_module_free(m);
	return CLI_OK;
}

static int run_instantiate(int argc, char **argv)
{
	const char **overrides = calloc((size_t)argc, sizeof *overrides);
	if (overrides == NULL)
		return cli_fail("out of memory");
	inst_args a = {.build = {.struct_size = sizeof(fv_build_args)}, .overrides = overrides};
	int rc = parse_args(argc, argv, &a);
	fv_config *cfg = NULL;
	fv_registry *reg = NULL;
	const fv_config_node *spec = NULL;
	if (rc == CLI_OK) {
		cfg = fv_config_compose(a.spec_path, NULL, a.n_overrides, a.overrides);
		if (cfg == NULL)
			rc = cli_fail("%s", fv_errmsg());
	}
	if (rc == CLI_OK && (spec = pick_spec(cfg, &a)) == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK && (reg = cli_load_registry()) == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		rc = build_and_list(reg, spec, &a);
	fv_registry_free(reg);
	fv_config_free(cfg);
	free(overrides);
	return rc;
}

const cli_cmd cli_cmd_instantiate = {
	.name = "instantiate",
	.summary = "build a component from a YAML spec and list its tensors",
	.usage = "fovea instantiate SPEC.yaml [--key KEY] [--in-shape C,T,H,W] [--neurons N]\n"
	         "                         [--seed S] [KEY=VALUE | +KEY=VALUE | ~KEY ...]\n"
	         "\n"
	         "Compose SPEC.yaml (defaults lists, interpolation, the overrides given),\n"
	         "build the component it names with _target_ and print each of its\n"
	         "tensors (parameter or buffer, name, shape): the names its checkpoints\n"
	         "use.  The component built is the one at KEY (a dotted path), else the\n"
	         "top of the file when it has a _target_, else `model`.\n"
	         "\n"
	         "  --key KEY              the dotted path of the spec to build\n"
	         "  --in-shape C,T,H,W     input shape without the batch dimension\n"
	         "  --neurons N            number of neurons (readouts)\n"
	         "  --seed S               initialisation seed (default 0)\n",
	.run = run_instantiate,
};
