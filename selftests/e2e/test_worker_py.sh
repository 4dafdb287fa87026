#!/usr/bin/env bash
# e2e: applications of the worker library (cpn/worker.h) on 127.0.0.1, no
# router, no root: a Python model server (python/cpn/worker.py over
# libcpn.so.0, Debian's python3), examples/worker.py and the C example
# $BUILD/examples/worker. Clients are raw UDP (selftests/e2e/worker_py_check.py);
# a UDP socket of theirs stands in for the router's control port.
#
# What is proved, each against a bound:
#   - the Python callback's answers come back, one REPLY per request;
#   - concurrent requests are batched (a batch larger than 1 is seen);
#   - an exception in the callback answers its batch with status 2 and the
#     worker goes on;
#   - queue_extra is counted in the LOADs' queue_depth;
#   - SIGTERM drains: the queue answered, the last LOAD says DRAINING, exit 0;
#   - a bad option is a ValueError naming it;
#   - examples/worker.py and examples/worker.c answer and drain.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
PYTHON=/usr/bin/python3
CHK=selftests/e2e/worker_py_check.py
EX=$BUILD/examples/worker
LO=127.0.0.1

need_cmd timeout
[ -x "$PYTHON" ] || fail_all "missing $PYTHON (Debian package python3): run make deps"
need_file "$BUILD/libcpn.so.0" "$EX"
export PYTHONPATH=python CPN_LIBRARY=$BUILD/libcpn.so.0 PYTHONDONTWRITEBYTECODE=1

TMP=$(mktemp -d /tmp/cpn-worker-py.XXXXXX)
declare -A wpid=() wrc=()
cleanup() {
	local p
	for p in "${wpid[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${wpid[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=9
echo "1..$N"
mapfile -t P < <($PYTHON selftests/e2e/worker_client.py ports 8)
[ "${#P[@]}" -ge 8 ] || {
	bail_rest "$N" "could not find free ports on 127.0.0.1"
	exit 1
}

# start NAME PORT CMD...: up once it answers a PROBE.
start() {
	local name=$1 port=$2
	shift 2
	timeout 120 "$@" >"$TMP/$name.log" 2>&1 &
	wpid[$name]=$!
	timeout 15 $PYTHON selftests/e2e/worker_client.py wait --to "$LO:$port" --seconds 10 \
		>>"$TMP/$name.log" 2>&1
}
# stop NAME: SIGTERM, at most 10 s; the status in wrc[NAME].
stop() {
	local p=${wpid[$1]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	reap "$1"
}
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

cat >"$TMP/pyw.py" <<'EOF'
import sys
import time

import cpn

listen, router = sys.argv[1:3]


def model(batch):
    if any(p == b"raise" for p in batch):
        raise RuntimeError("asked to raise")
    time.sleep(0.003)  # the model's time: requests queue behind it
    return [p + bytes([len(batch)]) for p in batch]


w = cpn.Worker(listen=listen, routers=[router], node_id=41, max_batch=16, max_delay_us=2000,
               capacity=1, kernel="pytest", queue_extra=lambda: 7)
sys.exit(w.serve(model))
EOF

A=$LO:${P[0]} R=$LO:${P[1]}
if ! start py "${P[0]}" $PYTHON "$TMP/pyw.py" "$A" "$R"; then
	not_ok "the Python worker starts" "$TMP/py.log"
	bail_rest "$N" "skipped: the Python worker does not start"
	exit 1
fi
check_log "Python worker: the callback's answers, one REPLY per request" "$TMP/t.log" \
	timeout 30 $PYTHON $CHK answers --to "$A" --count 50 --expect tagged
check_log "Python worker: 64 concurrent requests, batches larger than 1" "$TMP/t.log" \
	timeout 30 $PYTHON $CHK batch --to "$A" --count 64
if timeout 30 $PYTHON $CHK error --to "$A" >"$TMP/t.log" 2>&1 &&
	grep -q "RuntimeError: asked to raise" "$TMP/py.log"; then
	ok "Python worker: an exception answers its batch status 2 (logged), the next is served"
else
	not_ok "Python worker: an exception answers its batch status 2 (logged), the next is served" \
		"$TMP/t.log" "$TMP/py.log"
fi
check_log "Python worker: queue_extra (7) counted in every LOAD's queue_depth" "$TMP/t.log" \
	timeout 30 $PYTHON $CHK loads --at "$R" --queue-depth 7 --seconds 1
timeout 30 $PYTHON $CHK drain --to "$A" --at "$R" --pid "${wpid[py]}" --count 40 >"$TMP/t.log" 2>&1
rc=$?
reap py
if [ "$rc" = 0 ] && [ "${wrc[py]}" = 0 ] && grep -q "draining" "$TMP/py.log"; then
	ok "Python worker: SIGTERM drains (queue answered, last LOAD DRAINING), exit 0"
else
	not_ok "Python worker: SIGTERM drains (queue answered, last LOAD DRAINING), exit 0 (status ${wrc[py]})" \
		"$TMP/t.log" "$TMP/py.log"
fi

if ! timeout 20 $PYTHON -c 'import cpn; cpn.Worker(listen="127.0.0.1:1", routers=["127.0.0.1:2"], node_id=1, max_batch=0)' \
	>"$TMP/t.log" 2>&1 && grep -q "ValueError: cpn.Worker: max-batch wants an integer" "$TMP/t.log"; then
	ok "Python worker: a bad option is a ValueError naming it"
else
	not_ok "Python worker: a bad option is a ValueError naming it" "$TMP/t.log"
fi

# ---- the examples ---------------------------------------------------------------
B=$LO:${P[2]} C=$LO:${P[4]}
if start expy "${P[2]}" $PYTHON examples/worker.py --listen "$B" --router "$LO:${P[3]}" --node-id 42; then
	check_log "examples/worker.py: payloads reversed" "$TMP/t.log" \
		timeout 30 $PYTHON $CHK answers --to "$B" --count 20 --expect reverse
else
	not_ok "examples/worker.py: payloads reversed" "$TMP/expy.log"
fi
stop expy
if start exc "${P[4]}" "$EX" "$C" "$LO:${P[5]}" 43; then
	check_log "examples/worker.c: the sums of the payloads' bytes" "$TMP/t.log" \
		timeout 30 $PYTHON $CHK answers --to "$C" --count 20 --expect sum
else
	not_ok "examples/worker.c: the sums of the payloads' bytes" "$TMP/exc.log"
fi
stop exc
if [ "${wrc[expy]:-x}" = 0 ] && [ "${wrc[exc]:-x}" = 0 ]; then
	ok "the examples drain on SIGTERM and exit 0"
else
	not_ok "the examples drain on SIGTERM and exit 0 (${wrc[expy]:-x}, ${wrc[exc]:-x})" \
		"$TMP/expy.log" "$TMP/exc.log"
fi
