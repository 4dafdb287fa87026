# shellcheck shell=bash
# The TAP helpers of the e2e tests. A test cds to the repository root and
# sources this file:
#
#   skip REASON              the whole test is skipped: "1..1", "ok 1 # SKIP
#                            REASON", exit 0 (run.sh counts it as skipped)
#   ok NAME                  the next test passed
#   not_ok NAME [WHAT...]    the next test failed; each WHAT, a file shown as
#                            TAP comments, or a line of text
#   check NAME WHAT CMD...   ok when CMD succeeds, else not_ok NAME WHAT
#   check_log NAME LOG CMD...  the same with CMD's output written to LOG
#   skip_one REASON          the next test is skipped ("ok K # SKIP REASON")
#   bail_rest N REASON       not_ok for every test up to N (an earlier step
#                            that the rest needed failed)
#   tap_ran N                a comment when fewer than N tests reported
#
# `tap_n` counts the tests reported so far.
tap_n=0

skip() {
	echo "1..1"
	echo "ok 1 # SKIP $1"
	exit 0
}

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1"
}

not_ok() {
	local d
	tap_n=$((tap_n + 1))
	echo "not ok $tap_n - $1"
	shift
	for d in "$@"; do
		if [ -f "$d" ]; then
			sed 's/^/# /' "$d"
		elif [ -n "$d" ]; then
			printf '%s\n' "$d" | sed 's/^/# /'
		fi
	done
}

check() {
	local name=$1 what=$2
	shift 2
	if "$@"; then ok "$name"; else not_ok "$name" "$what"; fi
}

check_log() {
	local name=$1 log=$2
	shift 2
	if "$@" >"$log" 2>&1; then ok "$name"; else not_ok "$name" "$log"; fi
}

bail_rest() {
	while [ "$tap_n" -lt "$1" ]; do not_ok "$2"; done
}

skip_one() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $1"
}

tap_ran() {
	[ "$tap_n" -eq "$1" ] || echo "# ran $tap_n of $1 tests"
}
