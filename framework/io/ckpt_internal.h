/*
** ckpt_internal.h: the checkpoint reader's parts as they see each other.
**
**   pickle_value.c   the value pool: every value, container body and blob
**                    of a load, freed in one sweep (no recursion), with the
**                    allocation budget; containers, dict index, final
**                    depth and cycle check; the public fv_pyval accessors
**   pickle.c         the pickle machine: opcodes, stack, marks, memo
**   pickle_globals.c the allow-list and what REDUCE/NEWOBJ/BUILD mean for
**                    each allowed name; persistent ids (storages)
**   ckpt_array.c     tensors and numpy arrays: dtypes, bounds, strided
**                    copies, element conversion
**   torchzip.c       the zip container (libzip): layout and size checks
**   ckpt_read.c      the top level (fv_ckpt_*)
**   ckpt_config.c    a value tree as an fv_config tree
*/
#ifndef FOVEA_CKPT_INTERNAL_H
#define FOVEA_CKPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/ckpt.h"

/* ---- the value pool (pickle_value.c) ------------------------------------------------ */

typedef struct fv__pypool fv__pypool;
typedef struct fv__pyglobal fv__pyglobal; /* an allow-list entry (pickle_globals.c) */

/* An allow-listed object that is not (yet) a plain value: an omegaconf
** container or node before its BUILD, omegaconf metadata, a numpy dtype, an
** ndarray before its BUILD, a storage. */
typedef struct fv__pyobj {
	const fv__pyglobal *cls; /* its class */
	bool built;              /* BUILD was applied */
	fv_dtype dtype;          /* numpy.dtype, storage: the element type */
	bool big_endian;         /* numpy.dtype: byte order ('>') */
	const unsigned char *data; /* storage: the record (valid while loading) */
	int64_t numel;           /* storage: elements */
} fv__pyobj;

/* A container's contents.  Values that are the same Python object (an
** omegaconf DictConfig is its `_content`) share one body, so a change
** through one is seen through all. */
typedef struct fv__pybody {
	fv_pyval **items;    /* sequences: the items; dict: key0, value0, key1, ... */
	size_t n;            /* items, or dict entries */
	size_t cap;          /* pointers allocated in items */
	uint64_t *hashes;    /* dict: hash of each key (cap/2 of them) */
	uint32_t *index;     /* dict: open-addressing table of entry + 1, or NULL */
	size_t index_cap;    /* slots (a power of two), 0 without index */
	uint32_t depth;      /* containers nested inside, counting itself; a
	                        lower bound while loading, exact after the check */
	uint8_t mark;        /* the final check's colour */
} fv__pybody;

/* Value flags. */
enum {
	FV__PY_FROZEN = 1,   /* frozenset: ADDITEMS refused */
	FV__PY_ORDERED = 2,  /* made by OrderedDict: BUILD sets attributes (ignored) */
	FV__PY_SINGLETON = 4 /* the pool's None/True/False: never changed */
};

struct fv_pyval {
	uint8_t kind;        /* fv_pyval_kind */
	uint8_t flags;       /* FV__PY_* */
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			const char *s;   /* pool memory, NUL-terminated */
			size_t len;
			uint64_t hash;   /* as a dict key; 0 until computed */
		} str;               /* STR, BYTES */
		fv__pybody *body;    /* TUPLE, LIST, SET, DICT, SLICE */
		fv_ckpt_array *arr;  /* TENSOR, NDARRAY (pool memory) */
		const fv__pyglobal *g; /* GLOBAL */
		fv__pyobj *obj;      /* OBJECT */
	} u;
};

/* A pool refusing more than max_bytes in all and containers nested
** deeper than max_depth. */
fv__pypool *fv__pypool_new(size_t max_bytes, size_t max_depth);
void fv__pypool_free(fv__pypool *p);
/* Count n bytes against the budget: FV_ERR_FORMAT when it would be
** exceeded (the message says which limit). */
fv_status fv__pypool_charge(fv__pypool *p, size_t n);
size_t fv__pypool_used(const fv__pypool *p);
/* The status of the last failed allocation (budget or malloc), so that a
** caller given NULL returns the right code; the message is already set. */
fv_status fv__pypool_failure(const fv__pypool *p);
/* Memory freed with the pool (charged; 16-byte aligned). */
void *fv__pypool_blob(fv__pypool *p, size_t n);

fv_pyval *fv__pyval_new(fv__pypool *p, fv_pyval_kind kind);
fv_pyval *fv__pyval_none(fv__pypool *p);
fv_pyval *fv__pyval_bool(fv__pypool *p, bool b);
fv_pyval *fv__pyval_int(fv__pypool *p, int64_t i);
fv_pyval *fv__pyval_float(fv__pypool *p, double f);
/* A str or bytes value holding a copy of s[0..len). */
fv_pyval *fv__pyval_str(fv__pypool *p, fv_pyval_kind kind, const void *s, size_t len);
/* An empty container (TUPLE, LIST, SET, DICT, SLICE) with room for n. */
fv_pyval *fv__pyval_container(fv__pypool *p, fv_pyval_kind kind, size_t n);
/* An OBJECT of class cls (zeroed fields). */
fv_pyval *fv__pyval_object(fv__pypool *p, const fv__pyglobal *cls);

/* Append to a sequence's body (no kind check).  Errors: the depth limit
** (FV_ERR_FORMAT), the budget. */
fv_status fv__pyval_append(fv__pypool *p, fv_pyval *seq, fv_pyval *item);
/* dict[key] = value: replaces the value of an equal key, else appends.
** Unhashable keys (list, dict, set) are FV_ERR_FORMAT. */
fv_status fv__pyval_setitem(fv__pypool *p, fv_pyval *dict, fv_pyval *key, fv_pyval *value);
/* The value of a str key, or NULL. */
fv_pyval *fv__pyval_dict_get(const fv_pyval *dict, const char *key, size_t len);
/* Make `dst` the same object as `src` (omegaconf's containers and nodes
** become their contents): same kind and payload, containers share the
** body.  The depth limit applies to nothing new. */
void fv__pyval_become(fv_pyval *dst, const fv_pyval *src);
/* Nesting depth of a value as known while loading (0 for non-containers). */
uint32_t fv__pyval_depth(const fv_pyval *v);
/* After loading: refuse a cycle or nesting beyond max_depth below root,
** and make every body's depth exact.  No recursion. */
fv_status fv__pyval_check_tree(fv__pypool *p, const fv_pyval *root);

/* "a dict", "an int": for messages. */
const char *fv__pyval_a(const fv_pyval *v);

/* ---- storages and the allow-list (pickle_globals.c) ------------------------------ */

/* Where the bytes of storage records come from. */
typedef struct fv__storage_source {
	void *ctx;
	/* The bytes of record data/<key> (valid until the load ends), or an
	** error (FV_ERR_FORMAT when there is no such record). */
	fv_status (*get)(void *ctx, const char *key, const unsigned char **data, size_t *len);
	bool big_endian; /* the archive's byteorder record */
} fv__storage_source;

/* The machine, as the rules of the allow-list see it. */
typedef struct fv__unpickler fv__unpickler;

fv__pypool *fv__unpickler_pool(fv__unpickler *u);
const fv__storage_source *fv__unpickler_storages(fv__unpickler *u);

/* The allow-list entry for module.name, or NULL. */
const fv__pyglobal *fv__pyglobal_find(const char *module, size_t mlen, const char *name,
                                      size_t nlen);
/* "module.name" of an entry, e.g. "typing.Any". */
const char *fv__pyglobal_dotted(const fv__pyglobal *g);

/* REDUCE(callable, args), NEWOBJ(cls, args), BUILD(obj, state) and
** persistent_load(pid).  Each sets *out (REDUCE/NEWOBJ/persid) or changes
** obj in place (BUILD); errors name the global and say what was wrong. */
fv_status fv__pyglobal_reduce(fv__unpickler *u, const fv_pyval *callable, fv_pyval *args,
                              fv_pyval **out);
fv_status fv__pyglobal_newobj(fv__unpickler *u, const fv_pyval *cls, fv_pyval *args,
                              fv_pyval **out);
fv_status fv__pyglobal_build(fv__unpickler *u, fv_pyval *obj, fv_pyval *state);
fv_status fv__persistent_load(fv__unpickler *u, fv_pyval *pid, fv_pyval **out);

/* ---- arrays (ckpt_array.c) -------------------------------------------------------- */

/* F64, F32, F16 and BF16 (element sizes: fv_dtype_size). */
bool fv__dtype_is_float(fv_dtype dt);

/* A strided view of raw elements: element k of the source is at byte
** k * elem size from `data`; the view reads elements offset + sum(i_d *
** stride_d).  The extent is checked against `src_numel`, the result counted
** against the pool's budget.  `big_endian` byte-swaps every element. */
typedef struct fv__view {
	const unsigned char *data;
	int64_t src_numel;
	fv_dtype dtype;
	bool big_endian;
	int64_t offset;
	int ndim;
	int64_t shape[FV_CKPT_MAX_DIMS];
	int64_t stride[FV_CKPT_MAX_DIMS];
} fv__view;

fv_status fv__array_from_view(fv__pypool *p, const fv__view *v, fv_ckpt_array **out);
/* One element as a Python number: int (integer types), float, or bool. */
fv_pyval *fv__scalar_from_bytes(fv__pypool *p, fv_dtype dt, bool big_endian,
                                const unsigned char *b);

/* ---- the machine (pickle.c) ------------------------------------------------------ */

/* Run `pkl` (named `pkl_name` inside `file` in messages) and return the
** saved object, owned by the pool.  `src` may be NULL: then a persistent
** id is refused. */
fv_status fv__unpickle(const unsigned char *pkl, size_t len, const char *file,
                       const char *pkl_name, const fv__storage_source *src,
                       const fv_ckpt_limits *lim, fv__pypool *pool, fv_pyval **root,
                       int *protocol);

/* Limits with defaults filled in, for a file of `file_size` bytes. */
fv_ckpt_limits fv__ckpt_limits(const fv_ckpt_limits *lim, size_t file_size);

/* The whole load from a pickle and a storage source (tests and fuzzing of
** the machine alone; fv_ckpt_* use it after opening the zip). */
fv_ckpt *fv__ckpt_from_pickle(const void *pkl, size_t len, const char *name,
                              const fv__storage_source *src, const fv_ckpt_limits *lim);

/* ---- the zip container (torchzip.c) -------------------------------------------- */

typedef struct fv__torchzip fv__torchzip;

/* Open and check the container: a zip whose records are all stored (not
** compressed, not encrypted), every declared size within the file, one
** PREFIX/data.pkl.  Legacy (pre-1.6) files are refused as unsupported.
** From memory the buffer must outlive the archive. */
fv__torchzip *fv__torchzip_open_file(const char *path);
fv__torchzip *fv__torchzip_open_memory(const void *buf, size_t len, const char *name);
void fv__torchzip_close(fv__torchzip *z);
const char *fv__torchzip_prefix(const fv__torchzip *z);
size_t fv__torchzip_file_size(const fv__torchzip *z);
bool fv__torchzip_big_endian(const fv__torchzip *z);
/* Number of entries. */
int64_t fv__torchzip_count(const fv__torchzip *z);
/* Entry number of PREFIX/name, or -1 (no message). */
int64_t fv__torchzip_find(const fv__torchzip *z, const char *name);
/* Size of an entry (checked against the file at open). */
size_t fv__torchzip_size(const fv__torchzip *z, int64_t entry);
/* Read an entry whole into buf (exactly fv__torchzip_size bytes). */
fv_status fv__torchzip_read(fv__torchzip *z, int64_t entry, unsigned char *buf);

#endif /* FOVEA_CKPT_INTERNAL_H */
