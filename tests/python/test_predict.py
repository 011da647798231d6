"""fovea.load / Model.predict against `fovea predict` (bit for bit), in every
layout, normalised or not, batched or streamed; state_dict and
load_state_dict; two models in two threads."""
import os
import threading
import time

import numpy as np

import fovea
from common import CKPT, expect_error, fovea_cli, rmtree, run, scratch

SESSION = "session_2_ventral2_20200626"
STIM = CKPT + ".stimulus.npy"


def cli_predict(tmp, stimulus_path, *flags):
    out = os.path.join(tmp, "cli.npy")
    fovea_cli("predict", CKPT + ".ckpt", stimulus_path, "--session", SESSION, "-o", out, *flags)
    return np.load(out)


def test_equals_fovea_predict_bit_for_bit():
    tmp = scratch()
    try:
        model = fovea.load(CKPT + ".ckpt")
        x = np.load(STIM)
        for flags, normalize in (((), True), (("--raw",), False)):
            want = cli_predict(tmp, STIM, *flags)
            got = model.predict(x, session=SESSION, normalize=normalize)
            assert got.dtype == np.float32 and got.shape == want.shape == (2, 20, 27)
            assert np.array_equal(got, want), (flags, np.abs(got - want).max())
            # one movie: (T - lag, neurons)
            np.save(os.path.join(tmp, "one.npy"), x[1])
            want1 = cli_predict(tmp, os.path.join(tmp, "one.npy"), *flags)
            got1 = model(x[1], session=SESSION, normalize=normalize)
            assert got1.shape == want1.shape == (20, 27)
            assert np.array_equal(got1, want1)
    finally:
        rmtree(tmp)


def test_openretinas_numbers():
    model = fovea.load(CKPT + ".ckpt")
    want = np.load(CKPT + ".expected_" + SESSION + ".npy")
    got = model(np.load(STIM), session=SESSION)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_any_layout_gives_the_same_bits():
    model = fovea.load(CKPT + ".ckpt")
    x = np.load(STIM)
    want = model(x, session=SESSION)
    fortran = np.asfortranarray(x)
    assert not fortran.flags.c_contiguous
    assert np.array_equal(model(fortran, session=SESSION), want)
    # a view with negative strides: reversed twice is the original
    rev = x[::-1, :, :, ::-1][::-1, :, :, ::-1]
    assert np.array_equal(model(rev, session=SESSION), want)
    # every other frame of a longer movie, read in place
    long = np.repeat(x, 2, axis=2)
    assert np.array_equal(model(long[:, :, ::2], session=SESSION), want)
    # float64 is converted; normalising in place of the caller gives the same
    assert np.array_equal(model(x.astype(np.float64), session=SESSION), want)
    # the input is not modified
    assert np.array_equal(x, np.load(STIM))


def test_streamed_batches_and_threads():
    model = fovea.load(CKPT + ".ckpt", threads=1)
    x = np.load(STIM)
    whole = model(x, session=SESSION)
    streamed = model(x, session=SESSION, batch_size=1)
    assert streamed.shape == whole.shape
    # a batch of another size blocks the GEMMs differently: rounding only
    assert np.allclose(streamed, whole, rtol=1e-6, atol=1e-7)
    model.threads = 2
    assert np.allclose(model(x, session=SESSION), whole, rtol=1e-6, atol=1e-7)


def test_two_models_in_two_threads():
    x = np.load(STIM)
    sessions = ["session_1_ventral1_20200226", SESSION]
    models = [fovea.load(CKPT + ".ckpt", threads=1) for _ in sessions]
    serial = [m(x, session=s) for m, s in zip(models, sessions)]
    results = [None, None]

    def work(i):
        for _ in range(5):
            results[i] = models[i](x, session=sessions[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        assert np.array_equal(got, want)


def test_the_gil_is_released_while_computing():
    """Another Python thread runs while a prediction computes: it counts
    during the call about as fast as while the main thread sleeps.  (With
    the GIL held it would count only in the few switch intervals around
    the call: measured with ctypes.PyDLL, a tenth of that.)"""
    model = fovea.load(CKPT + ".ckpt", threads=1)
    x = np.repeat(np.load(STIM), 32, axis=0)          # a batch of 64: a long call
    model(x[:2], session=SESSION)
    counts, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counts[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        before, start = counts[0], time.perf_counter()
        time.sleep(0.2)
        free_rate = (counts[0] - before) / (time.perf_counter() - start)
        before, start = counts[0], time.perf_counter()
        model(x, session=SESSION)
        rate = (counts[0] - before) / (time.perf_counter() - start)
    finally:
        stop.set()
        t.join()
    assert rate > 0.3 * free_rate, "counted %.0f/s during the call, %.0f/s free" % (
        rate, free_rate)


def test_properties():
    model = fovea.load(CKPT + ".ckpt")
    assert model.sessions == ["session_1_ventral1_20200226", SESSION, "session_3_dorsal1_20201021"]
    assert model.n_neurons[SESSION] == 27
    assert model.in_shape == (2, 18, 16)
    assert model.data_info["input_shape"] == [2, 18, 16]
    assert "stim_mean" in model.data_info
    assert "3 sessions" in repr(model)


def test_state_dict_round_trip():
    tmp = scratch()
    try:
        model = fovea.load(CKPT + ".ckpt")
        x = np.load(STIM)
        before = model(x, session=SESSION)
        sd = model.state_dict()
        name = next(k for k in sd if k.startswith("readout.") and sd[k].ndim >= 1)
        assert all(isinstance(v, np.ndarray) for v in sd.values())
        bn = [k for k in sd if k.endswith("num_batches_tracked")]
        assert all(sd[k].dtype == np.int64 for k in bn)
        changed = dict(sd)
        changed["core.features.layer0.conv.weight_spatial"] = \
            sd["core.features.layer0.conv.weight_spatial"] * 2
        model.load_state_dict(changed)
        after = model(x, session=SESSION)
        assert not np.array_equal(after, before)
        assert np.array_equal(model.state_dict()["core.features.layer0.conv.weight_spatial"],
                              changed["core.features.layer0.conv.weight_spatial"])
        # saved and loaded again: the same predictions
        path = os.path.join(tmp, "changed.safetensors")
        model.save(path)
        again = fovea.load(path)
        assert np.array_equal(again(x, session=SESSION), after)
        assert sorted(again.state_dict()) == sorted(sd)
        # partial loads with strict=False
        model.load_state_dict({"core.features.layer0.conv.weight_spatial":
                               sd["core.features.layer0.conv.weight_spatial"]}, strict=False)
        assert np.array_equal(model(x, session=SESSION), before)
        assert name in sd
    finally:
        rmtree(tmp)


def test_closed_model_and_context_manager():
    with fovea.load(CKPT + ".ckpt") as model:
        model(np.load(STIM), session=SESSION)
    expect_error(lambda: model(np.load(STIM), session=SESSION), fovea.ERR_ARG, "closed")
    expect_error(model.state_dict, fovea.ERR_ARG, "closed")
    model.close()  # twice is fine
    assert "closed" in repr(model)


if __name__ == "__main__":
    run([test_equals_fovea_predict_bit_for_bit, test_openretinas_numbers,
         test_any_layout_gives_the_same_bits, test_streamed_batches_and_threads,
         test_two_models_in_two_threads, test_the_gil_is_released_while_computing,
         test_properties, test_state_dict_round_trip,
         test_closed_model_and_context_manager])
