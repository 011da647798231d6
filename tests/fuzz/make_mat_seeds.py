#!/usr/bin/python3
"""Seeds of fuzz_mat (corpus/mat/): tiny session files of tools/fixtures/karamanlis_2024.py, v7.3 and v5."""
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "mat")
os.makedirs(out, exist_ok=True)
for fmt in ["v73", "v5"]:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, os.path.join(here, "..", "..", "tools", "fixtures", "karamanlis_2024.py"), d,
                        "--sessions", "1", "--neurons", "2", "--trials", "1", "--frames", "2", "--test-frames", "2",
                        "--repeats", "1", "--images", "1", "--image-size", "4", "5", "--format", fmt,
                        "--no-expected"], check=True)
        src = os.path.join(d, "sessions", "20220101_mouse_s0", "20220101_mouse_s0_fixationmovie_data.mat")
        with open(src, "rb") as f, open(os.path.join(out, f"session_{fmt}.mat"), "wb") as g:
            g.write(f.read())
