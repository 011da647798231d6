/*
** insilico_model.c: fv_model, a trained model as objectives see it, and
** the capture of named intermediate outputs.
**
** An fv_model freezes the module it wraps (eval mode, parameters without
** requires_grad) for as long as it lives: openretina optimises stimuli of a
** model in eval mode and only ever steps the stimulus, and a frozen model
** spares the backward every weight gradient.
**
** Captures replace torch's forward hooks.  A plugin announces its
** intermediate outputs at openretina's module names with
** fv_module_capture(); nothing is recorded unless fv_model_forward_capture()
** is running on this thread, which publishes its request in a thread-local
** pointer for the duration of the forward.  A request names a module (a
** child of the model, found by walking the name's leading components) and
** the point inside it, so the plugin never needs to know where it sits in
** the model.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/insilico.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

struct fv_model {
	fv_module *module;
	bool was_training;
	fv_tensor **frozen; /* parameters whose requires_grad was turned off */
	size_t n_frozen, cap_frozen;
};

/* ---- freezing ------------------------------------------------------------------- */

static int freeze_one(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	fv_model *model = ud;
	if (!is_param || !t->requires_grad)
		return 0;
	if (model->n_frozen == model->cap_frozen) {
		size_t cap = model->cap_frozen ? 2 * model->cap_frozen : 32;
		fv_tensor **p = fv__realloc(model->frozen, cap * sizeof *p);
		if (p == NULL)
			return 1;
		model->frozen = p;
		model->cap_frozen = cap;
	}
	model->frozen[model->n_frozen++] = t;
	t->requires_grad = false;
	return 0;
}

static void thaw(fv_model *model)
{
	for (size_t i = 0; i < model->n_frozen; i++)
		model->frozen[i]->requires_grad = true;
	model->n_frozen = 0;
}

fv_model *fv_model_new(fv_module *module)
{
	if (module == NULL) {
		fv_error(FV_ERR_ARG, "fv_model_new: no model module given");
		return NULL;
	}
	fv_model *model = fv__calloc(1, sizeof *model);
	if (model == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory wrapping model '%s'",
		         fv_module_component(module)->names[0]);
		return NULL;
	}
	model->module = module;
	model->was_training = fv_module_training(module);
	if (fv_module_foreach_tensor(module, freeze_one, model) != 0) {
		thaw(model);
		free(model->frozen);
		free(model);
		fv_error(FV_ERR_NOMEM, "out of memory freezing the parameters of model '%s'",
		         fv_module_component(module)->names[0]);
		return NULL;
	}
	fv_module_set_training(module, false);
	return model;
}

void fv_model_free(fv_model *model)
{
	if (model == NULL)
		return;
	thaw(model);
	fv_module_set_training(model->module, model->was_training);
	free(model->frozen);
	free(model);
}

fv_module *fv_model_module(const fv_model *model)
{
	return model != NULL ? model->module : NULL;
}

fv_tensor *fv_model_forward(fv_model *model, fv_ctx *ctx, fv_tensor *stimulus,
                            const char *data_key)
{
	if (model == NULL) {
		fv_error(FV_ERR_ARG, "model forward: no model given");
		return NULL;
	}
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = data_key;
	return fv_module_forward(model->module, ctx, stimulus, &fa);
}

/* ---- captures --------------------------------------------------------------------- */

#define CAPTURE_NAME_MAX 256
#define CAPTURE_SEEN_MAX 2048

typedef struct capture {
	const fv_ctx *ctx;
	const fv_module *root;
	const fv_module *target; /* the module that announces the point */
	char point[CAPTURE_NAME_MAX]; /* the name relative to target */
	char sep;                /* '.' or '_' (openretina's hook keys) */
	fv_tensor *found;
	char seen[CAPTURE_SEEN_MAX]; /* announced names, for the message */
	size_t seen_len;
} capture;

static _Thread_local capture *active;

/* An announced name (always dotted) against the requested one, whose
** separators may be underscores. */
static bool point_matches(const char *announced, const char *wanted, char sep)
{
	for (; *announced != '\0' && *wanted != '\0'; announced++, wanted++)
		if (*announced != *wanted && !(*announced == '.' && *wanted == sep))
			return false;
	return *announced == *wanted;
}

static void note_seen(capture *c, const fv_module *m, const char *name)
{
	const char *owner = m == c->root ? "" : fv_module_name(m);
	size_t room = sizeof c->seen - c->seen_len;
	int n = snprintf(c->seen + c->seen_len, room, "%s%s%s%s", c->seen_len ? ", " : "", owner,
	                 owner[0] ? "." : "", name);
	if (n > 0 && (size_t)n < room)
		c->seen_len += (size_t)n;
}

void fv_module_capture(fv_module *m, fv_ctx *ctx, const char *name, fv_tensor *t)
{
	capture *c = active;
	if (c == NULL || ctx != c->ctx || m == NULL || name == NULL || t == NULL)
		return;
	note_seen(c, m, name);
	if (m == c->target && point_matches(name, c->point, c->sep))
		c->found = t; /* the last one wins, as a hook keeps the last output */
}

bool fv_module_capturing(const fv_module *m)
{
	(void)m;
	return active != NULL;
}

/* Walk the leading components of `layer` that name children, from the
** model down; the rest names a point inside the module reached. */
static fv_status resolve(capture *c, const char *layer)
{
	c->sep = strchr(layer, '.') == NULL && strchr(layer, '_') != NULL ? '_' : '.';
	const fv_module *m = c->root;
	const char *rest = layer;
	for (const char *p = rest; *p != '\0'; p++) {
		if (*p != c->sep)
			continue;
		char child[CAPTURE_NAME_MAX];
		size_t n = (size_t)(p - rest);
		if (n == 0 || n >= sizeof child)
			continue;
		memcpy(child, rest, n);
		child[n] = '\0';
		fv_module *next = fv_module_child(m, child);
		if (next != NULL) {
			m = next;
			rest = p + 1;
		}
	}
	if (strlen(rest) >= sizeof c->point || rest[0] == '\0')
		return fv_error(FV_ERR_ARG, "layer '%s': expected a module name below the model, such "
		                            "as 'core.features.layer0.conv'",
		                layer);
	c->target = m;
	strcpy(c->point, rest);
	return FV_OK;
}

fv_tensor *fv_model_forward_capture(fv_model *model, fv_ctx *ctx, fv_tensor *stimulus,
                                    const char *data_key, const char *layer,
                                    fv_tensor **captured)
{
	if (captured != NULL)
		*captured = NULL;
	if (model == NULL || layer == NULL || captured == NULL) {
		fv_error(FV_ERR_ARG, "model forward with capture: %s is NULL",
		         model == NULL ? "the model" : layer == NULL ? "the layer name" : "captured");
		return NULL;
	}
	capture *c = fv__calloc(1, sizeof *c);
	if (c == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory capturing layer '%s'", layer);
		return NULL;
	}
	c->ctx = ctx;
	c->root = model->module;
	if (resolve(c, layer) != FV_OK) {
		free(c);
		return NULL;
	}
	capture *outer = active;
	active = c;
	fv_tensor *y = fv_model_forward(model, ctx, stimulus, data_key);
	active = outer;
	if (y != NULL && c->found == NULL) {
		fv_error(FV_ERR_NOTFOUND, "layer '%s' is not an output the model's forward produced "
		                          "(it produced: %s)",
		         layer, c->seen_len ? c->seen : "none");
		y = NULL;
	}
	*captured = y != NULL ? c->found : NULL;
	free(c);
	return y;
}
