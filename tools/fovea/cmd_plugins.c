/*
** cmd_plugins.c: `fovea plugins`, every component the registry can build.
**
** Sorted by kind, then name, so the list reads like a catalogue and does
** not change with the order plugin files happen to load in.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

typedef struct listed {
	const fv_component *c;
	const char *file;
} listed;

static int by_kind_then_name(const void *pa, const void *pb)
{
	const listed *a = pa, *b = pb;
	if (a->c->kind != b->c->kind)
		return a->c->kind < b->c->kind ? -1 : 1;
	return strcmp(a->c->names[0], b->c->names[0]);
}

static void print_component(const listed *l)
{
	const fv_component *c = l->c;
	printf("%-11s %s", fv_kind_name(c->kind), c->names[0]);
	for (const char *const *alias = c->names + 1; *alias != NULL; alias++)
		printf("%s%s", alias == c->names + 1 ? "  (also " : ", ", *alias);
	puts(c->names[1] != NULL ? ")" : "");
	printf("%-11s %s\n", "", c->doc != NULL ? c->doc : "(undocumented)");
	printf("%-11s %s\n", "", l->file);
}

static int run_plugins(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage_error(&cli_cmd_plugins, "takes no arguments");
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	size_t n = fv_registry_size(reg);
	listed *all = calloc(n > 0 ? n : 1, sizeof *all);
	if (all == NULL) {
		fv_registry_free(reg);
		return cli_fail("out of memory");
	}
	for (size_t i = 0; i < n; i++)
		all[i].c = fv_registry_at(reg, i, &all[i].file);
	qsort(all, n, sizeof *all, by_kind_then_name);
	for (size_t i = 0; i < n; i++)
		print_component(&all[i]);
	if (n == 0)
		puts("no plugins found (set FOVEA_PLUGIN_PATH to a directory of plugins)");
	free(all);
	fv_registry_free(reg);
	return CLI_OK;
}

const cli_cmd cli_cmd_plugins = {
	.name = "plugins",
	.summary = "list every component the installed plugins provide",
	.usage = "fovea plugins\n"
	         "\n"
	         "List every component fovea can build from a config's _target_: its\n"
	         "kind, its name and aliases (either may be used as _target_), what it\n"
	         "does, and the plugin file it comes from.  `fovea describe NAME` shows\n"
	         "a component's options.\n",
	.run = run_plugins,
};
