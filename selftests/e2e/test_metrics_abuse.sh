#!/usr/bin/env bash
# e2e: /metrics under a slowloris attack, for the three servers that share
# libcpn's HTTP server: cpn-worker on 127.0.0.1 (the ASan/UBSan build), and
# the cpnctl daemon and cpn-fwd of a testbed (--plane dpdk: both run in the
# router namespace, on 127.0.0.1:9470 and :9471).
#
# The attack: 1000 TCP connections from one source address, each sending a
# partial request line and then one byte every 2 s (less than the server's
# idle timeout, so that only the per-address limit stops them), a closed one
# opened again at once. Meanwhile 20 scrapes from another address.
#
# What is proved, each against a bound:
#   - attack from 127.0.0.2, scrapes from 127.0.0.1: every scrape of the
#     worker, the daemon and cpn-fwd is answered (200) within 1 s; the
#     largest latency is printed;
#   - attack from the scraper's own address: the scrapes are refused while it
#     lasts (the per-address limit cannot tell them apart; the count is
#     printed), and /metrics answers again within 1 s once it stops;
#   - the worker exits 0 on SIGTERM with no sanitizer report.
# At most about 30 s in all.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
W=$BUILD/selftests/e2e/cpn-worker-asan
[ -x "$W" ] || W=$BUILD/cpn-worker
TB=tools/testbed
NAME=mabuse
LO=127.0.0.1
ATK=127.0.0.2

need_root
need_cmd python3 timeout ip nsenter
need_file "$W" "$BUILD/cpn-fwd" "$BUILD/cpnctl"

TMP=$(mktemp -d /tmp/cpn-metrics-abuse.XXXXXX)
wpid=""
cleanup() {
	if [ -n "$wpid" ]; then
		kill -KILL "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
	fi
	"$TB" down --name "$NAME" >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The attacker and the scraper in one program: exit 0 when every scrape got
# its 200 within --limit (--report: exit 0 anyway).
cat >"$TMP/abuse.py" <<'EOF'
import argparse, socket, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--target", required=True)  # HOST:PORT of /metrics
ap.add_argument("--attack-from", required=True)
ap.add_argument("--scrape-from", required=True)
ap.add_argument("--conns", type=int, default=1000)
ap.add_argument("--trickle", type=float, default=2.0)  # seconds between bytes
ap.add_argument("--scrapes", type=int, default=20)
ap.add_argument("--gap", type=float, default=0.15)
ap.add_argument("--limit", type=float, default=1.0)  # seconds a scrape may take
ap.add_argument("--report", action="store_true")
a = ap.parse_args()
host, port = a.target.rsplit(":", 1)
port = int(port)
REQ = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"


def slow():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((a.attack_from, 0))
    s.connect_ex((host, port))
    return s


def send(s, b):
    try:
        s.send(b)
        return True
    except OSError:
        return False


stop = threading.Event()
st = {"reopened": 0}


def attack():
    socks = [slow() for _ in range(a.conns)]
    time.sleep(0.2)
    for s in socks:  # a partial request line
        send(s, REQ[:20])
    while not stop.wait(a.trickle):
        for i, s in enumerate(socks):
            if not send(s, b"a"):  # closed by the server: another one
                s.close()
                socks[i] = slow()
                st["reopened"] += 1
    for s in socks:
        s.close()


def scrape():
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=a.limit,
                                     source_address=(a.scrape_from, 0))
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if time.monotonic() - t0 > a.limit:
                return None
        s.close()
        dt = time.monotonic() - t0
        good = data.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
        return dt if good and dt <= a.limit else None
    except OSError:
        return None


th = threading.Thread(target=attack)
th.start()
time.sleep(a.trickle + 0.5)  # every slow client connected and trickling
lat = []
try:
    for _ in range(a.scrapes):
        lat.append(scrape())
        time.sleep(a.gap)
finally:
    stop.set()
    th.join()
got = [x for x in lat if x is not None]
print("%d slow clients from %s (closed by the server and opened again: %d); "
      "scrapes from %s answered within %.1f s: %d of %d, max latency %.1f ms"
      % (a.conns, a.attack_from, st["reopened"], a.scrape_from, a.limit,
         len(got), len(lat), 1000 * max(got) if got else -1))
sys.exit(0 if a.report or len(got) == len(lat) else 1)
EOF

# abuse LOG [--ns] ARGS...: the attack; its summary line as a TAP comment.
abuse() {
	local log=$1 rc
	shift
	if [ "${1:-}" = --ns ]; then
		shift
		timeout 30 "$TB" exec --name "$NAME" router -- python3 "$TMP/abuse.py" "$@" >"$log" 2>&1
	else
		timeout 30 python3 "$TMP/abuse.py" "$@" >"$log" 2>&1
	fi
	rc=$?
	grep "^[0-9]* slow clients" "$log" | sed 's/^/# /'
	return $rc
}

# scrape_once [--ns] HOST:PORT: one 200 within 1 s
scrape_once() {
	local pre=()
	if [ "$1" = --ns ]; then
		pre=("$TB" exec --name "$NAME" router --)
		shift
	fi
	"${pre[@]}" python3 -c "
import sys, urllib.request
r = urllib.request.urlopen('http://$1/metrics', timeout=1)
sys.exit(0 if r.status == 200 and r.read() else 1)"
}

echo "1..6"

# ---- the worker on 127.0.0.1 -----------------------------------------------
mapfile -t P < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))')
WM=$LO:${P[1]}
timeout 60 "$W" --listen "$LO:${P[0]}" --node-id 1 --router "$LO:9" --kernel echo \
	--metrics "$WM" >"$TMP/worker.log" 2>&1 &
wpid=$!
for _ in $(seq 50); do
	scrape_once "$WM" 2>/dev/null && break
	sleep 0.1
done
if abuse "$TMP/w1.log" --target "$WM" --attack-from "$ATK" --scrape-from "$LO"; then
	ok "worker: 1000 slow clients from $ATK, 20 scrapes from $LO each answered within 1 s"
else
	not_ok "worker: 1000 slow clients from $ATK, 20 scrapes from $LO each answered within 1 s" \
		"$TMP/w1.log" "$TMP/worker.log"
fi

abuse "$TMP/w2.log" --target "$WM" --attack-from "$LO" --scrape-from "$LO" --scrapes 5 --report
if grep -q "^[0-9]* slow clients" "$TMP/w2.log" && scrape_once "$WM" 2>>"$TMP/w2.log"; then
	ok "worker: slow clients from the scraper's own address; /metrics answers within 1 s once they stop"
else
	not_ok "worker: slow clients from the scraper's own address; /metrics answers within 1 s once they stop" \
		"$TMP/w2.log" "$TMP/worker.log"
fi

kill -TERM "$wpid" 2>/dev/null
for _ in $(seq 100); do
	kill -0 "$wpid" 2>/dev/null || break
	sleep 0.1
done
kill -KILL "$wpid" 2>/dev/null
wait "$wpid"
wrc=$?
wpid=""
if [ "$wrc" = 0 ] && ! grep -q "Sanitizer\|runtime error" "$TMP/worker.log"; then
	ok "worker: exits 0 after the attacks, no sanitizer report"
else
	not_ok "worker: exits 0 after the attacks, no sanitizer report" "exit status $wrc" "$TMP/worker.log"
fi

# ---- the daemon and cpn-fwd of a testbed ---------------------------------------
if ! timeout 60 "$TB" up --name "$NAME" --plane dpdk --worker "--kernel echo" >"$TMP/tb.log" 2>&1; then
	bail_rest 6 "testbed up --plane dpdk failed: $(tail -3 "$TMP/tb.log" | tr '\n' ' ')"
	exit 1
fi
eval "$("$TB" info --name "$NAME" | grep '^FWD_METRICS=')"
DM=127.0.0.1:9470
for t in "daemon $DM" "cpn-fwd ${FWD_METRICS:-127.0.0.1:9471}"; do
	read -r what addr <<<"$t"
	set -- "$what" "$addr"
	for _ in $(seq 50); do
		scrape_once --ns "$2" 2>/dev/null && break
		sleep 0.1
	done
	if abuse "$TMP/$1.log" --ns --target "$2" --attack-from "$ATK" --scrape-from "$LO" &&
		scrape_once --ns "$2"; then
		ok "$1: 1000 slow clients from $ATK, 20 scrapes from $LO each answered within 1 s"
	else
		not_ok "$1: 1000 slow clients from $ATK, 20 scrapes from $LO each answered within 1 s" \
			"$TMP/$1.log"
	fi
done
# the daemon and cpn-fwd still run
if "$TB" exec --name "$NAME" router -- true && scrape_once --ns "$DM" &&
	scrape_once --ns "${FWD_METRICS:-127.0.0.1:9471}"; then
	ok "daemon and cpn-fwd: still serving after the attacks"
else
	not_ok "daemon and cpn-fwd: still serving after the attacks"
fi
