"""fovea from Python: load trained models of the retina, predict on NumPy
arrays, train, evaluate and optimise stimuli, over libfovea (ctypes + numpy).

    import fovea
    model = fovea.load("runs/example/best.safetensors")
    y = model(stimulus, session="session_0")      # (batch, time - lag, neurons)

See docs/python.md.
"""
from ._lib import (ERR_ARG, ERR_CONFIG, ERR_FORMAT, ERR_IO, ERR_NOMEM, ERR_NOTFOUND,
                   ERR_PLUGIN, ERR_SHAPE, Error, library_path)
from ._lib import lib as _clib
from .components import describe, plugins
from .data import create_data, evaluate, test_set
from .insilico import mei, optimize_stimulus
from .model import Model, load
from .train import train

__version__ = "0.1.0"

__all__ = ["Error", "Model", "load", "plugins", "describe", "create_data", "evaluate", "test_set", "mei",
           "optimize_stimulus", "train", "set_num_threads", "get_num_threads", "ERR_NOMEM",
           "ERR_IO", "ERR_FORMAT", "ERR_CONFIG", "ERR_SHAPE", "ERR_ARG", "ERR_PLUGIN",
           "ERR_NOTFOUND", "library_path"]


def set_num_threads(n):
    """Threads of libfovea's computations on this thread (OpenMP, BLIS);
    n <= 0: every core."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise Error("set_num_threads: expected an integer, got %r" % (n,), ERR_ARG)
    _clib.fv_set_num_threads(n)


def get_num_threads():
    return _clib.fv_get_num_threads()
