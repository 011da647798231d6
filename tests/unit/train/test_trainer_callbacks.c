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
	const char *args[20] = {
		data, out, "data_io.color_channels=1", "data_io.video_height=6",
		"data_io.video_width=5", "dataloader.batch_size=4", "dataloader.train_chunk_size=20",
		"dataloader.clip_length=40", "dataloader.num_val_clips=1",
		"model.core.temporal_kernel_sizes=[5]", "trainer.max_epochs=3", "seed=7",
	};
	int n = 12;
	char words[1024]; /* `extra`: overrides separated by spaces */
	snprintf(words, sizeof words, "%s", extra != NULL ? extra : "");
	for (char *save = NULL, *w = strtok_r(words, " ", &save); w != NULL && n < 20;
	     w = strtok_r(NULL, " ", &save))
		args[n++] = w;
	fv_config *cfg = fv_config_compose(path, NULL, n, args);
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
	const char *no_sanity = "++trainer.num_sanity_val_steps=0"; /* polls: the epochs' batches */
	cr_assert_eq(train("whole", no_sanity, &o, &res), FV_OK, "%s", fv_errmsg());
	int per_epoch = whole.polls / 3;
	cr_assert_eq(whole.polls, 3 * per_epoch);

	/* stop at the third step of the second epoch */
	reports cut = {.fail_at = -1, .stop_at = per_epoch + 2};
	o.ud = &cut;
	cr_assert_eq(train("cut", no_sanity, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_assert(res.interrupted);
	cr_assert_eq(res.epochs, 1);
	cr_assert_eq(cut.n, 1, "no report for the dropped epoch");
	char *one = metrics("cut");
	cr_assert_eq(strchr(strchr(one, '\n') + 1, '\n')[1], '\0', "one row: %s", one);
	free(one);

	reports rest = {.fail_at = -1, .stop_at = -1};
	o.ud = &rest;
	cr_assert_eq(train("cut", "resume=true ++trainer.num_sanity_val_steps=0", &o, &res), FV_OK,
	             "%s", fv_errmsg());
	cr_assert_not(res.interrupted);
	cr_assert_eq(rest.n, 2);
	char *a = metrics("whole"), *b = metrics("cut");
	cr_assert_str_eq(b, a);
	free(a);
	free(b);
}

/* ---- the trainer's loop options and the callbacks (issue 14) ---------------------- */

/* Column `name` of metrics.csv's row `row` (0: the first epoch). */
static double csv_cell(const char *run, int row, const char *name)
{
	char *csv = read_text(run, "metrics.csv");
	char *save = NULL, *line = strtok_r(csv, "\n", &save);
	int col = -1, k = 0;
	char *hdr = strdup(line), *s2 = NULL;
	for (char *t = strtok_r(hdr, ",", &s2); t != NULL; t = strtok_r(NULL, ",", &s2), k++)
		if (strcmp(t, name) == 0)
			col = k;
	free(hdr);
	cr_assert_geq(col, 0, "metrics.csv has no column %s", name);
	for (int i = 0; i <= row; i++) {
		line = strtok_r(NULL, "\n", &save);
		cr_assert_not_null(line, "metrics.csv has no row %d", row);
	}
	const char *p = line;
	for (int i = 0; i < col; i++)
		p = strchr(p, ',') + 1;
	double v = strtod(p, NULL);
	free(csv);
	return v;
}

/* The names in tmp/DIR, sorted, one a line. */
static char *dir_names(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls '%s/%s' 2>&1", tmp, dir);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, p);
	buf[n] = '\0';
	pclose(p);
	return strdup(buf);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void train_ok(const char *run, const char *extra, reports *r)
{
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .should_stop = should_stop,
	                      .ud = r};
	fv_train_result res;
	cr_assert_eq(train(run, extra, &o, &res), FV_OK, "%s: %s", extra, fv_errmsg());
}

static void train_fails(const char *extra, const char *fragment)
{
	fv_train_options o = {.struct_size = sizeof o};
	fv_train_result res;
	EXPECT_ERROR(train("bad", extra, &o, &res), FV_ERR_CONFIG, fragment, "");
}

/* The batches of a full epoch: its optimizer steps without limits. */
static int64_t full_epoch_steps(void)
{
	reports r = {.fail_at = -1, .stop_at = -1};
	train_ok("full", NULL, &r);
	return (int64_t)csv_cell("full", 0, "step");
}

Test(callbacks, limit_train_batches_counts_and_fractions)
{
	int64_t n = full_epoch_steps();
	cr_assert_gt(n, 3);
	reports r = {.fail_at = -1, .stop_at = -1};
	train_ok("count", "++trainer.limit_train_batches=2", &r);
	for (int e = 0; e < 3; e++)
		cr_expect_eq(csv_cell("count", e, "step"), 2.0 * (e + 1));
	reports q = {.fail_at = -1, .stop_at = -1};
	train_ok("frac", "++trainer.limit_train_batches=0.5", &q);
	cr_expect_eq(csv_cell("frac", 2, "step"), 3.0 * (double)(int64_t)((double)n * 0.5));
	/* 1 is one batch, 1.0 all of them (Lightning's int/float rule) */
	reports one = {.fail_at = -1, .stop_at = -1};
	train_ok("one", "++trainer.limit_train_batches=1", &one);
	cr_expect_eq(csv_cell("one", 0, "step"), 1.0);
	reports all = {.fail_at = -1, .stop_at = -1};
	train_ok("all", "++trainer.limit_train_batches=1.0", &all);
	cr_expect_eq(csv_cell("all", 0, "step"), (double)n);
	train_fails("++trainer.limit_train_batches=0.001", "is less than one; try at least");
	train_fails("++trainer.limit_train_batches=2.5", "has to be in [0.0, 1.0] or an int");
	train_fails("++trainer.limit_train_batches=0", "trains nothing");
}

Test(callbacks, a_limited_run_resumes_exactly)
{
	/* no sanity steps, one validation batch: 4 polls an epoch; stop at the
	** second training batch of epoch 2 */
	const char *limits = "++trainer.limit_train_batches=3 ++trainer.num_sanity_val_steps=0 "
	                     "++trainer.limit_val_batches=1";
	reports whole = {.fail_at = -1, .stop_at = -1};
	train_ok("whole", limits, &whole);
	reports cut = {.fail_at = -1, .stop_at = 5};
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .should_stop = should_stop,
	                      .ud = &cut};
	fv_train_result res;
	cr_assert_eq(train("cut", limits, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_assert(res.interrupted);
	cr_assert_eq(res.epochs, 1);
	reports rest = {.fail_at = -1, .stop_at = -1};
	o.ud = &rest;
	char arg[300];
	snprintf(arg, sizeof arg, "%s resume=true", limits);
	cr_assert_eq(train("cut", arg, &o, &res), FV_OK, "%s", fv_errmsg());
	char *a = metrics("whole"), *b = metrics("cut");
	cr_expect_str_eq(b, a);
	free(a);
	free(b);
}

Test(callbacks, limit_val_batches_and_sanity_steps)
{
	reports full = {.fail_at = -1, .stop_at = -1};
	train_ok("full", "++trainer.num_sanity_val_steps=0", &full);
	reports sane = {.fail_at = -1, .stop_at = -1};
	train_ok("sane", "++trainer.num_sanity_val_steps=2", &sane);
	/* the sanity batches poll should_stop like any other, and change nothing */
	cr_expect_eq(sane.polls - full.polls, 2);
	char *a = metrics("full"), *b = metrics("sane");
	cr_expect_str_eq(b, a);
	free(a);
	free(b);
	reports one = {.fail_at = -1, .stop_at = -1};
	train_ok("one", "++trainer.limit_val_batches=1", &one);
	int val_batches = (full.polls - (int)(3 * csv_cell("full", 0, "step"))) / 3;
	cr_assert_gt(val_batches, 1, "the test needs more than one validation batch");
	cr_expect_eq(one.polls, 3 * (int)csv_cell("full", 0, "step") + 3 + 1,
	             "three epochs, one validation batch each, one sanity batch");
	cr_expect_neq(csv_cell("one", 0, "val_loss"), csv_cell("full", 0, "val_loss"));
	reports every = {.fail_at = -1, .stop_at = -1};
	train_ok("every", "++trainer.num_sanity_val_steps=-1", &every);
	cr_expect_eq(every.polls - full.polls, val_batches, "-1: the whole validation set");
	train_fails("++trainer.limit_val_batches=0.5", "has no length");
	train_fails("++trainer.limit_val_batches=0", "turns validation off");
}

Test(callbacks, check_val_every_n_epoch_and_val_check_interval)
{
	reports r = {.fail_at = -1, .stop_at = -1};
	train_ok("two", "++trainer.check_val_every_n_epoch=2 lr_scheduler=step_lr", &r);
	cr_expect(isnan(csv_cell("two", 0, "val_loss")), "epoch 1 does not validate");
	cr_expect(!isnan(csv_cell("two", 1, "val_loss")), "epoch 2 validates");
	cr_expect(isnan(csv_cell("two", 2, "val_loss")));
	/* openretina's ReduceLROnPlateau finds no metric after epoch 1, as in Lightning */
	train_fails("++trainer.check_val_every_n_epoch=2", "which is not available");
	reports whole = {.fail_at = -1, .stop_at = -1};
	train_ok("whole", "++trainer.val_check_interval=1.0", &whole);
	int64_t n = (int64_t)csv_cell("whole", 0, "step");
	char arg[64];
	snprintf(arg, sizeof arg, "++trainer.val_check_interval=%lld", (long long)n);
	reports same = {.fail_at = -1, .stop_at = -1};
	train_ok("same", arg, &same);
	train_fails("++trainer.val_check_interval=0.5", "is not supported");
	snprintf(arg, sizeof arg, "++trainer.val_check_interval=%lld", (long long)n + 1);
	train_fails(arg, "must be less than or equal to the number of the training batches");
}

Test(callbacks, early_stopping_strict_and_check_on_train_epoch_end)
{
	train_fails("training_callbacks.early_stopping.monitor=val_nothing", "unknown monitor");
	reports r = {.fail_at = -1, .stop_at = -1};
	train_ok("lax", "training_callbacks.early_stopping.monitor=val_nothing "
	         "++training_callbacks.early_stopping.strict=false", &r);
	cr_expect_eq(r.n, 3, "an unknown monitor without strict never stops");
	/* checking after every training epoch before any validation: no metric */
	train_fails("++trainer.check_val_every_n_epoch=2 lr_scheduler=step_lr "
	            "++training_callbacks.early_stopping.check_on_train_epoch_end=true",
	            "EarlyStopping conditioned on metric 'val_evaluation_loss' which is not available");
	/* patience 1 and an improvement no run makes: the first check improves
	** on nothing, the second stops */
	const char *never = "lr_scheduler=step_lr training_callbacks.early_stopping.patience=1 "
	                    "training_callbacks.early_stopping.min_delta=1e9";
	reports e = {.fail_at = -1, .stop_at = -1};
	train_ok("each", never, &e);
	cr_expect_eq(e.n, 2, "checked after epochs 1 and 2");
	/* validating every second epoch, checked after validations only: once */
	char arg[300];
	snprintf(arg, sizeof arg, "%s ++trainer.check_val_every_n_epoch=2", never);
	reports v = {.fail_at = -1, .stop_at = -1};
	train_ok("val", arg, &v);
	cr_expect_eq(v.n, 3, "one check (epoch 2) in three epochs");
}

Test(callbacks, model_checkpoint_ranking_survives_resume)
{
	const char *k = "training_callbacks.model_checkpoint.save_top_k=2 "
	                "training_callbacks.model_checkpoint.dirpath=";
	char whole_arg[600], cut_arg[600];
	snprintf(whole_arg, sizeof whole_arg, "%s%s/whole_ck", k, tmp);
	snprintf(cut_arg, sizeof cut_arg, "%s%s/cut_ck", k, tmp);
	reports w = {.fail_at = -1, .stop_at = -1};
	train_ok("whole", whole_arg, &w);
	reports c = {.fail_at = 1, .stop_at = -1}; /* the report of epoch 2 ends the run */
	fv_train_options o = {.struct_size = sizeof o, .on_epoch = on_epoch, .ud = &c};
	fv_train_result res;
	cr_assert_neq(train("cut", cut_arg, &o, &res), FV_OK);
	char resume[700];
	snprintf(resume, sizeof resume, "%s resume=true", cut_arg);
	reports rest = {.fail_at = -1, .stop_at = -1};
	train_ok("cut", resume, &rest);
	char *a = dir_names("whole_ck"), *b = dir_names("cut_ck");
	cr_expect_str_eq(b, a, "the resumed run keeps the same best files");
	cr_expect_eq(count_lines(a), 2, "%s", a);
	free(a);
	free(b);
}

Test(callbacks, optimizer_reset_keeps_the_scheduler_on_the_old_optimizer)
{
	const char *sched = "lr_scheduler=step_lr lr_scheduler.step_size=1 lr_scheduler.gamma=0.5";
	reports plain = {.fail_at = -1, .stop_at = -1};
	train_ok("plain", sched, &plain);
	char arg[300];
	snprintf(arg, sizeof arg, "%s +training_callbacks.reset._target_="
	         "openretina.utils.model_utils.OptimizerResetCallback", sched);
	reports reset = {.fail_at = -1, .stop_at = -1};
	train_ok("reset", arg, &reset);
	double a = plain.lr[0];
	cr_expect_float_eq(plain.lr[1], a / 2, 1e-12);
	cr_expect_float_eq(plain.lr[2], a / 4, 1e-12);
	/* validation end of epoch 2 sees a/2 < a: a new AdamW at a/2; the StepLR
	** then halves the old optimizer's rate, and the new one stays at a/2 */
	cr_expect_float_eq(reset.lr[0], a, 1e-12);
	cr_expect_float_eq(reset.lr[1], a / 2, 1e-12);
	cr_expect_float_eq(reset.lr[2], a / 2, 1e-12);
	/* fresh moments: epoch 3's weights differ from the run without the reset */
	cr_expect_neq(csv_cell("plain", 2, "train_loss"), csv_cell("reset", 2, "train_loss"));
	cr_expect_eq(csv_cell("plain", 1, "train_loss"), csv_cell("reset", 1, "train_loss"));
}

/* openretina's layout: FOLDER/weights_core/weights_layer_N for each of the
** core's two layers and FOLDER/weights_readout, one file per figure and
** STAGE_epoch_E: init at the start, train after epochs 0 and 2
** (every_n_epochs 2). */
Test(callbacks, weight_figures_every_n_epochs)
{
	char arg[700];
	snprintf(arg, sizeof arg, "+training_callbacks.wv._target_=openretina.callbacks."
	         "weight_visualization_callback.WeightVisualizationCallback "
	         "+training_callbacks.wv.every_n_epochs=2 +training_callbacks.wv.folder_path=%s/wv "
	         "model.hidden_channels=[4,4] model.core.temporal_kernel_sizes=[5,3] "
	         "model.core.spatial_kernel_sizes=[1,1]",
	         tmp);
	reports r = {.fail_at = -1, .stop_at = -1};
	train_ok("run", arg, &r);
	const char *want = "filters_init_epoch_0.png\nfilters_train_epoch_0.png\n"
	                   "filters_train_epoch_2.png\n";
	char *core = dir_names("wv/weights_core/weights_layer_0");
	cr_expect_str_eq(core, want);
	free(core);
	core = dir_names("wv/weights_core/weights_layer_1");
	cr_expect_str_eq(core, want);
	char path[700];
	snprintf(path, sizeof path, "%s/wv/weights_core/weights_layer_2", tmp);
	cr_expect_neq(access(path, F_OK), 0, "a folder for a layer the core does not have");
	char *readout = dir_names("wv/weights_readout");
	cr_expect_str_eq(readout, "readout_positions_init_epoch_0.png\n"
	                          "readout_positions_train_epoch_0.png\n"
	                          "readout_positions_train_epoch_2.png\n");
	free(core);
	free(readout);
}
