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
#                       usual overrides trains on the directory openretina's own
#                       `openretina create-data` writes (fovea create-data
#                       --layout openretina), then evaluates
#   gru_core_readout    openretina's configs/model/GRU_core_readout.yaml
#                       (ConvGRUCore) through hdf5_core_readout.yaml with
#                       model=GRU_core_readout, smaller kernels and a GRU:
#                       trains, evaluates, draws the core's filters, finds
#                       a most exciting input; the
#                       config's own even GRU kernels are refused with
#                       use_gru true, where openretina fails
#   concurrent_runs     a second training into a directory a running one
#                       holds is refused, naming the holder's pid (issue 12
#                       item 12); the first one ends normally
#   nonfinite           a regularizer weight of .nan or below 0 is refused; a
#                       gradient that goes non-finite stops the run with exit
#                       1 and no NaN checkpoint (issue 12 item 7)
#   accumulate_one_cycle  trainer.accumulate_grad_batches=3 takes one optimizer
#                       step per 3 batches (metrics.csv's step column);
#                       openretina's one_cycle_lr scheduler config trains, its
#                       rate moving per optimizer step, and a total_steps too
#                       short for the run stops it with torch's complaint
#   resume_bad_state    a last.safetensors whose trainer_state counts more
#                       epochs than its steps allow is refused on resume
#                       (found with fuzz_ckpt_meta: 2^63-1 epochs replayed
#                       the batch order forever)
set -u

case_name=$1
fovea=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") # absolute: one case changes directory
srcdir=$3

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
	# by default: the bar on a terminal (a pty from util-linux's script), plain
	# lines into a pipe or file (the first run above); the bar shows the
	# batch count, the running loss and correlation, then the epoch's line
	if command -v script >/dev/null; then
		run 0 script -qec "'$fovea' train '$example' paths.data_dir='$tmp/d' \
			paths.output_dir='$tmp/tty' ${small[*]} trainer.max_epochs=1 --threads 1" /dev/null
		expect out "epoch 1/1 [####"
		expect out "] 4/4 loss "
		expect out " corr "
		expect out "epoch 1/1  train_loss"
	else
		echo "note: no script(1), the terminal case is not checked"
	fi
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/pipe" \
		"${small[@]}" trainer.max_epochs=1 --threads 1
	refute out "["
	expect out "epoch 1/1  train_loss"
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
		"${small[@]}" lr_scheduler._target_=CyclicLR
	expect err "unknown scheduler 'CyclicLR'"

	# bad data (item 1 of issue 5): exit 1, the file, session, stimulus and shapes named
	bad() { # bad NAME: a fresh copy of the data in $tmp/NAME
		rm -rf "${tmp:?}/$1" && cp -r "$tmp/d" "$tmp/$1"
	}
	train_on() { # train_on DIR: one epoch on it, expected to fail with exit 1
		run 1 "$fovea" train "$example" paths.data_dir="$1" paths.output_dir="$tmp/never" \
			"${small[@]}" trainer.max_epochs=1 --quiet
	}
	bad nostim && rm "$tmp/nostim/stimuli/train_0.npy"
	train_on "$tmp/nostim"
	expect err "session 'session_0': responses_train_0 has no stimulus: neither $tmp/nostim/stimuli/train_0.npy nor"
	bad cutnpy && head -c 1000 "$tmp/d/stimuli/train_0.npy" >"$tmp/cutnpy/stimuli/train_0.npy"
	train_on "$tmp/cutnpy"
	expect err "$tmp/cutnpy/stimuli/train_0.npy"
	expect err "truncated"
	bad cuth5 && head -c 3000 "$tmp/d/session_1.hdf5" >"$tmp/cuth5/session_1.hdf5"
	train_on "$tmp/cuth5"
	expect err "$tmp/cuth5/session_1.hdf5"
	expect err "truncated or corrupted"
	bad long && make_data "$tmp/longer" "${data_args[@]}" --frames 300
	cp "$tmp/longer/stimuli/train_0.npy" "$tmp/long/stimuli/train_0.npy"
	train_on "$tmp/long"
	expect err "session 'session_0', stimulus 'train_0': responses of shape (3, 240) (neurons, time) do not match the stimulus of shape (1, 300, 6, 5)"
	bad wide && make_data "$tmp/wider" "${data_args[@]}" --width 7
	cp "$tmp/wider/stimuli/test.npy" "$tmp/wide/stimuli/test.npy"
	train_on "$tmp/wide"
	expect err "$tmp/wide/stimuli/test.npy: stimulus of shape (1, 60, 6, 7) has (channels, height, width) = (1, 6, 7), expected (1, 6, 5)"
	train_on "$tmp/d/session_0.hdf5"
	expect err "is not a directory"

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
	# corrupted, not cut: the JSON header garbled in place
	cp "$ck" "$tmp/garbled.safetensors"
	printf '\x01\x02{]]' | dd of="$tmp/garbled.safetensors" bs=1 seek=12 conv=notrunc 2>/dev/null
	run 1 "$fovea" eval "$tmp/garbled.safetensors" "$tmp/d"
	expect err "garbled.safetensors"
	run 1 "$fovea" predict "$tmp/garbled.safetensors" "$tmp/d/stimuli/test.npy" --session session_0
	expect err "garbled.safetensors"
	# resuming from a cut last.safetensors fails cleanly too
	cp -r "$tmp/run" "$tmp/cutrun"
	head -c $((size / 3)) "$tmp/run/last.safetensors" >"$tmp/cutrun/last.safetensors"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/cutrun" \
		"${small[@]}" trainer.max_epochs=2 resume=true --quiet
	expect err "last.safetensors"
	cp "$tmp/d/stimuli/test.npy" "$tmp/not.safetensors"
	run 1 "$fovea" eval "$tmp/not.safetensors" "$tmp/d"
	expect err "not.safetensors"
	run 1 "$fovea" eval "$ck" "$tmp/d" --split nope
	expect err "data_split 'nope': no such dataloader (there are: train, validation, test)"
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
	# openretina's Makefile test (test-h5train) in fovea: the directory
	# `openretina create-data DIR --num-colors 2` writes, with its defaults
	# (4 stimuli, 2 sessions, clip length 75), trained by openretina's config
	# with nothing but the usual overrides, from a fresh working directory
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null ||
		fail "create-data --layout openretina"
	cd "$tmp" || exit 1
	run 0 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=2 dataloader.batch_size=32 --threads 1
	expect out "epoch 1/2  train_loss"
	expect out "trained 2 epochs"
	expect out "outputs in ./fovea_runs/h5_core_readout/"
	run_dir=$(ls -d "$tmp"/fovea_runs/h5_core_readout/*/ | head -1)
	exists "$run_dir/best.safetensors"
	# openretina's values, with only the overrides changed
	grep -q "hidden_channels: \[8, 8, 8\]" "$run_dir/config.yaml" || fail "config.yaml: model"
	grep -q "clip_length: 75" "$run_dir/config.yaml" || fail "config.yaml: data loader"
	grep -q "num_val_clips: 20" "$run_dir/config.yaml" || fail "config.yaml: validation clips"
	grep -q "test_names: \['random_noise_2', 'random_noise_3'\]" "$run_dir/config.yaml" ||
		fail "config.yaml: test stimuli"
	grep -q "gradient_clip_val: 1" "$run_dir/config.yaml" || fail "config.yaml: trainer"
	grep -q "batch_size: 32" "$run_dir/config.yaml" || fail "config.yaml: batch_size override"
	# (70 + 71) x 75 training frames: 141 clips, 20 of them for validation,
	# 121 x 75 / 50 = 181 chunks per session, 5 batches of 32 per session
	[ "$(sed -n 2p "$run_dir/metrics.csv" | cut -d, -f1,2)" = "0,10" ] ||
		fail "metrics.csv: expected 10 steps in epoch 1: $(sed -n 2p "$run_dir/metrics.csv")"
	run 0 "$fovea" eval "$run_dir/best.safetensors" "$tmp/d"
	expect out "Data split: random_noise_2,random_noise_3"
	expect out "(one row per neuron and test stimulus, 2 stimuli)"
	expect out "(Number of trials/repeats: N/A)"
	expect out "test correlation"
	n=$(($(wc -l <"$run_dir/eval_per_neuron.csv") - 1))
	[ "$n" -ge 40 ] && [ "$n" -le 116 ] || fail "eval_per_neuron.csv: $n rows, expected 2 stimuli x 20..58 neurons"
	# and openretina's own defaults untouched (3 colours, as its Makefile's
	# test-h5train writes and trains them)
	"$fovea" create-data "$tmp/d3" --layout openretina >/dev/null || fail "create-data, 3 colours"
	run 0 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d3" \
		paths.output_dir="$tmp/run3" trainer.max_epochs=1 --threads 1 --quiet
	exists "$tmp/run3/best.safetensors"
	;;

gru_core_readout)
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null ||
		fail "create-data --layout openretina"
	gru=(model=GRU_core_readout paths.data_dir="$tmp/d" data_io.color_channels=2
	     dataloader.batch_size=32 'model.hidden_channels=[4,4]'
	     'model.core.spatial_kernel_sizes=[5,3]' 'model.core.temporal_kernel_sizes=[11,5]')
	run 0 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" "${gru[@]}" \
		paths.output_dir="$tmp/run" trainer.max_epochs=1 model.core.use_gru=true \
		model.core.gru_kwargs.input_kern=3 model.core.gru_kwargs.rec_kern=3 \
		model.core.gru_kwargs.rec_channels=4 --threads 1
	expect out "trained 1 epochs"
	exists "$tmp/run/best.safetensors"
	exists "$tmp/run/core_filters.png"
	grep -q "_target_: openretina.modules.core.gru_core.ConvGRUCore" "$tmp/run/config.yaml" ||
		fail "config.yaml: core"
	run 0 "$fovea" eval "$tmp/run/best.safetensors" "$tmp/d"
	expect out "test correlation"
	run 0 "$fovea" mei "$tmp/run/best.safetensors" --session session_0 --neuron 1 --out "$tmp/run"
	exists "$tmp/run/mei_session_0_1.npy"
	run 0 "$fovea" mei "$tmp/run/best.safetensors" --layer core.features.gru --channel 0 \
		--session session_0 --out "$tmp/run"
	exists "$tmp/run/mei_core.features.gru_0.npy"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" "${gru[@]}" \
		paths.output_dir="$tmp/never" trainer.max_epochs=1 model.core.use_gru=true
	expect err "GRU_core_readout.yaml"
	expect err "gru_kwargs.rec_kern = 4: an even kernel"
	;;
accumulate_one_cycle)
	make_data "$tmp/d" "${data_args[@]}"
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/one" \
		"${small[@]}" trainer.max_epochs=1 --threads 1 --quiet
	n=$(sed -n 2p "$tmp/one/metrics.csv" | cut -d, -f2)
	[ "$n" -gt 3 ] || fail "expected more than 3 batches per epoch, got '$n'"
	windows=$(((n + 2) / 3))
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/acc" \
		"${small[@]}" trainer.max_epochs=2 trainer.accumulate_grad_batches=3 --threads 1 --no-progress
	expect out "trained 2 epochs"
	[ "$(sed -n 2p "$tmp/acc/metrics.csv" | cut -d, -f1,2)" = "0,$windows" ] ||
		fail "accumulation: epoch 1 should take $windows steps: $(sed -n 2p "$tmp/acc/metrics.csv")"
	[ "$(sed -n 3p "$tmp/acc/metrics.csv" | cut -d, -f1,2)" = "1,$((2 * windows))" ] ||
		fail "accumulation: 2 epochs should take $((2 * windows)) steps: $(sed -n 3p "$tmp/acc/metrics.csv")"

	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/oc" \
		"${small[@]}" trainer.max_epochs=2 lr_scheduler=one_cycle_lr --threads 1 --quiet
	grep -q "_target_: torch.optim.lr_scheduler.OneCycleLR" "$tmp/oc/config.yaml" ||
		fail "config.yaml: no OneCycleLR"
	# epoch 1 starts at max_lr / div_factor = 0.02 / 25; epoch 2 somewhere below max_lr
	lr0=$(sed -n 2p "$tmp/oc/metrics.csv" | cut -d, -f3)
	lr1=$(sed -n 3p "$tmp/oc/metrics.csv" | cut -d, -f3)
	awk -v a="$lr0" 'BEGIN { exit !(a > 0.00079999 && a < 0.00080001) }' ||
		fail "OneCycleLR: first rate $lr0, expected 0.0008"
	awk -v a="$lr0" -v b="$lr1" 'BEGIN { exit !(b != a && b > 0 && b < 0.02) }' ||
		fail "OneCycleLR: second epoch's rate $lr1"

	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/short" \
		"${small[@]}" trainer.max_epochs=2 lr_scheduler=one_cycle_lr +lr_scheduler.total_steps=3 --quiet
	expect err "OneCycleLR: tried to step 4 times; total_steps is 3"

	run 0 "$fovea" describe torch.optim.lr_scheduler.OneCycleLR
	expect out "OneCycleLR (scheduler, built into libfovea)"
	expect out "max_lr"
	expect out "anneal_strategy"
	;;

concurrent_runs)
	make_data "$tmp/d" "${data_args[@]}"
	# long enough that the first run still trains when it gets stopped below
	"$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=400 --quiet >"$tmp/first.out" 2>&1 &
	first=$!
	for _ in $(seq 600); do
		[ "$(cat "$tmp/run/.fovea.lock" 2>/dev/null)" = "$first" ] && break
		sleep 0.05
	done
	# held still while the second one tries, so the refusal cannot race its end
	kill -STOP "$first"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1 --quiet
	expect err "$tmp/run is in use by another training (process $first holds .fovea.lock)"
	kill -CONT "$first"
	wait "$first" || fail "the first training exited $?: $(cat "$tmp/first.out")"
	exists "$tmp/run/best.safetensors"
	# the kernel released the lock: the directory can be resumed now
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=401 resume=true --quiet
	;;

nonfinite)
	make_data "$tmp/d" "${data_args[@]}"
	# YAML's .nan is a float to the parser; the weights' ranges refuse it
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/nan" \
		"${small[@]}" model.core.gamma_temporal=.nan --quiet
	expect err "model.core.gamma_temporal: nan is out of range [0, 1e+30]"
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/neg" \
		"${small[@]}" model.readout.mask_l1_reg=-1 --quiet
	expect err "model.readout.mask_l1_reg: -1 is out of range [0, 1e+30]"
	# a learning rate that blows the weights up: the first non-finite
	# gradient stops the run before any checkpoint takes it
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/big" \
		"${small[@]}" model.learning_rate=1e9 seed=1 --quiet
	expect err "epoch 1/3, training batch "
	expect err "session 'session_"
	expect err "the gradient of "
	expect err "training stopped"
	[ ! -e "$tmp/big/last.safetensors" ] && [ ! -e "$tmp/big/best.safetensors" ] ||
		fail "a checkpoint was written from non-finite weights"
	;;

resume_bad_state)
	make_data "$tmp/d" "${data_args[@]}"
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" trainer.max_epochs=1 --quiet
	# (the trainer_state JSON sits escaped inside the header's JSON)
	grep -aq 'epochs_done\\": 1, \\"global_step\\": 4,' "$tmp/run/last.safetensors" ||
		fail "last.safetensors: trainer_state not as expected"
	# in place, same length: the header stays valid
	LC_ALL=C sed -i 's/epochs_done\\": 1, /epochs_done\\": 9, /' "$tmp/run/last.safetensors"
	run 1 timeout 60 "$fovea" train "$example" paths.data_dir="$tmp/d" \
		paths.output_dir="$tmp/run" "${small[@]}" trainer.max_epochs=20 resume=true --quiet
	expect err "last.safetensors: metadata trainer_state: 9 epochs in 4 steps do not fit 4 training batches per epoch"
	;;

*)
	echo "unknown case $case_name" >&2
	exit 2
	;;
esac

finish "$case_name"
