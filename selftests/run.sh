#!/usr/bin/env bash
# Run cpn's test suites and print one closing line: `N passed, N failed, N skipped`.
#
# Every suite speaks TAP on stdout: `ok N - name`, `not ok N - name`,
# `ok N # SKIP reason`. cmocka suites do so with CMOCKA_MESSAGE_OUTPUT=TAP.
# A suite that exits non-zero without reporting a failure counts as one
# failure; a suite that cannot run at all says why as a skip.
#
# usage: selftests/run.sh [unit|bpf|e2e ...]   (default: all)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf e2e)

pass=0 fail=0 skip=0
failed=() # every failure and the first lines it printed, repeated above the closing line
log_dir=$(mktemp -d /tmp/cpn-test.XXXXXX)
trap 'rm -rf "$log_dir"' EXIT

run_one() { # name, command...
	local name=$1
	shift
	local out="$log_dir/$(echo "$name" | tr '/ ' '__').log"
	local t0=$SECONDS rc p=0 f=0 s=0
	"$@" >"$out" 2>&1
	rc=$?
	# cmocka's skip() reports `not ok N # SKIP`: a skip, not a failure.
	p=$(grep -E '^ok [0-9]+' "$out" | grep -cvE '# *(SKIP|skip)')
	s=$(grep -cE '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$out")
	f=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE '# *(SKIP|skip)')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited $rc without reporting a failure" >>"$out"
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		f=1
		echo "not ok - $name reported no test" >>"$out"
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-40s %4d passed %4d failed %4d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - t0))
	if [ "$f" -gt 0 ]; then
		local line
		while IFS= read -r line; do
			failed+=("$name: $line")
		done < <(awk '/^(not )?ok [0-9]+/ && !/# *(SKIP|skip)/ { n = 0 }
			/^not ok/ && !/# *(SKIP|skip)/ { print; n = 6; next }
			/^(not )?ok/ { n = 0; next }
			n > 0 { print "    " $0; n-- }' "$out")
	fi
	if [ "$f" -gt 0 ] || [ -n "${VERBOSE:-}" ]; then
		sed 's/^/    | /' "$out"
	else
		grep -E '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$out" | sed 's/^/    | /'
	fi
}

for suite in "${suites[@]}"; do
	case "$suite" in
	unit | bpf)
		for t in "$BUILD"/selftests/"$suite"/test_*; do
			[ -x "$t" ] || continue
			run_one "$suite/$(basename "$t")" "$t"
		done
		;;
	e2e)
		for t in selftests/e2e/test_*.sh; do
			# A script that lost its mode would pass unseen: a failure.
			if [ ! -x "$t" ]; then
				run_one "e2e/$(basename "$t" .sh)" sh -c "echo 'not ok 1 - $t is not executable (chmod +x)'"
				continue
			fi
			run_one "e2e/$(basename "$t" .sh)" "$t"
		done
		;;
	*)
		echo "run.sh: unknown suite '$suite' (unit, bpf, e2e)" >&2
		exit 2
		;;
	esac
done

# The failures again, where a reader of the last lines finds them.
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failed[@]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
