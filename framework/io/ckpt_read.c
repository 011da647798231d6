/*
** ckpt_read.c: reading a checkpoint: the zip container (torchzip.c), its
** data.pkl through the pickle machine (pickle.c), the storage records it
** names read as the machine asks for them, and the handle fv_ckpt that
** owns the resulting values.
**
** Each storage record is read at most once, when the first persistent id
** names it, and dropped when the load ends: by then every tensor has its
** own dense float32 or int64 copy.  Record buffers are charged to the
** same budget as the values.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "io/ckpt_internal.h"

struct fv_ckpt {
	char *name;
	char *prefix;
	fv__pypool *pool;
	fv_pyval *root;
	int protocol;
};

/* The storage records of an open archive, read on demand. */
typedef struct zip_records {
	fv__torchzip *z;
	fv__pypool *pool;
	unsigned char **cache; /* per zip entry */
} zip_records;

static fv_status read_entry(fv__torchzip *z, fv__pypool *pool, int64_t e, unsigned char **out)
{
	size_t n = fv__torchzip_size(z, e);
	if (fv__pypool_charge(pool, n) != FV_OK)
		return FV_ERR_FORMAT;
	unsigned char *buf = fv__malloc(n ? n : 1);
	if (buf == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	fv_status s = fv__torchzip_read(z, e, buf);
	if (s != FV_OK) {
		free(buf);
		return s;
	}
	*out = buf;
	return FV_OK;
}

static fv_status get_record(void *ctx, const char *key, const unsigned char **data, size_t *len)
{
	zip_records *r = ctx;
	char name[300]; /* keys have at most 255 bytes (pickle_globals.c) */
	snprintf(name, sizeof name, "data/%s", key);
	int64_t e = fv__torchzip_find(r->z, name);
	if (e < 0)
		return fv_error(FV_ERR_FORMAT, "storage '%s': the archive has no record %s/data/%s", key,
		                fv__torchzip_prefix(r->z), key);
	if (r->cache[e] == NULL) {
		fv_status s = read_entry(r->z, r->pool, e, &r->cache[e]);
		if (s != FV_OK)
			return s;
	}
	*data = r->cache[e];
	*len = fv__torchzip_size(r->z, e);
	return FV_OK;
}

static fv_ckpt *new_ckpt(const char *name, const char *prefix, fv__pypool *pool, fv_pyval *root,
                         int protocol)
{
	fv_ckpt *c = fv__calloc(1, sizeof *c);
	if (c == NULL || (c->name = fv__strdup(name)) == NULL ||
	    (c->prefix = fv__strdup(prefix)) == NULL) {
		if (c != NULL)
			free(c->name);
		free(c);
		fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		return NULL;
	}
	c->pool = pool;
	c->root = root;
	c->protocol = protocol;
	return c;
}

/* The load proper, after the container was opened and checked. */
static fv_ckpt *load(fv__torchzip *z, const char *name, const fv_ckpt_limits *limits)
{
	fv_ckpt_limits lim = fv__ckpt_limits(limits, fv__torchzip_file_size(z));
	fv__pypool *pool = fv__pypool_new(lim.max_bytes, lim.max_depth);
	if (pool == NULL)
		return NULL;
	const char *prefix = fv__torchzip_prefix(z);
	size_t plen = strlen(prefix);
	int64_t n = fv__torchzip_count(z), pe = fv__torchzip_find(z, "data.pkl");
	zip_records rec = {z, pool, NULL};
	unsigned char *pkl = NULL;
	fv_ckpt *c = NULL;
	fv_status s = fv__pypool_charge(pool, (size_t)n * sizeof *rec.cache);
	char *pkl_name = fv__malloc(plen + sizeof "/data.pkl");
	if (s == FV_OK && pkl_name != NULL)
		rec.cache = fv__calloc((size_t)n, sizeof *rec.cache);
	if (s == FV_OK && (pkl_name == NULL || rec.cache == NULL))
		s = fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	if (s == FV_OK) {
		memcpy(pkl_name, prefix, plen);
		memcpy(pkl_name + plen, "/data.pkl", sizeof "/data.pkl");
		s = read_entry(z, pool, pe, &pkl);
	}
	fv_pyval *root = NULL;
	int protocol = 0;
	if (s == FV_OK) {
		fv__storage_source src = {&rec, get_record, fv__torchzip_big_endian(z)};
		s = fv__unpickle(pkl, fv__torchzip_size(z, pe), name, pkl_name, &src, &lim, pool, &root,
		                 &protocol);
	}
	if (s == FV_OK)
		c = new_ckpt(name, prefix, pool, root, protocol);
	if (c == NULL)
		fv__pypool_free(pool);
	if (rec.cache != NULL)
		for (int64_t i = 0; i < n; i++)
			free(rec.cache[i]);
	free(rec.cache);
	free(pkl_name);
	free(pkl);
	return c;
}

fv_ckpt *fv_ckpt_open(const char *path, const fv_ckpt_limits *limits)
{
	if (path == NULL) {
		fv_error(FV_ERR_ARG, "fv_ckpt_open: NULL path");
		return NULL;
	}
	fv__torchzip *z = fv__torchzip_open_file(path);
	if (z == NULL)
		return NULL;
	fv_ckpt *c = load(z, path, limits);
	fv__torchzip_close(z);
	return c;
}

fv_ckpt *fv_ckpt_from_memory(const void *buf, size_t len, const char *name,
                             const fv_ckpt_limits *limits)
{
	if (name == NULL)
		name = "<memory>";
	fv__torchzip *z = fv__torchzip_open_memory(buf, len, name);
	if (z == NULL)
		return NULL;
	fv_ckpt *c = load(z, name, limits);
	fv__torchzip_close(z);
	return c;
}

fv_ckpt *fv__ckpt_from_pickle(const void *pkl, size_t len, const char *name,
                              const fv__storage_source *src, const fv_ckpt_limits *limits)
{
	if (name == NULL)
		name = "<memory>";
	fv_ckpt_limits lim = fv__ckpt_limits(limits, len);
	fv__pypool *pool = fv__pypool_new(lim.max_bytes, lim.max_depth);
	if (pool == NULL)
		return NULL;
	fv_pyval *root;
	int protocol;
	fv_ckpt *c = NULL;
	if (fv__unpickle(pkl, len, name, "data.pkl", src, &lim, pool, &root, &protocol) == FV_OK)
		c = new_ckpt(name, "", pool, root, protocol);
	if (c == NULL)
		fv__pypool_free(pool);
	return c;
}

void fv_ckpt_close(fv_ckpt *c)
{
	if (c == NULL)
		return;
	fv__pypool_free(c->pool);
	free(c->name);
	free(c->prefix);
	free(c);
}

const fv_pyval *fv_ckpt_root(const fv_ckpt *c)
{
	return c ? c->root : NULL;
}

const char *fv_ckpt_name(const fv_ckpt *c)
{
	return c ? c->name : NULL;
}

const char *fv_ckpt_record_prefix(const fv_ckpt *c)
{
	return c ? c->prefix : NULL;
}

int fv_ckpt_protocol(const fv_ckpt *c)
{
	return c ? c->protocol : 0;
}

/* A dict whose values are all tensors. */
static bool tensor_dict(const fv_pyval *d)
{
	if (fv_pyval_kind_of(d) != FV_PY_DICT)
		return false;
	for (size_t i = 0; i < fv_pyval_len(d); i++)
		if (fv_pyval_kind_of(fv_pyval_item(d, i)) != FV_PY_TENSOR)
			return false;
	return true;
}

const fv_pyval *fv_ckpt_state_dict(const fv_ckpt *c)
{
	if (c == NULL) {
		fv_error(FV_ERR_ARG, "fv_ckpt_state_dict: NULL checkpoint");
		return NULL;
	}
	const fv_pyval *sd = fv_pyval_get(c->root, "state_dict");
	if (tensor_dict(sd))
		return sd;
	if (tensor_dict(c->root))
		return c->root;
	fv_error(FV_ERR_NOTFOUND,
	         "%s: no state_dict: the checkpoint is %s without a 'state_dict' dict of tensors, "
	         "and not such a dict itself",
	         c->name, fv__pyval_a(c->root));
	return NULL;
}

const fv_pyval *fv_ckpt_hyper_parameters(const fv_ckpt *c)
{
	if (c == NULL) {
		fv_error(FV_ERR_ARG, "fv_ckpt_hyper_parameters: NULL checkpoint");
		return NULL;
	}
	const fv_pyval *hp = fv_pyval_get(c->root, "hyper_parameters");
	if (hp == NULL)
		fv_error(FV_ERR_NOTFOUND,
		         "%s: no hyper_parameters (the model never called save_hyperparameters; its "
		         "settings must come from elsewhere)",
		         c->name);
	return hp;
}
