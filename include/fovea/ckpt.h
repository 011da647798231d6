/*
** ckpt.h: reading PyTorch and PyTorch Lightning checkpoints (`.ckpt`,
** `.pt`) without executing anything.
**
** A checkpoint is torch's zip format: a pickle (`PREFIX/data.pkl`) that
** describes the saved object, and one raw record (`PREFIX/data/KEY`) per
** tensor storage.  The pickle is run by a small machine in C that knows
** the opcodes of pickle protocols 0 to 5 a data-only pickle uses and
** resolves a GLOBAL only against an allow-list: torch's storage types and
** tensor rebuilders, OrderedDict and defaultdict, numpy arrays, dtypes and
** scalars, `_codecs.encode`, omegaconf's containers and value nodes,
** typing.Any and the builtin container and number types.  Nothing named in
** the file is ever imported or called: each allow-listed name has a rule
** in C that builds an inert value.  Everything else is refused with
** FV_ERR_FORMAT and a message naming the file, the byte offset in data.pkl
** and the opcode or GLOBAL (`module.name`): any other GLOBAL, the opcodes
** INST, OBJ, EXT1/2/4 and out-of-band buffers, a REDUCE, NEWOBJ or BUILD on
** something not allow-listed for it, a storage or tensor view that reaches
** past its record, a compressed or encrypted zip record (torch writes every
** record stored: refused before anything is inflated), a declared size
** larger than the file, legacy (pre-1.6, non-zip) files, and every limit
** of fv_ckpt_limits.
**
** What comes out is a tree of fv_pyval owned by the fv_ckpt:
**   - None, bool, int (64-bit; larger integers are refused), float
**     (double), str (UTF-8, NUL-terminated), bytes;
**   - tuple, list, set/frozenset, dict (insertion order kept; OrderedDict
**     and defaultdict are dicts), slice (three items: start, stop, step);
**   - torch tensors and numpy arrays as dense row-major arrays
**     (fv_ckpt_array): floating dtypes converted to float32, integer and
**     bool dtypes to int64, the dtype of the file recorded.  A view
**     (storage offset, strides, Fortran order) is copied out contiguous
**     after its extent was checked against the storage's record;
**   - numpy scalars as int, float or bool;
**   - omegaconf DictConfig/ListConfig as plain dicts/lists of plain values
**     (their `_content`; value nodes are their `_val`).  `${...}`
**     interpolations and `???` stay strings exactly as written: nothing is
**     resolved, least of all against the environment;
**   - an allow-listed class or function that appears as a value
**     (typing.Any, builtins.dict) is an FV_PY_GLOBAL; any other allow-listed
**     object left over (a numpy dtype, omegaconf metadata, a storage outside
**     a tensor) an FV_PY_OBJECT; both only carry their type name.
** A value may appear in several places (the pickle memo shares it), but
** the tree has no cycles and is at most `max_depth` containers deep (both
** checked when loading), so a recursive walk over it ends.
**
** Every accessor accepts NULL and a value of the wrong kind and then
** returns the neutral answer (NULL, 0, FV_PY_NONE) or, for the typed reads,
** FV_ERR_FORMAT with a message saying what the value is.
*/
#ifndef FOVEA_CKPT_H
#define FOVEA_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fovea.h"
#include "safetensors.h" /* fv_dtype */
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_ckpt fv_ckpt;
typedef struct fv_pyval fv_pyval;

/* ---- loading ------------------------------------------------------------------ */

/* What a checkpoint may cost.  A limit of 0 takes the default. */
typedef struct fv_ckpt_limits {
	/* Every byte the reader allocates: records, values, tensors, the
	** machine's stack and memo.  Default: 1 GiB + 16 x the file size (a
	** bool or int8 storage becomes int64, 8 bytes an element). */
	size_t max_bytes;
	/* Containers nested in containers.  Default 1000 (Python's own
	** recursion limit: torch cannot have pickled anything deeper). */
	size_t max_depth;
	/* Entries of the machine's stack, and of its mark stack.  Default 2^20. */
	size_t max_stack;
	/* Highest memo index + 1.  Default 2^22. */
	size_t max_memo;
} fv_ckpt_limits;

/* Read a checkpoint file.  `limits` may be NULL (all defaults). */
FV_API fv_ckpt *fv_ckpt_open(const char *path, const fv_ckpt_limits *limits);
/* The same from a buffer (not kept); `name` is the file name in messages. */
FV_API fv_ckpt *fv_ckpt_from_memory(const void *buf, size_t len, const char *name,
                                    const fv_ckpt_limits *limits);
FV_API void fv_ckpt_close(fv_ckpt *c);
/* A plain pickle file (pickle.dump, not torch's zip), read by the same
** machine under the same allow-list and limits; its object is the root.
** Persistent ids (storages) are refused.  Close with fv_ckpt_close(). */
FV_API fv_ckpt *fv_pickle_open(const char *path, const fv_ckpt_limits *limits);

/* The object that was saved (for Lightning, the checkpoint dict). */
FV_API const fv_pyval *fv_ckpt_root(const fv_ckpt *c);
/* The path or buffer name given when opening. */
FV_API const char *fv_ckpt_name(const fv_ckpt *c);
/* The zip record prefix: "archive" (saved through a buffer, as Lightning
** does) or the file stem (torch.save to a path). */
FV_API const char *fv_ckpt_record_prefix(const fv_ckpt *c);
/* The pickle protocol of data.pkl (2 for torch's default). */
FV_API int fv_ckpt_protocol(const fv_ckpt *c);

/* The model's parameters and buffers, name -> tensor, in saved order:
** root["state_dict"] of a Lightning checkpoint, or the root itself when it
** is a dict of tensors (torch.save(model.state_dict())).  NULL with
** FV_ERR_NOTFOUND otherwise. */
FV_API const fv_pyval *fv_ckpt_state_dict(const fv_ckpt *c);
/* root["hyper_parameters"] (Lightning's save_hyperparameters), or NULL
** with FV_ERR_NOTFOUND when the model never saved any. */
FV_API const fv_pyval *fv_ckpt_hyper_parameters(const fv_ckpt *c);

/* ---- values ------------------------------------------------------------------- */

typedef enum fv_pyval_kind {
	FV_PY_NONE,
	FV_PY_BOOL,
	FV_PY_INT,
	FV_PY_FLOAT,
	FV_PY_STR,
	FV_PY_BYTES,   /* bytes and bytearray */
	FV_PY_TUPLE,
	FV_PY_LIST,
	FV_PY_SET,     /* set and frozenset */
	FV_PY_DICT,
	FV_PY_SLICE,   /* three items: start, stop, step */
	FV_PY_TENSOR,  /* torch.Tensor or torch.nn.Parameter */
	FV_PY_NDARRAY, /* numpy.ndarray */
	FV_PY_GLOBAL,  /* an allow-listed class or function as a value */
	FV_PY_OBJECT   /* another allow-listed object, kept opaque */
} fv_pyval_kind;

FV_API fv_pyval_kind fv_pyval_kind_of(const fv_pyval *v);
/* Python's name for the value's type: "dict", "frozenset", "torch.Tensor",
** "numpy.ndarray", "typing.Any" (for a GLOBAL, the global itself),
** "omegaconf.base.Metadata"; "NoneType" for NULL. */
FV_API const char *fv_pyval_type_name(const fv_pyval *v);

/* Typed reads.  to_bool takes a bool; to_int a bool or an int; to_double a
** bool, an int or a float.  Anything else: FV_ERR_FORMAT, "expected an
** int, got a str". */
FV_API fv_status fv_pyval_to_bool(const fv_pyval *v, bool *out);
FV_API fv_status fv_pyval_to_int(const fv_pyval *v, int64_t *out);
FV_API fv_status fv_pyval_to_double(const fv_pyval *v, double *out);
/* A str's text (NUL-terminated; it may hold NULs, *len says how long), or
** NULL.  `len` may be NULL. */
FV_API const char *fv_pyval_str(const fv_pyval *v, size_t *len);
/* A bytes value's contents, or NULL.  `len` may be NULL. */
FV_API const unsigned char *fv_pyval_bytes(const fv_pyval *v, size_t *len);

/* Items of a tuple, list, set or slice, entries of a dict; 0 otherwise. */
FV_API size_t fv_pyval_len(const fv_pyval *v);
/* Item i of a tuple/list/set/slice, or the value of entry i of a dict. */
FV_API const fv_pyval *fv_pyval_item(const fv_pyval *v, size_t i);
/* The key of entry i of a dict (NULL for anything else). */
FV_API const fv_pyval *fv_pyval_key(const fv_pyval *v, size_t i);
/* The value of a dict's str key, or NULL. */
FV_API const fv_pyval *fv_pyval_get(const fv_pyval *dict, const char *key);
/* Follow a dotted path of dict str keys and list/tuple indices from v:
** "hyper_parameters.data_info.n_neurons_dict", "optimizer_states.0.state".
** Keys that contain a '.' (state_dict names) need fv_pyval_get. */
FV_API const fv_pyval *fv_pyval_path(const fv_pyval *v, const char *path);

#define FV_CKPT_MAX_DIMS 16

/* A tensor or array.  Exactly one of f32 / i64 is set (both NULL only
** when numel is 0). */
typedef struct fv_ckpt_array {
	fv_dtype dtype;       /* element type in the file */
	int ndim;
	int64_t shape[FV_CKPT_MAX_DIMS];
	int64_t numel;
	const float *f32;     /* F64, F32, F16, BF16: converted to float32 */
	const int64_t *i64;   /* I64, I32, I16, I8, U8, BOOL: as int64 */
	bool requires_grad;   /* torch tensors only */
	bool is_parameter;    /* saved as a torch.nn.Parameter */
} fv_ckpt_array;

/* The array of an FV_PY_TENSOR or FV_PY_NDARRAY, or NULL. */
FV_API const fv_ckpt_array *fv_pyval_array(const fv_pyval *v);
/* A new persistent fv_tensor with the array's values (integers converted
** to fv_real), named `name` when not NULL.  FV_ERR_SHAPE beyond
** FV_MAX_DIMS dims, FV_ERR_FORMAT when v is not a tensor or array. */
FV_API fv_tensor *fv_pyval_tensor(const fv_pyval *v, const char *name);

/* A configuration tree with the value (a dict or a list) as its root, for
** fovea's typed reads and option tables: dicts become maps (str keys, and
** int/float/bool/None keys as their text), tuples, lists and sets
** sequences, None null, bool/int/float plain scalars (floats as Python
** prints them: 0.01, 1e-08, .inf), str quoted scalars (so "3" stays a
** string, while `${...}` and `???` keep their OmegaConf meaning for a
** later fv_config_resolve), tensors and arrays nested sequences of
** numbers, globals their dotted name.  Bytes, slices and opaque objects
** are FV_ERR_CONFIG naming the key path.  `name` is the file name the
** nodes report (e.g. "model.ckpt:hyper_parameters"). */
FV_API fv_config *fv_pyval_to_config(const fv_pyval *v, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_CKPT_H */
