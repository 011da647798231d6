#!/usr/bin/env bash
# hydra_cli_test.sh CASE FOVEA SRCDIR: Hydra's command line on `fovea train`
# (--config-dir/--config-name and their spellings, --cfg, --resolve) and the
# data steps of a config: a _target_ fovea does not have is refused by name.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_name=$1 fovea=$2 srcdir=$3

case $case_name in
cfg)
	run 0 "$fovea" train --config-dir "$srcdir/configs" --config-name hdf5_core_readout \
		--cfg job paths.data_dir=/data/x trainer.max_epochs=7
	expect out "data_io:"
	expect out "base_data_path: /data/x"
	expect out "max_epochs: 7"
	refute out "hydra:"
	run 0 "$fovea" train -cp "$srcdir/configs" -cn hdf5_core_readout.yaml --cfg hydra
	expect out "hydra:"
	expect out "  run:"
	expect out "fovea_runs/h5_core_readout/"
	refute out "data_io:"
	run 0 "$fovea" train -cd "$srcdir/configs" -cn hdf5_core_readout --cfg all --resolve \
		paths.data_dir=/data/y
	expect out "hydra:"
	expect out "base_data_path: /data/y"
	# nothing was trained or written
	[ -e fovea_runs ] && fail "--cfg wrote a run directory"
	run 2 "$fovea" train -cp "$srcdir/configs" -cn hdf5_core_readout --cfg jobs
	expect err "--cfg takes job, hydra or all, not 'jobs'"
	run 2 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" -cn hdf5_core_readout
	expect err "either CONFIG.yaml or --config-name"
	run 2 "$fovea" train -cp "$srcdir/configs"
	expect err "--config-dir needs --config-name"
	run 1 "$fovea" train -cp "$srcdir/configs" -cn no_such_config
	expect err "no_such_config.yaml"
	;;
train)
	# openretina's spelling trains from the directory, like the file path does
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
	run 0 "$fovea" train --config-path "$srcdir/configs" --config-name hdf5_core_readout \
		paths.data_dir="$tmp/d" data_io.color_channels=2 trainer.max_epochs=1 \
		dataloader.batch_size=32 paths.output_dir="$tmp/run" --threads 1
	expect out "trained 1 epochs"
	exists "$tmp/run/best.safetensors"
	;;
not_used)
	# a key fovea does not act on is named at the start; --strict refuses it
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
	run 0 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=1 dataloader.batch_size=32 \
		paths.output_dir="$tmp/r1" +lab_notebook.page=12 check_stimuli_responses_match=false \
		--threads 1
	expect err "fovea: not used: "
	expect err "lab_notebook.page"
	expect err "check_stimuli_responses_match"
	# openretina's config asks for 16-mixed: the run says it is float32
	expect err "trainer.precision '16-mixed': this run computes in float32"
	refute err "paths.data_dir"
	refute err "dataloader.batch_size"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=1 paths.output_dir="$tmp/r2" \
		+lab_notebook.page=12 trainer.precision=32-true --strict
	expect err "not used by fovea (--strict): "
	expect err "lab_notebook.page"
	[ -e "$tmp/r2/last.safetensors" ] && fail "--strict trained anyway"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=1 paths.output_dir="$tmp/r3" --strict
	expect err "trainer.precision: '16-mixed' asks for less than float32"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 trainer.max_epochs=1 paths.output_dir="$tmp/r4" \
		trainer.precision=64
	expect err "trainer.precision: expected 32 or 32-true"
	;;
data_targets)
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 paths.output_dir="$tmp/r1" \
		data_io.stimuli._target_=openretina.data_io.hoefling_2024.stimuli.movies_from_pickles
	expect err "data_io.stimuli._target_: no data step 'openretina.data_io.hoefling_2024.stimuli.movies_from_pickles' is loaded; did you mean 'openretina.data_io.hoefling_2024.stimuli.movies_from_pickle'?"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 paths.output_dir="$tmp/r3" \
		data_io.responses._target_=openretina.data_io.h5_dataset_reader.load_response
	expect err "data_io.responses._target_: no data step 'openretina.data_io.h5_dataset_reader.load_response' is loaded; did you mean 'openretina.data_io.h5_dataset_reader.load_responses'?"
	run 1 "$fovea" train "$srcdir/configs/hdf5_core_readout.yaml" paths.data_dir="$tmp/d" \
		data_io.color_channels=2 paths.output_dir="$tmp/r2" \
		dataloader._target_=openretina.data_io.base_dataloader.multiple_movies_dataloader
	expect err "did you mean 'openretina.data_io.base_dataloader.multiple_movies_dataloaders'"
	;;
*)
	fail "unknown case $case_name"
	;;
esac
finish "hydra_cli_$case_name"
