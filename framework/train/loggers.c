/*
** loggers.c: the `logger` group of a training config.  Each entry is one
** of Lightning's loggers, found by its class path; fovea writes the CSV and
** TensorBoard ones (log_csv.c, log_tensorboard.c) and says so, once, for
** those it does not, so that nobody believes a run was logged to MLflow
** when it was not.
*/
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "train/loggers.h"

/* Lightning loggers fovea knows of but does not write. */
static const char *const skipped_loggers[] = {
	"lightning.pytorch.loggers.MLFlowLogger",
	"lightning.pytorch.loggers.mlflow.MLFlowLogger",
	"lightning.pytorch.loggers.WandbLogger",
	"lightning.pytorch.loggers.wandb.WandbLogger",
	"lightning.pytorch.loggers.CometLogger",
	"lightning.pytorch.loggers.NeptuneLogger",
	NULL,
};

static const fv__logger_kind *const kinds[] = {&fv__csv_logger, &fv__tensorboard_logger};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

typedef struct open_logger {
	const fv__logger_kind *kind;
	void *state;
} open_logger;

struct fv__loggers {
	open_logger *v;
	size_t n;
};

const fv__logger_kind *fv__logger_kind_find(const char *name)
{
	for (size_t k = 0; name != NULL && k < N_KINDS; k++)
		for (const char *const *n = kinds[k]->info.names; *n != NULL; n++)
			if (strcmp(*n, name) == 0)
				return kinds[k];
	return NULL;
}

static bool is_skipped(const char *target)
{
	for (const char *const *s = skipped_loggers; *s != NULL; s++)
		if (strcmp(*s, target) == 0)
			return true;
	return false;
}

static fv_status unknown_target(const fv_config_node *at, const char *target)
{
	const char *names[64];
	size_t n = 0;
	for (size_t k = 0; k < N_KINDS; k++)
		for (const char *const *s = kinds[k]->info.names; *s != NULL && n < 63; s++)
			names[n++] = *s;
	for (const char *const *s = skipped_loggers; *s != NULL && n < 63; s++)
		names[n++] = *s;
	const char *close = fv_closest_name(target, names, n);
	return fv_error_at(at, FV_ERR_NOTFOUND, "unknown logger '%s'%s%s%s", target,
	                   close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
}

/* ---- Lightning's log_dir --------------------------------------------------------------- */

/* The next free version under root: one more than the largest version_N. */
static long long next_version(const char *root)
{
	DIR *d = opendir(root);
	long long next = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		if (strncmp(e->d_name, "version_", 8) != 0)
			continue;
		long long v = strtoll(e->d_name + 8, &end, 10);
		if (*end == '\0' && end != e->d_name + 8 && v >= next)
			next = v + 1;
	}
	closedir(d);
	return next;
}

static fv_status join(char *buf, size_t size, const char *a, const char *b)
{
	size_t la = strlen(a);
	bool slash = la > 0 && a[la - 1] != '/' && b[0] != '\0';
	int n = snprintf(buf, size, "%s%s%s", a, slash ? "/" : "", b);
	if (n < 0 || (size_t)n >= size)
		return fv_error(FV_ERR_ARG, "log directory name too long: %s/%s", a, b);
	return FV_OK;
}

fv_status fv__lightning_log_dir(const char *save_dir, const char *name,
                                const fv_config_node *version, const char *sub_dir, char *buf,
                                size_t size)
{
	char root[4096], ver[64];
	fv_status rc = join(root, sizeof root, save_dir, name ? name : "");
	if (rc != FV_OK)
		return rc;
	const char *v = ver;
	int64_t iv;
	if (version == NULL || fv_node_is_null(version))
		snprintf(ver, sizeof ver, "version_%lld", next_version(root));
	else if (!fv_node_quoted(version) && fv_node_to_int(version, &iv) == FV_OK)
		snprintf(ver, sizeof ver, "version_%lld", (long long)iv);
	else if (fv_node_kind(version) == FV_NODE_SCALAR)
		v = fv_node_text(version);
	else
		return fv_error_at(version, FV_ERR_CONFIG, "version: expected null, an integer or a "
		                   "string");
	if (strstr(v, "..") != NULL || v[0] == '/')
		return fv_error_at(version, FV_ERR_CONFIG, "version '%s' must name a directory under "
		                   "%s", v, root);
	char dir[4096];
	rc = join(dir, sizeof dir, root, v);
	if (rc == FV_OK)
		rc = join(buf, size, dir, sub_dir ? sub_dir : "");
	return rc;
}

/* ---- the set of loggers -------------------------------------------------------------- */

static const char *const hydra_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

static fv_status open_one(fv__loggers *l, const fv__logger_kind *kind, const fv_config_node *spec,
                          const char *hparams_yaml, int64_t resume_epoch, int64_t resume_step)
{
	void *state = fv__calloc(1, kind->state_size);
	if (state == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory opening the %s", kind->info.names[0]);
	char dir[4096];
	fv_status rc = fv_options_parse(kind->info.options, spec, state, fv_node_keypath(spec), hydra_keys);
	if (rc == FV_OK)
		rc = kind->log_dir(state, dir, sizeof dir);
	if (rc == FV_OK)
		rc = fv__make_dirs(dir);
	if (rc == FV_OK)
		rc = kind->open(state, dir, hparams_yaml, resume_epoch, resume_step);
	if (rc != FV_OK) {
		fv_options_free(kind->info.options, state);
		free(state);
		return rc;
	}
	l->v[l->n++] = (open_logger){kind, state};
	return FV_OK;
}

static fv_status open_entry(fv__loggers *l, const fv_config_node *spec, const char *hparams_yaml,
                            int64_t resume_epoch, int64_t resume_step, bool strict, FILE *out)
{
	if (spec == NULL || fv_node_is_null(spec))
		return FV_OK; /* `logger: {csv: null}` switches one off */
	const fv_config_node *target = fv_node_get(spec, "_target_");
	if (fv_node_kind(spec) != FV_NODE_MAP || target == NULL ||
	    fv_node_kind(target) != FV_NODE_SCALAR)
		return fv_error_at(spec, FV_ERR_CONFIG, "expected a logger: a map with a _target_");
	const char *name = fv_node_text(target);
	const fv__logger_kind *kind = fv__logger_kind_find(name);
	if (kind != NULL)
		return open_one(l, kind, spec, hparams_yaml, resume_epoch, resume_step);
	if (!is_skipped(name))
		return unknown_target(target, name);
	if (strict)
		return fv_error_at(target, FV_ERR_CONFIG, "%s: fovea does not write this logger "
		                   "(--strict)", name);
	if (out != NULL)
		fprintf(out, "fovea: logger %s skipped: fovea writes the csv and tensorboard "
		        "loggers only\n", fv_node_keypath(spec));
	return FV_OK;
}

fv_status fv__loggers_open(const fv_config_node *node, const char *hparams_yaml,
                           int64_t resume_epoch, int64_t resume_step, bool strict, FILE *out,
                           fv__loggers **loggers)
{
	*loggers = NULL;
	fv__loggers *l = fv__calloc(1, sizeof *l);
	size_t n = node != NULL && fv_node_kind(node) == FV_NODE_MAP ? fv_node_size(node) : 0;
	if (l == NULL || (n > 0 && (l->v = fv__calloc(n, sizeof *l->v)) == NULL)) {
		free(l);
		return fv_error(FV_ERR_NOMEM, "out of memory opening the loggers");
	}
	fv_status rc = FV_OK;
	if (node != NULL && !fv_node_is_null(node) && fv_node_kind(node) != FV_NODE_MAP)
		rc = fv_error_at(node, FV_ERR_CONFIG, "logger: expected a map of loggers "
		                 "(name: {_target_: ...}) or null");
	for (size_t i = 0; rc == FV_OK && i < n; i++)
		rc = open_entry(l, fv_node_at(node, i), hparams_yaml, resume_epoch, resume_step,
		                strict, out);
	if (rc != FV_OK) {
		fv__loggers_close(l);
		return rc;
	}
	*loggers = l;
	return FV_OK;
}

fv_status fv__loggers_log(fv__loggers *l, const fv__log_value *v, size_t n, int64_t step,
                          int64_t epoch)
{
	for (size_t i = 0; l != NULL && i < l->n; i++) {
		fv_status rc = l->v[i].kind->log(l->v[i].state, v, n, step, epoch);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

fv_status fv__loggers_flush(fv__loggers *l)
{
	for (size_t i = 0; l != NULL && i < l->n; i++) {
		fv_status rc = l->v[i].kind->flush(l->v[i].state);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

void fv__loggers_close(fv__loggers *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		l->v[i].kind->close(l->v[i].state);
		fv_options_free(l->v[i].kind->info.options, l->v[i].state);
		free(l->v[i].state);
	}
	free(l->v);
	free(l);
}
