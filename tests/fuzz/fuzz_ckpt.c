/*
** fuzz_ckpt.c: libFuzzer target for the checkpoint reader.
**
** An input that starts like a zip file ("PK") is read as a whole
** checkpoint: the libzip container checks, data.pkl through the pickle
** machine, the storage records.  Any other input goes to the pickle
** machine alone, with made-up storage records (keys "0" to "15", record k
** holding 8 * (k + 1) bytes of a pattern), so that persistent ids, tensor
** views and every dtype are reached without the fuzzer having to build a
** zip around them.  The seed corpus (corpus/ckpt/, made by
** make_ckpt_seeds.py) has both kinds.
**
** Whatever loads is walked completely the way a converter would walk it
** (every container, string and tensor element read, the tree turned into
** a configuration), so a value that passed the checks but points outside
** its memory shows up as an ASan report.  A rejection must name the input.
** The limits are lowered so that one input cannot take seconds.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/ckpt.h"
#include "io/ckpt_internal.h"

#define NAME "fuzz.ckpt"

static const fv_ckpt_limits limits = {
	.max_bytes = 64 << 20,
	.max_depth = 200,
	.max_stack = 1 << 16,
	.max_memo = 1 << 16,
};

/* ---- made-up storage records for the bare pickle ------------------------------------- */

static unsigned char pattern[8 * 16];

static fv_status fake_get(void *ctx, const char *key, const unsigned char **data, size_t *len)
{
	(void)ctx;
	char *end;
	long k = strtol(key, &end, 10);
	if (*key == '\0' || *end != '\0' || k < 0 || k > 15)
		return fv_error(FV_ERR_FORMAT, "storage '%s': no record", key);
	*data = pattern;
	*len = 8 * (size_t)(k + 1);
	return FV_OK;
}

/* ---- using what loaded --------------------------------------------------------------- */

/* Visits are capped: shared values would otherwise be walked once per
** path to them. */
#define MAX_VISITS 200000

static volatile double sink;

static void use_value(const fv_pyval *v)
{
	size_t len;
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_STR: {
		const char *s = fv_pyval_str(v, &len);
		if (s == NULL || s[len] != '\0')
			abort();
		sink += memchr(s, 0, len + 1) != NULL;
		break;
	}
	case FV_PY_BYTES: {
		const unsigned char *b = fv_pyval_bytes(v, &len);
		for (size_t i = 0; i < len; i++)
			sink += b[i];
		break;
	}
	case FV_PY_TENSOR:
	case FV_PY_NDARRAY: {
		const fv_ckpt_array *a = fv_pyval_array(v);
		int64_t n = 1;
		for (int d = 0; d < a->ndim; d++)
			n *= a->shape[d];
		if (n != a->numel || (n > 0 && (a->f32 == NULL) == (a->i64 == NULL)))
			abort();
		for (int64_t i = 0; i < a->numel; i++)
			sink += a->f32 ? (double)a->f32[i] : (double)a->i64[i];
		break;
	}
	default: {
		double d;
		if (fv_pyval_to_double(v, &d) == FV_OK)
			sink += d;
		(void)fv_pyval_type_name(v);
	}
	}
}

static void walk(const fv_pyval *root)
{
	const fv_pyval **stack = malloc(MAX_VISITS * sizeof *stack);
	if (stack == NULL)
		return;
	size_t top = 0, visits = 0;
	stack[top++] = root;
	while (top > 0 && visits++ < MAX_VISITS) {
		const fv_pyval *v = stack[--top];
		use_value(v);
		size_t n = fv_pyval_len(v);
		for (size_t i = 0; i < n && top < MAX_VISITS - 2; i++) {
			const fv_pyval *item = fv_pyval_item(v, i), *key = fv_pyval_key(v, i);
			if (item == NULL)
				abort();
			stack[top++] = item;
			if (key != NULL) {
				stack[top++] = key;
				size_t klen;
				const char *s = fv_pyval_str(key, &klen);
				if (s != NULL && strlen(s) == klen && fv_pyval_get(v, s) == NULL)
					abort(); /* every str key (without NULs) is found again */
			}
		}
	}
	free(stack);
}

static void use(fv_ckpt *c)
{
	const fv_pyval *root = fv_ckpt_root(c);
	walk(root);
	fv_config *cfg = fv_pyval_to_config(root, "fuzz");
	if (cfg != NULL) {
		free(fv_config_to_yaml(cfg));
		fv_config_free(cfg);
	}
	const fv_pyval *sd = fv_ckpt_state_dict(c);
	for (size_t i = 0; i < fv_pyval_len(sd); i++) {
		fv_tensor *t = fv_pyval_tensor(fv_pyval_item(sd, i), NULL);
		fv_tensor_free(t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (pattern[1] == 0)
		for (size_t i = 0; i < sizeof pattern; i++)
			pattern[i] = (unsigned char)(i * 37 + 11);
	fv_ckpt *c;
	if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
		c = fv_ckpt_from_memory(data, size, NAME, &limits);
	} else {
		fv__storage_source src = {NULL, fake_get, size > 0 && (data[size - 1] & 1)};
		c = fv__ckpt_from_pickle(data, size, NAME, &src, &limits);
	}
	if (c == NULL) {
		if (strncmp(fv_errmsg(), NAME ": ", strlen(NAME) + 2) != 0)
			abort(); /* every rejection names the file */
		return 0;
	}
	use(c);
	fv_ckpt_close(c);
	return 0;
}
