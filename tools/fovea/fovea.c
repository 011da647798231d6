/*
** fovea.c: the `fovea` command line program: global options and dispatch.
**
** The program is a table of subcommands (see cmd.h); this file finds the
** one named on the command line, answers `--help` for it, and holds the
** small helpers the subcommands share.  The work itself is in libfovea.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fovea/parallel.h"

static const cli_cmd cli_cmd_help;

/* In the order `fovea --help` lists them. */
static const cli_cmd *const commands[] = {
	&cli_cmd_plugins,
	&cli_cmd_describe,
	&cli_cmd_instantiate,
	&cli_cmd_parity,
	&cli_cmd_create_data,
	&cli_cmd_train,
	&cli_cmd_data_info,
	&cli_cmd_sweep,
	&cli_cmd_eval,
	&cli_cmd_predict,
	&cli_cmd_mei,
	&cli_cmd_mds,
	&cli_cmd_figures,
	&cli_cmd_visualize,
	&cli_cmd_import,
	&cli_cmd_models,
	&cli_cmd_help,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* ---- shared helpers ------------------------------------------------------------ */

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fovea: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return CLI_FAILED;
}

/* The first line of a usage text: the synopsis. */
static void print_synopsis(const cli_cmd *cmd, FILE *out)
{
	const char *nl = strchr(cmd->usage, '\n');
	int n = nl != NULL ? (int)(nl - cmd->usage) : (int)strlen(cmd->usage);
	fprintf(out, "usage: %.*s\n", n, cmd->usage);
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fovea %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	print_synopsis(cmd, stderr);
	fprintf(stderr, "(fovea %s --help for more)\n", cmd->name);
	return CLI_USAGE;
}

fv_registry *cli_load_registry(void)
{
	fv_registry *reg = fv_registry_new();
	if (reg == NULL || fv_registry_load_default(reg) != FV_OK) {
		cli_fail("%s", fv_errmsg());
		fv_registry_free(reg);
		return NULL;
	}
	return reg;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static const cli_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static int unknown_command(const char *name)
{
	const char *names[N_COMMANDS];
	for (size_t i = 0; i < N_COMMANDS; i++)
		names[i] = commands[i]->name;
	const char *near = fv_closest_name(name, names, N_COMMANDS);
	if (near != NULL)
		fprintf(stderr, "fovea: unknown command '%s'; did you mean '%s'?\n", name, near);
	else
		fprintf(stderr, "fovea: unknown command '%s'\n", name);
	fputs("(fovea --help lists the commands)\n", stderr);
	return CLI_USAGE;
}

static void print_help(FILE *out)
{
	fputs("usage: fovea [--version] [--help] COMMAND [ARGS...]\n\n"
	      "Data-driven models of the retina.\n\ncommands:\n",
	      out);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n`fovea help COMMAND` or `fovea COMMAND --help` explains one command.\n"
	      "Plugins are found in fovea's plugin directory and in the directories of\n"
	      "$FOVEA_PLUGIN_PATH (colon-separated).\n",
	      out);
}

static void print_command_help(const cli_cmd *cmd)
{
	printf("usage: %s\n", cmd->usage);
	if (cmd->max_memory)
		printf("Memory:\n"
		       "  --max-memory SIZE  refuse, before allocating, work that needs more than SIZE\n"
		       "                     (4G, 512M, 1.5GiB; FOVEA_MAX_MEMORY sets it too); work\n"
		       "                     needing more than the machine has available is always\n"
		       "                     refused\n");
}

/* Take --max-memory SIZE (or --max-memory=SIZE) out of the arguments of a
** command that takes it, so the command's own parser never sees it. */
static int take_max_memory(const cli_cmd *cmd, int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		const char *value = NULL;
		if (strcmp(argv[i], "--max-memory") == 0) {
			if (i + 1 == *argc)
				return cli_usage_error(cmd, "--max-memory needs a size, e.g. --max-memory 4G");
			value = argv[++i];
		} else if (strncmp(argv[i], "--max-memory=", 13) == 0) {
			value = argv[i] + 13;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		size_t bytes;
		if (fv_parse_size(value, &bytes) != FV_OK)
			return cli_usage_error(cmd, "--max-memory: %s", fv_errmsg());
		fv_set_max_memory(bytes);
	}
	*argc = out;
	argv[out] = NULL;
	return CLI_OK;
}

static bool asks_for_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static int run_help(int argc, char **argv)
{
	if (argc == 1) {
		print_help(stdout);
		return CLI_OK;
	}
	if (argc > 2)
		return cli_usage_error(&cli_cmd_help, "expected one command name");
	const cli_cmd *cmd = find_command(argv[1]);
	if (cmd == NULL)
		return unknown_command(argv[1]);
	print_command_help(cmd);
	return CLI_OK;
}

static const cli_cmd cli_cmd_help = {
	.name = "help",
	.summary = "explain a command",
	.usage = "fovea help [COMMAND]\n"
	         "\n"
	         "Without COMMAND, list the commands; with one, explain it.\n",
	.run = run_help,
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("fovea %s (plugin ABI %d.%d)\n", FV_VERSION_STRING, FV_ABI_MAJOR, FV_ABI_MINOR);
		return CLI_OK;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		print_help(stdout);
		return CLI_OK;
	}
	const cli_cmd *cmd = find_command(name);
	if (cmd == NULL)
		return unknown_command(name);
	if (asks_for_help(argc - 1, argv + 1)) {
		print_command_help(cmd);
		return CLI_OK;
	}
	argc--;
	argv++;
	if (cmd->max_memory) {
		int rc = take_max_memory(cmd, &argc, argv);
		if (rc != CLI_OK)
			return rc;
	}
	/* under mpirun or srun every process joins the job; alone, nothing */
	if (fv_parallel_init() != FV_OK)
		return cli_fail("%s", fv_errmsg());
	int rc = cmd->run(argc, argv);
	fv_parallel_finalize();
	return rc;
}
