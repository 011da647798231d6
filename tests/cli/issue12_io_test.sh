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
#   nonfinite_outputs checkpoints damaged by edit_safetensors.py (item 9):
#                     NaN weights, stim_std 0, stim_mean 1e308, no data_info;
#                     predict writes nothing, eval reports every neuron whose
#                     prediction is not finite (report and JSON) and exits 1;
#                     neurons with constant (silent) test responses are
#                     reported too, with exit 0
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

edit=$(dirname "${BASH_SOURCE[0]}")/edit_safetensors.py

make_data() {
	"$fovea" create-data "$tmp/d" "${data_args[@]}" >/dev/null || fail "create-data"
}

# refused_training OVERRIDES...: the tiny job with OVERRIDES exits 1 with a
# one-line message before its first epoch and writes no checkpoint
refused_training() {
	run 1 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" "$@" --threads 1 --no-progress
	refute out "epoch"
	[ -e "$tmp/run/best.safetensors" ] || [ -e "$tmp/run/last.safetensors" ] &&
		fail "a checkpoint was written"
	[ "$(grep -c . "$tmp/err")" -eq 1 ] || { fail "expected one error line"; show err; }
}

case "$case_" in
eval_cutoff_nan)
	run 2 "$fovea" eval "$tmp/x.safetensors" "$tmp/d" --var-ratio-cutoff nan
	expect err "--var-ratio-cutoff needs a finite number, got 'nan'"
	;;
no_validation)
	make_data
	refused_training dataloader.num_val_clips=0
	expect err "no validation batches (dataloader.num_val_clips is 0"
	expect err "set dataloader.num_val_clips to 1 or more"
	;;
chunk_too_long)
	make_data
	refused_training dataloader.train_chunk_size=300 dataloader.batch_size=1
	expect err "session 'session_0': dataloader.train_chunk_size=300 is longer than its training movie (200 frames"
	;;
nonfinite_outputs)
	make_data
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		"${small[@]}" --threads 1 --no-progress
	ck=$tmp/run/best.safetensors
	python3 "$edit" "$ck" "$tmp/nan.safetensors" --nan core.features.layer0.conv.weight_spatial
	python3 "$edit" "$ck" "$tmp/std0.safetensors" --info stim_std=0
	python3 "$edit" "$ck" "$tmp/mean.safetensors" --info stim_mean=1e308
	python3 "$edit" "$ck" "$tmp/noinfo.safetensors" --drop-info
	stim=$tmp/d/stimuli/test.npy
	# predict: one message, nothing written
	run 1 "$fovea" predict "$tmp/nan.safetensors" "$stim" --session session_0 -o "$tmp/p.npy"
	expect err "nan.safetensors: 168 of the 168 predicted values are not finite (NaN weights in the checkpoint?); nothing written"
	run 1 "$fovea" predict "$tmp/std0.safetensors" "$stim" --session session_0 -o "$tmp/p.npy"
	expect err "data_info stim_mean 0 and stim_std 0 cannot normalise a stimulus"
	run 1 "$fovea" predict "$tmp/mean.safetensors" "$stim" --session session_0 -o "$tmp/p.npy"
	expect err "1800 of its 1800 values are not finite once normalised (stim_mean 1e+308, stim_std 1)"
	run 1 "$fovea" predict "$tmp/noinfo.safetensors" "$stim" --session session_0 -o "$tmp/p.npy"
	expect err "no data_info"
	[ -e "$tmp/p.npy" ] && fail "predict wrote a file"
	# --raw skips the normalisation, so stim_std 0 does not matter then
	run 0 "$fovea" predict "$tmp/std0.safetensors" "$stim" --session session_0 --raw \
		-o "$tmp/raw.npy"
	exists "$tmp/raw.npy"
	# mei: refused before writing
	run 1 "$fovea" mei "$tmp/nan.safetensors" --session session_0 --neuron 0 --out "$tmp/m" \
		--no-progress
	expect err "non-finite values"
	[ -e "$tmp/m/mei_session_0_0.npy" ] && fail "mei wrote a NaN stimulus"
	run 1 "$fovea" mei "$tmp/std0.safetensors" --session session_0 --neuron 0 --out "$tmp/m" \
		--no-progress
	expect err "cannot normalise a stimulus"
	# eval: every neuron reported, by session, in the report and the JSON
	run 1 "$fovea" eval "$tmp/nan.safetensors" "$tmp/d" -o "$tmp/ev"
	expect out "Total neurons: 7"
	expect out "Neurons with an undefined correlation: 7"
	expect out "session_0: 3 with a non-finite prediction (NaN metrics, left out of the means)"
	expect out "session_1: 4 with a non-finite prediction"
	expect out "FEVe                          : nan"
	expect err "the predictions of 7 of the 7 neurons are not finite"
	json=$tmp/ev/eval_summary.json
	exists "$json"
	python3 - "$json" <<'PY' || fail "eval_summary.json does not report the neurons"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["n_neurons_total"] == 7, s
assert s["n_neurons_undefined_corr"] == 7, s
assert s["undefined_corr_by_session"] == {
    "session_0": {"non_finite": 3, "constant": 0},
    "session_1": {"non_finite": 4, "constant": 0}}, s
assert s["corr_to_avg_mean"] is None and s["feve_mean"] is None, s
PY
	run 1 "$fovea" eval "$tmp/noinfo.safetensors" "$tmp/d" -o "$tmp/ev2"
	expect err "no data_info"
	# silent neurons (no spike in the test trials): constant responses, an
	# undefined correlation that openretina's eps makes 0; reported, exit 0
	"$fovea" create-data "$tmp/silent" "${data_args[@]}" --rate 1e-9 >/dev/null ||
		fail "create-data --rate 1e-9"
	run 0 "$fovea" eval "$ck" "$tmp/silent" -o "$tmp/evs"
	expect out "Neurons with an undefined correlation: 7"
	expect out "session_0: 3 with a constant prediction or response (correlation 0, as openretina's eps gives)"
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['undefined_corr_by_session']['session_1'] == {'non_finite': 0, 'constant': 4} and s['corr_to_avg_mean'] == 0, s" \
		"$tmp/evs/eval_summary.json" || fail "constant responses are not reported"
	# a sound model reports none
	run 0 "$fovea" eval "$ck" "$tmp/d" -o "$tmp/ev3"
	refute out "undefined"
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['n_neurons_undefined_corr'] == 0 and s['undefined_corr_by_session'] == {}" \
		"$tmp/ev3/eval_summary.json" || fail "a sound model has undefined neurons"
	;;
*)
	echo "unknown case $case_" >&2
	exit 2
	;;
esac
finish "$case_"
