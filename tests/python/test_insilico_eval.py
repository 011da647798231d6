"""fovea.create_data, fovea.evaluate, fovea.mei / optimize_stimulus,
fovea.plugins and fovea.describe against the `fovea` program's
create-data, eval, mei, plugins and describe."""
import csv
import filecmp
import json
import os

import numpy as np

import fovea
from common import (DATA, DATA_ARGS, EXAMPLE, SMALL, expect_error, fovea_cli, rmtree, run,
                    scratch)

TMP = None


def _trained():
    """A data set and a model trained on it (two epochs), shared by the tests."""
    global TMP
    if TMP is None:
        TMP = scratch()
        fovea.create_data(os.path.join(TMP, "d"), **DATA)
        fovea.train(EXAMPLE, overrides=["paths.data_dir=" + os.path.join(TMP, "d"),
                                        "paths.output_dir=" + os.path.join(TMP, "run")] + SMALL,
                    threads=1)
    return TMP, os.path.join(TMP, "run", "best.safetensors")


def test_create_data_writes_what_the_cli_writes():
    tmp, _ = _trained()
    fovea_cli("create-data", os.path.join(tmp, "cli"), *DATA_ARGS)
    for name in ("stimuli/train_0.npy", "stimuli/test.npy", "ground_truth.json"):
        assert filecmp.cmp(os.path.join(tmp, "d", name), os.path.join(tmp, "cli", name),
                           shallow=False), name
    fovea.create_data(os.path.join(tmp, "or"), layout="openretina", num_colors=2, num_stimuli=1,
                      num_sessions=1)
    assert os.path.exists(os.path.join(tmp, "or", "stimuli", "random_noise_0.npy"))
    assert os.path.exists(os.path.join(tmp, "or", "session_0.hdf5"))


def test_evaluate_equals_fovea_eval():
    tmp, ckpt = _trained()
    fovea_cli("eval", ckpt, os.path.join(tmp, "d"), "-o", os.path.join(tmp, "ev"))
    rows = list(csv.DictReader(open(os.path.join(tmp, "ev", "eval_per_neuron.csv"))))
    res = fovea.evaluate(fovea.load(ckpt), os.path.join(tmp, "d"))
    assert len(res["corr"]) == len(rows) == 7
    for i, row in enumerate(rows):
        assert res["session"][i] == row["session"]
        assert res["neuron"][i] == int(row["neuron_relative_idx"])
        for key, col in (("corr", "corr_to_average"), ("feve", "feve"),
                         ("poisson_loss", "poisson_loss_to_average"), ("var_ratio", "var_ratio")):
            assert abs(res[key][i] - float(row[col])) <= 1e-7 + 1e-6 * abs(float(row[col])), key
    try:
        import pandas  # noqa: F401
        frame = fovea.evaluate(fovea.load(ckpt), os.path.join(tmp, "d"), as_frame=True)
        assert list(frame["corr"]) == list(res["corr"])
    except ImportError:
        expect_error(lambda: fovea.evaluate(fovea.load(ckpt), os.path.join(tmp, "d"),
                                            as_frame=True), fovea.ERR_ARG, "pandas")
    summary = json.load(open(os.path.join(tmp, "ev", "eval_summary.json")))
    assert abs(res["summary"]["corr_to_avg_mean"] - summary["corr_to_avg_mean"]) < 1e-6


def test_mei_equals_fovea_mei():
    tmp, ckpt = _trained()
    out = os.path.join(tmp, "mei")
    fovea_cli("mei", ckpt, "--session", "session_0", "--neuron", "1", "--out", out,
              "stopper.max_iterations=5")
    model = fovea.load(ckpt)
    r = fovea.mei(model, "session_0", 1, overrides=["stopper.max_iterations=5"])
    want = np.load(os.path.join(out, "mei_session_0_1.npy"))
    assert r["stimulus"].shape == want.shape == (1, 50, 6, 5)
    assert np.array_equal(r["stimulus"], want)
    record = json.load(open(os.path.join(out, "mei_session_0_1.json")))
    assert r["iterations"] == 5 == len(r["objective"]) == len(r["loss"])
    assert np.allclose(r["objective"], record["objective_trace"], rtol=1e-6)
    assert not os.path.exists(r["files"] + ".npy"), "a temporary directory, removed"
    # several neurons at once, files kept where asked
    rs = fovea.optimize_stimulus(model, "mei", session="session_1", units=[0, 2],
                                 overrides=["stopper.max_iterations=2"],
                                 out_dir=os.path.join(tmp, "kept"))
    assert [x["unit"] for x in rs] == [0, 2]
    assert os.path.exists(os.path.join(tmp, "kept", "mei_session_1_2.npy"))


def test_plugins_and_describe():
    names = [p["name"] for p in fovea.plugins()]
    listed = fovea_cli("plugins").stdout
    assert len(names) > 20
    for n in names:
        assert n in listed, n
    d = fovea.describe("GaussianMaskReadout")
    assert d["kind"] == "readout" and d["options"] and d["doc"]
    assert any(a.startswith("openretina.") for a in d["aliases"])
    text = fovea_cli("describe", "GaussianMaskReadout").stdout
    for o in d["options"]:
        assert o["name"] in text, o["name"]
    by_alias = fovea.describe(d["aliases"][0])
    assert by_alias["name"] == "GaussianMaskReadout"


def test_errors():
    tmp, ckpt = _trained()
    model = fovea.load(ckpt)
    expect_error(lambda: fovea.describe("GaussianMaskReadut"), fovea.ERR_NOTFOUND,
                 "did you mean 'GaussianMaskReadout'?")
    expect_error(lambda: fovea.describe(3), fovea.ERR_ARG)
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), hieght=3), fovea.ERR_ARG,
                 "did you mean 'height'?")
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), height="3"), fovea.ERR_ARG,
                 "height")
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), height=-3), fovea.ERR_ARG)
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), neurons=[0]), fovea.ERR_ARG,
                 "neurons")
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), layout="hdf6"),
                 fovea.ERR_ARG, "layout")
    expect_error(lambda: fovea.create_data(os.path.join(tmp, "x"), layout="openretina",
                                           height=3), fovea.ERR_ARG, "height")
    expect_error(lambda: fovea.create_data("/proc/nope/x"), fovea.ERR_IO, "/proc/nope")
    expect_error(lambda: fovea.evaluate(model, os.path.join(tmp, "none")), fovea.ERR_IO, "none")
    fovea.create_data(os.path.join(tmp, "three"), **dict(DATA, neurons=[3, 4, 5], sessions=3))
    expect_error(lambda: fovea.evaluate(model, os.path.join(tmp, "three")), fovea.ERR_NOTFOUND,
                 "session_2")
    expect_error(lambda: fovea.mei(model, "session_0", 9, overrides=["stopper.max_iterations=1"]),
                 None, "9")
    expect_error(lambda: fovea.mei(model, "session_9", 0), fovea.ERR_NOTFOUND, "session_9")
    expect_error(lambda: fovea.mei(model, "session_0", "1"), fovea.ERR_ARG, "neuron")
    expect_error(lambda: fovea.mei(model, "session_0", 0, seed=-1), fovea.ERR_ARG, "seed")
    expect_error(lambda: fovea.mei(model, "session_0", 0, overrides=["stoper.x=1"]), None,
                 "stoper")
    expect_error(lambda: fovea.optimize_stimulus(model, "mie"), fovea.ERR_ARG, "kind")
    expect_error(lambda: fovea.optimize_stimulus(model, "mei", units=[-1]), fovea.ERR_ARG,
                 "units")
    model.close()
    expect_error(lambda: fovea.evaluate(model, os.path.join(tmp, "d")), fovea.ERR_ARG, "closed")
    expect_error(lambda: fovea.mei(model, "session_0", 0), fovea.ERR_ARG, "closed")


if __name__ == "__main__":
    try:
        run([test_create_data_writes_what_the_cli_writes, test_evaluate_equals_fovea_eval,
             test_mei_equals_fovea_mei, test_plugins_and_describe, test_errors])
    finally:
        if TMP:
            rmtree(TMP)
