/*
** fuzz_ckpt_meta.c: libFuzzer target for what a checkpoint's __metadata__
** feeds: data_info (eval, predict, mei, mds and fine-tuning read it) and
** trainer_state (resume=true reads it).
**
** The safetensors container is not the target (fuzz_safetensors is): each
** input is turned into a valid small checkpoint whose metadata values are
** the fuzz bytes.  Input layout:
**
**     byte 0           which keys are present: bit 0 format, bit 1
**                      data_info, bit 2 trainer_state, bit 3 a format
**                      value that is not fovea's
**     the rest         data_info and trainer_state, separated by a NUL
**
** The checkpoint is opened as eval and predict open it, every part of its
** data_info is read as they read it (sessions, neuron counts, mean
** activities, session_info, shapes and the normalisation) and written back
** to JSON as a fine-tuning run's checkpoint does, and the trainer state is
** applied to a trainer as resuming applies it.  The seed corpus
** (corpus/ckpt_meta/) has checkpoints the trainer wrote, one without
** data_info and one with `sessions: []`.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "train/trainer_internal.h"

static char path[64];
static fv_tensor *param;
static fv_optimizer *opt;

static volatile double sink;

static void setup(void)
{
	/* tmpfs when there is one: the writer fsyncs every checkpoint */
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(path, sizeof path, "%s/fuzz_ckpt_meta.%ld.safetensors", dir, (long)getpid());
	int64_t shape[1] = {1};
	param = fv_tensor_new(1, shape);
	param->requires_grad = true;
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	opt = fv_optimizer_new(&oc, 1, &param);
	if (param == NULL || opt == NULL)
		abort();
}

static void use_info(const fv_data_info *info)
{
	for (size_t i = 0; i < info->n_sessions; i++) {
		sink += (double)strlen(info->sessions[i]) + (double)info->n_neurons[i];
		const fv_tensor *m = info->mean_activity[i];
		if (m != NULL)
			for (int64_t k = 0; k < m->numel; k++)
				sink += m->data[k];
		for (size_t j = 0; info->n_session_info != NULL && j < info->n_session_info[i]; j++) {
			sink += (double)strlen(info->session_info_names[i][j]);
			const fv_tensor *v = info->session_info[i][j];
			for (int64_t k = 0; k < v->numel; k++)
				sink += v->data[k];
		}
	}
	for (int d = 0; d < 3; d++)
		sink += (double)info->input_shape[d];
	sink += info->stim_mean + info->stim_std;
	char *json = fv_data_info_to_json(info);
	if (json == NULL && fv_errcode() != FV_ERR_NOMEM)
		abort(); /* what was read must write back */
	free(json);
}

static void use_state(const char *json)
{
	fv__trainer t;
	memset(&t, 0, sizeof t);
	t.opt = opt;
	t.best_mode_max = true;
	if (fv__apply_trainer_state(&t, json, path) != FV_OK && fv_errmsg()[0] == '\0')
		abort(); /* a rejection says why */
	sink += (double)t.epochs_done + (double)t.global_step + t.best_value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (param == NULL)
		setup();
	if (size < 1)
		return 0;
	unsigned keys = data[0];
	/* the two values, NUL-terminated copies */
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	const char *info = text, *state = text + strlen(text);
	if ((size_t)(state - text) < size - 1)
		state++;

	fv_st_writer *w = fv_st_writer_new();
	int64_t shape[1] = {1};
	float one = 1;
	fv_status rc = w != NULL ? fv_st_writer_add(w, "w", FV_DTYPE_F32, 1, shape, &one)
	                         : FV_ERR_NOMEM;
	if (rc == FV_OK && (keys & 1))
		rc = fv_st_writer_meta(w, "format", keys & 8 ? "other" : FV_CHECKPOINT_FORMAT);
	if (rc == FV_OK && (keys & 2))
		rc = fv_st_writer_meta(w, "data_info", info);
	if (rc == FV_OK && (keys & 4))
		rc = fv_st_writer_meta(w, "trainer_state", state);
	if (rc == FV_OK)
		rc = fv_st_writer_save(w, path);
	fv_st_writer_free(w);
	if (rc == FV_OK) {
		fv_checkpoint *c = fv_checkpoint_open(path);
		if (c == NULL && strstr(fv_errmsg(), path) == NULL)
			abort(); /* a rejection names the file */
		const fv_data_info *di = c != NULL ? fv_checkpoint_data_info(c) : NULL;
		if (di != NULL)
			use_info(di);
		const char *ts = c != NULL ? fv_checkpoint_trainer_state(c) : NULL;
		if (ts != NULL)
			use_state(ts);
		fv_checkpoint_close(c);
	}
	free(text);
	return 0;
}
