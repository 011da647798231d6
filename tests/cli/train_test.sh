#!/usr/bin/env bash
# train_test.sh: `fovea train`, `fovea eval` and `fovea predict` through
# the real binary, one case per meson test:
#
#   train_test.sh CASE FOVEA SOURCE_ROOT
#
#   train_eval_predict  the main job on a tiny synthetic data set: outputs,
#                       the printed lines, the evaluation files, predictions
#   errors              exit codes and messages of bad command lines, bad
#                       configs, truncated and foreign checkpoints, unknown
#                       sessions, stimuli of the wrong shape
#   resume_after_kill   a run killed with SIGKILL mid-epoch and resumed with
#                       resume=true ends exactly as an uninterrupted run
#   hdf5_core_readout   openretina's configs/hdf5_core_readout.yaml with the
#                       usual overrides trains on a directory in the HDF5 layout
set -u

case_name=$1
fovea=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") # absolute: one case changes directory
srcdir=$3

unset FOVEA_PLUGIN_PATH
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

example=$srcdir/configs/example.yaml
# tiny data: 2 sessions (3 and 4 neurons), 1 x 6 x 5 pixels
data_args=(--seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 --test-frames 60 --trials 3
           --height 6 --width 5 --channels 1 --filter-length 4)
# configs/example.yaml scaled to it
small=(data_io.color_channels=1 data_io.video_height=6 data_io.video_width=5
       dataloader.batch_size=4 dataloader.train_chunk_size=20 dataloader.clip_length=40
       dataloader.num_val_clips=1 'model.core.temporal_kernel_sizes=[5]' trainer.max_epochs=3)

make_data() { # make_data DIR [create-data options...]
	local dir=$1; shift
	"$fovea" create-data "$dir" "$@" >/dev/null || fail "create-data $dir"
}

# metrics.csv without its last column (the wall time)
metrics() { sed 's/,[^,]*$//' "$1/metrics.csv"; }

case "$case_name" in
train_eval_predict)
	make_data "$tmp/d" "${data_args[@]}"
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" --threads 1 --no-progress
	expect out "epoch 1/3  train_loss"
	expect out "epoch 3/3"
	expect out "trained 3 epochs"
	expect out "outputs in $tmp/run"
	for f in config.yaml metrics.csv best.safetensors last.safetensors; do exists "$tmp/run/$f"; done
	[ "$(wc -l <"$tmp/run/metrics.csv")" -eq 4 ] || fail "metrics.csv: expected a header and 3 rows"
	head -1 "$tmp/run/metrics.csv" | grep -q '^epoch,step,lr,train_loss,' ||
		fail "metrics.csv header: $(head -1 "$tmp/run/metrics.csv")"

	run 0 "$fovea" eval "$tmp/run/best.safetensors" "$tmp/d"
	expect out "Model Evaluation Results"
	expect out "Total neurons: 7"
	expect out "Temporal lag: 4"
	expect out "(Number of trials/repeats: 3 (constant across all sessions))"
	expect out "test correlation"
	exists "$tmp/run/eval_per_neuron.csv"
	exists "$tmp/run/eval_summary.json"
	[ "$(wc -l <"$tmp/run/eval_per_neuron.csv")" -eq 8 ] || fail "eval_per_neuron.csv: 7 neurons"
	grep -q '"n_neurons_total": 7' "$tmp/run/eval_summary.json" || fail "summary lacks the count"

	run 0 "$fovea" eval "$tmp/run/best.safetensors" "$tmp/d" --output "$tmp/ev" --split test
	exists "$tmp/ev/eval_summary.json"

	run 0 "$fovea" predict "$tmp/run/best.safetensors" "$tmp/d/stimuli/test.npy" \
		--session session_1 -o "$tmp/pred.npy"
	expect out "56 frames x 4 neurons"
	exists "$tmp/pred.npy"
	head -c 128 "$tmp/pred.npy" | grep -aq "'shape': (56, 4" || fail "pred.npy shape"

	# a progress bar when asked for one
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/bar" \
		"${small[@]}" trainer.max_epochs=1 --threads 1 --progress
	expect out "epoch 1/1 ["
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/quiet" \
		"${small[@]}" trainer.max_epochs=1 --quiet
	[ -z "$out" ] || fail "--quiet printed: $out"
	;;

errors)
	make_data "$tmp/d" "${data_args[@]}"
	run 2 "$fovea" train
	expect err "expected a config file"
	run 2 "$fovea" train "$example" --threads many
	expect err "--threads needs a number"
	run 2 "$fovea" train "$example" --frobnicate
	expect err "unknown option '--frobnicate'"
	run 1 "$fovea" train "$tmp/none.yaml"
	expect err "none.yaml"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/r" \
		"${small[@]}" +trainer.max_epoch=3
	expect err "did you mean 'max_epochs'?"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/nodata" paths.output_dir="$tmp/r" \
		"${small[@]}"
	expect err "$tmp/nodata"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/r" \
		"${small[@]}" lr_scheduler._target_=OneCycleLR
	expect err "unknown scheduler 'OneCycleLR'"

	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1 --quiet
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1
	expect err "already holds a training run"

	ck=$tmp/run/best.safetensors
	run 2 "$fovea" eval "$ck"
	expect err "expected a checkpoint and a data directory"
	run 2 "$fovea" eval "$ck" "$tmp/d" --var-ratio-cutoff lots
	expect err "--var-ratio-cutoff needs a number"
	size=$(stat -c %s "$ck")
	head -c $((size / 2)) "$ck" >"$tmp/cut.safetensors"
	run 1 "$fovea" eval "$tmp/cut.safetensors" "$tmp/d"
	expect err "cut.safetensors"
	cp "$tmp/d/stimuli/test.npy" "$tmp/not.safetensors"
	run 1 "$fovea" eval "$tmp/not.safetensors" "$tmp/d"
	expect err "not.safetensors"
	run 1 "$fovea" eval "$ck" "$tmp/d" --split nope
	expect err "no session has responses to the test stimulus 'nope'"
	make_data "$tmp/three" "${data_args[@]}" --neurons 3,4,5
	run 1 "$fovea" eval "$ck" "$tmp/three"
	expect err "session 'session_2' of the data has no readout"
	make_data "$tmp/big" "${data_args[@]}" --height 7
	run 1 "$fovea" eval "$ck" "$tmp/big"
	expect err "(1, 7, 5)"

	run 2 "$fovea" predict "$ck" "$tmp/d/stimuli/test.npy"
	expect err "--session is required"
	run 1 "$fovea" predict "$ck" "$tmp/d/stimuli/test.npy" --session session_9
	expect err "has no session 'session_9'"
	run 1 "$fovea" predict "$ck" "$tmp/big/stimuli/test.npy" --session session_0
	expect err "expected (channels, time, height, width)"
	run 1 "$fovea" predict "$tmp/cut.safetensors" "$tmp/d/stimuli/test.npy" --session session_0
	expect err "cut.safetensors"
	;;

resume_after_kill)
	# enough data that an epoch takes a moment, so the kill lands inside one
	make_data "$tmp/d" "${data_args[@]}" --frames 2400
	args=(paths.data_dir="$tmp/d" "${small[@]}" trainer.max_epochs=8 --threads 1)
	run 0 "$fovea" train "$example" paths.output_dir="$tmp/whole" "${args[@]}" --quiet
	"$fovea" train "$example" paths.output_dir="$tmp/parts" "${args[@]}" --quiet &
	pid=$!
	for _ in $(seq 1 600); do # until epoch 1 is on disk
		[ -f "$tmp/parts/last.safetensors" ] && break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rows=$(($(wc -l <"$tmp/parts/metrics.csv") - 1))
	[ "$rows" -lt 8 ] || fail "the run finished before it was killed ($rows epochs)"
	run 0 "$fovea" train "$example" paths.output_dir="$tmp/parts" "${args[@]}" resume=true
	expect out "resuming $tmp/parts after epoch"
	[ "$(metrics "$tmp/whole")" = "$(metrics "$tmp/parts")" ] ||
		fail "the resumed run differs: $(diff <(metrics "$tmp/whole") <(metrics "$tmp/parts"))"
	# the same weights predict the same responses, bit for bit
	for r in whole parts; do
		run 0 "$fovea" predict "$tmp/$r/best.safetensors" "$tmp/d/stimuli/test.npy" \
			--session session_1 -o "$tmp/$r.npy"
	done
	cmp -s "$tmp/whole.npy" "$tmp/parts.npy" || fail "the best weights differ"
	;;

hdf5_core_readout)
	make_data "$tmp/d" --seed 2 --neurons 5,6 --frames 600 --train-stimuli 1 --test-frames 150 \
		--trials 3 --height 16 --width 8 --channels 2
	cd "$tmp" || exit 1
	run 0 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=2 dataloader.batch_size=4 \
		'data_io.test_names=[test]' dataloader.num_val_clips=1 --threads 1
	expect out "trained 2 epochs"
	expect out "outputs in ./fovea_runs/h5_core_readout/"
	run_dir=$(ls -d "$tmp"/fovea_runs/h5_core_readout/*/ | head -1)
	exists "$run_dir/best.safetensors"
	grep -q "hidden_channels: \[8, 8, 8\]" "$run_dir/config.yaml" || fail "config.yaml: model"
	grep -q "clip_length: 75" "$run_dir/config.yaml" || fail "config.yaml: data loader"
	grep -q "gradient_clip_val: 1" "$run_dir/config.yaml" || fail "config.yaml: trainer"
	run 0 "$fovea" eval "$run_dir/best.safetensors" "$tmp/d"
	expect out "Total neurons: 11"
	;;

*)
	echo "unknown case $case_name" >&2
	exit 2
	;;
esac

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s) in $case_name" >&2
	exit 1
fi
echo "ok $case_name"
