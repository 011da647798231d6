/*
** parity_case.c: loading a reference case (yaml + safetensors), its
** tolerance, and the elementwise comparison |fovea - golden| <= atol +
** rtol*|golden| with per-tensor overrides, plus the bookkeeping that makes
** sure every stored result was compared.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parity_case.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void case_paths(fv_pcase *pc, const char *path)
{
	char stem[1024];
	snprintf(stem, sizeof stem, "%s", path);
	if (ends_with(stem, ".yaml"))
		stem[strlen(stem) - 5] = '\0';
	else if (ends_with(stem, ".safetensors"))
		stem[strlen(stem) - 12] = '\0';
	snprintf(pc->yaml_path, sizeof pc->yaml_path, "%s.yaml", stem);
	snprintf(pc->st_path, sizeof pc->st_path, "%s.safetensors", stem);
	const char *base = strrchr(stem, '/');
	snprintf(pc->name, sizeof pc->name, "%s", base ? base + 1 : stem);
}

static fv_status read_default_tolerance(fv_pcase *pc)
{
	const fv_config_node *tol = fv_node_get(pc->root, "tolerance");
	pc->rtol = 1e-4;
	pc->atol = 1e-5;
	pc->exact = false;
	if (tol == NULL)
		return FV_OK;
	const fv_config_node *n;
	fv_status st = FV_OK;
	if ((n = fv_node_get(tol, "rtol")) != NULL)
		st = fv_node_to_double(n, &pc->rtol);
	if (st == FV_OK && (n = fv_node_get(tol, "atol")) != NULL)
		st = fv_node_to_double(n, &pc->atol);
	n = fv_node_get(tol, "check");
	pc->exact = n != NULL && fv_node_text(n) != NULL && strcmp(fv_node_text(n), "exact") == 0;
	return st;
}

fv_status fv__pcase_open(fv_pcase *pc, const char *path, FILE *out)
{
	memset(pc, 0, sizeof *pc);
	pc->out = out;
	case_paths(pc, path);
	pc->yaml = fv_config_load_file(pc->yaml_path);
	if (pc->yaml == NULL)
		return fv_errcode();
	pc->root = fv_config_root(pc->yaml);
	pc->st = fv_safetensors_open(pc->st_path);
	if (pc->st == NULL)
		return fv_errcode();
	pc->checked = calloc(fv_safetensors_count(pc->st) + 1, sizeof *pc->checked);
	if (pc->checked == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	return read_default_tolerance(pc);
}

void fv__pcase_close(fv_pcase *pc)
{
	fv__pcase_remove_stas(pc);
	fv_config_free(pc->yaml);
	fv_safetensors_close(pc->st);
	free(pc->checked);
}

void fv__pcase_fail(fv_pcase *pc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (pc->n_failed++ == 0)
		vsnprintf(pc->why, sizeof pc->why, fmt, ap);
	va_end(ap);
}

const fv_config_node *fv__pcase_get(const fv_pcase *pc, const char *path)
{
	return fv_node_path(pc->root, path);
}

bool fv__pcase_has(const fv_pcase *pc, const char *name)
{
	return fv_safetensors_find(pc->st, name) != NULL;
}

bool fv__pcase_has_prefix(const fv_pcase *pc, const char *prefix)
{
	size_t n = fv_safetensors_count(pc->st), len = strlen(prefix);
	for (size_t i = 0; i < n; i++)
		if (strncmp(fv_safetensors_at(pc->st, i)->name, prefix, len) == 0)
			return true;
	return false;
}

static size_t entry_index(const fv_pcase *pc, const char *name)
{
	size_t n = fv_safetensors_count(pc->st);
	for (size_t i = 0; i < n; i++)
		if (strcmp(fv_safetensors_at(pc->st, i)->name, name) == 0)
			return i;
	return n;
}

static void tolerance_for(const fv_pcase *pc, const char *name, double *rtol, double *atol)
{
	*rtol = pc->rtol;
	*atol = pc->atol;
	const fv_config_node *per = fv_node_path(pc->root, "tolerance.per_tensor");
	const fv_config_node *t = per ? fv_node_get(per, name) : NULL;
	const fv_config_node *n;
	if (t == NULL)
		return;
	if ((n = fv_node_get(t, "rtol")) != NULL)
		fv_node_to_double(n, rtol);
	if ((n = fv_node_get(t, "atol")) != NULL)
		fv_node_to_double(n, atol);
}

/* Scalars may be stored as [] while fovea has (1) or (1, 1): equal numel
** with every extra dim 1 is the same shape. */
static bool shapes_agree(const fv_st_entry *e, const fv_tensor *t)
{
	if (e->numel != t->numel)
		return false;
	int i = 0, j = 0;
	while (i < e->ndim || j < t->ndim) {
		if (i < e->ndim && e->shape[i] == 1 && (j >= t->ndim || t->shape[j] != 1)) {
			i++;
			continue;
		}
		if (j < t->ndim && t->shape[j] == 1 && (i >= e->ndim || e->shape[i] != 1)) {
			j++;
			continue;
		}
		if (i >= e->ndim || j >= t->ndim || e->shape[i] != t->shape[j])
			return false;
		i++;
		j++;
	}
	return true;
}

void fv__pcase_compare(fv_pcase *pc, const char *name, const fv_tensor *t)
{
	size_t idx = entry_index(pc, name);
	if (idx == fv_safetensors_count(pc->st)) {
		fv__pcase_fail(pc, "fovea produced '%s' but the case does not store it", name);
		return;
	}
	pc->checked[idx] = true;
	const fv_st_entry *e = fv_safetensors_at(pc->st, idx);
	if (t == NULL) {
		fv__pcase_fail(pc, "%s: fovea has no value (%s)", name, fv_errmsg());
		if (pc->out)
			fprintf(pc->out, "  %-56s missing  FAIL\n", name);
		return;
	}
	if (!shapes_agree(e, t)) {
		char gshape[128];
		snprintf(gshape, sizeof gshape, "%s", fv_shape_str(e->ndim, e->shape));
		fv__pcase_fail(pc, "%s: shape %s, expected %s", name, fv_shape_str(t->ndim, t->shape),
		               gshape);
		if (pc->out)
			fprintf(pc->out, "  %-56s shape %s != %s  FAIL\n", name,
			        fv_shape_str(t->ndim, t->shape), gshape);
		return;
	}
	fv_real *gold = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *gold);
	if (gold == NULL || fv_safetensors_read(pc->st, name, gold, e->numel) != FV_OK) {
		fv__pcase_fail(pc, "%s: cannot read the stored value: %s", name, fv_errmsg());
		free(gold);
		return;
	}
	double rtol, atol, max_abs = 0, max_rel = 0;
	tolerance_for(pc, name, &rtol, &atol);
	int64_t bad = -1;
	for (int64_t i = 0; i < e->numel; i++) {
		double g = gold[i], f = t->data[i], d = fabs(f - g);
		bool ok = pc->exact ? f == g : d <= atol + rtol * fabs(g);
		if (isnan(d))
			ok = isnan(f) && isnan(g);
		if (d > max_abs || isnan(d))
			max_abs = d;
		if (g != 0 && d / fabs(g) > max_rel)
			max_rel = d / fabs(g);
		if (!ok && bad < 0)
			bad = i;
	}
	if (pc->out)
		fprintf(pc->out, "  %-56s max_abs %-10.3g max_rel %-10.3g %s\n", name, max_abs, max_rel,
		        bad < 0 ? "PASS" : "FAIL");
	if (bad >= 0)
		fv__pcase_fail(pc, "%s[%lld] = %.9g, expected %.9g (atol %g, rtol %g)", name,
		               (long long)bad, (double)t->data[bad], (double)gold[bad], atol, rtol);
	free(gold);
}

bool fv__pcase_compare_if_present(fv_pcase *pc, const char *name, const fv_tensor *t)
{
	if (!fv__pcase_has(pc, name))
		return false;
	fv__pcase_compare(pc, name, t);
	return true;
}

fv_tensor *fv__pcase_input(fv_pcase *pc, fv_ctx *ctx, const char *name, bool requires_grad)
{
	const fv_st_entry *e = fv_safetensors_find(pc->st, name);
	if (e == NULL) {
		fv__pcase_fail(pc, "the case stores no '%s'", name);
		return NULL;
	}
	if (e->ndim > FV_MAX_DIMS) {
		fv__pcase_fail(pc, "%s has %d dims", name, e->ndim);
		return NULL;
	}
	fv_tensor *t = fv_ctx_empty(ctx, e->ndim, e->shape);
	if (t == NULL || fv_safetensors_read(pc->st, name, t->data, t->numel) != FV_OK) {
		fv__pcase_fail(pc, "%s: %s", name, fv_errmsg());
		return NULL;
	}
	t->requires_grad = requires_grad;
	return t;
}

typedef struct state_check {
	fv_pcase *pc;
	const char *missing;
} state_check;

static int note_unstored_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)t;
	(void)is_param;
	state_check *sc = ud;
	char key[512];
	snprintf(key, sizeof key, "param.%s", name);
	if (!fv__pcase_has(sc->pc, key))
		fv__pcase_fail(sc->pc, "fovea's module has tensor '%s', which is not in openretina's "
		                       "state_dict",
		               name);
	return 0;
}

void fv__pcase_load_state(fv_pcase *pc, fv_module *m)
{
	size_t n = fv_safetensors_count(pc->st);
	for (size_t i = 0; i < n; i++) {
		const fv_st_entry *e = fv_safetensors_at(pc->st, i);
		if (strncmp(e->name, "param.", 6) != 0)
			continue;
		pc->checked[i] = true;
		fv_tensor *t = fv_module_tensor(m, e->name + 6);
		if (t == NULL) {
			fv__pcase_fail(pc, "fovea's module has no tensor '%s' (openretina state_dict name)",
			               e->name + 6);
			continue;
		}
		if (t->numel != e->numel) {
			fv__pcase_fail(pc, "tensor '%s' has shape %s in fovea, %s in openretina",
			               e->name + 6, fv_shape_str(t->ndim, t->shape),
			               fv_shape_str(e->ndim, e->shape));
			continue;
		}
		if (fv_safetensors_read(pc->st, e->name, t->data, t->numel) != FV_OK)
			fv__pcase_fail(pc, "%s", fv_errmsg());
	}
	state_check sc = {pc, NULL};
	fv_module_foreach_tensor(m, note_unstored_tensor, &sc);
}

/* Everything stored is either an input the flow consumed, a constant
** (const.*), or a result that must have been compared. */
void fv__pcase_check_all_compared(fv_pcase *pc)
{
	size_t n = fv_safetensors_count(pc->st);
	for (size_t i = 0; i < n; i++) {
		const char *name = fv_safetensors_at(pc->st, i)->name;
		if (pc->checked[i] || strncmp(name, "input.", 6) == 0 || strncmp(name, "const.", 6) == 0)
			continue;
		fv__pcase_fail(pc, "stored tensor '%s' was not checked by fovea", name);
	}
}
