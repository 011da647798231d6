/*
** registry.c: finding, loading and checking plugins; looking components up.
**
** A plugin file is dlopen'ed with RTLD_LOCAL (two plugins may use the same
** static helper names) and RTLD_NOW (a missing symbol is reported at load
** time, naming the file, rather than as a crash mid-training).  Everything a
** plugin declares is checked before any of it is registered, so a bad file
** leaves the registry as it was.
**
** Each component is copied into a full-size, zero-filled fv_component: a
** plugin built against an older, shorter struct then simply has NULL in the
** slots added since (and priv_size 0: the 1.0 behaviour), and nothing reads
** past what the plugin provided.
**
** What a component declares is checked here, at load, rather than when a
** configuration first uses it: its size, names and kind, the callbacks its
** kind is used through, and that every option fits in the struct it is
** parsed into.
*/
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fovea/plugin.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"
#include "plugin/plugin_internal.h"

/* ABI 1.0's fv_component ends with `objective`; later minors may only add
** fields after it, so no valid plugin declares less than this. */
#define COMPONENT_MIN_SIZE (offsetof(fv_component, objective) + sizeof(void (*)(void)))

typedef struct loaded_plugin {
	void *handle; /* NULL for plugins registered from memory */
	char *origin; /* the file, or what fv_registry_add was told */
} loaded_plugin;

typedef struct entry {
	fv_component c;              /* the full-size copy */
	const loaded_plugin *from;
} entry;

struct fv_registry {
	loaded_plugin **plugins;
	size_t n_plugins, cap_plugins;
	entry **entries; /* pointers, so components never move */
	size_t n_entries, cap_entries;
};

fv_registry *fv_registry_new(void)
{
	fv_registry *reg = fv__calloc(1, sizeof *reg);
	if (reg == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory creating the plugin registry");
	return reg;
}

/* Modules point into the registry (their component) and into plugin code:
** free every module made from it first. */
void fv_registry_free(fv_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->n_entries; i++)
		free(reg->entries[i]);
	for (size_t i = 0; i < reg->n_plugins; i++) {
		if (reg->plugins[i]->handle != NULL)
			dlclose(reg->plugins[i]->handle);
		free(reg->plugins[i]->origin);
		free(reg->plugins[i]);
	}
	free(reg->entries);
	free(reg->plugins);
	free(reg);
}

/* ---- lookups ------------------------------------------------------------------ */

static const entry *find_entry(const fv_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n_entries; i++)
		for (const char *const *n = reg->entries[i]->c.names; *n != NULL; n++)
			if (strcmp(*n, name) == 0)
				return reg->entries[i];
	return NULL;
}

const fv_component *fv_registry_find(const fv_registry *reg, const char *name, const char **file)
{
	const entry *e = name != NULL ? find_entry(reg, name) : NULL;
	if (e == NULL)
		return NULL;
	if (file != NULL)
		*file = e->from->origin;
	return &e->c;
}

size_t fv_registry_size(const fv_registry *reg)
{
	return reg->n_entries;
}

const fv_component *fv_registry_at(const fv_registry *reg, size_t i, const char **file)
{
	if (i >= reg->n_entries)
		return NULL;
	if (file != NULL)
		*file = reg->entries[i]->from->origin;
	return &reg->entries[i]->c;
}

const char *fv_registry_closest(const fv_registry *reg, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < reg->n_entries; i++)
		for (const char *const *p = reg->entries[i]->c.names; *p != NULL; p++)
			n++;
	if (n == 0 || name == NULL)
		return NULL;
	const char **all = fv__malloc(n * sizeof *all);
	if (all == NULL)
		return NULL;
	n = 0;
	for (size_t i = 0; i < reg->n_entries; i++)
		for (const char *const *p = reg->entries[i]->c.names; *p != NULL; p++)
			all[n++] = *p;
	const char *best = fv_closest_name(name, all, n);
	free(all);
	return best;
}

/* ---- checking what a plugin declares --------------------------------------------- */

static size_t option_value_size(fv_opt_type type)
{
	switch (type) {
	case FV_OPT_BOOL: return sizeof(bool);
	case FV_OPT_INT: return sizeof(int64_t);
	case FV_OPT_FLOAT: return sizeof(double);
	case FV_OPT_STRING:
	case FV_OPT_ENUM: return sizeof(const char *);
	case FV_OPT_INT_LIST: return sizeof(fv_int_list);
	case FV_OPT_FLOAT_LIST: return sizeof(fv_float_list);
	case FV_OPT_NODE: return sizeof(const fv_config_node *);
	case FV_OPT_KWARGS: return 0;
	}
	return 0;
}

/* The framework writes parsed options at the offsets the table gives, into
** the private state (priv_size) or, for a 1.0 component, a struct of
** options_size: check they fit, so a wrong table is an error, not memory
** corruption. */
static fv_status check_options(const fv_component *c, const char *origin)
{
	size_t priv_size = fv__priv_size(c);
	size_t size = priv_size > 0 ? priv_size : c->options_size;
	const char *size_name = priv_size > 0 ? "priv_size" : "options_size";
	if (priv_size > 0 && c->options_size != 0)
		return fv_error(FV_ERR_PLUGIN,
		                "%s: component '%s' declares both priv_size %zu and options_size %zu; "
		                "with priv_size the options are parsed into the private state: set "
		                "options_size to 0",
		                origin, c->names[0], priv_size, c->options_size);
	if (c->options == NULL)
		return FV_OK;
	for (const fv_option *o = c->options; o->name != NULL; o++) {
		if (o->type == FV_OPT_KWARGS)
			continue; /* a row without a value */
		size_t value_size = option_value_size(o->type);
		if (value_size == 0)
			return fv_error(FV_ERR_PLUGIN, "%s: component '%s', option '%s': unknown type %d",
			                origin, c->names[0], o->name, (int)o->type);
		if (o->offset > size || value_size > size - o->offset)
			return fv_error(FV_ERR_PLUGIN,
			                "%s: component '%s', option '%s': offset %zu does not fit in "
			                "%s %zu",
			                origin, c->names[0], o->name, o->offset, size_name, size);
		if (o->type == FV_OPT_ENUM && (o->choices == NULL || o->choices[0] == '\0'))
			return fv_error(FV_ERR_PLUGIN,
			                "%s: component '%s', option '%s': an enum needs its choices",
			                origin, c->names[0], o->name);
	}
	return FV_OK;
}

/* The callback each kind is used through (see fv_component in plugin.h):
** a component without it could be registered and configured, then fail at
** its first use, long into a run. */
static const char *missing_callback(const fv_component *c)
{
	switch (c->kind) {
	case FV_KIND_CORE:
	case FV_KIND_READOUT:
	case FV_KIND_REDUCER:
	case FV_KIND_MODEL:
	case FV_KIND_LAYER: return c->forward == NULL ? "forward()" : NULL;
	case FV_KIND_LOSS: return c->loss == NULL ? "loss()" : NULL;
	case FV_KIND_REGULARIZER:
		return c->penalty == NULL && c->project == NULL ? "penalty() or project()" : NULL;
	case FV_KIND_STOPPER: return c->should_stop == NULL ? "should_stop()" : NULL;
	case FV_KIND_OBJECTIVE: return c->objective == NULL ? "objective()" : NULL;
	case FV_KIND_DATA: return !FV__HAS_SLOT(c, data_step) ? "data_step()" : NULL;
	case FV_KIND_COUNT: break;
	}
	return NULL;
}

/* What a component is: big enough to be read, named, of a known kind.
** Checked before its names are compared with the registry's. */
static fv_status check_identity(const fv_component *c, size_t i, const char *origin)
{
	if (c == NULL)
		return fv_error(FV_ERR_PLUGIN, "%s: component #%zu is NULL", origin, i);
	if (c->struct_size < COMPONENT_MIN_SIZE)
		return fv_error(FV_ERR_PLUGIN,
		                "%s: component #%zu has struct_size %zu, smaller than the %zu bytes "
		                "of ABI %d.0; rebuild the plugin against fovea's headers",
		                origin, i, c->struct_size, COMPONENT_MIN_SIZE, FV_ABI_MAJOR);
	if (c->names == NULL || c->names[0] == NULL || c->names[0][0] == '\0')
		return fv_error(FV_ERR_PLUGIN, "%s: component #%zu declares no name", origin, i);
	if ((unsigned)c->kind >= FV_KIND_COUNT)
		return fv_error(FV_ERR_PLUGIN, "%s: component '%s' has an unknown kind %d", origin,
		                c->names[0], (int)c->kind);
	return FV_OK;
}

/* What a component does: its callbacks and its option table. */
static fv_status check_contents(const fv_component *c, const char *origin)
{
	const char *missing = missing_callback(c);
	if (missing != NULL)
		return fv_error(FV_ERR_PLUGIN, "%s: %s '%s' has no %s, which every %s needs", origin,
		                fv_kind_name(c->kind), c->names[0], missing, fv_kind_name(c->kind));
	return check_options(c, origin);
}

/* Every name must be new: against the registry and within the plugin. */
static fv_status check_names(const fv_registry *reg, const fv_plugin *p, size_t i,
                             const char *origin)
{
	for (const char *const *n = p->components[i]->names; *n != NULL; n++) {
		const entry *e = find_entry(reg, *n);
		if (e != NULL)
			return fv_error(FV_ERR_PLUGIN, "name '%s' of %s is already registered by %s", *n,
			                origin, e->from->origin);
		/* Earlier names of this plugin: every name of the components
		** before i, and the names of component i before n. */
		for (size_t j = 0; j <= i; j++) {
			const char *const *names = p->components[j]->names;
			for (size_t k = 0; names[k] != NULL && (j < i || names + k < n); k++)
				if (strcmp(names[k], *n) == 0)
					return fv_error(FV_ERR_PLUGIN, "%s: name '%s' is declared twice",
					                origin, *n);
		}
	}
	return FV_OK;
}

static fv_status check_plugin(const fv_registry *reg, const fv_plugin *p, const char *origin)
{
	if (p == NULL)
		return fv_error(FV_ERR_PLUGIN, "%s: " FV_PLUGIN_ENTRY_SYMBOL "() returned NULL", origin);
	if (p->abi_major != FV_ABI_MAJOR)
		return fv_error(FV_ERR_PLUGIN,
		                "%s: plugin ABI %u.%u, this fovea has ABI %d.%d; rebuild the plugin "
		                "against fovea's headers",
		                origin, (unsigned)p->abi_major, (unsigned)p->abi_minor, FV_ABI_MAJOR,
		                FV_ABI_MINOR);
	if (p->n_components == 0 || p->components == NULL)
		return fv_error(FV_ERR_PLUGIN, "%s: the plugin declares no components", origin);
	for (size_t i = 0; i < p->n_components; i++) {
		fv_status st = check_identity(p->components[i], i, origin);
		if (st == FV_OK)
			st = check_names(reg, p, i, origin);
		if (st == FV_OK)
			st = check_contents(p->components[i], origin);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

/* ---- registering ------------------------------------------------------------------- */

static fv_status reserve(void **items, size_t *cap, size_t need, size_t item_size)
{
	if (need <= *cap)
		return FV_OK;
	size_t cap2 = *cap ? *cap : 16;
	while (cap2 < need)
		cap2 *= 2;
	void *q = fv__realloc(*items, cap2 * item_size);
	if (q == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory growing the plugin registry");
	*items = q;
	*cap = cap2;
	return FV_OK;
}

/* Check, then commit.  On success the registry owns `handle`. */
static fv_status add_plugin(fv_registry *reg, const fv_plugin *p, const char *origin, void *handle)
{
	fv_status st = check_plugin(reg, p, origin);
	if (st != FV_OK)
		return st;
	if (reserve((void **)&reg->plugins, &reg->cap_plugins, reg->n_plugins + 1,
	            sizeof *reg->plugins) != FV_OK ||
	    reserve((void **)&reg->entries, &reg->cap_entries, reg->n_entries + p->n_components,
	            sizeof *reg->entries) != FV_OK)
		return FV_ERR_NOMEM;
	loaded_plugin *lp = fv__calloc(1, sizeof *lp);
	entry **made = fv__calloc(p->n_components, sizeof *made);
	bool ok = lp != NULL && made != NULL && (lp->origin = fv__strdup(origin)) != NULL;
	for (size_t i = 0; ok && i < p->n_components; i++) {
		const fv_component *c = p->components[i];
		ok = (made[i] = fv__calloc(1, sizeof *made[i])) != NULL;
		if (ok) {
			size_t n = c->struct_size < sizeof(fv_component) ? c->struct_size
			                                                  : sizeof(fv_component);
			memcpy(&made[i]->c, c, n);
			made[i]->from = lp;
		}
	}
	if (!ok) {
		for (size_t i = 0; made != NULL && i < p->n_components; i++)
			free(made[i]);
		free(made);
		if (lp != NULL)
			free(lp->origin);
		free(lp);
		return fv_error(FV_ERR_NOMEM, "%s: out of memory registering the plugin", origin);
	}
	lp->handle = handle;
	reg->plugins[reg->n_plugins++] = lp;
	for (size_t i = 0; i < p->n_components; i++)
		reg->entries[reg->n_entries++] = made[i];
	free(made);
	return FV_OK;
}

fv_status fv_registry_add(fv_registry *reg, const fv_plugin *plugin, const char *origin)
{
	return add_plugin(reg, plugin, origin != NULL ? origin : "(in memory)", NULL);
}

static bool already_loaded(const fv_registry *reg, const void *handle)
{
	for (size_t i = 0; i < reg->n_plugins; i++)
		if (reg->plugins[i]->handle == handle)
			return true;
	return false;
}

fv_status fv_registry_load_file(fv_registry *reg, const char *path)
{
	dlerror(); /* clear a stale message */
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char *why = dlerror();
		return fv_error(FV_ERR_PLUGIN, "%s: cannot load plugin: %s", path,
		                why != NULL ? why : "unknown dlopen error");
	}
	/* The same file reached twice (say, also listed in FOVEA_PLUGIN_PATH):
	** dlopen hands back the handle it already gave us. */
	if (already_loaded(reg, handle)) {
		dlclose(handle);
		return FV_OK;
	}
	void *sym = dlsym(handle, FV_PLUGIN_ENTRY_SYMBOL);
	fv_plugin_entry_fn entry_fn;
	memcpy(&entry_fn, &sym, sizeof entry_fn); /* ISO C has no void * -> function cast */
	if (sym == NULL) {
		dlclose(handle);
		return fv_error(FV_ERR_PLUGIN,
		                "%s: not a fovea plugin: it does not export " FV_PLUGIN_ENTRY_SYMBOL
		                "() (declare it with FV_PLUGIN_EXPORT)",
		                path);
	}
	fv_status st = add_plugin(reg, entry_fn(), path, handle);
	if (st != FV_OK)
		dlclose(handle);
	return st;
}

/* ---- directories ----------------------------------------------------------------------- */

typedef struct path_list {
	char **v;
	size_t n, cap;
} path_list;

static void path_list_free(path_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static fv_status path_list_push(path_list *l, const char *dir, const char *name)
{
	if (reserve((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v) != FV_OK)
		return FV_ERR_NOMEM;
	size_t nd = strlen(dir), nn = strlen(name);
	char *s = fv__malloc(nd + nn + 2);
	if (s == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory listing %s", dir);
	memcpy(s, dir, nd);
	s[nd] = '/';
	memcpy(s + nd + 1, name, nn + 1);
	l->v[l->n++] = s;
	return FV_OK;
}

static bool has_so_suffix(const char *name)
{
	size_t n = strlen(name);
	return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

/* Append DIR's *.so files to `files` and, when `dirs` is not NULL, DIR's
** visible subdirectories to `dirs`. */
static fv_status scan_dir(const char *dir, path_list *files, path_list *dirs)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return fv_error(FV_ERR_IO, "%s: cannot open plugin directory", dir);
	fv_status st = FV_OK;
	struct dirent *de;
	while (st == FV_OK && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (has_so_suffix(de->d_name)) {
			st = path_list_push(files, dir, de->d_name);
		} else if (dirs != NULL) {
			st = path_list_push(dirs, dir, de->d_name);
			if (st == FV_OK && !fv__is_dir(dirs->v[dirs->n - 1]))
				free(dirs->v[--dirs->n]);
		}
	}
	closedir(d);
	return st;
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* DIR/x.so and DIR/kind/y.so: the build writes plugins/KIND/NAME.so, and an
** installed tree keeps them flat; both load the same way.  Sorted so that
** the order (and which file a duplicate name blames) never depends on the
** file system. */
fv_status fv_registry_load_dir(fv_registry *reg, const char *dir)
{
	path_list files = {0}, dirs = {0};
	fv_status st = scan_dir(dir, &files, &dirs);
	for (size_t i = 0; st == FV_OK && i < dirs.n; i++)
		st = scan_dir(dirs.v[i], &files, NULL);
	if (st == FV_OK && files.n > 0) { /* qsort takes no NULL array, even empty */
		qsort(files.v, files.n, sizeof *files.v, compare_paths);
		for (size_t i = 0; st == FV_OK && i < files.n; i++)
			if (fv__is_file(files.v[i]))
				st = fv_registry_load_file(reg, files.v[i]);
	}
	path_list_free(&files);
	path_list_free(&dirs);
	return st;
}

/* ---- the default search path --------------------------------------------------------- */

static const char anchor = 0; /* an address inside the framework, for dladdr */

/* Whether the framework code runs from the uninstalled build tree: the
** shared library under BUILD/framework/, or a test program under BUILD/
** that links the framework statically. */
static bool running_from_build_tree(const char *self)
{
	char build_root[PATH_MAX];
	if (realpath(FV_BUILD_PLUGIN_DIR "/..", build_root) == NULL)
		return false;
	size_t n = strlen(build_root);
	return strncmp(self, build_root, n) == 0 && self[n] == '/';
}

/* The directory of built-in plugins.  An installed libfovea looks next to
** itself first (LIBDIR/fovea/plugins), so a relocated or DESTDIR install
** finds its own plugins, then at the configured install prefix. */
static void builtin_dir(char *out, size_t size)
{
	Dl_info info;
	char self[PATH_MAX];
	/* Linked statically into a program (the tests), dladdr names the main
	** program by "" or by its argv[0]; the kernel knows the real file. */
	const char *file = dladdr(&anchor, &info) != 0 ? info.dli_fname : NULL;
	if (file == NULL || strchr(file, '/') == NULL)
		file = "/proc/self/exe";
	if (realpath(file, self) == NULL) {
		snprintf(out, size, "%s", FV_INSTALL_PLUGIN_DIR);
		return;
	}
	if (running_from_build_tree(self)) {
		snprintf(out, size, "%s", FV_BUILD_PLUGIN_DIR);
		return;
	}
	*strrchr(self, '/') = '\0'; /* realpath's result is absolute: there is a slash */
	int len = snprintf(out, size, "%s/fovea/plugins", self);
	if (len < 0 || (size_t)len >= size || !fv__is_dir(out))
		snprintf(out, size, "%s", FV_INSTALL_PLUGIN_DIR);
}

/* One entry of FOVEA_PLUGIN_PATH: a directory, or a single plugin file. */
static fv_status load_path_entry(fv_registry *reg, const char *p)
{
	if (fv__is_dir(p))
		return fv_registry_load_dir(reg, p);
	if (fv__is_file(p))
		return fv_registry_load_file(reg, p);
	return FV_OK; /* missing: skipped, as an empty PATH entry would be */
}

fv_status fv_registry_load_default(fv_registry *reg)
{
	char dir[PATH_MAX];
	builtin_dir(dir, sizeof dir);
	fv_status st = fv__is_dir(dir) ? fv_registry_load_dir(reg, dir) : FV_OK;
	const char *env = getenv("FOVEA_PLUGIN_PATH");
	if (st != FV_OK || env == NULL)
		return st;
	char *copy = fv__strdup(env);
	if (copy == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading FOVEA_PLUGIN_PATH");
	char *save = NULL;
	for (char *p = strtok_r(copy, ":", &save); st == FV_OK && p != NULL;
	     p = strtok_r(NULL, ":", &save))
		st = load_path_entry(reg, p);
	free(copy);
	return st;
}
