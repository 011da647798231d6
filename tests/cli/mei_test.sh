#!/usr/bin/env bash
# mei_test.sh: `fovea mei`, `fovea mds` and `fovea figures` through the real
# binary, one case per meson test:
#
#   mei_test.sh CASE FOVEA SOURCE_ROOT
#
#   outputs       on a tiny trained model: the files each command writes,
#                 their formats, the batch form, seeds, progress lines, the
#                 figures `fovea train` leaves in its run directory
#   errors        exit codes and messages of bad command lines, unknown
#                 sessions, neurons out of range, bad checkpoints and configs
#   inner         `fovea mei --layer L --channel C`: MEIs of inner units
#                 (InnerNeuronVisualizationObjective), their files, the
#                 reducer moved to the layer's last frames, the peak at the
#                 layer's central unit, and the errors of its options
#   movies        `fovea mei --movie`, `fovea predict --movie`: the movies read
#                 back (frames, size, codec); `fovea figures --format/--size`
#   visualize     `fovea visualize`: the files, index.html's links resolving,
#                 the figures' SVG text, --inner, the errors of its options
#   browser       index.html of `fovea visualize` rendered by headless
#                 Chromium: the screenshot shows the figures
#   example_job   the acceptance test of issue 6: the README's main job
#                 (create-data, train configs/example.yaml), then `fovea mei`
#                 for every neuron of a session; each MEI must drive its
#                 neuron to >= 3x the neuron's mean predicted response to the
#                 test movie, and its peak must lie within 2 px of the
#                 neuron's planted centre (ground_truth.json)
set -u

case_name=$1
fovea=$2
srcdir=$3
movie_info=${4:-}
png_stats=${5:-}

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$1 is not a PNG"; }
# jval FILE KEY: the value of a one-line member "KEY": VALUE, of fovea's JSON
jval() { sed -n "s/^  \"$2\": \\(.*\\),\$/\\1/p" "$1"; }

# frames FILE N [CODEC_RE]: the movie has N frames of even size (and a codec
# matching CODEC_RE).
frames() {
	local info
	info=$("$movie_info" "$1") || { fail "movie_info $1"; return; }
	set -- "$1" "$2" "${3:-.}" $info
	[ "$4" = "$2" ] || fail "$1: $4 frames, expected $2"
	[ $(($5 % 2)) -eq 0 ] && [ $(($6 % 2)) -eq 0 ] && [ "$5" -ge 300 ] || fail "$1: size $5 x $6"
	echo "$7" | grep -Eq "$3" || fail "$1: codec $7, expected $3"
}
# links DIR/index.html: every src and href names a file beside it.
links() {
	local d f n=0
	d=$(dirname "$1")
	for f in $(grep -o '\(src\|href\)="[^"]*"' "$1" | sed 's/^[a-z]*="\(.*\)"$/\1/'); do
		n=$((n + 1))
		[ -f "$d/$f" ] || fail "$1 links to $f, which is missing"
	done
	[ "$n" -gt 0 ] || fail "$1 has no links"
}

example=$srcdir/configs/example.yaml

# A tiny trained model: 2 sessions (3 and 4 neurons), 1 x 6 x 5 pixels.
tiny_model() {
	"$fovea" create-data "$tmp/d" --seed 5 --neurons 3,4 --frames 240 --train-stimuli 1 \
		--test-frames 60 --trials 3 --height 6 --width 5 --channels 1 --filter-length 4 \
		>/dev/null || fail "create-data"
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/d" paths.output_dir="$tmp/run" \
		data_io.color_channels=1 data_io.video_height=6 data_io.video_width=5 \
		dataloader.train_chunk_size=20 dataloader.clip_length=40 dataloader.num_val_clips=1 \
		'model.core.temporal_kernel_sizes=[5]' trainer.max_epochs=2 --threads 1 --no-progress
	ck=$tmp/run/best.safetensors
}

case "$case_name" in
outputs)
	tiny_model
	expect out "figures: $tmp/run/{readout_positions,core_filters}.png"
	is_png "$tmp/run/readout_positions.png"
	is_png "$tmp/run/core_filters.png"

	run 0 "$fovea" mei "$ck" --session session_1 --neuron 2 --out "$tmp/m" time_steps=30 \
		--no-progress --reference "$tmp/d/stimuli/test.npy"
	expect out "mei_session_1_2: 10 iterations, objective"
	expect out "wrote $tmp/m/mei_session_1_2.{npy,png,json}"
	is_png "$tmp/m/mei_session_1_2.png"
	head -c 128 "$tmp/m/mei_session_1_2.npy" | grep -aq "'shape': (1, 30, 6, 5)" ||
		fail "mei npy shape is not (1, 30, 6, 5)"
	j=$tmp/m/mei_session_1_2.json
	[ "$(jval "$j" neuron)" = 2 ] || fail "json neuron: $(jval "$j" neuron)"
	[ "$(jval "$j" iterations)" = 10 ] || fail "json iterations: $(jval "$j" iterations)"
	[ "$(jval "$j" objective_trace | tr ',' '\n' | wc -l)" -eq 10 ] || fail "objective_trace length"
	[ "$(jval "$j" response_trace | tr ',' '\n' | wc -l)" -eq 26 ] ||
		fail "response_trace: 30 - 4 frames expected"
	[ "$(jval "$j" reference_mean_response)" != null ] || fail "no reference mean response"
	grep -q '"config": ".*_target_: torch.optim.SGD' "$j" || fail "json lacks the config used"
	grep -q 'norm: 5.0' "$j" || fail "json config lacks the norm"

	# the same seed gives the same stimulus, another seed another; a config file
	run 0 "$fovea" mei "$ck" --session session_1 --neuron 2 --out "$tmp/m2" time_steps=30 --quiet
	[ -z "$out" ] || fail "--quiet printed: $out"
	cmp -s "$tmp/m/mei_session_1_2.npy" "$tmp/m2/mei_session_1_2.npy" || fail "same seed, other MEI"
	printf 'optimizer: {_target_: torch.optim.Adam, lr: 0.05}\nstopper: {_target_: OptimizationStopper, max_iterations: 4}\n' >"$tmp/adam.yaml"
	run 0 "$fovea" mei "$ck" "$tmp/adam.yaml" --session session_1 --neuron 2 --out "$tmp/m3" \
		time_steps=30 --seed 3 --no-progress
	expect out "4 iterations"
	cmp -s "$tmp/m/mei_session_1_2.npy" "$tmp/m3/mei_session_1_2.npy" && fail "seed 3 gave seed 0's MEI"
	grep -q 'torch.optim.Adam' "$tmp/m3/mei_session_1_2.json" || fail "the config file was not used"

	# the batch form, and the live progress line
	run 0 "$fovea" mei "$ck" --session session_1 --neurons all --out "$tmp/all" time_steps=30 --progress
	for n in 0 1 2 3; do exists "$tmp/all/mei_session_1_$n.json"; done
	expect out $'\r'"mei_session_1_3: iteration 10/10"

	run 0 "$fovea" mds "$ck" --session session_1 --on 0,1 --off 2 --off 3 --temperature 2 \
		--out "$tmp/m" time_steps=30 --no-progress
	expect out "mds_session_1_0-1: 10 iterations"
	is_png "$tmp/m/mds_session_1_0-1.png"
	grep -q '"off_clusters": \[\[2\], \[3\]\]' "$tmp/m/mds_session_1_0-1.json" || fail "mds clusters"
	grep -q 'temperature: 2' "$tmp/m/mds_session_1_0-1.json" || fail "mds temperature"

	run 0 "$fovea" figures "$ck" --out "$tmp/f"
	expect out "wrote 2 figures to $tmp/f"
	is_png "$tmp/f/core_filters.png"

	for c in mei mds figures; do
		run 0 "$fovea" $c --help
		expect out "usage: fovea $c CHECKPOINT"
	done
	;;

errors)
	tiny_model
	run 2 "$fovea" mei
	expect err "fovea mei: expected a checkpoint"
	run 2 "$fovea" mei "$ck" --neuron 1
	expect err "--session is required"
	run 2 "$fovea" mei "$ck" --session session_1
	expect err "--neuron is required"
	run 2 "$fovea" mei "$ck" --session session_1 --neuron 1,x
	expect err "--neuron: expected comma-separated neuron indices (0 or more), got '1,x'"
	run 2 "$fovea" mei "$ck" --session session_1 --neuron 1 --seed -3
	expect err "--seed needs an integer"
	run 2 "$fovea" mei "$ck" --session session_1 --neuron 1 --frobnicate
	expect err "unknown option '--frobnicate'"
	run 1 "$fovea" mei "$ck" --session sesion_1 --neuron 1
	expect err "no session 'sesion_1'; did you mean 'session_1'?"
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 4
	expect err "neuron 4 is out of range: session 'session_1' has 4 neurons (0..3)"
	size=$(stat -c %s "$ck")
	head -c $((size / 2)) "$ck" >"$tmp/cut.safetensors"
	run 1 "$fovea" mei "$tmp/cut.safetensors" --session session_1 --neuron 1
	expect err "cut.safetensors"
	cp "$tmp/d/stimuli/test.npy" "$tmp/not.safetensors"
	run 1 "$fovea" mei "$tmp/not.safetensors" --session session_1 --neuron 1
	expect err "not.safetensors"
	run 1 "$fovea" mei "$tmp/none.safetensors" --session session_1 --neuron 1
	expect err "none.safetensors"
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 1 optimizer._target_=torch.optim.Foo
	expect err "optimizer"
	expect err "torch.optim.Foo"
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 1 stopper.max_iteration=3
	expect err "max_iterations"
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 1 time_steps=0
	expect err "time_steps: expected an integer >= 1, got '0'"
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 1 --reference "$tmp/d/session_0.hdf5"
	expect err "session_0.hdf5"
	run 1 "$fovea" mei "$ck" "$tmp/none.yaml" --session session_1 --neuron 1
	expect err "none.yaml"

	run 2 "$fovea" mds "$ck" --session session_1 --on 0,1
	expect err "--on and at least one --off cluster are required"
	run 1 "$fovea" mds "$ck" --session session_1 --on 0,1 --off 7
	expect err "cluster neuron 7 is out of range"

	run 2 "$fovea" figures
	expect err "fovea figures: expected a checkpoint"
	run 1 "$fovea" figures "$tmp/cut.safetensors" --out "$tmp/f"
	expect err "cut.safetensors"
	;;

inner)
	tiny_model
	layer=core.features.layer0
	# the session defaults to the model's first; the layer's output has
	# 30 - 4 frames, so the reducer averages frames 16..25
	run 0 "$fovea" mei "$ck" --layer $layer --channel 3 --out "$tmp/i" time_steps=30 \
		--no-progress --reference "$tmp/d/stimuli/test.npy"
	expect out "mei_${layer}_3: 10 iterations, objective"
	expect out "wrote $tmp/i/mei_${layer}_3.{npy,png,json}"
	is_png "$tmp/i/mei_${layer}_3.png"
	head -c 128 "$tmp/i/mei_${layer}_3.npy" | grep -aq "'shape': (1, 30, 6, 5)" ||
		fail "inner mei npy shape is not (1, 30, 6, 5)"
	j=$tmp/i/mei_${layer}_3.json
	[ "$(jval "$j" layer)" = "\"$layer\"" ] || fail "json layer: $(jval "$j" layer)"
	[ "$(jval "$j" channel)" = 3 ] || fail "json channel: $(jval "$j" channel)"
	[ "$(jval "$j" session)" = '"session_0"' ] || fail "json session: $(jval "$j" session)"
	[ -z "$(jval "$j" neuron)" ] || fail "an inner unit's record names a neuron"
	[ "$(jval "$j" response_trace | tr ',' '\n' | wc -l)" -eq 26 ] ||
		fail "response_trace: the layer's 26 frames expected"
	[ "$(jval "$j" reference_mean_response)" != null ] || fail "no reference mean response"
	grep -q '"config": ".*_target_: InnerNeuronVisualizationObjective' "$j" ||
		fail "json config lacks the objective"
	grep -q 'start: 16\\n *length: 10' "$j" || fail "the reducer is not on the last 10 frames"

	# every channel, named as openretina's hooks name the layer; another session
	run 0 "$fovea" mei "$ck" --layer core_features_layer0 --channels all --session session_1 \
		--out "$tmp/all" time_steps=30 --quiet
	for c in 0 1 2 3 4 5 6 7; do exists "$tmp/all/mei_core_features_layer0_$c.json"; done
	[ "$(jval "$tmp/all/mei_core_features_layer0_7.json" session)" = '"session_1"' ] ||
		fail "--session is not used for inner units"

	# optimised long enough, the stimulus drives the unit more than the start
	# did and concentrates on the unit's pixel: the centre (6 // 2, 5 // 2),
	# since the core's spatial kernel is one pixel
	run 0 "$fovea" mei "$ck" --layer $layer --channel 5 --out "$tmp/long" time_steps=30 \
		'optimizer={_target_: torch.optim.Adam, lr: 0.1}' stopper.max_iterations=100 --no-progress
	expect out "peak at row 3, col 2"
	j=$tmp/long/mei_${layer}_5.json
	first=$(jval "$j" objective_trace | sed 's/^\[\([^,]*\),.*/\1/')
	final=$(jval "$j" final_objective)
	awk -v a="$first" -v b="$final" 'BEGIN { exit !(b > a) }' ||
		fail "the objective did not rise: $first -> $final"

	run 2 "$fovea" mei "$ck" --layer $layer
	expect err "--channel is required with --layer"
	run 2 "$fovea" mei "$ck" --session session_1 --channel 1
	expect err "--channel needs --layer"
	run 2 "$fovea" mei "$ck" --session session_1 --neuron 1 --layer $layer --channel 1
	expect err "--neuron and --layer exclude each other"
	run 2 "$fovea" mei "$ck" --layer $layer --channel 1,x
	expect err "--channel: expected comma-separated channel indices (0 or more), got '1,x'"
	run 1 "$fovea" mei "$ck" --layer $layer --channel 8
	expect err "channel 8 is out of range: layer '$layer' has 8 channels (0..7)"
	run 1 "$fovea" mei "$ck" --layer core.features.layer7 --channel 0
	expect err "layer 'core.features.layer7' is not an output the model's forward produced"
	expect err "core.features.layer0.conv"
	run 1 "$fovea" mei "$ck" --layer $layer --channel 0 --session sesion_1
	expect err "no session 'sesion_1'; did you mean 'session_1'?"

	run 0 "$fovea" mei --help
	expect out "--layer L"
	expect out "--channel LIST"
	;;

movies)
	tiny_model
	run 0 "$fovea" mei "$ck" --session session_1 --neuron 2 --out "$tmp/m" time_steps=20 \
		--no-progress --movie "$tmp/one.mp4" --format svg
	expect out "wrote $tmp/one.mp4"
	expect out "wrote $tmp/m/mei_session_1_2.svg"
	grep -q '>MEI session_1 neuron 2, best.safetensors</text>' "$tmp/m/mei_session_1_2.svg" ||
		fail "mei_session_1_2.svg has no title naming session, neuron and model"
	is_png "$tmp/m/mei_session_1_2.png"
	frames "$tmp/one.mp4" 20 '^(h264|mpeg4)$'
	run 0 "$fovea" mei "$ck" --session session_1 --neuron 0,1 --out "$tmp/m2" time_steps=20 \
		--quiet --movie gif
	frames "$tmp/m2/mei_session_1_0.gif" 20 '^gif$'
	frames "$tmp/m2/mei_session_1_1.gif" 20 '^gif$'
	run 0 "$fovea" mei "$ck" --session session_1 --neuron 0,1 --out "$tmp/m3" time_steps=20 \
		--quiet --movie "$tmp/anim.png"
	frames "$tmp/anim_mei_session_1_1.png" 20 '^apng$'
	run 1 "$fovea" mei "$ck" --session session_1 --neuron 0 --out "$tmp/m4" --quiet \
		--movie "$tmp/x.avi"
	expect err "$tmp/x.avi: cannot tell the movie format from the file name (expected .mp4"
	# predict: the test movie's 60 frames, the 4 neurons' predictions beneath
	run 0 "$fovea" predict "$ck" "$tmp/d/stimuli/test.npy" --session session_1 \
		--movie "$tmp/p.mp4" -o "$tmp/p.npy"
	expect out "wrote $tmp/p.mp4"
	frames "$tmp/p.mp4" 60
	# figures: SVG keeps its text; bad formats and sizes are usage errors
	run 0 "$fovea" figures "$ck" --out "$tmp/f" --format svg --size 8
	expect out "wrote 2 figures to $tmp/f"
	grep -q '>Readout positions: UnifiedCoreReadout</text>' "$tmp/f/readout_positions.svg" ||
		fail "readout_positions.svg has no title naming the model"
	grep -q '>session session_1 (4 neurons)</text>' "$tmp/f/readout_positions.svg" ||
		fail "readout_positions.svg names no session"
	grep -q 'width="576.00pt"' "$tmp/f/core_filters.svg" || fail "--size 8 is 576 points"
	run 0 "$fovea" figures "$ck" --out "$tmp/f" --format pdf
	[ "$(head -c 5 "$tmp/f/core_filters.pdf")" = "%PDF-" ] || fail "core_filters.pdf"
	run 2 "$fovea" figures "$ck" --format tiff
	expect err "--format: figure format 'tiff': expected png, svg or pdf"
	run 2 "$fovea" figures "$ck" --size 8y3
	expect err "--size '8y3': expected W or WxH in inches"
	run 2 "$fovea" figures "$ck" --dpi -3
	expect err "--dpi '-3': expected a number of pixels per inch"
	;;
visualize)
	tiny_model
	run 0 "$fovea" visualize "$ck" --out "$tmp/v" time_steps=20 --no-progress --format svg
	expect out "wrote $tmp/v/index.html"
	links "$tmp/v/index.html"
	[ "$(grep -c '<figure class="card">' "$tmp/v/index.html")" -eq 5 ] ||
		fail "index.html: expected 2 weight figures and 3 neurons of session_0"
	for n in 0 1 2; do
		frames "$tmp/v/mei_session_0_$n.mp4" 20
		grep -q ">MEI session_0 neuron $n, best.safetensors</text>" "$tmp/v/mei_session_0_$n.svg" ||
			fail "mei_session_0_$n.svg has no title"
		is_png "$tmp/v/mei_session_0_$n.png"
	done
	grep -q '>t = 0</text>' "$tmp/v/mei_session_0_0.svg" || fail "no frame labels"
	run 0 "$fovea" visualize "$ck" --out "$tmp/vi" --inner --session session_1 --quiet \
		time_steps=20 --movie-format gif
	[ -z "$out" ] || fail "--quiet printed: $out"
	links "$tmp/vi/index.html"
	inner=$(ls "$tmp/vi" | grep -c '^mei_core\.features\.layer0_[0-9]*\.png$')
	[ "$inner" -gt 0 ] || fail "--inner wrote no layer0 channels"
	[ "$(grep -c '<figure class="card">' "$tmp/vi/index.html")" -eq $((2 + 4 + inner)) ] ||
		fail "index.html: expected 2 weight figures, 4 neurons and $inner channels"
	frames "$tmp/vi/mei_core.features.layer0_0.gif" 20 '^gif$'
	run 2 "$fovea" visualize "$ck" --movie-format avi
	expect err "--movie-format 'avi': expected mp4, gif or png"
	run 2 "$fovea" visualize "$ck" --movie x.mp4
	expect err "--movie: visualize writes a movie per unit anyway"
	run 2 "$fovea" visualize
	expect err "expected a checkpoint"
	;;
browser)
	# index.html as a browser draws it from the file system: Debian's headless
	# Chromium takes a screenshot, which must show the figures (the warm half
	# of their colour maps; text, links and broken-image icons are grey or blue).  The same
	# page with its figures gone is the control: the check must tell them apart.
	chromium=$(command -v chromium || command -v chromium-browser) ||
		{ echo "no chromium (tools/setup installs Debian's)"; exit 77; }
	tiny_model
	run 0 "$fovea" visualize "$ck" --out "$tmp/v" time_steps=20 --no-progress --quiet
	mkdir "$tmp/blank" && cp "$tmp/v/index.html" "$tmp/blank/"
	shot() {
		HOME=$tmp "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
			--user-data-dir="$tmp/chromium" --window-size=1200,2400 \
			--screenshot="$2" "file://$1" >/dev/null 2>&1 || fail "chromium $1"
		read -r w h nonwhite warm < <("$png_stats" "$2") || fail "png_stats $2"
		[ "$w $h" = "1200 2400" ] || fail "$2: screenshot of $w x $h"
	}
	shot "$tmp/v/index.html" "$tmp/page.png"
	echo "figures: non-white $nonwhite, warm $warm"
	awk -v n="$nonwhite" -v c="$warm" 'BEGIN { exit !(n > 0.05 && c > 0.003) }' ||
		fail "the page shows no figures (non-white $nonwhite, warm $warm)"
	shot "$tmp/blank/index.html" "$tmp/blank.png"
	echo "without the figures: non-white $nonwhite, warm $warm"
	awk -v c="$warm" 'BEGIN { exit !(c < 0.0005) }' ||
		fail "the control page without figures looks coloured (warm $warm)"
	;;
example_job)
	# the README's main job: default data, configs/example.yaml
	"$fovea" create-data "$tmp/data" >/dev/null || fail "create-data"
	run 0 "$fovea" train "$example" paths.data_dir="$tmp/data" paths.output_dir="$tmp/run" \
		--threads 1 --no-progress
	truth=$tmp/data/ground_truth.json
	session=session_0
	run 0 "$fovea" mei "$tmp/run/best.safetensors" --session $session --neurons all \
		--out "$tmp/mei" --reference "$tmp/data/stimuli/test.npy" --no-progress --threads 1
	echo "$out"
	n=$(sed -n "/\"$session\": {/,/\"n_neurons\"/s/.*\"n_neurons\": \([0-9]*\).*/\1/p" "$truth")
	[ "${n:-0}" -gt 0 ] || fail "ground_truth.json: no neurons for $session"
	for ((k = 0; k < ${n:-0}; k++)); do
		j=$tmp/mei/mei_${session}_$k.json
		exists "$j"
		# the planted centre of neuron k: its line in the session's list
		read -r cx cy < <(awk -v s="\"$session\": {" -v k="$k" '
			index($0, s) { on = 1; i = 0; next }
			on && /"centre_x"/ {
				if (i++ == k) {
					sub(/.*"centre_x": /, ""); x = $0 + 0
					sub(/.*"centre_y": /, ""); y = $0 + 0
					print x, y; exit
				}
			}' "$truth")
		r=$(jval "$j" response); m=$(jval "$j" reference_mean_response)
		row=$(jval "$j" peak_row); col=$(jval "$j" peak_col)
		echo "neuron $k: response $r, mean response to the test movie $m; peak (row $row," \
			"col $col), planted (row $cy, col $cx)"
		awk -v r="$r" -v m="$m" 'BEGIN { exit !(r >= 3 * m) }' ||
			fail "neuron $k: response $r < 3 x mean response $m"
		awk -v a="$row" -v b="$col" -v y="$cy" -v x="$cx" \
			'BEGIN { exit !(sqrt((a - y) ^ 2 + (b - x) ^ 2) <= 2) }' ||
			fail "neuron $k: peak (row $row, col $col) is over 2 px from (row $cy, col $cx)"
	done
	;;

*)
	echo "unknown case $case_name" >&2
	exit 2
	;;
esac

finish
