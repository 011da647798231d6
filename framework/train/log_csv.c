/*
** log_csv.c: Lightning's CSVLogger.  LOG_DIR/metrics.csv has one row per
** log call (the columns are the sorted union of every key logged, a key a
** row lacks is an empty cell, the step is a column of its own) and
** LOG_DIR/hparams.yaml the model's hyper-parameters, so analysis scripts
** written for Lightning's files read fovea's unchanged.
**
** Lightning appends to the file as it goes and rewrites it when a new key
** appears; fovea keeps the rows and rewrites the file atomically at every
** flush, so that a killed run never leaves a torn file.
*/
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "train/loggers.h"

typedef struct cell {
	char *key, *text;
} cell;

typedef struct row {
	cell *cells;
	size_t n;
} row;

typedef struct csv_logger {
	/* options */
	const char *save_dir, *name, *prefix;
	const fv_config_node *version;
	int64_t flush_logs_every_n_steps;
	/* state */
	char dir[4096];
	row *rows;
	size_t n_rows, cap_rows;
} csv_logger;

#define OFF(f) offsetof(csv_logger, f)
static const fv_option csv_options[] = {
	FV__LOGGER_DIR_OPTIONS(OFF),
	{"flush_logs_every_n_steps", FV_OPT_INT, OFF(flush_logs_every_n_steps), "100", 1, 1e12, 0,
	 NULL, "accepted; fovea rewrites metrics.csv after every epoch"},
	{0},
};
#undef OFF

static fv_status csv_log_dir(const void *state, char *buf, size_t size)
{
	const csv_logger *c = state;
	return fv__lightning_log_dir(c->save_dir, c->name, c->version, NULL, buf, size);
}

static fv_status file_path(const csv_logger *c, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", c->dir, name);
	if (n < 0 || (size_t)n >= size)
		return fv_error(FV_ERR_ARG, "log directory name too long: %s", c->dir);
	return FV_OK;
}

static void free_row(row *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->cells[i].key);
		free(r->cells[i].text);
	}
	free(r->cells);
}

static row *new_row(csv_logger *c, size_t n_cells)
{
	if (c->n_rows == c->cap_rows) {
		size_t cap = c->cap_rows ? 2 * c->cap_rows : 64;
		row *v = fv__realloc(c->rows, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		c->rows = v;
		c->cap_rows = cap;
	}
	row *r = &c->rows[c->n_rows];
	r->n = 0;
	r->cells = fv__calloc(n_cells ? n_cells : 1, sizeof *r->cells);
	if (r->cells == NULL)
		return NULL;
	c->n_rows++;
	return r;
}

static bool add_cell(row *r, const char *key, size_t key_len, const char *text, size_t text_len)
{
	cell *x = &r->cells[r->n];
	x->key = fv__strndup(key, key_len);
	x->text = fv__strndup(text, text_len);
	if (x->key == NULL || x->text == NULL) {
		free(x->key);
		free(x->text);
		return false;
	}
	r->n++;
	return true;
}

static const char *cell_text(const row *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->cells[i].key, key) == 0)
			return r->cells[i].text;
	return NULL;
}

/* ---- resuming: the rows of the epochs already done ------------------------------------- */

/* Split a line at commas into at most `max` fields (Lightning's keys and
** numbers hold no commas or quotes). */
static size_t split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	line[strcspn(line, "\r\n")] = '\0';
	for (char *p = line; n < max;) {
		fields[n++] = p;
		char *comma = strchr(p, ',');
		if (comma == NULL)
			break;
		*comma = '\0';
		p = comma + 1;
	}
	return n;
}

/* A row belongs to the resumed run when it was logged before the epoch
** resumed from: its epoch is earlier, or, for a row without an epoch (the
** learning rate logged at an epoch's start), its step is. */
static bool row_kept(const row *r, int64_t epochs_done, int64_t steps_done)
{
	const char *epoch = cell_text(r, "epoch"), *step = cell_text(r, "step");
	if (epoch != NULL && epoch[0] != '\0')
		return strtoll(epoch, NULL, 10) < epochs_done;
	return step != NULL && strtoll(step, NULL, 10) < steps_done;
}

static fv_status load_rows(csv_logger *c, const char *path, int64_t epochs_done,
                           int64_t steps_done)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return FV_OK; /* nothing logged yet */
	enum { MAX_COLS = 1024 };
	char *keys[MAX_COLS], *vals[MAX_COLS], *header = NULL, *line = NULL;
	size_t header_cap = 0, line_cap = 0;
	fv_status rc = FV_OK;
	size_t n_keys = getline(&header, &header_cap, f) > 0 ? split(header, keys, MAX_COLS) : 0;
	while (rc == FV_OK && getline(&line, &line_cap, f) > 0) {
		size_t n = split(line, vals, MAX_COLS);
		if (n != n_keys) {
			rc = fv_error(FV_ERR_FORMAT, "%s: a row has %zu cells, the header %zu (not a "
			              "metrics.csv fovea or Lightning wrote?)", path, n, n_keys);
			break;
		}
		row *r = new_row(c, n);
		for (size_t i = 0; r != NULL && i < n; i++)
			if (vals[i][0] != '\0' &&
			    !add_cell(r, keys[i], strlen(keys[i]), vals[i], strlen(vals[i])))
				r = NULL;
		if (r == NULL)
			rc = fv_error(FV_ERR_NOMEM, "out of memory reading %s", path);
		else if (!row_kept(r, epochs_done, steps_done))
			free_row(&c->rows[--c->n_rows]);
	}
	free(header);
	free(line);
	fclose(f);
	return rc;
}

/* ---- logging ---------------------------------------------------------------------------- */

/* A float as Python's repr writes it: the shortest text that reads back to
** the same double, with ".0" on whole numbers ("5.0", "0.1", "inf"). */
static void format_value(char *buf, size_t size, double v)
{
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, size, "%.*g", digits, v);
		if (strtod(buf, NULL) == v || v != v)
			break;
	}
	if (strcspn(buf, ".eni") == strlen(buf))
		strncat(buf, ".0", size - strlen(buf) - 1);
}

static fv_status csv_log(void *state, const fv__log_value *v, size_t n, int64_t step,
                         int64_t epoch)
{
	csv_logger *c = state;
	row *r = new_row(c, n + 2);
	bool ok = r != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		char key[512], text[64];
		if (c->prefix[0] != '\0')
			snprintf(key, sizeof key, "%s-%s", c->prefix, v[i].name);
		else
			snprintf(key, sizeof key, "%s", v[i].name);
		format_value(text, sizeof text, v[i].value);
		ok = add_cell(r, key, strlen(key), text, strlen(text));
	}
	char text[32];
	if (ok && epoch >= 0) {
		snprintf(text, sizeof text, "%lld", (long long)epoch);
		ok = add_cell(r, "epoch", 5, text, strlen(text));
	}
	if (ok) {
		snprintf(text, sizeof text, "%lld", (long long)step);
		ok = add_cell(r, "step", 4, text, strlen(text));
	}
	return ok ? FV_OK : fv_error(FV_ERR_NOMEM, "out of memory logging to %s", c->dir);
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted union of the rows' keys, as Lightning's header is (NULL when
** out of memory; *n = 0 for no rows). */
static const char **header_keys(const csv_logger *c, size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < c->n_rows; i++)
		total += c->rows[i].n;
	const char **keys = fv__malloc((total ? total : 1) * sizeof *keys);
	if (keys == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < c->n_rows; i++)
		for (size_t j = 0; j < c->rows[i].n; j++)
			keys[k++] = c->rows[i].cells[j].key;
	qsort(keys, k, sizeof *keys, compare_keys);
	size_t unique = 0;
	for (size_t i = 0; i < k; i++)
		if (unique == 0 || strcmp(keys[unique - 1], keys[i]) != 0)
			keys[unique++] = keys[i];
	*n = unique;
	return keys;
}

static fv_status csv_flush(void *state)
{
	csv_logger *c = state;
	char path[4200];
	fv_status rc = file_path(c, "metrics.csv", path, sizeof path);
	if (rc != FV_OK || c->n_rows == 0)
		return rc;
	size_t n_keys;
	const char **keys = header_keys(c, &n_keys);
	if (keys == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory writing %s", path);
	fv__text t = {0};
	for (size_t k = 0; k < n_keys; k++)
		fv__text_printf(&t, "%s%s", k ? "," : "", keys[k]);
	fv__text_printf(&t, "\n");
	for (size_t i = 0; i < c->n_rows; i++) {
		for (size_t k = 0; k < n_keys; k++) {
			const char *text = cell_text(&c->rows[i], keys[k]);
			fv__text_printf(&t, "%s%s", k ? "," : "", text ? text : "");
		}
		fv__text_printf(&t, "\n");
	}
	free(keys);
	char *body = fv__text_take(&t, path);
	if (body == NULL)
		return fv_errcode();
	const void *parts[1] = {body};
	size_t sizes[1] = {strlen(body)};
	rc = fv__atomic_write(path, 1, parts, sizes);
	free(body);
	return rc;
}

fv_status fv__write_hparams(const char *dir, const char *hparams_yaml)
{
	char path[4200];
	int n = snprintf(path, sizeof path, "%s/hparams.yaml", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return fv_error(FV_ERR_ARG, "log directory name too long: %s", dir);
	const char *text = hparams_yaml ? hparams_yaml : "{}\n";
	const void *parts[1] = {text};
	size_t sizes[1] = {strlen(text)};
	return fv__atomic_write(path, 1, parts, sizes);
}

static fv_status csv_open(void *state, const char *log_dir, const char *hparams_yaml,
                          int64_t resume_epoch, int64_t resume_step)
{
	csv_logger *c = state;
	snprintf(c->dir, sizeof c->dir, "%s", log_dir);
	char path[4200];
	fv_status rc = file_path(c, "metrics.csv", path, sizeof path);
	if (rc == FV_OK && resume_epoch > 0)
		rc = load_rows(c, path, resume_epoch, resume_step);
	if (rc == FV_OK)
		rc = fv__write_hparams(c->dir, hparams_yaml);
	return rc;
}

static void csv_close(void *state)
{
	csv_logger *c = state;
	for (size_t i = 0; i < c->n_rows; i++)
		free_row(&c->rows[i]);
	free(c->rows);
}

static const char *const csv_names[] = {
	"CSVLogger",
	"lightning.pytorch.loggers.csv_logs.CSVLogger",
	"lightning.pytorch.loggers.CSVLogger",
	"pytorch_lightning.loggers.csv_logs.CSVLogger",
	"pytorch_lightning.loggers.CSVLogger",
	NULL,
};

const fv__logger_kind fv__csv_logger = {
	.info = {csv_names, "logger",
	         "Lightning's CSVLogger: LOG_DIR/metrics.csv (sorted columns, one row per log "
	         "call) and LOG_DIR/hparams.yaml",
	         csv_options},
	.state_size = sizeof(csv_logger),
	.open = csv_open,
	.log = csv_log,
	.flush = csv_flush,
	.close = csv_close,
	.log_dir = csv_log_dir,
};
