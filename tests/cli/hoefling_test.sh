#!/usr/bin/env bash
# hoefling_test.sh FOVEA SRCDIR: the Hoefling 2024 experiment config on the
# fixtures of tools/fixtures/hoefling_2024.py through the fovea binary: the
# filter report counts what the planted truth says (computed here from the
# fixture's formulas), and bad files stop with one message naming the key.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fovea=$1 srcdir=$2
fixture="$srcdir/tools/fixtures/hoefling_2024.py"

mkdir -p "$tmp/cfg" && cp -r "$srcdir/configs/." "$tmp/cfg/"
cp -r "$srcdir/tests/configs/experiments/." "$tmp/cfg/"
/usr/bin/python3 "$fixture" "$tmp/h" --seed 5 --sessions 4 --neurons 20 >/dev/null || fail "fixture"
args=(-cp "$tmp/cfg" -cn hoefling_2024_core_readout_low_res paths.cache_dir="$tmp/h"
	paths.movies_path="$tmp/h/movies.pkl" paths.responses_path="$tmp/h/responses.h5"
	paths.output_dir="$tmp/run" trainer.max_epochs=1 +trainer.max_steps=1
	"dataloader.validation_clip_indices=[7]" dataloader.batch_size=4 --threads 1)

# the planted truth: cell types 1..32, d_qi >= 0.6 or chirp_qi >= 0.35, confidence >= 0.25
read -r total ct final <<<"$(/usr/bin/python3 - <<'PY'
seed, sessions, n = 5, 4, 20
total = sessions * n
ct = sum(1 + (7 * i + k + seed) % 46 <= 32 for k in range(sessions) for i in range(n))
final = sum(1 + (7 * i + k + seed) % 46 <= 32 and (i % 3 == 0 or i % 4 == 0) and i % 5 != 3
            for k in range(sessions) for i in range(n))
print(total, ct, final)
PY
)"
run 0 "$fovea" train "${args[@]}"
expect out "Original dataset contains $total neurons over 4 fields"
expect out "Overall, dropped $((total - ct)) neurons of non-target cell types"
expect out "Final dataset contains $final neurons over 4 fields"
expect out "Total number of cells dropped: $((total - final)) (-"
expect out "trained 1 epochs"

for bad in nan class missing-key; do
	rm -rf "$tmp/h" && /usr/bin/python3 "$fixture" "$tmp/h" --corrupt $bad --height 2 --width 2 >/dev/null || fail "fixture $bad"
	run 1 "$fovea" train "${args[@]}"
	case $bad in
	nan) expect err "$tmp/h/responses.h5: make_final_responses: session 'session_1_ventral1_20200101': 'natural_inferred_spikes' holds NaN" ;;
	class) expect err "$tmp/h/movies.pkl"; expect err "fractions" ;;
	missing-key) expect err "$tmp/h/responses.h5: quality filter: session 'session_1_ventral1_20200101' has no array 'd_qi'" ;;
	esac
	[ "$(grep -c . <<<"$err")" -eq 1 ] || fail "$bad: more than one line on stderr: $err"
done
finish hoefling
