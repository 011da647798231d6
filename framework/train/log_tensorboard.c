/*
** log_tensorboard.c: Lightning's TensorBoardLogger.  Scalars go to an
** event file LOG_DIR/events.out.tfevents.TIME.HOST.PID.N as TensorBoard's
** SummaryWriter writes them: TFRecord framing (io/tfrecord.c) around
** Event protobufs (tensorboard_event.proto, encoded by protobuf-c), a
** first event carrying the file version, then one event per scalar.
**
** Like Lightning, the logger records hp_metric = -1 at step 0 when the
** hyper-parameters are logged (default_hp_metric) and keeps
** LOG_DIR/hparams.yaml; the hparams plugin's summaries (TensorBoard's
** HPARAMS tab) are not written.  A resumed run adds a new event file, which
** TensorBoard reads together with the earlier ones.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base_internal.h"
#include "io/tfrecord.h"
#include "train/loggers.h"
#include "train/tensorboard_event.pb-c.h"

typedef struct tb_logger {
	/* options */
	const char *save_dir, *name, *prefix, *sub_dir;
	const fv_config_node *version;
	bool log_graph, default_hp_metric;
	/* state */
	char path[4400];
	FILE *f;
} tb_logger;

#define OFF(f) offsetof(tb_logger, f)
static const fv_option tb_options[] = {
	FV__LOGGER_DIR_OPTIONS(OFF),
	{"sub_dir", FV_OPT_STRING, OFF(sub_dir), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "a directory under the version's, for the event files"},
	{"log_graph", FV_OPT_BOOL, OFF(log_graph), "false", 0, 0, 0, NULL,
	 "only false: fovea writes no model graph"},
	{"default_hp_metric", FV_OPT_BOOL, OFF(default_hp_metric), "true", 0, 0, 0, NULL,
	 "log hp_metric = -1 at step 0, as Lightning does"},
	{0},
};
#undef OFF

static uint64_t file_counter; /* torch's _global_uid */

static fv_status tb_log_dir(const void *state, char *buf, size_t size)
{
	const tb_logger *t = state;
	return fv__lightning_log_dir(t->save_dir, t->name, t->version, t->sub_dir, buf, size);
}

static double wall_time(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static fv_status write_event(tb_logger *t, Tensorboard__Event *ev)
{
	size_t n = tensorboard__event__get_packed_size(ev);
	uint8_t stack[512], *buf = n <= sizeof stack ? stack : fv__malloc(n);
	if (buf == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory writing %s", t->path);
	tensorboard__event__pack(ev, buf);
	fv_status rc = fv__tfrecord_write(t->f, buf, n, t->path);
	if (buf != stack)
		free(buf);
	return rc;
}

static fv_status write_scalar(tb_logger *t, const char *tag, double value, int64_t step)
{
	char key[512];
	if (t->prefix[0] != '\0')
		snprintf(key, sizeof key, "%s-%s", t->prefix, tag);
	else
		snprintf(key, sizeof key, "%s", tag);
	Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
	Tensorboard__Summary__Value *vs[1] = {&v};
	Tensorboard__Summary summary = TENSORBOARD__SUMMARY__INIT;
	Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
	v.tag = key;
	v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
	v.simple_value = (float)value;
	summary.n_value = 1;
	summary.value = vs;
	ev.wall_time = wall_time();
	ev.step = step;
	ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
	ev.summary = &summary;
	return write_event(t, &ev);
}

static fv_status tb_log(void *state, const fv__log_value *v, size_t n, int64_t step,
                        int64_t epoch)
{
	tb_logger *t = state;
	fv_status rc = FV_OK;
	for (size_t i = 0; rc == FV_OK && i < n; i++)
		rc = write_scalar(t, v[i].name, v[i].value, step);
	if (rc == FV_OK && epoch >= 0) /* Lightning logs the epoch as a scalar too */
		rc = write_scalar(t, "epoch", (double)epoch, step);
	return rc;
}

static fv_status tb_flush(void *state)
{
	tb_logger *t = state;
	if (fflush(t->f) != 0 || fsync(fileno(t->f)) != 0)
		return fv_error(FV_ERR_IO, "%s: cannot write: %s", t->path, strerror(errno));
	return FV_OK;
}

static fv_status open_event_file(tb_logger *t, const char *log_dir)
{
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	int n = snprintf(t->path, sizeof t->path, "%s/events.out.tfevents.%010lld.%s.%lld.%llu",
	                 log_dir, (long long)wall_time(), host, (long long)getpid(),
	                 (unsigned long long)file_counter++);
	if (n < 0 || (size_t)n >= sizeof t->path)
		return fv_error(FV_ERR_ARG, "log directory name too long: %s", log_dir);
	t->f = fopen(t->path, "wbx");
	if (t->f == NULL)
		return fv_error(FV_ERR_IO, "%s: cannot create the event file: %s", t->path,
		                strerror(errno));
	Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
	ev.wall_time = wall_time();
	ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
	ev.file_version = "brain.Event:2";
	return write_event(t, &ev);
}

static fv_status tb_open(void *state, const char *log_dir, const char *hparams_yaml,
                         int64_t resume_epoch, int64_t resume_step)
{
	tb_logger *t = state;
	(void)resume_step;
	if (t->log_graph)
		return fv_error(FV_ERR_CONFIG, "TensorBoardLogger: log_graph: fovea writes no model "
		                "graph (expected false)");
	fv_status rc = open_event_file(t, log_dir);
	if (rc == FV_OK && t->default_hp_metric && resume_epoch == 0)
		rc = write_scalar(t, "hp_metric", -1, 0);
	if (rc == FV_OK)
		rc = fv__write_hparams(log_dir, hparams_yaml);
	if (rc == FV_OK)
		rc = tb_flush(t);
	return rc;
}

static void tb_close(void *state)
{
	tb_logger *t = state;
	if (t->f != NULL)
		fclose(t->f);
}

static const char *const tb_names[] = {
	"TensorBoardLogger",
	"lightning.pytorch.loggers.TensorBoardLogger",
	"lightning.pytorch.loggers.tensorboard.TensorBoardLogger",
	"pytorch_lightning.loggers.TensorBoardLogger",
	"pytorch_lightning.loggers.tensorboard.TensorBoardLogger",
	NULL,
};

const fv__logger_kind fv__tensorboard_logger = {
	.info = {tb_names, "logger",
	         "Lightning's TensorBoardLogger: scalars in a TensorBoard event file under LOG_DIR, "
	         "and LOG_DIR/hparams.yaml",
	         tb_options},
	.state_size = sizeof(tb_logger),
	.open = tb_open,
	.log = tb_log,
	.flush = tb_flush,
	.close = tb_close,
	.log_dir = tb_log_dir,
};
