/*
** data_options.c: the options of a data set, from openretina's defaults and
** from the `data_io` and `dataloader` sections of a training config (the
** arguments of openretina's load_stimuli, load_responses and
** multiple_movies_dataloaders, under the names those functions use).
*/
#include <string.h>

#include "data/data_internal.h"
#include "fovea/fovea.h"

void fv_data_options_default(fv_data_options *o)
{
	memset(o, 0, sizeof *o);
	o->norm_mean = 0.0;
	o->norm_std = 1.0;
	o->clip_length = 100;
	o->num_val_clips = 10;
	o->train_chunk_size = 50;
	o->batch_size = 32;
	o->seed = 42;
	o->allow_over_boundaries = true;
}

static fv_status bad_type(const fv_config_node *n, const char *expected)
{
	return fv_error_at(n, FV_ERR_CONFIG, "%s: expected %s", fv_node_keypath(n), expected);
}

static fv_status read_int(const fv_config_node *map, const char *key, int64_t *out)
{
	const fv_config_node *n = fv_node_path(map, key);
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	return fv_node_to_int(n, out);
}

/* A float, where null means openretina's None (keep the default). */
static fv_status read_double(const fv_config_node *map, const char *key, double *out)
{
	const fv_config_node *n = fv_node_path(map, key);
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	return fv_node_to_double(n, out);
}

static fv_status read_text(const fv_config_node *map, const char *key, const char **out)
{
	const fv_config_node *n = fv_node_path(map, key);
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	if (fv_node_kind(n) != FV_NODE_SCALAR)
		return bad_type(n, "a string");
	*out = fv_node_text(n);
	return FV_OK;
}

static fv_status read_test_names(const fv_config_node *data_io, fv_data_options *o)
{
	const fv_config_node *n = fv_node_path(data_io, "test_names");
	if (n == NULL)
		n = fv_node_path(data_io, "stimuli.test_names");
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	if (fv_node_kind(n) == FV_NODE_SCALAR) {
		o->test_names_storage_[0] = fv_node_text(n);
		o->test_names = o->test_names_storage_;
		o->n_test_names = 1;
		return FV_OK;
	}
	if (fv_node_kind(n) != FV_NODE_SEQ)
		return bad_type(n, "a list of stimulus names");
	size_t count = fv_node_size(n);
	if (count > FV_DATA_MAX_TEST_NAMES)
		return fv_error_at(n, FV_ERR_CONFIG, "%s: at most %d test stimuli are supported, got %zu",
		                   fv_node_keypath(n), FV_DATA_MAX_TEST_NAMES, count);
	for (size_t i = 0; i < count; i++) {
		const fv_config_node *item = fv_node_at(n, i);
		if (fv_node_kind(item) != FV_NODE_SCALAR)
			return bad_type(item, "a stimulus name");
		o->test_names_storage_[i] = fv_node_text(item);
	}
	o->test_names = o->test_names_storage_;
	o->n_test_names = count;
	return FV_OK;
}

/* Does the list or scalar n name exactly the stimuli of o->test_names? */
static bool same_names(const fv_config_node *n, const fv_data_options *o)
{
	if (fv_node_kind(n) == FV_NODE_SCALAR)
		return o->n_test_names == 1 && strcmp(fv_node_text(n), o->test_names[0]) == 0;
	if (fv_node_kind(n) != FV_NODE_SEQ || fv_node_size(n) != o->n_test_names)
		return false;
	for (size_t i = 0; i < o->n_test_names; i++) {
		const char *name = fv_node_text(fv_node_at(n, i));
		if (name == NULL || strcmp(name, o->test_names[i]) != 0)
			return false;
	}
	return true;
}

/* openretina's HDF5 reader takes test_names and base_data_path twice, once
** for load_stimuli and once for load_responses; fovea reads the directory
** once, so the two must agree with what it uses. */
static fv_status check_steps_agree(const fv_config_node *data_io, const fv_data_options *o)
{
	static const char *const steps[] = {"stimuli", "responses"};
	for (size_t i = 0; i < 2; i++) {
		char key[64];
		snprintf(key, sizeof key, "%s.test_names", steps[i]);
		const fv_config_node *names = fv_node_path(data_io, key);
		if (names != NULL && !fv_node_is_null(names) && o->n_test_names > 0 &&
		    !same_names(names, o))
			return fv_error_at(names, FV_ERR_CONFIG, "%s: differs from data_io.test_names; "
			                   "fovea reads one test split for stimuli and responses",
			                   fv_node_keypath(names));
		snprintf(key, sizeof key, "%s.base_data_path", steps[i]);
		const char *path = fv_node_text(fv_node_path(data_io, key));
		if (path != NULL && o->data_dir != NULL && strcmp(path, o->data_dir) != 0)
			return fv_error_at(fv_node_path(data_io, key), FV_ERR_CONFIG, "%s: '%s' differs "
			                   "from stimuli.base_data_path '%s'; fovea reads one directory",
			                   fv_node_keypath(fv_node_path(data_io, key)), path, o->data_dir);
	}
	return FV_OK;
}

/* stimuli.stimulus_size [C, H, W] as load_stimuli takes it, else the
** separate color_channels / video_height / video_width keys. */
static fv_status read_stimulus_size(const fv_config_node *data_io, fv_data_options *o)
{
	const fv_config_node *n = fv_node_path(data_io, "stimuli.stimulus_size");
	if (n == NULL || fv_node_is_null(n)) {
		fv_status rc = read_int(data_io, "color_channels", &o->color_channels);
		if (rc == FV_OK)
			rc = read_int(data_io, "video_height", &o->video_height);
		if (rc == FV_OK)
			rc = read_int(data_io, "video_width", &o->video_width);
		return rc;
	}
	if (fv_node_kind(n) != FV_NODE_SEQ || fv_node_size(n) != 3)
		return bad_type(n, "a list of three sizes (channels, height, width)");
	int64_t *dst[3] = {&o->color_channels, &o->video_height, &o->video_width};
	for (size_t i = 0; i < 3; i++) {
		fv_status rc = fv_node_to_int(fv_node_at(n, i), dst[i]);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

/* The data steps fovea runs: openretina's HDF5 reader and its movie data
** loaders.  Any other _target_ (a published dataset's reader, a lab's own)
** is refused by name: reading the directory with the generic reader instead
** would train on something the config did not ask for. */
static const char *const data_targets[] = {
	"openretina.data_io.h5_dataset_reader.load_stimuli",
	"openretina.data_io.h5_dataset_reader.load_responses",
	"openretina.data_io.base_dataloader.multiple_movies_dataloaders",
};
#define N_DATA_TARGETS (sizeof data_targets / sizeof data_targets[0])

const char *const *fv__data_generic_targets(size_t *n)
{
	*n = N_DATA_TARGETS;
	return data_targets;
}

bool fv__data_is_generic_target(const char *name)
{
	for (size_t i = 0; i < N_DATA_TARGETS; i++)
		if (strcmp(name, data_targets[i]) == 0)
			return true;
	return false;
}

static fv_status check_targets(const fv_config_node *n, int depth)
{
	if (depth > 32)
		return FV_OK; /* deeper nesting than any reader has: the reader refuses it */
	const fv_config_node *target = fv_node_kind(n) == FV_NODE_MAP ? fv_node_get(n, "_target_")
	                                                              : NULL;
	const char *name = fv_node_text(target);
	if (name != NULL) {
		bool known = false;
		for (size_t i = 0; i < N_DATA_TARGETS && !known; i++)
			known = strcmp(name, data_targets[i]) == 0;
		if (!known) {
			const char *near = fv_closest_name(name, data_targets, N_DATA_TARGETS);
			return fv_error_at(target, FV_ERR_NOTFOUND, "%s: fovea has no data step '%s' (it "
			                   "reads openretina's HDF5 layout: h5_dataset_reader.load_stimuli "
			                   "and load_responses, base_dataloader.multiple_movies_dataloaders)"
			                   "%s%s%s", fv_node_keypath(target), name,
			                   near ? "; did you mean '" : "", near ? near : "",
			                   near ? "'?" : "");
		}
	}
	for (size_t i = 0; i < fv_node_size(n); i++) {
		fv_status rc = check_targets(fv_node_at(n, i), depth + 1);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

static fv_status read_data_io(const fv_config_node *data_io, fv_data_options *o)
{
	if (fv_node_kind(data_io) != FV_NODE_MAP)
		return bad_type(data_io, "a map");
	fv_status rc = check_targets(data_io, 0);
	if (rc == FV_OK)
		rc = read_test_names(data_io, o);
	if (rc == FV_OK)
		rc = read_stimulus_size(data_io, o);
	if (rc == FV_OK)
		rc = read_text(data_io, "stimuli.base_data_path", &o->data_dir);
	if (rc == FV_OK && o->data_dir == NULL)
		rc = read_text(data_io, "responses.base_data_path", &o->data_dir);
	if (rc == FV_OK)
		rc = read_double(data_io, "stimuli.norm_mean", &o->norm_mean);
	if (rc == FV_OK)
		rc = read_double(data_io, "stimuli.norm_std", &o->norm_std);
	if (rc == FV_OK)
		rc = check_steps_agree(data_io, o);
	return rc;
}

static fv_status read_clip_indices(const fv_config_node *dataloader, fv_data_options *o)
{
	const fv_config_node *n = fv_node_get(dataloader, "val_clip_indices");
	if (n == NULL)
		n = fv_node_get(dataloader, "validation_clip_indices");
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	if (fv_node_kind(n) != FV_NODE_SEQ)
		return bad_type(n, "a list of clip indices");
	size_t count = fv_node_size(n);
	if (count > FV_DATA_MAX_VAL_CLIPS)
		return fv_error_at(n, FV_ERR_CONFIG,
		                   "%s: at most %d validation clips are supported, got %zu",
		                   fv_node_keypath(n), FV_DATA_MAX_VAL_CLIPS, count);
	for (size_t i = 0; i < count; i++) {
		const fv_config_node *item = fv_node_at(n, i);
		fv_status rc = fv_node_to_int(item, &o->validation_clips_storage_[i]);
		if (rc != FV_OK)
			return rc;
		/* A repeated clip would be validated twice and weigh double. */
		for (size_t j = 0; j < i; j++)
			if (o->validation_clips_storage_[j] == o->validation_clips_storage_[i])
				return fv_error_at(item, FV_ERR_CONFIG,
				                   "%s: clip %lld is listed twice (items %zu and %zu)",
				                   fv_node_keypath(n),
				                   (long long)o->validation_clips_storage_[i], j, i);
	}
	o->validation_clip_indices = o->validation_clips_storage_;
	o->n_validation_clip_indices = count;
	return FV_OK;
}

/* openretina passes the dataloader map as keyword arguments, so a
** misspelt key is an error there too. */
static const char *const dataloader_keys[] = {
	"_target_", "_convert_", "_recursive_", "_partial_", "batch_size", "train_chunk_size",
	"clip_length", "num_val_clips", "val_clip_indices", "validation_clip_indices",
	"allow_over_boundaries", "seed",
};
#define N_DATALOADER_KEYS (sizeof dataloader_keys / sizeof dataloader_keys[0])

static fv_status check_dataloader_keys(const fv_config_node *dl)
{
	for (size_t i = 0; i < fv_node_size(dl); i++) {
		const char *key = fv_node_key_at(dl, i);
		bool known = false;
		for (size_t k = 0; k < N_DATALOADER_KEYS && !known; k++)
			known = strcmp(key, dataloader_keys[k]) == 0;
		if (known)
			continue;
		const fv_config_node *n = fv_node_at(dl, i);
		const char *near = fv_closest_name(key, dataloader_keys, N_DATALOADER_KEYS);
		return fv_error_at(n, FV_ERR_CONFIG, "%s: unknown dataloader option%s%s%s",
		                   fv_node_keypath(n), near != NULL ? "; did you mean '" : "",
		                   near != NULL ? near : "", near != NULL ? "'?" : "");
	}
	return FV_OK;
}

static fv_status read_dataloader(const fv_config_node *dl, fv_data_options *o)
{
	if (fv_node_kind(dl) != FV_NODE_MAP)
		return bad_type(dl, "a map");
	fv_status rc = check_targets(dl, 0);
	if (rc == FV_OK)
		rc = check_dataloader_keys(dl);
	if (rc != FV_OK)
		return rc;
	rc = read_int(dl, "batch_size", &o->batch_size);
	if (rc == FV_OK)
		rc = read_int(dl, "train_chunk_size", &o->train_chunk_size);
	if (rc == FV_OK)
		rc = read_int(dl, "clip_length", &o->clip_length);
	if (rc == FV_OK)
		rc = read_int(dl, "num_val_clips", &o->num_val_clips);
	if (rc == FV_OK)
		rc = read_clip_indices(dl, o);
	const fv_config_node *n = fv_node_get(dl, "allow_over_boundaries");
	if (rc == FV_OK && n != NULL && !fv_node_is_null(n))
		rc = fv_node_to_bool(n, &o->allow_over_boundaries);
	int64_t seed = (int64_t)o->seed;
	if (rc == FV_OK && (rc = read_int(dl, "seed", &seed)) == FV_OK) {
		if (seed < 0 || seed > 0xffffffffLL)
			return fv_error_at(fv_node_get(dl, "seed"), FV_ERR_CONFIG,
			                   "dataloader.seed must be between 0 and 2**32 - 1, got %lld",
			                   (long long)seed);
		o->seed = (uint64_t)seed;
	}
	return rc;
}

fv_status fv_data_options_from_config(fv_data_options *o, const fv_config_node *data_io,
                                      const fv_config_node *dataloader)
{
	fv_status rc = data_io != NULL ? read_data_io(data_io, o) : FV_OK;
	if (rc == FV_OK && dataloader != NULL)
		rc = read_dataloader(dataloader, o);
	return rc;
}
