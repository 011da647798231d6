"""Every bad input to fovea.load and a Model raises fovea.Error (message and
code) instead of crashing the interpreter."""
import os

import numpy as np

import fovea
from common import CKPT, expect_error, rmtree, run, scratch

SESSION = "session_2_ventral2_20200626"


def _model():
    return fovea.load(CKPT + ".ckpt")


def test_load():
    tmp = scratch()
    try:
        expect_error(lambda: fovea.load(os.path.join(tmp, "missing.safetensors")), None,
                     "missing.safetensors")
        garbage = os.path.join(tmp, "garbage.safetensors")
        with open(garbage, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
        expect_error(lambda: fovea.load(garbage), None, "garbage.safetensors")
        empty = os.path.join(tmp, "empty.ckpt")
        open(empty, "wb").close()
        expect_error(lambda: fovea.load(empty), None, "empty.ckpt")
        expect_error(lambda: fovea.load(tmp), None, tmp)
        # a checkpoint whose tensors are not its model's (a SimpleCoreWrapper
        # state_dict under a ConvGRUCore target)
        expect_error(lambda: fovea.load(os.path.join(os.path.dirname(CKPT), "gru_core.ckpt")),
                     None, "tensor 'core.features.layer0.bias.bias' of the checkpoint is not in")
    finally:
        rmtree(tmp)


def test_stimulus_dtype_shape_and_session():
    m = _model()
    x = np.load(CKPT + ".stimulus.npy")
    for bad in (x.astype(np.int32), x.astype(np.complex64), np.array(["a"]), x > 0,
                np.empty((2, 2), dtype=object)):
        expect_error(lambda: m(bad, session=SESSION), fovea.ERR_ARG, "dtype")
    expect_error(lambda: m([[1, 2], [3]], session=SESSION), fovea.ERR_ARG)
    expect_error(lambda: m(x[0, 0], session=SESSION), fovea.ERR_SHAPE,
                 "(channels, time, height, width)")
    expect_error(lambda: m(x[None], session=SESSION), fovea.ERR_SHAPE)
    expect_error(lambda: m(np.float32(1.0), session=SESSION), fovea.ERR_SHAPE)
    expect_error(lambda: m(x[:, :, :, :17], session=SESSION), fovea.ERR_SHAPE, "(2, 18, 16)")
    expect_error(lambda: m(x[:, :1], session=SESSION), fovea.ERR_SHAPE)
    expect_error(lambda: m(x[:, :, :0], session=SESSION), fovea.ERR_SHAPE)
    expect_error(lambda: m(x[:, :, :2], session=SESSION))  # shorter than the kernels
    expect_error(lambda: m(x), fovea.ERR_ARG, "3 sessions")
    expect_error(lambda: m(x, session="session_2_ventral2_2020062"), fovea.ERR_NOTFOUND,
                 "did you mean '%s'?" % SESSION)
    expect_error(lambda: m(x, session=2), fovea.ERR_ARG, "session")
    expect_error(lambda: m(x, session=SESSION, batch_size=0), fovea.ERR_ARG, "batch_size")
    m.threads = 0
    expect_error(lambda: m(x, session=SESSION), fovea.ERR_ARG, "threads")
    m.threads = None
    # unaligned strides (a float32 view into bytes) are copied, not refused
    raw = np.zeros(x.nbytes + 1, np.uint8)
    odd = raw[1:].view(np.float32).reshape(x.shape)
    odd[...] = x
    assert np.array_equal(m(odd, session=SESSION), m(x, session=SESSION))
    expect_error(lambda: fovea.set_num_threads("2"), fovea.ERR_ARG)
    # after all that, the model still works
    assert m(x, session=SESSION).shape == (2, 20, 27)


def test_load_state_dict():
    m = _model()
    sd = m.state_dict()
    name = "core.features.layer0.conv.weight_spatial"
    expect_error(lambda: m.load_state_dict({"nope": sd[name]}), fovea.ERR_NOTFOUND, "nope")
    expect_error(lambda: m.load_state_dict({name: sd[name]}), fovea.ERR_NOTFOUND, "missing")
    bad = dict(sd)
    bad[name] = sd[name][..., :-1]
    expect_error(lambda: m.load_state_dict(bad), fovea.ERR_SHAPE, name)
    bad[name] = np.array(["x"] * sd[name].size).reshape(sd[name].shape)
    expect_error(lambda: m.load_state_dict(bad), fovea.ERR_ARG, name)
    # nothing changed
    after = m.state_dict()
    assert all(np.array_equal(after[k], sd[k]) for k in sd)
    expect_error(lambda: m.save("/proc/nope/x.safetensors"), None, "/proc/nope")


def test_error_is_an_exception_with_code():
    e = expect_error(lambda: _model()(np.zeros((1, 2, 3), np.float32), session=SESSION))
    assert isinstance(e, Exception) and e.code == fovea.ERR_SHAPE
    assert "fovea.Error" in repr(e)


if __name__ == "__main__":
    run([test_load, test_stimulus_dtype_shape_and_session, test_load_state_dict,
         test_error_is_an_exception_with_code])
