#!/usr/bin/env bash
# create_data.sh: `fovea create-data` through the real binary: the files it
# writes, that a seed reproduces them, and the exit codes and messages of
# bad command lines and unusable directories.
#
#   create_data.sh FOVEA
set -u

fovea=$1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- a small data set, and what it holds
small=(--seed 5 --neurons 4,6 --frames 120 --test-frames 30 --trials 3 --height 8 --width 9 --channels 1)
run 0 "$fovea" create-data "$tmp/d" "${small[@]}"
expect out "wrote $tmp/d: 2 sessions (4, 6 neurons), 2 training stimuli of 120 frames"
expect out "test stimulus 'test' of 30 frames x 3 trials, 1 x 8 x 9 pixels"
for f in stimuli/train_0.npy stimuli/train_1.npy stimuli/test.npy session_0.hdf5 \
	session_1.hdf5 ground_truth.json; do
	exists "$tmp/d/$f"
done
[ -e "$tmp/d/session_2.hdf5" ] && fail "a third session was written"
head -c 128 "$tmp/d/stimuli/train_0.npy" | grep -aq "'shape': (1, 120, 8, 9" ||
	fail "train_0.npy does not have shape (1, 120, 8, 9)"
head -c 128 "$tmp/d/stimuli/test.npy" | grep -aq "'descr': '<f4'" || fail "test.npy is not float32"
grep -q '"n_neurons": 6' "$tmp/d/ground_truth.json" || fail "ground truth lacks session_1's 6 neurons"
[ "$(grep -c '"centre_x"' "$tmp/d/ground_truth.json")" -eq 10 ] || fail "ground truth lacks 10 neurons"

# --- the seed reproduces the data; another seed does not; rewriting works
run 0 "$fovea" create-data "$tmp/d2" "${small[@]}"
for f in stimuli/train_0.npy stimuli/test.npy ground_truth.json; do
	cmp -s "$tmp/d/$f" "$tmp/d2/$f" || fail "$f differs for the same seed"
done
run 0 "$fovea" create-data "$tmp/d2" "${small[@]}" --seed 6
cmp -s "$tmp/d/stimuli/train_0.npy" "$tmp/d2/stimuli/train_0.npy" && fail "seed 6 gave seed 5's data"
run 0 "$fovea" create-data "$tmp/d3" --sessions 1 --frames 50 --test-frames 10
expect out "1 sessions (12 neurons)"

# --- bad command lines: exit 2 with the synopsis
run 2 "$fovea" create-data
expect err "fovea create-data: expected a directory"
expect err "usage: fovea create-data DIR"
run 2 "$fovea" create-data "$tmp/x" --bogus 1
expect err "unknown option '--bogus'"
run 2 "$fovea" create-data "$tmp/x" --frames abc
expect err "--frames: expected an integer, got 'abc'"
run 2 "$fovea" create-data "$tmp/x" --neurons 4,x
expect err "--neurons: expected comma-separated integers"
run 2 "$fovea" create-data "$tmp/x" --seed
expect err "option --seed needs a value"
run 2 "$fovea" create-data "$tmp/x" "$tmp/y"
expect err "expected one directory"
run 2 "$fovea" create-data "$tmp/x" --sessions 0
expect err "--sessions 1..64"

# --- the work fails: exit 1 with the reason
run 1 "$fovea" create-data "$tmp/x" --height 2
expect err "fovea: create-data: height must be at least 5, got 2"
mkdir -p "$tmp/e" && : >"$tmp/e/other.h5"
run 1 "$fovea" create-data "$tmp/e"
expect err "already holds session files this data set would not replace (other.h5)"
: >"$tmp/file"
run 1 "$fovea" create-data "$tmp/file"
expect err "exists and is not a directory"

# --- openretina's own layout (openretina/cli/create_data.py), its options and defaults
run 0 "$fovea" create-data "$tmp/or" --layout openretina --num-colors 2 --clip-length 4 --seed 3
expect out "wrote $tmp/or in openretina's create-data layout: 4 stimuli (random_noise_0 .. random_noise_3, float64, 2 x (70..73) * 4 frames x 16 x 8), 2 sessions ("
[ "$(cd "$tmp/or" && echo *)" = "session_0.hdf5 session_1.hdf5 stimuli" ] ||
	fail "openretina layout: $(cd "$tmp/or" && echo *)"
[ "$(cd "$tmp/or/stimuli" && echo *)" = \
	"random_noise_0.npy random_noise_1.npy random_noise_2.npy random_noise_3.npy" ] ||
	fail "openretina stimuli: $(cd "$tmp/or/stimuli" && echo *)"
head -c 128 "$tmp/or/stimuli/random_noise_3.npy" |
	grep -aq "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 292, 16, 8), }" ||
	fail "random_noise_3.npy is not float64 (2, 292, 16, 8)"
# 2 x 292 x 16 x 8 doubles after a 128-byte header
[ "$(stat -c %s "$tmp/or/stimuli/random_noise_3.npy")" -eq $((128 + 8 * 2 * 292 * 128)) ] ||
	fail "random_noise_3.npy has the wrong size"
run 0 "$fovea" create-data "$tmp/or3" --layout openretina --clip-length 2 --num-stimuli 3 \
	--num-sessions 3
expect out "3 stimuli (random_noise_0 .. random_noise_2, float64, 3 x (70..72) * 2 frames"
exists "$tmp/or3/session_2.hdf5"
run 2 "$fovea" create-data "$tmp/x" --layout openretina --frames 10
expect err "--frames does not apply to --layout openretina"
run 2 "$fovea" create-data "$tmp/x" --num-colors 2
expect err "--num-colors does not apply to --layout fovea (it is an option of --layout openretina)"
run 2 "$fovea" create-data "$tmp/x" --layout matlab
expect err "--layout: expected 'fovea' or 'openretina', got 'matlab'"
run 2 "$fovea" create-data "$tmp/x" --layout openretina --num-sessions 0
expect err "--num-sessions 1..64"

# --- documented
run 0 "$fovea" create-data --help
expect out "usage: fovea create-data DIR [--seed N]"
expect out "fovea create-data DIR --layout openretina"
run 0 "$fovea" --help
expect out "  create-data "

finish
