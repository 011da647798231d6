/*
** test_options.c: option tables (AVOption style): parsing a component's YAML
** map into a plugin's options struct, defaults, flags, ranges, choices,
** every error message, freeing, and the printed documentation.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect_error.h"
#include "fovea/config.h"
#include "fovea/plugin.h"
#include "plugin/plugin_internal.h"

typedef struct sample_opts {
	bool flag;
	int64_t count;
	double rate;
	const char *name;
	const char *mode;
	fv_int_list kernel;
	fv_float_list weights;
	const fv_config_node *extra;
	int64_t maybe_i;
	double maybe_f;
	const char *maybe_s;
	fv_int_list maybe_l;
	int64_t required;
	const fv_config_node *shape;
	const char *no_default;
} sample_opts;

#define OFF(f) offsetof(sample_opts, f)
static const fv_option sample_table[] = {
	{"flag", FV_OPT_BOOL, OFF(flag), "true", 0, 0, 0, NULL, "a switch"},
	{"count", FV_OPT_INT, OFF(count), "3", 1, 10, 0, NULL, "how many"},
	{"rate", FV_OPT_FLOAT, OFF(rate), "1e-2", 0, 1, 0, NULL, "a fraction"},
	{"name", FV_OPT_STRING, OFF(name), "'default name'", 0, 0, 0, NULL, "a label"},
	{"mode", FV_OPT_ENUM, OFF(mode), "custom_separable", 0, 0, 0, "custom_separable|separable|full",
	 "convolution type"},
	{"kernel", FV_OPT_INT_LIST, OFF(kernel), "[3, 5]", 1, 31, 0, NULL, "kernel sizes"},
	{"weights", FV_OPT_FLOAT_LIST, OFF(weights), "0.5", 0, 0, FV_OPT_SCALAR_AS_LIST, NULL, "weights"},
	{"extra", FV_OPT_NODE, OFF(extra), "null", 0, 0, FV_OPT_NULLABLE, NULL, "anything"},
	{"maybe_i", FV_OPT_INT, OFF(maybe_i), "null", 0, 0, FV_OPT_NULLABLE, NULL, "optional int"},
	{"maybe_f", FV_OPT_FLOAT, OFF(maybe_f), "~", 0, 0, FV_OPT_NULLABLE, NULL, "optional float"},
	{"maybe_s", FV_OPT_STRING, OFF(maybe_s), "null", 0, 0, FV_OPT_NULLABLE, NULL, "optional string"},
	{"maybe_l", FV_OPT_INT_LIST, OFF(maybe_l), "null", 0, 0, FV_OPT_NULLABLE | FV_OPT_SCALAR_AS_LIST,
	 NULL, "optional list"},
	{"required", FV_OPT_INT, OFF(required), NULL, 0, 0, FV_OPT_REQUIRED, NULL, "must be given"},
	{"shape", FV_OPT_NODE, OFF(shape), "[1, {a: 2}]", 0, 0, 0, NULL, "a structured default"},
	{"no_default", FV_OPT_STRING, OFF(no_default), NULL, 0, 0, 0, NULL, "no default at all"},
	{0},
};

static fv_config *cfg;

static const fv_config_node *spec(const char *yaml)
{
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "t.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *m = fv_node_get(fv_config_root(cfg), "comp");
	return m ? m : fv_config_root(cfg);
}

static void teardown(void)
{
	fv_config_free(cfg);
	cfg = NULL;
}

static fv_status parse(const char *yaml, sample_opts *o)
{
	memset(o, 0x5a, sizeof *o); /* the parser must not rely on zeroed memory */
	return fv_options_parse(sample_table, spec(yaml), o, "sample", NULL);
}

/* A spec with the one required option, followed by more keys. */
#define REQUIRED "comp:\n  required: 1\n"

/* Specs the sample table refuses with FV_ERR_CONFIG, and what the message
** must contain. */
typedef struct bad_spec {
	const char *yaml, *fragment;
} bad_spec;

static void expect_parse_errors(const bad_spec *bad, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sample_opts o;
		EXPECT_ERROR(parse(bad[i].yaml, &o), FV_ERR_CONFIG, bad[i].fragment);
	}
}

TestSuite(options, .fini = teardown);

Test(options, defaults_fill_everything_not_given)
{
	sample_opts o;
	cr_assert_eq(parse("comp:\n  _target_: sample\n  _convert_: object\n  required: 7\n", &o), FV_OK,
	             "%s", fv_errmsg());
	cr_assert(o.flag);
	cr_assert_eq(o.count, 3);
	cr_assert_float_eq(o.rate, 0.01, 1e-15);
	cr_assert_str_eq(o.name, "default name");
	cr_assert_str_eq(o.mode, "custom_separable");
	cr_assert(o.kernel.is_set);
	cr_assert_eq(o.kernel.n, 2);
	cr_assert_eq(o.kernel.v[0], 3);
	cr_assert_eq(o.kernel.v[1], 5);
	cr_assert(o.weights.is_set);
	cr_assert_eq(o.weights.n, 1, "a scalar default of a SCALAR_AS_LIST list");
	cr_assert_float_eq(o.weights.v[0], 0.5, 0);
	cr_assert_null(o.extra);
	cr_assert_eq(o.maybe_i, FV_NONE_INT);
	cr_assert(isnan(o.maybe_f));
	cr_assert_null(o.maybe_s);
	cr_assert(!o.maybe_l.is_set);
	cr_assert_eq(o.maybe_l.n, 0);
	cr_assert_null(o.maybe_l.v);
	cr_assert_eq(o.required, 7);
	cr_assert_eq(fv_node_kind(o.shape), FV_NODE_SEQ);
	cr_assert_eq(fv_node_size(o.shape), 2);
	cr_assert_str_eq(fv_node_text(fv_node_path(o.shape, "1.a")), "2");
	cr_assert_null(o.no_default);
	fv_options_free(sample_table, &o);
	cr_assert_null(o.kernel.v);
	cr_assert_eq(o.kernel.n, 0);
	fv_options_free(sample_table, &o); /* twice is harmless */
}

Test(options, given_values_of_every_type)
{
	sample_opts o;
	const char *yaml = "comp:\n"
	                   "  flag: no\n"
	                   "  count: '10'\n"
	                   "  rate: 1\n"
	                   "  name: 3\n"
	                   "  mode: full\n"
	                   "  kernel: [1, 31, 0x10]\n"
	                   "  weights: [0.25, 2, -1e3]\n"
	                   "  extra: {anything: [goes]}\n"
	                   "  maybe_i: -4\n"
	                   "  maybe_f: .inf\n"
	                   "  maybe_s: text\n"
	                   "  maybe_l: 9\n"
	                   "  required: 0\n"
	                   "  shape: null\n"
	                   "  no_default: here\n";
	cr_assert_eq(parse(yaml, &o), FV_OK, "%s", fv_errmsg());
	cr_assert(!o.flag);
	cr_assert_eq(o.count, 10, "a quoted number converts, as OmegaConf's typed nodes do");
	cr_assert_float_eq(o.rate, 1.0, 0, "ints are accepted as floats");
	cr_assert_str_eq(o.name, "3");
	cr_assert_str_eq(o.mode, "full");
	cr_assert_eq(o.kernel.n, 3);
	cr_assert_eq(o.kernel.v[2], 16);
	cr_assert_eq(o.weights.n, 3);
	cr_assert_float_eq(o.weights.v[2], -1000.0, 0);
	cr_assert_eq(o.extra, fv_node_path(fv_config_root(cfg), "comp.extra"), "NODE points into the tree");
	cr_assert_eq(o.maybe_i, -4);
	cr_assert(isinf(o.maybe_f));
	cr_assert_str_eq(o.maybe_s, "text");
	cr_assert(o.maybe_l.is_set);
	cr_assert_eq(o.maybe_l.n, 1);
	cr_assert_eq(o.maybe_l.v[0], 9);
	cr_assert_eq(o.required, 0);
	cr_assert_not_null(o.shape, "null is a value for a non-nullable NODE");
	cr_assert_eq(fv_node_kind(o.shape), FV_NODE_NULL);
	cr_assert_str_eq(o.no_default, "here");
	fv_options_free(sample_table, &o);
}

Test(options, nullable_options_accept_null)
{
	sample_opts o;
	cr_assert_eq(parse(REQUIRED "  extra: null\n  maybe_i: ~\n  maybe_f: null\n"
	                   "  maybe_s: null\n  maybe_l: null\n", &o), FV_OK, "%s", fv_errmsg());
	cr_assert_null(o.extra);
	cr_assert_eq(o.maybe_i, FV_NONE_INT);
	cr_assert(isnan(o.maybe_f));
	cr_assert_null(o.maybe_s);
	cr_assert(!o.maybe_l.is_set);
	fv_options_free(sample_table, &o);
	cr_assert_eq(parse(REQUIRED "  maybe_l: []\n", &o), FV_OK);
	cr_assert(o.maybe_l.is_set, "an empty list is set");
	cr_assert_eq(o.maybe_l.n, 0);
	fv_options_free(sample_table, &o);
}

Test(options, a_null_map_means_all_defaults)
{
	static const fv_option small[] = {
		{"k", FV_OPT_INT, 0, "4", 0, 0, 0, NULL, "k"},
		{0},
	};
	int64_t k = -1;
	cr_assert_eq(fv_options_parse(small, NULL, &k, "small", NULL), FV_OK);
	cr_assert_eq(k, 4);
	const fv_config_node *n = spec("comp: null\n");
	k = -1;
	cr_assert_eq(fv_options_parse(small, n, &k, "small", NULL), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(k, 4);
	cr_assert_eq(fv_options_parse(NULL, NULL, NULL, "none", NULL), FV_OK, "no table, no options");
	EXPECT_ERROR(fv_options_parse(NULL, spec("comp:\n  a: 1\n"), NULL, "bare", NULL), FV_ERR_CONFIG,
	             "t.yaml:2:3: unknown option 'a' for bare; valid options: (none)");
}

Test(options, ignored_keys)
{
	sample_opts o;
	const char *const ignore[] = {"session", NULL};
	memset(&o, 0, sizeof o);
	cr_assert_eq(fv_options_parse(sample_table, spec(REQUIRED "  session: s1\n  _target_: x\n"
	                                                  "  _recursive_: false\n  _partial_: true\n"),
	                              &o, "sample", ignore), FV_OK, "%s", fv_errmsg());
	fv_options_free(sample_table, &o);
	EXPECT_ERROR(fv_options_parse(sample_table, spec(REQUIRED "  session: s1\n"), &o,
	                              "sample", NULL),
	             FV_ERR_CONFIG, "t.yaml:3:3: unknown option 'session' for sample");
}

Test(options, unknown_keys_suggest_the_closest_or_list_all)
{
	sample_opts o;
	EXPECT_ERROR(parse(REQUIRED "  coutn: 3\n", &o), FV_ERR_CONFIG,
	             "t.yaml:3:3: unknown option 'coutn' for sample; did you mean 'count'?");
	EXPECT_ERROR(parse(REQUIRED "  zzzzzzzzzzzz: 3\n", &o), FV_ERR_CONFIG,
	             "t.yaml:3:3: unknown option 'zzzzzzzzzzzz' for sample; valid options: flag, count, rate, "
	             "name, mode, kernel, weights, extra, maybe_i, maybe_f, maybe_s, maybe_l, required, "
	             "shape, no_default");
}

Test(options, wrong_types)
{
	const bad_spec bad[] = {
		{REQUIRED "  count: abc\n",
		 "t.yaml:3:3: comp.count: expected an integer (option 'count' of sample), got 'abc'"},
		{REQUIRED "  count: 2.5\n", "expected an integer (option 'count' of sample), got '2.5'"},
		{REQUIRED "  count: null\n",
		 "t.yaml:3:3: comp.count: expected an integer (option 'count' of sample), got null"},
		{REQUIRED "  flag: 1\n",
		 "t.yaml:3:3: comp.flag: expected a boolean (true/false) (option 'flag' of sample), got '1'"},
		{REQUIRED "  rate: fast\n",
		 "comp.rate: expected a number (option 'rate' of sample), got 'fast'"},
		{REQUIRED "  name: [a]\n",
		 "comp.name: expected a string (option 'name' of sample), got a list"},
		{REQUIRED "  kernel: 3\n",
		 "t.yaml:3:3: comp.kernel: expected a list of integers (option 'kernel' of sample), got '3'"},
		{REQUIRED "  kernel: [1, x]\n",
		 "t.yaml:3:15: comp.kernel.1: expected an integer (option 'kernel' of sample), got 'x'"},
		{REQUIRED "  weights: {a: 1}\n",
		 "comp.weights: expected a list of numbers (option 'weights' of sample), got a map"},
		{REQUIRED "  count: 99999999999999999999\n", "expected an integer that fits in 64 bits"},
		{"comp: [1, 2]\n", "t.yaml:1:1: comp: expected the options of sample as a map, got a list"},
	};
	expect_parse_errors(bad, sizeof bad / sizeof bad[0]);
}

Test(options, ranges_and_choices)
{
	const bad_spec bad[] = {
		{REQUIRED "  count: 12\n",
		 "t.yaml:3:3: comp.count: 12 is out of range [1, 10] (option 'count' of sample)"},
		{REQUIRED "  count: 0\n", "0 is out of range [1, 10]"},
		{REQUIRED "  rate: 1.5\n",
		 "comp.rate: 1.5 is out of range [0, 1] (option 'rate' of sample)"},
		{REQUIRED "  rate: .nan\n", "nan is out of range [0, 1]"},
		{REQUIRED "  kernel:\n    - 3\n    - 32\n",
		 "t.yaml:5:7: comp.kernel.1: 32 is out of range [1, 31] (option 'kernel' of sample)"},
		{REQUIRED "  mode: ful\n",
		 "t.yaml:3:3: comp.mode: expected one of custom_separable|separable|full (option 'mode' of "
		 "sample), got 'ful'; did you mean 'full'?"},
	};
	expect_parse_errors(bad, sizeof bad / sizeof bad[0]);
	sample_opts o;
	EXPECT_ERROR(parse(REQUIRED "  mode: dense_conv\n", &o), FV_ERR_CONFIG,
	             "got 'dense_conv'");
	cr_assert(strstr(fv_errmsg(), "did you mean") == NULL, "%s", fv_errmsg());
	/* the boundaries are inclusive */
	cr_assert_eq(parse(REQUIRED "  count: 10\n  rate: 0\n  kernel: [1, 31]\n", &o), FV_OK,
	             "%s", fv_errmsg());
	fv_options_free(sample_table, &o);
}

Test(options, required_and_mandatory_values)
{
	sample_opts o;
	EXPECT_ERROR(parse("comp:\n  count: 2\n", &o), FV_ERR_CONFIG,
	             "t.yaml:1:1: comp: missing required option 'required' of sample");
	memset(&o, 0, sizeof o);
	EXPECT_ERROR(fv_options_parse(sample_table, NULL, &o, "sample", NULL), FV_ERR_CONFIG,
	             "sample: missing required option 'required'");
	EXPECT_ERROR(parse("comp:\n  required: ???\n", &o), FV_ERR_CONFIG,
	             "t.yaml:2:3: comp.required: missing mandatory value (\?\?\?) (option 'required' of sample)");
	EXPECT_ERROR(parse(REQUIRED "  kernel: ???\n", &o), FV_ERR_CONFIG,
	             "comp.kernel: missing mandatory value");
}

Test(options, failures_release_what_was_allocated)
{
	/* kernel and weights are allocated before maybe_i fails: ASan checks */
	sample_opts o;
	EXPECT_ERROR(parse(REQUIRED "  kernel: [1, 2]\n  weights: [1]\n  maybe_i: x\n", &o),
	             FV_ERR_CONFIG, "comp.maybe_i: expected an integer");
	cr_assert_null(o.kernel.v);
	cr_assert_null(o.weights.v);
}

Test(options, bad_defaults_are_reported_as_plugin_bugs)
{
	static const fv_option bad_type[] = {
		{"x", FV_OPT_INT, 0, "abc", 0, 0, 0, NULL, "x"},
		{0},
	};
	static const fv_option bad_yaml[] = {
		{"x", FV_OPT_INT_LIST, 0, "[1,", 0, 0, 0, NULL, "x"},
		{0},
	};
	static const fv_option bad_range[] = {
		{"x", FV_OPT_INT, 0, "20", 0, 10, 0, NULL, "x"},
		{0},
	};
	static const fv_option bad_enum[] = {
		{"x", FV_OPT_ENUM, 0, "d", 0, 0, 0, "a|b|c", "x"},
		{0},
	};
	fv_int_list v;
	EXPECT_ERROR(fv_options_parse(bad_type, NULL, &v, "broken", NULL), FV_ERR_ARG,
	             "broken: the default of option 'x' is 'abc', expected an integer",
	             "a bug in the component's option table");
	EXPECT_ERROR(fv_options_parse(bad_yaml, NULL, &v, "broken", NULL), FV_ERR_ARG,
	             "broken: the default '[1,' of option 'x' is not valid YAML");
	EXPECT_ERROR(fv_options_parse(bad_range, NULL, &v, "broken", NULL), FV_ERR_ARG,
	             "broken: the default 20 of option 'x' is outside [0, 10]");
	EXPECT_ERROR(fv_options_parse(bad_enum, NULL, &v, "broken", NULL), FV_ERR_ARG,
	             "the default of option 'x' is 'd', expected one of a|b|c");
	EXPECT_ERROR(fv_options_parse(sample_table, NULL, NULL, "sample", NULL), FV_ERR_ARG,
	             "no options struct");
}

Test(options, options_sharing_an_offset)
{
	/* several accepted-but-ignored keys write the same field (optim.c does this) */
	typedef struct {
		const fv_config_node *ignored;
		fv_int_list l;
	} shared;
	static const fv_option table[] = {
		{"a", FV_OPT_NODE, offsetof(shared, ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "a"},
		{"b", FV_OPT_NODE, offsetof(shared, ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "b"},
		{"l1", FV_OPT_INT_LIST, offsetof(shared, l), "[1]", 0, 0, 0, NULL, "l1"},
		{"l2", FV_OPT_INT_LIST, offsetof(shared, l), "[2, 3]", 0, 0, 0, NULL, "l2"},
		{0},
	};
	shared s;
	cr_assert_eq(fv_options_parse(table, spec("comp:\n  a: 5\n"), &s, "shared", NULL), FV_OK);
	cr_assert_eq(s.l.n, 2, "the last entry wins");
	fv_options_free(table, &s);
	cr_assert_null(s.l.v);
}

/* FV_OPT names every field of a row; what it leaves out is zero. */
Test(options, row_macro)
{
	static const fv_option rows[] = {
		FV_OPT("rate", FLOAT, sample_opts, rate, "1e-2", "a fraction", .min = 0, .max = 1),
		FV_OPT("mode", ENUM, sample_opts, mode, "full", "convolution type",
		       .choices = "separable|full", .flags = FV_OPT_NULLABLE),
		FV_OPT("kernel", INT_LIST, sample_opts, kernel, NULL, "kernel sizes"),
	};
	const fv_option *r = &rows[0];
	cr_assert_str_eq(r->name, "rate");
	cr_assert_eq(r->type, FV_OPT_FLOAT);
	cr_assert_eq(r->offset, offsetof(sample_opts, rate));
	cr_assert_str_eq(r->def, "1e-2");
	cr_assert_str_eq(r->doc, "a fraction");
	cr_assert(r->min == 0 && r->max == 1 && r->flags == 0 && r->choices == NULL);
	r = &rows[1];
	cr_assert_eq(r->type, FV_OPT_ENUM);
	cr_assert_str_eq(r->choices, "separable|full");
	cr_assert_eq(r->flags, FV_OPT_NULLABLE);
	r = &rows[2];
	cr_assert_eq(r->type, FV_OPT_INT_LIST);
	cr_assert_eq(r->offset, offsetof(sample_opts, kernel));
	cr_assert_null(r->def);
	cr_assert(r->min == 0 && r->max == 0 && r->flags == 0 && r->choices == NULL);
}

/* A module's state outlives the configuration: strings are copies there,
** and releasing the state frees them with the lists. */
Test(options, owned_strings_are_copies)
{
	sample_opts o;
	memset(&o, 0, sizeof o); /* an owning struct starts zero-filled */
	const fv_config_node *m = spec(REQUIRED "  name: hello\n  mode: full\n  maybe_s: x\n");
	cr_assert_eq(fv__options_parse_owned(sample_table, m, &o, "sample"), FV_OK, "%s",
	             fv_errmsg());
	cr_assert_str_eq(o.name, "hello");
	cr_assert_neq(o.name, fv_node_text(fv_node_get(m, "name")), "a copy, not the node's text");
	cr_assert_neq(o.mode, fv_node_text(fv_node_get(m, "mode")));
	teardown(); /* the configuration goes; the copies stay */
	cr_assert_str_eq(o.name, "hello");
	cr_assert_str_eq(o.mode, "full");
	cr_assert_str_eq(o.maybe_s, "x");
	cr_assert_eq(o.kernel.n, 2);
	fv__options_release(sample_table, &o);
	cr_assert(o.name == NULL && o.mode == NULL && o.maybe_s == NULL && o.kernel.v == NULL);
	fv__options_release(sample_table, &o); /* twice is harmless */

	/* A failed parse releases what it had copied (the leak check sees it). */
	memset(&o, 0, sizeof o);
	EXPECT_ERROR(fv__options_parse_owned(sample_table, spec(REQUIRED "  name: y\n  maybe_l: [a]\n"),
	                                     &o, "sample"),
	             FV_ERR_CONFIG, "expected an integer");
	cr_assert_null(o.name, "name, parsed before maybe_l, was released");
}

Test(options, describe_prints_a_table)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fv_options_describe(sample_table, f);
	fclose(f);
	cr_assert_not_null(buf);
	const char *lines[] = {"OPTION", "TYPE", "DEFAULT", "RANGE", "DESCRIPTION"};
	for (size_t i = 0; i < 5; i++)
		cr_assert(strstr(buf, lines[i]) != NULL, "%s", buf);
	/* one line per option, with its type, default, range or choices and doc */
	const char *expect[][5] = {
		{"count", "int", "3", "[1, 10]", "how many"},
		{"mode", "choice", "custom_separable", "custom_separable|separable|full", "convolution type"},
		{"weights", "float or float list", "0.5", "", "weights"},
		{"maybe_i", "int or null", "null", "", "optional int"},
		{"required", "int", "(required)", "", "must be given"},
		{"no_default", "string", "-", "", "no default at all"},
	};
	for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
		char key[64];
		snprintf(key, sizeof key, "  %s ", expect[i][0]);
		const char *line = strstr(buf, key);
		cr_assert_not_null(line, "no line for %s in\n%s", expect[i][0], buf);
		const char *eol = strchr(line, '\n');
		for (size_t k = 1; k < 5; k++) {
			const char *hit = strstr(line, expect[i][k]);
			cr_assert(hit != NULL && hit < eol, "line of %s lacks '%s':\n%s", expect[i][0], expect[i][k],
			          buf);
		}
	}
	free(buf);
	f = open_memstream(&buf, &len);
	fv_options_describe(NULL, f);
	fclose(f);
	cr_assert_str_eq(buf, "  (no options)\n");
	free(buf);
}

Test(options, values_left_unresolved_report_why)
{
	/* composition leaves a broken interpolation in place; reading it as an
	** option reports the original problem */
	typedef struct {
		const char *cache;
		int64_t fine;
		fv_float_list l;
	} env_opts;
	static const fv_option table[] = {
		{"cache", FV_OPT_STRING, offsetof(env_opts, cache), "x", 0, 0, 0, NULL, "c"},
		{"fine", FV_OPT_INT, offsetof(env_opts, fine), "0", 0, 0, 0, NULL, "f"},
		{"l", FV_OPT_FLOAT_LIST, offsetof(env_opts, l), "[]", 0, 0, 0, NULL, "l"},
		{0},
	};
	const char *const ignore[] = {"data", "also_fine", NULL};
	unsetenv("FOVEA_TEST_UNSET_VAR");
	fv_config *c = fv_config_compose(FOVEA_TEST_SRCDIR "/data/config/env_missing.yaml", NULL, 0, NULL);
	cr_assert_not_null(c, "%s", fv_errmsg());
	env_opts o;
	EXPECT_ERROR(fv_options_parse(table, fv_config_root(c), &o, "env", ignore), FV_ERR_CONFIG,
	             "env_missing.yaml:1:1: cache: environment variable 'FOVEA_TEST_UNSET_VAR' is not set");
	fv_config_free(c);
}

/* fv_closest_name(), behind every "did you mean": a typo is at most
** max(2, len/3) edits and fewer than len (edit counts worked out by hand). */
Test(options, closest_name_is_a_plausible_typo)
{
	const char *const names[] = {"count", NULL, "kernel", "weights", "ab"};
	cr_assert_str_eq(fv_closest_name("coutn", names, 5), "count");     /* 2 edits of 5 */
	cr_assert_str_eq(fv_closest_name("kernal", names, 5), "kernel");   /* 1 edit */
	cr_assert_str_eq(fv_closest_name("wieghts", names, 5), "weights"); /* 2 edits of 7 */
	cr_assert_null(fv_closest_name("wxyzhts", names, 5));              /* 3 edits of 7 */
	cr_assert_str_eq(fv_closest_name("ac", names, 5), "ab");           /* 1 edit of 2 */
	cr_assert_null(fv_closest_name("xy", names, 5), "2 edits of 2 is not a typo");
	cr_assert_null(fv_closest_name("zzzzzzzzzzzz", names, 5));
	cr_assert_null(fv_closest_name(NULL, names, 5));
	cr_assert_null(fv_closest_name("count", NULL, 5));
	cr_assert_null(fv_closest_name("count", names, 0));
}

/* The class takes **kwargs: keys the table does not name are accepted and
** left unread, so the not-used report lists exactly those. */
static void collect_unused(void *ud, const fv_config_node *n)
{
	char *names = ud;
	strcat(names, fv_node_keypath(n));
	strcat(names, ";");
}

Test(options, kwargs_row_admits_other_keys_and_leaves_them_unread)
{
	typedef struct kw_opts {
		int64_t count;
	} kw_opts;
	static const fv_option table[] = {
		FV_OPT("count", INT, kw_opts, count, "3", "how many", .min = 1, .max = 10),
		FV_OPT_KWARGS_ROW("other keys, as the class's **kwargs"),
		{0},
	};
	kw_opts o = {0};
	cr_assert_eq(fv_options_parse(table, spec("comp:\n  count: 4\n  pool: 2\n  none: null\n  extra: [1]\n"),
	                              &o, "kw", NULL),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_eq(o.count, 4);
	char names[128] = "";
	/* a null asks for nothing: it is not reported */
	cr_assert_eq(fv_config_unused(cfg, NULL, collect_unused, names), 2);
	cr_assert_str_eq(names, "comp.pool;comp.extra.0;");
	/* a misspelt option is not taken for a keyword argument */
	EXPECT_ERROR(fv_options_parse(table, spec("comp:\n  coutn: 4\n"), &o, "kw", NULL),
	             FV_ERR_CONFIG, "unknown option 'coutn' for kw; did you mean 'count'?");
	/* the table's own options are still checked */
	EXPECT_ERROR(fv_options_parse(table, spec("comp:\n  count: 40\n"), &o, "kw", NULL), FV_ERR_CONFIG,
	             "40");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fv_options_describe(table, f);
	fclose(f);
	cr_assert(strstr(text, "**kwargs") != NULL && strstr(text, "other keys") != NULL, "%s", text);
	free(text);
}
