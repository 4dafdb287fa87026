#!/usr/bin/env bash
# e2e: large messages at the node (docs/PROTOCOL.md, "Large messages"):
# cpn-worker (the ASan/UBSan build) with the echo kernel on 127.0.0.1, no
# router, no root; the client is selftests/e2e/frag_client.py (raw UDP).
#
# What is proved, each against a bound:
#   - a reply larger than a fragment goes as fragments only to a request
#     with FRAG_OK (or FRAG); to any other as one datagram
#   - a 1 MiB request and its 1 MiB reply round-trip as fragments, acked
#     and under the window, the reply's last fragment FRAG alone with the
#     load report; out of order and with duplicates too;
#   - a lost fragment fails only its request; the memory is freed after
#     --frag-timeout-ms and the timeout counted;
#   - a message above --max-message: REPLY too large at once, nothing held;
#   - malformed fragments are counted and ignored;
#   - a reply whose client stops acking: at most the window sent, then a
#     REPLY with status 2 after the timeout, the node answering others
#     meanwhile;
#   - a flood of first fragments from one and from several source ports:
#     every one acked or refused BUSY, the bytes held within the per-client
#     and total budgets, small requests answered throughout, nothing held
#     after the timeout;
#   - /metrics with the large messages' families passes promtool;
#   - the worker exits 0 on SIGTERM with no sanitizer report.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
W=$BUILD/selftests/e2e/cpn-worker-asan
[ -x "$W" ] || W=$BUILD/cpn-worker
PY=selftests/e2e/frag_client.py
LO=127.0.0.1

need_cmd python3 timeout promtool
need_file "$W"

TMP=$(mktemp -d /tmp/cpn-worker-frag.XXXXXX)
wpid=
cleanup() {
	if [ -n "$wpid" ]; then
		kill -TERM "$wpid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$wpid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

N=11
echo "1..$N"
mapfile -t P < <(python3 selftests/e2e/worker_client.py ports 3)
[ "${#P[@]}" -ge 3 ] || {
	bail_rest "$N" "could not find free ports on 127.0.0.1"
	exit 1
}
A=$LO:${P[0]} M=http://$LO:${P[2]}/metrics
MAXMSG=2097152 CB=4194304 TB=12582912 TMO=500
timeout 300 "$W" --listen "$A" --node-id 31 --router "$LO:${P[1]}" --kernel echo \
	--metrics "$LO:${P[2]}" --max-message 2M --frag-timeout-ms $TMO --frag-client-budget 4M \
	--frag-budget 12M >"$TMP/w.log" 2>&1 &
wpid=$!
if ! timeout 15 python3 selftests/e2e/worker_client.py wait --to "$A" --seconds 10 >>"$TMP/w.log" 2>&1; then
	not_ok "the echo worker starts" "$TMP/w.log"
	bail_rest "$N" "skipped: the worker does not start"
	exit 1
fi

fc() { timeout 90 python3 "$PY" "$@" --to "$A" --metrics "$M"; }
check_log "1 MiB request and reply round-trip as fragments (acks, window, last fragment FRAG alone)" \
	"$TMP/t.log" fc roundtrip --size 1048576 --count 3
check_log "a small request with FRAG_OK gets a 5000-byte reply as fragments, without it one datagram" \
	"$TMP/t.log" fc fragok --size 5000 --node 31
check_log "fragments out of order and duplicated: the message still whole" "$TMP/t.log" \
	fc roundtrip --size 1048576 --count 2 --shuffle --dup --seed 7
check_log "a lost fragment fails only its request; freed after --frag-timeout-ms, counted" \
	"$TMP/t.log" fc lost --size 262144 --timeout-ms $TMO
check_log "above --max-message: REPLY too large at once, nothing held; at the limit: acked" \
	"$TMP/t.log" fc toolarge --max $MAXMSG
check_log "malformed fragments (past total, total 0, above 64 MiB, short, first at an offset) counted and ignored" \
	"$TMP/t.log" fc malformed
check_log "a reply never acked: at most the window, then REPLY status 2 after the timeout; others answered" \
	"$TMP/t.log" fc stall --size 1048576 --timeout-ms $TMO
check_log "flood of first fragments from one port: within the budgets, small requests answered" \
	"$TMP/t.log" fc flood --count 1500 --ports 1 --size 1048576 --client-budget $CB --budget $TB \
	--timeout-ms $TMO
check_log "flood of first fragments from eight ports: within the budgets, small requests answered" \
	"$TMP/t.log" fc flood --count 4000 --ports 8 --size 1048576 --client-budget $CB --budget $TB \
	--timeout-ms $TMO

if timeout 10 python3 selftests/e2e/worker_client.py scrape --url "$M" --out "$TMP/w.prom" >"$TMP/t.log" 2>&1 &&
	timeout 10 promtool check metrics <"$TMP/w.prom" >>"$TMP/t.log" 2>&1 &&
	grep -q '^cpn_worker_frag_limit_bytes{.*limit="message"} 2097152' "$TMP/w.prom" &&
	grep -q '^cpn_worker_frag_messages_total{.*direction="reply"} [1-9]' "$TMP/w.prom"; then
	ok "/metrics: the large messages' families, promtool check metrics clean"
else
	not_ok "/metrics: the large messages' families, promtool check metrics clean" "$TMP/t.log" "$TMP/w.prom"
fi

kill -TERM "$wpid"
for _ in $(seq 100); do
	kill -0 "$wpid" 2>/dev/null || break
	sleep 0.1
done
kill -KILL "$wpid" 2>/dev/null
wait "$wpid"
rc=$?
wpid=
if [ "$rc" = 0 ] && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/w.log"; then
	ok "the worker exits 0 on SIGTERM, no sanitizer report ($(basename "$W"))"
else
	not_ok "the worker exits 0 on SIGTERM, no sanitizer report (status $rc)" "$TMP/w.log"
fi
