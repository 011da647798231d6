"""docs/examples/predict_and_mei.py runs end to end (its --small data and
training) and leaves what it says: predictions compared with the recorded
responses, evaluate's summary, an MEI that drives its neuron."""
import os
import subprocess
import sys

import numpy as np

from common import ROOT, rmtree, run, scratch

EXAMPLE = os.path.join(ROOT, "docs", "examples", "predict_and_mei.py")


def test_the_example_runs():
    tmp = scratch()
    try:
        p = subprocess.run([sys.executable, EXAMPLE, tmp, "--small"], capture_output=True,
                           text=True, timeout=240)
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout
        for fragment in ("epoch 3:", "<fovea.Model", "correlation per neuron",
                         "test correlation (all sessions)", "MEI of neuron",
                         "its mean predicted response"):
            assert fragment in out, (fragment, out)
        mei = np.load(os.path.join(tmp, "mei.npy"))
        assert mei.shape == (1, 50, 6, 5) and np.isfinite(mei).all()
        if "matplotlib is not installed" not in out:
            assert os.path.exists(os.path.join(tmp, "predict_and_mei.png"))
    finally:
        rmtree(tmp)


if __name__ == "__main__":
    run([test_the_example_runs])
