/*
** trainer_unused.c: after the trainer has read its settings, built the
** model and opened the data and loggers, every key of the config it did not
** read is named once (config_unused.c); with `strict` that is an error.
**
** The hydra node is Hydra's own runtime configuration, of which fovea reads
** only run.dir; it is not listed.
*/
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

static const char *const not_listed[] = {"hydra", NULL};

/* Why fovea ignores a key, where a reason is known. */
static const char *reason(const char *keypath)
{
	static const struct {
		const char *prefix, *why;
	} known[] = {
		{"trainer.accelerator", "fovea runs on the CPU"},
		{"trainer.devices", "fovea runs on the CPU; threads with --threads"},
		{"trainer.profiler", "no profiler; see fovea-bench --profile"},
		{"paths.cache_dir", "openretina's download cache"},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strncmp(keypath, known[i].prefix, strlen(known[i].prefix)) == 0)
			return known[i].why;
	return NULL;
}

static void add_key(void *ud, const fv_config_node *n)
{
	fv__text *list = ud;
	const char *path = fv_node_keypath(n), *why = reason(path);
	fv__text_printf(list, "%s%s%s%s%s", list->len ? ", " : "", path, why ? " (" : "",
	                why ? why : "", why ? ")" : "");
}

fv_status fv__report_unused(fv__trainer *t, bool strict)
{
	fv__text list = {0};
	size_t n = fv_config_unused(t->cfg, not_listed, add_key, &list);
	char *text = n > 0 ? fv__text_take(&list, "the list of unused keys") : NULL;
	fv_status rc = FV_OK;
	if (n > 0 && text == NULL)
		rc = fv_errcode();
	else if (n > 0 && strict)
		rc = fv_error(FV_ERR_CONFIG, "not used by fovea (--strict): %s", text);
	else if (n > 0)
		fprintf(stderr, "fovea: not used: %s\n", text);
	free(text);
	return rc;
}
