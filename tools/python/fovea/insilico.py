"""fovea.optimize_stimulus() and fovea.mei(): most exciting inputs (and
inner-unit MEIs, most discriminative stimuli) of a model, as `fovea mei` and
`fovea mds` compute them (openretina's visualize_model_neurons)."""
import ctypes
import os
import shutil
import tempfile

import numpy as np

from . import _lib
from ._lib import Error, lib

_KINDS = {"mei": 0, "inner_mei": 1, "mds": 2}


def _indices(name, values, keep):
    if values is None:
        return _lib.Indices()
    vals = [values] if isinstance(values, (int, np.integer)) else list(values)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in vals):
        raise Error("%s: expected indices (integers >= 0), got %r" % (name, values),
                    _lib.ERR_ARG)
    arr = (ctypes.c_int64 * max(len(vals), 1))(*vals)
    keep.append(arr)
    return _lib.Indices(len(vals), arr)


def _record(r):
    n = r.iterations
    trace = (lambda p: np.ctypeslib.as_array(p, shape=(n,)).copy() if n else np.zeros(0))
    return {"unit": r.unit, "stimulus": _lib.tensor_array(r.stimulus)[0],
            "objective": trace(r.objective_trace), "loss": trace(r.loss_trace),
            "final_objective": r.final_objective, "iterations": n,
            "seconds_per_iteration": r.seconds_per_iteration,
            "peak": (r.peak_channel, r.peak_row, r.peak_col),
            "files": os.path.join(_lib.dec(r.dir), _lib.dec(r.stem))}


def _compose(kind, config, overrides):
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise Error("overrides: expected a list of 'key=value' strings, got %r" % (overrides,),
                    _lib.ERR_ARG)
    overrides = list(overrides)
    arr = (ctypes.c_char_p * max(len(overrides), 1))(*[_lib.enc(o) for o in overrides])
    cfg = lib.fv_insilico_config_compose(kind, _lib.enc(config), len(overrides), arr)
    if not cfg:
        raise _lib.last_error()
    return cfg


def optimize_stimulus(model, kind="mei", session=None, units=None, layer=None, on=None,
                      off=None, config=None, overrides=(), seed=0, out_dir=None):
    """Optimise stimuli for `model` and return one dict per stimulus:
    stimulus (C, T, H, W, the model's normalised units), objective and loss
    (per iteration, before its step), final_objective, iterations, peak
    (channel, row, column), files (the .npy/.png/.json stem written).

    kind       "mei" (units: neurons of `session`; None: every one),
               "inner_mei" (units: channels of `layer`), or "mds" (`on`: the
               neurons to drive, `off`: a list of clusters to discriminate
               against)
    config     a YAML file of optimisation settings, then `overrides`
               ("stopper.max_iterations=100"); see docs/components/insilico.md
    seed       of the start stimulus
    out_dir    where the .npy/.png/.json files go (None: a temporary
               directory, removed)
    """
    if kind not in _KINDS:
        raise Error("kind: expected one of %s, got %r" % (", ".join(_KINDS), kind), _lib.ERR_ARG)
    if session is not None and session not in model.sessions:
        raise Error("the model has no session %r (it has %s)" % (session, ", ".join(model.sessions)),
                    _lib.ERR_NOTFOUND)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise Error("seed: expected an integer >= 0, got %r" % (seed,), _lib.ERR_ARG)
    keep = []
    job = _lib.InsilicoJob(kind=_KINDS[kind], session=_lib.enc(session), layer=_lib.enc(layer),
                           seed=seed)
    job.units = _indices("units", units, keep)
    job.on = _indices("on", on, keep)
    offs = [_indices("off", o, keep) for o in (off or [])]
    if offs:
        arr = (_lib.Indices * len(offs))(*offs)
        keep.append(arr)
        job.n_off, job.off = len(offs), arr
    results, failure = [], []

    def on_result(ud, rec):
        try:
            results.append(_record(rec.contents))
            return _lib.OK
        except BaseException as e:  # an exception cannot cross into C
            failure.append(e)
            return _lib.ERR_ARG

    cb = _lib.INSILICO_FN(on_result)
    tmp = tempfile.mkdtemp(prefix="fovea-mei-") if out_dir is None else None
    cfg = _compose(_KINDS[kind], config, overrides)
    try:
        with model._lock:
            model._live()
            model._apply_threads()
            path = model.path
            if model._dirty:  # the weights changed in memory: optimise those
                path = os.path.join(tmp or out_dir, "model.safetensors")
                model.save(path)
            job.checkpoint = _lib.enc(path)
            o = _lib.InsilicoOptions(out_dir=_lib.enc(out_dir or tmp), progress=0, quiet=True,
                                     on_result=cb)
            status = lib.fv_optimize_from_config(_lib.registry(), cfg, ctypes.byref(job),
                                                 ctypes.byref(o), None)
        if failure:
            raise failure[0]
        _lib.check(status)
        return results
    finally:
        lib.fv_config_free(cfg)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def mei(model, session, neuron, **options):
    """The most exciting input of one neuron: a dict as optimize_stimulus
    gives it (stimulus, objective trace, ...)."""
    if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)):
        raise Error("neuron: expected an index (int), got %r" % (neuron,), _lib.ERR_ARG)
    return optimize_stimulus(model, "mei", session=session, units=[neuron], **options)[0]
