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
#   bail_rest N REASON       not_ok for every test up to N (an earlier step
#                            that the rest needed failed)
#
# `n` counts the tests reported so far.
n=0

skip() {
	echo "1..1"
	echo "ok 1 # SKIP $1"
	exit 0
}

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	local d
	n=$((n + 1))
	echo "not ok $n - $1"
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

bail_rest() {
	while [ "$n" -lt "$1" ]; do not_ok "$2"; done
}
