/*
** multi_yaml.c: writing option values back as flow YAML, so that a
** multi-session readout can hand each session's readout a spec derived from
** its own ("{positive: true, init_scales: [[0, 0.1], [0, 0.5]], ...}").
**
** The values come from the parsed options struct (typed fields) or, for
** options of type NODE, from the YAML nodes themselves.  Scalars are
** written as they were when they stay plain inside a flow collection, and
** double-quoted otherwise; quoting only happens to text that was a string.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "multi.h"

void sb_printf(sbuf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A scalar as flow YAML: as written while plain text stays plain inside a
** flow map, else double-quoted (such text was a string anyway). */
static bool plain_in_flow(const char *text)
{
	if (text[0] == '\0' || strchr("!&*|>%@`?'\" ", text[0]) != NULL)
		return false;
	if (text[0] == '-' && (text[1] == ' ' || text[1] == '\0'))
		return false;
	return strpbrk(text, ",[]{}#\"\\\n") == NULL && strstr(text, ": ") == NULL &&
	       text[strlen(text) - 1] != ':';
}

static void emit_scalar(sbuf *b, const char *text, bool quoted)
{
	if (!quoted && plain_in_flow(text)) {
		sb_printf(b, "%s", text);
		return;
	}
	sb_printf(b, "\"");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			sb_printf(b, "\\%c", *p);
		else if (*p == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *p);
	}
	sb_printf(b, "\"");
}

static void emit_node(sbuf *b, const fv_config_node *n)
{
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL:
		sb_printf(b, "null");
		return;
	case FV_NODE_SCALAR:
		emit_scalar(b, fv_node_text(n), fv_node_quoted(n));
		return;
	case FV_NODE_SEQ:
		sb_printf(b, "[");
		for (size_t i = 0; i < fv_node_size(n); i++) {
			sb_printf(b, i ? ", " : "");
			emit_node(b, fv_node_at(n, i));
		}
		sb_printf(b, "]");
		return;
	case FV_NODE_MAP:
		sb_printf(b, "{");
		for (size_t i = 0; i < fv_node_size(n); i++) {
			sb_printf(b, i ? ", " : "");
			emit_scalar(b, fv_node_key_at(n, i), false);
			sb_printf(b, ": ");
			emit_node(b, fv_node_at(n, i));
		}
		sb_printf(b, "}");
		return;
	}
}

static void emit_double(sbuf *b, double x)
{
	if (isnan(x))
		sb_printf(b, ".nan");
	else if (isinf(x))
		sb_printf(b, x > 0 ? ".inf" : "-.inf");
	else
		sb_printf(b, "%.17g", x);
}

/* One parsed option value as YAML; false when there is nothing to pass
** (an absent NODE option: the session readout's default applies). */
bool emit_option(sbuf *b, const fv_option *o, const void *field)
{
	switch (o->type) {
	case FV_OPT_BOOL:
		sb_printf(b, *(const bool *)field ? "true" : "false");
		return true;
	case FV_OPT_INT: {
		int64_t i = *(const int64_t *)field;
		if (i == FV_NONE_INT)
			sb_printf(b, "null");
		else
			sb_printf(b, "%lld", (long long)i);
		return true;
	}
	case FV_OPT_FLOAT:
		emit_double(b, *(const double *)field);
		return true;
	case FV_OPT_STRING:
	case FV_OPT_ENUM: {
		const char *s = *(const char *const *)field;
		if (s == NULL)
			sb_printf(b, "null");
		else
			emit_scalar(b, s, true);
		return true;
	}
	case FV_OPT_INT_LIST:
	case FV_OPT_FLOAT_LIST:
		return false; /* the containers pass no lists but in_shape, set apart */
	case FV_OPT_NODE: {
		const fv_config_node *n = *(const fv_config_node *const *)field;
		if (n == NULL)
			return false;
		emit_node(b, n);
		return true;
	}
	case FV_OPT_KWARGS: return false;
	}
	return false;
}

/* The entry `key` of the map NODE option `field` as flow YAML; false when
** the option is absent or has no such entry. */
bool emit_entry(sbuf *b, const void *field, const char *key)
{
	const fv_config_node *map = *(const fv_config_node *const *)field;
	const fv_config_node *n = map && fv_node_kind(map) == FV_NODE_MAP ? fv_node_get(map, key) : NULL;
	if (n == NULL)
		return false;
	emit_node(b, n);
	return true;
}
