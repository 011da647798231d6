#!/usr/bin/env bash
# data_info_test.sh CASE FOVEA SRCDIR H5_TO_NPY PYTHON: `fovea data-info` through the
# real binary.  The dumps are checked by data_info_check.py against values
# numpy computes from the data directory's own files (HDF5 datasets read by
# h5_to_npy, i.e. libhdf5 alone), the batches against an emulation of
# openretina's LongCycler and MovieSampler with Python's and numpy's own
# random streams.
#   generic      fovea create-data's layout (trial-averaged test, session_info)
#   openretina   `openretina create-data`'s layout and configs/hdf5_core_readout.yaml
#   errors       bad command lines (exit 2) and unusable data or dump dirs (exit 1)
set -u
case_name=$1
fovea=$2
srcdir=$3
h5_to_npy=$4
python=$5 # with numpy
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
check_py="$(dirname "${BASH_SOURCE[0]}")/data_info_check.py"

# export_h5 DATA_DIR OUT_DIR: every dataset of every session file as .npy
export_h5() {
	local f s key
	for f in "$1"/*.hdf5; do
		s=$(basename "$f" .hdf5)
		mkdir -p "$2/$s/session_info"
		for key in $("$h5_to_npy" "$f" --list /); do
			[ "$key" = session_info ] ||
				"$h5_to_npy" "$f" "$key" "$2/$s/$key.npy" || fail "h5_to_npy $f $key"
		done
		for key in $("$h5_to_npy" "$f" --list session_info); do
			"$h5_to_npy" "$f" "session_info/$key" "$2/$s/session_info/$key.npy" ||
				fail "h5_to_npy $f session_info/$key"
		done
		rmdir "$2/$s/session_info" 2>/dev/null || true
	done
}

# check_dump DATA DUMP OPTIONS_JSON
check_dump() {
	rm -rf "$tmp/h5" && export_h5 "$1" "$tmp/h5"
	"$python" "$check_py" "$1" "$tmp/h5" "$2" "$3" >"$tmp/check" 2>&1 ||
		{ fail "dump $2 differs"; cat "$tmp/check"; }
}

example="$srcdir/configs/example.yaml"
small=(data_io.color_channels=1 data_io.video_height=6 data_io.video_width=5
       dataloader.batch_size=4 dataloader.train_chunk_size=20 dataloader.clip_length=40
       dataloader.num_val_clips=2)

case "$case_name" in
generic)
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3,4,5 --frames 240 --test-frames 60 \
		--trials 3 --height 6 --width 5 --channels 1 >/dev/null || fail "create-data"
	run 0 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" --dump "$tmp/o1"
	expect out "sessions: 3"
	expect out "session_0: 3 neurons"
	expect out "session_2: 5 neurons"
	# 2 x 240 frames: 12 clips of 40, 2 for validation; 400 / 20 = 20 chunks, 5 batches of 4
	expect out "train: 400 frames (10 clips), responses 400 frames; 20 chunks of 20 frames, 5 batches"
	expect out "validation: 80 frames (2 clips of 40 frames:"
	expect out "test 'test': 60 frames x 3 trials"
	expect out "stimulus: 1 channels x 6 x 5 pixels"
	expect out "epoch: 15 training batches"
	for f in data_info.json batches.json session_1/stimulus_train.npy \
		session_1/responses_validation.npy session_1/responses_test_by_trial.npy; do
		exists "$tmp/o1/$f"
	done
	check_dump "$tmp/d" "$tmp/o1" '{"clip_length": 40, "num_val_clips": 2, "dataloader_seed": 42,
		"seed": 42, "train_chunk_size": 20, "batch_size": 4, "test_names": ["test"],
		"norm_mean": 0.0, "norm_std": 1.0, "allow_over_boundaries": true}'
	# other seeds, a normalisation, chunks kept inside their clips
	run 0 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" seed=7 \
		+dataloader.seed=3 dataloader.allow_over_boundaries=false data_io.stimuli.norm_mean=0.25 \
		data_io.stimuli.norm_std=2 dataloader.train_chunk_size=30 --dump "$tmp/o2"
	expect out "norm_mean 0.25, norm_std 2"
	check_dump "$tmp/d" "$tmp/o2" '{"clip_length": 40, "num_val_clips": 2, "dataloader_seed": 3,
		"seed": 7, "train_chunk_size": 30, "batch_size": 4, "test_names": ["test"],
		"norm_mean": 0.25, "norm_std": 2.0, "allow_over_boundaries": false}'
	# a null seed: said so, the batches drawn with 0
	run 0 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" seed=null
	expect out "seed: null (training draws one from the clock); batches here use seed 0"
	;;
openretina)
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
	cfg=(paths.data_dir="$tmp/d" data_io.color_channels=2 dataloader.batch_size=32
	     '+data_io.data_info={response_rate_hz: 30, stimulus_class: noise}')
	run 0 "$fovea" data-info --config-dir "$srcdir/configs" --config-name hdf5_core_readout \
		"${cfg[@]}" --dump "$tmp/o"
	# (70 + 71) x 75 frames: 141 clips, 20 for validation; 121 x 75 / 50 = 182 chunks, 5 batches
	expect out "sessions: 2"
	expect out "train: 9075 frames (121 clips), responses 9075 frames; 182 chunks of 50 frames, 5 batches"
	expect out "test 'random_noise_2': 5400 frames"
	expect out "test 'random_noise_3': 5475 frames"
	expect out "response_rate_hz: 30"
	expect out "epoch: 10 training batches"
	exists "$tmp/o/session_0/stimulus_test_random_noise_2.npy"
	exists "$tmp/o/session_1/responses_test_random_noise_3.npy"
	"$python" -c "import json,sys; d=json.load(open('$tmp/o/data_info.json'));
sys.exit(0 if d['response_rate_hz'] == 30 and d['stimulus_class'] == 'noise' else 1)" ||
		fail "data_info.json lacks data_io.data_info's keys"
	check_dump "$tmp/d" "$tmp/o" '{"clip_length": 75, "num_val_clips": 20, "dataloader_seed": 42,
		"seed": 42, "train_chunk_size": 50, "batch_size": 32,
		"test_names": ["random_noise_2", "random_noise_3"],
		"norm_mean": 0.0, "norm_std": 1.0, "allow_over_boundaries": true}'
	;;
errors)
	run 2 "$fovea" data-info
	expect err "fovea data-info: expected a config file"
	run 2 "$fovea" data-info "$example" --bogus
	expect err "unknown option '--bogus'"
	run 2 "$fovea" data-info "$example" --dump
	expect err "--dump needs a value"
	run 1 "$fovea" data-info "$example" paths.data_dir="$tmp/none"
	expect err "$tmp/none"
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3 --sessions 1 --frames 240 --test-frames 60 \
		--trials 3 --height 6 --width 5 --channels 1 >/dev/null || fail "create-data"
	: >"$tmp/file"
	run 1 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" --dump "$tmp/file"
	expect err "--dump: '$tmp/file' exists and is not a directory"
	run 1 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" dataloader.num_val_clips=50
	expect err "dataloader.num_val_clips=50"
	run 1 "$fovea" data-info "$example" paths.data_dir="$tmp/d" "${small[@]}" seed=abc
	expect err "seed"
	;;
*)
	fail "unknown case $case_name"
	;;
esac
finish "data_info $case_name"
