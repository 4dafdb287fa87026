#!/usr/bin/env bash
# e2e: a short run of every fuzz target (selftests/fuzz/, mk/fuzz.mk), each
# over a copy of its seed corpus for FUZZ_SMOKE_SECONDS (12), no root.
#
# What is proved: each target replays its seeds and then runs new inputs
# for its time (libFuzzer's "Done N runs", N at least the seeds) and ends
# without a crash, leak or sanitizer report (exit 0, no crash-* file).
# The longer runs are `make fuzz` (FUZZ_SECONDS each).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
SECS=${FUZZ_SMOKE_SECONDS:-12}
TARGETS=(fuzz_proto fuzz_config fuzz_client_rx fuzz_worker_rx fuzz_router)

need_cmd timeout
for t in "${TARGETS[@]}"; do need_file "$BUILD/fuzz/$t"; done

TMP=$(mktemp -d /tmp/cpn-fuzz.XXXXXX)
cleanup() { [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

echo "1..${#TARGETS[@]}"
for t in "${TARGETS[@]}"; do
	seeds=$(find "selftests/fuzz/corpus/$t" -type f | wc -l)
	mkdir -p "$TMP/$t/corpus" "$TMP/$t/out"
	cp "selftests/fuzz/corpus/$t"/* "$TMP/$t/corpus/"
	log=$TMP/$t/log
	# Bounded twice: libFuzzer's own time, and a hard timeout over it.
	(cd "$TMP/$t/out" && timeout $((SECS + 30)) "$OLDPWD/$BUILD/fuzz/$t" \
		-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 ../corpus) >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	crashes=$(find "$TMP/$t/out" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' | wc -l)
	if [ "$rc" -eq 0 ] && [ -n "$runs" ] && [ "$runs" -ge "$seeds" ] && [ "$crashes" -eq 0 ]; then
		ok "$t: ran $runs execs in ${SECS} s over $seeds seeds, no crash"
	else
		not_ok "$t: exit $rc, ${runs:-no} execs, $crashes crash files" "$(tail -40 "$log")"
	fi
done
tap_ran ${#TARGETS[@]}
