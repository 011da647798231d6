/*
** module.c: fv_module, an instantiated component.
**
** A module is what a plugin's create() fills in: private state (`priv`;
** allocated, filled with the options and freed here when the component
** declares priv_size), named tensors (parameters with requires_grad, and buffers such as running
** statistics) and named child modules.  The layout mirrors torch.nn.Module so
** that tensor names are openretina's state_dict names:
**
**   - each tensor's ->name is its full dotted name from the topmost module
**     ("readout.session_1.mask_mean"); the topmost module itself adds no
**     prefix, as torch's state_dict does not;
**   - a module built on its own and adopted later (fv_module_add_child) has
**     its tensors renamed then, so plugins never build prefixes by hand;
**   - visits follow torch's state_dict order: own parameters, own buffers
**     (each in insertion order), then children in insertion order.
**
** Lookups and visits take names relative to the module they are asked
** about; for the topmost module that is the full name.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "tensor/tensor_internal.h"
#include "plugin/plugin_internal.h"
#include "base/base_internal.h"

typedef struct named_tensor {
	char *local;   /* the name given to add_param/add_buffer */
	fv_tensor *t;  /* t->name is the full dotted name */
	bool is_param;
	bool transient; /* outside the state_dict (a non-persistent buffer) */
	size_t reserved; /* memory_limit.c: bytes reserved for its training state */
} named_tensor;

struct fv_module {
	const fv_component *component;
	char *name;        /* its name under its parent, or the instance name */
	char *path;        /* dotted path from the topmost module; "" there */
	fv_module *parent;
	void *priv;
	void *owned_priv;  /* the state the framework allocated (priv_size), or NULL */
	bool training;
	named_tensor *tensors;
	size_t n_tensors, cap_tensors;
	fv_module **children;
	size_t n_children, cap_children;
};

static const char *const kind_names[FV_KIND_COUNT] = {
	[FV_KIND_CORE] = "core",
	[FV_KIND_READOUT] = "readout",
	[FV_KIND_OBJECTIVE] = "objective",
	[FV_KIND_REGULARIZER] = "regularizer",
	[FV_KIND_STOPPER] = "stopper",
	[FV_KIND_LOSS] = "loss",
	[FV_KIND_REDUCER] = "reducer",
	[FV_KIND_MODEL] = "model",
	[FV_KIND_LAYER] = "layer",
	[FV_KIND_DATA] = "data step",
};

const char *fv_kind_name(fv_kind kind)
{
	if ((unsigned)kind >= FV_KIND_COUNT)
		return "unknown kind";
	return kind_names[kind];
}

/* ---- construction (instantiate.c) -------------------------------------------- */

fv_module *fv__module_new(const fv_component *c, const char *name)
{
	fv_module *m = fv__calloc(1, sizeof *m);
	if (m == NULL)
		goto nomem;
	m->component = c;
	m->training = true; /* torch modules start in training mode */
	m->name = fv__strdup(name != NULL ? name : "");
	m->path = fv__strdup("");
	if (m->name == NULL || m->path == NULL) {
		free(m->name);
		free(m->path);
		free(m);
		goto nomem;
	}
	return m;
nomem:
	fv_error(FV_ERR_NOMEM, "out of memory creating module '%s'", name != NULL ? name : "");
	return NULL;
}

void fv__module_own_priv(fv_module *m, void *priv)
{
	m->priv = m->owned_priv = priv;
}

/* ---- simple accessors ---------------------------------------------------------- */

void *fv_module_priv(const fv_module *m)
{
	return m->priv;
}

void fv_module_set_priv(fv_module *m, void *priv)
{
	m->priv = priv;
}

const fv_component *fv_module_component(const fv_module *m)
{
	return m->component;
}

const char *fv_module_name(const fv_module *m)
{
	return m->name;
}

bool fv_module_training(const fv_module *m)
{
	return m->training;
}

void fv_module_set_training(fv_module *m, bool training)
{
	m->training = training;
	for (size_t i = 0; i < m->n_children; i++)
		fv_module_set_training(m->children[i], training);
}

/* ---- names ------------------------------------------------------------------------ */

/* How messages call a module: its name, or its component's for a nameless
** top-level one. */
static const char *label(const fv_module *m)
{
	if (m->name[0] != '\0' || m->component == NULL)
		return m->name;
	return m->component->names[0];
}

/* "prefix.local", or just `local` at the top. */
static char *join_name(const char *prefix, const char *local)
{
	size_t np = strlen(prefix), nl = strlen(local);
	char *s = fv__malloc(np + nl + 2);
	if (s == NULL)
		return NULL;
	if (np > 0) {
		memcpy(s, prefix, np);
		s[np++] = '.';
	}
	memcpy(s + np, local, nl + 1);
	return s;
}

static fv_status set_full_name(fv_tensor *t, const char *path, const char *local)
{
	char *full = join_name(path, local);
	if (full == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory naming tensor '%s'", local);
	fv_status st = fv_tensor_set_name(t, full);
	free(full);
	return st;
}

/* Re-derive the path of `m` (under `parent_path`) and of everything below,
** renaming their tensors.  Called when a subtree gets a new parent. */
static fv_status rename_subtree(fv_module *m, const char *parent_path)
{
	char *path = m->parent != NULL ? join_name(parent_path, m->name) : fv__strdup("");
	if (path == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory naming module '%s'", m->name);
	free(m->path);
	m->path = path;
	for (size_t i = 0; i < m->n_tensors; i++) {
		fv_status st = set_full_name(m->tensors[i].t, m->path, m->tensors[i].local);
		if (st != FV_OK)
			return st;
	}
	for (size_t i = 0; i < m->n_children; i++) {
		fv_status st = rename_subtree(m->children[i], m->path);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

static bool name_taken(const fv_module *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].local, name) == 0)
			return true;
	for (size_t i = 0; i < m->n_children; i++)
		if (strcmp(m->children[i]->name, name) == 0)
			return true;
	return false;
}

static fv_status check_new_name(const fv_module *m, const char *name, const char *what)
{
	if (name == NULL || name[0] == '\0')
		return fv_error(FV_ERR_ARG, "module '%s': a %s needs a non-empty name", label(m), what);
	if (name_taken(m, name))
		return fv_error(FV_ERR_ARG, "module '%s': cannot add %s '%s': the name is already used",
		                label(m), what, name);
	return FV_OK;
}

/* ---- tensors --------------------------------------------------------------------- */

static fv_status grow(void **items, size_t *cap, size_t n, size_t item_size)
{
	if (n < *cap)
		return FV_OK;
	size_t cap2 = *cap ? 2 * *cap : 8;
	void *p = fv__realloc(*items, cap2 * item_size);
	if (p == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory growing a module");
	*items = p;
	*cap = cap2;
	return FV_OK;
}

static fv_tensor *add_tensor(fv_module *m, const char *name, int ndim, const int64_t *shape,
                             bool is_param, bool transient)
{
	const char *what = is_param ? "parameter" : "buffer";
	if (check_new_name(m, name, what) != FV_OK)
		return NULL;
	if (grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors) != FV_OK)
		return NULL;
	/* a parameter costs four copies in training: itself, its gradient and
	** Adam's two moments.  The three to come are reserved as soon as it
	** exists, so that the next parameter's check counts them: a core
	** creates all its weights before it fills any, and filling gigabytes
	** of random numbers is what a refusal must come before. */
	double bytes = (double)sizeof(fv_real);
	for (int i = 0; i < ndim && shape != NULL; i++)
		bytes *= shape[i] > 0 ? (double)shape[i] : 0.0;
	if (is_param && fv__memory_check(4 * bytes, "with its gradient and optimizer state, it") !=
	                        FV_OK) {
		fv_error_prefix("module '%s', %s '%s' of shape %s: ", label(m), what, name,
		                fv_shape_str(ndim, shape));
		return NULL;
	}
	fv_tensor *t = fv_tensor_new(ndim, shape);
	if (t == NULL) {
		fv_error_prefix("module '%s', %s '%s': ", label(m), what, name);
		return NULL;
	}
	char *local = fv__strdup(name);
	if (local == NULL || set_full_name(t, m->path, name) != FV_OK) {
		free(local);
		fv_tensor_free(t);
		fv_error(FV_ERR_NOMEM, "out of memory adding %s '%s'", what, name);
		return NULL;
	}
	t->requires_grad = is_param;
	size_t reserved = is_param ? 3 * (size_t)t->numel * sizeof(fv_real) : 0;
	fv__memory_reserve(reserved);
	m->tensors[m->n_tensors++] = (named_tensor){.local = local, .t = t, .is_param = is_param,
	                                            .transient = transient, .reserved = reserved};
	return t;
}

fv_tensor *fv_module_add_param(fv_module *m, const char *name, int ndim, const int64_t *shape)
{
	return add_tensor(m, name, ndim, shape, true, false);
}

fv_tensor *fv_module_add_buffer(fv_module *m, const char *name, int ndim, const int64_t *shape)
{
	return add_tensor(m, name, ndim, shape, false, false);
}

/* Transient state may change shape from call to call (a loss sees sessions
** with different neuron counts): the tensor is replaced, keeping its name. */
fv_tensor *fv_module_set_state(fv_module *m, const char *name, int ndim, const int64_t *shape)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		named_tensor *nt = &m->tensors[i];
		if (!nt->transient || strcmp(nt->local, name) != 0)
			continue;
		if (nt->t->ndim == ndim && memcmp(nt->t->shape, shape, (size_t)ndim * sizeof *shape) == 0)
			return nt->t;
		fv_tensor *t = fv_tensor_new(ndim, shape);
		if (t == NULL || set_full_name(t, m->path, name) != FV_OK) {
			fv_tensor_free(t);
			return NULL;
		}
		fv_tensor_free(nt->t);
		nt->t = t;
		return t;
	}
	return add_tensor(m, name, ndim, shape, false, true);
}

/* ---- children --------------------------------------------------------------------- */

static bool is_ancestor_or_self(const fv_module *a, const fv_module *m)
{
	for (; m != NULL; m = m->parent)
		if (m == a)
			return true;
	return false;
}

/* Takes ownership of `child` whatever happens, so that callers may write
** `return fv_module_add_child(m, "x", fv_instantiate(...));` without a
** leak on any path.  The exceptions are misuse that would make freeing
** wrong: a child that already has a parent, or a cycle. */
fv_status fv_module_add_child(fv_module *m, const char *name, fv_module *child)
{
	if (child == NULL) {
		/* The failure that produced NULL already explained itself, unless
		** there was none (a caller's mistake). */
		if (fv_errcode() == FV_OK)
			return fv_error(FV_ERR_ARG, "module '%s': child '%s' is NULL", label(m),
			                name != NULL ? name : "");
		fv_error_prefix("module '%s', child '%s': ", label(m), name != NULL ? name : "");
		return fv_errcode();
	}
	if (child->parent != NULL)
		return fv_error(FV_ERR_ARG, "module '%s': cannot adopt '%s': it already has a parent",
		                label(m), label(child));
	if (is_ancestor_or_self(child, m))
		return fv_error(FV_ERR_ARG,
		                "module '%s': cannot adopt '%s': it is the module itself or its "
		                "ancestor",
		                label(m), label(child));
	fv_status st = check_new_name(m, name, "child");
	char *copy = NULL;
	if (st == FV_OK)
		st = grow((void **)&m->children, &m->cap_children, m->n_children,
		          sizeof *m->children);
	if (st == FV_OK && (copy = fv__strdup(name)) == NULL)
		st = fv_error(FV_ERR_NOMEM, "out of memory adding child '%s'", name);
	if (st != FV_OK) {
		fv_module_free(child);
		return st;
	}
	free(child->name);
	child->name = copy;
	child->parent = m;
	m->children[m->n_children++] = child;
	return rename_subtree(child, m->path);
}

fv_module *fv_module_child(const fv_module *m, const char *name)
{
	for (size_t i = 0; i < m->n_children; i++)
		if (strcmp(m->children[i]->name, name) == 0)
			return m->children[i];
	return NULL;
}

/* ---- lookup and visits ------------------------------------------------------------ */

fv_tensor *fv_module_tensor(const fv_module *m, const char *name)
{
	/* Own tensors first: a plugin may name a tensor with dots itself. */
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].local, name) == 0)
			return m->tensors[i].t;
	for (size_t i = 0; i < m->n_children; i++) {
		const fv_module *c = m->children[i];
		size_t n = strlen(c->name);
		if (strncmp(name, c->name, n) == 0 && name[n] == '.') {
			fv_tensor *t = fv_module_tensor(c, name + n + 1);
			if (t != NULL)
				return t;
		}
	}
	return NULL;
}

static int visit(const fv_module *m, size_t strip, fv_tensor_visit_fn fn, void *ud)
{
	for (int want_param = 1; want_param >= 0; want_param--) {
		for (size_t i = 0; i < m->n_tensors; i++) {
			const named_tensor *nt = &m->tensors[i];
			if (nt->is_param != (bool)want_param || nt->transient)
				continue;
			int rc = fn(ud, nt->t->name + strip, nt->t, nt->is_param);
			if (rc != 0)
				return rc;
		}
	}
	for (size_t i = 0; i < m->n_children; i++) {
		int rc = visit(m->children[i], strip, fn, ud);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Stops at, and returns, the first non-zero value `fn` returns. */
int fv_module_foreach_tensor(const fv_module *m, fv_tensor_visit_fn fn, void *ud)
{
	size_t strip = strlen(m->path);
	if (strip > 0)
		strip++; /* the dot after m's own path */
	return visit(m, strip, fn, ud);
}

/* ---- calls --------------------------------------------------------------------------- */

static void missing_slot(const fv_module *m, const char *slot)
{
	const fv_component *c = m->component;
	fv_error(FV_ERR_ARG, "%s '%s' (%s) has no %s", fv_kind_name(c->kind), c->names[0], m->name,
	         slot);
}

fv_tensor *fv_module_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	if (!FV__HAS_SLOT(m->component, forward)) {
		missing_slot(m, "forward");
		return NULL;
	}
	FV_CHECK_INPUT(x);
	fv_forward_args dflt = FV_FORWARD_ARGS_INIT;
	return m->component->forward(m, ctx, x, fa != NULL ? fa : &dflt);
}

fv_tensor *fv_module_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	if (!FV__HAS_SLOT(m->component, regularizer)) {
		missing_slot(m, "regularizer");
		return NULL;
	}
	fv_forward_args dflt = FV_FORWARD_ARGS_INIT;
	return m->component->regularizer(m, ctx, fa != NULL ? fa : &dflt);
}

/* ---- freeing --------------------------------------------------------------------------- */

void fv_module_free(fv_module *m)
{
	if (m == NULL)
		return;
	/* The plugin's state may point at tensors and children: free it first,
	** what the plugin allocated itself, then what the framework did.  (The
	** plugin may have replaced priv with fv_module_set_priv; owned_priv is
	** what was allocated here.) */
	if (m->component != NULL && m->component->destroy != NULL)
		m->component->destroy(m);
	if (m->owned_priv != NULL) {
		fv__options_release(m->component->options, m->owned_priv);
		free(m->owned_priv);
	}
	for (size_t i = 0; i < m->n_children; i++)
		fv_module_free(m->children[i]);
	for (size_t i = 0; i < m->n_tensors; i++) {
		fv__memory_unreserve(m->tensors[i].reserved);
		fv_tensor_free(m->tensors[i].t);
		free(m->tensors[i].local);
	}
	free(m->children);
	free(m->tensors);
	free(m->name);
	free(m->path);
	free(m);
}
