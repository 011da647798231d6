/*
** weight_figures.c: openretina's WeightVisualizationCallback.  At the start
** of a new run ("init"), after every training epoch (call_on_train_epoch_end)
** and after every validation (call_on_validation_epoch_end) of an epoch e
** with e >= start_epoch and e % every_n_epochs == 0, the model's weights are
** drawn into folder_path as openretina's save_weight_visualizations lays
** them out: FOLDER/weights_core/weights_layer_N/ for every core layer N and
** FOLDER/weights_readout/, each file suffixed STAGE_epoch_E.
**
** The figures are fovea's own (framework/figure): each core layer's
** filters and the readout positions.  As in openretina a figure that fails
** is a warning, never the end of the run; folder_path null skips the
** callback.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/figure.h"
#include "train/trainer_internal.h"

typedef struct wv_opts {
	int64_t every_n_epochs, start_epoch;
	bool on_train, on_val;
	const char *folder_path;
} wv_opts;

#define OFF(f) offsetof(wv_opts, f)
const fv_option fv__weight_figures_options[] = {
	{"every_n_epochs", FV_OPT_INT, OFF(every_n_epochs), "1", 1, 1e9, 0, NULL,
	 "draw after every n-th epoch (epoch % n == 0)"},
	{"start_epoch", FV_OPT_INT, OFF(start_epoch), "0", 0, 1e12, 0, NULL,
	 "the first epoch (0-based) drawn"},
	{"call_on_train_epoch_end", FV_OPT_BOOL, OFF(on_train), "true", 0, 0, 0, NULL,
	 "draw after the training epoch (files STAGE train)"},
	{"call_on_validation_epoch_end", FV_OPT_BOOL, OFF(on_val), "false", 0, 0, 0, NULL,
	 "draw after validation (files STAGE val)"},
	{"folder_path", FV_OPT_STRING, OFF(folder_path), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "the directory of the figures (null: no figures)"},
	{0},
};
#undef OFF

static const char *const hydra_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

fv_status fv__weight_figures_open(fv__trainer *t)
{
	const fv_config_node *spec = fv__trainer_callback(fv_config_root(t->cfg),
	                                                  "WeightVisualizationCallback");
	if (spec == NULL)
		return FV_OK;
	wv_opts o = {0};
	fv_status rc = fv_options_parse(fv__weight_figures_options, spec, &o, fv_node_keypath(spec),
	                                hydra_keys);
	if (rc == FV_OK && o.folder_path != NULL && o.folder_path[0] != '\0') {
		t->wv.every = o.every_n_epochs;
		t->wv.start = o.start_epoch;
		t->wv.on_train = o.on_train;
		t->wv.on_val = o.on_val;
		t->wv.dir = fv__strdup(o.folder_path);
		if (t->wv.dir == NULL)
			rc = fv_error(FV_ERR_NOMEM, "out of memory reading WeightVisualizationCallback");
	}
	fv_options_free(fv__weight_figures_options, &o);
	return rc;
}

void fv__weight_figures_free(fv__weight_figures *w)
{
	free(w->dir);
}

/* One figure into FOLDER/SUB/NAME_SUFFIX.png: the readout positions, or
** core layer `layer`'s filters (readout: layer < 0).  A failure is a
** warning; false when the model has no such figure. */
static bool draw(const fv__trainer *t, const char *sub, const char *name, const char *suffix,
                 int64_t layer)
{
	char dir[4200], path[4400];
	snprintf(dir, sizeof dir, "%s/%s", t->wv.dir, sub);
	snprintf(path, sizeof path, "%s/%s_%s.png", dir, name, suffix);
	fv_status rc = fv__make_dirs(dir);
	if (rc == FV_OK)
		rc = layer < 0 ? fv_figure_readout_positions(t->model, t->info, path)
		               : fv_figure_layer_filters_to(t->model, layer, NULL, path);
	if (rc == FV_ERR_NOTFOUND) {
		fv_clear_error(); /* a model without that figure: nothing to draw */
		rmdir(dir);       /* made for it, still empty (else rmdir leaves it) */
		return false;
	}
	if (rc != FV_OK)
		fprintf(stderr, "fovea: warning: failed to plot weight visualization at epoch %lld: %s\n",
		        (long long)t->epochs_done, fv_errmsg());
	return true;
}

/* openretina's _call_visualization with state_suffix STAGE_epoch_E. */
static void visualize(const fv__trainer *t, const char *stage, int64_t epoch)
{
	char suffix[64];
	snprintf(suffix, sizeof suffix, "%s_epoch_%lld", stage, (long long)epoch);
	/* every core layer, as openretina's core draws each of its layers */
	for (int64_t layer = 0;; layer++) {
		char sub[64];
		snprintf(sub, sizeof sub, "weights_core/weights_layer_%lld", (long long)layer);
		if (!draw(t, sub, "filters", suffix, layer))
			break;
	}
	draw(t, "weights_readout", "readout_positions", suffix, -1);
}

void fv__weight_figures_start(const fv__trainer *t)
{
	if (t->wv.dir != NULL && t->epochs_done == 0)
		visualize(t, "init", 0);
}

void fv__weight_figures_epoch(const fv__trainer *t, int64_t epoch, bool validated)
{
	const fv__weight_figures *w = &t->wv;
	if (w->dir == NULL || epoch < w->start || epoch % w->every != 0)
		return;
	/* Lightning: on_validation_epoch_end comes before on_train_epoch_end */
	if (w->on_val && validated)
		visualize(t, "val", epoch);
	if (w->on_train)
		visualize(t, "train", epoch);
}
