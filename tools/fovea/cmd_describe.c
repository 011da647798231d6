/*
** cmd_describe.c: `fovea describe NAME`, a component's documentation.
**
** Everything printed comes from the component's descriptor and its option
** table, so the documentation cannot drift from what the parser accepts.
*/
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "fovea/trainer.h"

static void describe(const fv_component *c, const char *file)
{
	printf("%s (%s)\n", c->names[0], fv_kind_name(c->kind));
	printf("  %s\n", c->doc != NULL ? c->doc : "(undocumented)");
	if (c->names[1] != NULL) {
		printf("  aliases:");
		for (const char *const *alias = c->names + 1; *alias != NULL; alias++)
			printf(" %s", *alias);
		putchar('\n');
	}
	printf("  file:    %s\n\noptions:\n", file);
	if (c->options == NULL || c->options[0].name == NULL)
		puts("  (none)");
	else
		fv_options_describe(c->options, stdout);
	fflush(stdout);
}

/* A part of a training config that is not a plugin (a logger, a callback). */
static void describe_builtin(const fv_builtin *b)
{
	printf("%s (%s, built into libfovea)\n", b->names[0], b->kind);
	printf("  %s\n", b->doc != NULL ? b->doc : "(undocumented)");
	if (b->names[1] != NULL) {
		printf("  aliases:");
		for (const char *const *alias = b->names + 1; *alias != NULL; alias++)
			printf(" %s", *alias);
		putchar('\n');
	}
	puts("\noptions:");
	fv_options_describe(b->options, stdout);
	fflush(stdout);
}

/* The closest name among the built-in parts, or NULL. */
static const char *closest_builtin(const char *name)
{
	size_t n, k = 0;
	const fv_builtin *const *all = fv_builtins(&n);
	const char *names[256];
	for (size_t i = 0; i < n; i++)
		for (const char *const *s = all[i]->names; *s != NULL && k < 256; s++)
			names[k++] = *s;
	return fv_closest_name(name, names, k);
}

static int run_describe(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage_error(&cli_cmd_describe, "expected one component name");
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	const char *file = NULL;
	const fv_component *c = fv_registry_find(reg, argv[1], &file);
	int rc = CLI_OK;
	const fv_builtin *b = c == NULL ? fv_builtin_find(argv[1]) : NULL;
	if (c != NULL) {
		describe(c, file);
	} else if (b != NULL) {
		describe_builtin(b);
	} else {
		const char *near = fv_registry_closest(reg, argv[1]);
		if (near == NULL)
			near = closest_builtin(argv[1]);
		if (near != NULL)
			rc = cli_fail("unknown component '%s'; did you mean '%s'?", argv[1], near);
		else
			rc = cli_fail("unknown component '%s' (fovea plugins lists them)", argv[1]);
	}
	fv_registry_free(reg);
	return rc;
}

const cli_cmd cli_cmd_describe = {
	.name = "describe",
	.summary = "show a component's documentation and options",
	.usage = "fovea describe NAME\n"
	         "\n"
	         "Show what the component NAME (its fovea name or any alias, as used\n"
	         "for _target_ in a config) is, the plugin file it comes from, and every\n"
	         "option it accepts with its type, default, range and meaning.\n",
	.run = run_describe,
};
