/*
** test_config.c: the configuration tree: YAML loading, typed reads,
** interpolation, environment variables, overrides, Hydra composition and
** writing back to YAML.  Expected values are written out by hand from the
** files under tests/data/config/ and from PyYAML/OmegaConf/Hydra behaviour.
*/
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "expect_error.h"
#include "fovea/config.h"
#include "fovea/plugin.h"

#define DATA(name) FOVEA_TEST_SRCDIR "/data/config/" name
#define COMPOSE_DIR FOVEA_TEST_SRCDIR "/data/config/compose"
#define COMPOSE(name) COMPOSE_DIR "/" name

/* ---- helpers ------------------------------------------------------------------------------- */

static fv_config *load(const char *text)
{
	fv_config *cfg = fv_config_load_string(text, strlen(text), "t.yaml");
	cr_assert_not_null(cfg, "loading failed: %s", fv_errmsg());
	return cfg;
}

static fv_config *load_file(const char *path)
{
	fv_config *cfg = fv_config_load_file(path);
	cr_assert_not_null(cfg, "loading %s failed: %s", path, fv_errmsg());
	return cfg;
}

static const fv_config_node *at(const fv_config *cfg, const char *path)
{
	const fv_config_node *n = fv_node_path(fv_config_root(cfg), path);
	cr_assert_not_null(n, "no node at '%s'", path);
	return n;
}

static const char *text_at(const fv_config *cfg, const char *path)
{
	const char *t = fv_node_text(at(cfg, path));
	cr_assert_not_null(t, "'%s' is not a scalar", path);
	return t;
}

static int64_t int_at(const fv_config *cfg, const char *path)
{
	int64_t v = 0;
	cr_assert_eq(fv_node_to_int(at(cfg, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	return v;
}

static double double_at(const fv_config *cfg, const char *path)
{
	double v = 0;
	cr_assert_eq(fv_node_to_double(at(cfg, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	return v;
}

static bool bool_at(const fv_config *cfg, const char *path)
{
	bool v = false;
	cr_assert_eq(fv_node_to_bool(at(cfg, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	return v;
}

static fv_status load_status(const char *text)
{
	fv_config *cfg = fv_config_load_string(text, strlen(text), "t.yaml");
	fv_status st = cfg ? FV_OK : fv_errcode();
	fv_config_free(cfg);
	return st;
}

static fv_status resolve_text(const char *text)
{
	fv_config *cfg = load(text);
	fv_status st = fv_config_resolve(cfg);
	fv_config_free(cfg);
	return st;
}

/* Structural equality written independently of the library. */
static bool same_tree(const fv_config_node *a, const fv_config_node *b)
{
	if (fv_node_kind(a) != fv_node_kind(b) || fv_node_size(a) != fv_node_size(b))
		return false;
	if (fv_node_kind(a) == FV_NODE_SCALAR &&
	    (strcmp(fv_node_text(a), fv_node_text(b)) != 0 || fv_node_quoted(a) != fv_node_quoted(b)))
		return false;
	for (size_t i = 0; i < fv_node_size(a); i++) {
		if (fv_node_kind(a) == FV_NODE_MAP && strcmp(fv_node_key_at(a, i), fv_node_key_at(b, i)) != 0)
			return false;
		if (!same_tree(fv_node_at(a, i), fv_node_at(b, i)))
			return false;
	}
	return true;
}

static void check_round_trip(const fv_config *cfg)
{
	char *yaml = fv_config_to_yaml(cfg);
	cr_assert_not_null(yaml, "%s", fv_errmsg());
	fv_config *back = fv_config_load_string(yaml, strlen(yaml), "back.yaml");
	cr_assert_not_null(back, "the written YAML does not load (%s):\n%s", fv_errmsg(), yaml);
	cr_assert(same_tree(fv_config_root(cfg), fv_config_root(back)), "round trip differs:\n%s", yaml);
	fv_config_free(back);
	free(yaml);
}

/* ---- loading and typed reads ------------------------------------------------------------------- */

Test(config, scalars_are_typed_like_pyyaml_and_omegaconf)
{
	fv_config *cfg = load_file(DATA("basic.yaml"));
	cr_assert_str_eq(text_at(cfg, "name"), "retina");
	cr_assert_eq(int_at(cfg, "seed"), 42);
	cr_assert_float_eq(double_at(cfg, "lr"), 1e-3, 1e-18);
	cr_assert_float_eq(double_at(cfg, "ratio"), 0.5, 0);
	cr_assert_eq(int_at(cfg, "big"), 1000);
	cr_assert_eq(int_at(cfg, "hex"), 31);
	cr_assert_eq(int_at(cfg, "octal"), 15);
	cr_assert_eq(int_at(cfg, "old_octal"), 15);
	cr_assert_eq(int_at(cfg, "sexagesimal"), 90);
	cr_assert(bool_at(cfg, "flag_yes"));
	cr_assert(!bool_at(cfg, "flag_off"));
	cr_assert(bool_at(cfg, "flag_true"));
	cr_assert_eq(fv_node_kind(at(cfg, "nothing")), FV_NODE_NULL);
	cr_assert(fv_node_is_null(at(cfg, "tilde")));
	cr_assert(fv_node_is_null(at(cfg, "empty")));
	cr_assert_null(fv_node_text(at(cfg, "nothing")));
	/* a quoted number is a string in the tree, and still reads as a number */
	cr_assert(fv_node_quoted(at(cfg, "quoted_num")));
	cr_assert_str_eq(text_at(cfg, "quoted_num"), "3");
	cr_assert_eq(int_at(cfg, "quoted_num"), 3);
	cr_assert(fv_node_quoted(at(cfg, "quoted_bool")));
	cr_assert(!fv_node_quoted(at(cfg, "seed")));
	cr_assert(isinf(double_at(cfg, "inf")) && double_at(cfg, "inf") < 0);
	cr_assert(isnan(double_at(cfg, "nan")));
	cr_assert_float_eq(double_at(cfg, "seed"), 42.0, 0, "ints read as doubles");
	cr_assert_str_eq(text_at(cfg, "text"), "two\nlines\n");
	cr_assert(fv_node_quoted(at(cfg, "text")), "block scalars are strings");
	fv_config_free(cfg);
}

Test(config, nesting_paths_keys_and_locations)
{
	fv_config *cfg = load_file(DATA("basic.yaml"));
	const fv_config_node *root = fv_config_root(cfg);
	cr_assert_eq(fv_node_kind(root), FV_NODE_MAP);
	cr_assert_str_eq(fv_node_key_at(root, 0), "name");
	cr_assert_str_eq(fv_node_key_at(root, 1), "seed");
	const fv_config_node *hc = at(cfg, "model.hidden_channels");
	cr_assert_eq(fv_node_kind(hc), FV_NODE_SEQ);
	cr_assert_eq(fv_node_size(hc), 2);
	cr_assert_str_eq(fv_node_text(fv_node_at(hc, 1)), "32");
	cr_assert_eq(int_at(cfg, "model.core.kernel.1"), 11);
	cr_assert_eq(int_at(cfg, "model.core.kernel[0]"), 21);
	const fv_config_node *k0 = at(cfg, "model.core.kernel.0");
	cr_assert_str_eq(fv_node_keypath(k0), "model.core.kernel.0");
	cr_assert_eq(fv_node_line(k0), 26);
	cr_assert_eq(fv_node_line(at(cfg, "model.core")), 23, "a map value is located at its key");
	cr_assert_eq(fv_node_line(at(cfg, "seed")), 3);
	cr_assert(strstr(fv_node_file(k0), "basic.yaml") != NULL);
	cr_assert_str_eq(fv_node_keypath(root), "");
	cr_assert_null(fv_node_path(root, "model.nope"));
	cr_assert_null(fv_node_path(root, "model.hidden_channels.2"));
	cr_assert_null(fv_node_path(root, "name.x"));
	cr_assert_eq(fv_node_path(root, ""), root);
	cr_assert_eq(fv_node_get(at(cfg, "model"), "core"), at(cfg, "model.core"));
	fv_config_free(cfg);
}

/* fv_error_at: file:line:column as editors count them (a map value at its
** key, a list item where it starts, an alias where it is used); less when
** less is known; nothing without a node. */
Test(config, error_at_puts_the_place_of_a_value_first)
{
	fv_config *cfg = load("a:\n  b: [1, {c: x}]\n  d:\n    - 5\n  e: &e 7\nf: *e\n");
	EXPECT_ERROR(fv_error_at(at(cfg, "a.b"), FV_ERR_CONFIG, "%s: bad", "b"), FV_ERR_CONFIG,
	             "t.yaml:2:3: b: bad");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:2:3: b: bad");
	fv_error_at(at(cfg, "a.b.1"), FV_ERR_ARG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:2:10: x");
	fv_error_at(at(cfg, "a.b.1.c"), FV_ERR_ARG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:2:11: x");
	fv_error_at(at(cfg, "a.d.0"), FV_ERR_ARG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:4:7: x");
	fv_error_at(at(cfg, "f"), FV_ERR_ARG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:6:1: x", "an alias is placed where it is used");
	cr_assert_eq(fv_error_at(NULL, FV_ERR_NOTFOUND, "no %s", "node"), FV_ERR_NOTFOUND);
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOTFOUND, "no node");
	cr_assert_str_eq(fv_errmsg(), "no node", "no node, no place");
	/* a command-line value is placed at its override, which has no lines */
	cr_assert_eq(fv_config_override(cfg, "a.e=8"), FV_OK, "%s", fv_errmsg());
	fv_error_at(at(cfg, "a.e"), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "override 'a.e=8': x");
	cr_assert_eq(fv_config_override(cfg, "+g=[1, 2]"), FV_OK, "%s", fv_errmsg());
	fv_error_at(at(cfg, "g.1"), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "override '+g=[1, 2]': x");
	/* restating the current message in place */
	fv_error(FV_ERR_IO, "cannot open w.bin");
	fv_error_at(at(cfg, "a.b"), fv_errcode(), "weights: %s", fv_errmsg());
	EXPECT_ERROR(fv_errcode(), FV_ERR_IO, "t.yaml:2:3: weights: cannot open w.bin");
	fv_config_free(cfg);
	/* the root of a composition comes from no single file */
	cfg = fv_config_compose(COMPOSE("experiment.yaml"), NULL, 0, NULL);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_error_at(fv_config_root(cfg), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "x");
	fv_config_free(cfg);
}

/* A composite component's derived spec: its values keep the places and key
** paths of what they were written from; new values sit at their parent. */
Test(config, derived_specs_keep_places)
{
	fv_config *cfg = load("model:\n  core:\n    gamma: 0.5\n    sizes: [3, 5]\n");
	const fv_config_node *core = at(cfg, "model.core");
	char *yaml = fv_node_to_yaml(core);
	cr_assert_not_null(yaml, "%s", fv_errmsg());
	char text[512];
	snprintf(text, sizeof text, "%schannels: [1, 2]\n", yaml);
	free(yaml);
	fv_config *d = fv_config_load_derived(text, strlen(text), core);
	cr_assert_not_null(d, "%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(d);
	cr_assert_str_eq(fv_node_keypath(fv_node_path(root, "sizes.1")), "model.core.sizes.1");
	fv_error_at(fv_node_path(root, "sizes.1"), FV_ERR_CONFIG, "%s", "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:4:16: x");
	fv_error_at(fv_node_path(root, "gamma"), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:3:5: x");
	fv_error_at(fv_node_path(root, "channels.0"), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "t.yaml:2:3: x", "a new value sits at the spec");
	int64_t v;
	EXPECT_ERROR(fv_node_to_int(fv_node_get(root, "gamma"), &v), FV_ERR_CONFIG,
	             "t.yaml:3:5: model.core.gamma: expected an integer, got '0.5'");
	fv_config_free(d);
	/* from nothing: no place at all */
	d = fv_config_load_derived(text, strlen(text), NULL);
	cr_assert_not_null(d, "%s", fv_errmsg());
	fv_error_at(fv_node_get(fv_config_root(d), "gamma"), FV_ERR_CONFIG, "x");
	cr_assert_str_eq(fv_errmsg(), "x");
	cr_assert_null(fv_node_file(fv_node_path(fv_config_root(d), "sizes.0")));
	cr_assert_str_eq(fv_node_keypath(fv_node_get(fv_config_root(d), "gamma")), "gamma");
	fv_config_free(d);
	cr_assert_null(fv_config_load_derived("a: [\n", 6, core));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "<derived>:", "YAML syntax error");
	fv_config_free(cfg);
}

Test(config, anchors_aliases_and_merge_keys)
{
	fv_config *cfg = load_file(DATA("basic.yaml"));
	/* <<: *base, then the map's own bias wins; merged keys come first */
	const fv_config_node *d = at(cfg, "derived");
	cr_assert_eq(fv_node_size(d), 2);
	cr_assert_str_eq(fv_node_key_at(d, 0), "scale");
	cr_assert_str_eq(fv_node_key_at(d, 1), "bias");
	cr_assert(bool_at(cfg, "derived.scale"));
	cr_assert_float_eq(double_at(cfg, "derived.bias"), 2.0, 0);
	cr_assert_float_eq(double_at(cfg, "base.bias"), 1.0, 0, "the anchor itself is unchanged");
	/* an alias is a copy */
	cr_assert_eq(fv_node_size(at(cfg, "copy")), 2);
	cr_assert_neq(at(cfg, "copy"), at(cfg, "base"));
	cr_assert_float_eq(double_at(cfg, "copy.bias"), 1.0, 0);
	cr_assert_str_eq(fv_node_keypath(at(cfg, "copy.bias")), "copy.bias");
	/* a list of merged maps: the first one wins among them */
	cr_assert_eq(int_at(cfg, "multi_merge.a"), 1);
	cr_assert_eq(int_at(cfg, "multi_merge.b"), 1);
	cr_assert_eq(int_at(cfg, "multi_merge.c"), 3);
	fv_config_free(cfg);
}

Test(config, scalar_classification)
{
	/* (text, kind: s=string n=null b=bool i=int f=float) as PyYAML with
	** OmegaConf's loader types plain scalars */
	static const struct {
		const char *text;
		char kind;
	} cases[] = {
		{"1", 'i'},      {"-1", 'i'},     {"+1", 'i'},      {"0", 'i'},       {"09", 's'},
		{"0x", 's'},     {"1_000", 'i'},  {"1:30", 'i'},    {"0b101", 'i'},   {"0o17", 'i'},
		{"017", 'i'},    {"-0x10", 'i'},  {"1e3", 'f'},     {"1.0", 'f'},     {"3.", 'f'},
		{".5", 'f'},     {"1.5e-3", 'f'}, {"1E+3", 'f'},    {"1:30.5", 'f'},  {".inf", 'f'},
		{"-.Inf", 'f'},  {".NaN", 'f'},   {"nan", 's'},     {"inf", 's'},     {"1e", 's'},
		{"e3", 's'},     {"1.2.3", 's'},  {"_1", 's'},      {"yes", 'b'},     {"No", 'b'},
		{"ON", 'b'},     {"off", 'b'},    {"y", 's'},       {"TrUe", 's'},    {"null", 'n'},
		{"Null", 'n'},   {"NULL", 'n'},   {"~", 'n'},       {"nULL", 's'},    {"abc", 's'},
	};
	char yaml[64];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(yaml, sizeof yaml, "v: %s\n", cases[i].text);
		fv_config *cfg = load(yaml);
		const fv_config_node *v = at(cfg, "v");
		bool b;
		int64_t n;
		double d;
		char kind = fv_node_kind(v) == FV_NODE_NULL        ? 'n'
		            : fv_node_to_bool(v, &b) == FV_OK      ? 'b'
		            : fv_node_to_int(v, &n) == FV_OK       ? 'i'
		            : fv_node_to_double(v, &d) == FV_OK    ? 'f'
		                                                   : 's';
		cr_expect_eq(kind, cases[i].kind, "'%s' read as %c, expected %c", cases[i].text, kind,
		             cases[i].kind);
		fv_config_free(cfg);
	}
	fv_config *cfg = load("a: 1:30.5\nb: 0b101\nc: -0x10\nd: 1__0\n");
	cr_assert_float_eq(double_at(cfg, "a"), 90.5, 1e-12);
	cr_assert_eq(int_at(cfg, "b"), 5);
	cr_assert_eq(int_at(cfg, "c"), -16);
	cr_assert_eq(int_at(cfg, "d"), 10);
	fv_config_free(cfg);
}

Test(config, typed_read_errors_name_file_line_key_and_expectation)
{
	fv_config *cfg = load("name: retina\nn: 42\nm:\n  x: 1\nq: \?\?\?\nbig: 99999999999999999999\n");
	int64_t i;
	bool b;
	double d;
	EXPECT_ERROR(fv_node_to_int(at(cfg, "name"), &i), FV_ERR_CONFIG,
	             "t.yaml:1:1: name: expected an integer, got 'retina'");
	EXPECT_ERROR(fv_node_to_bool(at(cfg, "n"), &b), FV_ERR_CONFIG, "t.yaml:2:1: n: expected a boolean",
	             "got '42'");
	EXPECT_ERROR(fv_node_to_double(at(cfg, "m"), &d), FV_ERR_CONFIG, "t.yaml:3:1: m: expected a number",
	             "got a map");
	EXPECT_ERROR(fv_node_to_int(at(cfg, "q"), &i), FV_ERR_CONFIG,
	             "t.yaml:5:1: q: missing mandatory value (\?\?\?)");
	EXPECT_ERROR(fv_node_to_int(at(cfg, "big"), &i), FV_ERR_CONFIG, "t.yaml:6:1: big:",
	             "does not fit in 64 bits");
	cr_assert_eq(fv_node_to_double(at(cfg, "big"), &d), FV_OK);
	cr_assert_float_eq(d, 1e20, 1e6);
	EXPECT_ERROR(fv_node_to_int(NULL, &i), FV_ERR_ARG, "NULL");
	EXPECT_ERROR(fv_node_to_bool(NULL, &b), FV_ERR_ARG, "NULL");
	EXPECT_ERROR(fv_node_to_double(NULL, &d), FV_ERR_ARG, "NULL");
	fv_config_free(cfg);
}

Test(config, null_safe_accessors)
{
	cr_assert_null(fv_config_root(NULL));
	cr_assert_null(fv_node_get(NULL, "x"));
	cr_assert_null(fv_node_path(NULL, "x"));
	cr_assert_eq(fv_node_size(NULL), 0);
	cr_assert_null(fv_node_at(NULL, 0));
	cr_assert_null(fv_node_key_at(NULL, 0));
	cr_assert_null(fv_node_text(NULL));
	cr_assert_null(fv_node_file(NULL));
	cr_assert_eq(fv_node_line(NULL), 0);
	cr_assert_null(fv_node_keypath(NULL));
	cr_assert(fv_node_is_null(NULL));
	cr_assert(!fv_node_quoted(NULL));
	fv_config_free(NULL);
	fv_config *cfg = load("a: [1]\nb: {c: 1}\n");
	cr_assert_null(fv_node_key_at(at(cfg, "a"), 0), "list items have no key");
	cr_assert_null(fv_node_text(at(cfg, "b")));
	cr_assert_null(fv_node_at(at(cfg, "a"), 1));
	cr_assert_null(fv_node_get(at(cfg, "a"), "c"));
	fv_config_free(cfg);
}

Test(config, empty_text_is_an_empty_map)
{
	fv_config *cfg = load("");
	cr_assert_eq(fv_node_kind(fv_config_root(cfg)), FV_NODE_MAP);
	cr_assert_eq(fv_node_size(fv_config_root(cfg)), 0);
	cr_assert_eq(fv_config_resolve(cfg), FV_OK);
	char *y = fv_config_to_yaml(cfg);
	cr_assert_str_eq(y, "{}\n");
	free(y);
	fv_config_free(cfg);
	cfg = load("# only a comment\n");
	cr_assert_eq(fv_node_size(fv_config_root(cfg)), 0);
	fv_config_free(cfg);
	cfg = load("- 1\n- 2\n");
	cr_assert_eq(fv_node_kind(fv_config_root(cfg)), FV_NODE_SEQ, "a list at the top is accepted");
	fv_config_free(cfg);
}

Test(config, load_errors)
{
	cr_assert_null(fv_config_load_file(DATA("bad_syntax.yaml")));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "bad_syntax.yaml:", "YAML syntax error");
	cr_assert_null(fv_config_load_file(DATA("dup_key.yaml")));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "dup_key.yaml:4:3: duplicate key 'c' (first at line 3)");
	cr_assert_null(fv_config_load_file(DATA("no_such_file.yaml")));
	EXPECT_ERROR(fv_errcode(), FV_ERR_IO, "no_such_file.yaml: cannot open");
	EXPECT_ERROR(load_status("a: *nope\n"), FV_ERR_CONFIG, "t.yaml:1:4: unknown alias *nope");
	EXPECT_ERROR(load_status("just a string\n"), FV_ERR_CONFIG, "t.yaml:1:1: the top level of a "
	             "configuration must be a map");
	EXPECT_ERROR(load_status("a: 1\n---\nb: 2\n"), FV_ERR_CONFIG, "t.yaml:2:1: a second YAML document");
	EXPECT_ERROR(load_status("a:\n  <<: 3\n"), FV_ERR_CONFIG, "t.yaml:2:3: a merge key (<<) takes a map");
	EXPECT_ERROR(load_status("a:\n  <<: [{x: 1}, 2]\n"), FV_ERR_CONFIG, "t.yaml:2:3: a merge key (<<) takes "
	             "maps; item 1 is not a map");
	EXPECT_ERROR(load_status("? [1, 2]\n: 3\n"), FV_ERR_CONFIG, "t.yaml:1:3: keys must be plain strings");
	EXPECT_ERROR(load_status("a: \"x\\0y\"\n"), FV_ERR_CONFIG, "t.yaml:1:4: a string contains a NUL");
	cr_assert_null(fv_config_load_string(NULL, 0, "x"));
	cr_assert_null(fv_config_load_file(NULL));
}

Test(config, hostile_inputs_are_refused_not_crashed_on)
{
	/* 300 nested lists */
	char deep[700];
	memset(deep, '[', 300);
	memset(deep + 300, ']', 300);
	deep[600] = '\0';
	char text[720];
	snprintf(text, sizeof text, "a: %s\n", deep);
	EXPECT_ERROR(load_status(text), FV_ERR_CONFIG, "t.yaml:1:259: values nested more than");
	/* a billion laughs */
	const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
	EXPECT_ERROR(load_status(laughs), FV_ERR_CONFIG, "grows beyond");
	/* the same through interpolation */
	const char *interp = "a: [x, x, x, x, x, x, x, x, x, x]\n"
	                     "b: ['${a}', '${a}', '${a}', '${a}', '${a}', '${a}', '${a}', '${a}', '${a}', '${a}']\n"
	                     "c: ['${b}', '${b}', '${b}', '${b}', '${b}', '${b}', '${b}', '${b}', '${b}', '${b}']\n"
	                     "d: ['${c}', '${c}', '${c}', '${c}', '${c}', '${c}', '${c}', '${c}', '${c}', '${c}']\n"
	                     "e: ['${d}', '${d}', '${d}', '${d}', '${d}', '${d}', '${d}', '${d}', '${d}', '${d}']\n"
	                     "f: ['${e}', '${e}', '${e}', '${e}', '${e}', '${e}', '${e}', '${e}', '${e}', '${e}']\n";
	EXPECT_ERROR(resolve_text(interp), FV_ERR_CONFIG, "grows beyond");
	/* composition resolves leniently, but gives up at once on a bomb */
	cr_assert_null(fv_config_compose(DATA("interp_bomb.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "interp_bomb.yaml:1: the configuration grows beyond");
}

/* Issue 12 item 5: resolved text counts against a budget, whichever way it
** is written, and the message names the key that went over. */
Test(config, string_doubling_interpolation_is_refused)
{
	fv_config *cfg = load("a: 1\n");
	cr_assert_eq(fv_config_override(cfg, "+x0=lol"), FV_OK, "%s", fv_errmsg());
	for (int i = 1; i <= 28; i++) {
		char o[64];
		snprintf(o, sizeof o, "+x%d='${x%d}${x%d}'", i, i - 1, i - 1);
		cr_assert_eq(fv_config_override(cfg, o), FV_OK, "%s: %s", o, fv_errmsg());
	}
	clock_t t0 = clock();
	EXPECT_ERROR(fv_config_resolve(cfg), FV_ERR_CONFIG,
	             "x22: interpolation makes the configuration's text grow beyond 16 MiB");
	cr_assert_lt((double)(clock() - t0) / CLOCKS_PER_SEC, 5.0);
	fv_config_free(cfg);
	/* whole-value copies of a long string count too */
	char text[2048] = "s0: abcdefghijklmnopqrstuvwxyz0123456789\n";
	for (int i = 1; i <= 20; i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof text - len, "s%d: ${s%d}${s%d}\n", i, i - 1, i - 1);
	}
	for (int i = 0; i < 20; i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof text - len, "c%d: ${s19}\n", i);
	}
	EXPECT_ERROR(resolve_text(text), FV_ERR_CONFIG, "text grow beyond");
	/* ordinary configurations stay far below the budget */
	cr_assert_eq(resolve_text("a: x\nb: ${a}${a}\nc: ['${b}', '${b}_${a}']\n"), FV_OK, "%s", fv_errmsg());
}

/* Relative interpolation to the list (or map) holding the value: refused at
** once, in strict resolution and in the lenient one of composition, instead
** of each item resolving all of its siblings again. */
Test(config, self_reference_in_list_items_is_bounded)
{
	const char *items = "l:\n- x${.}\n- x${.}\n- x${.}\n- x${.}\n- x${.}\n"
	                    "- x${.}\n- x${.}\n- x${.}\n- x${.}\n- x${.}\n";
	clock_t t0 = clock();
	EXPECT_ERROR(resolve_text(items), FV_ERR_CONFIG, "t.yaml:2:3: l.0: interpolation '${.}' "
	             "refers to the list that holds this value");
	EXPECT_ERROR(resolve_text("l: [a, '${.}']\n"), FV_ERR_CONFIG, "refers to the list");
	EXPECT_ERROR(resolve_text("m: {a: {b: '${..}'}}\n"), FV_ERR_CONFIG, "refers to the map");
	EXPECT_ERROR(resolve_text("m: {a: '${oc.select:.}'}\n"), FV_ERR_CONFIG, "refers to the map");
	char path[64];
	snprintf(path, sizeof path, "/tmp/fovea_selfref_%ld.yaml", (long)getpid());
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(items, f);
	fclose(f);
	/* composition leaves the values as written, with the reason */
	fv_config *cfg = fv_config_compose(path, NULL, 0, NULL);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	cr_assert_str_eq(fv_node_text(at(cfg, "l[9]")), "x${.}");
	fv_config_free(cfg);
	remove(path);
	cr_assert_lt((double)(clock() - t0) / CLOCKS_PER_SEC, 2.0);
	/* a sibling's key is still fine */
	cr_assert_eq(resolve_text("m: {a: 1, b: '${.a}'}\nl: [1, '${.[0]}']\n"), FV_OK, "%s",
	             fv_errmsg());
}

/* ---- interpolation ------------------------------------------------------------------------------ */

Test(config, interpolation_keeps_types_and_follows_chains)
{
	fv_config *cfg = load_file(DATA("interp.yaml"));
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	/* whole-value interpolation keeps the type */
	cr_assert_eq(int_at(cfg, "model.seed"), 7);
	cr_assert(!fv_node_quoted(at(cfg, "model.seed")));
	cr_assert_float_eq(double_at(cfg, "model.lr"), 1e-3, 1e-18);
	cr_assert_float_eq(double_at(cfg, "optimizer.lr"), 1e-3, 1e-18, "chained");
	const fv_config_node *cl = at(cfg, "model.copy_layers");
	cr_assert_eq(fv_node_kind(cl), FV_NODE_SEQ);
	cr_assert_eq(fv_node_size(cl), 2);
	cr_assert_neq(cl, at(cfg, "model.layers"));
	cr_assert_eq(int_at(cfg, "model.first"), 16);
	cr_assert_eq(int_at(cfg, "model.bracket"), 32);
	cr_assert_eq(int_at(cfg, "model.sibling"), 7, "${.seed} is model.seed");
	cr_assert_str_eq(text_at(cfg, "model.parent"), "run", "${..name} is the top-level name");
	/* embedded interpolation is text, printed as Python's str() would */
	cr_assert_str_eq(text_at(cfg, "paths.cache"), "/data/cache");
	cr_assert(fv_node_quoted(at(cfg, "paths.cache")));
	cr_assert_str_eq(text_at(cfg, "paths.deep"), "/data/cache/deeper");
	cr_assert_str_eq(text_at(cfg, "optimizer.tag"), "lr_0.001_seed_7_True_None");
	/* a whole map, its inner interpolations resolved */
	const fv_config_node *wm = at(cfg, "whole_map");
	cr_assert_eq(fv_node_kind(wm), FV_NODE_MAP);
	cr_assert_eq(fv_node_size(wm), 3);
	cr_assert_str_eq(text_at(cfg, "whole_map.deep"), "/data/cache/deeper");
	cr_assert_str_eq(fv_node_keypath(at(cfg, "whole_map.cache")), "whole_map.cache");
	cr_assert_str_eq(text_at(cfg, "escaped"), "${not.an.interp}");
	cr_assert_str_eq(text_at(cfg, "nested_key"), "/data");
	/* the interpolating value keeps its own location */
	cr_assert_eq(fv_node_line(at(cfg, "model.seed")), 11);
	check_round_trip(cfg);
	fv_config_free(cfg);
}

Test(config, python_str_of_numbers_in_strings)
{
	fv_config *cfg = load("a: 1e-5\nb: 1.0\nc: 0x10\nd: 1e16\ne: 123.25\nf: -0.0\ng: no\nh: 100.\n"
	                      "s: ${a}|${b}|${c}|${d}|${e}|${f}|${g}|${h}\n");
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(text_at(cfg, "s"), "1e-05|1.0|16|1e+16|123.25|-0.0|False|100.0");
	fv_config_free(cfg);
}

Test(config, interpolation_errors)
{
	EXPECT_ERROR(resolve_text("paths:\n  cache_dir: x\na: ${paths.cachedir}\n"), FV_ERR_CONFIG,
	             "t.yaml:3:1: a: interpolation '${paths.cachedir}' refers to a missing key",
	             "did you mean 'paths.cache_dir'?");
	EXPECT_ERROR(resolve_text("a: ${zzz}\n"), FV_ERR_CONFIG, "t.yaml:1:1: a:", "'<root>' has no key 'zzz'");
	fv_config *cfg = load_file(DATA("cycle.yaml"));
	EXPECT_ERROR(fv_config_resolve(cfg), FV_ERR_CONFIG, "cycle.yaml:1:1: a: interpolation cycle: "
	             "a -> b -> c.x -> a");
	fv_config_free(cfg);
	EXPECT_ERROR(resolve_text("a: ${a}\n"), FV_ERR_CONFIG, "interpolation cycle: a -> a");
	EXPECT_ERROR(resolve_text("a: \?\?\?\nb: x_${a}\n"), FV_ERR_CONFIG,
	             "t.yaml:1:1: a: missing mandatory value (\?\?\?), needed by b at t.yaml:2:1");
	EXPECT_ERROR(resolve_text("a: ${foo:bar}\n"), FV_ERR_CONFIG, "t.yaml:1:1: a: unknown resolver 'foo'");
	EXPECT_ERROR(resolve_text("a: ${b\nb: 1\n"), FV_ERR_CONFIG, "t.yaml:1:1: a: unterminated interpolation");
	EXPECT_ERROR(resolve_text("m: {x: 1}\na: id_${m}\n"), FV_ERR_CONFIG,
	             "t.yaml:2:1: a: cannot put the map 'm' inside a string");
	EXPECT_ERROR(resolve_text("a: ${...x}\n"), FV_ERR_CONFIG, "goes above the top level");
	EXPECT_ERROR(resolve_text("a: [1]\nb: ${a.3}\n"), FV_ERR_CONFIG, "t.yaml:2:1: b:",
	             "the list 'a' has no item '3'");
	EXPECT_ERROR(resolve_text("a: 1\nb: ${a.x}\n"), FV_ERR_CONFIG, "'a' is not a map or a list");
	EXPECT_ERROR(resolve_text("a: ${}\n"), FV_ERR_CONFIG, "empty interpolation");
	EXPECT_ERROR(resolve_text("a: ${len:1,2}\n"), FV_ERR_CONFIG, "${len:...} takes one argument, got 2");
	EXPECT_ERROR(fv_config_resolve(NULL), FV_ERR_ARG, "NULL");
}

Test(config, mandatory_values)
{
	fv_config *cfg = load_file(DATA("missing.yaml"));
	EXPECT_ERROR(fv_config_resolve(cfg), FV_ERR_CONFIG,
	             "missing.yaml:2:3: model.in_shape: missing mandatory value (\?\?\?)");
	/* filled in by an override, it resolves */
	cr_assert_eq(fv_config_override(cfg, "model.in_shape=[2, 50, 18, 16]"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_node_size(at(cfg, "model.in_shape")), 4);
	fv_config_free(cfg);
}

Test(config, environment_variables_and_resolvers)
{
	setenv("FOVEA_TEST_HOME", "/home/tester", 1);
	unsetenv("FOVEA_TEST_UNSET_VAR");
	fv_config *cfg = load_file(DATA("env.yaml"));
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(text_at(cfg, "home"), "/home/tester");
	cr_assert(fv_node_quoted(at(cfg, "home")), "environment values are strings");
	cr_assert_str_eq(text_at(cfg, "with_default"), "fallback");
	cr_assert_str_eq(text_at(cfg, "default_interp"), "exp");
	cr_assert(fv_node_is_null(at(cfg, "default_null")));
	cr_assert_str_eq(text_at(cfg, "default_url"), "sqlite:///exp/x.db");
	cr_assert_eq(int_at(cfg, "n_layers"), 3);
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	cr_assert_eq(int_at(cfg, "stamp"), tm.tm_year + 1900);
	cr_assert_str_eq(text_at(cfg, "selected"), "dflt");
	cr_assert_eq(fv_node_kind(at(cfg, "decoded")), FV_NODE_SEQ);
	cr_assert_eq(int_at(cfg, "decoded.1"), 2);
	fv_error_at(at(cfg, "decoded.1"), FV_ERR_CONFIG, "x");
	cr_assert(strstr(fv_errmsg(), "env.yaml:11:1: x") != NULL,
	          "a decoded value is placed at its interpolation: %s", fv_errmsg());
	fv_config_free(cfg);
	EXPECT_ERROR(resolve_text("a: 1\nb: ${oc.decode:'[1, {'}\n"), FV_ERR_CONFIG,
	             "t.yaml:2:1: b: ${oc.decode:...}: the decoded text:2:1: YAML syntax error");

	setenv("FOVEA_TEST_UNSET_VAR", "set now", 1);
	cfg = load("a: ${oc.env:FOVEA_TEST_UNSET_VAR,fallback}\n");
	cr_assert_eq(fv_config_resolve(cfg), FV_OK);
	cr_assert_str_eq(text_at(cfg, "a"), "set now");
	fv_config_free(cfg);
	unsetenv("FOVEA_TEST_UNSET_VAR");
	EXPECT_ERROR(resolve_text("x: 1\npath: ${oc.env:FOVEA_TEST_UNSET_VAR}/data\n"), FV_ERR_CONFIG,
	             "t.yaml:2:1: path: environment variable 'FOVEA_TEST_UNSET_VAR' is not set",
	             "${oc.env:FOVEA_TEST_UNSET_VAR,default}");
}

Test(config, hydra_resolver_reads_the_run_dir)
{
	fv_config *cfg = load("hydra:\n  run:\n    dir: runs/${name}\nname: x\nout: ${hydra:runtime.output_dir}\n");
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(text_at(cfg, "out"), "runs/x");
	fv_config_free(cfg);
	/* without hydra.run.dir, Hydra's default: outputs/DATE/TIME */
	cfg = load("out: ${hydra:runtime.output_dir}\n");
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	const char *out = text_at(cfg, "out");
	cr_assert(strncmp(out, "outputs/", 8) == 0 && strlen(out) == strlen("outputs/2024-01-01/12-00-00"),
	          "%s", out);
	fv_config_free(cfg);
	EXPECT_ERROR(resolve_text("out: ${hydra:job.name}\n"), FV_ERR_CONFIG,
	             "t.yaml:1:1: out: ${hydra:job.name}: fovea has no Hydra runtime",
	             "'hydra.job.name' is none of them");
}

/* ---- overrides ------------------------------------------------------------------------------------- */

static fv_config *override_base(void)
{
	return load("seed: 42\nname: retina\nlr: 0.1\nmodel:\n  hidden_channels: [16, 32]\n  core:\n"
	            "    gamma: 0.5\n    kernel: 3\n");
}

Test(config, overrides_set_values_of_every_shape)
{
	fv_config *cfg = override_base();
	cr_assert_eq(fv_config_override(cfg, "model.core.gamma=0.25"), FV_OK, "%s", fv_errmsg());
	cr_assert_float_eq(double_at(cfg, "model.core.gamma"), 0.25, 0);
	cr_assert_eq(fv_config_override(cfg, "seed=[1,2]"), FV_OK);
	cr_assert_eq(fv_node_size(at(cfg, "seed")), 2);
	cr_assert_eq(fv_config_override(cfg, "name={a: 1}"), FV_OK);
	cr_assert_eq(int_at(cfg, "name.a"), 1);
	cr_assert_eq(fv_config_override(cfg, "lr=null"), FV_OK);
	cr_assert(fv_node_is_null(at(cfg, "lr")));
	cr_assert_eq(fv_config_override(cfg, "lr='007'"), FV_OK);
	cr_assert(fv_node_quoted(at(cfg, "lr")));
	cr_assert_str_eq(text_at(cfg, "lr"), "007");
	cr_assert_eq(fv_config_override(cfg, "lr="), FV_OK);
	cr_assert_str_eq(text_at(cfg, "lr"), "", "key= is the empty string");
	cr_assert_eq(fv_config_override(cfg, "lr=  some text  "), FV_OK);
	cr_assert_str_eq(text_at(cfg, "lr"), "some text");
	cr_assert_eq(fv_config_override(cfg, "model.hidden_channels.0=8"), FV_OK);
	cr_assert_eq(fv_config_override(cfg, "model.hidden_channels[1]=9"), FV_OK);
	cr_assert_eq(int_at(cfg, "model.hidden_channels.0"), 8);
	cr_assert_eq(int_at(cfg, "model.hidden_channels.1"), 9);
	/* a map merges into a map, as Hydra does */
	cr_assert_eq(fv_config_override(cfg, "model.core={gamma: 1, extra: 2}"), FV_OK);
	cr_assert_eq(int_at(cfg, "model.core.gamma"), 1);
	cr_assert_eq(int_at(cfg, "model.core.extra"), 2);
	cr_assert_eq(int_at(cfg, "model.core.kernel"), 3);
	/* values keep their origin for later messages */
	cr_assert_eq(fv_config_override(cfg, "model.core.kernel=abc"), FV_OK);
	int64_t v;
	EXPECT_ERROR(fv_node_to_int(at(cfg, "model.core.kernel"), &v), FV_ERR_CONFIG,
	             "override 'model.core.kernel=abc': model.core.kernel: expected an integer, got 'abc'");
	/* an interpolation given on the command line resolves */
	cr_assert_eq(fv_config_override(cfg, "model.core.gamma=${model.core.extra}"), FV_OK);
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "model.core.gamma"), 2);
	fv_config_free(cfg);
}

Test(config, overrides_add_force_and_delete)
{
	fv_config *cfg = override_base();
	cr_assert_eq(fv_config_override(cfg, "+model.new.deep=5"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "model.new.deep"), 5);
	cr_assert_eq(fv_config_override(cfg, "++seed=6"), FV_OK);
	cr_assert_eq(int_at(cfg, "seed"), 6);
	cr_assert_eq(fv_config_override(cfg, "++brand.new=1"), FV_OK);
	cr_assert_eq(int_at(cfg, "brand.new"), 1);
	cr_assert_eq(fv_config_override(cfg, "+model.hidden_channels.2=48"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "model.hidden_channels.2"), 48);
	cr_assert_eq(fv_config_override(cfg, "~model.hidden_channels.0"), FV_OK);
	cr_assert_eq(fv_node_size(at(cfg, "model.hidden_channels")), 2);
	cr_assert_eq(int_at(cfg, "model.hidden_channels.0"), 32);
	cr_assert_eq(fv_config_override(cfg, "~model.core"), FV_OK);
	cr_assert_null(fv_node_path(fv_config_root(cfg), "model.core"));
	cr_assert_eq(fv_config_override(cfg, "~seed=6"), FV_OK);
	cr_assert_null(fv_node_get(fv_config_root(cfg), "seed"));
	fv_config_free(cfg);
}

Test(config, adding_an_existing_key_is_accepted_with_a_note, .init = cr_redirect_stderr)
{
	fv_config *cfg = override_base();
	cr_assert_eq(fv_config_override(cfg, "+seed=5"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "seed"), 5);
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	char buf[512] = {0};
	size_t got = fread(buf, 1, sizeof buf - 1, f);
	buf[got] = '\0';
	cr_assert(strstr(buf, "override '+seed=5': 'seed' already exists") != NULL, "stderr: %s", buf);
	cr_assert(strstr(buf, "'++seed=5'") != NULL, "stderr: %s", buf);
	fv_config_free(cfg);
}

Test(config, override_errors)
{
	fv_config *cfg = override_base();
	EXPECT_ERROR(fv_config_override(cfg, "model.core.gama=1"), FV_ERR_CONFIG,
	             "override 'model.core.gama=1': the key 'model.core.gama' does not exist",
	             "did you mean 'model.core.gamma'?", "use '+model.core.gama=1'");
	EXPECT_ERROR(fv_config_override(cfg, "modle.core.gamma=1"), FV_ERR_CONFIG,
	             "the key 'modle' does not exist", "did you mean 'model'?");
	EXPECT_ERROR(fv_config_override(cfg, "~nope"), FV_ERR_CONFIG,
	             "override '~nope': cannot delete 'nope', it does not exist");
	EXPECT_ERROR(fv_config_override(cfg, "~seed=41"), FV_ERR_CONFIG,
	             "override '~seed=41': not deleting 'seed': its value is not '41'");
	EXPECT_ERROR(fv_config_override(cfg, "justakey"), FV_ERR_CONFIG,
	             "override 'justakey': expected KEY=VALUE");
	EXPECT_ERROR(fv_config_override(cfg, "=5"), FV_ERR_CONFIG, "override '=5': no key before '='");
	EXPECT_ERROR(fv_config_override(cfg, "a..b=1"), FV_ERR_CONFIG, "empty part in the key 'a..b'");
	EXPECT_ERROR(fv_config_override(cfg, "name.x=1"), FV_ERR_CONFIG,
	             "'name' is not a map or a list, so it has no key 'x'");
	EXPECT_ERROR(fv_config_override(cfg, "+model.hidden_channels.5=1"), FV_ERR_CONFIG,
	             "the list 'model.hidden_channels' has 2 items");
	EXPECT_ERROR(fv_config_override(cfg, "model.hidden_channels.5=1"), FV_ERR_CONFIG,
	             "the key 'model.hidden_channels.5' does not exist");
	EXPECT_ERROR(fv_config_override(cfg, "seed=[1,"), FV_ERR_CONFIG, "override 'seed=[1,':",
	             "YAML syntax error");
	EXPECT_ERROR(fv_config_override(cfg, "+new.map=[1,"), FV_ERR_CONFIG, "YAML syntax error");
	cr_assert_null(fv_node_get(fv_config_root(cfg), "new"), "a bad value adds nothing");
	EXPECT_ERROR(fv_config_override(cfg, "db@backup=x"), FV_ERR_CONFIG, "KEY@PACKAGE");
	EXPECT_ERROR(fv_config_override(NULL, "a=1"), FV_ERR_ARG, "NULL");
	EXPECT_ERROR(fv_config_override(cfg, NULL), FV_ERR_ARG, "NULL");
	/* nothing was changed by the failed overrides */
	cr_assert_eq(int_at(cfg, "seed"), 42);
	cr_assert_eq(fv_node_size(at(cfg, "model.hidden_channels")), 2);
	fv_config_free(cfg);
}

/* ---- writing ------------------------------------------------------------------------------------ */

Test(config, to_yaml_round_trips)
{
	fv_config *cfg = load_file(DATA("basic.yaml"));
	check_round_trip(cfg);
	fv_config_free(cfg);
	/* strings that look like other things stay strings */
	cfg = load("a: '3'\nb: 'true'\nc: 'null'\nd: ''\ne: 'a: b'\nf: '#x'\ng: '- x'\nh: ' lead'\n"
	           "i: \"tab\\there\"\nj: \"line\\nbreak\"\nk: '\?\?\?'\n'<<': 1\nl: [a, 'b,c', null, '']\n"
	           "m: {}\nn: []\no: 'ünï'\n\"quoted key\": 1\n'123': x\n");
	check_round_trip(cfg);
	char *y = fv_config_to_yaml(cfg);
	cr_assert(strstr(y, "a: '3'\n") != NULL, "%s", y);
	cr_assert(strstr(y, "b: 'true'\n") != NULL, "%s", y);
	cr_assert(strstr(y, "m: {}\n") != NULL, "%s", y);
	cr_assert(strstr(y, "ünï") != NULL, "UTF-8 is kept as is: %s", y);
	free(y);
	fv_config_free(cfg);
	/* plain values and short lists stay plain */
	cfg = load("a: 3\nb: [16, 32]\nc:\n  d: x\n");
	y = fv_config_to_yaml(cfg);
	cr_assert_str_eq(y, "a: 3\nb: [16, 32]\nc:\n  d: x\n");
	free(y);
	fv_config_free(cfg);
	cr_assert_null(fv_config_to_yaml(NULL));
}

/* A subtree written alone reads back as the same tree. */
static void check_node_round_trip(const fv_config_node *n)
{
	char *yaml = fv_node_to_yaml(n);
	cr_assert_not_null(yaml, "%s", fv_errmsg());
	fv_config *back = fv_config_load_string(yaml, strlen(yaml), "node.yaml");
	cr_assert_not_null(back, "the written YAML does not load (%s):\n%s", fv_errmsg(), yaml);
	cr_assert(same_tree(n, fv_config_root(back)), "round trip differs:\n%s", yaml);
	fv_config_free(back);
	free(yaml);
}

Test(config, node_to_yaml_round_trips_subtrees)
{
	fv_config *cfg = load("model:\n  core: {channels: [2, 8], 'k': '3', pad: null}\n"
	                      "  readout:\n    - {a: 1}\n    - [x, 'y z', '']\n"
	                      "  name: 'a: b'\nseed: 4\n");
	const fv_config_node *root = fv_config_root(cfg);
	check_node_round_trip(root);
	check_node_round_trip(fv_node_path(root, "model"));
	check_node_round_trip(fv_node_path(root, "model.core"));
	check_node_round_trip(fv_node_path(root, "model.readout"));
	check_node_round_trip(fv_node_path(root, "model.readout.1"));
	char *y = fv_node_to_yaml(fv_node_path(root, "model.core"));
	cr_assert_str_eq(y, "channels: [2, 8]\nk: '3'\npad: null\n");
	free(y);
	/* the node's own text, not the whole configuration's */
	y = fv_node_to_yaml(fv_node_path(root, "model.readout"));
	cr_assert(strstr(y, "seed") == NULL && strstr(y, "core") == NULL, "%s", y);
	free(y);
	fv_config_free(cfg);
	cr_assert_null(fv_node_to_yaml(NULL));
	cr_assert(strstr(fv_errmsg(), "fv_node_to_yaml: no node (NULL)") != NULL, "%s", fv_errmsg());
}

Test(config, to_yaml_after_overrides_and_resolution)
{
	fv_config *cfg = load_file(DATA("interp.yaml"));
	cr_assert_eq(fv_config_override(cfg, "++odd=a: b # c"), FV_OK);
	cr_assert_eq(fv_config_override(cfg, "++list=[1, {x: [2, 3]}, null]"), FV_OK);
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	char *y = fv_config_to_yaml(cfg);
	fv_config *back = fv_config_load_string(y, strlen(y), "back.yaml");
	cr_assert_not_null(back, "%s\n%s", fv_errmsg(), y);
	cr_assert_str_eq(fv_node_text(fv_node_path(fv_config_root(back), "odd")), "a: b # c");
	cr_assert_eq(fv_node_size(fv_node_path(fv_config_root(back), "list.1.x")), 2);
	cr_assert_str_eq(fv_node_text(fv_node_path(fv_config_root(back), "optimizer.tag")),
	                 "lr_0.001_seed_7_True_None");
	fv_config_free(back);
	free(y);
	fv_config_free(cfg);
}

/* ---- composition ---------------------------------------------------------------------------------- */

static fv_config *compose(const char *path, int n, const char *const *ov)
{
	fv_config *cfg = fv_config_compose(path, NULL, n, ov);
	cr_assert_not_null(cfg, "composing %s failed: %s", path, fv_errmsg());
	return cfg;
}

Test(config, compose_groups_lists_configs_and_self)
{
	fv_config *cfg = compose(COMPOSE("config.yaml"), 0, NULL);
	const fv_config_node *root = fv_config_root(cfg);
	cr_assert_null(fv_node_get(root, "defaults"), "the defaults list is not part of the result");
	/* in defaults order, then the primary's own new keys */
	const char *keys[] = {"db", "server", "callbacks", "app", "shared"};
	cr_assert_eq(fv_node_size(root), 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(fv_node_key_at(root, i), keys[i]);
	cr_assert_str_eq(text_at(cfg, "db.driver"), "mysql");
	cr_assert_eq(int_at(cfg, "db.port"), 3307, "_self_ last: the primary wins");
	cr_assert_str_eq(text_at(cfg, "db.user"), "root");
	cr_assert_str_eq(text_at(cfg, "server.name"), "apache");
	cr_assert_str_eq(text_at(cfg, "server.logging.format"), "plain", "nested group server/logging");
	cr_assert_eq(int_at(cfg, "callbacks.early_stopping.patience"), 10);
	cr_assert_str_eq(text_at(cfg, "callbacks.lr_monitor.interval"), "epoch");
	cr_assert_str_eq(text_at(cfg, "app"), "demo", "the primary overrides base.yaml");
	cr_assert_eq(int_at(cfg, "shared"), 1);
	cr_assert(strstr(fv_node_file(at(cfg, "db.user")), "db/mysql.yaml") != NULL);
	cr_assert_eq(fv_node_line(at(cfg, "db.user")), 3);
	cr_assert(strstr(fv_node_file(at(cfg, "db.port")), "config.yaml") != NULL);
	check_round_trip(cfg);
	fv_config_free(cfg);
}

/* Composition with command-line choices and values, an interpolation, an
** alias and a derived spec: a job that reaches most allocations of the
** configuration code. */
static fv_status config_job(void)
{
	const char *ov[] = {"db=postgres", "+extra_key=[1, {a: 2}]", "app=${db.driver}_x"};
	fv_config *cfg = fv_config_compose(COMPOSE("config.yaml"), NULL, 3, ov);
	if (cfg == NULL)
		return fv_errcode();
	fv_status st = fv_config_override(cfg, "++anchored={b: 1}");
	if (st == FV_OK)
		st = fv_config_resolve(cfg);
	char *yaml = st == FV_OK ? fv_config_to_yaml(cfg) : NULL;
	if (st == FV_OK && yaml == NULL)
		st = fv_errcode();
	fv_config *d = yaml ? fv_config_load_derived(yaml, strlen(yaml), fv_config_root(cfg)) : NULL;
	if (yaml != NULL && d == NULL)
		st = fv_errcode();
	fv_config_free(d);
	free(yaml);
	const char *alias = "a: &x [1, 2]\nb: *x\n";
	fv_config *a = st == FV_OK ? fv_config_load_string(alias, strlen(alias), "a.yaml") : NULL;
	if (st == FV_OK && a == NULL)
		st = fv_errcode();
	fv_config_free(a);
	fv_config_free(cfg);
	return st;
}

/* Each allocation of the job fails in turn (fv_alloc_fail_at): the job
** fails with FV_ERR_NOMEM, never with a code a caller guessed, or copes
** (an allocation only a message needed); the sanitizer build checks that
** nothing leaks on any of these paths. */
Test(config, every_allocation_failure_is_out_of_memory)
{
	fv_alloc_fail_at(0, false);
	cr_assert_eq(config_job(), FV_OK, "%s", fv_errmsg());
	long n = fv_alloc_fail_at(0, false);
	cr_assert_gt(n, 100, "the job allocates");
	long failed = 0;
	for (long i = 1; i <= n; i++) {
		fv_clear_error();
		fv_alloc_fail_at(i, false);
		fv_status st = config_job();
		fv_alloc_fail_at(0, false);
		if (st == FV_OK)
			continue;
		failed++;
		cr_assert_eq(st, FV_ERR_NOMEM, "allocation %ld of %ld: code %d: %s", i, n, st,
		             fv_errmsg());
		cr_assert(strstr(fv_errmsg(), "out of memory") != NULL, "allocation %ld: %s", i,
		          fv_errmsg());
	}
	cr_assert_gt(failed, n / 2, "most allocations are needed: %ld of %ld", failed, n);
}

Test(config, compose_self_position)
{
	fv_config *cfg = compose(COMPOSE("self_first.yaml"), 0, NULL);
	cr_assert_eq(int_at(cfg, "db.port"), 3306, "_self_ first: the group wins");
	fv_config_free(cfg);
	cfg = compose(COMPOSE("no_self.yaml"), 0, NULL);
	cr_assert_eq(int_at(cfg, "db.port"), 1, "no _self_: Hydra 1.1 puts it last");
	fv_config_free(cfg);
}

Test(config, compose_packages_and_headers)
{
	fv_config *cfg = compose(COMPOSE("packages.yaml"), 0, NULL);
	cr_assert_str_eq(text_at(cfg, "backup.driver"), "postgresql");
	cr_assert_str_eq(text_at(cfg, "driver"), "mysql", "@_global_ is the top level");
	cr_assert_eq(int_at(cfg, "port"), 3306);
	cr_assert_eq(int_at(cfg, "from_header"), 1, "# @package _global_ header");
	cr_assert_null(fv_node_get(fv_config_root(cfg), "db"));
	fv_config_free(cfg);
	/* an explicit @pkg beats the file's header */
	cfg = compose(COMPOSE("explicit_pkg.yaml"), 0, NULL);
	cr_assert_eq(int_at(cfg, "backup.from_header"), 1);
	cr_assert_null(fv_node_get(fv_config_root(cfg), "from_header"));
	fv_config_free(cfg);
}

Test(config, compose_override_entries_and_nested_groups)
{
	fv_config *cfg = compose(COMPOSE("override.yaml"), 0, NULL);
	cr_assert_str_eq(text_at(cfg, "db.driver"), "postgresql");
	cr_assert_str_eq(text_at(cfg, "server.logging.format"), "json");
	cr_assert_null(fv_node_path(fv_config_root(cfg), "server.logging.level"));
	fv_config_free(cfg);
}

Test(config, compose_command_line_choices)
{
	const char *ov1[] = {"db=postgres", "server/logging=json", "server.port=8080", "+extras=one", "~callbacks"};
	fv_config *cfg = compose(COMPOSE("config.yaml"), 5, ov1);
	cr_assert_str_eq(text_at(cfg, "db.driver"), "postgresql");
	cr_assert_eq(int_at(cfg, "db.port"), 3307, "the primary still wins over the chosen option");
	cr_assert_null(fv_node_path(fv_config_root(cfg), "db.user"));
	cr_assert_str_eq(text_at(cfg, "server.logging.format"), "json");
	cr_assert_eq(int_at(cfg, "server.port"), 8080);
	cr_assert_eq(int_at(cfg, "extras.value"), 1);
	cr_assert_null(fv_node_get(fv_config_root(cfg), "callbacks"));
	fv_config_free(cfg);
	const char *ov2[] = {"callbacks=[lr_monitor]", "db=null"};
	cfg = compose(COMPOSE("config.yaml"), 2, ov2);
	cr_assert_null(fv_node_path(fv_config_root(cfg), "callbacks.early_stopping"));
	cr_assert_str_eq(text_at(cfg, "callbacks.lr_monitor.interval"), "epoch");
	cr_assert_null(fv_node_path(fv_config_root(cfg), "db.driver"));
	cr_assert_eq(int_at(cfg, "db.port"), 3307);
	fv_config_free(cfg);
	const char *ov3[] = {"db=mysql"};
	cfg = compose(COMPOSE("must_choose.yaml"), 1, ov3);
	cr_assert_str_eq(text_at(cfg, "db.driver"), "mysql");
	fv_config_free(cfg);
}

Test(config, compose_null_group_and_plain_files)
{
	fv_config *cfg = compose(COMPOSE("null_group.yaml"), 0, NULL);
	cr_assert_null(fv_node_get(fv_config_root(cfg), "db"));
	cr_assert_eq(int_at(cfg, "x"), 1);
	fv_config_free(cfg);
	const char *ov[] = {"a=5"};
	cfg = compose(COMPOSE("no_defaults.yaml"), 1, ov);
	cr_assert_eq(int_at(cfg, "b"), 5, "overrides apply before interpolation");
	fv_config_free(cfg);
}

Test(config, compose_experiment_like_openretina)
{
	const char *ov[] = {"model/core=narrow"};
	fv_config *cfg = compose(COMPOSE("experiment.yaml"), 1, ov);
	/* the primary's model.core.width beats the group option */
	cr_assert_eq(int_at(cfg, "model.core.width"), 128);
	cr_assert_str_eq(text_at(cfg, "model.core.tag"), "narrow");
	cr_assert_str_eq(text_at(cfg, "url"), "mysql://root@host/128");
	cr_assert_str_eq(text_at(cfg, "output_dir"), "/tmp/logs/runs/exp");
	cr_assert_str_eq(text_at(cfg, "hydra.run.dir"), "/tmp/logs/runs/exp");
	/* ??? stays for the program to fill in, and what needs it waits */
	cr_assert_str_eq(text_at(cfg, "n_neurons"), "\?\?\?");
	cr_assert_str_eq(text_at(cfg, "needs_n"), "${n_neurons}");
	EXPECT_ERROR(fv_config_resolve(cfg), FV_ERR_CONFIG, "experiment.yaml:14:1: n_neurons: missing "
	             "mandatory value (\?\?\?), needed by needs_n");
	cr_assert_eq(fv_config_override(cfg, "n_neurons=12"), FV_OK);
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "needs_n"), 12);
	fv_config_free(cfg);
	cfg = compose(COMPOSE("experiment.yaml"), 0, NULL);
	cr_assert_str_eq(text_at(cfg, "model.core.tag"), "big_core", "wide.yaml's ${model.name}_core");
	fv_config_free(cfg);
}

Test(config, compose_errors)
{
	cr_assert_null(fv_config_compose(COMPOSE("typo.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "typo.yaml:2:5: defaults: cannot find 'db/mysqll.yaml'",
	             "available options in 'db': header, mysql, postgres", "did you mean 'mysql'?");
	cr_assert_null(fv_config_compose(COMPOSE("must_choose.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "must_choose.yaml:2:5: defaults: you must choose an "
	             "option for 'db', e.g. db=OPTION", "header, mysql, postgres");
	cr_assert_null(fv_config_compose(COMPOSE("twice.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "twice.yaml:2:5: defaults: the group 'db' appears more "
	             "than once in the defaults list (also at ", "twice.yaml:3:5)", "override db: OPTION");
	cr_assert_null(fv_config_compose(COMPOSE("loop.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "loop.yaml:2:5: defaults:", "includes itself");
	const char *ov1[] = {"db=mysqll"};
	cr_assert_null(fv_config_compose(COMPOSE("config.yaml"), NULL, 1, ov1));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "override 'db=mysqll': defaults: cannot find "
	             "'db/mysqll.yaml'", "did you mean 'mysql'?");
	const char *ov2[] = {"db=mysql"};
	cr_assert_null(fv_config_compose(COMPOSE("no_defaults.yaml"), NULL, 1, ov2));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "override 'db=mysql': the group 'db' is not in the "
	             "defaults list; to add it, use +db=OPTION");
	const char *ov3[] = {"~extras"};
	cr_assert_null(fv_config_compose(COMPOSE("config.yaml"), NULL, 1, ov3));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "override '~extras': no such entry in the defaults list");
	const char *ov4[] = {"nokey=1"};
	cr_assert_null(fv_config_compose(COMPOSE("config.yaml"), NULL, 1, ov4));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "override 'nokey=1': the key 'nokey' does not exist",
	             "+nokey=1");
	const char *ov5[] = {"nogroup/x=1"};
	cr_assert_null(fv_config_compose(COMPOSE("config.yaml"), NULL, 1, ov5));
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "override 'nogroup/x=1': there is no config group "
	             "'nogroup/x'");
	const char *ov6[] = {"db={a: 1}"};
	fv_config *cfg = fv_config_compose(COMPOSE("config.yaml"), NULL, 1, ov6);
	cr_assert_not_null(cfg, "a map value is a plain override, even for a group name: %s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "db.a"), 1);
	fv_config_free(cfg);
	cr_assert_null(fv_config_compose(COMPOSE("nope.yaml"), NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_IO, "nope.yaml: cannot open");
	cr_assert_null(fv_config_compose(NULL, NULL, 0, NULL));
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "fv_config_compose");
}

Test(config, compose_defers_broken_values_to_whoever_reads_them)
{
	/* as OmegaConf: a broken interpolation is an error when the value is used */
	unsetenv("FOVEA_TEST_UNSET_VAR");
	fv_config *cfg = fv_config_compose(DATA("cycle.yaml"), NULL, 0, NULL);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	int64_t v;
	EXPECT_ERROR(fv_node_to_int(at(cfg, "c.x"), &v), FV_ERR_CONFIG, "interpolation cycle");
	cr_assert_str_eq(text_at(cfg, "a"), "${b}", "left as written");
	EXPECT_ERROR(fv_config_resolve(cfg), FV_ERR_CONFIG, "cycle.yaml:1:1: a: interpolation cycle");
	fv_config_free(cfg);
	cfg = fv_config_compose(DATA("env_missing.yaml"), NULL, 0, NULL);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	cr_assert_eq(int_at(cfg, "fine"), 3);
	cr_assert_str_eq(text_at(cfg, "also_fine"), "3/x");
	EXPECT_ERROR(fv_node_to_int(at(cfg, "cache"), &v), FV_ERR_CONFIG,
	             "env_missing.yaml:1:1: cache: environment variable 'FOVEA_TEST_UNSET_VAR' is not set");
	/* what depends on it reports the root cause */
	double d;
	EXPECT_ERROR(fv_node_to_double(at(cfg, "data"), &d), FV_ERR_CONFIG,
	             "env_missing.yaml:1:1: cache: environment variable 'FOVEA_TEST_UNSET_VAR' is not set");
	bool b;
	EXPECT_ERROR(fv_node_to_bool(at(cfg, "data"), &b), FV_ERR_CONFIG, "is not set");
	setenv("FOVEA_TEST_UNSET_VAR", "/cache", 1);
	cr_assert_eq(fv_config_resolve(cfg), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(text_at(cfg, "data"), "/cache/data");
	unsetenv("FOVEA_TEST_UNSET_VAR");
	fv_config_free(cfg);
}

Test(config, compose_malformed_defaults_lists)
{
	static const struct {
		const char *file, *message;
	} cases[] = {
		{"bad_entry.yaml", "bad_entry.yaml:3:5: defaults: an entry is either a name or a map with one key"},
		{"bad_delete.yaml", "bad_delete.yaml:2:5: defaults: expected a config name, 'GROUP: OPTION' or _self_"},
		{"bad_value.yaml", "bad_value.yaml:2:5: defaults: the option of a group is a name, a list of names "
		                   "or null, not a map"},
		{"bad_interp.yaml", "bad_interp.yaml:2:5: defaults: interpolation in a defaults list is not supported"},
		{"bad_list.yaml", "bad_list.yaml:1:1: defaults: expected a list"},
		{"bad_self.yaml", "bad_self.yaml:4:5: defaults: _self_ appears twice"},
		{"only_override.yaml", "only_override.yaml:2:5: defaults: 'override db' matches no earlier entry"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", COMPOSE_DIR, cases[i].file);
		cr_assert_null(fv_config_compose(path, NULL, 0, NULL), "%s composed", cases[i].file);
		EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, cases[i].message);
	}
	/* optional: a missing option is no error, and an override may choose a real one */
	fv_config *cfg = compose(COMPOSE("optional_then_override.yaml"), 0, NULL);
	cr_assert_str_eq(text_at(cfg, "db.driver"), "mysql");
	fv_config_free(cfg);
	const char *ov[] = {"db=nothere"};
	cfg = compose(COMPOSE("optional_then_override.yaml"), 1, ov);
	cr_assert_null(fv_node_get(fv_config_root(cfg), "db"));
	fv_config_free(cfg);
}

Test(config, compose_with_explicit_config_dir)
{
	/* the primary may live outside the config directory */
	fv_config *cfg = fv_config_compose(DATA("missing.yaml"), COMPOSE_DIR, 0, NULL);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	cr_assert_str_eq(text_at(cfg, "model.in_shape"), "\?\?\?");
	fv_config_free(cfg);
}

/* ---- keys nothing read (fv_config_unused) ---------------------------------------------- */

static void collect_keypath(void *ud, const fv_config_node *n)
{
	char *list = ud;
	strcat(list, fv_node_keypath(n));
	strcat(list, ";");
}

Test(config, unused_keys_are_those_nothing_read)
{
	const char *text = "a: 1\n"
	                   "b:\n  c: 2\n  d: null\n  e: ???\n  f: x\n"
	                   "l: [1, 2]\n"
	                   "_target_: t\n"
	                   "hydra: {run: {dir: y}}\n"
	                   "s: '${a}'\n"
	                   "opts: {used: 3, compat: 4}\n";
	char path[64];
	snprintf(path, sizeof path, "/tmp/fovea_unused_%ld.yaml", (long)getpid());
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	fv_config *cfg = fv_config_compose(path, NULL, 1, (const char *[]){"b.f=z"});
	remove(path);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(cfg);
	char list[512] = "";
	/* composing and the override read nothing yet; a (copied by ${a}),
	** nulls, ???, _keys and the skipped hydra are never listed */
	const char *skip[] = {"hydra", NULL};
	cr_assert_eq(fv_config_unused(cfg, skip, collect_keypath, list), 7, "%s", list);
	cr_assert_str_eq(list, "b.c;b.f;l.0;l.1;s;opts.used;opts.compat;");
	/* a lookup, a value read, an option parsed; an option without effect stays */
	cr_assert_not_null(fv_node_path(root, "b.c"));
	int64_t v;
	cr_assert_eq(fv_node_to_int(fv_node_at(fv_node_get(root, "l"), 1), &v), FV_OK);
	struct { int64_t used; const fv_config_node *compat; } o;
	const fv_option table[] = {
		{"used", FV_OPT_INT, offsetof(__typeof__(o), used), "0", 0, 0, 0, NULL, "read"},
		{"compat", FV_OPT_NODE, offsetof(__typeof__(o), compat), "null", 0, 0,
		 FV_OPT_NULLABLE | FV_OPT_NO_EFFECT, NULL, "accepted, no effect"},
		{0},
	};
	cr_assert_eq(fv_options_parse(table, fv_node_get(root, "opts"), &o, "opts", NULL), FV_OK, "%s",
	             fv_errmsg());
	list[0] = '\0';
	cr_assert_eq(fv_config_unused(cfg, skip, collect_keypath, list), 4, "%s", list);
	cr_assert_str_eq(list, "b.f;l.0;s;opts.compat;");
	/* without the skip list, hydra's key is one more */
	cr_assert_eq(fv_config_unused(cfg, NULL, NULL, NULL), 5);
	fv_config_free(cfg);
}
