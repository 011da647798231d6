/*
** test_trainer_callbacks.c: what fv_train tells and asks its caller while it
** runs (trainer.h: on_epoch, should_stop), the hooks of Python's
** fovea.train: one report per finished epoch with metrics.csv's numbers, a
** failing callback ending the run with its status, and a stop between steps
** that drops the unfinished epoch so that resuming gives the uninterrupted
** run's numbers.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "expect_error.h"
#include "fovea/trainer.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

static fv_registry *reg;
static char tmp[256];

static void setup(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/fovea_test_callbacks_XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_default(reg), FV_OK, "%s", fv_errmsg());
	/* two sessions of 3 and 4 neurons, 1 x 6 x 5 pixels, 240 training frames */
	static const int64_t neurons[] = {3, 4};
	const fv_synthetic_options o = {
		.seed = 3, .n_sessions = 2, .n_neurons = neurons, .n_n_neurons = 2, .channels = 1,
		.height = 6, .width = 5, .train_frames = 240, .n_train_stimuli = 1, .test_frames = 60,
		.n_test_trials = 3, .filter_length = 4, .rate = 1.0,
	};
	char dir[300];
	snprintf(dir, sizeof dir, "%s/data", tmp);
	cr_assert_eq(fv_synthetic_write(dir, &o), FV_OK, "%s", fv_errmsg());
}

static void teardown(void)
{
	fv_registry_free(reg);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(callbacks, .init = setup, .fini = teardown);

/* configs/example.yaml scaled down to the data, run in tmp/RUN. */
static fv_status train(const char *run, const char *extra, fv_train_options *o,
                       fv_train_result *res)
{
	char path[600], data[600], out[600];
	snprintf(path, sizeof path, "%s/../configs/example.yaml", FOVEA_TEST_SRCDIR);
	snprintf(data, sizeof data, "paths.data_dir=%s/data", tmp);
	snprintf(out, sizeof out, "paths.output_dir=%s/%s", tmp, run);
	const char *args[] = {
		data, out, "data_io.color_channels=1", "data_io.video_height=6",
		"data_io.video_width=5", "dataloader.batch_size=4", "dataloader.train_chunk_size=20",
		"dataloader.clip_length=40", "dataloader.num_val_clips=1",
		"model.core.temporal_kernel_sizes=[5]", "trainer.max_epochs=3", "seed=7",
		extra != NULL ? extra : "seed=7",
	};
	fv_config *cfg = fv_config_compose(path, NULL, 13, args);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	o->quiet = true;
	fv_status rc = fv_train(reg, cfg, o, res);
	fv_config_free(cfg);
	return rc;
}

static char *read_text(const char *run, const char *name)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s/%s", tmp, run, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strdup(buf);
}

/* metrics.csv without the wall time (its last column). */
static char *metrics(const char *run)
{
	char *s = read_text(run, "metrics.csv"), *o = s;
	for (char *p = s; *p; ) {
		char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *comma = memrchr(p, ',', len);
		size_t keep = comma ? (size_t)(comma - p) : len;
		memmove(o, p, keep);
		o += keep;
		*o++ = '\n';
		p += len + (end != NULL);
	}
	*o = '\0';
	return s;
}

typedef struct reports {
	int n;
	int64_t epoch[8];
	double val_loss[8], lr[8];
	bool best[8];
	size_t n_metrics;
	int fail_at;   /* return an error at this report (-1: never) */
	int polls;     /* should_stop calls */
	int stop_at;   /* say stop at this poll (-1: never) */
} reports;

static fv_status on_epoch(void *ud, const fv_epoch_report *e)
{
	reports *r = ud;
	cr_assert(r->n < 8);
	r->epoch[r->n] = e->epoch;
	r->n_metrics = e->n_metrics;
	r->lr[r->n] = e->lr;
	r->best[r->n] = e->best;
	r->val_loss[r->n] = NAN;
	for (size_t i = 0; i < e->n_metrics; i++)
		if (strcmp(e->names[i], "val_loss") == 0)
			r->val_loss[r->n] = e->values[i];
	cr_assert_eq(e->max_epochs, 3);
	return r->n++ == r->fail_at ? FV_ERR_ARG : FV_OK;
}

static bool should_stop(void *ud)
{
	reports *r = ud;
	return r->polls++ == r->stop_at;
}

Test(callbacks, one_report_per_epoch_with_the_csv_numbers)
{
	reports r = {.fail_at = -1, .stop_at = -1};
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .should_stop = should_stop, .ud = &r};
	fv_train_result res;
	cr_assert_eq(train("run", NULL, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(r.n, 3);
	cr_assert_not(res.interrupted);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(r.epoch[i], i);
		cr_expect(r.lr[i] > 0);
	}
	cr_expect(r.best[0], "the first epoch always improves on nothing");
	cr_expect(r.n_metrics >= 10);
	cr_expect(r.polls > 3, "should_stop is polled at every step (%d polls)", r.polls);
	/* the reported val_loss is the one in metrics.csv */
	char *csv = read_text("run", "metrics.csv");
	char *header = strtok(csv, "\n");
	int col = 0;
	char *names = strdup(header);
	int k = 0;
	for (char *t = strtok(names, ","); t != NULL; t = strtok(NULL, ","), k++)
		if (strcmp(t, "val_loss") == 0)
			col = k;
	cr_assert_gt(col, 0, "metrics.csv has no val_loss column: %s", header);
	for (int row = 0; row < 3; row++) {
		char *line = header + strlen(header) + 1;
		for (int i = 0; i < row; i++)
			line = strchr(line, '\n') + 1;
		const char *p = line;
		for (int i = 0; i < col; i++)
			p = strchr(p, ',') + 1;
		double v = strtod(p, NULL);
		cr_expect(fabs(v - r.val_loss[row]) <= 1e-6 * fabs(v) + 1e-12,
		          "epoch %d: reported %.9g, metrics.csv %.9g", row, r.val_loss[row], v);
	}
	free(names);
	free(csv);
}

Test(callbacks, a_failing_report_ends_the_run_with_its_status)
{
	reports r = {.fail_at = 1, .stop_at = -1};
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .ud = &r};
	fv_train_result res;
	EXPECT_ERROR(train("run", NULL, &o, &res), FV_ERR_ARG, "stopped by the epoch callback",
	             "after epoch 2/3");
	cr_assert_eq(r.n, 2);
	char path[600];
	snprintf(path, sizeof path, "%s/run/last.safetensors", tmp);
	cr_assert_eq(access(path, F_OK), 0, "the epoch's checkpoints are written first");
}

Test(callbacks, a_stop_drops_the_unfinished_epoch_and_resume_continues_exactly)
{
	reports whole = {.fail_at = -1, .stop_at = -1};
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .should_stop = should_stop, .ud = &whole};
	fv_train_result res;
	cr_assert_eq(train("whole", NULL, &o, &res), FV_OK, "%s", fv_errmsg());
	int per_epoch = whole.polls / 3;
	cr_assert_eq(whole.polls, 3 * per_epoch);

	/* stop at the third step of the second epoch */
	reports cut = {.fail_at = -1, .stop_at = per_epoch + 2};
	o.ud = &cut;
	cr_assert_eq(train("cut", NULL, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_assert(res.interrupted);
	cr_assert_eq(res.epochs, 1);
	cr_assert_eq(cut.n, 1, "no report for the dropped epoch");
	char *one = metrics("cut");
	cr_assert_eq(strchr(strchr(one, '\n') + 1, '\n')[1], '\0', "one row: %s", one);
	free(one);

	reports rest = {.fail_at = -1, .stop_at = -1};
	o.ud = &rest;
	cr_assert_eq(train("cut", "resume=true", &o, &res), FV_OK, "%s", fv_errmsg());
	cr_assert_not(res.interrupted);
	cr_assert_eq(rest.n, 2);
	char *a = metrics("whole"), *b = metrics("cut");
	cr_assert_str_eq(b, a);
	free(a);
	free(b);
}
