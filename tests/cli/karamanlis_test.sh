#!/usr/bin/env bash
# karamanlis_test.sh FOVEA SRCDIR: the karamanlis_2024 experiment on sessions
# written by tools/fixtures/karamanlis_2024.py (MATLAB v7.3 and v5 files):
# one short epoch, the cached .npz read back by the next run, and damaged
# files stopping with one message naming the file and the key.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fovea=$1 srcdir=$2

mkdir -p "$tmp/cfg" && cp -r "$srcdir/configs/." "$tmp/cfg/"
cp -r "$srcdir/tests/configs/experiments/." "$tmp/cfg/"
/usr/bin/python3 "$srcdir/tools/fixtures/karamanlis_2024.py" "$tmp/k" --no-expected ||
	fail "tools/fixtures/karamanlis_2024.py"
s=$tmp/k/sessions s0=20220101_mouse_s0
n=0
train() {
	n=$((n + 1))
	run "$1" "$fovea" train -cp "$tmp/cfg" -cn karamanlis_2024_core_readout paths.data_dir="$s" \
		paths.output_dir="$tmp/run$n" trainer.max_epochs=1 +trainer.max_steps=2 --threads 1 "${@:2}"
}

train 0
expect out "trained 1 epochs"
expect err "Loading stimuli from $s/$s0/${s0}_fixationmovie_data.mat"
expect err "UserWarning: No file with postfix fixationmovie_data.mat"
refute err "marmoset"
exists "$s/$s0/${s0}_fixationmovie_data_extracted_stimuli_30_40.npz"

# the second run reads the cache; a size without one extracts again
train 0
expect err "Loading stimuli from cached $s/$s0/${s0}_fixationmovie_data_extracted_stimuli_30_40.npz"
train 0 data_io.video_height=15 data_io.video_width=20
expect err "Loading stimuli from $s/$s0/${s0}_fixationmovie_data.mat"

# NaN responses (v7.3, written as MATLAB does)
mat=$s/$s0/${s0}_fixationmovie_data.mat
/usr/bin/python3 - "$mat" <<'PY' || fail "editing $mat"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f["runningbin"][0, 1, 2] = np.nan
PY
train 1
expect err "$mat: variable 'runningbin' holds NaN"

# a truncated file
head -c 2000 "$mat" >"$tmp/t" && mv "$tmp/t" "$mat"
train 1
expect err "$mat"
expect err "bin"
[ "$(printf '%s\n' "$err" | grep -v 'trainer.precision' | grep -c '^fovea: ')" -eq 1 ] ||
	fail "not one message: $err"

# a session folder without the species name is no session
train 1 data_io.stimuli.specie=rat
expect err "No data directories found in $s for animal rat"
# zipped sessions, as openretina: the stimuli key one "<name>.zip", the
# responses, listed after it was unpacked, "<name>"; the second run trains
/usr/bin/python3 "$srcdir/tools/fixtures/karamanlis_2024.py" "$tmp/z" --no-expected --zip \
	--sessions 1 || fail "tools/fixtures/karamanlis_2024.py --zip"
s=$tmp/z/sessions
train 1
expect err "'$s0'"
expect err "no movies"
[ -d "$s/$s0" ] && [ ! -e "$s/$s0.zip" ] || fail "$s0.zip was not unpacked in place"
train 0
expect out "trained 1 epochs"
finish karamanlis
