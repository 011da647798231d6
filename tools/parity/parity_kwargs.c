/*
** parity_kwargs.c: a case's constructor arguments with their tensors.
**
** openretina modules that take tensors as constructor arguments
** (SpatialContrastReadout's spatial_filters, MultiSpatialContrastReadout's
** spatial_filters_dict) are recorded with the argument naming the stored
** tensor that was passed ("spatial_filters: param.spatial_filters").  fovea
** takes such arguments as nested YAML lists, so the kwargs are written
** again with every such reference replaced by the tensor's values.
**
** The spatial-contrast models read spike-triggered averages from files in
** `sta_dir`: the case stores them as input.sta (the file sta_file_name) or
** input.sta.<session>.<cell> (sta_file_pattern), and its sta_dir is a
** placeholder; they are written as .npy files into a temporary directory
** that becomes sta_dir (removed when the case closes).
*/
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/npy.h"

#include "parity_case.h"

typedef struct text {
	char *s;
	size_t len, cap;
	bool failed;
} text;

static void put(text *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap + n + 1) * 2;
		char *p = realloc(b->s, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->s[b->len += n] = '\0';
}

static void put_str(text *b, const char *s)
{
	put(b, s, strlen(s));
}

/* values[0 .. shape[0] * ...) as nested flow lists. */
static const fv_real *put_nested(text *b, const fv_real *v, int ndim, const int64_t *shape)
{
	char num[32];
	if (ndim == 0) {
		snprintf(num, sizeof num, "%.9g", (double)*v);
		put_str(b, num);
		return v + 1;
	}
	put_str(b, "[");
	for (int64_t i = 0; i < shape[0]; i++) {
		if (i > 0)
			put_str(b, ", ");
		v = put_nested(b, v, ndim - 1, shape + 1);
	}
	put_str(b, "]");
	return v;
}

/* The stored tensor a scalar names, if it names one. */
static const fv_st_entry *reference(const fv_pcase *pc, const fv_config_node *n)
{
	if (fv_node_kind(n) != FV_NODE_SCALAR || fv_node_quoted(n))
		return NULL;
	const char *t = fv_node_text(n);
	if (strncmp(t, "param.", 6) != 0 && strncmp(t, "input.", 6) != 0)
		return NULL;
	return fv_safetensors_find(pc->st, t);
}

static bool has_reference(const fv_pcase *pc, const fv_config_node *n)
{
	if (reference(pc, n) != NULL)
		return true;
	if (fv_node_kind(n) != FV_NODE_MAP && fv_node_kind(n) != FV_NODE_SEQ)
		return false;
	for (size_t i = 0; i < fv_node_size(n); i++)
		if (has_reference(pc, fv_node_at(n, i)))
			return true;
	return false;
}

/* In `yaml`, every line ending ": NAME" for a referenced tensor NAME gets
** the tensor's values instead. */
static void substitute(fv_pcase *pc, const fv_config_node *n, text *yaml)
{
	const fv_st_entry *e = reference(pc, n);
	if (e == NULL) {
		for (size_t i = 0; (fv_node_kind(n) == FV_NODE_MAP || fv_node_kind(n) == FV_NODE_SEQ) &&
		                   i < fv_node_size(n); i++)
			substitute(pc, fv_node_at(n, i), yaml);
		return;
	}
	char needle[300];
	snprintf(needle, sizeof needle, ": %s\n", e->name);
	char *at = yaml->s ? strstr(yaml->s, needle) : NULL;
	fv_real *v = malloc((size_t)e->numel * sizeof *v);
	if (at == NULL || v == NULL || fv_safetensors_read(pc->st, e->name, v, e->numel) != FV_OK) {
		free(v);
		return;
	}
	text out = {0};
	put(&out, yaml->s, (size_t)(at - yaml->s) + 2);
	put_nested(&out, v, e->ndim, e->shape);
	put_str(&out, at + strlen(needle) - 1);
	free(v);
	free(yaml->s);
	*yaml = out;
}

/* ---- spike-triggered averages as files ---------------------------------------------- */

/* The file name of input.sta.<session>.<cell> under sta_file_pattern. */
static void pattern_name(char *out, size_t size, const char *pattern, const char *session,
                         const char *cell)
{
	text b = {0};
	for (const char *p = pattern; *p != '\0';) {
		if (strncmp(p, "{retina_index}", 14) == 0) {
			put_str(&b, session);
			p += 14;
		} else if (strncmp(p, "{cell_index}", 12) == 0) {
			put_str(&b, cell);
			p += 12;
		} else {
			put(&b, p++, 1);
		}
	}
	snprintf(out, size, "%s", b.s ? b.s : "");
	free(b.s);
}

/* The file an input.sta* tensor is written to, or false. */
static bool sta_file(const fv_pcase *pc, const char *tensor, char *out, size_t size)
{
	const fv_config_node *n;
	if (strcmp(tensor, "input.sta") == 0) {
		n = fv__pcase_get(pc, "kwargs.sta_file_name");
		snprintf(out, size, "%s", n ? fv_node_text(n) : "sta.npy");
		return true;
	}
	if (strncmp(tensor, "input.sta.", 10) != 0)
		return false;
	char session[256];
	snprintf(session, sizeof session, "%s", tensor + 10);
	char *cell = strrchr(session, '.');
	if (cell == NULL)
		return false;
	*cell++ = '\0';
	n = fv__pcase_get(pc, "kwargs.sta_file_pattern");
	pattern_name(out, size, n ? fv_node_text(n) : "", session, cell);
	return true;
}

/* Every input.sta* into pc->sta_dir; false (with a failure) on error. */
static bool write_stas(fv_pcase *pc)
{
	snprintf(pc->sta_dir, sizeof pc->sta_dir, "/tmp/fovea_parity_sta_XXXXXX");
	if (mkdtemp(pc->sta_dir) == NULL) {
		pc->sta_dir[0] = '\0';
		fv__pcase_fail(pc, "cannot make a temporary directory for the STAs");
		return false;
	}
	for (size_t i = 0; i < fv_safetensors_count(pc->st); i++) {
		const char *name = fv_safetensors_at(pc->st, i)->name;
		char file[512], path[1024];
		if (!sta_file(pc, name, file, sizeof file))
			continue;
		snprintf(path, sizeof path, "%s/%s", pc->sta_dir, file);
		fv_tensor *t = fv_safetensors_tensor(pc->st, name);
		fv_status st = t ? fv_npy_save(path, t) : fv_errcode();
		fv_tensor_free(t);
		if (st != FV_OK) {
			fv__pcase_fail(pc, "writing %s as %s: %s", name, path, fv_errmsg());
			return false;
		}
	}
	return true;
}

void fv__pcase_remove_stas(fv_pcase *pc)
{
	if (pc->sta_dir[0] == '\0')
		return;
	DIR *d = opendir(pc->sta_dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", pc->sta_dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(pc->sta_dir);
	pc->sta_dir[0] = '\0';
}

/* The kwargs' sta_dir line pointed at the directory of written STAs. */
static void substitute_sta_dir(fv_pcase *pc, text *yaml)
{
	const fv_config_node *n = fv__pcase_get(pc, "kwargs.sta_dir");
	if (n == NULL || (!fv__pcase_has(pc, "input.sta") && !fv__pcase_has_prefix(pc, "input.sta.")))
		return;
	if (yaml->s == NULL)
		return;
	size_t pos = 0;
	if (strncmp(yaml->s, "sta_dir: ", 9) != 0) {
		const char *line = strstr(yaml->s, "\nsta_dir: ");
		if (line == NULL)
			return;
		pos = (size_t)(line - yaml->s) + 1;
	}
	const char *end = strchr(yaml->s + pos, '\n');
	if (end == NULL || !write_stas(pc))
		return;
	size_t len = pos + strlen(pc->sta_dir) + strlen(end) + 16;
	char *out = malloc(len);
	if (out == NULL) {
		yaml->failed = true;
		return;
	}
	snprintf(out, len, "%.*ssta_dir: '%s'%s", (int)pos, yaml->s, pc->sta_dir, end);
	free(yaml->s);
	*yaml = (text){out, strlen(out), len, false};
}

/* ---- the kwargs ------------------------------------------------------------------------ */

const fv_config_node *fv__pcase_kwargs(fv_pcase *pc, fv_config **derived)
{
	const fv_config_node *kw = fv__pcase_get(pc, "kwargs");
	*derived = NULL;
	bool stas = kw != NULL && fv_node_get(kw, "sta_dir") != NULL;
	if (kw == NULL || (!stas && !has_reference(pc, kw)))
		return kw;
	char *yaml = fv_node_to_yaml(kw);
	text t = {yaml, yaml ? strlen(yaml) : 0, yaml ? strlen(yaml) + 1 : 0, yaml == NULL};
	substitute(pc, kw, &t);
	if (stas)
		substitute_sta_dir(pc, &t);
	if (!t.failed)
		*derived = fv_config_load_derived(t.s, t.len, kw);
	free(t.s);
	if (*derived == NULL) {
		fv__pcase_fail(pc, "kwargs with their tensors: %s", fv_errmsg());
		return NULL;
	}
	return fv_config_root(*derived);
}
