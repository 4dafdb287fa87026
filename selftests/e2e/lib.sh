# shellcheck shell=bash
# The TAP helpers of the e2e tests. A test cds to the repository root and
# sources this file:
#
#   skip REASON              the whole test is skipped: "1..1", "ok 1 # SKIP
#                            REASON", exit 0 (run.sh counts it as skipped).
#                            Only for what a machine cannot have (a GPU, a
#                            second CPU); never for a package make deps installs
#   fail_all REASON          the whole test cannot run: "1..1", "not ok 1 -
#                            REASON", exit 1
#   need_root                fail_all unless root (make test runs as root)
#   need_cmd CMD...          fail_all naming the Debian package (tools/deps.list)
#                            of each command that is not on PATH
#   need_file FILE...        fail_all for each file that was not built
#   ok NAME                  the next test passed
#   not_ok NAME [WHAT...]    the next test failed; each WHAT, a file shown as
#                            TAP comments, or a line of text
#   check NAME WHAT CMD...   ok when CMD succeeds, else not_ok NAME WHAT
#   check_log NAME LOG CMD...  the same with CMD's output written to LOG
#   skip_one REASON          the next test is skipped ("ok K # SKIP REASON")
#   bail_rest N REASON       not_ok for every test up to N (an earlier step
#                            that the rest needed failed)
#   tap_ran N                a comment when fewer than N tests reported
#   cpnctl_sandbox NAME      a router pinned under /sys/fs/bpf/cpn-NAME-PID,
#                            state in TMP, `ctl ARGS...` to drive it; all
#                            removed on exit
#
# `tap_n` counts the tests reported so far.
tap_n=0

skip() {
	echo "1..1"
	echo "ok 1 # SKIP $1"
	exit 0
}

fail_all() {
	echo "1..1"
	echo "not ok 1 - $1"
	exit 1
}

# The Debian package of a command, from tools/deps.list (run from the root).
deps_pkg() {
	awk -v c="$1" '$1 == "cmd" && $2 == c { print $3; exit }' tools/deps.list 2>/dev/null
}

need_root() {
	[ "$(id -u)" -eq 0 ] || fail_all "needs root (network namespaces, bpffs, XDP): run make test as root"
}

need_cmd() {
	local c p miss=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && continue
		p=$(deps_pkg "$c")
		miss+=("'$c' (Debian package ${p:-unknown: add it to tools/deps.list})")
	done
	[ ${#miss[@]} -eq 0 ] || fail_all "missing command ${miss[*]}: run make deps"
}

need_file() {
	local f miss=()
	for f in "$@"; do
		[ -e "$f" ] || miss+=("$f")
	done
	[ ${#miss[@]} -eq 0 ] || fail_all "not built: ${miss[*]} (make all)"
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

# cpnctl_sandbox NAME: a router of the test's own, loaded by cpnctl and not
# attached: CPNCTL, PIN (/sys/fs/bpf/cpn-NAME-PID), TMP (its state dir's
# parent), and ctl ARGS... to run cpnctl on them. Needs root, cpnctl and
# python3 (a failure naming what is missing); mounts bpffs if need be; on
# exit `cpnctl down` and every pin and file removed.
cpnctl_sandbox() {
	CPNCTL=$(pwd)/${BUILD:-build}/cpnctl
	need_root
	need_file "$CPNCTL"
	need_cmd python3
	PIN=/sys/fs/bpf/cpn-$1-$$
	TMP=$(mktemp -d "/tmp/cpn-$1.XXXXXX")
	trap cpnctl_sandbox_down EXIT
	trap 'exit 130' INT TERM
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	# shellcheck disable=SC2317 # called by the test that set it up
	ctl() { timeout 20 "$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" "$@"; }
}
cpnctl_sandbox_down() {
	"$CPNCTL" --pin-dir "$PIN" --state-dir "$TMP/state" down >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
