#!/usr/bin/env bash
# experiments_test.sh NAME FOVEA SRCDIR: one of the project's configs shaped
# like openretina's experiment configs (tests/configs/experiments/) composed
# from a config directory made of configs/ and that folder, trained for one
# short epoch (two steps) on created data; an experiment whose model fovea
# cannot build on that data stops with the error naming it.  NAME strict:
# --strict passes on the hdf5_core_readout shape.  NAME eval: `fovea eval`
# from the composed directory with the evaluation group.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
name=$1 fovea=$2 srcdir=$3

mkdir -p "$tmp/cfg" && cp -r "$srcdir/configs/." "$tmp/cfg/"
cp -r "$srcdir/tests/configs/experiments/." "$tmp/cfg/"
short=(paths.output_dir="$tmp/run" trainer.max_epochs=1 +trainer.max_steps=2 --threads 1)
fixtures=$srcdir/tools/fixtures
export OPENRETINA_CACHE_DIRECTORY=$tmp/cache
# the data: the published data sets' layouts from their fixture writers (the
# maheswaranathan zip found through the cache directory, batches of 4 so
# that its 22 clips of 90 frames leave a training batch), else created data
case $name in
maheswaranathan_2023_*)
	/usr/bin/python3 "$fixtures/maheswaranathan_2023.py" "$tmp/cache" --zip --sessions 2 \
		--train-frames 2000 --test-frames 120 --size 16 16 || fail "fixture"
	short+=(dataloader.batch_size=4) ;;
goldin_2022_*)
	/usr/bin/python3 "$fixtures/goldin_2022.py" "$tmp/d" --mouse 2 --axolotl 1 \
		--train-images 700 --size 12 12 || fail "fixture"
	short+=(paths.data_dir="$tmp/d") ;;
karamanlis_2024_*)
	/usr/bin/python3 "$fixtures/karamanlis_2024.py" "$tmp/k" --no-expected ||
		fail "tools/fixtures/karamanlis_2024.py"
	short+=(paths.data_dir="$tmp/k/sessions") ;;
*)
	"$fovea" create-data "$tmp/d" --layout openretina --num-colors 2 >/dev/null || fail "create-data"
	short+=(paths.data_dir="$tmp/d") ;;
esac

# experiments on openretina's own data_io groups read the fixtures of their data set
case $name in
hoefling_2024_core_readout_low_res | hoefling_2024_core_readout_low_res_hyperparams_search)
	/usr/bin/python3 "$srcdir/tools/fixtures/hoefling_2024.py" "$tmp/h" >/dev/null ||
		fail "tools/fixtures/hoefling_2024.py"
	# two validation clips and small batches keep the epoch short
	short+=(paths.cache_dir="$tmp/h" paths.movies_path="$tmp/h/movies.pkl"
		paths.responses_path="$tmp/h/responses.h5" "dataloader.validation_clip_indices=[4,10]"
		dataloader.batch_size=8) ;;
esac

# expected error of the experiments fovea cannot train on this data
case $name in
goldin_2022_core_readout_hparams_search)
	want="MultiFactorizedReadout: session 'mouse_1' (FactorizedReadout): FactorizedReadout: FactorizedReadout: Either init_mask or init_scales must be provided" ;;
hoefling_2024_core_readout_low_res_lnp)
	want="model.optimizer: interpolation '\${optimizer}' refers to a missing key" ;;
sridhar_2025_nm_sc | sridhar_2025_wn_sc)
	want="unknown option 'n_neurons_dict' for SingleCellSpatialContrast" ;;
sridhar_2025_nm_sc_multicell | sridhar_2025_wn_sc_multicell)
	want="data_info.sessions_kwargs.session_0.cell_indices: expected the session's list of cell in" ;;
vystrcilova_2024_nm_ln | vystrcilova_2024_wn_ln)
	want="SingleCellSeparatedLNP: input frames are (16, 8) but the forward needs patches of spat_kernel_size (5, 5)" ;;
*) want="" ;;
esac

# The published readers: the zip unpacked in the cache directory; a bad
# session file stops training with one message naming the file and key.
published_checks() {
	case $name in
	maheswaranathan_2023_core_readout)
		exists "$tmp/cache/baccus_lab/maheswaranathan_2023/neural_code_data/ganglion_cell_data/15-10-07/naturalscene.h5" ;;
	goldin_2022_core_readout)
		/usr/bin/python3 -c "import h5py; f = h5py.File('$tmp/d/mouse_2.h5', 'a'); del f['test/response/binned']" ||
			fail "editing mouse_2.h5"
		run 1 "$fovea" train -cp "$tmp/cfg" -cn "$name" "${short[@]}"
		expect err "$tmp/d/mouse_2.h5: dataset '/test/response/binned' not found in the file"
		/usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('$tmp/d/mouse_1.h5', 'a'); f['train/response/binned'][0, 3] = np.nan" ||
			fail "editing mouse_1.h5"
		rm "$tmp/d/mouse_2.h5"
		run 1 "$fovea" train -cp "$tmp/cfg" -cn "$name" "${short[@]}"
		expect err "$tmp/d/mouse_1.h5: dataset '/train/response/binned' holds NaN" ;;
	esac
}

case $name in
strict)
	run 0 "$fovea" train -cp "$tmp/cfg" -cn hdf5_core_readout "${short[@]}" \
		trainer.precision=32-true --strict
	expect out "trained 1 epochs"
	refute err "not used"
	;;
eval)
	run 0 "$fovea" train -cp "$tmp/cfg" -cn hdf5_core_readout "${short[@]}"
	run 0 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout +evaluation=default \
		paths.data_dir="$tmp/d" evaluation.model_path="$tmp/run/best.safetensors" \
		evaluation.data_split=random_noise_2 evaluation.model_results_path="$tmp/e.csv" \
		evaluation.summary_results_path="$tmp/e.json" \
		evaluation.add_responses_to_model_results=true
	expect out "Dataset Statistics (unique frames/frame transitions across sessions, from dataloaders):"
	expect out "  Sessions: 2"
	expect out "Test frames (random_noise_2): "
	expect out "Summary results saved to $tmp/e.json"
	exists "$tmp/e.csv"
	head -1 "$tmp/e.csv" | grep -q ',corr_0,mse_0,celltypes,model_response$' ||
		fail "CSV header: $(head -1 "$tmp/e.csv")"
	# model_response as pandas writes a list of Python floats: each item is
	# repr() of itself and a float32 value, the list has the aligned frames
	/usr/bin/python3 - "$tmp/e.csv" <<'PY' || fail "model_response is not Python's repr"
import csv, struct, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) > 0
for row in rows:
    cell = row["model_response"]
    assert cell[0] == "[" and cell[-1] == "]", cell[:20]
    items = cell[1:-1].split(", ")
    assert len(items) > 100, len(items)
    for it in items:
        v = float(it)
        assert repr(v) == it, (it, repr(v))
        assert struct.unpack("f", struct.pack("f", v))[0] == v, it
    assert row["celltypes"].lstrip("-").isdigit(), row["celltypes"]
PY
	grep -q '"unique_test_frames": {' "$tmp/e.json" || fail "no unique_test_frames in the summary"
	# the counts: every frame of the created movies differs, so a test
	# stimulus shows as many unique frames as the sessions see of it
	grep -q '"data_split": "random_noise_2"' "$tmp/e.json" || fail "data_split"
	grep -q '"species": null' "$tmp/e.json" || fail "species"
	run 0 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout +evaluation=default \
		paths.data_dir="$tmp/d" evaluation.model_path="$tmp/run/best.safetensors" \
		evaluation.data_split=validation evaluation.compute_dataset_statistics=false \
		+data_io.responses.specie=mouse evaluation.summary_results_path="$tmp/v.json"
	expect out "Data split: validation"
	refute out "Dataset Statistics"
	grep -q '"species": "mouse"' "$tmp/v.json" || fail "species from data_io.responses.specie"
	grep -q '"unique_test_frames": {}' "$tmp/v.json" || fail "no statistics: {} as openretina"
	# the training split: its whole chunks in order, one row per neuron
	run 0 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout +evaluation=default \
		paths.data_dir="$tmp/d" evaluation.model_path="$tmp/run/best.safetensors" \
		evaluation.data_split=train evaluation.compute_dataset_statistics=false \
		evaluation.model_results_path="$tmp/t.csv"
	expect out "Data split: train"
	[ "$(grep -c ',train,' "$tmp/t.csv")" -eq "$(($(wc -l <"$tmp/e.csv") - 1))" ] ||
		fail "the train split has not one row per neuron"
	run 1 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout +evaluation=default \
		paths.data_dir="$tmp/d" evaluation.model_path="$tmp/run/best.safetensors"
	expect err "data_split 'test': no such dataloader (there are: train, validation, random_noise_2, random_noise_3)"
	run 1 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout +evaluation=default \
		paths.data_dir="$tmp/d"
	expect err "evaluation.model_path"
	run 1 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout paths.data_dir="$tmp/d"
	expect err "the config has no 'evaluation' node"
	run 2 "$fovea" eval -cp "$tmp/cfg" -cn hdf5_core_readout --split test
	expect err "give evaluation.* keys instead"
	;;
*)
	[ -f "$tmp/cfg/$name.yaml" ] || fail "no experiment $name"
	if [ -z "$want" ]; then
		run 0 "$fovea" train -cp "$tmp/cfg" -cn "$name" "${short[@]}"
		expect out "trained 1 epochs"
		exists "$tmp/run/last.safetensors"
		published_checks
	else
		run 1 "$fovea" train -cp "$tmp/cfg" -cn "$name" "${short[@]}"
		expect err "$want"
	fi
	;;
esac
finish "experiments_$name"
