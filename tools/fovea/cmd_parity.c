/*
** cmd_parity.c: `fovea parity PATH...`, checking fovea against openretina
** reference cases (see tools/parity/parity.h for what a case is).
**
** A PATH is a directory of cases (its cases.txt order when present, else
** every *.yaml sorted), a case's .yaml or .safetensors, or its path without
** extension.  Every case ends in one line "PASS NAME" or "FAIL NAME: WHY";
** a case that cannot run is a FAIL, never skipped.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "parity.h"

typedef struct tally {
	int passed, failed;
} tally;

static void run_one(fv_registry *reg, const char *path, tally *t)
{
	if (fv_parity_run(reg, path, stdout) == FV_OK)
		t->passed++;
	else
		t->failed++;
	fflush(stdout);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* cases.txt lists the cases of a golden directory in a meaningful order. */
static bool run_listed(fv_registry *reg, const char *dir, tally *t)
{
	char list[4096], line[1024], path[4096];
	snprintf(list, sizeof list, "%s/cases.txt", dir);
	FILE *f = fopen(list, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, line);
		run_one(reg, path, t);
	}
	fclose(f);
	return true;
}

static int run_directory(fv_registry *reg, const char *dir, tally *t)
{
	if (run_listed(reg, dir, t))
		return CLI_OK;
	DIR *d = opendir(dir);
	if (d == NULL)
		return cli_fail("%s: cannot open directory", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		char **grown = realloc(names, (n + 1) * sizeof *names);
		if (grown == NULL)
			break;
		names = grown;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		run_one(reg, path, t);
		free(names[i]);
	}
	free(names);
	if (n == 0)
		return cli_fail("%s: no cases (*.yaml) in this directory", dir);
	return CLI_OK;
}

static int run_parity(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(&cli_cmd_parity, "expected at least one case or directory");
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	tally t = {0, 0};
	int rc = CLI_OK;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (run_directory(reg, argv[i], &t) != CLI_OK)
				rc = CLI_FAILED;
		} else {
			run_one(reg, argv[i], &t);
		}
	}
	fv_registry_free(reg);
	printf("%d passed, %d failed\n", t.passed, t.failed);
	return t.failed > 0 ? CLI_FAILED : rc;
}

const cli_cmd cli_cmd_parity = {
	.name = "parity",
	.summary = "check components against openretina reference cases",
	.usage = "fovea parity PATH...\n"
	         "\n"
	         "Run openretina reference cases (NAME.yaml + NAME.safetensors: target,\n"
	         "kwargs, state_dict, inputs, expected outputs and gradients) through\n"
	         "fovea's components and compare every stored tensor within the case's\n"
	         "tolerance.  PATH is a directory of cases, a case's .yaml/.safetensors\n"
	         "or its path without extension.  Prints each tensor's max abs and max\n"
	         "relative error, then PASS NAME or FAIL NAME: WHY per case, and a total.\n"
	         "Exits 1 when any case fails or cannot run.\n",
	.run = run_parity,
};
