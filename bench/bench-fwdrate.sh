#!/usr/bin/env bash
# bench-fwdrate: packets per second through a router namespace on veth,
# cpn's XDP steering next to the kernel's own forwarding, same generator,
# same run. Description, method and figures: bench/bench-fwdrate.md.
#
#   fr-N-g [cpn-pktgen] g0 ── veth ── r0 [router] r1 ── veth ── s0 [cpn_sink] fr-N-s
#          10.91.0.2                 10.91.0.1  10.91.1.1      10.91.1.2-5
#
# The generator (build/cpn-pktgen, AF_XDP copy mode) sends valid cpn
# REQUESTs of service 1 to the VIP 10.91.100.1:7470, each queue cycling
# through 1024 source ports. The sink (tools/cpn-pktgen/cpn_sink.bpf.o, native XDP on
# s0) counts and drops; its per-CPU counters are what "received" means.
# Paths, each measured in every round:
#   xdp      cpn_router.bpf.o on r0 and r1 (cpnctl up --config: a p2c
#            service over nodes 1-4 at 10.91.1.2-5, live from one LOAD each):
#            every request is chosen, tagged, DNATed and redirected r0 -> r1;
#   kernel   no XDP on the router; ip_forward=1 and a route for the VIP via
#            10.91.1.2: the kernel forwards the same frames;
#   ceiling  cpn_sink on r0 itself: the generator and the first veth alone,
#            the most any router can get through on these cores.
# Cores: 1 = one TX queue and one generator thread pinned to CPU 0; 2 = two
# TX queues and threads pinned to CPUs 0 and 1. A veth runs its receiver's
# NAPI on the sending CPU, so each CPU carries generator, router and sink
# for its queue: the generator shares the cores with what is measured.
#
# Rounds are interleaved: each round runs every (cores, path) once, one
# window of --seconds after --warmup; medians and min/max over rounds. Per
# window: frames sent and received (Mpps, drop %), and the CPU time the path
# used (cpn-pktgen's threads, in whose softirq the veths run router and sink,
# plus ksoftirqd): received per CPU-second is the rate of a core of its own,
# the figure that holds when other work shares the CPUs.
#
# usage: bench/bench-fwdrate.sh [--json-out FILE] [--plot-dir DIR] [--rounds N]
#                               [--seconds S] [--warmup S] [--smoke] [--keep]
#   env: BENCH_QUICK=1 (2 rounds of 2 s), BUILD (build)
set -u
ARGV=("$@")
CALLER_PWD=$(pwd)
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${BUILD:-build}
PKTGEN=$ROOT/$BUILD/cpn-pktgen
CPNCTL=$ROOT/$BUILD/cpnctl
ROUTER_OBJ=$ROOT/bpf/cpn_router.bpf.o
SINK_OBJ=$ROOT/tools/cpn-pktgen/cpn_sink.bpf.o
PLOT_GP=$ROOT/bench/plot/fwdrate.gp

ROUNDS=5 SECS=5 WARM=1 JSON_OUT='' PLOT_DIR='' KEEP=0 SMOKE=0
QUICK=0
if [ "${BENCH_QUICK:-0}" = 1 ]; then QUICK=1 ROUNDS=2 SECS=2 WARM=0.5; fi
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) JSON_OUT=$2; shift 2 ;;
	--plot-dir) PLOT_DIR=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--warmup) WARM=$2; shift 2 ;;
	--smoke) SMOKE=1 ROUNDS=1 SECS=0.5 WARM=0.2; shift ;;
	--keep) KEEP=1; shift ;;
	*) usage ;;
	esac
done
die() {
	echo "bench-fwdrate: $*" >&2
	exit 1
}
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "--rounds: 1..99"
# Output paths are the caller's, relative to where it ran this.
case "$JSON_OUT" in "" | /*) ;; *) JSON_OUT=$CALLER_PWD/$JSON_OUT ;; esac
case "$PLOT_DIR" in "" | /*) ;; *) PLOT_DIR=$CALLER_PWD/$PLOT_DIR ;; esac
[[ "$SECS" =~ ^[0-9.]+$ && "$WARM" =~ ^[0-9.]+$ ]] || die "--seconds, --warmup: numbers"
[ "$(id -u)" -eq 0 ] || die "needs root (namespaces, XDP, AF_XDP)"
for f in "$PKTGEN" "$CPNCTL" "$ROUTER_OBJ" "$SINK_OBJ"; do
	[ -e "$f" ] || die "$f not built (make all)"
done
for c in python3 bpftool ethtool nsenter; do
	command -v "$c" >/dev/null || die "$c not installed (make deps)"
done
[ -z "$PLOT_DIR" ] || command -v gnuplot >/dev/null || die "gnuplot not installed (make deps)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the 2-core case pins to CPUs 0 and 1)"

# Everything this run makes is named after its pid, and removed on exit.
ID=$$
NS_G=fr-$ID-g NS_R=fr-$ID-r NS_S=fr-$ID-s
PIN=/sys/fs/bpf/fr-$ID
TMP=$(mktemp -d /tmp/cpn-bench-fwdrate.XXXXXX)
GEN_PID=
cleanup() {
	[ -n "$GEN_PID" ] && kill "$GEN_PID" 2>/dev/null && wait "$GEN_PID" 2>/dev/null
	for ns in "$NS_G" "$NS_R" "$NS_S"; do
		[ -e "/run/netns/$ns" ] || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$PIN"
	if [ "$KEEP" -eq 1 ]; then echo "bench-fwdrate: files kept in $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

in_ns() { # ns, command...: nsenter keeps /sys/fs/bpf visible
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}
mac_of() { # ns, interface
	ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}
cpnctl_() { in_ns "$NS_R" "$CPNCTL" --pin-dir "$PIN/cpn" --state-dir "$TMP/cpnctl" "$@"; }

VIP=10.91.100.1 PORT=7470 CTL=7471
setup() {
	local ns k
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	mkdir -p "$PIN/sink" "$PIN/ceil" || return 1
	for ns in "$NS_G" "$NS_R" "$NS_S"; do
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
		in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 || return 1
	done
	ip -n "$NS_G" link add g0 numtxqueues 2 numrxqueues 2 type veth peer name r0 \
		netns "$NS_R" numtxqueues 2 numrxqueues 2 || return 1
	ip -n "$NS_R" link add r1 numtxqueues 2 numrxqueues 2 type veth peer name s0 \
		netns "$NS_S" numtxqueues 2 numrxqueues 2 || return 1
	ip -n "$NS_G" addr add 10.91.0.2/24 dev g0 && ip -n "$NS_R" addr add 10.91.0.1/24 dev r0 &&
		ip -n "$NS_R" addr add 10.91.1.1/24 dev r1 || return 1
	for k in 2 3 4 5; do ip -n "$NS_S" addr add "10.91.1.$k/24" dev s0 || return 1; done
	ip -n "$NS_G" link set g0 up && ip -n "$NS_R" link set r0 up && ip -n "$NS_R" link set r1 up &&
		ip -n "$NS_S" link set s0 up || return 1
	in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1 || return 1
	# The sink drops everything, ARP replies too: static neighbours both ways.
	for k in 2 3 4 5; do
		ip -n "$NS_R" neigh replace "10.91.1.$k" lladdr "$(mac_of "$NS_S" s0)" dev r1 \
			nud permanent || return 1
	done
	ip -n "$NS_S" neigh replace 10.91.1.1 lladdr "$(mac_of "$NS_R" r1)" dev s0 nud permanent ||
		return 1
	# kernel path: the VIP is routed to node 1's address.
	ip -n "$NS_R" route add "$VIP/32" via 10.91.1.2 dev r1 || return 1
	# Keep each CPU's forwarded frames on its own queue of r1 (XPS).
	ip netns exec "$NS_R" sh -c 'echo 1 >/sys/class/net/r1/queues/tx-0/xps_cpus &&
		echo 2 >/sys/class/net/r1/queues/tx-1/xps_cpus' || return 1
	# The LOADs that make the nodes live go out of s0: whole checksums.
	in_ns "$NS_S" ethtool -K s0 tx off >/dev/null || return 1
	bpftool prog load "$SINK_OBJ" "$PIN/sink/prog" pinmaps "$PIN/sink" &&
		bpftool prog load "$SINK_OBJ" "$PIN/ceil/prog" pinmaps "$PIN/ceil" || return 1
	in_ns "$NS_S" bpftool net attach xdpdrv pinned "$PIN/sink/prog" dev s0 || return 1
	cat >"$TMP/cpn.yaml" <<EOF
interfaces: [r0, r1]
control_port: $CTL
services:
  - {name: bench, id: 1, vip: $VIP, port: $PORT, policy: p2c, stale_ms: 600000,
     max_wait_us: 0, max_queue: 0, nodes: [1, 2, 3, 4], liveness: reports}
nodes:
  - {id: 1, addr: "10.91.1.2:$PORT"}
  - {id: 2, addr: "10.91.1.3:$PORT"}
  - {id: 3, addr: "10.91.1.4:$PORT"}
  - {id: 4, addr: "10.91.1.5:$PORT"}
tenants:
  - {id: 42, services: [bench]}
EOF
	cpnctl_ up --config "$TMP/cpn.yaml" >"$TMP/up.log" 2>&1 || {
		cat "$TMP/up.log" >&2
		return 1
	}
	R0MAC=$(mac_of "$NS_R" r0)
	[ -n "$R0MAC" ]
}

# The router's r0/r1 for one path.
router_path() {
	local dev
	for dev in r0 r1; do ip -n "$NS_R" link set dev "$dev" xdp off || return 1; done
	case "$1" in
	xdp)
		for dev in r0 r1; do
			in_ns "$NS_R" bpftool net attach xdpdrv pinned "$PIN/cpn/progs/cpn_xdp" \
				dev "$dev" || return 1
		done
		# One fresh LOAD per node: live (stale_ms 600000), outstanding reset.
		for k in 1 2 3 4; do
			in_ns "$NS_S" "$PKTGEN" load --node "$k" --from "10.91.1.$((k + 1)):$PORT" \
				--to "10.91.1.1:$CTL" --capacity 64 --svc-us 100 || return 1
		done
		;;
	ceiling)
		in_ns "$NS_R" bpftool net attach xdpdrv pinned "$PIN/ceil/prog" dev r0 || return 1
		;;
	kernel) ;;
	esac
}

gen_args() { # cores path -> the generator's arguments (one per line)
	local cpus=0 map=$PIN/sink/cpn_sink_counts
	[ "$1" = 2 ] && cpus=0,1
	[ "$2" = ceiling ] && map=$PIN/ceil/cpn_sink_counts
	printf '%s\n' --dev g0 --dst-mac "$R0MAC" --src 10.91.0.2 --dst "$VIP:$PORT" --service 1 \
		--tenant 42 --flows 1024 --queues "$1" --cpus "$cpus" --sink-map "$map" \
		--warmup "$WARM" --windows 1 --seconds "$SECS" --json
}

# run CORES PATH ROUND: one window; appends the generator's JSON to runs.jsonl.
run() {
	local cores=$1 path=$2 round=$3 args out
	router_path "$path" || die "cannot set up the router for path $path"
	mapfile -t args < <(gen_args "$cores" "$path")
	in_ns "$NS_G" timeout -s TERM "$(awk -v w="$WARM" -v s="$SECS" 'BEGIN{print int(w + s + 20)}')" \
		"$PKTGEN" "${args[@]}" >"$TMP/gen.out" 2>"$TMP/gen.err" &
	GEN_PID=$!
	wait "$GEN_PID" || {
		GEN_PID=
		cat "$TMP/gen.err" >&2
		die "cpn-pktgen failed ($cores core(s), $path, round $round)"
	}
	GEN_PID=
	out=$(cat "$TMP/gen.out")
	printf '{"cores":%s,"path":"%s","round":%s,"gen":%s}\n' "$cores" "$path" "$round" "$out" \
		>>"$TMP/runs.jsonl"
	[ "$SMOKE" -eq 1 ] || python3 -c '
import json, sys
r = json.loads(sys.argv[1])
w = r["gen"]["windows"][0]
print("round %d  %d core(s)  %-8s sent %6.3f Mpps  received %6.3f Mpps  drop %6.2f %%" %
      (r["round"], r["cores"], r["path"], w["sent_mpps"], w["rx_mpps"], w["drop_pct"]))
' "$(tail -n 1 "$TMP/runs.jsonl")" >&2
}

setup || die "cannot set up the namespaces (see above)"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
PATHS=(kernel xdp ceiling)
for r in $(seq "$ROUNDS"); do
	for c in 1 2; do
		for p in "${PATHS[@]}"; do run "$c" "$p" "$r"; done
	done
done
cpnctl_ stats -j >"$TMP/stats.json" 2>/dev/null || echo '{}' >"$TMP/stats.json"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# The command as given (BENCH_QUICK when set), for the record.
CMD="bench/bench-fwdrate.sh"
[ "$QUICK" = 1 ] && CMD="BENCH_QUICK=1 $CMD"
for a in "${ARGV[@]}"; do CMD+=" $(printf '%q' "$a")"; done
GEN_CMD="nsenter --net=/run/netns/$NS_G $BUILD/cpn-pktgen $(gen_args 1 xdp | tr '\n' ' ')"

FR_CMD=$CMD FR_GEN_CMD=$GEN_CMD FR_UNAME=$(uname -srm) FR_NPROC=$(nproc) FR_LOAD0=$LOAD0 \
	FR_LOAD1=$LOAD1 FR_QUICK=$QUICK FR_SMOKE=$SMOKE FR_ROUNDS=$ROUNDS FR_SECS=$SECS FR_WARM=$WARM \
	FR_ELAPSED=$((SECONDS - T0)) python3 - "$TMP/runs.jsonl" "$TMP/stats.json" "$TMP/summary.json" "$TMP/fwdrate.dat" <<'PY'
import json, os, statistics, sys
env = os.environ
runs = [json.loads(l) for l in open(sys.argv[1])]
stats = json.load(open(sys.argv[2]))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
def spread(v):
    return {"median": round(statistics.median(v), 4), "min": round(min(v), 4),
            "max": round(max(v), 4), "runs": [round(x, 4) for x in v]}
res, problems = [], []
for cores in (1, 2):
    entry = {"cores": cores}
    for path in ("kernel", "xdp", "ceiling"):
        ws = [r["gen"]["windows"][0] for r in runs if r["cores"] == cores and r["path"] == path]
        rcvd = sum(w["received"] for w in ws)
        req = sum(w["requests"] for w in ws)
        tagged = sum(w["tagged"] for w in ws)
        entry[path] = {"rx_mpps": spread([w["rx_mpps"] for w in ws]),
                       "sent_mpps": spread([w["sent_mpps"] for w in ws]),
                       "drop_pct": spread([w["drop_pct"] for w in ws]),
                       "rx_mpps_per_cpu": spread([w["rx_mpps_per_cpu"] for w in ws]),
                       "cpu_share_pct": spread([100 * w["cpu_s"] / (w["seconds"] * cores) for w in ws]),
                       "received": rcvd, "requests": req, "steered": tagged}
        if rcvd == 0:
            problems.append("%d core(s) %s: nothing received" % (cores, path))
        elif path == "xdp" and tagged < 0.99 * rcvd:
            problems.append("%d core(s) xdp: only %d of %d received frames were steered" % (cores, tagged, rcvd))
        elif path == "kernel" and (tagged or req < 0.99 * rcvd):
            problems.append("%d core(s) kernel: %d steered, %d requests of %d" % (cores, tagged, req, rcvd))
    def med(path, f):
        return entry[path][f]["median"]
    x, k = med("xdp", "rx_mpps"), med("kernel", "rx_mpps")
    entry["ratio_xdp_over_kernel"] = round(x / k, 3) if k else None
    x, k, c = (med(p, "rx_mpps_per_cpu") for p in ("xdp", "kernel", "ceiling"))
    entry["ratio_xdp_over_kernel_per_cpu"] = round(x / k, 3) if k else None
    # CPU time per frame on each path, and what the router adds to the
    # ceiling's (generator, first veth, a drop): derived from the medians.
    if x and k and c:
        ns = {p: 1e3 / med(p, "rx_mpps_per_cpu") for p in ("xdp", "kernel", "ceiling")}
        entry["cpu_ns_per_pkt"] = {p: round(v, 1) for p, v in ns.items()}
        entry["router_ns_per_pkt"] = {"xdp": round(ns["xdp"] - ns["ceiling"], 1),
                                      "kernel": round(ns["kernel"] - ns["ceiling"], 1)}
    res.append(entry)
frame_len = runs[0]["gen"]["frame_len"]
out = {
    "bench": "fwdrate",
    "command": env["FR_CMD"],
    "generator_command": env["FR_GEN_CMD"],
    "machine": {"uname": env["FR_UNAME"], "nproc": int(env["FR_NPROC"]), "cpu_model": cpu,
                "loadavg_start": env["FR_LOAD0"], "loadavg_end": env["FR_LOAD1"]},
    "quick": env["FR_QUICK"] == "1", "smoke": env["FR_SMOKE"] == "1",
    "rounds": int(env["FR_ROUNDS"]), "window_s": float(env["FR_SECS"]),
    "warmup_s": float(env["FR_WARM"]), "elapsed_s": int(env["FR_ELAPSED"]),
    "frame_len": frame_len, "flows_per_queue": 1024,
    "topology": "gen ns --veth--> router ns --veth--> sink ns; router: cpn XDP (p2c, 4 live nodes) or kernel ip_forward; sink: cpn_sink XDP counter",
    "cores_meaning": "1: one TX queue, one generator thread pinned to CPU 0; 2: two TX queues, threads pinned to CPUs 0 and 1. veth runs the receiver's NAPI on the sending CPU, so each core carries generator, router and sink for its queue.",
    "baseline": "kernel (same topology, same generator, same run); ceiling = generator + first veth with the frames dropped at the router's ingress",
    "results": res,
    "router_counters": {k: v for k, v in stats.items() if isinstance(v, int) and v},
    "problems": problems,
}
json.dump(out, open(sys.argv[3], "w"), indent=1)
with open(sys.argv[4], "w") as f:
    f.write("# cores, then median min max for kernel, xdp, ceiling: Mpps received (cols 2-10),\n"
            "# Mpps received per CPU-second (cols 11-19)\n")
    for e in res:
        f.write("%d" % e["cores"])
        for fig in ("rx_mpps", "rx_mpps_per_cpu"):
            for p in ("kernel", "xdp", "ceiling"):
                s = e[p][fig]
                f.write(" %.4f %.4f %.4f" % (s["median"], s["min"], s["max"]))
        f.write("\n")
for p in problems:
    print("bench-fwdrate: " + p, file=sys.stderr)
sys.exit(3 if problems else 0)
PY
SUM_RC=$?
[ "$SUM_RC" -eq 0 ] || [ "$SUM_RC" -eq 3 ] || die "cannot summarise the runs"

if [ -n "$JSON_OUT" ]; then
	if ! { mkdir -p "$(dirname "$JSON_OUT")" && cp "$TMP/summary.json" "$JSON_OUT"; }; then
		die "cannot write $JSON_OUT"
	fi
fi
if [ -n "$PLOT_DIR" ]; then
	term=png
	echo 'set terminal' | gnuplot 2>&1 | grep -qw pngcairo && term=pngcairo
	sub="$(uname -srm), $(nproc) CPUs; $ROUNDS rounds of $SECS s; bars: median, whiskers: min..max"
	mkdir -p "$PLOT_DIR" || die "cannot create $PLOT_DIR"
	gnuplot -e "datafile='$TMP/fwdrate.dat'; outfile='$PLOT_DIR/fwdrate.png'; term='$term'; subtitle='$sub'" \
		"$PLOT_GP" || die "gnuplot failed"
fi
python3 - "$TMP/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("bench-fwdrate: %s rounds, %s s windows after %s s warm-up, %d-byte cpn REQUESTs, %s (%d CPUs), "
      "load average %s -> %s" % (d["rounds"], d["window_s"], d["warmup_s"], d["frame_len"],
      d["machine"]["cpu_model"], d["machine"]["nproc"], d["machine"]["loadavg_start"], d["machine"]["loadavg_end"]))
print("%-5s %-8s %9s %17s %9s %7s %6s %10s %17s" % ("cores", "path", "rx Mpps", "(min..max)",
      "sent Mpps", "drop %", "CPU %", "Mpps/CPU", "(min..max)"))
for e in d["results"]:
    for p in ("kernel", "xdp", "ceiling"):
        r = e[p]
        print("%-5d %-8s %9.3f %8.3f..%-7.3f %9.3f %7.2f %6.0f %10.3f %8.3f..%-7.3f" % (e["cores"], p,
              r["rx_mpps"]["median"], r["rx_mpps"]["min"], r["rx_mpps"]["max"], r["sent_mpps"]["median"],
              r["drop_pct"]["median"], r["cpu_share_pct"]["median"], r["rx_mpps_per_cpu"]["median"],
              r["rx_mpps_per_cpu"]["min"], r["rx_mpps_per_cpu"]["max"]))
    ns = e.get("cpu_ns_per_pkt", {})
    rt = e.get("router_ns_per_pkt", {})
    print("      xdp/kernel: %s received, %s per CPU-second; CPU ns/frame: kernel %s, xdp %s, ceiling %s"
          % (e["ratio_xdp_over_kernel"], e["ratio_xdp_over_kernel_per_cpu"], ns.get("kernel"),
             ns.get("xdp"), ns.get("ceiling")))
PY
[ "$SUM_RC" -eq 0 ] || die "the runs did not check out (see above); figures written all the same"
