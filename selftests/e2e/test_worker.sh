#!/usr/bin/env bash
# e2e: cpn-worker on its own, on 127.0.0.1: no router, no root. Clients are
# selftests/e2e/worker_client.py (protocol, timing, drain) and
# $BUILD/selftests/e2e/worker_kcheck (kernel results against the reference
# code, tags against cpn_tag_node); UDP sockets of theirs stand in for the
# routers' control ports. The workers are the ASan/UBSan build, so every
# clean exit is also a leak check.
#
# What is proved, each against a bound:
#   - bad arguments exit 2 with the usage; failures at start exit 1 with why;
#   - echo: every request gets exactly one REPLY from the listen address, with
#     its identity echoed, its payload back and the node's load report;
#   - PROBE -> PROBE_ACK at once, router_ts echoed;
#   - LOAD heartbeats reach every router at about --load-interval-ms;
#   - mlp and vsearch replies equal cpn_mlp_ref / cpn_vsearch_ref on the same
#     seeded model; a payload of the wrong size gets status BAD_REQUEST;
#   - batching: a burst of 8 is one full batch of 8 (--max-batch 8), and a lone
#     request waits --max-delay-us for company;
#   - synthetic: a batch sleeps the sum of its requests' times; the mean
#     service time is reported; a busy worker's LOADs show its queue
#     draining, its slot busy (util) and its mean service time;
#   - --key signs REPLY, PROBE_ACK and LOAD; --delay-us holds answers back
#     without counting it in worker_us; a full queue answers BUSY/OVERLOAD;
#   - SIGTERM: DRAINING on replies and LOAD, the queue finished, new requests
#     BUSY/DRAINING, exit 0; SIGINT likewise;
#   - /metrics passes promtool check metrics;
#   - every worker exits 0 with no sanitizer report.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
W=$BUILD/selftests/e2e/cpn-worker-asan
[ -x "$W" ] || W=$BUILD/cpn-worker
KC=$BUILD/selftests/e2e/worker_kcheck
PY=selftests/e2e/worker_client.py
PROMTOOL=${PROMTOOL:-promtool}
LO=127.0.0.1

need_cmd python3 timeout promtool
need_file "$W" "$KC"

TMP=$(mktemp -d /tmp/cpn-worker.XXXXXX)
declare -A wpid=() wrc=()

cleanup() {
	local p
	for p in "${wpid[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for _ in $(seq 30); do
		local alive=0
		for p in "${wpid[@]}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
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

N=21
echo "1..$N"

mapfile -t P < <(python3 "$PY" ports 25)
[ "${#P[@]}" -ge 25 ] || {
	bail_rest "$N" "could not find free ports on 127.0.0.1"
	exit 1
}
SINK=$LO:${P[0]} # a router nobody listens at

# start NAME PORT ARGS...: a worker on $LO:PORT, bounded by timeout, up
# once it answers a PROBE.
start() {
	local name=$1 port=$2
	shift 2
	timeout 120 "$W" --listen "$LO:$port" "$@" >"$TMP/$name.log" 2>&1 &
	wpid[$name]=$!
	timeout 15 python3 "$PY" wait --to "$LO:$port" --seconds 10 >>"$TMP/$name.log" 2>&1
}
# stop NAME [SIGNAL]: signal it, wait at most 10 s; its status in wrc[NAME].
stop() {
	local name=$1 sig=${2:-TERM} p=${wpid[$1]:-}
	[ -n "$p" ] || return 0
	kill -"$sig" "$p" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p"
	wrc[$name]=$?
	unset "wpid[$name]"
}
# reap NAME: wait at most 10 s for it to exit by itself; status in wrc[NAME].
reap() {
	local p=${wpid[$1]:-}
	[ -n "$p" ] || return 0
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p"
	wrc[$1]=$?
	unset "wpid[$1]"
}
sanitizer_clean() { ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/$1.log"; }

# ---- 1-3: arguments and start-up failures ----------------------------------
bad=0
: >"$TMP/args.log"
while IFS= read -r args; do
	# shellcheck disable=SC2086 # word splitting wanted: one case per line
	timeout 10 "$W" $args >"$TMP/one.log" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q '^usage:' "$TMP/one.log"; then
		bad=1
		{
			echo "$W $args: exit $rc (want 2 and the usage)"
			head -3 "$TMP/one.log"
		} >>"$TMP/args.log"
	fi
done <<EOF

--listen $LO:${P[1]} --node-id 1 --router $SINK
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel nope
--listen nowhere --node-id 1 --router $SINK --kernel echo
--listen $LO:0 --node-id 1 --router $SINK --kernel echo
--listen $LO:${P[1]} --node-id 0 --router $SINK --kernel echo
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --max-batch 0
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --capacity 999
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --svc fixed:10
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel synthetic --svc bimodal:1,2
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --key 0011
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --bogus
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel mlp --mlp-dims 8
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel mlp --mlp-model x --mlp-dims 8,8
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel vsearch --backend tpu
--listen [::1]:${P[1]} --node-id 1 --router $SINK --kernel echo
--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --load-interval-ms 0
EOF
if [ "$bad" = 0 ]; then ok "bad arguments: usage, exit 2"; else not_ok "bad arguments: usage, exit 2" "$TMP/args.log"; fi

if timeout 10 "$W" --help >"$TMP/help.log" 2>&1 && grep -q -- '--max-delay-us' "$TMP/help.log"; then
	ok "--help: usage on stdout, exit 0"
else
	not_ok "--help: usage on stdout, exit 0" "$TMP/help.log"
fi

bad=0
: >"$TMP/fail.log"
# --backend cuda fails where the worker finds no libcpn_cuda.so next to it.
cuda_case=""
[ -e "$(dirname "$W")/libcpn_cuda.so" ] ||
	cuda_case="cuda|--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel mlp --backend cuda --mlp-dims 4,4"
while IFS='|' read -r want args; do
	[ -n "$args" ] || continue
	# shellcheck disable=SC2086
	timeout 20 "$W" $args >"$TMP/one.log" 2>&1
	rc=$?
	if [ "$rc" -ne 1 ] || ! grep -q "$want" "$TMP/one.log"; then
		bad=1
		{
			echo "$W $args: exit $rc (want 1 and '$want')"
			cat "$TMP/one.log"
		} >>"$TMP/fail.log"
	fi
done <<EOF
bind 192.0.2.1:${P[1]}|--listen 192.0.2.1:${P[1]} --node-id 1 --router $SINK --kernel echo
$TMP/none.mlp|--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel mlp --mlp-model $TMP/none.mlp
metrics|--listen $LO:${P[1]} --node-id 1 --router $SINK --kernel echo --metrics 192.0.2.1:${P[2]}
$cuda_case
EOF
if [ "$bad" = 0 ]; then ok "start-up failures: the reason, exit 1"; else not_ok "start-up failures: the reason, exit 1" "$TMP/fail.log"; fi

# ---- 4-6: echo worker A, two routers, /metrics ---------------------------
A=$LO:${P[1]} AM=$LO:${P[2]} R1=$LO:${P[3]} R2=$LO:${P[4]}
if ! start A "${P[1]}" --node-id 11 --router "$R1,$R2" --kernel echo --capacity 2 --max-batch 4 \
	--metrics "$AM" --load-interval-ms 50; then
	not_ok "echo worker starts" "$TMP/A.log"
	bail_rest "$N" "skipped: the worker does not start"
	exit 1
fi
check_log "echo: one REPLY per request, identity echoed, payload back, load report" "$TMP/t.log" \
	timeout 30 python3 "$PY" echo --to "$A" --node-id 11 --capacity 2 --count 300
check_log "PROBE -> PROBE_ACK at once, router_ts echoed, load fields" "$TMP/t.log" \
	timeout 30 python3 "$PY" probe --to "$A" --node-id 11 --capacity 2
check_log "LOAD heartbeats reach both routers every ~50 ms with the load fields" "$TMP/t.log" \
	timeout 30 python3 "$PY" heartbeats --at "$R1,$R2" --node-id 11 --capacity 2 \
	--interval-ms 50 --seconds 1.5
# --liveness-ms: with nothing else going to a router, a LOAD only every 300 ms.
L=$LO:${P[23]} RL=$LO:${P[24]}
if start L "${P[23]}" --node-id 12 --router "$RL" --kernel echo --capacity 2 \
	--load-interval-ms 50 --liveness-ms 300; then
	check_log "--liveness-ms 300: LOADs only every ~300 ms to a router nothing else goes to" \
		"$TMP/t.log" timeout 30 python3 "$PY" heartbeats --at "$RL" --node-id 12 --capacity 2 \
		--interval-ms 300 --seconds 2
else
	not_ok "--liveness-ms 300: LOADs only every ~300 ms to a router nothing else goes to" "$TMP/L.log"
fi
stop L

# ---- 7-8: mlp and vsearch against the reference -------------------------------
B=$LO:${P[5]}
if start B "${P[5]}" --node-id 12 --router "$SINK" --kernel mlp --backend cpu \
	--mlp-dims 64,128,32,10 --seed 42 --capacity 2 --max-batch 16 --max-delay-us 300; then
	check_log "mlp: replies equal cpn_mlp_ref; wrong payload size: BAD_REQUEST" "$TMP/t.log" \
		timeout 60 "$KC" kernel --to "$B" --kernel mlp --node-id 12 --capacity 2 \
		--mlp-dims 64,128,32,10 --seed 42 --count 200
else
	not_ok "mlp: replies equal cpn_mlp_ref; wrong payload size: BAD_REQUEST" "$TMP/B.log"
fi
C=$LO:${P[6]}
if start C "${P[6]}" --node-id 13 --router "$SINK" --kernel vsearch --backend cpu \
	--vs-rows 5000 --vs-dim 48 --seed 5 --capacity 1 --max-batch 32; then
	check_log "vsearch: replies equal cpn_vsearch_ref (k 0..100 clamped); BAD_REQUEST" "$TMP/t.log" \
		timeout 60 "$KC" kernel --to "$C" --kernel vsearch --node-id 13 --capacity 1 \
		--vs-rows 5000 --vs-dim 48 --seed 5 --count 120
else
	not_ok "vsearch: replies equal cpn_vsearch_ref (k 0..100 clamped); BAD_REQUEST" "$TMP/C.log"
fi
stop B
stop C

# ---- 9-10: batching ---------------------------------------------------------
D=$LO:${P[7]} DM=$LO:${P[8]}
if start D "${P[7]}" --node-id 14 --router "$SINK" --kernel echo --capacity 1 --max-batch 8 \
	--max-delay-us 2000 --metrics "$DM"; then
	# A sender descheduled for 2 ms splits the burst (busy CI): up to 3 bursts,
	# and one of them must make a full batch; all of them, batches of 8 requests.
	m() { python3 "$PY" metric --file "$TMP/d.prom" --name "$1" ${2:+--label "$2"}; }
	: >"$TMP/t.log"
	for try in 1 2 3; do
		timeout 30 python3 "$PY" burst --to "$D" --count 8 >>"$TMP/t.log" 2>&1
		rc=$?
		timeout 10 python3 "$PY" scrape --url "http://$DM/metrics" --out "$TMP/d.prom" >>"$TMP/t.log" 2>&1
		full=$(($(m cpn_worker_batch_size_bucket le=8) - $(m cpn_worker_batch_size_bucket le=7)))
		count=$(m cpn_worker_batch_size_count)
		sum=$(m cpn_worker_batch_size_sum)
		echo "burst $try: batches=$count requests=$sum full_batches_of_8=$full" >>"$TMP/t.log"
		[ "$rc" = 0 ] && [ "$full" -ge 1 ] && break
	done
	if [ "$rc" = 0 ] && [ "$full" -ge 1 ] && [ "$sum" = $((8 * try)) ] && [ "$count" -ge "$try" ]; then
		ok "batching: a burst of 8 is one batch of 8 (/metrics histogram; burst $try)"
	else
		not_ok "batching: a burst of 8 is one batch of 8 (/metrics histogram)" "$TMP/t.log" "$TMP/d.prom"
	fi
	check_log "batching: a lone request waits --max-delay-us (2000) for its batch" "$TMP/t.log" \
		timeout 30 python3 "$PY" burst --to "$D" --count 1 --min-worker-us 2000
else
	not_ok "batching: a burst of 8 is one batch of 8 (/metrics histogram)" "$TMP/D.log"
	not_ok "batching: a lone request waits --max-delay-us (2000) for its batch"
fi
stop D

# ---- 11-12: synthetic, and LOADs of a busy worker ----------------------------------
S=$LO:${P[9]} RS=$LO:${P[16]}
if start S "${P[9]}" --node-id 19 --router "$RS" --kernel synthetic --svc fixed:5000 \
	--capacity 1 --max-batch 4 --max-delay-us 0 --seed 3 --load-interval-ms 50; then
	# 8 requests of 5 ms on one slot: 40 ms whatever the batches (the sum, not
	# the max), and a mean of 5 ms per request though batches were of 3 or 4.
	if timeout 30 python3 "$PY" burst --to "$S" --count 8 --min-elapsed-ms 39 >"$TMP/t.log" 2>&1 &&
		timeout 30 python3 "$PY" probe --to "$S" --node-id 19 --capacity 1 \
			--svc-min 4500 --svc-max 8000 >>"$TMP/t.log" 2>&1; then
		ok "synthetic: a batch sleeps the sum of its requests' times; mean service time reported"
	else
		not_ok "synthetic: a batch sleeps the sum of its requests' times; mean service time reported" "$TMP/t.log"
	fi
else
	not_ok "synthetic: a batch sleeps the sum of its requests' times; mean service time reported" "$TMP/S.log"
fi
stop S
# Idle tokens: one slot, requests of 2 ms. --tokens idle: only the reply that
# leaves nothing waiting carries one; off: none; adapt (the default): once
# more than a tenth of the arrivals waited, also the reply that leaves one.
TK=$LO:${P[20]} TK0=$LO:${P[21]} TKA=$LO:${P[22]}
tk="--kernel synthetic --svc fixed:2000 --capacity 1 --max-batch 1"
# shellcheck disable=SC2086
if start TK "${P[20]}" --node-id 21 --router "$RS" $tk --tokens idle &&
	start TK0 "${P[21]}" --node-id 22 --router "$RS" $tk --tokens off &&
	start TKA "${P[22]}" --node-id 23 --router "$RS" $tk; then
	if timeout 30 python3 "$PY" tokens --to "$TK" --count 6 >"$TMP/t.log" 2>&1 &&
		timeout 30 python3 "$PY" tokens --to "$TK" --count 1 >>"$TMP/t.log" 2>&1 &&
		timeout 30 python3 "$PY" tokens --to "$TK0" --count 6 --queue -1 >>"$TMP/t.log" 2>&1 &&
		timeout 30 python3 "$PY" tokens --to "$TKA" --count 12 --tokens-last 2 >>"$TMP/t.log" 2>&1; then
		ok "idle tokens: idle, off and adapt mark the replies they should"
	else
		not_ok "idle tokens: idle, off and adapt mark the replies they should" "$TMP/t.log"
	fi
else
	not_ok "idle tokens: idle, off and adapt mark the replies they should" "$TMP/TK.log" "$TMP/TK0.log" "$TMP/TKA.log"
fi
stop TK
stop TK0
stop TKA
S1=$LO:${P[17]}
if start S1 "${P[17]}" --node-id 20 --router "$RS" --kernel synthetic --svc fixed:5000 \
	--capacity 1 --max-batch 1 --load-interval-ms 50; then
	check_log "LOAD of a busy worker: queue draining, inflight 1, util ~255, worker_us the mean" \
		"$TMP/t.log" timeout 30 python3 "$PY" loaded --to "$S1" --router-at "$RS" --count 80 \
		--svc-us 5000 --capacity 1
else
	not_ok "LOAD of a busy worker: queue draining, inflight 1, util ~255, worker_us the mean" "$TMP/S1.log"
fi
stop S1

# ---- 13: --key ------------------------------------------------------------------
KEY=00112233445566778899aabbccddeeff
E=$LO:${P[10]} RE=$LO:${P[11]}
timeout 30 "$KC" loads --at "$RE" --node-id 15 --key "$KEY" --ms 1500 >"$TMP/loads.log" 2>&1 &
lpid=$!
if start E "${P[10]}" --node-id 15 --router "$RE" --kernel echo --key "$KEY" --load-interval-ms 20; then
	timeout 30 "$KC" kernel --to "$E" --kernel echo --node-id 15 --key "$KEY" --count 100 >"$TMP/t.log" 2>&1
	rc=$?
	wait "$lpid"
	lrc=$?
	cat "$TMP/loads.log" >>"$TMP/t.log"
	if [ "$rc" = 0 ] && [ "$lrc" = 0 ]; then
		ok "--key: REPLY, PROBE_ACK and LOAD carry AUTH and cpn_tag_node's tag"
	else
		not_ok "--key: REPLY, PROBE_ACK and LOAD carry AUTH and cpn_tag_node's tag" "$TMP/t.log"
	fi
else
	wait "$lpid"
	not_ok "--key: REPLY, PROBE_ACK and LOAD carry AUTH and cpn_tag_node's tag" "$TMP/E.log"
fi
stop E

# ---- 14: --delay-us -------------------------------------------------------------
F=$LO:${P[12]}
if start F "${P[12]}" --node-id 16 --router "$SINK" --kernel echo --delay-us 30000 --max-delay-us 0; then
	check_log "--delay-us 30000: REPLY and PROBE_ACK held 30 ms, not counted in worker_us" "$TMP/t.log" \
		timeout 30 python3 "$PY" delay --to "$F" --delay-us 30000 --count 5
else
	not_ok "--delay-us 30000: REPLY and PROBE_ACK held 30 ms, not counted in worker_us" "$TMP/F.log"
fi
stop F

# ---- 15: a full queue ---------------------------------------------------------------
G=$LO:${P[13]}
if start G "${P[13]}" --node-id 17 --router "$SINK" --kernel synthetic --svc fixed:100000 \
	--capacity 1 --max-batch 1 --queue 4; then
	check_log "full queue (--queue 4): BUSY status OVERLOAD at once, the rest served" "$TMP/t.log" \
		timeout 30 python3 "$PY" overload --to "$G" --count 20 --queue 4 --timeout 3
else
	not_ok "full queue (--queue 4): BUSY status OVERLOAD at once, the rest served" "$TMP/G.log"
fi
stop G

# ---- 16: SIGTERM --------------------------------------------------------
H=$LO:${P[14]} RH=$LO:${P[15]}
if start H "${P[14]}" --node-id 18 --router "$RH" --kernel synthetic --svc fixed:30000 \
	--capacity 1 --max-batch 1 --load-interval-ms 20; then
	# The signal goes to timeout(1), which passes it on (twice: to the
	# worker and to its process group; the worker takes that as one).
	timeout 30 python3 "$PY" drain --to "$H" --router-at "$RH" --pid "${wpid[H]}" --count 10 \
		--svc-us 30000 --pre-ms 50 --late 5 --timeout 3 >"$TMP/t.log" 2>&1
	rc=$?
	reap H
	echo "worker exit status ${wrc[H]}" >>"$TMP/t.log"
	if [ "$rc" = 0 ] && [ "${wrc[H]}" = 0 ]; then
		ok "SIGTERM: DRAINING on replies and LOAD, queue finished, new requests BUSY/DRAINING, exit 0"
	else
		not_ok "SIGTERM: DRAINING on replies and LOAD, queue finished, new requests BUSY/DRAINING, exit 0" "$TMP/t.log" "$TMP/H.log"
	fi
else
	not_ok "SIGTERM: DRAINING on replies and LOAD, queue finished, new requests BUSY/DRAINING, exit 0" "$TMP/H.log"
fi

# ---- 17: /metrics and promtool ----------------------------------------------------------
families_present() {
	local f
	for f in queue_depth inflight capacity requests_total replies_total busy_total \
		batch_size_bucket service_time_seconds utilization_ratio draining; do
		if ! grep -q "^cpn_worker_$f{node=\"11\",kernel=\"echo\",backend=\"none\"" "$1"; then
			echo "cpn_worker_$f missing"
			return 1
		fi
	done
}
if timeout 10 python3 "$PY" scrape --url "http://$AM/metrics" --out "$TMP/a.prom" >"$TMP/t.log" 2>&1 &&
	timeout 10 "$PROMTOOL" check metrics <"$TMP/a.prom" >>"$TMP/t.log" 2>&1 &&
	families_present "$TMP/a.prom" >>"$TMP/t.log"; then
	ok "/metrics: every family, node/kernel/backend labels, promtool check metrics clean"
else
	not_ok "/metrics: every family, node/kernel/backend labels, promtool check metrics clean" "$TMP/t.log"
fi

# ---- 18: SIGINT -----------------------------------------------------------------------------
stop A INT
if [ "${wrc[A]}" = 0 ] && grep -q 'drained, exiting' "$TMP/A.log"; then
	ok "SIGINT: drains and exits 0"
else
	not_ok "SIGINT: drains and exits 0 (status ${wrc[A]})" "$TMP/A.log"
fi

# ---- 19: every worker's exit ---------------------------------------------------------------
bad=""
for n in B C D S S1 E F G H A; do
	if [ "${wrc[$n]:-unset}" != 0 ] || ! sanitizer_clean "$n"; then
		bad="$bad $n(status ${wrc[$n]:-unset})"
	fi
done
if [ -z "$bad" ]; then
	ok "every worker exited 0 on SIGTERM/SIGINT, no sanitizer report ($(basename "$W"))"
else
	logs=()
	for n in $bad; do logs+=("$TMP/${n%%(*}.log"); done
	not_ok "every worker exited 0 on SIGTERM/SIGINT, no sanitizer report:$bad" "${logs[@]}"
fi
