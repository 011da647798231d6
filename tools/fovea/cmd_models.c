/*
** cmd_models.c: `fovea models [--download NAME...]`, openretina's
** published models (include/fovea/zoo.h): each name, whether it is in
** openretina's cache (its path and size), and where it comes from.  Every
** command that takes a checkpoint takes these names.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fovea/zoo.h"

static void print_model(const fv_zoo_model *m)
{
	char *path = fv_zoo_cached_path(m), *url = fv_zoo_url(m);
	struct stat sb;
	if (path != NULL && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		printf("%-28s cached  %10lld bytes  %s\n", m->name, (long long)sb.st_size, path);
	else
		printf("%-28s not cached                %s\n", m->name, path ? path : "?");
	printf("%-28s from %s\n", "", url ? url : "?");
	free(path);
	free(url);
}

static int list(void)
{
	char *cache = fv_zoo_cache_dir();
	printf("openretina's models (cache %s; $OPENRETINA_CACHE_DIRECTORY sets it):\n",
	       cache ? cache : "?");
	free(cache);
	for (size_t i = 0; i < fv_zoo_count(); i++)
		print_model(fv_zoo_at(i));
	return CLI_OK;
}

static const fv_zoo_model *find(const char *name)
{
	const fv_zoo_model *m = fv_zoo_find(name);
	if (m == NULL) {
		char *local = NULL;
		/* the library's message names the closest models */
		if (fv_zoo_resolve(name, NULL, &local) == FV_OK)
			fv_error(FV_ERR_NOTFOUND, "%s: no openretina model of that name (`fovea models` "
			         "lists them)", name);
		free(local);
	}
	return m;
}

static int download(int n, char **names)
{
	for (int i = 0; i < n; i++)
		if (find(names[i]) == NULL)
			return cli_fail("%s", fv_errmsg());
	for (int i = 0; i < n; i++) {
		char *path = fv_zoo_fetch(fv_zoo_find(names[i]), NULL);
		if (path == NULL)
			return cli_fail("%s", fv_errmsg());
		printf("%s: %s\n", names[i], path);
		free(path);
	}
	return CLI_OK;
}

static int run_models(int argc, char **argv)
{
	if (argc == 1)
		return list();
	if (strcmp(argv[1], "--download") != 0)
		return cli_usage_error(&cli_cmd_models, argv[1][0] == '-' ? "unknown option '%s'"
		                       : "unexpected argument '%s'", argv[1]);
	if (argc == 2)
		return cli_usage_error(&cli_cmd_models, "--download needs at least one model name");
	return download(argc - 2, argv + 2);
}

const cli_cmd cli_cmd_models = {
	.name = "models",
	.summary = "openretina's published models: names, cache, download",
	.usage = "fovea models [--download NAME...]\n"
	         "\n"
	         "List openretina's published models (its load_core_readout_from_remote\n"
	         "names): whether each is in openretina's cache, with its path and size, and\n"
	         "the URL it is downloaded from.  Every command that takes a checkpoint takes\n"
	         "these names; a model not in the cache is downloaded first.  --download\n"
	         "fetches the named models now.\n"
	         "\n"
	         "The cache is openretina's: $OPENRETINA_CACHE_DIRECTORY, else\n"
	         "~/openretina_cache, with openretina's layout (model_checkpoints/DATE/FILE),\n"
	         "so models openretina downloaded are used as they are.  Downloads come from\n"
	         "Hugging Face ($HF_ENDPOINT replaces https://huggingface.co), or from\n"
	         "$FOVEA_MODEL_BASE_URL/model_checkpoints/DATE/FILE when it is set (a mirror).\n"
	         "A download is written to FILE.part, resumed from it after an interruption,\n"
	         "checked against the size the server announced and renamed to FILE.\n",
	.run = run_models,
};
