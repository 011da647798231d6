#!/usr/bin/env bash
# ckpt_test.sh: openretina Lightning checkpoints (.ckpt) through the real
# binary, one case per meson test:
#
#   ckpt_test.sh CASE FOVEA SOURCE_ROOT
#
#   parity_NAME  `fovea predict --raw` of tests/data/ckpt/NAME.ckpt (a .ckpt
#                given as it is; SingleCellSeparatedLNP after `fovea import
#                --model`) on NAME.stimulus.npy, a batch of two, matches
#                NAME.expected_<session>.npy for every session within the
#                fixture's tolerance (rtol 1e-4, atol 1e-5); the openretina
#                checkpoints of ../shared/ckpt, and those PyTorch wrote from
#                openretina's modules (make_torch_ckpts.py: gru_core_readout)
#   import       `fovea import`: what it prints, the file it writes (the
#                default name and -o), the imported file predicting as the
#                .ckpt does, `fovea mei` on the imported model and on the
#                .ckpt, a file without hyper_parameters and no --model, a
#                model fovea cannot build (gru_core.ckpt), usage errors
#   finetune     `fovea train paths.load_model_path=MODEL.ckpt`: the .ckpt's
#                model fine-tuned on new sessions, then `fovea eval` of the
#                result
#   hostile      every file of tests/data/ckpt/hostile/ refused with one
#                message and a non-zero exit, no output file, and the
#                payload's marker /tmp/fovea_pwned never appears
set -u

case_name=$1
fovea=$2
srcdir=$3

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

data=$srcdir/tests/data/ckpt
close() { python3 "$srcdir/tests/cli/npy_close.py" "$@"; }

# parity NAME CHECKPOINT: every session's prediction against its expected file.
parity() {
	local name=$1 ck=$2 n=0
	for want in "$data/$name".expected_*.npy; do
		local session=${want#"$data/$name.expected_"}
		session=${session%.npy}
		run 0 "$fovea" predict "$ck" "$data/$name.stimulus.npy" --session "$session" --raw \
			-o "$tmp/$session.npy"
		expect out "wrote $tmp/$session.npy: 2 stimuli x "
		close "$tmp/$session.npy" "$want" 1e-4 1e-5 || fail "$name, session $session"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "no expected outputs for $name"
}

case $case_name in
parity_single_cell_lnp)
	run 0 "$fovea" import "$data/single_cell_lnp.ckpt" --model "$data/single_cell_lnp.model.yaml" \
		-o "$tmp/lnp.safetensors"
	parity single_cell_lnp "$tmp/lnp.safetensors"
	;;
parity_*)
	parity "${case_name#parity_}" "$data/${case_name#parity_}.ckpt"
	;;
import)
	cp "$data/hoefling_low_res_gmask.ckpt" "$tmp/h.ckpt"
	run 0 "$fovea" import "$tmp/h.ckpt"
	expect out "$tmp/h.ckpt: UnifiedCoreReadout"
	expect out "input (channels, height, width): (2, 18, 16)"
	expect out "3 sessions, 60 neurons:"
	expect out "session_2_ventral2_20200626: 27"
	expect out "13612 parameters"
	expect out "wrote $tmp/h.safetensors"
	exists "$tmp/h.safetensors"
	run 0 "$fovea" import "$tmp/h.ckpt" -o "$tmp/other.safetensors"
	cmp -s "$tmp/h.safetensors" "$tmp/other.safetensors" || fail "-o wrote another file"
	parity hoefling_low_res_gmask "$tmp/h.safetensors"
	# MEIs from the imported model and from the .ckpt itself are the same
	for ck in "$tmp/h.safetensors" "$tmp/h.ckpt"; do
		run 0 "$fovea" mei "$ck" --session session_3_dorsal1_20201021 --neuron 4 \
			--out "$tmp/mei_${ck##*.}" time_steps=40 --no-progress
		expect out "mei_session_3_dorsal1_20201021_4: 10 iterations"
	done
	cmp -s "$tmp/mei_safetensors/mei_session_3_dorsal1_20201021_4.npy" \
		"$tmp/mei_ckpt/mei_session_3_dorsal1_20201021_4.npy" || fail "MEIs differ"
	run 0 "$fovea" figures "$tmp/h.ckpt" --out "$tmp/fig"
	# readout positions and both core layers' filters
	expect out "wrote 3 figures"
	exists "$tmp/fig/core_filters.png"
	exists "$tmp/fig/core_filters_layer1.png"
	[ ! -e "$tmp/fig/core_filters_layer2.png" ] || fail "a third core layer drawn"
	# a single-cell LNP: its arguments must come from --model
	run 1 "$fovea" import "$data/single_cell_lnp.ckpt" -o "$tmp/lnp.safetensors"
	expect err "the checkpoint has no hyper_parameters"
	expect err "--model MODEL.yaml"
	[ ! -e "$tmp/lnp.safetensors" ] || fail "a file was written without a model"
	run 0 "$fovea" import "$data/single_cell_lnp.ckpt" --model "$data/single_cell_lnp.model.yaml" \
		-o "$tmp/lnp.safetensors"
	expect out "openretina.models.linear_nonlinear.SingleCellSeparatedLNP"
	expect out "1 session, 1 neurons:"
	expect out "250 parameters"
	# a model fovea cannot build is refused, naming what is wrong: gru_core.ckpt
	# is a SimpleCoreWrapper model whose core target says ConvGRUCore (its
	# SimpleCoreWrapper options pass through ConvGRUCore's **kwargs, but its
	# state_dict is SimpleCoreWrapper's; openretina fails to load it too)
	run 1 "$fovea" import "$data/gru_core.ckpt" -o "$tmp/gru.safetensors"
	expect err "tensor 'core.features.layer0.bias.bias' of the checkpoint is not in the model"
	[ ! -e "$tmp/gru.safetensors" ] || fail "a partial model was written"
	run 1 "$fovea" predict "$data/gru_core.ckpt" "$data/gaussian_sampled.stimulus.npy" \
		--session session_1_ventral1_20200226 -o "$tmp/gru.npy"
	expect err "tensor 'core.features.layer0.bias.bias' of the checkpoint is not in the model"
	run 2 "$fovea" import
	expect err "expected a .ckpt file"
	run 2 "$fovea" import "$tmp/h.ckpt" --bogus
	expect err "unknown option '--bogus'"
	;;
finetune)
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 \
		--test-frames 80 --trials 3 --filter-length 4 >/dev/null || fail "create-data"
	run 0 "$fovea" train "$srcdir/configs/example.yaml" paths.data_dir="$tmp/d" \
		paths.output_dir="$tmp/run" dataloader.batch_size=2 dataloader.train_chunk_size=60 \
		dataloader.clip_length=60 dataloader.num_val_clips=1 trainer.max_epochs=1 \
		paths.load_model_path="$data/hoefling_low_res_gmask.ckpt" --threads 1 --no-progress
	expect out "fine-tuning $data/hoefling_low_res_gmask.ckpt: 2 new session(s) get new readouts"
	expect out "trained 1 epochs"
	exists "$tmp/run/best.safetensors"
	run 0 "$fovea" eval "$tmp/run/best.safetensors" "$tmp/d" dataloader.num_val_clips=1 \
		dataloader.clip_length=60
	;;
hostile)
	rm -f /tmp/fovea_pwned
	for f in "$data"/hostile/*.ckpt; do
		run 1 "$fovea" import "$f" -o "$tmp/out.safetensors"
		[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { fail "$f: not one message"; show err; }
		expect err "$f"
		[ ! -e "$tmp/out.safetensors" ] || fail "$f: a file was written"
		run 1 "$fovea" predict "$f" "$data/gaussian_sampled.stimulus.npy" --session s \
			-o "$tmp/out.npy"
		refute err "safetensors"
	done
	[ ! -e /tmp/fovea_pwned ] || fail "/tmp/fovea_pwned appeared: something was executed"
	;;
*)
	fail "unknown case $case_name"
	;;
esac

finish "ckpt_$case_name"
