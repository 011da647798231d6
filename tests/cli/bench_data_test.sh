#!/usr/bin/env bash
# bench_data_test.sh FOVEA_BENCH: fovea-bench's data task on small data sets
# of both layouts: one JSON line with its fields, an epoch of the expected
# batches, times in order, the data set removed after; and its errors.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench=$1
export TMPDIR=$tmp

# 9600 frames: 64 clips of 150, 15 for validation, 49 kept: 7350 frames,
# 147 chunks of 50, 2 batches of 64 per session, 3 sessions
small=(--data-sessions 3 --data-neurons 5 --data-frames 9600 --data-test-frames 150
       --data-height 6 --data-width 5 --data-channels 1)
run 0 "$bench" --task data "${small[@]}" --json
for field in '"task": "data"' '"layout": "generic"' '"sessions": 3' '"batches": 6' \
             '"peak_rss_mib": ' '"batch_mib": ' '"ratio": '; do
	expect out "$field"
done
echo "$out" | awk -F'"(open_s|first_batch_s|epoch_s)": ' 'NF == 4 {
	split($2, a, ","); split($3, b, ","); split($4, c, ",")
	exit !(a[1] >= 0 && a[1] <= b[1] && b[1] <= c[1]) }
	NF != 4 { exit 1 }' || { fail "times not ordered"; show out; }
[ -z "$(ls "$tmp" | grep fovea-bench-data)" ] || fail "the data set was left in $tmp"

run 0 "$bench" --task data --data-layout openretina --data-sessions 2 --data-channels 2
expect out "data openretina: 2 sessions"
expect out "peak RSS"

# a kept directory, reused by the next run
run 0 "$bench" --task data "${small[@]}" --data-dir "$tmp/kept"
[ -f "$tmp/kept/session_2.hdf5" ] || fail "--data-dir: the data set was not kept"
run 0 "$bench" --task data "${small[@]}" --data-dir "$tmp/kept"
expect out "data generic: 3 sessions"

run 2 "$bench" --task data --data-layout tfrecord
expect err "--data-layout: generic or openretina, not 'tfrecord'"
run 2 "$bench" --task data --data-sessions 0
expect err "--data-sessions needs an integer >= 1"
# 1800 frames: 12 clips, fewer than the 15 validation clips
run 1 "$bench" --task data "${small[@]}" --data-frames 1800
expect err "num_val_clips=15"

finish bench_data
