#!/usr/bin/env bash
# bench_test.sh FOVEA_BENCH SOURCE_ROOT: fovea-bench's in-silico task (stim)
# on the default model: one JSON line with the fields the speed issue asks
# for, batch 1, the model's 50 frames, ordered timings; and the task list
# in the error for an unknown task; the GRU workloads run.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench=$1
configs=$2/configs/bench

run 0 "$bench" --config-dir "$configs" --workload hoefling --task stim --threads 1 --reps 3 --json
for field in '"workload": "hoefling"' '"task": "stim"' '"threads": 1' '"batch": 1' \
             '"frames": 50' '"reps": 3' '"gflops": ' '"peak_rss_mib": '; do
	expect out "$field"
done
# min <= median <= max, all positive
echo "$out" | awk -F'"(min|median|max)_ms": ' 'NF == 4 {
	split($2, a, ","); split($3, b, ","); split($4, c, ",")
	exit !(a[1] > 0 && a[1] <= b[1] && b[1] <= c[1]) }
	NF != 4 { exit 1 }' || { fail "timings not ordered"; show out; }

# the GRU workloads (issue 15): openretina's GRU_core_readout model, and with its GRU on
run 0 "$bench" --config-dir "$configs" --workload gru,convgru --task fwd --threads 1 --reps 1 \
	--json
for field in '"workload": "gru"' '"workload": "convgru"' '"task": "fwd"' '"gflops": '; do
	expect out "$field"
done

run 2 "$bench" --task stum
expect err "unknown task 'stum' (known: fwd, fwd_all, train, stim, conv, readout, data)"

finish bench_stim
