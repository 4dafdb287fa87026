#!/usr/bin/env bash
# e2e: cpnctl's etcd client against a real etcd and against answers no etcd
# gives. Everything runs in a network namespace of its own (its loopback):
# a real etcd (a data directory of its own) on 127.0.0.1:2379, and a stand-in
# on 127.0.0.1:2381 that answers every call of the JSON gateway wrongly, a
# different way under each path prefix (http://127.0.0.1:2381/MODE is an
# endpoint whose calls go to /MODE/v3/...). cpnctl runs as cpnctl-asan
# (ASan, UBSan). What is checked:
#   1. against the real etcd: apply, status and a daemon work, also with a
#      dead endpoint first in the list (the next one is used);
#   2. every malformed answer (not JSON, too deep, too large, fields of the
#      wrong type, keys and values that are not base64, negative revisions,
#      HTTP errors with control characters, a connection cut short, an
#      answer that never comes) makes status and apply fail with exit 1 and
#      a message naming the endpoint, within their time bound, with no crash
#      and no sanitizer report, and publishes nothing;
#   3. a daemon fed each malformed answer, including watch streams that
#      carry junk, a cancel or a message larger than the cap, says what is
#      wrong once, keeps the router as it was, keeps retrying, and stops
#      cleanly on SIGTERM.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
CPNCTL=$(pwd)/$BUILD/cpnctl
CTLSAN=$(pwd)/$BUILD/selftests/e2e/cpnctl-asan

need_root
need_cmd ip timeout nsenter mountpoint etcd etcdctl python3
need_file "$CPNCTL" "$CTLSAN"

NS=cpn-etc-$$
PIN=/sys/fs/bpf/cpn-etc-$$
TMP=$(mktemp -d /tmp/cpn-etcd-client.XXXXXX)
STATE=$TMP/state
REAL=http://127.0.0.1:2379
FAKE=http://127.0.0.1:2381
etcd_pid="" fake_pid="" dpid=""
log=$TMP/log
: >"$log"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cleanup() {
	local p
	for p in $dpid $fake_pid $etcd_pid; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.3
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	for p in $dpid $fake_pid $etcd_pid; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -e "$PIN" ] && timeout 20 nsenter --net="/run/netns/$NS" "$CPNCTL" --pin-dir "$PIN" \
		--state-dir "$STATE" down >/dev/null 2>&1
	rm -rf "$PIN"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=3
echo "1..$N"
run() { "$@" >>"$log" 2>&1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
in_ns() { timeout 20 nsenter --net="/run/netns/$NS" "$@"; }
bg_ns() { # seconds, command...: only with '&'
	local secs=$1
	shift
	exec timeout --foreground "$secs" nsenter --net="/run/netns/$NS" "$@"
}
sctl() { in_ns "$CTLSAN" --pin-dir "$PIN" --state-dir "$STATE" "$@"; }
until_ms() {
	local end=$(($(now_ms) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.02
	done
}
sanitizer_ok() { ! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:|AddressSanitizer" "$@"; }

cat >"$TMP/cpn.yaml" <<'EOF'
services:
  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, nodes: [1]}
nodes:
  - {id: 1, addr: "10.1.0.2:7470"}
tenants:
  - {id: 42, services: [resnet]}
EOF

# The stand-in: HTTP/1.0, one answer per connection, the mode from the path.
cat >"$TMP/fake.py" <<'PY'
import http.server, socketserver, sys, time

OK = {
    "kv/range": b'{"header":{"revision":"5"}}',
    "kv/txn": b'{"header":{"revision":"6"},"succeeded":true}',
    "kv/put": b'{"header":{"revision":"6"}}',
    "lease/grant": b'{"header":{"revision":"5"},"ID":"7","TTL":"5"}',
    "lease/keepalive": b'{"result":{"header":{"revision":"5"},"ID":"7","TTL":"5"}}\n',
}
CREATED = b'{"result":{"header":{"revision":"5"},"created":true}}\n'

def answer(mode, op):
    """(status, body) or a callable that writes to the socket itself"""
    if mode == "notjson":
        return 200, b"<html>hello</html>"
    if mode == "http500":
        return 500, b"internal error \x01\x02\x1b[2J here"
    if mode == "errjson":
        return 400, b'{"error":"bad\\u0000thing\\u001b[31m","message":"x\\u001b[2Jy\\n","code":3}'
    if mode == "deep":
        return 200, b"[" * 200000
    if mode == "huge":
        return 200, b'{"header":{"revision":"1"},"x":"' + b"a" * (65 << 20) + b'"}'
    if mode == "types":
        return 200, {
            "kv/range": b'{"header":{"revision":{}},"kvs":"no"}',
            "kv/txn": b'{"header":{"revision":"12x"},"succeeded":"yes"}',
            "lease/grant": b'{"header":{"revision":"1"},"ID":1.5,"TTL":"-3"}',
        }.get(op, b'{"header":[1,2]}')
    if mode == "badb64":
        return 200, {
            "kv/range": b'{"header":{"revision":"5"},"kvs":[{"key":"!!!!","value":"a"}]}',
            "kv/txn": b'{"header":{"revision":"6"},"succeeded":true,"responses":[{"response_range":{"kvs":[{"key":"L2Nwbg=","value":"%%%%"}]}}]}',
        }.get(op, OK.get(op, b"{}"))
    if mode == "negative":
        return 200, b'{"header":{"revision":"-5"},"kvs":[{"key":"L2Nwbi9kZWZhdWx0L2NvbmZpZw==","mod_revision":"-1"}]}'
    if mode == "bignum":
        return 200, b'{"header":{"revision":"99999999999999999999999"}}'
    if mode == "empty":
        return 200, b""
    if mode == "slow":
        time.sleep(8)
        return 200, OK.get(op, b"{}")
    if mode == "truncated":
        return "truncated"
    if mode.startswith("watch"):
        if op != "watch":
            return 200, OK.get(op, b"{}")
        if mode == "watchjunk":
            return 200, CREATED + b"garbage\n"
        if mode == "watchcancel":
            return 200, CREATED + b'{"result":{"header":{"revision":"5"},"canceled":true,"cancel_reason":"no\\u0007reason\\u001b[2J"}}\n'
        if mode == "watchbadevent":
            return 200, CREATED + b'{"result":{"header":{"revision":"6"},"events":[{"type":"WHAT","kv":{"key":"L2Nwbg=="}}]}}\n'
        if mode == "watchbadkey":
            return 200, CREATED + b'{"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"%%%%","mod_revision":"6"}}]}}\n'
        if mode == "watchhuge":
            return 200, CREATED + b"{" + b" " * (65 << 20)
        if mode == "watchclose":
            return 200, CREATED
    return 404, b"no such mode"

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        parts = self.path.strip("/").split("/", 2)
        mode, op = parts[0], parts[2] if len(parts) == 3 else ""
        a = answer(mode, op)
        if a == "truncated":
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n{\"header\":")
            self.wfile.flush()
            return
        status, body = a
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if not (mode.startswith("watch") and op == "watch"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

mountpoint -q /sys/fs/bpf || run mount -t bpf bpf /sys/fs/bpf
run ip netns add "$NS" && run ip -n "$NS" link set lo up || {
	bail_rest "$N" "no namespace: $(cat "$log")"
	exit 1
}
bg_ns 200 etcd --name c1 --data-dir "$TMP/etcd" --listen-client-urls "$REAL" \
	--advertise-client-urls "$REAL" --listen-peer-urls http://127.0.0.1:2380 \
	--initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster c1=http://127.0.0.1:2380 >"$TMP/etcd.log" 2>&1 &
etcd_pid=$!
bg_ns 200 python3 "$TMP/fake.py" 2381 >"$TMP/fake.log" 2>&1 &
fake_pid=$!
healthy() { in_ns env ETCDCTL_API=3 etcdctl --endpoints "$REAL" endpoint health >/dev/null 2>&1; }
fake_up() { in_ns python3 -c "import socket; socket.create_connection(('127.0.0.1', 2381), 1)" 2>/dev/null; }
if ! until_ms 10000 healthy || ! until_ms 5000 fake_up || ! run sctl up; then
	bail_rest "$N" "etcd, the stand-in or the router did not start: $(tail -n 5 "$TMP/etcd.log" "$TMP/fake.log" "$log")"
	exit 1
fi

# ---- 1. the real etcd, with a dead endpoint first ----------------------------------
fails=()
sctl apply --etcd "http://127.0.0.1:1,$REAL" --config "$TMP/cpn.yaml" >"$TMP/apply.out" 2>&1 ||
	fails+=("apply with a dead endpoint first: $(cat "$TMP/apply.out")")
rev=$(sed -n 's/.*: revision \([0-9]*\)$/\1/p' "$TMP/apply.out")
bg_ns 60 "$CTLSAN" --pin-dir "$PIN" --state-dir "$STATE" daemon --etcd "http://127.0.0.1:1,$REAL" \
	--router-name c1 --lease-ttl 3 >"$TMP/daemon.real" 2>&1 &
dpid=$!
current() {
	sctl status --etcd "$REAL" -j 2>>"$log" | python3 -c "
import json, sys
e = json.load(sys.stdin)['etcd']
sys.exit(not (e['config_revision'] == $rev and e['local']['revision'] == $rev and
              [(r['name'], r['current']) for r in e['routers']] == [('c1', True)]))" 2>>"$log"
}
until_ms 5000 current || fails+=("the daemon did not run revision ${rev:-?}: $(sctl status --etcd "$REAL" 2>&1 | head -5)")
kill -TERM "$dpid"
wait "$dpid"
drc=$?
dpid=""
[ "$drc" = 0 ] || fails+=("the daemon exited $drc on SIGTERM")
sanitizer_ok "$TMP/apply.out" "$TMP/daemon.real" "$log" || fails+=("sanitizer: $(grep -m3 -E "Sanitizer|runtime error" "$TMP/daemon.real" "$TMP/apply.out" "$log")")
if [ ${#fails[@]} -eq 0 ]; then
	ok "apply_status_and_daemon_work_against_a_real_etcd_past_a_dead_endpoint"
	echo "# $(cat "$TMP/apply.out"); daemon: $(grep -m1 following "$TMP/daemon.real" | sed 's/^cpnctl daemon: //')"
else
	not_ok "apply_status_and_daemon_work_against_a_real_etcd_past_a_dead_endpoint" "${fails[@]}" "$TMP/daemon.real"
fi
real_rev=$(in_ns env ETCDCTL_API=3 etcdctl --endpoints "$REAL" get /cpn/default/config -w json 2>>"$log" |
	python3 -c "import json,sys; print(json.load(sys.stdin)['kvs'][0]['mod_revision'])" 2>>"$log")

# ---- 2. malformed answers: status and apply fail clearly, in time ------------------
MODES="notjson http500 errjson deep huge types badb64 negative bignum empty slow truncated"
fails=()
for m in $MODES; do
	for cmd in status apply; do
		out=$TMP/$cmd.$m
		t0=$(now_ms)
		if [ "$cmd" = status ]; then
			sctl status --etcd "$FAKE/$m" >"$out" 2>&1
		else
			sctl apply --etcd "$FAKE/$m" --config "$TMP/cpn.yaml" >"$out" 2>&1
		fi
		rc=$?
		took=$(($(now_ms) - t0))
		msg=$(grep -m1 "^cpnctl: " "$out")
		if [ "$rc" != 1 ] || ! grep -q "^cpnctl: .*etcd http://127.0.0.1:2381/$m/v3/" "$out"; then
			fails+=("$cmd $m: exit $rc, in $took ms: $(head -c 300 "$out")")
		elif [ "$took" -gt 4000 ]; then
			fails+=("$cmd $m: took $took ms, past the 2 s bound of a call")
		elif grep -q "$(printf '\033')" "$out"; then
			fails+=("$cmd $m: a control character from the server reached the terminal")
		fi
		sanitizer_ok "$out" || fails+=("$cmd $m: sanitizer: $(grep -m3 -E "Sanitizer|runtime error" "$out")")
		[ "$cmd" = status ] && [ "$m" = slow -o "$m" = deep -o "$m" = types -o "$m" = badb64 ] &&
			echo "# status, $m: exit $rc in $took ms: ${msg:0:200}"
	done
done
after=$(in_ns env ETCDCTL_API=3 etcdctl --endpoints "$REAL" get /cpn/default/config -w json 2>>"$log" |
	python3 -c "import json,sys; print(json.load(sys.stdin)['kvs'][0]['mod_revision'])" 2>>"$log")
[ "$after" = "$real_rev" ] || fails+=("the real etcd changed: config revision $real_rev -> $after")
if [ ${#fails[@]} -eq 0 ]; then
	ok "malformed_answers_fail_status_and_apply_clearly_within_the_bound_and_nothing_crashes"
else
	not_ok "malformed_answers_fail_status_and_apply_clearly_within_the_bound_and_nothing_crashes" "${fails[@]}"
fi

# ---- 3. a daemon fed malformed answers --------------------------------------------
state_before=$(cat "$STATE"/*.yaml 2>/dev/null | md5sum)
fails=()
for m in notjson deep huge types badb64 negative truncated watchjunk watchcancel watchbadevent \
	watchbadkey watchhuge watchclose; do
	dlog=$TMP/daemon.$m
	bg_ns 30 "$CTLSAN" --pin-dir "$PIN" --state-dir "$STATE" daemon --etcd "$FAKE/$m" \
		--router-name "c-$m" --lease-ttl 5 >"$dlog" 2>&1 &
	dpid=$!
	if ! until_ms 6000 grep -q "etcd \(unreachable\|failed\): " "$dlog"; then
		fails+=("daemon, $m: said nothing within 6 s: $(tail -3 "$dlog")")
	else
		sleep 1 # retrying meanwhile
		kill -0 "$dpid" 2>/dev/null || fails+=("daemon, $m: died: $(tail -5 "$dlog")")
		[ "$(grep -c "etcd \(unreachable\|failed\): " "$dlog")" = 1 ] ||
			fails+=("daemon, $m: said it more than once in a few seconds")
		grep -q "$(printf '\033')" "$dlog" && fails+=("daemon, $m: a control character in its log")
	fi
	kill -TERM "$dpid" 2>/dev/null
	wait "$dpid"
	drc=$?
	dpid=""
	[ "$drc" = 0 ] || fails+=("daemon, $m: exit $drc on SIGTERM: $(tail -5 "$dlog")")
	sanitizer_ok "$dlog" || fails+=("daemon, $m: sanitizer: $(grep -m3 -E "Sanitizer|runtime error" "$dlog")")
	case $m in deep | types | watchjunk | watchcancel | watchhuge)
		echo "# daemon, $m: $(grep -m1 "etcd \(unreachable\|failed\)" "$dlog" | sed 's/^cpnctl daemon: //' | cut -c1-220)"
		;;
	esac
done
[ "$(cat "$STATE"/*.yaml 2>/dev/null | md5sum)" = "$state_before" ] ||
	fails+=("the router's desired state changed")
if [ ${#fails[@]} -eq 0 ]; then
	ok "a_daemon_fed_malformed_answers_says_so_once_keeps_the_router_and_stops_cleanly"
else
	not_ok "a_daemon_fed_malformed_answers_says_so_once_keeps_the_router_and_stops_cleanly" "${fails[@]}"
fi
tap_ran "$N"
