"""fovea.train against `fovea train` with the same seed (metrics.csv and
checkpoint tensors), per-epoch callbacks, a dict config, Ctrl-C and stop
requests between steps, and a callback's exception."""
import os
import signal

import numpy as np

import fovea
from common import (DATA, EXAMPLE, SMALL, expect_error, fovea_cli, metrics_without_time,
                    rmtree, run, scratch)


def _paths(tmp, run_name):
    return ["paths.data_dir=" + os.path.join(tmp, "d"),
            "paths.output_dir=" + os.path.join(tmp, run_name)]


def _setup():
    tmp = scratch()
    fovea.create_data(os.path.join(tmp, "d"), **DATA)
    return tmp


def test_equals_fovea_train_with_the_same_seed():
    tmp = _setup()
    try:
        fovea_cli("train", EXAMPLE, *(_paths(tmp, "cli") + SMALL), "--threads", "1", "--quiet")
        seen = []
        res = fovea.train(EXAMPLE, overrides=_paths(tmp, "py") + SMALL, threads=1,
                          callback=lambda epoch, m: seen.append((epoch, m)))
        assert res["epochs"] == 2 and not res["interrupted"], res
        assert res["output_dir"] == os.path.join(tmp, "py")
        assert metrics_without_time(os.path.join(tmp, "py", "metrics.csv")) == \
            metrics_without_time(os.path.join(tmp, "cli", "metrics.csv"))
        for name in ("best.safetensors", "last.safetensors"):
            a = fovea.load(os.path.join(tmp, "py", name)).state_dict()
            b = fovea.load(os.path.join(tmp, "cli", name)).state_dict()
            assert sorted(a) == sorted(b)
            for k in a:
                assert np.array_equal(a[k], b[k]), (name, k)
        # the callback saw every epoch, with metrics.csv's values
        assert [e for e, _ in seen] == [0, 1]
        rows = [line.split(",") for line in
                open(os.path.join(tmp, "py", "metrics.csv")).read().splitlines()]
        col = rows[0].index("val_loss")
        for (epoch, m), row in zip(seen, rows[1:]):
            assert abs(m["val_loss"] - float(row[col])) <= 1e-6 * abs(float(row[col]))
            assert m["lr"] > 0 and m["seconds"] > 0 and isinstance(m["best"], bool)
            assert "train_loss" in m
    finally:
        rmtree(tmp)


def test_a_dict_config_is_the_yaml_file():
    tmp = _setup()
    try:
        fovea.train(EXAMPLE, overrides=_paths(tmp, "file") + SMALL, threads=1)
        # the composed config of the file run, as a dict (JSON is YAML)
        import json
        cfg_text = open(os.path.join(tmp, "file", "config.yaml")).read()
        assert "model" in cfg_text
        config = {"defaults": ["example"], "paths": {"output_dir": os.path.join(tmp, "dict")}}
        res = fovea.train(config, overrides=[_paths(tmp, "x")[0]] + SMALL, threads=1,
                          config_dir=os.path.dirname(EXAMPLE))
        assert res["output_dir"] == os.path.join(tmp, "dict")
        assert metrics_without_time(os.path.join(tmp, "dict", "metrics.csv")) == \
            metrics_without_time(os.path.join(tmp, "file", "metrics.csv"))
        json.dumps(res)
    finally:
        rmtree(tmp)


def test_ctrl_c_stops_between_steps_and_resume_continues():
    tmp = _setup()
    try:
        three = SMALL + ["trainer.max_epochs=3"]
        fovea.train(EXAMPLE, overrides=_paths(tmp, "whole") + three, threads=1)

        def interrupt(epoch, metrics):  # Ctrl-C during the second epoch's first step
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGINT)

        previous = signal.getsignal(signal.SIGINT)
        res = fovea.train(EXAMPLE, overrides=_paths(tmp, "cut") + three, threads=1,
                          callback=interrupt)
        assert signal.getsignal(signal.SIGINT) is previous, "the handler is restored"
        assert res["interrupted"] and res["epochs"] == 1, res
        assert len(metrics_without_time(os.path.join(tmp, "cut", "metrics.csv"))) == 2
        res = fovea.train(EXAMPLE, overrides=_paths(tmp, "cut") + three + ["resume=true"],
                          threads=1)
        assert res["epochs"] == 3 and not res["interrupted"]
        assert metrics_without_time(os.path.join(tmp, "cut", "metrics.csv")) == \
            metrics_without_time(os.path.join(tmp, "whole", "metrics.csv"))
    finally:
        rmtree(tmp)


def test_a_stop_request_and_a_failing_callback():
    tmp = _setup()
    try:
        res = fovea.train(EXAMPLE, overrides=_paths(tmp, "a") + SMALL, threads=1,
                          stop=lambda: True)
        assert res["interrupted"] and res["epochs"] == 0

        class Boom(Exception):
            pass

        def boom(epoch, metrics):
            raise Boom("from the callback")

        try:
            fovea.train(EXAMPLE, overrides=_paths(tmp, "b") + SMALL, threads=1, callback=boom)
            raise AssertionError("no exception")
        except Boom as e:
            assert str(e) == "from the callback"
        assert os.path.exists(os.path.join(tmp, "b", "last.safetensors"))
    finally:
        rmtree(tmp)


def test_errors():
    tmp = _setup()
    try:
        expect_error(lambda: fovea.train(os.path.join(tmp, "none.yaml")), fovea.ERR_IO,
                     "none.yaml")
        expect_error(lambda: fovea.train(EXAMPLE, overrides=_paths(tmp, "c") + SMALL +
                                         ["trainer.max_epoch=3"]), fovea.ERR_CONFIG,
                     "max_epoch")
        expect_error(lambda: fovea.train(EXAMPLE, overrides="seed=1"), fovea.ERR_ARG, "list")
        expect_error(lambda: fovea.train(42), fovea.ERR_ARG, "expected a YAML file")
        expect_error(lambda: fovea.train({"x": object()}), fovea.ERR_CONFIG, "dict")
        expect_error(lambda: fovea.train(EXAMPLE, threads=0), fovea.ERR_ARG, "threads")
        expect_error(lambda: fovea.train(EXAMPLE, overrides=["paths.data_dir=" + tmp + "/no"]),
                     None, tmp + "/no")
    finally:
        rmtree(tmp)


if __name__ == "__main__":
    run([test_equals_fovea_train_with_the_same_seed, test_a_dict_config_is_the_yaml_file,
         test_ctrl_c_stops_between_steps_and_resume_continues,
         test_a_stop_request_and_a_failing_callback, test_errors])
