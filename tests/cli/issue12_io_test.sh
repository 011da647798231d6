#!/usr/bin/env bash
# issue12_io_test.sh: bad inputs of `fovea eval`, `predict`, `mei` and
# `mds` that used to crash or exit 0 with a meaningless result (issue 12).
#
#   bash issue12_io_test.sh CASE FOVEA
#
#   eval_cutoff_nan   --var-ratio-cutoff nan is a usage error, not a
#                     summary over no neurons
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_=$1
fovea=$2

case "$case_" in
eval_cutoff_nan)
	run 2 "$fovea" eval "$tmp/x.safetensors" "$tmp/d" --var-ratio-cutoff nan
	expect err "--var-ratio-cutoff needs a finite number, got 'nan'"
	;;
*)
	echo "unknown case $case_" >&2
	exit 2
	;;
esac
finish "$case_"
