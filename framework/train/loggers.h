/*
** loggers.h: the `logger` group of a training config, as Lightning's
** loggers write it (loggers.c, log_csv.c, log_tensorboard.c).
**
** The trainer hands every logger the same rows Lightning's logger
** connector does: a set of named values, the global step, and the epoch
** (added by Lightning to every row it logs itself, absent from rows a
** callback such as LearningRateMonitor logs directly).
*/
#ifndef FOVEA_LOGGERS_H
#define FOVEA_LOGGERS_H

#include <stdint.h>
#include <stdio.h>

#include "fovea/config.h"
#include "fovea/plugin.h"
#include "fovea/trainer.h"

typedef struct fv__log_value {
	const char *name;
	double value;
} fv__log_value;

/* A logger kind: its Lightning class names, its options, its methods. */
typedef struct fv__logger_kind {
	fv_builtin info;           /* names, doc, and the options, which are parsed
	                           ** straight into the state as a plugin's priv */
	size_t state_size;
	fv_status (*open)(void *state, const char *log_dir, const char *hparams_yaml,
	                  int64_t resume_epoch, int64_t resume_step);
	fv_status (*log)(void *state, const fv__log_value *v, size_t n, int64_t step, int64_t epoch);
	fv_status (*flush)(void *state);
	void (*close)(void *state); /* free what open made; the options are freed after */
	/* Lightning's log_dir of this logger, from its options */
	fv_status (*log_dir)(const void *state, char *buf, size_t size);
} fv__logger_kind;

extern const fv__logger_kind fv__csv_logger, fv__tensorboard_logger;

/* The option rows every Lightning logger has: where its files go
** (fv__lightning_log_dir) and the prefix of its metric names.  OFF(field)
** gives the offset of save_dir, name, version and prefix in the logger's
** state. */
#define FV__LOGGER_DIR_OPTIONS(OFF)                                                       \
	{"save_dir", FV_OPT_STRING, OFF(save_dir), NULL, 0, 0, FV_OPT_REQUIRED, NULL,        \
	 "the directory the logs go under"},                                                  \
	{"name", FV_OPT_STRING, OFF(name), "lightning_logs", 0, 0, FV_OPT_NULLABLE, NULL,    \
	 "the experiment's sub-directory of save_dir (null or \"\": none)"},                   \
	{"version", FV_OPT_NODE, OFF(version), "null", 0, 0, FV_OPT_NULLABLE, NULL,          \
	 "null: the next free version_N; an integer N: version_N; a string: that directory"}, \
	{"prefix", FV_OPT_STRING, OFF(prefix), "", 0, 0, 0, NULL,                            \
	 "put before every metric's name, joined with '-'"}

/* Lightning's log_dir: save_dir/name/version, where a null version is the
** next free version_N under save_dir/name, an integer N is version_N and a
** string is itself (openretina's configs give "", the directory itself). */
fv_status fv__lightning_log_dir(const char *save_dir, const char *name,
                                const fv_config_node *version, const char *sub_dir, char *buf,
                                size_t size);

/* LOG_DIR/hparams.yaml, atomically (log_csv.c); NULL yaml: an empty map. */
fv_status fv__write_hparams(const char *dir, const char *hparams_yaml);

typedef struct fv__loggers fv__loggers;

/* Open the loggers of `node` (the config's `logger`: null, or a map of
** name -> {_target_: ..., options}).  A logger fovea does not write
** (MLFlow, W&B) is named once on `out` and skipped, or refused when
** `strict`; an unknown _target_ is an error naming the closest.  On a
** resumed run, rows after `resume_epoch` epochs (`resume_step` steps) are
** dropped from files the loggers keep. */
fv_status fv__loggers_open(const fv_config_node *node, const char *hparams_yaml,
                           int64_t resume_epoch, int64_t resume_step, bool strict, FILE *out,
                           fv__loggers **loggers);
/* One row to every logger; epoch < 0: a row without the epoch. */
fv_status fv__loggers_log(fv__loggers *l, const fv__log_value *v, size_t n, int64_t step,
                          int64_t epoch);
fv_status fv__loggers_flush(fv__loggers *l);
void fv__loggers_close(fv__loggers *l); /* NULL is fine */

/* The logger kind called `name` (a Lightning class path or short name),
** for `fovea describe`; NULL when there is none. */
const fv__logger_kind *fv__logger_kind_find(const char *name);

#endif /* FOVEA_LOGGERS_H */
