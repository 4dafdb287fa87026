#!/usr/bin/env bash
# bench-latency: the latency the router adds to a request, next to the same
# request without the router's program, in the same run.
#
# One testbed (`tools/testbed up --name blat`, one worker, no path delay):
#
#   client ── veth ── router namespace ── veth ── w1 (cpn-worker, 10.90.11.2)
#
# Both paths take the same hops, links and namespaces; only the router's
# program differs:
#   router   XDP on the router's ports (r-c, r-w1; cpnctl apply attaches it):
#            the client sends to the VIP 10.90.100.1:7470, cpn_xdp steers the
#            request (policy, tag, DNAT, redirect to r-w1) and reverse-NATs
#            the reply to the VIP (reply binding on, the default);
#   direct   no XDP on the router's ports (ip link set dev ... xdp off): the
#            client sends to the worker's own 10.90.11.2:7470 (a route via
#            the router namespace), which the kernel forwards both ways
#            (ip_forward).
# The worker runs without --hop-key: it answers requests that no router
# tagged (with --hop-key it would refuse every direct request). Worker:
# cpn-worker --kernel echo --capacity 1 --max-batch 1 (no batching wait), a
# 64-byte payload; its own time is the same on both paths. Load: cpn-load in
# the client namespace, open loop at --rate req/s with uniform arrivals (1 ms
# apart at 1000/s: far from saturation, no queueing at the node), --warmup s
# not counted, then --duration s measured. cpn-load and the worker are pinned
# to one CPU (--cpu, default the last): a veth runs its receiver in the
# sender's softirq, so the whole path, router included, runs there, and no
# round depends on where the scheduler put the client (a wakeup across CPUs
# costs more than the router does). Rounds alternate router, direct,
# router, direct ... (--rounds of each); every router round must be steered
# by the router (req_steered grows by the requests sent) and every direct
# round must not be (req_steered unchanged). A round fails when more than
# 1 % of its requests are lost or 5 % answered BUSY (latencies are of
# REPLYs; BUSY no_node comes when a stall of the worker outlasts the
# router's answer deadlines, and is counted by reason).
# Figures: per path the median over rounds of each round's p50 and p99 (µs);
# added latency = median of the router rounds' p50 - median of the direct
# rounds' p50 (the difference of medians), its spread the per-pair
# differences (round i router - round i direct: median, quartiles,
# min..max); the same for p99, and for the minimum (the path's floor, which
# other work on the CPUs disturbs least). Short rounds, many of them: the
# pairs then see the same load from other work on the machine. The goal is
# an added p50 below 10 µs.
#
# usage: bench/bench-latency.sh [--json-out FILE] [--quick] [--smoke] [--rounds N]
#                               [--duration S] [--warmup S] [--rate R] [--name NAME]
#                               [--cpu N]
#   full: 15 rounds of each path, 0.3 + 2 s each, 1000 req/s (~2 min);
#   --quick (or BENCH_QUICK=1): 6 rounds of 0.3 + 1.5 s; --smoke: 2 rounds
#   of 0.2 + 1 s. Testbed NAME (blat; removed on exit). Needs root and
#   build/{cpnctl,cpn-worker,cpn-load}.
#   env: BUILD (build)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
[ "${BENCH_QUICK:-}" = 1 ] && CMDLINE="BENCH_QUICK=1 $CMDLINE"
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
TB=tools/testbed
WORKER_ARGS="--kernel echo --capacity 1 --max-batch 1"
PAYLOAD=64
VIP=10.90.100.1 WADDR=10.90.11.2 PORT=7470

MODE=full ROUNDS='' DUR='' WARM='' RATE=1000 JSON_OUT='' NAME=blat CPU=$(($(nproc) - 1))
[ "${BENCH_QUICK:-}" = 1 ] && MODE=quick
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "bench-latency: $*" >&2
	exit 1
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) [ $# -ge 2 ] || usage; JSON_OUT=$2; shift 2 ;;
	--quick) MODE=quick; shift ;;
	--smoke) MODE=smoke; shift ;;
	--rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
	--duration) [ $# -ge 2 ] || usage; DUR=$2; shift 2 ;;
	--warmup) [ $# -ge 2 ] || usage; WARM=$2; shift 2 ;;
	--rate) [ $# -ge 2 ] || usage; RATE=$2; shift 2 ;;
	--name) [ $# -ge 2 ] || usage; NAME=$2; shift 2 ;;
	--cpu) [ $# -ge 2 ] || usage; CPU=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "bench-latency: unknown argument '$1'" >&2; usage ;;
	esac
done
case "$MODE" in
full) : "${ROUNDS:=15}" "${DUR:=2}" "${WARM:=0.3}" ;;
quick) : "${ROUNDS:=6}" "${DUR:=1.5}" "${WARM:=0.3}" ;;
smoke) : "${ROUNDS:=2}" "${DUR:=1}" "${WARM:=0.2}" ;;
esac
num() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
{ [[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 100 ]; } ||
	{ echo "bench-latency: --rounds: 1..100" >&2; usage; }
{ num "$DUR" && awk -v d="$DUR" 'BEGIN { exit !(d > 0 && d <= 600) }'; } ||
	{ echo "bench-latency: --duration: seconds, 0 < S <= 600" >&2; usage; }
{ num "$WARM" && awk -v d="$WARM" 'BEGIN { exit !(d <= 60) }'; } ||
	{ echo "bench-latency: --warmup: seconds, 0 <= S <= 60" >&2; usage; }
{ [[ "$RATE" =~ ^[0-9]+$ ]] && [ "$RATE" -ge 1 ] && [ "$RATE" -le 100000 ]; } ||
	{ echo "bench-latency: --rate: 1..100000 requests/s" >&2; usage; }
[[ "$NAME" =~ ^[a-z0-9]{1,8}$ ]] || { echo "bench-latency: --name: 1..8 lowercase letters or digits" >&2; usage; }
{ [[ "$CPU" =~ ^[0-9]+$ ]] && [ "$CPU" -lt "$(nproc)" ]; } ||
	{ echo "bench-latency: --cpu: 0..$(($(nproc) - 1))" >&2; usage; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
for c in python3 ip bpftool ethtool nsenter timeout taskset; do
	command -v "$c" >/dev/null 2>&1 ||
		die "missing command '$c' (Debian package $(awk -v c="$c" '$1 == "cmd" && $2 == c { print $3; exit }' tools/deps.list))"
done
for f in cpnctl cpn-worker cpn-load; do
	[ -x "$BUILD/$f" ] || die "$BUILD/$f not built: make all"
done
NS_C=$NAME-client NS_R=$NAME-router
STATE=/run/cpn-testbed/$NAME
TMP=$(mktemp -d /tmp/cpn-bench-latency.XXXXXX)
cleanup() {
	$TB down --name "$NAME" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$SECONDS
timeout 120 $TB up --name "$NAME" --stale-ms 600000 --worker "$WORKER_ARGS" >"$TMP/up.log" 2>&1 ||
	die "testbed $NAME: $(tail -3 "$TMP/up.log")"
# The direct path: the worker's own address, through the router namespace.
ip -n "$NS_C" route add "$WADDR/32" via 10.90.0.1 || die "cannot route $WADDR in $NS_C"
taskset -a -p -c "$CPU" "$(cat "$STATE/w1.pid")" >/dev/null || die "cannot pin the worker to CPU $CPU"

xdp_on() { # interface: is an XDP program attached?
	ip -n "$NS_R" -d link show dev "$1" | grep -q 'prog/xdp'
}
steered() {
	$TB cpnctl --name "$NAME" stats -j 2>/dev/null | python3 -c \
		'import json,sys; d=json.load(sys.stdin); print(d.get("req_steered", d.get("counters", {}).get("req_steered", -1)))'
}
set_path() { # router|direct
	local dev
	if [ "$1" = direct ]; then
		for dev in r-c r-w1; do ip -n "$NS_R" link set dev "$dev" xdp off || return 1; done
		for dev in r-c r-w1; do ! xdp_on "$dev" || return 1; done
	else
		$TB cpnctl --name "$NAME" apply --config "$STATE/cpn.yaml" >"$TMP/apply.log" 2>&1 ||
			{ cat "$TMP/apply.log" >&2; return 1; }
		for dev in r-c r-w1; do xdp_on "$dev" || return 1; done
	fi
}

# Settle: the node's first requests through the router, not measured.
$TB exec --name "$NAME" client -- taskset -c "$CPU" "$BUILD/cpn-load" --to "$VIP:$PORT" --service 1 --tenant 42 \
	--rate "$RATE" --arrivals uniform --duration 1 --timeout 500 --kernel echo >/dev/null 2>&1 ||
	die "cpn-load through the router failed before the rounds"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-latency: $ROUNDS rounds of each path, $WARM + $DUR s at $RATE req/s" >&2
: >"$TMP/runs.txt"
for r in $(seq "$ROUNDS"); do
	for path in router direct; do
		set_path "$path" || die "cannot set the router up for the $path path"
		to=$VIP
		[ "$path" = direct ] && to=$WADDR
		s0=$(steered)
		out=$TMP/$path-$r.json
		$TB exec --name "$NAME" client -- timeout "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN { print int(w + d + 30) }')" \
			taskset -c "$CPU" "$BUILD/cpn-load" --to "$to:$PORT" --service 1 --tenant 42 --rate "$RATE" \
			--arrivals uniform --seed "$r" --duration "$DUR" --warmup "$WARM" --timeout 500 \
			--kernel echo --payload-bytes "$PAYLOAD" --json >"$out" 2>"$out.err" ||
			die "cpn-load ($path, round $r): $(tail -2 "$out.err")"
		s1=$(steered)
		echo "$r $path $s0 $s1 $out" >>"$TMP/runs.txt"
		python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); l = d["latency_us"]
print("  round %s %-6s p50 %7.2f us  p99 %7.2f us  replied %d busy %d lost %d" % (sys.argv[2],
      sys.argv[3], l["p50"], l["p99"], d["replied"], d["busy"], d["lost"]))' "$out" "$r" "$path" >&2
	done
done
set_path router || die "cannot attach the router again"

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
export CPU LOAD0 LOAD1 ROUNDS DUR WARM RATE MODE CMDLINE PAYLOAD WORKER_ARGS VIP WADDR PORT ELAPSED=$((SECONDS - T0))
python3 - "$TMP/runs.txt" "${JSON_OUT:-}" <<'PY'
import json, os, statistics, sys

E = os.environ
runs, problems = [], []
for line in open(sys.argv[1]):
    r, path, s0, s1, f = line.split()
    d = json.load(open(f))
    lat = d["latency_us"]
    steered = int(s1) - int(s0) if int(s0) >= 0 and int(s1) >= 0 else None
    runs.append({"round": int(r), "path": path, "p50_us": lat["p50"], "p99_us": lat["p99"],
                 "p999_us": lat["p99.9"], "mean_us": lat["mean"], "min_us": lat["min"],
                 "sent": d["sent"], "replied": d["replied"], "lost": d["lost"], "busy": d["busy"],
                 "busy_status": d.get("busy_status", {}), "send_rate": d["send_rate"],
                 "steered": steered})
    # A BUSY is an answer, not a latency: the router's BUSY no_node when its
    # one node looked gone (a stall of the worker past four answer deadlines,
    # ~2.2 ms with an echo) is counted; a round fails beyond 5 % BUSY or 1 %
    # lost.
    if d["replied"] == 0 or d["lost"] > max(2, d["sent"] // 100) or \
            d["busy"] > max(2, d["sent"] // 20):
        problems.append("round %s %s: replied %d lost %d busy %d" % (r, path, d["replied"], d["lost"],
                                                                      d["busy"]))
    # The router steered every request of its rounds, none of the direct ones.
    if path == "router" and (steered is None or steered < d["sent"]):
        problems.append("round %s router: %s steered of %d sent" % (r, steered, d["sent"]))
    if path == "direct" and steered != 0:
        problems.append("round %s direct: %s steered (the router's program was on)" % (r, steered))


def spread(xs, quartiles=False):
    s = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    if quartiles:
        q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
        s["q1"], s["q3"] = q[0], q[2]
    return s


paths = {}
for p in ("router", "direct"):
    rs = [x for x in runs if x["path"] == p]
    paths[p] = {"rounds": len(rs), "p50_us": spread([x["p50_us"] for x in rs]),
                "p99_us": spread([x["p99_us"] for x in rs]),
                "p999_us": spread([x["p999_us"] for x in rs]),
                "mean_us": spread([x["mean_us"] for x in rs]),
                "min_us": spread([x["min_us"] for x in rs]),
                "replied": sum(x["replied"] for x in rs), "lost": sum(x["lost"] for x in rs),
                "busy": sum(x["busy"] for x in rs)}
added = {}
for q in ("p50_us", "p99_us", "min_us"):
    pair = {}
    for x in runs:
        pair.setdefault(x["round"], {})[x["path"]] = x[q]
    diffs = [v["router"] - v["direct"] for v in pair.values() if len(v) == 2]
    added[q] = {"diff_of_medians": paths["router"][q]["median"] - paths["direct"][q]["median"],
                "pairs": spread(diffs, True), "pair_diffs": diffs}
goal = 10.0
res = {"bench": "latency", "command": E["CMDLINE"], "mode": E["MODE"], "rate": int(E["RATE"]),
       "arrivals": "uniform", "rounds": int(E["ROUNDS"]), "duration_s": float(E["DUR"]),
       "warmup_s": float(E["WARM"]), "payload_bytes": int(E["PAYLOAD"]),
       "worker_args": E["WORKER_ARGS"], "path_delay_us": 0, "hop_key": False,
       "cpu": int(E["CPU"]), "nproc": os.cpu_count(),
       "order": "router, direct, router, direct ...",
       "compared": {
           "router": "client -> router netns with cpn_xdp on r-c and r-w1 (VIP %s:%s steered, "
                     "DNAT and redirect; reply reverse-NATed) -> worker" % (E["VIP"], E["PORT"]),
           "direct": "client -> router netns without XDP (kernel ip_forward both ways) -> the "
                     "worker's own %s:%s" % (E["WADDR"], E["PORT"])},
       "paths": paths, "added_us": added, "goal_us": goal,
       "goal_met": added["p50_us"]["diff_of_medians"] < goal, "runs": runs,
       "loadavg": {"before": E["LOAD0"].split(), "after": E["LOAD1"].split()},
       "problems": problems, "ok": not problems, "elapsed_s": int(E["ELAPSED"])}
for p in ("router", "direct"):
    x = paths[p]
    print("%-6s p50 %7.2f us (%.2f..%.2f)  p99 %7.2f us (%.2f..%.2f)  %d rounds, %d replied, "
          "%d busy, %d lost" % (p, x["p50_us"]["median"], x["p50_us"]["min"], x["p50_us"]["max"],
                                x["p99_us"]["median"], x["p99_us"]["min"], x["p99_us"]["max"],
                                x["rounds"], x["replied"], x["busy"], x["lost"]))
for q in ("p50_us", "p99_us", "min_us"):
    a = added[q]
    print("added by the router, %s: %+.2f us (difference of medians); per round pair %+.2f "
          "(quartiles %+.2f..%+.2f, range %+.2f..%+.2f)" %
          (q[:3], a["diff_of_medians"], a["pairs"]["median"], a["pairs"]["q1"], a["pairs"]["q3"],
           a["pairs"]["min"], a["pairs"]["max"]))
print("goal: added p50 below %.0f us: %s" % (goal, "met" if res["goal_met"] else "not met"))
for p in problems:
    print("problem: " + p, file=sys.stderr)
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
sys.exit(1 if problems else 0)
PY
