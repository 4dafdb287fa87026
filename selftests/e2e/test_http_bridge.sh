#!/usr/bin/env bash
# e2e: cpn-worker --kernel http, the bridge to a local HTTP inference server,
# through the XDP router (tools/testbed: a router run by cpnctl, one worker
# namespace). The upstream is selftests/e2e/upstream_http.py, a real HTTP
# server on 127.0.0.1 in the worker's namespace (KServe v2 infer, OpenAI
# completions, a vLLM-style /metrics gauge, a control endpoint); clients are
# the Python binding of libcpn (python/cpn) in the client namespace.
#
# What is proved, each against a bound:
#   - bad options exit 2 with the usage and a message naming the problem;
#   - KServe v2: the upstream's JSON answer (the sum of the input data, the
#     request's id) comes back as the reply, from the bridge's node; a
#     request and a reply larger than a datagram (fragments) too;
#   - capacity 2 x max-batch 2 with a slow upstream: 24 requests all
#     answered, never more than 4 at the upstream at once (its own peak), and
#     4 at once reached;
#   - the upstream answers HTTP 500, answers too late (--upstream-timeout-ms)
#     or is down: REPLY KERNEL_ERROR, and the node keeps serving after each;
#   - load: the upstream's vllm:num_requests_waiting set to 37 shows in the
#     node's queue depth at the router (cpnctl status) within a second, set
#     back to 0 it goes within a second; with the upstream down the value is
#     dropped (failed scrapes);
#   - OpenAI /v1/completions: the upstream's completion comes back, up to
#     20 KB;
#   - SIGTERM: the bridge drains, exits, and logs its counters (with no
#     sanitizer report where the testbed runs the sanitised worker).
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
TB=tools/testbed
ROOT=$(pwd)
PY=/usr/bin/python3
UP=$ROOT/selftests/e2e/upstream_http.py
W=$ROOT/$BUILD/cpn-worker
VIP=10.90.100.1:7470
UPA=127.0.0.1:8000 # the upstream, in the worker's namespace

need_root
need_file "$BUILD/cpnctl" "$W" "$BUILD/libcpn.so.0"
need_cmd ip bpftool nsenter ethtool timeout
[ -x "$PY" ] || fail_all "missing /usr/bin/python3 (Debian package python3): run make deps"
# The sanitised worker where the testbed can run it (every exit a leak check).
[ -x "$ROOT/$BUILD/selftests/e2e/cpn-worker-asan" ] &&
	export TESTBED_WORKER=$ROOT/$BUILD/selftests/e2e/cpn-worker-asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

NAME=hb$(($$ % 100000))
TMP=$(mktemp -d /tmp/cpn-http-bridge.XXXXXX)
STATE=/run/cpn-testbed/$NAME
up_pid=""
cleanup() {
	[ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null
	$TB down --name "$NAME" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=11
echo "1..$N"

# ---- 1: bad options ----------------------------------------------------------
bad=0
: >"$TMP/args.log"
BASE="--listen 127.0.0.1:17470 --node-id 1 --router 127.0.0.1:17471"
while IFS='|' read -r want args; do
	[ -n "$args" ] || continue
	# shellcheck disable=SC2086 # word splitting wanted: one case per line
	timeout 10 "$W" $BASE $args >"$TMP/one.log" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q '^usage:' "$TMP/one.log" || ! grep -qF -- "$want" "$TMP/one.log"; then
		bad=1
		{
			echo "cpn-worker $args: exit $rc (want 2, the usage and '$want')"
			head -3 "$TMP/one.log"
		} >>"$TMP/args.log"
	fi
done <<EOF
--kernel http needs --upstream|--kernel http
not an http:// or https:// URL|--kernel http --upstream ftp://127.0.0.1/x
not an http:// or https:// URL|--kernel http --upstream 127.0.0.1:8000/v1/completions
--upstream: 'http:///v1': no host|--kernel http --upstream http:///v1
--upstream-metrics|--kernel http --upstream http://127.0.0.1:8000/ --upstream-metrics gopher://x
--upstream-gauge wants a Prometheus metric name|--kernel http --upstream http://127.0.0.1:8000/ --upstream-gauge vllm-waiting
--upstream-gauge wants a Prometheus metric name|--kernel http --upstream http://127.0.0.1:8000/ --upstream-gauge 1abc
--upstream-timeout-ms wants|--kernel http --upstream http://127.0.0.1:8000/ --upstream-timeout-ms 0
--upstream-scrape-ms wants|--kernel http --upstream http://127.0.0.1:8000/ --upstream-scrape-ms fast
--upstream-content-type wants a media type|--kernel http --upstream http://127.0.0.1:8000/ --upstream-content-type json
are for --kernel http|--kernel echo --upstream http://127.0.0.1:8000/
takes none of|--kernel http --upstream http://127.0.0.1:8000/ --mlp-dims 4,4
EOF
if [ "$bad" = 0 ]; then
	ok "bad options: a clear message, the usage, exit 2"
else
	not_ok "bad options: a clear message, the usage, exit 2" "$TMP/args.log"
fi

# ---- the testbed: the bridge to KServe v2, capacity 2 x batch 2 ----------------
inc() { # a Python program on stdin, in the client namespace, with the VIP as argv[1]
	timeout 60 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
		CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" PYTHONDONTWRITEBYTECODE=1 "$PY" - "$VIP"
}
upstream_start() {
	nsenter --net="/run/netns/$NAME-w1" "$PY" "$UP" serve --listen "$UPA" >>"$TMP/upstream.log" 2>&1 &
	up_pid=$!
	ctl >/dev/null
}
upstream_stop() {
	[ -n "$up_pid" ] || return 0
	kill "$up_pid" 2>/dev/null
	wait "$up_pid" 2>/dev/null
	up_pid=""
}
ctl() { # KEY=VALUE...: set the upstream's state; prints it
	timeout 20 nsenter --net="/run/netns/$NAME-w1" "$PY" "$UP" ctl --to "$UPA" --seconds 10 "$@"
}
qdepth() { # the node's queue depth as the router knows it
	timeout 10 $TB cpnctl --name "$NAME" status -j 2>/dev/null | "$PY" -c '
import json, sys
print([n for n in json.load(sys.stdin)["nodes"] if n["id"] == 1][0]["queue_depth"])' 2>/dev/null
}
# depth_becomes WANT MAX_S: 0 and the seconds it took, once the router's view
# of node 1's queue depth is WANT; 1 after MAX_S seconds.
depth_becomes() {
	local t0 d
	t0=$(date +%s.%N)
	while :; do
		d=$(qdepth)
		if [ "${d:-x}" = "$1" ]; then
			"$PY" -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" \
				"$t0" "$(date +%s.%N)"
			return 0
		fi
		"$PY" -c "import sys; sys.exit(float(sys.argv[2]) - float(sys.argv[1]) < float(sys.argv[3]))" \
			"$t0" "$(date +%s.%N)" "$2" && {
			echo "queue depth $d, not $1, after $2 s"
			return 1
		}
		sleep 0.05
	done
}

BRIDGE="--kernel http --upstream http://$UPA/v2/models/m/infer --upstream-metrics http://$UPA/metrics"
BRIDGE="$BRIDGE --upstream-scrape-ms 100 --upstream-timeout-ms 1500 --capacity 2 --max-batch 2"
BRIDGE="$BRIDGE --max-delay-us 2000"
if ! timeout 90 $TB up --name "$NAME" --worker "$BRIDGE" >"$TMP/up.log" 2>&1; then
	bail_rest "$N" "testbed up failed"
	sed 's/^/# /' "$TMP/up.log"
	exit 1
fi
upstream_start >"$TMP/ctl.log" 2>&1 || {
	bail_rest "$N" "the upstream does not start"
	sed 's/^/# /' "$TMP/ctl.log" "$TMP/upstream.log"
	exit 1
}

# ---- 2-3: KServe v2 through the router ---------------------------------------
inc >"$TMP/kserve.log" 2>&1 <<'PYEOF'
import json, random, sys
import cpn
rng = random.Random(7)
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    for i in range(30):
        data = [rng.randint(-1000, 1000) for _ in range(rng.randint(1, 50))]
        req = {"id": "r%d" % i, "inputs": [{"name": "x", "shape": [len(data)],
                                            "datatype": "INT64", "data": data}]}
        rep = json.loads(c.call(json.dumps(req).encode(), timeout=5))
        out = {o["name"]: o["data"] for o in rep["outputs"]}
        assert rep["model_name"] == "m" and rep["id"] == "r%d" % i, rep
        assert out["sum"] == [float(sum(data))], (out, sum(data))
    print("30 KServe v2 requests: sums and ids right", c.stats()["replies"])
PYEOF
check "kserve_v2_infer_answered_through_the_router" "$TMP/kserve.log" \
	grep -q '^30 KServe v2 requests: sums and ids right' "$TMP/kserve.log"

inc >"$TMP/large.log" 2>&1 <<'PYEOF'
import json, sys
import cpn
data = list(range(20000))
req = json.dumps({"inputs": [{"name": "x", "shape": [len(data)], "datatype": "INT64",
                              "data": data}]}).encode()
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    raw = c.call(req, timeout=10)
    rep = json.loads(raw)
    out = {o["name"]: o["data"] for o in rep["outputs"]}
    assert out["sum"] == [float(sum(data))] and out["echo"] == [float(x) for x in data]
    st = c.stats()
    assert st["tx_fragments"] > 1 and st["rx_fragments"] > 1, st
    print("request %d bytes, reply %d bytes, both as fragments: right" % (len(req), len(raw)))
PYEOF
check "a_request_and_a_reply_larger_than_a_datagram_through_the_bridge" "$TMP/large.log" \
	grep -q 'both as fragments: right' "$TMP/large.log"

# ---- 4: concurrency: capacity 2 x max-batch 2 ------------------------------------
ctl delay_ms=300 peak=0 >"$TMP/conc.log" 2>&1
inc >>"$TMP/conc.log" 2>&1 <<'PYEOF'
import json, sys, time
import cpn
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    pay = [json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64",
                                   "data": [i]}]}).encode() for i in range(24)]
    t = time.time()
    res = c.call_many(pay, timeout=15, window=24)
    dt = time.time() - t
    bad = [r for r in res if r.error is not None or
           json.loads(r.reply)["outputs"][0]["data"] != [float(r.user)]]
    print("24 requests in %.2f s, %d bad" % (dt, len(bad)))
    assert not bad, [(r.user, r.error) for r in bad[:3]]
PYEOF
ctl delay_ms=0 >"$TMP/conc.state" 2>>"$TMP/conc.log"
cat "$TMP/conc.state" >>"$TMP/conc.log"
peak=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak"])' "$TMP/conc.state" 2>/dev/null)
echo "# slow upstream (300 ms), capacity 2 x max-batch 2: peak ${peak:-?} at the upstream"
if grep -q '^24 requests in .* 0 bad' "$TMP/conc.log" && [ "${peak:-0}" = 4 ]; then
	ok "capacity_x_max_batch_bounds_the_upstream_all_answered"
else
	not_ok "capacity_x_max_batch_bounds_the_upstream_all_answered" "peak ${peak:-?}, want 4" \
		"$TMP/conc.log"
fi

# ---- 5-6: HTTP 500 and timeouts: KERNEL_ERROR, then served again -------------------
# expect_error.py: a request answered KERNEL_ERROR within MAX_S, then (after
# the upstream is set right by the caller) one answered right.
cat >"$TMP/expect.py" <<'PYEOF'
import json, sys, time
import cpn
vip, mode, max_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
req = json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "INT64",
                              "data": [20, 22]}]}).encode()
with cpn.Client(vip, service=1, tenant=42) as c:
    if mode == "error":
        t = time.time()
        try:
            c.call(req, timeout=10)
            sys.exit("answered OK")
        except cpn.RemoteError as e:
            dt = time.time() - t
            assert e.remote == 2 and e.node == 1, (e.remote, e.node)
            assert dt < max_s, dt
            print("KERNEL_ERROR from node 1 in %.2f s" % dt)
    else:
        rep = json.loads(c.call(req, timeout=5))
        assert rep["outputs"][0]["data"] == [42.0], rep
        print("served again")
PYEOF
ine() { # mode max_s
	timeout 60 $TB exec --name "$NAME" client -- env PYTHONPATH="$ROOT/python" \
		CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" PYTHONDONTWRITEBYTECODE=1 "$PY" "$TMP/expect.py" \
		"$VIP" "$@"
}
{
	ctl fail=true && ine error 3 && ctl fail=false && ine ok 0
} >"$TMP/fail.log" 2>&1
check "upstream_http_500_is_a_kernel_error_and_the_node_keeps_serving" "$TMP/fail.log" \
	grep -q '^served again' "$TMP/fail.log"
{
	ctl delay_ms=3000 && ine error 2.9 && ctl delay_ms=0 && ine ok 0
} >"$TMP/timeout.log" 2>&1
check "upstream_timeout_is_a_kernel_error_and_the_node_keeps_serving" "$TMP/timeout.log" \
	grep -q '^served again' "$TMP/timeout.log"

# ---- 7-8: the upstream's backlog in the node's load ---------------------------------
{
	ctl waiting=37 && depth_becomes 37 5
} >"$TMP/load37.log" 2>&1
t37=$(tail -1 "$TMP/load37.log")
{
	ctl waiting=0 && depth_becomes 0 5
} >"$TMP/load0.log" 2>&1
t0=$(tail -1 "$TMP/load0.log")
echo "# upstream gauge 37 seen at the router after ${t37} s, 0 after ${t0} s"
within1() { "$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) <= 1.0)' "$1" 2>/dev/null; }
if within1 "$t37"; then
	ok "upstream_gauge_37_in_the_routers_queue_depth_within_1s"
else
	not_ok "upstream_gauge_37_in_the_routers_queue_depth_within_1s" "$TMP/load37.log"
fi
if within1 "$t0"; then
	ok "upstream_gauge_back_to_0_within_1s"
else
	not_ok "upstream_gauge_back_to_0_within_1s" "$TMP/load0.log"
fi

# ---- 9: the upstream down: KERNEL_ERROR, its gauge dropped; back: served ------------
{
	ctl waiting=37 && depth_becomes 37 5 && upstream_stop && echo "upstream stopped" &&
		ine error 2 && depth_becomes 0 2 && upstream_start && ctl waiting=37 && ine ok 0 &&
		depth_becomes 37 5
} >"$TMP/down.log" 2>&1
ctl waiting=0 >/dev/null 2>&1
check "upstream_down_is_a_kernel_error_its_gauge_dropped_then_served_again" "$TMP/down.log" \
	bash -c "grep -q '^served again' '$TMP/down.log' && [ \$(grep -c '^[0-9.]*\$' '$TMP/down.log') = 3 ]"

# ---- 10: SIGTERM: drained, the counters logged --------------------------------------
wpid=$(cat "$STATE/w1.pid" 2>/dev/null)
[ -n "$wpid" ] && kill -TERM "$wpid" 2>/dev/null
for _ in $(seq 100); do
	kill -0 "$wpid" 2>/dev/null || break
	sleep 0.1
done
cp "$STATE/w1.log" "$TMP/w1.log" 2>/dev/null
echo "# $(grep 'http bridge to' "$TMP/w1.log")"
if ! kill -0 "$wpid" 2>/dev/null && grep -q 'drained, exiting' "$TMP/w1.log" &&
	grep -qE 'http bridge to http://127.0.0.1:8000: [0-9]+ requests: [0-9]+ ok, [1-9][0-9]* HTTP errors, [1-9][0-9]* connection errors, [1-9][0-9]* timeouts' "$TMP/w1.log" &&
	! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/w1.log"; then
	ok "sigterm_drains_the_bridge_and_logs_its_counters"
else
	not_ok "sigterm_drains_the_bridge_and_logs_its_counters" "$TMP/w1.log"
fi
upstream_stop

# ---- 11: the bridge to OpenAI /v1/completions -------------------------------------
OAI="--kernel http --upstream http://$UPA/v1/completions --capacity 1 --max-batch 4"
if timeout 90 $TB up --name "$NAME" --worker "$OAI" >"$TMP/up2.log" 2>&1 &&
	upstream_start >"$TMP/ctl2.log" 2>&1; then
	inc >"$TMP/oai.log" 2>&1 <<'PYEOF'
import json, sys
import cpn
# Replies of 100 B to 20 KB: one datagram, or fragments below the MTU.
prompts = ["Say this is a test", "cpn steers requests in the network", "x" * 500, "ünïcødé",
           "y" * 3000, "token " * 3300]
with cpn.Client(sys.argv[1], service=1, tenant=42) as c:
    res = c.call_many([json.dumps({"model": "m", "prompt": p, "max_tokens": 16}).encode()
                       for p in prompts], timeout=10)
    for r in res:
        assert r.error is None, r.error
        rep = json.loads(r.reply)
        assert rep["object"] == "text_completion", rep
        assert rep["choices"][0]["text"] == prompts[r.user].upper()[::-1], rep
    print("%d OpenAI completions right" % len(res))
PYEOF
	check "openai_completions_answered_through_the_router" "$TMP/oai.log" \
		grep -q '^6 OpenAI completions right' "$TMP/oai.log"
else
	not_ok "openai_completions_answered_through_the_router" "$TMP/up2.log" "$TMP/ctl2.log"
fi
tap_ran "$N"
