# lib.sh: what the CLI test scripts share.  Source it after `set -u`:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It gives a scratch directory $tmp (removed on exit), a clean plugin path,
# and the helpers below; a script ends with `finish [NAME]`.

unset FOVEA_PLUGIN_PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run EXPECTED_EXIT CMD...: runs CMD, keeps stdout/stderr in $out/$err.
run() {
	local want=$1; shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
	if [ "$got" -ne "$want" ]; then
		fail "'$*' exited $got, expected $want"
		echo "--- stdout:"; echo "$out"; echo "--- stderr:"; echo "$err"
	fi
}

# has WHERE TEXT: WHERE ("out" or "err") holds TEXT literally.
has() {
	local where=$err
	[ "$1" = out ] && where=$out
	case "$where" in
	*"$2"*) return 0 ;;
	*) return 1 ;;
	esac
}
show() { echo "--- std$1:"; if [ "$1" = out ]; then echo "$out"; else echo "$err"; fi; }

# expect WHERE TEXT / refute WHERE TEXT: TEXT must / must not occur.
expect() { has "$1" "$2" || { fail "std$1 lacks '$2'"; show "$1"; }; }
refute() { ! has "$1" "$2" || { fail "std$1 has '$2'"; show "$1"; }; }

exists() { [ -f "$1" ] || fail "missing $1"; }

# finish [NAME]: exit 1 after any failure, else 0 (saying "ok NAME").
finish() {
	if [ "$failures" -ne 0 ]; then
		echo "$failures failure(s)${1:+ in $1}" >&2
		exit 1
	fi
	[ -z "${1:-}" ] || echo "ok $1"
	exit 0
}
