/*
** cmd_visualize.c: `fovea visualize CHECKPOINT`, openretina's
** visualize_model_neurons: for every neuron of a session (and, with
** --inner, every channel of every core layer) its MEI, figure and movie,
** plus the model's weight figures, in one directory with an index.html
** that shows them in a grid.  The page uses relative links only, so it
** works opened from the file system.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/figure.h"
#include "insilico_cli.h"

typedef struct vis_entry {
	char *stem, *title;
	double response;
} vis_entry;

typedef struct vis_args {
	ins_args common;
	bool inner;
	const char *movie_format;
	vis_entry *entries;
	size_t n_entries, cap;
	bool failed;
} vis_args;

static int set_option(void *ud, const char *name, const char *value)
{
	vis_args *a = ud;
	if (strcmp(name, "--inner") == 0) {
		a->inner = true;
		return CLI_OK;
	}
	if (strcmp(name, "--movie-format") == 0) {
		if (strcmp(value, "mp4") != 0 && strcmp(value, "gif") != 0 && strcmp(value, "png") != 0)
			return cli_usage_error(&cli_cmd_visualize, "--movie-format '%s': expected mp4, "
			                       "gif or png", value);
		a->movie_format = value;
	}
	return CLI_OK;
}

/* After each MEI (its figures and movie written): an entry for the page. */
static fv_status add_entry(void *ud, const fv_insilico_record *r)
{
	vis_args *a = ud;
	if (a->n_entries == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		vis_entry *e = realloc(a->entries, cap * sizeof *e);
		if (e == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory");
		a->entries = e;
		a->cap = cap;
	}
	vis_entry *e = &a->entries[a->n_entries];
	e->stem = strdup(r->stem);
	e->title = strdup(r->title ? r->title : r->stem);
	e->response = r->final_objective;
	if (e->stem == NULL || e->title == NULL) {
		free(e->stem);
		free(e->title);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	a->n_entries++;
	return FV_OK;
}

/* ---- the page ---------------------------------------------------------------------------- */

static void html_escaped(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

static void html_card(FILE *f, const vis_args *a, const vis_entry *e, const char *fig_ext)
{
	fputs("<figure class=\"card\">\n<figcaption>", f);
	html_escaped(f, e->title);
	fprintf(f, " <small>(response %.4g)</small></figcaption>\n", e->response);
	/* stems are [A-Za-z0-9_.] from session and layer names: safe in an href */
	fprintf(f, "<a href=\"%s.%s\"><img src=\"%s.png\" alt=\"", e->stem, fig_ext, e->stem);
	html_escaped(f, e->title);
	fputs("\"></a>\n", f);
	if (strcmp(a->movie_format, "mp4") == 0)
		fprintf(f, "<video src=\"%s.mp4\" controls loop muted preload=\"metadata\"></video>\n",
		        e->stem);
	else
		fprintf(f, "<img src=\"%s.%s\" alt=\"movie\">\n", e->stem, a->movie_format);
	fprintf(f, "<p><a href=\"%s.npy\">stimulus (.npy)</a> &middot; <a href=\"%s.json\">record "
	        "(.json)</a></p>\n</figure>\n", e->stem, e->stem);
}

static int write_index(const vis_args *a, const char *dir, const char *const *weights,
                       int n_weights)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/index.html", dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return cli_fail("%s: cannot write: %s", path, strerror(errno));
	const char *ext = fv_figure_format_ext(a->common.figure.format);
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
	html_escaped(f, a->common.checkpoint);
	fputs("</title>\n<style>\nbody{font-family:'DejaVu Sans',sans-serif;margin:1.5em}\n"
	      ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));"
	      "gap:1em}\n.card{margin:0;border:1px solid #ccc;padding:.5em}\n"
	      ".card img,.card video{width:100%}\nfigcaption{font-weight:bold}\n</style>\n"
	      "</head>\n<body>\n<h1>", f);
	html_escaped(f, a->common.checkpoint);
	fputs("</h1>\n<h2>Weights</h2>\n<div class=\"grid\">\n", f);
	for (int i = 0; i < n_weights; i++)
		fprintf(f, "<figure class=\"card\"><a href=\"%s.%s\"><img src=\"%s.png\" alt=\"%s\">"
		        "</a></figure>\n", weights[i], ext, weights[i], weights[i]);
	fprintf(f, "</div>\n<h2>Most exciting inputs (%zu)</h2>\n<div class=\"grid\">\n",
	        a->n_entries);
	for (size_t i = 0; i < a->n_entries; i++)
		html_card(f, a, &a->entries[i], ext);
	fputs("</div>\n</body>\n</html>\n", f);
	if (fclose(f) != 0)
		return cli_fail("%s: cannot write: %s", path, strerror(errno));
	if (!a->common.quiet)
		printf("wrote %s\n", path);
	return CLI_OK;
}

/* ---- the work ------------------------------------------------------------------------------- */

/* The first session of the checkpoint, when none is given (copied). */
static char *first_session(const ins_args *a)
{
	fv_checkpoint *c = cli_open_checkpoint(a->checkpoint, a->model);
	if (c == NULL)
		return NULL;
	const fv_data_info *info = fv_checkpoint_data_info(c);
	char *s = info->n_sessions > 0 ? strdup(info->sessions[0]) : NULL;
	if (s == NULL)
		cli_fail("%s: the checkpoint names no session", a->checkpoint);
	fv_checkpoint_close(c);
	return s;
}

/* The inner units: every channel of core.features.layer0, layer1, ...
** until a layer the model does not have (openretina's selection: the
** outputs named "layer" + a number). */
static int run_inner(vis_args *a, fv_registry *reg)
{
	int rc = CLI_OK;
	for (int k = 0; rc == CLI_OK; k++) {
		char layer[64];
		snprintf(layer, sizeof layer, "core.features.layer%d", k);
		fv_insilico_job job = {.kind = FV_INSILICO_INNER_MEI, .layer = layer};
		fv_status st = ins_optimize(&a->common, reg, &job, add_entry, a, NULL);
		/* the pipeline reports a bad layer as an argument error; the
		** capture's own code says the model has no such output */
		if (st != FV_OK && fv_errcode() == FV_ERR_NOTFOUND && k > 0 &&
		    strstr(fv_errmsg(), layer) != NULL) {
			fv_clear_error();
			break;
		}
		if (st != FV_OK)
			rc = cli_fail("%s", fv_errmsg());
	}
	return rc;
}

static int visualize(vis_args *a, fv_registry *reg, const char *dir)
{
	char *session = a->common.session ? NULL : first_session(&a->common);
	if (a->common.session == NULL && session == NULL)
		return CLI_FAILED;
	if (session != NULL)
		a->common.session = session;
	fv_insilico_job job = {.kind = FV_INSILICO_MEI};
	int rc = ins_optimize(&a->common, reg, &job, add_entry, a, NULL) == FV_OK
	             ? CLI_OK
	             : cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && a->inner)
		rc = run_inner(a, reg);
	int n = 0;
	if (rc == CLI_OK)
		rc = cli_write_model_figures_to(reg, a->common.checkpoint, a->common.model, dir, &a->common.figure,
		                                &n);
	/* the page shows PNGs; other formats get a PNG beside them */
	if (rc == CLI_OK && a->common.figure.format != FV_FIGURE_AUTO && a->common.figure.format != FV_FIGURE_PNG) {
		fv_figure_output png = a->common.figure;
		png.format = FV_FIGURE_PNG;
		rc = cli_write_model_figures_to(reg, a->common.checkpoint, a->common.model, dir, &png,
		                                &n);
	}
	const char *weights[2];
	int n_weights = 0;
	char path[4200];
	const char *names[2] = {"readout_positions", "core_filters"};
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s.png", dir, names[i]);
		if (access(path, F_OK) == 0)
			weights[n_weights++] = names[i];
	}
	if (rc == CLI_OK)
		rc = write_index(a, dir, weights, n_weights);
	free(session);
	return rc;
}

static int run_visualize(int argc, char **argv)
{
	static const char *const names[] = {"--movie-format", NULL};
	static const char *const flags[] = {"--inner", NULL};
	vis_args a = {.common = {.cmd = &cli_cmd_visualize}, .movie_format = "mp4"};
	ins_own own = {names, set_option, &a, flags};
	int rc = ins_parse(&a.common, argc, argv, &own);
	if (rc == CLI_OK && a.common.movie != NULL)
		rc = cli_usage_error(&cli_cmd_visualize, "--movie: visualize writes a movie per "
		                     "unit anyway (--movie-format chooses mp4, gif or png)");
	const char *dir = a.common.out_dir ? a.common.out_dir : "visualize";
	a.common.out_dir = dir;
	a.common.movie = a.movie_format;
	if (rc == CLI_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
		rc = cli_fail("%s: cannot create the output directory: %s", dir, strerror(errno));
	if (rc == CLI_OK && a.common.threads > 0)
		fv_set_num_threads(a.common.threads);
	fv_registry *reg = rc == CLI_OK ? cli_load_registry() : NULL;
	if (rc == CLI_OK && reg == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		rc = visualize(&a, reg, dir);
	fv_registry_free(reg);
	for (size_t i = 0; i < a.n_entries; i++) {
		free(a.entries[i].stem);
		free(a.entries[i].title);
	}
	free(a.entries);
	ins_args_free(&a.common);
	return rc;
}

const cli_cmd cli_cmd_visualize = {
	.name = "visualize",
	.summary = "MEI figures and movies of every neuron, weight figures, an index.html",
	.usage = "fovea visualize CHECKPOINT [--out DIR] [--inner] [--session S]\n"
	         "                [--format F] [--movie-format mp4|gif|png] [CONFIG.yaml] [key=value ...]\n"
	         "\n"
	         "openretina visualize: optimise the most exciting input of every neuron of\n"
	         "session S (default: the checkpoint's first) as `fovea mei --neuron all`\n"
	         "does, and write into DIR (default ./visualize)\n"
	         "  mei_S_N.{npy,png,json}  as fovea mei, and mei_S_N.svg/.pdf with --format\n"
	         "  mei_S_N.mp4             the stimulus as a movie, its response beneath\n"
	         "                          (--movie-format gif or png: an animation instead)\n"
	         "  readout_positions.png, core_filters.png   the weight figures\n"
	         "  index.html              all of them in a grid; open it in a browser from\n"
	         "                          the file system (relative links only)\n"
	         "With --inner, also every channel of every core layer (core.features.layer0,\n"
	         "layer1, ...: InnerNeuronVisualizationObjective), as fovea mei --layer.\n"
	         "\n"
	         "  --inner            also the inner units of every core layer\n"
	         "  --movie-format F   mp4 (default), gif or png (animated)\n"
	         INS_COMMON_USAGE,
	.run = run_visualize,
	.max_memory = true,
};
