"""fovea.create_data() (synthetic recordings, as `fovea create-data`) and
fovea.evaluate() (openretina's metrics of a model on a data directory's
test stimuli, as `fovea eval`)."""
import ctypes
import difflib
import os

import numpy as np

from . import _lib
from ._lib import Error, lib

# keyword: field of fv_synthetic_options, named as create-data's options
_FOVEA_OPTIONS = {"seed": "seed", "sessions": "n_sessions", "channels": "channels",
                  "height": "height", "width": "width", "frames": "train_frames",
                  "train_stimuli": "n_train_stimuli", "test_frames": "test_frames",
                  "trials": "n_test_trials", "filter_length": "filter_length", "rate": "rate"}
_OPENRETINA_OPTIONS = {"seed": "seed", "num_colors": "num_colors",
                       "num_stimuli": "num_stimuli", "num_sessions": "num_sessions",
                       "clip_length": "clip_length"}


def _unknown(key, known, layout):
    near = difflib.get_close_matches(key, list(known), n=1)
    return Error("create_data: unknown option '%s' for layout '%s'%s (options: %s)" % (
        key, layout, "; did you mean '%s'?" % near[0] if near else "", ", ".join(sorted(known))),
        _lib.ERR_ARG)


def _set(struct, field, key, value):
    kind = dict(struct._fields_)[field]
    if kind is ctypes.c_double:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if ok and (value < 0 or value >= 2 ** 31 and kind is ctypes.c_int):
            raise Error("create_data: %s=%r is out of range" % (key, value), _lib.ERR_ARG)
    if not ok:
        raise Error("create_data: %s: expected a number, got %r" % (key, value), _lib.ERR_ARG)
    setattr(struct, field, value)


def create_data(dir, layout="fovea", **options):
    """Write a synthetic data set in openretina's HDF5 layout into `dir`
    (layout "fovea": planted receptive fields and ground_truth.json; options
    seed, sessions, neurons (list, per session), channels, height, width,
    frames, train_stimuli, test_frames, trials, filter_length, rate), or
    what `openretina create-data` writes (layout "openretina": seed,
    num_colors, num_stimuli, num_sessions, clip_length).  Returns dir."""
    if layout == "fovea":
        o = _lib.SyntheticOptions()
        lib.fv_synthetic_options_default(ctypes.byref(o))
        neurons = options.pop("neurons", None)
        for key, value in options.items():
            if key not in _FOVEA_OPTIONS:
                raise _unknown(key, list(_FOVEA_OPTIONS) + ["neurons"], layout)
            _set(o, _FOVEA_OPTIONS[key], key, value)
        if neurons is not None:
            counts = list(neurons) if not isinstance(neurons, int) else [neurons]
            if not counts or any(not isinstance(n, (int, np.integer)) or n < 1 for n in counts):
                raise Error("create_data: neurons: expected positive integers, got %r"
                            % (neurons,), _lib.ERR_ARG)
            arr = (ctypes.c_int64 * len(counts))(*counts)
            o.n_neurons, o.n_n_neurons = arr, len(counts)
            if "sessions" not in options:  # one session per count, as create-data
                o.n_sessions = len(counts)
        _lib.check(lib.fv_synthetic_write(_lib.enc(dir), ctypes.byref(o)))
    elif layout == "openretina":
        o = _lib.OpenretinaDataOptions()
        lib.fv_openretina_data_options_default(ctypes.byref(o))
        for key, value in options.items():
            if key not in _OPENRETINA_OPTIONS:
                raise _unknown(key, _OPENRETINA_OPTIONS, layout)
            _set(o, _OPENRETINA_OPTIONS[key], key, value)
        if o.num_sessions < 1 or o.num_sessions > 1000:
            raise Error("create_data: num_sessions must be 1..1000", _lib.ERR_ARG)
        counts = (ctypes.c_int64 * o.num_sessions)()
        _lib.check(lib.fv_openretina_data_write(_lib.enc(dir), ctypes.byref(o), counts))
    else:
        raise Error("create_data: layout must be 'fovea' or 'openretina', got %r" % (layout,),
                    _lib.ERR_ARG)
    return dir


# ---- evaluation ------------------------------------------------------------------------

_NEURON_FIELDS = ("poisson_loss", "corr", "mse", "feve", "jackknife", "var_ratio",
                  "corr_ceiling")


def _open_data(model, data_dir):
    """The data directory, split and cut as the model's config says."""
    module, ckpt = model._handle()
    text = lib.fv_checkpoint_config_yaml(ckpt) or b"{}"
    cfg = lib.fv_config_load_string(text, len(text), b"the model's config")
    if not cfg:
        raise _lib.last_error()
    try:
        root = lib.fv_config_root(cfg)
        o = _lib.DataOptions()
        lib.fv_data_options_default(ctypes.byref(o))
        _lib.check(lib.fv_data_options_from_config(
            ctypes.byref(o), lib.fv_node_get(root, b"data_io"), lib.fv_node_get(root, b"dataloader")))
        o.data_dir = _lib.enc(data_dir)
        data = ctypes.c_void_p()
        _lib.check(lib.fv_data_open(ctypes.byref(o), ctypes.byref(data)))
        return data
    finally:
        lib.fv_config_free(cfg)


def _check_sessions(model, data):
    for i in range(lib.fv_data_n_sessions(data)):
        s = _lib.dec(lib.fv_data_session_name(data, i))
        if s not in model.sessions:
            raise Error("session '%s' of the data has no readout in %s (its sessions: %s)"
                        % (s, model.path, ", ".join(model.sessions)), _lib.ERR_NOTFOUND)


def _collect(result):
    n = lib.fv_eval_n_neurons(result)
    cols = {k: np.empty(n) for k in _NEURON_FIELDS}
    sessions, splits, index = [], [], np.empty(n, np.int64)
    for i in range(n):
        r = lib.fv_eval_neuron_at(result, i).contents
        sessions.append(_lib.dec(r.session))
        splits.append(_lib.dec(r.split))
        index[i] = r.index
        for k in _NEURON_FIELDS:
            cols[k][i] = getattr(r, k)
    out = {"session": np.array(sessions), "split": np.array(splits), "neuron": index}
    out.update(cols)
    s = lib.fv_eval_get_summary(result).contents
    out["summary"] = {name: (_lib.dec(getattr(s, name)) if name == "data_split"
                             else getattr(s, name)) for name, _ in s._fields_}
    return out


def _frame(result):
    try:
        import pandas
    except ImportError:
        raise Error("evaluate(as_frame=True) needs pandas (Debian: python3-pandas)",
                    _lib.ERR_ARG) from None
    summary = result.pop("summary")
    frame = pandas.DataFrame(result)
    frame.attrs["summary"] = summary
    return frame


def evaluate(model, data_dir, split=None, var_ratio_cutoff=0.15, as_frame=False):
    """openretina's metrics of `model` on the test stimuli of `data_dir`
    (read as the model's config says): per neuron, arrays under session,
    split, neuron, corr (to the trial average), feve, jackknife, var_ratio,
    corr_ceiling, mse, poisson_loss; "summary" holds the summary dict of
    eval_summary.json.  as_frame=True: a pandas DataFrame of the per-neuron
    columns, the summary in its attrs["summary"]."""
    if not os.path.isdir(data_dir):
        raise Error("%s: not a data directory" % data_dir, _lib.ERR_IO)
    with model._lock:
        model._apply_threads()
        data = _open_data(model, data_dir)
        result = ctypes.c_void_p()
        try:
            _check_sessions(model, data)
            o = _lib.EvalOptions(split=_lib.enc(split), var_ratio_cutoff=var_ratio_cutoff,
                                 model_path=_lib.enc(model.path))
            _lib.check(lib.fv_evaluate(model._handle()[0], data, ctypes.byref(o),
                                       ctypes.byref(result)))
            out = _collect(result)
            return _frame(out) if as_frame else out
        finally:
            lib.fv_eval_result_free(result)
            lib.fv_data_close(data)


def test_set(model, data_dir, session):
    """The test stimuli of one session of `data_dir`, read as the model's
    config says (as evaluate() reads them): a list of dicts with stimulus
    (its name), movie (C, T, H, W, normalised: the model's units, so
    model(movie, session=...) predicts it), responses (T, neurons: the trial
    average) and trials ((trials, T, neurons), or None).  The prediction
    lacks the first `lag` frames: compare it with responses[-len(pred):]."""
    if not os.path.isdir(data_dir):
        raise Error("%s: not a data directory" % data_dir, _lib.ERR_IO)
    with model._lock:
        data = _open_data(model, data_dir)
        try:
            k = lib.fv_data_find_session(data, _lib.enc(session))
            if k < 0:
                raise Error("%s has no session %r" % (data_dir, session), _lib.ERR_NOTFOUND)
            out = []
            for i in range(lib.fv_data_n_test(data, k)):
                m = lib.fv_data_test(data, k, i).contents
                out.append({"stimulus": _lib.dec(m.stimulus),
                            "movie": _lib.tensor_array(m.movie),
                            "responses": _lib.tensor_array(m.responses),
                            "trials": _lib.tensor_array(m.responses_by_trial)
                            if m.responses_by_trial else None})
            return out
        finally:
            lib.fv_data_close(data)
