"""What the Python tests share: where things are (from meson's environment),
a scratch directory, the `fovea` program, a tiny data set and training
config (configs/example.yaml scaled down, as tests/cli/train_test.sh), and
a runner that prints the closing line 'N passed, N failed'."""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np

SRC = os.environ["FOVEA_TEST_SRCDIR"]          # tests/
ROOT = os.path.dirname(SRC)
FOVEA = os.environ["FOVEA_EXE"]                # build/tools/fovea
EXAMPLE = os.path.join(ROOT, "configs", "example.yaml")
CKPT = os.path.join(SRC, "data", "ckpt", "hoefling_low_res_gmask")

# tiny data: 2 sessions (3 and 4 neurons), 1 x 6 x 5 pixels
DATA = dict(seed=5, neurons=[3, 4], frames=240, train_stimuli=1, test_frames=60, trials=3,
            height=6, width=5, channels=1, filter_length=4)
DATA_ARGS = ["--seed", "5", "--neurons", "3,4", "--frames", "240", "--train-stimuli", "1",
             "--test-frames", "60", "--trials", "3", "--height", "6", "--width", "5",
             "--channels", "1", "--filter-length", "4"]
SMALL = ["data_io.color_channels=1", "data_io.video_height=6", "data_io.video_width=5",
         "dataloader.batch_size=4", "dataloader.train_chunk_size=20", "dataloader.clip_length=40",
         "dataloader.num_val_clips=1", "model.core.temporal_kernel_sizes=[5]",
         "trainer.max_epochs=2", "seed=7"]


def scratch():
    return tempfile.mkdtemp(prefix="fovea_pytest_")


def fovea_cli(*args, ok=True):
    """Run build/tools/fovea; its stdout (fails the test when the exit code
    is not the one expected)."""
    p = subprocess.run([FOVEA] + [str(a) for a in args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError("fovea %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode,
                                                        p.stderr))
    return p


def metrics_without_time(path):
    """metrics.csv without its last column (the wall time of each epoch)."""
    with open(path) as f:
        return [line.rstrip("\n").rsplit(",", 1)[0] for line in f]


def expect_error(fn, code=None, *fragments):
    """fn() raises fovea.Error with `code` and every fragment in its message."""
    import fovea
    try:
        fn()
    except fovea.Error as e:
        if code is not None:
            assert e.code == code, "code %d, expected %d: %s" % (e.code, code, e.message)
        for f in fragments:
            assert f in e.message, "message %r lacks %r" % (e.message, f)
        assert isinstance(e.message, str) and e.message
        return e
    raise AssertionError("no fovea.Error raised")


def run(tests):
    """Run test functions, print one line each and the closing count."""
    passed = failed = 0
    for t in tests:
        try:
            t()
            passed += 1
            print("PASS", t.__name__)
        except Exception:
            failed += 1
            print("FAIL", t.__name__)
            traceback.print_exc()
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


