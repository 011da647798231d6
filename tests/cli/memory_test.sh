#!/usr/bin/env bash
# memory_test.sh: sizes inside their option ranges that no machine can hold
# are refused before anything is allocated (issue 12 item 6), through the
# real binary, one case per meson test:
#
#   memory_test.sh CASE FOVEA SOURCE_ROOT
#
#   train    model.hidden_channels=[1000000000]: "needs N GiB" naming the
#            parameter, against the machine's memory and against --max-memory
#            / FOVEA_MAX_MEMORY; a bad size is a usage error; the normal job
#            trains under a modest limit
#   mei      `fovea mei ... time_steps=100000000` (neuron and inner unit) and
#            `fovea mds` likewise, refused before the start stimulus is
#            drawn, and with --max-memory / FOVEA_MAX_MEMORY counting one
#            forward's activations; predict's option
set -u

case_name=$1
fovea=$2
srcdir=$3

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

example=$srcdir/configs/example.yaml
small=(data_io.color_channels=1 data_io.video_height=6 data_io.video_width=5
       dataloader.train_chunk_size=20 dataloader.clip_length=40 dataloader.num_val_clips=1
       'model.core.temporal_kernel_sizes=[5]')

make_data() {
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 \
		--test-frames 60 --trials 3 --height 6 --width 5 --channels 1 --filter-length 4 \
		>/dev/null || fail "create-data"
}

case "$case_name" in
train)
	make_data
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/big" \
		"${small[@]}" 'model.hidden_channels=[1000000000]' --threads 1 --no-progress
	# on this machine (< 30 GiB) the second of the core's weights is refused
	# before any is filled; a larger machine refuses a later allocation
	expect err "needs"
	expect err "GiB this machine has available"
	refute err "out of memory"
	# a limit of the user's own, on the command line or in the environment
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/lim" \
		"${small[@]}" 'model.hidden_channels=[3000]' --max-memory 100M --threads 1 --no-progress
	expect err "one step's activations and gradients"
	expect err "more than the limit of 100.0 MiB (--max-memory or FOVEA_MAX_MEMORY)"
	FOVEA_MAX_MEMORY=100M run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" \
		paths.output_dir="$tmp/lim" "${small[@]}" 'model.hidden_channels=[3000]' --threads 1 \
		--no-progress
	expect err "more than the limit of 100.0 MiB"
	FOVEA_MAX_MEMORY=lots run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" \
		paths.output_dir="$tmp/lim" "${small[@]}" 'model.hidden_channels=[3000]' --threads 1 \
		--no-progress
	expect err "FOVEA_MAX_MEMORY: 'lots' is not a memory size"
	run 2 "$fovea" train "$example" --max-memory lots
	expect err "fovea train: --max-memory: 'lots' is not a memory size"
	run 2 "$fovea" train "$example" --max-memory
	expect err "--max-memory needs a size"
	run 0 "$fovea" train --help
	expect out "--max-memory SIZE"
	# the normal job is not refused, even under a modest limit
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1 --max-memory=1G --threads 1 --no-progress
	expect out "trained 1 epoch"
	;;
mei)
	make_data
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1 --threads 1 --no-progress
	ck=$tmp/run/best.safetensors
	# refused at once: the random start of 100000000 frames ran for minutes
	start=$SECONDS
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 0 --out "$tmp/m" time_steps=100000000 \
		--no-progress
	# 44.7 GiB for the stimulus alone; a machine with more refuses the
	# activations then
	expect err "stimulus of 100000000 frames (1 x 1 x 100000000 x 6 x 5: it, its gradient"
	expect err "GiB this machine has available"
	[ -e "$tmp/m" ] && fail "mei created its output directory"
	# the same for an inner unit (its layer was probed at full length first)
	run 1 "$fovea" mei "$ck" --layer core.features.layer0 --channel 0 --out "$tmp/m" \
		time_steps=100000000 --no-progress
	expect err "stimulus of 100000000 frames"
	expect err "GiB this machine has available"
	# the activations of one forward count too (measured, then extrapolated)
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 0 --out "$tmp/m" time_steps=100000 \
		--max-memory 100M --no-progress
	expect err "an optimisation of a stimulus of 100000 frames (1 x 1 x 100000 x 6 x 5: it, its gradient, the optimizer's state and one forward's activations) needs"
	expect err "more than the limit of 100.0 MiB (--max-memory or FOVEA_MAX_MEMORY)"
	FOVEA_MAX_MEMORY=100M run 1 "$fovea" mei "$ck" --session session_1 --neuron 0 \
		--out "$tmp/m" time_steps=100000 --no-progress
	expect err "more than the limit of 100.0 MiB"
	[ -e "$tmp/m" ] && fail "mei created its output directory"
	run 1 "$fovea" mds "$ck" --session session_1 --on 0 --off 1 --out "$tmp/s" \
		time_steps=100000000 --no-progress
	expect err "stimulus of 100000000 frames"
	expect err "GiB this machine has available"
	FOVEA_MAX_MEMORY=100M run 1 "$fovea" mds "$ck" --session session_1 --on 0 --off 1 \
		--out "$tmp/s" time_steps=100000 --no-progress
	expect err "more than the limit of 100.0 MiB"
	[ -e "$tmp/s" ] && fail "mds created its output directory"
	[ $((SECONDS - start)) -lt 30 ] || fail "the refusals took $((SECONDS - start)) s"
	run 2 "$fovea" predict "$ck" --max-memory 0
	expect err "fovea predict: --max-memory: '0' is not a memory size"
	# a normal MEI is not refused, even under a modest limit
	run 0 "$fovea" mei "$ck" --session session_1 --neuron 0 --out "$tmp/ok" time_steps=30 \
		--max-memory 200M --no-progress
	exists "$tmp/ok/mei_session_1_0.npy"
	;;
*)
	echo "unknown case $case_name" >&2
	exit 2
	;;
esac
finish "$case_name"
