/*
** fuzz_safetensors.c: libFuzzer target for the safetensors reader and
** fovea's JSON reading and writing (jansson, io/json.h) under it.
**
** Each input is tried as a whole safetensors file and, separately, as JSON
** text.  Whatever the reader accepts is then used the way fovea uses a
** checkpoint (every tensor converted, looked up by name, made into an
** fv_tensor; every metadata entry read), so an entry that passed validation
** but points outside the buffer shows up as an ASan report.  JSON text
** that loads is written back and must load as the same value (numbers
** bit for bit).  Rejections must leave a message naming the input.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/safetensors.h"
#include "io/json.h"

#define NAME "fuzz.safetensors"

static void use_entries(const fv_safetensors *st)
{
	size_t n = fv_safetensors_count(st);
	for (size_t i = 0; i < n; i++) {
		const fv_st_entry *e = fv_safetensors_at(st, i);
		if (fv_safetensors_find(st, e->name) != e)
			abort(); /* names are unique and findable */
		if ((size_t)e->numel * fv_dtype_size(e->dtype) != e->nbytes)
			abort();
		fv_real *v = malloc(e->numel > 0 ? (size_t)e->numel * sizeof *v : 1);
		if (v == NULL)
			continue;
		if (fv_safetensors_read(st, e->name, v, e->numel) != FV_OK)
			abort();
		free(v);
		fv_tensor *t = fv_safetensors_tensor(st, e->name);
		if (t == NULL && e->ndim <= FV_MAX_DIMS)
			abort();
		fv_tensor_free(t);
	}
	for (size_t i = 0; i < fv_safetensors_meta_count(st); i++) {
		const char *key = fv_safetensors_meta_key(st, i);
		const char *value = fv_safetensors_meta_value(st, i);
		if (fv_safetensors_meta(st, key) != value)
			abort();
	}
}

static void round_trip_json(const uint8_t *data, size_t size)
{
	json_t *v = NULL;
	if (fv__json_load((const char *)data, size, "fuzz.json", &v) != FV_OK) {
		if (strncmp(fv_errmsg(), "fuzz.json: ", 11) != 0)
			abort();
		return;
	}
	size_t len = 0;
	char *text = fv__json_dump(v, JSON_ENCODE_ANY | JSON_COMPACT, "fuzz.json", &len);
	json_t *back = NULL;
	if (text != NULL &&
	    (fv__json_load(text, len, "fuzz.json again", &back) != FV_OK || !json_equal(v, back)))
		abort(); /* what fovea writes must read back as it was */
	json_decref(back);
	free(text);
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fv_safetensors *st = fv_safetensors_from_memory(data, size, NAME);
	if (st != NULL) {
		use_entries(st);
		fv_safetensors_close(st);
	} else if (strncmp(fv_errmsg(), NAME ": ", strlen(NAME) + 2) != 0) {
		abort(); /* every rejection names the file */
	}
	round_trip_json(data, size);
	return 0;
}
