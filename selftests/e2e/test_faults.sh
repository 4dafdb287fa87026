#!/usr/bin/env bash
# e2e: faults under load, in a testbed (tools/testbed, name "flt"): 4
# workers `--kernel synthetic --svc exp:2000 --capacity 1 --max-batch 1`
# (each exactly one M/M/1 server of mean S = 2 ms: a batch would hold
# every answer of it back to its end) behind the XDP router, and
# selftests/e2e/open_loop sending 1500 requests a second from the client
# (rho 0.75 on the four), each request counted once: answered (REPLY), BUSY,
# or lost (no answer within 500 ms). Every scenario starts the load on a
# fresh testbed, lets it settle (WARM_MS), makes its fault, and runs on;
# its figures are printed on a `# ` line and asserted:
#
#   a. kill -9 of one worker (p2c at stale_ms 500 and 2000, least at 500):
#      every lost request was sent before 2 S + the path the router measured
#      to the node + SLACK_MS after the node's
#      death reached the router: the kill, or, when the node had nothing in
#      flight then, the first request the router sent it after the kill
#      (nobody can know a node idle at its death is dead before sending it
#      something; that request and what follows within the deadline are
#      lost). So lost = in flight + what was sent within 2 S of that, and
#      nothing later (a dead node sends no report, so it is never tried
#      again).
#   b. the worker's REPLYs to the client dropped in its namespace (nftables),
#      its LOADs to the router still going: from 100 ms after the rule the
#      node gets at most 5 % of its fair share (the 200 ms retries).
#   c. every worker killed: each request sent 50 ms or more after the kills
#      is answered BUSY no_node by the router, none lost; at the end every
#      node with requests unanswered has had them longer than the deadline
#      the router gave them (`cpnctl status -j`: unanswered_ms, deadline_ms).
#   d. one worker 4x slower (--svc-phase 3000:exp:8000) for its first 3 s:
#      in [its recovery + 1 s, + 2 s] it gets at least 80 % of a fair share.
#   e. a capacity liar: 3 workers --capacity 2, one --capacity 1
#      --advertise-capacity 64: over the last 3 s of 5 its share of the
#      requests is at most 1.5 x its share of the real capacity (1/7).
#
# Also: --svc-phase and --advertise-capacity refuse bad values (usage,
# exit 2), and the router sees the advertised capacity.
# Times are CLOCK_MONOTONIC (open_loop's records, and the faults stamped by
# Python's time.monotonic_ns() just before the kill or just after the rule).
# KEEP_TMP=1 keeps the records and the routers' figures.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
NAME=flt
TB=tools/testbed
OL=$(pwd)/$BUILD/selftests/e2e/open_loop
W=$(pwd)/$BUILD/cpn-worker
RATE=1500
# The load settles before a fault: the means of idle nodes have decayed
# (1/8 a report), and the first 2-2.5 s of load at rho 0.75 after idle see
# queues of up to ~100 while the router learns them again.
WARM_MS=3000
RUN_MS=6500  # the whole run of a fault scenario
S_US=2000    # the workers' mean service time
# The kill is stamped just before kill(2): the node may still take and
# answer requests until SIGKILL is delivered and its threads are gone,
# which on a loaded 2-core host can wait a scheduling slice (up to ~4 ms),
# and a request's trip to the node is under 1 ms. 5 ms covers both.
SLACK_MS=5
N_TESTS=9

need_root
need_cmd python3 nft ip nsenter timeout
need_file "$OL" "$W" "$BUILD/cpnctl"

TMP=$(mktemp -d /tmp/cpn-faults.XXXXXX)
load_pid=""
cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
	"$TB" down --name "$NAME" >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
echo "1..$N_TESTS"

# ---- the analysis --------------------------------------------------------------
cat >"$TMP/flt.py" <<'EOF'
import json, os, subprocess, sys, time

def status(name):
    out = subprocess.run(["tools/testbed", "cpnctl", "--name", name, "status", "-j"],
                         capture_output=True, text=True, timeout=10).stdout
    return {n["id"]: n for n in json.loads(out)["nodes"]}

def records(path):
    r = []
    for line in open(path):
        if line.startswith("#"):
            continue
        s, o, n, why, a = line.split()
        r.append((int(s), o, int(n), int(why), int(a)))
    return r

def save(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)

cmd = sys.argv[1]
if cmd == "now":
    print(time.monotonic_ns())
elif cmd == "kill":  # kill OUT NAME PID...: the router's figures, then SIGKILL
    out, name, pids = sys.argv[2], sys.argv[3], [int(p) for p in sys.argv[4:]]
    t_read = time.monotonic_ns()
    before = status(name)
    t = time.monotonic_ns()
    for p in pids:
        os.kill(p, 9)
    save(out, {"t": t, "read": t_read, "before": before})
elif cmd == "run":  # run OUT CMD...: the time once CMD returned, its status
    t0 = time.monotonic_ns()
    rc = subprocess.run(sys.argv[3:]).returncode
    save(sys.argv[2], {"t0": t0, "t": time.monotonic_ns(), "rc": rc})
    sys.exit(rc)
elif cmd == "started":  # started PID: the process's start, CLOCK_MONOTONIC ns
    # /proc's starttime counts clock ticks since boot, as CLOCK_BOOTTIME;
    # with no suspend since boot that is CLOCK_MONOTONIC.
    st = open("/proc/%s/stat" % sys.argv[2]).read().rsplit(")", 1)[1].split()
    print(int(st[19]) * 10**9 // os.sysconf("SC_CLK_TCK"))
elif cmd == "status":  # status OUT NAME (and OUT.t: when it was read)
    t = time.monotonic_ns()
    save(sys.argv[2], status(sys.argv[3]))
    save(sys.argv[2] + ".t", {"t": t})
elif cmd == "kill1":  # kill1 RECS KILL.json END.json NODE S_US SLACK_MS
    r = records(sys.argv[2])
    k = json.load(open(sys.argv[3]))
    end = json.load(open(sys.argv[4]))
    node, s_us, slack = sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
    t = k["t"]
    b, e = k["before"][node], end[node]
    inflight = b["requests"] - b["replies"] - b["busy"]
    lost = [x for x in r if x[1] == "lost"]
    lost_after = [x for x in lost if x[0] >= t]
    # The node had requests in flight at the kill: its death shows from
    # the kill on. Else from the first request sent to it after the kill
    # (every request sent to it after the kill is lost).
    seen = t if any(x[0] < t for x in lost) else min((x[0] for x in lost_after), default=t)
    # The router's deadline adds the path it measured to the node (reply
    # time less the time inside: on this loaded 2-core host, scheduling).
    path_us = b.get("path_us", 0)
    bound = seen + (2 * s_us + path_us + slack * 1000) * 1000
    late = max((x[0] - t for x in lost), default=0) / 1e6
    warm_lost = sum(1 for x in lost if x[0] < t - 500 * 10**6)
    print("# lost %d of %d (%d sent before the kill, %d after; last sent %+.2f ms from the "
          "kill); in flight at the node at the kill %d (router: requests - replies - busy); "
          "steered to it after the kill %d (router), %d (lost records); bound kill + %.1f ms "
          "(path %.1f ms); "
          "lost before the fault %d; busy %d; the router read %.1f ms before the kill"
          % (len(lost), len(r), len(lost) - len(lost_after), len(lost_after), late, inflight,
             e["requests"] - b["requests"], len(lost_after), (bound - t) / 1e6, path_us / 1e3,
             warm_lost,
             sum(1 for x in r if x[1] == "busy"), (t - k["read"]) / 1e6))
    bad = [x for x in lost if x[0] > bound]
    if bad:
        print("# %d lost requests were sent after the bound, the last %.2f ms after "
              "the kill" % (len(bad), (max(x[0] for x in bad) - t) / 1e6))
        # What the router held of the dead node at the end: since when its
        # requests went unanswered, and the deadline it gave them.
        te = json.load(open(sys.argv[4] + ".t"))["t"]
        if e.get("unanswered_ms") is not None:
            first = te - int(e["unanswered_ms"] * 1e6)
            print("# the router: %d unanswered, their clock started at kill %+.2f ms, deadline "
                  "%.2f ms: suspect from kill %+.2f ms; svc_us %d, path_us %d, inflight %d, "
                  "capacity %d (before the kill: svc_us %d, inflight %d, unanswered %d)"
                  % (e["unanswered"], (first - t) / 1e6, e["deadline_ms"],
                     (first - t) / 1e6 + e["deadline_ms"], e["svc_us"], e["path_us"],
                     e["inflight"], e["capacity"], b["svc_us"], b["inflight"], b["unanswered"]))
        print("# lost, sent at (ms from the kill): " +
              " ".join("%+.2f" % ((x[0] - t) / 1e6) for x in lost))
    sys.exit(1 if bad else 0)
elif cmd == "reply":  # reply RECS RULE.json NODE NODES
    r = records(sys.argv[2])
    t = json.load(open(sys.argv[3]))["t"]
    nodes = int(sys.argv[5])
    after = [x for x in r if x[0] >= t + 100 * 10**6]
    # A request steered to the node whose REPLYs are dropped is lost: the
    # lost ones after the rule are the node's share.
    lost = sum(1 for x in after if x[1] == "lost")
    span = (after[-1][0] - after[0][0]) / 1e9 if len(after) > 1 else 0
    share = lost / len(after) if after else 1
    fair = 1.0 / nodes
    ratio = share / fair
    print("# from rule + 100 ms: %d requests in %.2f s, %d to the node (lost): share %.4f, "
          "%.1f %% of a fair share (%.3f), %.1f a second (a try each 200 ms: 5 a second); "
          "lost in all %d, lost before the rule %d"
          % (len(after), span, lost, share, 100 * ratio, fair, lost / span if span else 0,
             sum(1 for x in r if x[1] == "lost"),
             sum(1 for x in r if x[1] == "lost" and x[0] < t)))
    sys.exit(0 if after and ratio <= 0.05 else 1)
elif cmd == "allgone":  # allgone RECS KILL.json END.json
    r = records(sys.argv[2])
    k = json.load(open(sys.argv[3]))
    end = json.load(open(sys.argv[4]))
    t = k["t"]
    after = [x for x in r if x[0] >= t + 50 * 10**6]
    win = [x for x in r if t <= x[0] < t + 50 * 10**6]
    cnt = lambda xs, o: sum(1 for x in xs if x[1] == o)
    no_node = sum(1 for x in after if x[1] == "busy" and x[3] == 3 and x[2] == 0)
    lost_win = [x for x in win if x[1] == "lost"]
    print("# sent >= kill + 50 ms: %d: busy no_node %d, lost %d, reply %d, other %d; "
          "in the first 50 ms: %d sent, %d lost (last sent %+.2f ms), %d busy"
          % (len(after), no_node, cnt(after, "lost"), cnt(after, "reply"),
             len(after) - no_node - cnt(after, "lost") - cnt(after, "reply"), len(win),
             len(lost_win), max((x[0] - t for x in lost_win), default=0) / 1e6,
             cnt(win, "busy")))
    print("# the router at the end, per node: " + ", ".join(
        "%s: steered after the kills %d, unanswered %d, suspect %s, live %s"
        % (i, n["requests"] - k["before"][i]["requests"], n["unanswered"], n["suspect"],
           n["live"]) for i, n in sorted(end.items())))
    # Every node dead: those with requests unanswered have had them so
    # for longer than the deadline the router gave them (cpnctl status -j).
    clocks = [(i, n["unanswered_ms"], n["deadline_ms"]) for i, n in sorted(end.items())
              if n["unanswered"]]
    print("# unanswered for / deadline (ms): " +
          ", ".join("%s: %.1f / %.1f" % c for c in clocks))
    ok_clocks = clocks and all(u is not None and d is not None and 0 < d < u for _, u, d in clocks)
    sys.exit(0 if after and no_node == len(after) and ok_clocks else 1)
elif cmd == "recover":  # recover RECS REC_NS NODE NODES
    r = records(sys.argv[2])
    rec, node, nodes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    t0 = r[0][0]
    line = []
    w = 250 * 10**6
    for i in range((r[-1][0] - t0) // w + 1):
        xs = [x for x in r if t0 + i * w <= x[0] < t0 + (i + 1) * w and x[1] == "reply"]
        if xs:
            line.append("%+.2f:%.2f" % ((t0 + i * w - rec) / 1e9,
                                       sum(1 for x in xs if x[2] == node) / len(xs)))
    print("# node %d's share of replies per 250 ms window, by start from its recovery (s): %s"
          % (node, " ".join(line)))
    xs = [x for x in r if rec + 10**9 <= x[0] < rec + 2 * 10**9 and x[1] == "reply"]
    share = sum(1 for x in xs if x[2] == node) / len(xs) if xs else 0
    print("# in [recovery + 1 s, + 2 s]: %d replies, node %d's share %.3f = %.0f %% of a fair "
          "share (%.2f); lost in all %d, busy %d"
          % (len(xs), node, share, 100 * share * nodes, 1 / nodes,
             sum(1 for x in r if x[1] == "lost"), sum(1 for x in r if x[1] == "busy")))
    sys.exit(0 if xs and share * nodes >= 0.8 else 1)
elif cmd == "liar":  # liar RECS END.json NODE FAIR
    r = records(sys.argv[2])
    end = json.load(open(sys.argv[3]))
    node, fair = sys.argv[4], float(sys.argv[5])
    t1 = r[-1][0] - 3 * 10**9
    xs = [x for x in r if x[0] >= t1 and x[1] == "reply"]
    share = sum(1 for x in xs if x[2] == int(node)) / len(xs) if xs else 1
    n = end[node]
    print("# last 3 s: %d replies, the liar's share %.3f = %.2f x its share of the capacity "
          "(%.3f); its reported capacity %d, overclaim ratio %.2f, svc_us %d; lost %d, busy %d"
          % (len(xs), share, share / fair, fair, n["capacity"], n["overclaim"], n["svc_us"],
             sum(1 for x in r if x[1] == "lost"), sum(1 for x in r if x[1] == "busy")))
    sys.exit(0 if xs and share <= 1.5 * fair else 1)
EOF
PY="python3 $TMP/flt.py"

# up NAME-OF-SCENARIO TESTBED-ARGS...: a fresh testbed
up() {
	local s=$1
	shift
	"$TB" up --name "$NAME" "$@" >"$TMP/$s.up.log" 2>&1
}
# load SCENARIO MS: open_loop in the client namespace, in the background
load() {
	"$TB" exec --name "$NAME" client -- timeout 30 "$OL" --to 10.90.100.1:7470 --service 1 \
		--tenant 42 --rate "$RATE" --duration-ms "$2" --timeout-ms 500 --out "$TMP/$1.rec" \
		>"$TMP/$1.load.log" 2>&1 &
	load_pid=$!
}
load_wait() {
	wait "$load_pid"
	local rc=$?
	load_pid=""
	return $rc
}
wpid() { cat "/run/cpn-testbed/$NAME/w$1.pid"; }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
syn="--kernel synthetic --svc exp:$S_US --capacity 1 --max-batch 1"
workers4() { # the four workers' arguments, each with its own seed
	local k
	for k in 1 2 3 4; do printf -- '--worker\0%s --seed %d\0' "$syn" "$k"; done
}
mapfile -d '' W4 < <(workers4)

# ---- 1: bad values of the two options ----------------------------------------------
bad=0
: >"$TMP/args.log"
for a in "--svc-phase 3000" "--svc-phase 0:exp:10" "--svc-phase 3000:exp:x" \
	"--svc-phase :exp:10" "--svc-phase 99999999999:fixed:1" "--svc-phase 10:exp:-1" \
	"--advertise-capacity -1" "--advertise-capacity 65536" "--advertise-capacity x"; do
	# shellcheck disable=SC2086 # one option and its value
	timeout 10 "$W" --listen 127.0.0.1:1 --node-id 1 --router 127.0.0.1:9 \
		--kernel synthetic $a >"$TMP/one.log" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q '^usage:' "$TMP/one.log" ||
		! grep -q -- "${a%% *}" "$TMP/one.log"; then
		bad=1
		{
			echo "$a: exit $rc (want 2, the option named, and the usage)"
			head -2 "$TMP/one.log"
		} >>"$TMP/args.log"
	fi
done
timeout 10 "$W" --listen 127.0.0.1:1 --node-id 1 --router 127.0.0.1:9 --kernel echo \
	--svc-phase 10:exp:5 >"$TMP/one.log" 2>&1
rc=$?
if [ "$rc" -ne 2 ] || ! grep -q 'for --kernel synthetic' "$TMP/one.log"; then
	bad=1
	echo "--kernel echo --svc-phase: exit $rc (want 2)" >>"$TMP/args.log"
fi
if [ "$bad" = 0 ]; then
	ok "--svc-phase and --advertise-capacity: bad values refused (usage, exit 2)"
else
	not_ok "--svc-phase and --advertise-capacity: bad values refused (usage, exit 2)" \
		"$TMP/args.log"
fi

# ---- a: kill -9 of one worker under load ---------------------------------------------
# kill_one TESTNAME SCENARIO POLICY STALE_MS
kill_one() {
	local t=$1 s=$2 policy=$3 stale=$4
	if ! up "$s" --policy "$policy" --stale-ms "$stale" "${W4[@]}"; then
		not_ok "$t" "$TMP/$s.up.log"
		return
	fi
	load "$s" "$RUN_MS"
	sleep_ms "$WARM_MS"
	$PY kill "$TMP/$s.kill.json" "$NAME" "$(wpid 2)"
	load_wait
	$PY status "$TMP/$s.end.json" "$NAME"
	if $PY kill1 "$TMP/$s.rec" "$TMP/$s.kill.json" "$TMP/$s.end.json" 2 "$S_US" "$SLACK_MS" \
		>"$TMP/$s.out"; then
		ok "$t"
	else
		not_ok "$t" "$TMP/$s.load.log"
	fi
	cat "$TMP/$s.out"
	"$TB" down --name "$NAME"
}
kill_one "kill -9 of a worker (p2c, stale_ms 500): lost: in flight + sent within 2 S + path + ${SLACK_MS} ms of its death reaching the router" \
	a500 p2c 500
kill_one "kill -9 of a worker (p2c, stale_ms 2000): lost: in flight + sent within 2 S + path + ${SLACK_MS} ms of its death reaching the router" \
	a2000 p2c 2000
kill_one "kill -9 of a worker (least, stale_ms 500): lost: in flight + sent within 2 S + path + ${SLACK_MS} ms of its death reaching the router" \
	aleast least 500

# ---- b: REPLYs dropped, LOADs still sent ---------------------------------------------
t="REPLYs dropped at a worker, LOADs kept: it gets <= 5 % of a fair share from rule + 100 ms"
if up b --policy p2c --stale-ms 500 "${W4[@]}"; then
	load b "$RUN_MS"
	sleep_ms "$WARM_MS"
	# Requests come to the worker at 10.90.13.2:7470 and its REPLYs leave
	# from there to the client; LOADs go to the router's control port.
	$PY run "$TMP/b.rule.json" "$TB" exec --name "$NAME" w3 -- nft -f - <<'EOF'
table inet cpnflt {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 10.90.0.2 udp sport 7470 drop
	}
}
EOF
	load_wait
	"$TB" exec --name "$NAME" w3 -- nft list ruleset >"$TMP/b.nft" 2>&1
	if $PY reply "$TMP/b.rec" "$TMP/b.rule.json" 3 4 >"$TMP/b.out"; then
		ok "$t"
	else
		not_ok "$t" "$TMP/b.load.log" "$TMP/b.nft"
	fi
	cat "$TMP/b.out"
	"$TB" down --name "$NAME"
else
	not_ok "$t" "$TMP/b.up.log"
fi

# ---- c: every worker gone -------------------------------------------------------------
t="every worker killed: each request sent >= 50 ms after is answered BUSY no_node, none lost"
if up c --policy p2c --stale-ms 500 "${W4[@]}"; then
	load c 5000
	sleep_ms "$WARM_MS"
	$PY kill "$TMP/c.kill.json" "$NAME" "$(wpid 1)" "$(wpid 2)" "$(wpid 3)" "$(wpid 4)"
	load_wait
	$PY status "$TMP/c.end.json" "$NAME"
	if $PY allgone "$TMP/c.rec" "$TMP/c.kill.json" "$TMP/c.end.json" >"$TMP/c.out"; then
		ok "$t"
	else
		not_ok "$t" "$TMP/c.load.log"
	fi
	cat "$TMP/c.out"
	"$TB" down --name "$NAME"
else
	not_ok "$t" "$TMP/c.up.log"
fi

# ---- d: a slow node recovers ---------------------------------------------------------
t="a worker 4x slower for 3 s: >= 80 % of a fair share in [recovery + 1 s, + 2 s]"
if up d --policy p2c --stale-ms 500 --worker "$syn --seed 1 --svc-phase 3000:exp:$((4 * S_US))" \
	"${W4[@]:2}"; then
	# The phase ends 3 s after the worker's kernels opened, a few ms
	# after its start.
	rec=$(($($PY started "$(wpid 1)") + 3000000000))
	load d "$RUN_MS"
	load_wait
	if $PY recover "$TMP/d.rec" "$rec" 1 4 >"$TMP/d.out"; then
		ok "$t"
	else
		not_ok "$t" "$TMP/d.load.log"
	fi
	cat "$TMP/d.out"
	"$TB" down --name "$NAME"
else
	not_ok "$t" "$TMP/d.up.log"
fi

# ---- e: a capacity liar ----------------------------------------------------------------
t="a worker reporting capacity 64 with 1 slot: <= 1.5 x its share of the capacity (1/7), last 3 s of 5"
cap2="--kernel synthetic --svc exp:$S_US --capacity 2 --max-batch 1"
if up e --policy p2c --stale-ms 500 \
	--worker "--kernel synthetic --svc exp:$S_US --capacity 1 --max-batch 1 --advertise-capacity 64 --seed 1" \
	--worker "$cap2 --seed 2" --worker "$cap2 --seed 3" --worker "$cap2 --seed 4"; then
	$PY status "$TMP/e.start.json" "$NAME"
	load e 5000
	load_wait
	$PY status "$TMP/e.end.json" "$NAME"
	if python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["1"]["capacity"] != 64)' \
		"$TMP/e.start.json"; then
		ok "--advertise-capacity 64: the router sees capacity 64"
	else
		not_ok "--advertise-capacity 64: the router sees capacity 64" "$TMP/e.start.json"
	fi
	if $PY liar "$TMP/e.rec" "$TMP/e.end.json" 1 "$(python3 -c 'print(1/7)')" >"$TMP/e.out"; then
		ok "$t"
	else
		not_ok "$t" "$TMP/e.load.log"
	fi
	cat "$TMP/e.out"
	"$TB" down --name "$NAME"
else
	not_ok "--advertise-capacity 64: the router sees capacity 64" "$TMP/e.up.log"
	not_ok "$t"
fi
tap_ran "$N_TESTS"
