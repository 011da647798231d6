/*
** config_resolve.c: OmegaConf interpolation, done eagerly and in place.
**
**   ${a.b.c}      the value at an absolute key path ("a.b[0]" works too);
**   ${.x} ${..x}  relative to the map holding the value (one dot per level);
**   ${name:args}  a resolver: oc.env, oc.select, oc.decode, len, now, hydra.
**
** A value that is exactly one interpolation takes the referenced value with
** its type (a number stays a number, a map is copied); an interpolation
** inside longer text is replaced by the value's text as Python's str() would
** print it (True, None, 0.001), and the result is a string.  References are
** followed through other interpolations; a value reached again while it is
** being resolved is a cycle, reported with the whole chain.  "\${" is a
** literal "${".
**
** fv_config_resolve() is strict: any failure, and any ??? left, is an
** error.  Composition resolves leniently instead (see config_compose.c):
** a value that cannot be resolved yet is left as written and keeps the
** reason, which typed reads and option parsing report.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

#define MAX_CHAIN 128
/* Internal status of a lenient resolution: the value cannot be resolved
** yet (it needs a ??? or has a broken interpolation); it is left as it is,
** with the reason kept in the node for whoever reads it. */
#define DEFER 1

typedef struct resolver {
	fv_config *cfg;
	bool strict;
	char msg[1024]; /* why the last value was deferred */
	int depth;
	fv_config_node *chain[MAX_CHAIN]; /* values being resolved, outermost first */
} resolver;

/* What an interpolation evaluates to: a node of the tree, or a new node. */
typedef struct value {
	const fv_config_node *ref;
	fv_config_node *own;
} value;

static const fv_config_node *value_node(const value *v)
{
	return v->own ? v->own : v->ref;
}

static void value_clear(value *v)
{
	fv__node_free(NULL, v->own);
	v->own = NULL;
	v->ref = NULL;
}

/* ---- a small string builder ---------------------------------------------------------- */

typedef struct sbuf {
	char *d;
	size_t n, cap;
} sbuf;

static fv_status sb_add(sbuf *b, const char *s, size_t len)
{
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->n + len + 1)
			cap *= 2;
		char *d = fv__realloc(b->d, cap);
		if (d == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory resolving interpolations");
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->n, s, len);
	b->n += len;
	b->d[b->n] = '\0';
	return FV_OK;
}

static const char *sb_str(const sbuf *b)
{
	return b->d ? b->d : "";
}

/* ---- messages ---------------------------------------------------------------------------- */

/* Errors are reported at the value holding the interpolation. */
static fv_status at_error(const fv_config_node *n, fv_status code, const char *fmt, ...)
    FV_PRINTF(3, 4);

static fv_status at_error(const fv_config_node *n, fv_status code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fv_error_at(n, code, "%s: %s", fv__node_name(n), msg);
}

static fv_status missing_error(const fv_config_node *missing, const fv_config_node *user)
{
	if (user == NULL || user == missing)
		return fv_error_at(missing, FV_ERR_CONFIG, "%s: missing mandatory value (\?\?\?)",
		                   fv__node_name(missing));
	char uwhere[512];
	fv__node_where(user, uwhere, sizeof uwhere);
	char name[512];
	snprintf(name, sizeof name, "%s", fv__node_name(missing));
	return fv_error_at(missing, FV_ERR_CONFIG, "%s: missing mandatory value (\?\?\?), needed by "
	                   "%s at %s", name, fv__node_name(user), uwhere);
}

static fv_status cycle_error(resolver *r, fv_config_node *again)
{
	sbuf b = {0};
	int first = 0;
	while (first < r->depth && r->chain[first] != again)
		first++;
	for (int i = first; i < r->depth; i++) {
		sb_add(&b, fv__node_name(r->chain[i]), strlen(fv__node_name(r->chain[i])));
		sb_add(&b, " -> ", 4);
	}
	sb_add(&b, fv__node_name(again), strlen(fv__node_name(again)));
	fv_status st = at_error(again, FV_ERR_CONFIG, "interpolation cycle: %s", sb_str(&b));
	free(b.d);
	return st;
}

/* ---- Python's str() of a scalar ------------------------------------------------------------ */

/* repr(float): the shortest digits that read back exactly, scientific
** notation when the exponent is < -4 or >= 16. */
static void python_float(double v, char *out, size_t size)
{
	if (isnan(v)) {
		snprintf(out, size, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, size, v < 0 ? "-inf" : "inf");
		return;
	}
	char e[64];
	for (int prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	const char *p = e;
	bool neg = *p == '-';
	p += neg;
	char digits[32];
	size_t nd = 0;
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	int exp = atoi(p + 1);
	char body[64];
	if (exp < -4 || exp >= 16) {
		snprintf(body, sizeof body, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
		         exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	} else if (exp < 0) {
		snprintf(body, sizeof body, "0.%.*s%s", -exp - 1, "0000", digits);
	} else {
		char ip[32], fp[32];
		size_t ni = (size_t)exp + 1;
		for (size_t i = 0; i < ni; i++)
			ip[i] = i < nd ? digits[i] : '0';
		ip[ni] = '\0';
		snprintf(fp, sizeof fp, "%s", nd > ni ? digits + ni : "0");
		snprintf(body, sizeof body, "%s.%s", ip, fp);
	}
	snprintf(out, size, "%s%s", neg ? "-" : "", body);
}

static fv_status render(const fv_config_node *user, const fv_config_node *n, sbuf *b)
{
	char buf[128];
	switch (n->type) {
	case FV_NODE_NULL: return sb_add(b, "None", 4);
	case FV_NODE_SEQ:
	case FV_NODE_MAP:
		return at_error(user, FV_ERR_CONFIG, "cannot put the %s '%s' inside a string",
		                n->type == FV_NODE_SEQ ? "list" : "map", fv__node_name(n));
	case FV_NODE_SCALAR: break;
	}
	if (n->quoted)
		return sb_add(b, n->text, strlen(n->text));
	bool bv, overflow = false;
	int64_t iv;
	double dv;
	switch (fv__scalar_kind_of(n->text)) {
	case FV__SCALAR_BOOL:
		fv__scalar_bool(n->text, &bv);
		return sb_add(b, bv ? "True" : "False", bv ? 4 : 5);
	case FV__SCALAR_INT:
		if (fv__scalar_int(n->text, &iv, &overflow) && !overflow) {
			snprintf(buf, sizeof buf, "%lld", (long long)iv);
			return sb_add(b, buf, strlen(buf));
		}
		break;
	case FV__SCALAR_FLOAT:
		fv__scalar_float(n->text, &dv);
		python_float(dv, buf, sizeof buf);
		return sb_add(b, buf, strlen(buf));
	default: break;
	}
	return sb_add(b, n->text, strlen(n->text));
}

/* ---- resolving nodes --------------------------------------------------------------------- */

/* In lenient mode an error becomes DEFER, and its message is kept. */
static fv_status defer(resolver *r, fv_status st)
{
	/* an expansion bomb would be retried by every value that needs it */
	if (r->strict || st != FV_ERR_CONFIG || r->cfg->too_big)
		return st;
	snprintf(r->msg, sizeof r->msg, "%s", fv_errmsg());
	return DEFER;
}

static fv_status resolve_node(resolver *r, fv_config_node *n);

/* Charge `more` bytes of text made by interpolation to the configuration.
** Counting the text, not only the nodes, is what stops a string-doubling
** chain (x1='${x0}${x0}', x2='${x1}${x1}', ...); once over, the config is
** marked too big so lenient resolution does not retry every user of it. */
static fv_status charge(resolver *r, const fv_config_node *user, size_t more)
{
	if (r->cfg == NULL)
		return FV_OK;
	if (more <= FV_CONFIG_MAX_RESOLVED_BYTES - r->cfg->resolved_bytes) {
		r->cfg->resolved_bytes += more;
		return FV_OK;
	}
	r->cfg->too_big = true;
	return at_error(user, FV_ERR_CONFIG, "interpolation makes the configuration's text grow "
	                "beyond %zu MiB (values that repeat each other, doubling at every step?)",
	                FV_CONFIG_MAX_RESOLVED_BYTES >> 20);
}

/* Bytes of text in a tree, for charge(). */
static size_t tree_text_bytes(const fv_config_node *n)
{
	size_t sum = n->text != NULL ? strlen(n->text) : 0;
	for (size_t i = 0; i < n->n; i++)
		sum += tree_text_bytes(n->kids[i]);
	return sum;
}

static fv_status resolve_tree(resolver *r, fv_config_node *n)
{
	if (n->type == FV_NODE_SCALAR)
		return resolve_node(r, n);
	fv_status deferred = FV_OK;
	for (size_t i = 0; i < n->n; i++) {
		fv_status st = resolve_tree(r, n->kids[i]);
		if (st == DEFER)
			deferred = DEFER;
		else if (st != FV_OK)
			return st;
	}
	return deferred;
}

/* A scalar on the way to a key is resolved first: it may become a map. */
static fv_status ensure_resolved(resolver *r, fv_config_node *n, const fv_config_node *user)
{
	if (n->type == FV_NODE_SCALAR && n->state != FV__NODE_DONE) {
		fv_status st = resolve_node(r, n);
		if (st != FV_OK)
			return st;
	}
	if (fv__node_is_missing(n))
		return defer(r, missing_error(n, user));
	return FV_OK;
}

static fv_status no_such_key(const fv_config_node *user, const char *path, const fv_config_node *in,
                             const char *seg, size_t len)
{
	if (in->type != FV_NODE_MAP && in->type != FV_NODE_SEQ)
		return at_error(user, FV_ERR_CONFIG, "interpolation '${%s}': '%s' is not a map or a list, "
		                "it has no key '%.*s'", path, fv__node_name(in), (int)len, seg);
	if (in->type == FV_NODE_SEQ)
		return at_error(user, FV_ERR_CONFIG, "interpolation '${%s}': the list '%s' has no item "
		                "'%.*s' (it has %zu)", path, fv__node_name(in), (int)len, seg, in->n);
	const char **keys = fv__malloc((in->n + 1) * sizeof *keys);
	char key[256];
	snprintf(key, sizeof key, "%.*s", (int)len, seg);
	const char *best = NULL;
	if (keys != NULL) {
		for (size_t i = 0; i < in->n; i++)
			keys[i] = in->kids[i]->key;
		best = fv_closest_name(key, keys, in->n);
	}
	const char *prefix = in->parent == NULL && in->key == NULL ? "" : fv__node_name(in);
	fv_status st;
	if (best != NULL)
		st = at_error(user, FV_ERR_CONFIG, "interpolation '${%s}' refers to a missing key; "
		              "did you mean '%s%s%s'?", path, prefix, prefix[0] ? "." : "", best);
	else
		st = at_error(user, FV_ERR_CONFIG, "interpolation '${%s}' refers to a missing key "
		              "('%s' has no key '%s')", path, prefix[0] ? prefix : "<root>", key);
	free(keys);
	return st;
}

/* Follow a key path (absolute, or relative with leading dots) from `user`. */
static fv_status walk(resolver *r, const fv_config_node *user, const char *path, fv_config_node **out)
{
	fv_config_node *n = r->cfg->root;
	const char *p = path;
	if (*p == '.') {
		n = user->parent;
		p++;
		while (*p == '.') {
			if (n == NULL)
				break;
			n = n->parent;
			p++;
		}
		if (n == NULL)
			return at_error(user, FV_ERR_CONFIG, "interpolation '${%s}' goes above the top level",
			                path);
	}
	while (*p != '\0') {
		const char *seg = p;
		size_t len;
		if (*p == '[') {
			const char *close = strchr(p, ']');
			if (close == NULL)
				return at_error(user, FV_ERR_CONFIG, "interpolation '${%s}': missing ']'", path);
			seg = p + 1;
			len = (size_t)(close - seg);
			p = close + 1;
		} else {
			len = strcspn(p, ".[");
			p += len;
		}
		if (*p == '.')
			p++;
		fv_status st = ensure_resolved(r, n, user);
		if (st != FV_OK)
			return st;
		const fv_config_node *next = NULL;
		if (len > 0 && n->type == FV_NODE_MAP) {
			for (size_t i = 0; i < n->n && next == NULL; i++)
				if (strncmp(n->kids[i]->key, seg, len) == 0 && n->kids[i]->key[len] == '\0')
					next = n->kids[i];
		} else if (len > 0 && n->type == FV_NODE_SEQ) {
			size_t idx = 0, k = 0;
			for (; k < len && seg[k] >= '0' && seg[k] <= '9' && idx < ((size_t)1 << 40); k++)
				idx = idx * 10 + (size_t)(seg[k] - '0');
			if (k == len && idx < n->n)
				next = n->kids[idx];
		}
		if (next == NULL)
			return no_such_key(user, path, n, seg, len);
		n = (fv_config_node *)next;
	}
	fv__node_mark_used(n); /* what an interpolation copies counts as read */
	*out = n;
	return FV_OK;
}

/* A value cannot be the map or list that holds it: it would contain itself.
** OmegaConf puts such a container into a string unresolved (its Python repr)
** and recurses without end when it is the whole value; fovea puts no
** container into a string, so both are errors.  Checking before resolving
** the container matters: resolving it would resolve this value again, and
** every sibling doing the same ("- x${.}" ten times) took minutes. */
static fv_status check_not_enclosing(const fv_config_node *user, const char *path,
                                     const fv_config_node *n)
{
	for (const fv_config_node *p = user->parent; p != NULL; p = p->parent)
		if (p == n)
			return at_error(user, FV_ERR_CONFIG, "interpolation '${%s}' refers to the %s that "
			                "holds this value; a value cannot contain itself", path,
			                n->type == FV_NODE_SEQ ? "list" : "map");
	return FV_OK;
}

/* The value at `path`, fully resolved. */
static fv_status lookup(resolver *r, const fv_config_node *user, const char *path, value *out)
{
	fv_config_node *n;
	fv_status st = walk(r, user, path, &n);
	if (st != FV_OK)
		return st;
	if ((st = check_not_enclosing(user, path, n)) != FV_OK)
		return st;
	if ((st = ensure_resolved(r, n, user)) != FV_OK)
		return st;
	st = resolve_tree(r, n);
	/* a map with some ??? inside is still a usable value */
	if (st == DEFER && n->type == FV_NODE_SCALAR)
		return st;
	if (st != FV_OK && st != DEFER)
		return st;
	out->ref = n;
	return FV_OK;
}

/* ---- resolvers ---------------------------------------------------------------------------- */

typedef struct arg {
	value v;     /* the argument when it is exactly one interpolation */
	sbuf text;   /* otherwise its text */
	bool quoted; /* written in quotes */
} arg;

static fv_status arg_text(const fv_config_node *user, arg *a, sbuf *out)
{
	if (value_node(&a->v) != NULL)
		return render(user, value_node(&a->v), out);
	return sb_add(out, sb_str(&a->text), a->text.n);
}

static fv_config_node *string_node(const char *s, bool quoted)
{
	return fv__node_new_scalar(NULL, s, strlen(s), quoted, NULL, 0);
}

static fv_status own_string(value *out, const char *s, bool quoted)
{
	out->own = string_node(s, quoted);
	return out->own ? FV_OK : fv_errcode();
}

static bool arg_is_null(const arg *a)
{
	if (value_node(&a->v) != NULL)
		return value_node(&a->v)->type == FV_NODE_NULL;
	return !a->quoted && fv__scalar_is_null(sb_str(&a->text));
}

static fv_status res_env(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	(void)r;
	if (n < 1 || n > 2)
		return at_error(user, FV_ERR_CONFIG, "${oc.env:VAR} or ${oc.env:VAR,default} take one "
		                "or two arguments, got %d", n);
	sbuf name = {0};
	fv_status st = arg_text(user, &args[0], &name);
	const char *v = st == FV_OK ? getenv(sb_str(&name)) : NULL;
	if (st != FV_OK) {
		/* reported by arg_text */
	} else if (v != NULL) {
		st = own_string(out, v, true);
	} else if (n == 2 && arg_is_null(&args[1])) {
		out->own = fv__node_new(NULL, FV_NODE_NULL, NULL, 0);
		st = out->own ? FV_OK : fv_errcode();
	} else if (n == 2) {
		sbuf def = {0};
		if ((st = arg_text(user, &args[1], &def)) == FV_OK)
			st = own_string(out, sb_str(&def), true);
		free(def.d);
	} else {
		st = at_error(user, FV_ERR_CONFIG, "environment variable '%s' is not set "
		              "(${oc.env:%s}); set it or give a default: ${oc.env:%s,default}",
		              sb_str(&name), sb_str(&name), sb_str(&name));
	}
	free(name.d);
	return st;
}

static fv_status res_select(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	if (n < 1 || n > 2)
		return at_error(user, FV_ERR_CONFIG, "${oc.select:key,default} takes one or two "
		                "arguments, got %d", n);
	sbuf key = {0};
	fv_status st = arg_text(user, &args[0], &key);
	fv_config_node *found = NULL;
	if (st == FV_OK) {
		fv_status w = walk(r, user, sb_str(&key), &found);
		if (w != FV_OK && w != FV_ERR_CONFIG)
			st = w;
		if (w == FV_ERR_CONFIG)
			found = NULL;
		if (found != NULL)
			st = check_not_enclosing(user, sb_str(&key), found);
	}
	free(key.d);
	if (st != FV_OK)
		return st;
	if (found != NULL && !fv__node_is_missing(found)) {
		if ((st = ensure_resolved(r, found, user)) != FV_OK)
			return st;
		st = resolve_tree(r, found);
		if (st != FV_OK && st != DEFER)
			return st;
		out->ref = found;
		return FV_OK;
	}
	if (n == 1) {
		out->own = fv__node_new(NULL, FV_NODE_NULL, NULL, 0);
		return out->own ? FV_OK : fv_errcode();
	}
	if (value_node(&args[1].v) != NULL) {
		*out = args[1].v;
		args[1].v = (value){0};
		return FV_OK;
	}
	if (arg_is_null(&args[1])) {
		out->own = fv__node_new(NULL, FV_NODE_NULL, NULL, 0);
		return out->own ? FV_OK : fv_errcode();
	}
	return own_string(out, sb_str(&args[1].text), args[1].quoted);
}

static fv_status res_decode(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	(void)r;
	if (n != 1)
		return at_error(user, FV_ERR_CONFIG, "${oc.decode:text} takes one argument, got %d", n);
	sbuf text = {0};
	fv_status st = arg_text(user, &args[0], &text);
	if (st == FV_OK) {
		out->own = fv__override_value(NULL, sb_str(&text), "the decoded text");
		if (out->own == NULL)
			st = fv_error_at(user, fv_errcode(), "%s: ${oc.decode:...}: %s", fv__node_name(user),
			                 fv_errmsg());
		else /* a decoded value is written where the interpolation is */
			fv__node_take_places(out->own, NULL, user);
	}
	free(text.d);
	return st;
}

static fv_status res_len(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	(void)r;
	if (n != 1)
		return at_error(user, FV_ERR_CONFIG, "${len:...} takes one argument, got %d", n);
	const fv_config_node *v = value_node(&args[0].v);
	size_t len;
	if (v != NULL && (v->type == FV_NODE_SEQ || v->type == FV_NODE_MAP))
		len = v->n;
	else if (v != NULL && v->type == FV_NODE_SCALAR)
		len = strlen(v->text);
	else if (v == NULL)
		len = args[0].text.n;
	else
		return at_error(user, FV_ERR_CONFIG, "${len:...} of null");
	char buf[32];
	snprintf(buf, sizeof buf, "%zu", len);
	return own_string(out, buf, false);
}

/* strftime of one instant for the whole configuration, as Hydra caches it */
static void format_now(resolver *r, const char *fmt, char *buf, size_t size)
{
	if (!r->cfg->have_now) {
		r->cfg->now = time(NULL);
		r->cfg->have_now = true;
	}
	struct tm tm;
	localtime_r(&r->cfg->now, &tm);
	size_t len = fmt[0] ? strftime(buf, size, fmt, &tm) : 0;
	buf[len] = '\0';
}

static fv_status res_now(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	if (n > 1)
		return at_error(user, FV_ERR_CONFIG, "${now:FORMAT} takes one argument, got %d", n);
	sbuf fmt = {0};
	fv_status st = n == 1 ? arg_text(user, &args[0], &fmt) : sb_add(&fmt, "%Y-%m-%d_%H-%M-%S", 17);
	if (st != FV_OK) {
		free(fmt.d);
		return st;
	}
	char buf[512];
	format_now(r, sb_str(&fmt), buf, sizeof buf);
	free(fmt.d);
	return own_string(out, buf, true);
}

/* Hydra's own values: fovea has no Hydra runtime, but the output directory
** is hydra.run.dir as Hydra would compute it (with Hydra's default,
** outputs/DATE/TIME, when the configuration does not set it). */
static fv_status res_hydra(resolver *r, const fv_config_node *user, arg *args, int n, value *out)
{
	if (n != 1)
		return at_error(user, FV_ERR_CONFIG, "${hydra:key} takes one argument, got %d", n);
	sbuf key = {0}, path = {0};
	fv_status st = arg_text(user, &args[0], &key);
	if (st == FV_OK && strcmp(sb_str(&key), "runtime.cwd") == 0) {
		char cwd[4096];
		st = own_string(out, getcwd(cwd, sizeof cwd) ? cwd : ".", true);
	} else if (st == FV_OK) {
		const char *k = strcmp(sb_str(&key), "runtime.output_dir") == 0 ? "run.dir" : sb_str(&key);
		if ((st = sb_add(&path, "hydra.", 6)) == FV_OK && (st = sb_add(&path, k, strlen(k))) == FV_OK) {
			fv_config_node *found = NULL;
			bool output_dir = strcmp(k, "run.dir") == 0;
			bool have = fv_node_path(fv_node_get(r->cfg->root, "hydra"), k) != NULL;
			if (output_dir && !have) {
				char buf[512];
				format_now(r, "outputs/%Y-%m-%d/%H-%M-%S", buf, sizeof buf);
				st = own_string(out, buf, true);
			} else if (walk(r, user, sb_str(&path), &found) != FV_OK)
				st = at_error(user, FV_ERR_CONFIG, "${hydra:%s}: fovea has no Hydra runtime; it "
				              "knows runtime.output_dir, runtime.cwd and the keys under 'hydra' in "
				              "the configuration, and '%s' is none of them", sb_str(&key),
				              sb_str(&path));
			else
				st = lookup(r, user, sb_str(&path), out);
		}
	}
	free(key.d);
	free(path.d);
	return st;
}

typedef fv_status (*resolver_fn)(resolver *, const fv_config_node *, arg *, int, value *);

static const struct {
	const char *name;
	resolver_fn fn;
} resolvers[] = {
	{"oc.env", res_env},   {"oc.select", res_select}, {"oc.decode", res_decode},
	{"len", res_len},      {"now", res_now},          {"hydra", res_hydra},
};

/* ---- the interpolation grammar -------------------------------------------------------------- */

static fv_status eval_interp(resolver *r, fv_config_node *user, const char *s, size_t *pos, value *out);

static bool starts_interp(const char *s, size_t i)
{
	return s[i] == '$' && s[i + 1] == '{';
}

/* Text up to one of `stops` at this level, interpolations rendered. */
static fv_status eval_text(resolver *r, fv_config_node *user, const char *s, size_t *pos,
                           const char *stops, sbuf *out)
{
	size_t i = *pos;
	fv_status st = FV_OK;
	while (st == FV_OK && s[i] != '\0' && strchr(stops, s[i]) == NULL) {
		if (s[i] == '\\' && starts_interp(s, i + 1)) {
			st = sb_add(out, "${", 2);
			i += 3;
		} else if (starts_interp(s, i)) {
			value v = {0};
			size_t before = out->n;
			if ((st = eval_interp(r, user, s, &i, &v)) == FV_OK &&
			    (st = render(user, value_node(&v), out)) == FV_OK)
				st = charge(r, user, out->n - before);
			value_clear(&v);
		} else {
			st = sb_add(out, s + i, 1);
			i++;
		}
	}
	*pos = i;
	return st;
}

static void trim(sbuf *b)
{
	if (b->d == NULL)
		return;
	size_t start = 0;
	while (start < b->n && (b->d[start] == ' ' || b->d[start] == '\t'))
		start++;
	while (b->n > start && (b->d[b->n - 1] == ' ' || b->d[b->n - 1] == '\t'))
		b->n--;
	memmove(b->d, b->d + start, b->n - start);
	b->n -= start;
	b->d[b->n] = '\0';
}

static void skip_blanks(const char *s, size_t *i)
{
	while (s[*i] == ' ' || s[*i] == '\t')
		(*i)++;
}

static fv_status parse_arg(resolver *r, fv_config_node *user, const char *s, size_t *pos, arg *a)
{
	size_t i = *pos;
	fv_status st = FV_OK;
	skip_blanks(s, &i);
	if (s[i] == '\'' || s[i] == '"') {
		char q = s[i++];
		char stop[3] = {q, '\\', '\0'};
		a->quoted = true;
		while (st == FV_OK && s[i] != q) {
			if (s[i] == '\0')
				return at_error(user, FV_ERR_CONFIG, "unterminated quote in '%s'", s);
			if (s[i] == '\\' && (s[i + 1] == q || s[i + 1] == '\\')) {
				st = sb_add(&a->text, s + i + 1, 1);
				i += 2;
			} else if (s[i] == '\\' && starts_interp(s, i + 1)) {
				st = sb_add(&a->text, "${", 2);
				i += 3;
			} else if (s[i] == '\\') {
				st = sb_add(&a->text, "\\", 1);
				i++;
			} else {
				st = eval_text(r, user, s, &i, stop, &a->text);
			}
		}
		if (st != FV_OK)
			return st;
		i++;
		skip_blanks(s, &i);
	} else if (starts_interp(s, i)) {
		size_t start = i;
		if ((st = eval_interp(r, user, s, &i, &a->v)) != FV_OK)
			return st;
		skip_blanks(s, &i);
		if (s[i] != ',' && s[i] != '}') {
			/* more text follows: the argument is a string after all */
			if ((st = render(user, value_node(&a->v), &a->text)) != FV_OK)
				return st;
			value_clear(&a->v);
			i = start;
			a->text.n = 0;
			st = eval_text(r, user, s, &i, ",}", &a->text);
			trim(&a->text);
		}
	} else {
		st = eval_text(r, user, s, &i, ",}", &a->text);
		trim(&a->text);
	}
	*pos = i;
	if (st == FV_OK && s[i] == '\0')
		return at_error(user, FV_ERR_CONFIG, "unterminated interpolation in '%s'", s);
	if (st == FV_OK && s[i] != ',' && s[i] != '}')
		return at_error(user, FV_ERR_CONFIG, "unexpected text after an argument in '%s'", s);
	return st;
}

#define MAX_ARGS 8

static fv_status call_resolver(resolver *r, fv_config_node *user, const char *s, size_t *pos,
                               const char *name, value *out)
{
	arg args[MAX_ARGS];
	int n = 0;
	fv_status st = FV_OK;
	memset(args, 0, sizeof args);
	size_t i = *pos;
	skip_blanks(s, &i);
	if (s[i] != '}') {
		for (;;) {
			if (n == MAX_ARGS) {
				st = at_error(user, FV_ERR_CONFIG, "too many arguments for ${%s:...}", name);
				break;
			}
			if ((st = parse_arg(r, user, s, &i, &args[n++])) != FV_OK)
				break;
			if (s[i] == '}')
				break;
			i++; /* ',' */
		}
	}
	if (st == FV_OK) {
		i++; /* '}' */
		size_t k = 0;
		for (; k < sizeof resolvers / sizeof *resolvers; k++)
			if (strcmp(resolvers[k].name, name) == 0)
				break;
		if (k == sizeof resolvers / sizeof *resolvers)
			st = at_error(user, FV_ERR_CONFIG, "unknown resolver '%s' in '%s' (fovea knows "
			              "oc.env, oc.select, oc.decode, len, now, hydra)", name, s);
		else
			st = resolvers[k].fn(r, user, args, n, out);
	}
	for (int k = 0; k < n; k++) {
		value_clear(&args[k].v);
		free(args[k].text.d);
	}
	*pos = i;
	return st;
}

/* s[*pos] is at "${"; on success *pos is just past the matching '}'. */
static fv_status eval_interp(resolver *r, fv_config_node *user, const char *s, size_t *pos, value *out)
{
	size_t i = *pos + 2;
	size_t name_start = i, name_end;
	skip_blanks(s, &name_start);
	i = name_start;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
	       (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-')
		i++;
	name_end = i;
	skip_blanks(s, &i);
	if (s[i] == ':' && name_end > name_start) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(name_end - name_start), s + name_start);
		i++;
		fv_status st = call_resolver(r, user, s, &i, name, out);
		*pos = i;
		return st;
	}
	/* a key path, possibly built from nested interpolations */
	sbuf path = {0};
	i = *pos + 2;
	fv_status st = eval_text(r, user, s, &i, "}", &path);
	if (st == FV_OK && s[i] != '}')
		st = at_error(user, FV_ERR_CONFIG, "unterminated interpolation in '%s'", s);
	if (st == FV_OK) {
		i++;
		trim(&path);
		if (path.n == 0)
			st = at_error(user, FV_ERR_CONFIG, "empty interpolation '${}' in '%s'", s);
		else
			st = lookup(r, user, sb_str(&path), out);
	}
	free(path.d);
	*pos = i;
	return st;
}

/* Is the whole text one interpolation?  Then the value keeps its type. */
static bool whole_interp(const char *s)
{
	if (!starts_interp(s, 0))
		return false;
	int level = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\\' && starts_interp(s, i + 1)) {
			i += 2;
			continue;
		}
		if (starts_interp(s, i)) {
			level++;
			i++;
		} else if (s[i] == '}' && --level == 0) {
			return s[i + 1] == '\0';
		}
	}
	return false;
}

static fv_status assign_value(resolver *r, fv_config_node *n, value *v)
{
	fv_config_node *src = v->own;
	if (src == NULL) {
		int above = 0;
		for (const fv_config_node *p = n->parent; p != NULL; p = p->parent)
			above++;
		if (above + fv__node_depth(v->ref) > FV_CONFIG_MAX_DEPTH)
			return at_error(n, FV_ERR_CONFIG, "interpolation nests values more than %d levels deep",
			                FV_CONFIG_MAX_DEPTH);
		fv_status st = charge(r, n, tree_text_bytes(v->ref));
		if (st != FV_OK)
			return st;
		src = fv__node_copy(r->cfg, v->ref);
		if (src == NULL)
			return fv_errcode();
	} else if (r->cfg != NULL) {
		/* count resolver-built nodes against the configuration too */
		fv_config_node *copy = fv__node_copy(r->cfg, src);
		if (copy == NULL)
			return fv_errcode();
		src = copy;
	}
	fv__node_take_contents(r->cfg, n, src);
	return FV_OK;
}

static fv_status resolve_text(resolver *r, fv_config_node *n)
{
	const char *s = n->text;
	fv_status st;
	if (whole_interp(s)) {
		value v = {0};
		size_t i = 0;
		if ((st = eval_interp(r, n, s, &i, &v)) == FV_OK)
			st = assign_value(r, n, &v);
		value_clear(&v);
		return st;
	}
	sbuf b = {0};
	size_t i = 0;
	st = eval_text(r, n, s, &i, "", &b);
	if (st == FV_OK) {
		char *text = b.d ? b.d : fv__strdup("");
		if (text == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory resolving interpolations");
		free(n->text);
		n->text = text;
		n->quoted = true;
		return FV_OK;
	}
	free(b.d);
	return st;
}

static fv_status resolve_node(resolver *r, fv_config_node *n)
{
	if (n->type != FV_NODE_SCALAR)
		return resolve_tree(r, n);
	if (n->state == FV__NODE_DONE)
		return FV_OK;
	if (n->state == FV__NODE_BUSY)
		return defer(r, cycle_error(r, n));
	if (strstr(n->text, "${") == NULL) {
		n->state = FV__NODE_DONE;
		return FV_OK;
	}
	if (r->depth == MAX_CHAIN)
		return defer(r, at_error(n, FV_ERR_CONFIG, "interpolations refer through more than %d "
		                         "values", MAX_CHAIN));
	r->chain[r->depth++] = n;
	n->state = FV__NODE_BUSY;
	fv_status st = defer(r, resolve_text(r, n));
	r->depth--;
	n->state = st == FV_OK ? FV__NODE_DONE : FV__NODE_TODO;
	free(n->error);
	n->error = st == DEFER ? fv__strdup(r->msg) : NULL;
	return st;
}

static fv_status find_missing(const fv_config_node *n)
{
	if (fv__node_is_missing(n))
		return missing_error(n, NULL);
	for (size_t i = 0; i < n->n; i++) {
		fv_status st = find_missing(n->kids[i]);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

fv_status fv__config_resolve(fv_config *cfg, bool strict)
{
	if (cfg == NULL || cfg->root == NULL)
		return fv_error(FV_ERR_ARG, "fv_config_resolve: no configuration (NULL)");
	resolver r = {.cfg = cfg, .strict = strict};
	fv_status st = resolve_tree(&r, cfg->root);
	if (st == DEFER)
		st = FV_OK;
	if (st == FV_OK && strict)
		st = find_missing(cfg->root);
	return st;
}

fv_status fv_config_resolve(fv_config *cfg)
{
	return fv__config_resolve(cfg, true);
}
