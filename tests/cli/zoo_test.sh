#!/usr/bin/env bash
# zoo_test.sh: openretina's published models by name (`fovea models`, names
# as checkpoints, openretina's cache, downloads) through the real binary,
# one case per meson test:
#
#   zoo_test.sh CASE FOVEA SOURCE_ROOT
#
# Nothing here reaches the internet: downloads go to a local server
# (zoo_server.py on 127.0.0.1, started and stopped here) through
# $FOVEA_MODEL_BASE_URL, which otherwise points at a closed local port.
# The server serves tests/data/ckpt/hoefling_low_res_gmask.ckpt (3
# sessions, input 2 x 18 x 16) under the zoo's file names.
#
#   models         `fovea models`: the nine names, cache state, paths, URLs
#                  (Hugging Face, $HF_ENDPOINT, $FOVEA_MODEL_BASE_URL), the
#                  default cache ~/openretina_cache, usage errors
#   cache          `fovea mei NAME` from a cache populated in openretina's
#                  layout, with no server at all; the same MEI as from the file
#   download       an empty cache: `fovea mei NAME` downloads (also through a
#                  redirect), the file equals the served one, no .part is
#                  left, the next run downloads nothing; two processes at
#                  once download it once
#   resume         a partial .part is resumed with a Range request; a server
#                  ignoring ranges restarts it; a complete or oversized .part
#   size_mismatch  a body shorter than announced is refused, no final file,
#                  and the kept .part is resumed by the next attempt
#   http_errors    404 and a refused connection: clear errors, nothing left
#   unknown_name   a misspelt name gets the closest names
#   eval           `fovea eval` of the fixture .ckpt, of its import and by
#                  name: the same per-neuron metrics; a session the model
#                  lacks; train's paths.load_model_path=NAME (fine-tuning)
#   mds            `fovea mds` of the .ckpt, by name and of its import: the
#                  same stimulus; `fovea figures NAME`; an index out of range
#   model_option   --model MODEL.yaml in predict, figures, eval, mei and mds
#                  (a .ckpt without hyper_parameters); openretina's test
#                  results kept by import
set -u

case_name=$1
fovea=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
srcdir=$3

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

data=$srcdir/tests/data/ckpt
fixture=$data/hoefling_low_res_gmask.ckpt
file=model_checkpoints/2026-03-09/hoefling_2024_cnn_low_res.ckpt
cached=$tmp/cache/$file
session=session_3_dorsal1_20201021

export OPENRETINA_CACHE_DIRECTORY=$tmp/cache
export FOVEA_MODEL_BASE_URL=http://127.0.0.1:1/ # closed: a download attempt fails
unset HF_ENDPOINT

server_pid=
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# serve: the fixture under its zoo name, at http://127.0.0.1:$port/
serve() {
	mkdir -p "$tmp/srv/${file%/*}"
	cp "$fixture" "$tmp/srv/$file"
	: >"$tmp/log"
	python3 "$srcdir/tests/cli/zoo_server.py" "$tmp/srv" "$tmp/port" "$tmp/log" &
	server_pid=$!
	for _ in $(seq 100); do
		[ -s "$tmp/port" ] && break
		sleep 0.1
	done
	[ -s "$tmp/port" ] || { fail "the test server did not start"; finish "zoo_$case_name"; }
	port=$(cat "$tmp/port")
	base=http://127.0.0.1:$port
}
requests() { grep -c "$1" "$tmp/log"; }
populate() { mkdir -p "${cached%/*}" && cp "$fixture" "$cached"; }
# fixture_data: a data directory $tmp/d with the fixture's sessions and
# neuron counts (14, 27, 19) and stimulus size (2 x 18 x 16); $opts make
# `fovea eval` read it (the .ckpt carries no data settings)
fixture_data() {
	"$fovea" create-data "$tmp/d" --seed 3 --neurons 14,27,19 --frames 240 --train-stimuli 1 \
		--test-frames 80 --trials 3 >/dev/null || fail "create-data"
	mv "$tmp/d/session_0.hdf5" "$tmp/d/session_1_ventral1_20200226.hdf5"
	mv "$tmp/d/session_1.hdf5" "$tmp/d/session_2_ventral2_20200626.hdf5"
	mv "$tmp/d/session_2.hdf5" "$tmp/d/$session.hdf5"
	opts=('+data_io.test_names=[test]' +dataloader.num_val_clips=1 +dataloader.clip_length=60
		+dataloader.batch_size=2)
}
same_as_fixture() { cmp -s "$1" "$fixture" || fail "$1 differs from the served file"; }
no_part() { [ ! -e "$cached.part" ] || fail "$cached.part was left behind"; }
mei() { # mei OUTDIR CHECKPOINT [ARGS...]
	local dir=$1 ck=$2
	shift 2
	run 0 "$fovea" mei "$ck" --session "$session" --neuron 4 --out "$dir" time_steps=40 \
		--no-progress --threads 1 "$@"
	expect out "mei_${session}_4: 10 iterations"
}

case $case_name in
models)
	run 0 "$fovea" models
	for name in hoefling_2024_low_res hoefling_2024_high_res karamanlis_2024_mouse \
		karamanlis_2024_marmoset maheswaranathan_2023 sridhar_2025 goldin_2022_axolotl \
		goldin_2022_mouse hoefling_2024_base_low_res; do
		printf '%s\n' "$out" | grep -q "^$name  *not cached  *$tmp/cache/model_checkpoints/" ||
			fail "$name is not listed as not cached"
	done
	[ "$(printf '%s\n' "$out" | grep -c 'not cached')" -eq 9 ] || fail "not nine models"
	expect out "cache $tmp/cache;"
	expect out "from http://127.0.0.1:1/model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt"
	populate
	run 0 "$fovea" models
	expect out "hoefling_2024_low_res        cached      374277 bytes  $cached"
	expect out "from http://127.0.0.1:1/$file"
	# openretina's Hugging Face location, and huggingface_hub's HF_ENDPOINT
	run 0 env -u FOVEA_MODEL_BASE_URL "$fovea" models
	expect out "from https://huggingface.co/datasets/open-retina/open-retina/resolve/main/$file"
	run 0 env -u FOVEA_MODEL_BASE_URL HF_ENDPOINT=http://mirror.example/ "$fovea" models
	expect out "from http://mirror.example/datasets/open-retina/open-retina/resolve/main/$file"
	# openretina's default cache: ~/openretina_cache
	mkdir "$tmp/home"
	run 0 env -u OPENRETINA_CACHE_DIRECTORY HOME="$tmp/home" "$fovea" models
	expect out "cache $tmp/home/openretina_cache;"
	expect out "$tmp/home/openretina_cache/model_checkpoints/2026-03-09/goldin_2022_mouse.ckpt"
	run 2 "$fovea" models --bogus
	expect err "unknown option '--bogus'"
	run 2 "$fovea" models --download
	expect err "--download needs at least one model name"
	run 0 "$fovea" help models
	expect out "OPENRETINA_CACHE_DIRECTORY"
	;;
cache)
	populate
	mei "$tmp/by_name" hoefling_2024_low_res
	mei "$tmp/by_file" "$fixture"
	cmp -s "$tmp/by_name/mei_${session}_4.npy" "$tmp/by_file/mei_${session}_4.npy" ||
		fail "the MEI from the cached model differs from the fixture's"
	same_as_fixture "$cached"
	;;
download)
	serve
	export FOVEA_MODEL_BASE_URL=$base/
	mei "$tmp/m1" hoefling_2024_low_res
	[ "$(requests "GET /$file -")" -eq 1 ] || { fail "not one request"; cat "$tmp/log"; }
	same_as_fixture "$cached"
	no_part
	mei "$tmp/m2" hoefling_2024_low_res
	[ "$(wc -l <"$tmp/log")" -eq 1 ] || fail "the cached model was downloaded again"
	cmp -s "$tmp/m1/mei_${session}_4.npy" "$tmp/m2/mei_${session}_4.npy" || fail "MEIs differ"
	# through a redirect, as Hugging Face answers
	rm -rf "$tmp/cache"
	export FOVEA_MODEL_BASE_URL=$base/redirect
	run 0 "$fovea" models --download hoefling_2024_low_res
	expect out "hoefling_2024_low_res: $cached"
	[ "$(requests "GET /redirect/$file")" -eq 1 ] || fail "the redirect was not asked"
	same_as_fixture "$cached"
	no_part
	run 0 "$fovea" models
	expect out "hoefling_2024_low_res        cached      374277 bytes"
	# two processes at once: the second waits for the first's file
	rm -rf "$tmp/cache"
	export FOVEA_MODEL_BASE_URL=$base/slow
	"$fovea" models --download hoefling_2024_low_res >"$tmp/a" 2>&1 &
	first=$!
	"$fovea" models --download hoefling_2024_low_res >"$tmp/b" 2>&1 || fail "second download"
	wait "$first" || fail "first download"
	[ "$(requests "GET /slow/")" -eq 1 ] || { fail "downloaded twice at once"; cat "$tmp/log"; }
	same_as_fixture "$cached"
	no_part
	;;
resume)
	serve
	export FOVEA_MODEL_BASE_URL=$base/
	mkdir -p "${cached%/*}"
	head -c 100000 "$fixture" >"$cached.part"
	run 0 "$fovea" models --download hoefling_2024_low_res
	[ "$(requests "GET /$file bytes=100000-")" -eq 1 ] || { fail "no Range request"; cat "$tmp/log"; }
	same_as_fixture "$cached"
	no_part
	# a server that ignores the Range gets the file over again
	rm -f "$cached"
	head -c 5000 "$fixture" >"$cached.part"
	run 0 env FOVEA_MODEL_BASE_URL="$base/norange/" "$fovea" models --download hoefling_2024_low_res
	same_as_fixture "$cached"
	no_part
	# a .part already complete (416 for the rest) is the file
	mv "$cached" "$cached.part"
	run 0 "$fovea" models --download hoefling_2024_low_res
	[ "$(requests "bytes=374277-")" -eq 1 ] || fail "the complete .part was not checked"
	same_as_fixture "$cached"
	# a .part longer than the file is no prefix of it: start over
	rm -f "$cached"
	{ cat "$fixture"; echo junk; } >"$cached.part"
	run 0 "$fovea" models --download hoefling_2024_low_res
	same_as_fixture "$cached"
	no_part
	;;
size_mismatch)
	serve
	run 1 env FOVEA_MODEL_BASE_URL="$base/short/" "$fovea" predict hoefling_2024_low_res \
		"$data/hoefling_low_res_gmask.stimulus.npy" --session "$session" --raw -o "$tmp/p.npy"
	expect err "model hoefling_2024_low_res: $base/short/$file: size mismatch: 187138 of the 374277 bytes"
	expect err "$cached.part keeps them and the next attempt resumes"
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "not one message"
	[ ! -e "$cached" ] || fail "a final file was left after a size mismatch"
	[ ! -e "$tmp/p.npy" ] || fail "a prediction was written"
	[ "$(stat -c %s "$cached.part")" -eq 187138 ] || fail "the partial download was not kept"
	run 0 env FOVEA_MODEL_BASE_URL="$base" "$fovea" predict hoefling_2024_low_res \
		"$data/hoefling_low_res_gmask.stimulus.npy" --session "$session" --raw -o "$tmp/p.npy"
	[ "$(requests "GET /$file bytes=187138-")" -eq 1 ] || fail "not resumed"
	same_as_fixture "$cached"
	python3 "$srcdir/tests/cli/npy_close.py" "$tmp/p.npy" "$data/hoefling_low_res_gmask.expected_$session.npy" \
		1e-4 1e-5 || fail "the downloaded model predicts wrongly"
	;;
http_errors)
	serve
	run 1 env FOVEA_MODEL_BASE_URL="$base/missing/" "$fovea" mei hoefling_2024_high_res \
		--session s --neuron 0 --out "$tmp/m"
	high=$tmp/cache/model_checkpoints/2026-03-09/hoefling_2024_cnn_high_res.ckpt
	expect err "model hoefling_2024_high_res: $base/missing/model_checkpoints/2026-03-09/hoefling_2024_cnn_high_res.ckpt: HTTP 404 Not Found; nothing written to $high"
	[ ! -e "$high" ] && [ ! -e "$high.part" ] || fail "a file was left after a 404"
	# nothing listens on port 1
	run 1 "$fovea" eval karamanlis_2024_mouse "$tmp"
	expect err "http://127.0.0.1:1/model_checkpoints/2026-03-09/karamanlis_2024_mouse.ckpt: "
	expect err "not downloaded"
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "not one message"
	[ -z "$(find "$tmp/cache" -type f)" ] || fail "files were left in the cache"
	;;
unknown_name)
	run 1 "$fovea" mei hoefling_2024_low_rs --session s --neuron 0
	expect err "hoefling_2024_low_rs: no such file, and no openretina model of that name; did you mean 'hoefling_2024_low_res'"
	expect err "(\`fovea models\` lists the 9 models)"
	run 1 "$fovea" models --download karamanlis
	expect err "did you mean 'karamanlis_2024_mouse' or 'karamanlis_2024_marmoset'?"
	run 1 "$fovea" predict goldin2022 x.npy --session s
	expect err "did you mean 'goldin_2022_axolotl'"
	# a missing file with an extension is just a missing file
	run 1 "$fovea" predict "$tmp/none.ckpt" x.npy --session s
	refute err "openretina model"
	# a name wins over a file of that name, as in openretina
	cp "$data/klindt_factorized.ckpt" "$tmp/hoefling_2024_low_res"
	populate
	(cd "$tmp" && "$fovea" import hoefling_2024_low_res -o h.safetensors) >"$tmp/out" 2>&1 ||
		fail "import by name"
	grep -q "3 sessions, 60 neurons" "$tmp/out" || { fail "not the cached model"; cat "$tmp/out"; }
	;;
eval)
	populate
	fixture_data
	# the .ckpt, its import and its name give the same metrics
	run 0 "$fovea" import "$fixture" -o "$tmp/h.safetensors"
	for ck in "$fixture" "$tmp/h.safetensors" hoefling_2024_low_res; do
		run 0 "$fovea" eval "$ck" "$tmp/d" -o "$tmp/ev" "${opts[@]}"
		expect out "Model path: $ck"
		expect out "Total neurons: 60"
		expect out "Temporal lag: 30"
		cp "$tmp/ev/eval_per_neuron.csv" "$tmp/ev_$(basename "$ck").csv"
	done
	[ "$(wc -l <"$tmp/ev_hoefling_2024_low_res.csv")" -eq 61 ] || fail "not 60 neurons in the CSV"
	cmp -s "$tmp/ev_hoefling_2024_low_res.csv" "$tmp/ev_h.safetensors.csv" || fail "eval differs"
	cmp -s "$tmp/ev_hoefling_low_res_gmask.ckpt.csv" "$tmp/ev_h.safetensors.csv" || fail "eval differs"
	mv "$tmp/d/$session.hdf5" "$tmp/d/session_9.hdf5"
	run 1 "$fovea" eval hoefling_2024_low_res "$tmp/d" -o "$tmp/ev" "${opts[@]}"
	expect err "session 'session_9' of the data has no readout in $cached"
	# fine-tuning a published model by name
	run 0 "$fovea" train "$srcdir/configs/example.yaml" paths.data_dir="$tmp/d" \
		paths.output_dir="$tmp/run" dataloader.batch_size=2 dataloader.train_chunk_size=60 \
		dataloader.clip_length=60 dataloader.num_val_clips=1 trainer.max_epochs=1 \
		paths.load_model_path=hoefling_2024_low_res --threads 1 --no-progress
	expect out "fine-tuning hoefling_2024_low_res: 1 new session(s) get new readouts"
	;;
mds)
	populate
	run 0 "$fovea" import "$fixture" -o "$tmp/h.safetensors"
	# from the .ckpt, its name and its import, the same stimulus
	for ck in "$fixture" hoefling_2024_low_res "$tmp/h.safetensors"; do
		run 0 "$fovea" mds "$ck" --session "$session" --on 0,1 --off 2,3 --off 5 \
			--out "$tmp/mds_${ck##*/}" time_steps=40 --no-progress --threads 1
		expect out "mds_${session}_0-1: 10 iterations"
	done
	for ck in hoefling_2024_low_res h.safetensors; do
		cmp -s "$tmp/mds_$ck/mds_${session}_0-1.npy" \
			"$tmp/mds_hoefling_low_res_gmask.ckpt/mds_${session}_0-1.npy" || fail "MDS of $ck differs"
	done
	run 0 "$fovea" figures hoefling_2024_low_res --out "$tmp/fig"
	expect out "wrote 3 figures" # readout positions, two core layers
	run 1 "$fovea" mds hoefling_2024_low_res --session "$session" --on 0 --off 19
	expect err "cluster neuron 19 is out of range: session '$session' has 19 neurons (0..18)"
	;;
model_option)
	fixture_data
	# openretina's test results in data_info are kept (make_pretrained.py)
	run 0 "$fovea" import "$data/pretrained_performance.ckpt" -o "$tmp/pp.safetensors"
	expect out "openretina's test performance kept (metadata pretrained_performance)"
	run 0 "$fovea" predict "$tmp/pp.safetensors" "$data/hoefling_low_res_gmask.stimulus.npy" \
		--session "$session" --raw -o "$tmp/pp.npy"
	python3 "$srcdir/tests/cli/npy_close.py" "$tmp/pp.npy" "$data/hoefling_low_res_gmask.expected_$session.npy" \
		1e-4 1e-5 || fail "the model with its performance predicts wrongly"
	# --model: a .ckpt without hyper_parameters in every command
	lnp=$data/single_cell_lnp.ckpt
	yaml=$data/single_cell_lnp.model.yaml
	run 0 "$fovea" predict "$lnp" "$data/single_cell_lnp.stimulus.npy" --session single_cell \
		--raw -o "$tmp/lnp.npy" --model "$yaml"
	python3 "$srcdir/tests/cli/npy_close.py" "$tmp/lnp.npy" "$data/single_cell_lnp.expected_single_cell.npy" \
		1e-4 1e-5 || fail "predict --model"
	run 0 "$fovea" figures "$lnp" --model "$yaml" --out "$tmp/lnp_fig"
	for cmd in "predict $lnp x.npy --session single_cell" "figures $lnp" "eval $lnp $tmp/d" \
		"mei $lnp --session single_cell --neuron 0" "mds $lnp --session single_cell --on 0 --off 1"; do
		run 1 "$fovea" $cmd
		expect err "the checkpoint has no hyper_parameters"
	done
	# with --model, mei and mds reach the model (which needs a cropped stimulus)
	run 1 "$fovea" mei "$lnp" --session single_cell --neuron 0 --model "$yaml" --out "$tmp/x"
	expect err "SingleCellSeparatedLNP: input frames are (20, 20)"
	run 1 "$fovea" mds "$lnp" --session single_cell --on 0 --off 1 --model "$yaml" --out "$tmp/x"
	expect err "cluster neuron 1 is out of range: session 'single_cell' has 1 neurons (0..0)"
	run 1 "$fovea" eval "$lnp" "$tmp/d" --model "$yaml" "${opts[@]}"
	expect err "of the data has no readout in $lnp"
	run 1 "$fovea" predict "$lnp" x.npy --session single_cell --model "$tmp/none.yaml"
	expect err "$tmp/none.yaml"
	;;
*)
	fail "unknown case $case_name"
	;;
esac

finish "zoo_$case_name"
