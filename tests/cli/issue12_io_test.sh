#!/usr/bin/env bash
# issue12_io_test.sh: bad inputs of `fovea train`, `eval`, `predict`,
# `mei` and `mds` that used to crash or exit 0 with a meaningless result
# (issue 12), one case per meson test:
#
#   bash issue12_io_test.sh CASE FOVEA SOURCE_ROOT
#
#   eval_cutoff_nan   --var-ratio-cutoff nan is a usage error, not a
#                     summary over no neurons
#   no_validation     dataloader.num_val_clips=0 is refused before training
#                     (item 8): no run directory, no NaN validation
#   chunk_too_long    a train_chunk_size longer than a session's training
#                     movie is one error naming the session, its frames and
#                     the chunk size (item 1; it read past the movie)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_=$1
fovea=$2
srcdir=${3:-}

example=$srcdir/configs/example.yaml
# the tests' tiny data: 2 sessions (3 and 4 neurons) of 240 frames, 1 x 6 x 5
data_args=(--seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 --test-frames 60 --trials 3
           --height 6 --width 5 --channels 1 --filter-length 4)
small=(data_io.color_channels=1 data_io.video_height=6 data_io.video_width=5
       dataloader.batch_size=4 dataloader.train_chunk_size=20 dataloader.clip_length=40
       dataloader.num_val_clips=1 'model.core.temporal_kernel_sizes=[5]' trainer.max_epochs=1)

make_data() {
	"$fovea" create-data "$tmp/d" "${data_args[@]}" >/dev/null || fail "create-data"
}

case "$case_" in
eval_cutoff_nan)
	run 2 "$fovea" eval "$tmp/x.safetensors" "$tmp/d" --var-ratio-cutoff nan
	expect err "--var-ratio-cutoff needs a finite number, got 'nan'"
	;;
no_validation)
	make_data
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" dataloader.num_val_clips=0 --threads 1 --no-progress
	expect err "no validation batches (dataloader.num_val_clips is 0"
	expect err "set dataloader.num_val_clips to 1 or more"
	refute out "best"
	[ -e "$tmp/run/best.safetensors" ] && fail "a best checkpoint was written"
	[ "$(grep -c . "$tmp/err")" -eq 1 ] || { fail "expected one error line"; show err; }
	;;
chunk_too_long)
	make_data
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" dataloader.train_chunk_size=300 dataloader.batch_size=1 --threads 1 \
		--no-progress
	expect err "session 'session_0': dataloader.train_chunk_size=300 is longer than its training movie (200 frames"
	refute out "epoch"
	[ -e "$tmp/run/last.safetensors" ] && fail "a checkpoint was written"
	[ "$(grep -c . "$tmp/err")" -eq 1 ] || { fail "expected one error line"; show err; }
	;;
*)
	echo "unknown case $case_" >&2
	exit 2
	;;
esac
finish "$case_"
