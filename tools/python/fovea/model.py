"""fovea.Model: a trained model loaded from a checkpoint (fovea safetensors or
an openretina .ckpt), predicting on NumPy arrays, with its state_dict."""
import ctypes
import json
import os
import threading

import numpy as np

from . import _lib
from ._lib import Error, lib

_FLOAT_KINDS = "f"


def _element_strides(x):
    """NumPy's byte strides in float32 elements, or None when one is not a
    whole number of elements."""
    if any(s % x.itemsize for s in x.strides):
        return None
    return [s // x.itemsize for s in x.strides]


def as_stimulus(stimulus):
    """A float32 array of 4 or 5 dimensions; other float dtypes are
    converted (a copy), any other input is an Error."""
    try:
        x = np.asarray(stimulus)
    except Exception as e:  # ragged lists, objects that refuse conversion
        raise Error("stimulus: cannot be read as an array (%s)" % e, _lib.ERR_ARG) from None
    if x.dtype.kind not in _FLOAT_KINDS:
        raise Error("stimulus: dtype %s, expected float32 (or another float type, converted)"
                    % x.dtype, _lib.ERR_ARG)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim not in (4, 5):
        raise Error("stimulus of shape %s: expected (channels, time, height, width) or a batch "
                    "(batch, channels, time, height, width)" % (x.shape,), _lib.ERR_SHAPE)
    if _element_strides(x) is None:
        x = np.ascontiguousarray(x)
    return x


class Model:
    """A trained model (fovea.load(path)).

    sessions      the recording sessions (readouts), sorted
    n_neurons     {session: neurons}
    in_shape      the stimulus (channels, height, width) the model was trained on
    data_info     openretina's data_info: sessions, n_neurons_dict, mean activity,
                  input_shape, stim_mean, stim_std
    threads       threads of this model's computations (None: libfovea's setting)

    model(stimulus, session=...) is model.predict(stimulus, session=...).
    Calls on one model are serialised; two models run in parallel from two
    Python threads.
    """

    def __init__(self, path, threads=None):
        self.path = os.fspath(path)
        self.threads = threads
        self._lock = threading.RLock()
        self._ckpt = self._module = self._ctx = None
        self._dirty = False
        reg = _lib.registry()
        self._ckpt = lib.fv_checkpoint_open(_lib.enc(self.path))
        if not self._ckpt:
            raise _lib.last_error()
        try:
            self._module = lib.fv_model_load(reg, self._ckpt, None)
            if not self._module:
                raise _lib.last_error()
            self._ctx = lib.fv_ctx_new()
            if not self._ctx:
                raise _lib.last_error()
            info = self._info = lib.fv_checkpoint_data_info(self._ckpt)
            self.data_info = json.loads(_lib.take_string(lib.fv_data_info_to_json(info)))
        except BaseException:
            self.close()
            raise
        self.sessions = list(self.data_info.get("sessions", []))
        self.n_neurons = dict(self.data_info.get("n_neurons_dict", {}))
        self.in_shape = tuple(self.data_info.get("input_shape", ()))

    # ---- life cycle ---------------------------------------------------------------

    def close(self):
        """Free the model; any later call raises fovea.Error."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._ctx:
                lib.fv_ctx_free(self._ctx)
            if self._module:
                lib.fv_module_free(self._module)
            if self._ckpt:
                lib.fv_checkpoint_close(self._ckpt)
            self._ckpt = self._module = self._ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # at interpreter exit the module may be gone already
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._module:
            raise Error("%s: the model is closed" % self.path, _lib.ERR_ARG)

    def __repr__(self):
        if not self._module:
            return "<fovea.Model %s (closed)>" % self.path
        return "<fovea.Model %s: %d sessions, %d neurons, input %s>" % (
            self.path, len(self.sessions), sum(self.n_neurons.values()), self.in_shape)

    def _apply_threads(self):
        # OpenMP's thread count is a setting of the calling thread: set it
        # on the thread that computes.
        if self.threads is not None:
            if not isinstance(self.threads, int) or self.threads < 1:
                raise Error("threads: expected an integer >= 1, got %r" % (self.threads,),
                            _lib.ERR_ARG)
            if lib.fv_get_num_threads() != self.threads:  # resetting BLIS costs ms
                lib.fv_set_num_threads(self.threads)

    # ---- predictions --------------------------------------------------------------

    def __call__(self, stimulus, session=None, **kw):
        return self.predict(stimulus, session=session, **kw)

    def predict(self, stimulus, session=None, normalize=False, batch_size=None):
        """The predicted responses, float32 (batch, time - lag, neurons), or
        (time - lag, neurons) for one (channels, time, height, width) movie.

        stimulus   float32 array in any layout (read in place; other float
                   dtypes are converted first)
        session    the readout; None for a one-session model
        normalize  False: the stimulus is in the model's units, as openretina's
                   model(x) takes it (`fovea predict --raw`); True:
                   (x - stim_mean) / stim_std first, as `fovea predict` does
        batch_size run at most this many stimuli at once (memory), the output
                   is the same
        """
        x = as_stimulus(stimulus)
        single = x.ndim == 4
        if single:
            x = x[np.newaxis]
        if session is not None and not isinstance(session, str):
            raise Error("session: expected a name (str), got %r" % (session,), _lib.ERR_ARG)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise Error("batch_size: expected an integer >= 1, got %r" % (batch_size,),
                        _lib.ERR_ARG)
        n = x.shape[0]
        step = n if batch_size is None else batch_size
        out = None
        with self._lock:
            self._live()
            self._apply_threads()
            if step >= n:  # one call: the output copied once
                y = self._run(x, session, normalize).copy()
                return y[0] if single else y
            for start in range(0, n, step):
                y = self._run(x[start:start + step], session, normalize)
                if out is None:
                    out = np.empty((n,) + y.shape[1:], dtype=np.float32)
                out[start:start + y.shape[0]] = y
        return out[0] if single else out

    def _run(self, x, session, normalize):
        """One fv_predict call on a (N, C, T, H, W) float32 view; a view of
        the context's output (valid until the next call)."""
        view = _lib.StimulusView()
        view.data = x.ctypes.data
        view.ndim = 5
        view.shape[:] = x.shape
        view.strides[:] = _element_strides(x)
        lib.fv_ctx_reset(self._ctx)
        y = lib.fv_predict(self._module, self._ctx, self._info, ctypes.byref(view),
                           _lib.enc(session), 1 if normalize else 0)
        if not y:
            raise _lib.last_error()
        return _lib.tensor_array(y, copy=False)

    # ---- state ----------------------------------------------------------------------

    def _tensors(self):
        found = []

        def visit(ud, name, t, is_param):
            found.append((name.decode(), t))
            return 0

        cb = _lib.VISIT_FN(visit)
        lib.fv_module_foreach_tensor(self._module, cb, None)
        return found

    def state_dict(self):
        """{name: array}: every parameter and buffer under openretina's
        state_dict names (copies; BatchNorm's num_batches_tracked as int64)."""
        with self._lock:
            self._live()
            out = {}
            for name, t in self._tensors():
                a = _lib.tensor_array(t)
                if name.endswith("num_batches_tracked"):
                    a = a.astype(np.int64)
                out[name] = a
            return out

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the model's tensors (same names and shapes, as
        torch's load_state_dict); with strict, every tensor must be given and
        every name known.  Nothing changes unless all fit."""
        with self._lock:
            self._live()
            tensors = dict(self._tensors())
            unknown = [k for k in state if k not in tensors]
            missing = [k for k in tensors if k not in state]
            if unknown:
                raise Error("load_state_dict: unknown tensor '%s' (the model's tensors are "
                            "named as openretina's state_dict, e.g. '%s')"
                            % (unknown[0], next(iter(tensors), "")), _lib.ERR_NOTFOUND)
            if strict and missing:
                raise Error("load_state_dict: missing tensor '%s' (%d missing; strict=False "
                            "keeps their values)" % (missing[0], len(missing)), _lib.ERR_NOTFOUND)
            arrays = {}
            for name, value in state.items():
                c = tensors[name].contents
                shape = tuple(c.shape[:c.ndim])
                try:
                    a = np.array(value, dtype=np.float32, order="C")  # 0-d stays 0-d
                except (TypeError, ValueError) as e:
                    raise Error("load_state_dict: '%s': not numeric (%s)" % (name, e),
                                _lib.ERR_ARG) from None
                if a.shape != shape:
                    raise Error("load_state_dict: '%s' has shape %s, the model's %s"
                                % (name, a.shape, shape), _lib.ERR_SHAPE)
                arrays[name] = a
            for name, a in arrays.items():
                if a.size:
                    ctypes.memmove(tensors[name].contents.data, a.ctypes.data, a.nbytes)
            self._dirty = self._dirty or bool(arrays)

    def save(self, path):
        """Write the model as a fovea checkpoint (weights, config, data
        info), atomically."""
        with self._lock:
            self._live()
            content = _lib.CheckpointContent()
            content.model = self._module
            content.config_yaml = lib.fv_checkpoint_config_yaml(self._ckpt)
            content.model_config_yaml = lib.fv_checkpoint_model_config_yaml(self._ckpt)
            content.data_info = lib.fv_checkpoint_data_info(self._ckpt)
            _lib.check(lib.fv_checkpoint_save(_lib.enc(path), ctypes.byref(content)))

    def _handle(self):
        """(module, checkpoint) while the model is open."""
        self._live()
        return self._module, self._ckpt


def load(path, threads=None):
    """A trained model from a fovea checkpoint (.safetensors) or an
    openretina checkpoint (.ckpt)."""
    return Model(path, threads=threads)
