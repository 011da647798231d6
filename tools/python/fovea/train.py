"""fovea.train(): a training run (openretina's `openretina train`, `fovea
train`) from a YAML file or a dict, with per-epoch metrics to a callback and
Ctrl-C stopping it cleanly between steps."""
import ctypes
import json
import os
import signal
import tempfile
import threading

from . import _lib
from ._lib import Error, lib


def _config_file(config, tmp):
    """A path to compose: the file given, or the dict written as YAML (JSON
    is YAML) into `tmp`."""
    if isinstance(config, dict):
        path = os.path.join(tmp, "config.yaml")
        try:
            text = json.dumps(config)
        except (TypeError, ValueError) as e:
            raise Error("config: the dict cannot be written as YAML (%s)" % e,
                        _lib.ERR_CONFIG) from None
        with open(path, "w") as f:
            f.write(text + "\n")
        return path
    if isinstance(config, (str, os.PathLike)):
        if not os.path.isfile(config):
            raise Error("%s: no such config file" % os.fspath(config), _lib.ERR_IO)
        return os.fspath(config)
    raise Error("config: expected a YAML file's path or a dict, got %r" % (config,),
                _lib.ERR_ARG)


def _compose(config, overrides, config_dir):
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise Error("overrides: expected a list of 'key=value' strings, got %r" % (overrides,),
                    _lib.ERR_ARG)
    overrides = list(overrides)
    with tempfile.TemporaryDirectory(prefix="fovea-train-") as tmp:
        path = _config_file(config, tmp)
        if config_dir is None and isinstance(config, dict):
            config_dir = os.getcwd()
        arr = (ctypes.c_char_p * max(len(overrides), 1))(*[_lib.enc(o) for o in overrides])
        cfg = lib.fv_config_compose(_lib.enc(path), _lib.enc(config_dir), len(overrides), arr)
    if not cfg:
        raise _lib.last_error()
    return cfg


class _Stopper:
    """Ctrl-C while training: a flag the trainer polls between steps, set by
    a SIGINT handler installed for the run (main thread only)."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(config, overrides=(), callback=None, config_dir=None, threads=None, quiet=True,
          stop=None):
    """Train as `fovea train CONFIG key=value ...` does and return a dict:
    epochs, best_epoch (0-based, -1: none), best_value, seconds,
    seconds_per_epoch, stopped_early, interrupted, output_dir.

    config     a YAML file (its `defaults:` composed from its directory, or
               config_dir) or a dict of the same content
    overrides  Hydra's key=value, +key=value, ~key
    callback   callback(epoch, metrics) after every epoch (0-based epoch;
               metrics: train_loss, ..., val_evaluation_loss, lr, seconds, best),
               when metrics.csv and the checkpoints are written; an exception
               it raises stops the run and is raised again
    stop       a callable polled between steps (True stops), besides Ctrl-C
    Ctrl-C (SIGINT, also Jupyter's interrupt) stops between two steps: the
    unfinished epoch is dropped, last.safetensors holds the last finished one,
    resume=true continues from it; the result says interrupted=True.
    """
    cfg = _compose(config, overrides, config_dir)
    failure = []

    def on_epoch(ud, rep):
        try:
            r = rep.contents
            metrics = {_lib.dec(r.names[i]): r.values[i] for i in range(r.n_metrics)}
            metrics.update(lr=r.lr, seconds=r.seconds, best=bool(r.best))
            if callback is not None:
                callback(int(r.epoch), metrics)
            return _lib.OK
        except BaseException as e:  # an exception cannot cross into C
            failure.append(e)
            return _lib.ERR_ARG

    try:
        if threads is not None:
            if not isinstance(threads, int) or threads < 1:
                raise Error("threads: expected an integer >= 1, got %r" % (threads,),
                            _lib.ERR_ARG)
            lib.fv_set_num_threads(threads)
        with _Stopper() as stopper:
            def should_stop(ud):
                try:
                    return stopper.requested or bool(stop is not None and stop())
                except BaseException as e:
                    failure.append(e)
                    return True

            epoch_cb, stop_cb = _lib.EPOCH_FN(on_epoch), _lib.STOP_FN(should_stop)
            o = _lib.TrainOptions(struct_size=ctypes.sizeof(_lib.TrainOptions), progress=0,
                                  quiet=bool(quiet), on_epoch=epoch_cb, should_stop=stop_cb)
            res = _lib.TrainResult()
            status = lib.fv_train(_lib.registry(), cfg, ctypes.byref(o), ctypes.byref(res))
        if failure:
            raise failure[0]
        _lib.check(status)
        return {"epochs": res.epochs, "best_epoch": res.best_epoch,
                "best_value": res.best_value, "seconds": res.seconds,
                "seconds_per_epoch": res.seconds_per_epoch,
                "stopped_early": bool(res.stopped_early), "interrupted": bool(res.interrupted),
                "output_dir": _lib.dec(res.output_dir)}
    finally:
        lib.fv_config_free(cfg)
