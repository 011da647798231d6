"""The cost of fovea's Python layer: one Model.predict call against the bare
libfovea call it makes (fv_predict through ctypes with the arguments ready),
for one stimulus and for a batch of 64, on one thread.

    PYTHONPATH=build/tools/python python3 tools/python/scripts/overhead.py [CHECKPOINT SESSION]

Prints the median of each and their difference (the Python overhead:
argument checks, the stimulus view, the output copy)."""
import ctypes
import sys
import time

import numpy as np

import fovea
from fovea import _lib

CKPT = sys.argv[1] if len(sys.argv) > 1 else "tests/data/ckpt/hoefling_low_res_gmask.ckpt"
SESSION = sys.argv[2] if len(sys.argv) > 2 else "session_2_ventral2_20200626"


def median_seconds(fns, repeat):
    """The median time of each function, calls interleaved so that a busy
    machine slows them alike."""
    times = [[] for _ in fns]
    for f in fns:
        f()
    for _ in range(repeat):
        for f, t in zip(fns, times):
            start = time.perf_counter()
            f()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def bare_call(model, x):
    """fv_predict with everything prepared: what a C program pays."""
    view = _lib.StimulusView(data=x.ctypes.data, ndim=5)
    view.shape[:] = x.shape
    view.strides[:] = [s // 4 for s in x.strides]
    info = _lib.lib.fv_checkpoint_data_info(model._ckpt)
    session = SESSION.encode()

    def call():
        _lib.lib.fv_ctx_reset(model._ctx)
        if not _lib.lib.fv_predict(model._module, model._ctx, info, ctypes.byref(view), session, 0):
            raise _lib.last_error()
    return call


def main():
    fovea.set_num_threads(1)
    model = fovea.load(CKPT, threads=1)
    c, h, w = model.in_shape
    rng = np.random.default_rng(0)
    for batch, repeat in ((1, 400), (64, 30)):
        x = rng.standard_normal((batch, c, 50, h, w)).astype(np.float32)
        c_time, py_time = median_seconds(
            [bare_call(model, x), lambda: model.predict(x, session=SESSION)], repeat)
        print("batch %2d: C call %.3f ms, Python predict %.3f ms, overhead %.1f us (%.1f%%)" % (
            batch, 1e3 * c_time, 1e3 * py_time, 1e6 * (py_time - c_time),
            100 * (py_time - c_time) / c_time))


if __name__ == "__main__":
    main()
