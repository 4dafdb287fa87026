#!/usr/bin/env bash
# e2e: cpn-worker's freshness, hop key and joins, on 127.0.0.1 with no
# router and no root: selftests/e2e/worker_guard.py writes hop tags with the
# hop key as a router would, and reads LOADs where a router's control port
# would be. The workers are the ASan/UBSan build, so every clean exit is also
# a leak check.
#
# What is proved:
#   - every REPLY, PROBE_ACK, LOAD and fragment ack carries FRESH and a stamp
#     within 2 s of CLOCK_TAI, under the node tag (--key); a PROBE_ACK echoes
#     the PROBE's cookie; a first fragment's ack echoes router_ts and the hop
#     tag, and the rest of the message with both copied is taken; a large
#     reply's CONT fragments carry the request's hop tag;
#   - --hop-key: requests without TAGGED, without or with a wrong hop tag, or
#     tagged for another node get no answer and count unrouted; a routed one
#     is answered; the same routed request again is dropped (replay), steered
#     again it is answered; one stamped 10 s ago is dropped (stale);
#   - --join-key: every LOAD is signed with the join key and carries the join
#     tag over the node's address and port (recomputed here);
#   - bad key options exit 2 with the reason; the workers exit 0 clean.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
W=$BUILD/selftests/e2e/cpn-worker-asan
[ -x "$W" ] || W=$BUILD/cpn-worker
PY=selftests/e2e/worker_guard.py
WC=selftests/e2e/worker_client.py
LO=127.0.0.1
KEY=00112233445566778899aabbccddeeff
HOP=0f1e2d3c4b5a69788796a5b4c3d2e1f0
JOIN=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf

need_cmd python3 timeout
need_file "$W"

TMP=$(mktemp -d /tmp/cpn-worker-guard.XXXXXX)
declare -A wpid=() wrc=()
cleanup() {
	local p
	for p in "${wpid[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

N=7
echo "1..$N"
mapfile -t P < <(python3 "$WC" ports 8)
[ "${#P[@]}" -ge 8 ] || {
	bail_rest "$N" "could not find free ports on 127.0.0.1"
	exit 1
}

start() {
	local name=$1 port=$2
	shift 2
	timeout 120 "$W" --listen "$LO:$port" --kernel echo "$@" >"$TMP/$name.log" 2>&1 &
	wpid[$name]=$!
	timeout 15 python3 "$WC" wait --to "$LO:$port" --seconds 10 >>"$TMP/$name.log" 2>&1
}
stop() {
	local name=$1 p=${wpid[$1]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p"
	wrc[$name]=$?
	unset "wpid[$name]"
}
sanitizer_clean() { ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/$1.log"; }

# ---- 1: bad key options -------------------------------------------------------
bad=0
for args in "--hop-key 00ff" "--join-key xyz" "--freshness-ms 0" \
	"--key $KEY --join-key $JOIN"; do
	# shellcheck disable=SC2086 # word splitting wanted
	timeout 10 "$W" --listen "$LO:${P[0]}" --node-id 1 --router "$LO:${P[1]}" --kernel echo \
		$args >"$TMP/one.log" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -qE 'key|freshness' "$TMP/one.log"; then
		bad=1
		echo "$args: exit $rc" >>"$TMP/args.log"
		head -3 "$TMP/one.log" >>"$TMP/args.log"
	fi
done
if [ "$bad" = 0 ]; then ok "bad --hop-key, --join-key, --freshness-ms: exit 2 with the reason"; else
	not_ok "bad --hop-key, --join-key, --freshness-ms: exit 2 with the reason" "$TMP/args.log"
fi

# ---- 2: reports without a hop key (signed) -----------------------------------------
start plain "${P[2]}" --node-id 4 --router "$LO:${P[3]}" --key "$KEY"
check_log "REPLY, PROBE_ACK, LOAD and acks: FRESH, a current stamp, signed; the PROBE cookie and the hop tag echoed" \
	"$TMP/t2.log" timeout 60 python3 "$PY" reports --to "$LO:${P[2]}" --node-id 4 --router-at "$LO:${P[3]}" \
	--key "$KEY"
stop plain

# ---- 3-5: --hop-key -----------------------------------------------------------------
start guard "${P[4]}" --node-id 5 --router "$LO:${P[5]}" --key "$KEY" --hop-key "$HOP" \
	--metrics "$LO:${P[6]}"
check_log "--hop-key: a routed request and its large message's fragments answered, reports fresh" \
	"$TMP/t3.log" timeout 60 python3 "$PY" reports --to "$LO:${P[4]}" --node-id 5 \
	--router-at "$LO:${P[5]}" --key "$KEY" --hop-key "$HOP"
check_log "--hop-key: untagged, wrong or missing hop tag, another node's: no answer, counted unrouted" \
	"$TMP/t4.log" timeout 60 python3 "$PY" unrouted --to "$LO:${P[4]}" --node-id 5 --hop-key "$HOP" \
	--metrics "http://$LO:${P[6]}/metrics"
check_log "--hop-key: a replay dropped (counted), steered again answered, 10 s old dropped (stale)" \
	"$TMP/t5.log" timeout 60 python3 "$PY" replay --to "$LO:${P[4]}" --node-id 5 --hop-key "$HOP" \
	--metrics "http://$LO:${P[6]}/metrics"
stop guard

# ---- 6: --join-key --------------------------------------------------------------------
start join "${P[7]}" --node-id 6 --router "$LO:${P[1]}" --join-key "$JOIN" --load-interval-ms 20
check_log "--join-key: every LOAD signed with the join key, its join tag verifies for the node's address" \
	"$TMP/t6.log" timeout 60 python3 "$PY" join --at "$LO:${P[1]}" --listen "$LO:${P[7]}" --join-key "$JOIN"
stop join

# ---- 7: clean exits --------------------------------------------------------------------
bad=0
for w in plain guard join; do
	if [ "${wrc[$w]:-x}" != 0 ] || ! sanitizer_clean "$w"; then
		bad=1
		echo "$w: exit ${wrc[$w]:-none}" >>"$TMP/exits.log"
		tail -20 "$TMP/$w.log" >>"$TMP/exits.log"
	fi
done
if [ "$bad" = 0 ]; then ok "every worker exits 0 on SIGTERM with no sanitizer report"; else
	not_ok "every worker exits 0 on SIGTERM with no sanitizer report" "$TMP/exits.log"
fi
