/*
** parity_kwargs.c: a case's constructor arguments with their tensors.
**
** openretina modules that take tensors as constructor arguments
** (SpatialContrastReadout's spatial_filters, MultiSpatialContrastReadout's
** spatial_filters_dict) are recorded with the argument naming the stored
** tensor that was passed ("spatial_filters: param.spatial_filters").  fovea
** takes such arguments as nested YAML lists, so the kwargs are written
** again with every such reference replaced by the tensor's values.
*/
#include <stdlib.h>
#include <string.h>

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

const fv_config_node *fv__pcase_kwargs(fv_pcase *pc, fv_config **derived)
{
	const fv_config_node *kw = fv__pcase_get(pc, "kwargs");
	*derived = NULL;
	if (kw == NULL || !has_reference(pc, kw))
		return kw;
	char *yaml = fv_node_to_yaml(kw);
	text t = {yaml, yaml ? strlen(yaml) : 0, yaml ? strlen(yaml) + 1 : 0, yaml == NULL};
	substitute(pc, kw, &t);
	if (!t.failed)
		*derived = fv_config_load_derived(t.s, t.len, kw);
	free(t.s);
	if (*derived == NULL) {
		fv__pcase_fail(pc, "kwargs with their tensors: %s", fv_errmsg());
		return NULL;
	}
	return fv_config_root(*derived);
}
