#!/usr/bin/env bash
# out_of_tree.sh: what docs/writing-a-plugin.md promises, end to end.
#
#   out_of_tree.sh BUILD_ROOT SOURCE_ROOT PREFIX LIBDIR MESON PKG_CONFIG CC...
#
# Install fovea into a scratch DESTDIR, build tests/fixtures/plugins/out_of_tree_readout.c
# there with nothing but `pkg-config fovea` and a C compiler, put it on
# FOVEA_PLUGIN_PATH and build it from YAML with the installed `fovea`.
set -eu

builddir=$1 srcdir=$2 prefix=$3 libdir=$4 meson=$5 pkg_config=$6
shift 6
cc=("$@")

unset FOVEA_PLUGIN_PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$libdir" in
/*) root="$tmp$libdir" ;;
*) root="$tmp$prefix/$libdir" ;;
esac

"$meson" install -C "$builddir" --no-rebuild --quiet --destdir "$tmp" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"; exit 1; }

# fovea.pc says prefix=$prefix; point it at the scratch copy.
export PKG_CONFIG_PATH="$root/pkgconfig"
pc=("$pkg_config" --define-variable=prefix="$tmp$prefix")
"${pc[@]}" --exists fovea || { echo "fovea.pc not installed in $PKG_CONFIG_PATH"; exit 1; }
plugindir=$("${pc[@]}" --variable=plugindir fovea)
[ -d "$plugindir" ] || { echo "plugindir $plugindir from fovea.pc does not exist"; exit 1; }

mkdir "$tmp/lab"
# shellcheck disable=SC2046  # pkg-config output is meant to be split
"${cc[@]}" -std=c17 -Wall -Wextra -Werror -shared -fPIC \
	-o "$tmp/lab/out_of_tree_readout.so" "$srcdir/tests/fixtures/plugins/out_of_tree_readout.c" \
	$("${pc[@]}" --cflags --libs fovea)

cat >"$tmp/lab/readout.yaml" <<'EOF'
model:
  _target_: my_lab.readouts.MeanChannelReadout
  init: 0.25
EOF

export LD_LIBRARY_PATH="$root${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FOVEA_PLUGIN_PATH="$tmp/lab"
fovea="$tmp$prefix/bin/fovea"
out=$("$fovea" instantiate "$tmp/lab/readout.yaml" --in-shape 2,5,6,7 --neurons 3)
echo "$out"
grep -q "^readout OutOfTreeReadout$" <<<"$out"
grep -Eq "^param +features +\(3, 2\)$" <<<"$out"
grep -Eq "^param +bias +\(3\)$" <<<"$out"

# The installed fovea finds its own installed plugins too (relocated prefix).
"$fovea" plugins >"$tmp/plugins.txt"
grep -q "ExampleLinearReadout" "$tmp/plugins.txt"
grep -q "OutOfTreeReadout" "$tmp/plugins.txt"
grep -q "$plugindir" "$tmp/plugins.txt"
echo "out-of-tree plugin: OK"
