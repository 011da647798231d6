"""libfovea through ctypes: finding and loading the library, the C types the
package reads (mirrors of the public structs of include/fovea/*.h), the
prototypes of the functions it calls, and errors as fovea.Error.

ctypes releases the GIL for every call into libfovea, so predictions,
training and optimisations run while other Python threads go on.
"""
import ctypes
import ctypes.util
import os
import threading

try:
    from ._paths import LIBRARY as _BUILT_LIBRARY  # written by meson
except ImportError:  # the source tree itself: FOVEA_LIBRARY or the system's
    _BUILT_LIBRARY = None

# fv_status (fovea.h)
OK = 0
ERR_NOMEM = -1
ERR_IO = -2
ERR_FORMAT = -3
ERR_CONFIG = -4
ERR_SHAPE = -5
ERR_ARG = -6
ERR_PLUGIN = -7
ERR_NOTFOUND = -8


class Error(Exception):
    """A failure in fovea: `message` says what (file, key, expected value),
    `code` is libfovea's fv_status (fovea.ERR_SHAPE, ...)."""

    def __init__(self, message, code=ERR_ARG):
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self):
        return "fovea.Error(%r, code=%d)" % (self.message, self.code)


def _candidates():
    env = os.environ.get("FOVEA_LIBRARY")
    if env:
        return [env]
    found = ctypes.util.find_library("fovea")
    return [p for p in (_BUILT_LIBRARY, found) if p]


def _open_library():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("fovea: cannot load libfovea.so; tried " + "; ".join(tried or ["nothing"]) +
                      " (set FOVEA_LIBRARY to its path)")


lib, library_path = _open_library()
libc = ctypes.CDLL(None)
libc.free.argtypes = [ctypes.c_void_p]
libc.free.restype = None

# ---- mirrors of public structs -------------------------------------------------------

c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_double_p = ctypes.POINTER(ctypes.c_double)
MAX_DIMS = 6


class Tensor(ctypes.Structure):
    """fv_tensor (tensor.h), its leading fields."""
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS), ("numel", ctypes.c_int64)]


TensorP = ctypes.POINTER(Tensor)


class StimulusView(ctypes.Structure):
    """fv_stimulus_view (predict.h)."""
    _fields_ = [("data", ctypes.c_void_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 5), ("strides", ctypes.c_int64 * 5)]


class Option(ctypes.Structure):
    """fv_option (plugin.h)."""
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int), ("offset", ctypes.c_size_t),
                ("default", ctypes.c_char_p), ("min", ctypes.c_double),
                ("max", ctypes.c_double), ("flags", ctypes.c_uint),
                ("choices", ctypes.c_char_p), ("doc", ctypes.c_char_p)]


class Component(ctypes.Structure):
    """fv_component (plugin.h), its leading fields."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("kind", ctypes.c_int),
                ("names", ctypes.POINTER(ctypes.c_char_p)), ("doc", ctypes.c_char_p),
                ("options", ctypes.POINTER(Option))]


class CheckpointContent(ctypes.Structure):
    """fv_checkpoint_content (checkpoint.h)."""
    _fields_ = [("model", ctypes.c_void_p), ("config_yaml", ctypes.c_char_p),
                ("model_config_yaml", ctypes.c_char_p), ("data_info", ctypes.c_void_p),
                ("optimizer", ctypes.c_void_p), ("n_optim_params", ctypes.c_size_t),
                ("optim_params", ctypes.c_void_p), ("trainer_state", ctypes.c_char_p)]


class SyntheticOptions(ctypes.Structure):
    """fv_synthetic_options (data.h)."""
    _fields_ = [("seed", ctypes.c_uint64), ("n_sessions", ctypes.c_int),
                ("n_neurons", c_int64_p), ("n_n_neurons", ctypes.c_size_t),
                ("channels", ctypes.c_int64), ("height", ctypes.c_int64),
                ("width", ctypes.c_int64), ("train_frames", ctypes.c_int64),
                ("n_train_stimuli", ctypes.c_int), ("test_frames", ctypes.c_int64),
                ("n_test_trials", ctypes.c_int), ("filter_length", ctypes.c_int64),
                ("rate", ctypes.c_double)]


class OpenretinaDataOptions(ctypes.Structure):
    """fv_openretina_data_options (data.h)."""
    _fields_ = [("seed", ctypes.c_uint64), ("num_colors", ctypes.c_int64),
                ("num_stimuli", ctypes.c_int), ("num_sessions", ctypes.c_int),
                ("clip_length", ctypes.c_int64)]


class DataOptions(ctypes.Structure):
    """fv_data_options (data.h), storage included."""
    _fields_ = [("data_dir", ctypes.c_char_p), ("test_names", ctypes.c_void_p),
                ("n_test_names", ctypes.c_size_t), ("color_channels", ctypes.c_int64),
                ("video_height", ctypes.c_int64), ("video_width", ctypes.c_int64),
                ("norm_mean", ctypes.c_double), ("norm_std", ctypes.c_double),
                ("clip_length", ctypes.c_int64), ("num_val_clips", ctypes.c_int64),
                ("validation_clip_indices", c_int64_p),
                ("n_validation_clip_indices", ctypes.c_size_t),
                ("train_chunk_size", ctypes.c_int64), ("batch_size", ctypes.c_int64),
                ("seed", ctypes.c_uint64), ("allow_over_boundaries", ctypes.c_bool),
                ("test_names_storage_", ctypes.c_char_p * 64),
                ("validation_clips_storage_", ctypes.c_int64 * 1024)]


class MovieSet(ctypes.Structure):
    """fv_movie_set (data.h), its leading fields."""
    _fields_ = [("session", ctypes.c_char_p), ("stimulus", ctypes.c_char_p),
                ("movie", TensorP), ("responses", TensorP), ("responses_by_trial", TensorP)]


class EvalOptions(ctypes.Structure):
    """fv_eval_options (metrics.h)."""
    _fields_ = [("split", ctypes.c_char_p), ("var_ratio_cutoff", ctypes.c_double),
                ("model_path", ctypes.c_char_p), ("model_tag", ctypes.c_char_p),
                ("exp_name", ctypes.c_char_p), ("keep_responses", ctypes.c_bool),
                ("species", ctypes.c_char_p)]


class EvalNeuron(ctypes.Structure):
    """fv_eval_neuron (metrics.h)."""
    _fields_ = [("session", ctypes.c_char_p), ("split", ctypes.c_char_p),
                ("index", ctypes.c_int64), ("poisson_loss", ctypes.c_double),
                ("corr", ctypes.c_double), ("mse", ctypes.c_double), ("feve", ctypes.c_double),
                ("jackknife", ctypes.c_double), ("var_ratio", ctypes.c_double),
                ("corr_ceiling", ctypes.c_double), ("n_trials", ctypes.c_int64),
                ("corr_by_trial", c_double_p), ("mse_by_trial", c_double_p)]


class EvalSummary(ctypes.Structure):
    """fv_eval_summary (metrics.h)."""
    _fields_ = [("data_split", ctypes.c_char_p), ("temporal_lag", ctypes.c_int64),
                ("n_test_repeats_min", ctypes.c_int64), ("n_test_repeats_max", ctypes.c_int64),
                ("n_test_repeats_avg", ctypes.c_double), ("n_neurons_total", ctypes.c_int64),
                ("n_neurons_filtered", ctypes.c_int64), ("filtering_applied", ctypes.c_bool)] + [
                (name, ctypes.c_double) for name in (
                    "corr_to_avg_mean", "corr_by_trial_mean", "corr_by_trial_std",
                    "mse_to_avg_mean", "mse_by_trial_mean", "mse_by_trial_std", "feve_mean",
                    "fev_mean", "poisson_loss_mean", "jackknife_mean", "corr_ceiling_mean")] + [
                ("n_sessions", ctypes.c_int64)]


class Indices(ctypes.Structure):
    """fv_indices (insilico.h)."""
    _fields_ = [("n", ctypes.c_size_t), ("v", c_int64_p)]


class InsilicoJob(ctypes.Structure):
    """fv_insilico_job (insilico.h)."""
    _fields_ = [("checkpoint", ctypes.c_char_p), ("kind", ctypes.c_int),
                ("session", ctypes.c_char_p), ("layer", ctypes.c_char_p), ("units", Indices),
                ("on", Indices), ("n_off", ctypes.c_size_t),
                ("off", ctypes.POINTER(Indices)), ("seed", ctypes.c_uint64),
                ("reference", ctypes.c_char_p), ("model_yaml", ctypes.c_char_p)]


class InsilicoRecord(ctypes.Structure):
    """fv_insilico_record (insilico.h)."""
    _fields_ = [("stem", ctypes.c_char_p), ("dir", ctypes.c_char_p), ("unit", ctypes.c_int64),
                ("stimulus", TensorP), ("iterations", ctypes.c_size_t),
                ("objective_trace", c_double_p), ("loss_trace", c_double_p),
                ("final_objective", ctypes.c_double),
                ("seconds_per_iteration", ctypes.c_double),
                ("peak_channel", ctypes.c_int64), ("peak_row", ctypes.c_int64),
                ("peak_col", ctypes.c_int64)]


INSILICO_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(InsilicoRecord))


class InsilicoOptions(ctypes.Structure):
    """fv_insilico_options (insilico.h)."""
    _fields_ = [("out_dir", ctypes.c_char_p), ("progress", ctypes.c_int),
                ("out", ctypes.c_void_p), ("quiet", ctypes.c_bool),
                ("on_result", INSILICO_FN), ("ud", ctypes.c_void_p),
                ("shard_index", ctypes.c_int), ("shard_count", ctypes.c_int)]


class EpochReport(ctypes.Structure):
    """fv_epoch_report (trainer.h)."""
    _fields_ = [("epoch", ctypes.c_int64), ("max_epochs", ctypes.c_int64),
                ("n_metrics", ctypes.c_size_t), ("names", ctypes.POINTER(ctypes.c_char_p)),
                ("values", c_double_p), ("lr", ctypes.c_double), ("seconds", ctypes.c_double),
                ("best", ctypes.c_bool)]


BEST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64)
EPOCH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(EpochReport))
STOP_FN = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)


class TrainOptions(ctypes.Structure):
    """fv_train_options (trainer.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("progress", ctypes.c_int),
                ("out", ctypes.c_void_p), ("quiet", ctypes.c_bool),
                ("on_best", BEST_FN), ("ud", ctypes.c_void_p), ("on_epoch", EPOCH_FN),
                ("should_stop", STOP_FN), ("strict", ctypes.c_bool)]


class TrainResult(ctypes.Structure):
    """fv_train_result (trainer.h)."""
    _fields_ = [("epochs", ctypes.c_int64), ("best_epoch", ctypes.c_int64),
                ("best_value", ctypes.c_double), ("seconds", ctypes.c_double),
                ("seconds_per_epoch", ctypes.c_double), ("stopped_early", ctypes.c_bool),
                ("output_dir", ctypes.c_char * 4096), ("interrupted", ctypes.c_bool)]


VISIT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, TensorP,
                            ctypes.c_bool)

# ---- prototypes ------------------------------------------------------------------------

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_PROTOTYPES = {
    "fv_errmsg": (_S, []),
    "fv_errcode": (_I, []),
    "fv_clear_error": (None, []),
    "fv_set_num_threads": (None, [_I]),
    "fv_get_num_threads": (_I, []),
    "fv_registry_new": (_P, []),
    "fv_registry_free": (None, [_P]),
    "fv_registry_load_default": (_I, [_P]),
    "fv_registry_size": (ctypes.c_size_t, [_P]),
    "fv_registry_at": (ctypes.POINTER(Component), [_P, ctypes.c_size_t, ctypes.POINTER(_S)]),
    "fv_registry_find": (ctypes.POINTER(Component), [_P, _S, ctypes.POINTER(_S)]),
    "fv_registry_closest": (_S, [_P, _S]),
    "fv_kind_name": (_S, [_I]),
    "fv_checkpoint_open": (_P, [_S]),
    "fv_checkpoint_close": (None, [_P]),
    "fv_checkpoint_path": (_S, [_P]),
    "fv_checkpoint_config_yaml": (_S, [_P]),
    "fv_checkpoint_model_config_yaml": (_S, [_P]),
    "fv_checkpoint_data_info": (_P, [_P]),
    "fv_checkpoint_save": (_I, [_S, ctypes.POINTER(CheckpointContent)]),
    "fv_data_info_to_json": (_P, [_P]),
    "fv_model_load": (_P, [_P, _P, _P]),
    "fv_module_free": (None, [_P]),
    "fv_module_foreach_tensor": (_I, [_P, VISIT_FN, _P]),
    "fv_module_tensor": (TensorP, [_P, _S]),
    "fv_ctx_new": (_P, []),
    "fv_ctx_free": (None, [_P]),
    "fv_ctx_reset": (None, [_P]),
    "fv_predict": (TensorP, [_P, _P, _P, ctypes.POINTER(StimulusView), _S, ctypes.c_uint]),
    "fv_synthetic_options_default": (None, [ctypes.POINTER(SyntheticOptions)]),
    "fv_synthetic_write": (_I, [_S, ctypes.POINTER(SyntheticOptions)]),
    "fv_openretina_data_options_default": (None, [ctypes.POINTER(OpenretinaDataOptions)]),
    "fv_openretina_data_write": (_I, [_S, ctypes.POINTER(OpenretinaDataOptions), c_int64_p]),
    "fv_config_load_string": (_P, [_S, ctypes.c_size_t, _S]),
    "fv_config_compose": (_P, [_S, _S, _I, ctypes.POINTER(_S)]),
    "fv_config_free": (None, [_P]),
    "fv_config_root": (_P, [_P]),
    "fv_node_get": (_P, [_P, _S]),
    "fv_data_options_default": (None, [ctypes.POINTER(DataOptions)]),
    "fv_data_options_from_config": (_I, [ctypes.POINTER(DataOptions), _P, _P]),
    "fv_data_open": (_I, [ctypes.POINTER(DataOptions), ctypes.POINTER(_P)]),
    "fv_data_close": (None, [_P]),
    "fv_data_n_sessions": (ctypes.c_size_t, [_P]),
    "fv_data_session_name": (_S, [_P, ctypes.c_size_t]),
    "fv_data_find_session": (ctypes.c_int64, [_P, _S]),
    "fv_data_n_test": (ctypes.c_size_t, [_P, ctypes.c_size_t]),
    "fv_data_test": (ctypes.POINTER(MovieSet), [_P, ctypes.c_size_t, ctypes.c_size_t]),
    "fv_evaluate": (_I, [_P, _P, ctypes.POINTER(EvalOptions), ctypes.POINTER(_P)]),
    "fv_eval_result_free": (None, [_P]),
    "fv_eval_n_neurons": (ctypes.c_size_t, [_P]),
    "fv_eval_neuron_at": (ctypes.POINTER(EvalNeuron), [_P, ctypes.c_size_t]),
    "fv_eval_get_summary": (ctypes.POINTER(EvalSummary), [_P]),
    "fv_insilico_config_compose": (_P, [_I, _S, _I, ctypes.POINTER(_S)]),
    "fv_optimize_from_config": (_I, [_P, _P, ctypes.POINTER(InsilicoJob),
                                     ctypes.POINTER(InsilicoOptions), _P]),
    "fv_train": (_I, [_P, _P, ctypes.POINTER(TrainOptions), ctypes.POINTER(TrainResult)]),
}
for _name, (_res, _args) in _PROTOTYPES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


# ---- helpers ---------------------------------------------------------------------------

def enc(s):
    """A str (or path) as bytes for a char * argument; None stays NULL."""
    return None if s is None else os.fsencode(s)


def dec(b):
    return None if b is None else b.decode("utf-8", "replace")


def last_error(fallback="libfovea failed"):
    """fovea.Error of this thread's last libfovea failure."""
    code = lib.fv_errcode()
    msg = dec(lib.fv_errmsg()) or fallback
    return Error(msg, code if code != OK else ERR_ARG)


def check(status):
    if status != OK:
        raise last_error()


def tensor_array(tp, copy=True):
    """An fv_tensor's values as a float32 array of its shape (a copy, or a
    view of libfovea's memory when copy is False)."""
    import numpy as np
    t = tp.contents
    shape = tuple(t.shape[:t.ndim])
    if t.numel == 0:
        return np.zeros(shape, np.float32)
    a = np.ctypeslib.as_array(t.data, shape=(t.numel,)).reshape(shape)
    return a.copy() if copy else a


def take_string(ptr):
    """A malloc'd C string as str, freed."""
    if not ptr:
        raise last_error()
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        libc.free(ptr)


_registry = None
_registry_lock = threading.Lock()


def registry():
    """The plugins (built-in and $FOVEA_PLUGIN_PATH), loaded once per process."""
    global _registry
    with _registry_lock:
        if _registry is None:
            reg = lib.fv_registry_new()
            if not reg:
                raise last_error()
            if lib.fv_registry_load_default(reg) != OK:
                err = last_error()
                lib.fv_registry_free(reg)
                raise err
            _registry = reg
        return _registry
