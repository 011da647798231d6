#!/usr/bin/env bash
# create_data.sh: `fovea create-data` through the real binary: the files it
# writes, that a seed reproduces them, and the exit codes and messages of
# bad command lines and unusable directories.
#
#   create_data.sh FOVEA
set -u

fovea=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run EXPECTED_EXIT CMD...: runs CMD, keeps stdout/stderr in $out/$err.
run() {
	local want=$1; shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
	if [ "$got" -ne "$want" ]; then
		fail "'$*' exited $got, expected $want"
		echo "--- stdout:"; echo "$out"; echo "--- stderr:"; echo "$err"
	fi
}
# expect WHERE TEXT: WHERE is "out" or "err"; TEXT must occur literally.
expect() {
	local text=$2 where
	if [ "$1" = out ]; then where=$out; else where=$err; fi
	case "$where" in
	*"$text"*) ;;
	*) fail "std$1 lacks '$text'"; echo "--- std$1:"; echo "$where" ;;
	esac
}
exists() { [ -f "$1" ] || fail "missing $1"; }

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

# --- documented
run 0 "$fovea" create-data --help
expect out "usage: fovea create-data DIR [--seed N]"
run 0 "$fovea" --help
expect out "  create-data "

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
exit 0
