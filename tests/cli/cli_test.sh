#!/usr/bin/env bash
# cli_test.sh: drive the real `fovea` binary, one case per meson test.
#
#   cli_test.sh CASE FOVEA TEST_PLUGIN_DIR SOURCE_ROOT BUILD_ROOT
#
# Each case checks exit codes and the text a user would read.  The
# out_of_tree case (see out_of_tree.sh) is separate because it installs.
set -u

case_name=$1
fovea=$2
test_plugins=$3
srcdir=$4
builddir=$5

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

spec() { # a readout spec in $tmp/spec.yaml
	cat >"$tmp/spec.yaml"
}

case "$case_name" in
version)
	run 0 "$fovea" --version
	expect out "fovea 0.1.0"
	expect out "plugin ABI 1.3"
	;;
help)
	run 0 "$fovea" --help
	for c in plugins describe instantiate help; do expect out "  $c "; done
	run 0 "$fovea" help describe
	expect out "usage: fovea describe NAME"
	for c in plugins describe instantiate help; do
		run 0 "$fovea" "$c" --help
		expect out "usage: fovea $c"
	done
	run 2 "$fovea"
	expect err "usage: fovea"
	;;
unknown_command)
	run 2 "$fovea" plugns
	expect err "unknown command 'plugns'; did you mean 'plugins'?"
	run 2 "$fovea" help descrbe
	expect err "did you mean 'describe'?"
	run 2 "$fovea" zzzzzzzzzzzz
	expect err "unknown command 'zzzzzzzzzzzz'"
	refute err "did you mean"
	run 2 "$fovea" plugins extra
	expect err "fovea plugins: takes no arguments"
	;;
plugins)
	run 0 "$fovea" plugins
	expect out "readout     ExampleLinearReadout  (also fovea.examples.LinearReadout)"
	expect out "per-neuron spatial linear readout of every frame (example plugin)"
	expect out "$builddir/plugins/examples/example_linear_readout.so"
	;;
describe)
	for name in ExampleLinearReadout fovea.examples.LinearReadout; do
		run 0 "$fovea" describe "$name"
		expect out "ExampleLinearReadout (readout)"
		expect out "aliases: fovea.examples.LinearReadout"
		expect out "example_linear_readout.so"
		for opt in bias init_std gamma; do expect out "$opt"; done
		expect out "0.01"
		expect out "standard deviation of the normal initialisation"
	done
	# the parts of a training config that are not plugins, from their tables
	run 0 "$fovea" describe lightning.pytorch.loggers.TensorBoardLogger
	expect out "TensorBoardLogger (logger, built into libfovea)"
	for opt in save_dir name version prefix sub_dir log_graph default_hp_metric; do
		expect out "$opt"
	done
	run 0 "$fovea" describe LearningRateMonitor
	expect out "logging_interval"
	expect out "epoch|step"
	run 1 "$fovea" describe CSVLoger
	expect err "did you mean 'CSVLogger'?"
	;;
unknown_target)
	# issue 12 item 11: no close match is not "no plugins are loaded"
	spec <<-'EOF'
	_target_: ZzzzQqqqWwww
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3
	expect err "$tmp/spec.yaml:1:1: _target_: unknown component 'ZzzzQqqqWwww'; no close match among the"
	expect err "(\`fovea plugins\` lists them)"
	refute err "no plugins are loaded"
	;;
describe_unknown)
	run 1 "$fovea" describe ExampleLinearReadot
	expect err "unknown component 'ExampleLinearReadot'; did you mean 'ExampleLinearReadout'?"
	run 2 "$fovea" describe
	expect err "expected one component name"
	;;
bad_plugins)
	# Each broken file on the plugin path stops fovea with a message naming it.
	check_bad() {
		local file=$1 message=$2
		FOVEA_PLUGIN_PATH="$test_plugins/$file" run 1 "$fovea" plugins
		expect err "$test_plugins/$file"
		expect err "$message"
	}
	check_bad bad_abi.so "plugin ABI 99.3, this fovea has ABI 1.3; rebuild the plugin against fovea's headers"
	check_bad no_entry.so "not a fovea plugin: it does not export fv_plugin_entry()"
	check_bad not_a_plugin.so "cannot load plugin"
	check_bad dup_name.so "name 'fovea.examples.LinearReadout' of $test_plugins/dup_name.so is already registered by $builddir/plugins/examples/example_linear_readout.so"
	# A directory on the path is scanned the same way.
	mkdir "$tmp/dir"
	cp "$test_plugins/bad_abi.so" "$tmp/dir/"
	FOVEA_PLUGIN_PATH="$tmp/nonexistent::$tmp/dir" run 1 "$fovea" describe ExampleLinearReadout
	expect err "$tmp/dir/bad_abi.so: plugin ABI 99.3"
	# Missing and empty entries are skipped.
	FOVEA_PLUGIN_PATH="$tmp/nonexistent::" run 0 "$fovea" plugins
	expect out "ExampleLinearReadout"
	;;
instantiate)
	spec <<-'EOF'
	_target_: ExampleLinearReadout
	gamma: 0.1
	EOF
	run 0 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3
	expect out "readout ExampleLinearReadout"
	expect out "weight"
	expect out "(3, 2, 6, 7)"
	expect out "bias"
	expect out "2 tensors, 255 values (255 trainable)"
	# Overrides reach the options: no bias.  As in Hydra, a key the file
	# does not have is added with +KEY.
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3 bias=false
	expect err "bias=false"
	run 0 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3 +bias=false
	refute out "bias"
	expect out "1 tensors, 252 values"
	# Under `model`, by alias.
	spec <<-'EOF'
	model:
	  _target_: fovea.examples.LinearReadout
	EOF
	run 0 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 1,1,2,2 --neurons 1
	expect out "2 tensors, 5 values"
	# Errors: unknown option, out of range, unknown target, bad shape, CLI misuse.
	spec <<-'EOF'
	_target_: ExampleLinearReadout
	gama: 0.1
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3
	expect err "gama"
	expect err "gamma"
	spec <<-'EOF'
	_target_: ExampleLinearReadout
	init_std: 11
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3
	expect err "$tmp/spec.yaml:2:1: init_std"
	expect err "init_std"
	spec <<-'EOF'
	# a comment, so the target is on line 2
	_target_: ExampleLinearReadot
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5,6,7 --neurons 3
	expect err "$tmp/spec.yaml:2:1: _target_: unknown component 'ExampleLinearReadot'; did you mean 'ExampleLinearReadout'?"
	spec <<-'EOF'
	_target_: ExampleLinearReadout
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,5 --neurons 3
	expect err "$tmp/spec.yaml:1:1: ExampleLinearReadout: needs an input shape (C, T, H, W), got 2 dims"
	run 2 "$fovea" instantiate "$tmp/spec.yaml" --in-shape 2,x
	expect err "--in-shape: expected sizes like 2,50,18,16, got '2,x'"
	run 2 "$fovea" instantiate
	expect err "expected a YAML spec file"
	run 1 "$fovea" instantiate "$tmp/missing.yaml"
	expect err "missing.yaml"
	spec <<-'EOF'
	seed: 3
	EOF
	run 1 "$fovea" instantiate "$tmp/spec.yaml"
	expect err "no _target_ at the top and no model._target_"
	;;
*)
	echo "unknown case '$case_name'" >&2
	exit 2
	;;
esac

finish
