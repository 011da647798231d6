#!/usr/bin/env bash
# trainer_callbacks_test.sh CASE FOVEA SRCDIR: the trainer's loop options and
# the callbacks through `fovea train` and `fovea describe` (issue 14).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_name=$1 fovea=$2 srcdir=$3

"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
train() { # OUTDIR EXPECTED_EXIT [OVERRIDES...]
	local dir=$1 want=$2; shift 2
	run "$want" "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 dataloader.batch_size=32 trainer.precision=32 \
		paths.output_dir="$dir" --threads 1 "$@"
}

case $case_name in
describe)
	run 0 "$fovea" describe Trainer
	for key in limit_train_batches limit_val_batches num_sanity_val_steps check_val_every_n_epoch \
		val_check_interval deterministic accelerator; do
		expect out "$key"
	done
	run 0 "$fovea" describe EarlyStopping
	for key in monitor mode patience min_delta check_finite strict stopping_threshold \
		divergence_threshold check_on_train_epoch_end verbose; do
		expect out "$key"
	done
	run 0 "$fovea" describe OptimizerResetCallback
	run 0 "$fovea" describe Evaluation
	for key in model_path data_split add_responses_to_model_results model_results_path \
		summary_results_path var_ratio_cutoff compute_dataset_statistics; do
		expect out "$key"
	done
	;;
limits)
	# two training batches an epoch: metrics.csv's step column counts them
	train "$tmp/run" 0 trainer.max_epochs=2 ++trainer.limit_train_batches=2 \
		++trainer.num_sanity_val_steps=-1
	[ "$(awk -F, 'NR == 3 { print $2 }' "$tmp/run/metrics.csv")" = 4 ] ||
		fail "steps: $(cat "$tmp/run/metrics.csv")"
	train "$tmp/bad" 1 ++trainer.limit_train_batches=1e-6
	expect err "trainer.limit_train_batches"
	expect err "is less than one"
	train "$tmp/bad2" 1 ++trainer.limit_val_batches=0.5
	expect err "has no length"
	;;
not_used)
	# the reason comes from the Trainer's option table; --strict refuses it
	train "$tmp/r1" 0 trainer.max_epochs=1 ++trainer.accelerator=gpu ++trainer.limit_train_batches=1
	expect err "not used: trainer.accelerator (fovea runs on the CPU)"
	train "$tmp/r2" 1 trainer.max_epochs=1 ++trainer.accelerator=gpu --strict
	expect err "not used by fovea (--strict): trainer.accelerator"
	# deterministic is what fovea always is: accepted, --strict passes
	train "$tmp/r3" 0 trainer.max_epochs=1 ++trainer.limit_train_batches=1 --strict
	refute err "not used"
	;;
early_stopping_verbose)
	# openretina's early_stopping.yaml says verbose: True: Lightning's lines
	train "$tmp/run" 0 trainer.max_epochs=2 ++trainer.limit_train_batches=2
	expect err "EarlyStopping: Metric val_evaluation_loss improved. New best score: "
	;;
*) fail "unknown case $case_name" ;;
esac
finish "trainer_callbacks_$case_name"
