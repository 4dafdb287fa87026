#!/usr/bin/env bash
# bench-fleet: one router against three routers behind ECMP, on the netns
# testbed, with the same workers and load, in the same run.
#
# K workers (default 8), each one FCFS server (cpn-worker --kernel synthetic
# --svc exp:2000 --capacity 1 --max-batch 1, --seed k), behind three XDP
# routers (`tools/testbed up --routers 3 --name fb3`: the client's ECMP
# route over the three, each with its own daemon, full NAT so that replies
# come back through the router that steered them). The single router is
# the same topology with the paths of routers 2 and 3 withdrawn from the
# client's route: the same links, fabric and workers, one router's view.
# cpn-load sends open-loop Poisson arrivals at rho x K x 500 req/s from 64
# source ports (so that ECMP spreads them) for --warmup + --duration s.
# Policies are switched with `cpnctl apply` on every router of a testbed.
# Runs are interleaved: repeat r of every (routers, policy), then r + 1, each
# (r) with the same arrival seed. Latencies are in units of the nominal mean
# service time (2 ms), median over the repeats and min..max, next to the
# M/M/k and M/M/1 quantiles at that rho (build/cpn-mmk). The figure that
# matters is the ratio of the three routers' p99 to the one router's, per
# policy: how much the fleet loses by spreading what each router knows.
#
# usage: bench/bench-fleet.sh [--json-out FILE] [--quick] [--smoke] [--workers K]
#                             [--rho RHO] [--policies LIST] [--reps R] [--duration S]
#                             [--warmup S] [--worker-args ARGS]
#   full: rho 0.8, policies p2c,jiq, 3 repeats of 1 + 5 s (~2 min);
#   --quick (or BENCH_QUICK=1): 1 repeat of 1 + 3 s; --smoke: 3 workers, jiq,
#   0.5 + 1.5 s. Testbed fb3 (removed on exit). Needs root and
#   build/{cpnctl,cpn-worker,cpn-load,cpn-mmk}.
#   env: BUILD (build)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
[ "${BENCH_QUICK:-}" = 1 ] && CMDLINE="BENCH_QUICK=1 $CMDLINE"
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
TB=tools/testbed
SVC_US=2000

MODE=full K='' RHO=0.8 POLICIES='' REPS='' DUR='' WARM='' JSON_OUT='' WARGS=''
[ "${BENCH_QUICK:-}" = 1 ] && MODE=quick
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "bench-fleet: $*" >&2
	exit 1
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) [ $# -ge 2 ] || usage; JSON_OUT=$2; shift 2 ;;
	--quick) MODE=quick; shift ;;
	--smoke) MODE=smoke; shift ;;
	--workers) [ $# -ge 2 ] || usage; K=$2; shift 2 ;;
	--rho) [ $# -ge 2 ] || usage; RHO=$2; shift 2 ;;
	--policies) [ $# -ge 2 ] || usage; POLICIES=$2; shift 2 ;;
	--reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
	--duration) [ $# -ge 2 ] || usage; DUR=$2; shift 2 ;;
	--warmup) [ $# -ge 2 ] || usage; WARM=$2; shift 2 ;;
	--worker-args) [ $# -ge 2 ] || usage; WARGS=$2; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
case "$MODE" in
full) : "${K:=8}" "${POLICIES:=p2c,jiq}" "${REPS:=3}" "${DUR:=5}" "${WARM:=1}" ;;
quick) : "${K:=8}" "${POLICIES:=p2c,jiq}" "${REPS:=1}" "${DUR:=3}" "${WARM:=1}" ;;
smoke) : "${K:=3}" "${POLICIES:=jiq}" "${REPS:=1}" "${DUR:=1.5}" "${WARM:=0.5}" ;;
esac
[[ "$K" =~ ^[0-9]+$ ]] && [ "$K" -ge 1 ] && [ "$K" -le 32 ] || die "--workers: 1..32"
python3 -c "import sys; r=float('$RHO'); sys.exit(0 if 0 < r < 1 else 1)" 2>/dev/null ||
	die "--rho: 0 < RHO < 1"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
for f in cpnctl cpn-worker cpn-load cpn-mmk; do
	[ -x "$BUILD/$f" ] || die "$BUILD/$f not built: make all"
done
TMP=$(mktemp -d /tmp/cpn-bench-fleet.XXXXXX)
cleanup() {
	$TB down --name fb3 >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RATE=$(python3 -c "print(round($RHO * $K * 1e6 / $SVC_US))")
workers=()
for k in $(seq "$K"); do
	workers+=(--worker "--kernel synthetic --svc exp:$SVC_US --capacity 1 --max-batch 1 --seed $k $WARGS")
done
T0=$SECONDS
timeout 180 $TB up --name fb3 --routers 3 "${workers[@]}" >"$TMP/up3.log" 2>&1 ||
	die "testbed fb3: $(tail -3 "$TMP/up3.log")"

set_policy() { # testbed routers policy
	local name=$1 n=$2 pol=$3 i state
	state=/run/cpn-testbed/$name
	sed "s/policy: [a-z0-9-]*/policy: $pol/" "$state/cpn.yaml" >"$TMP/$name-$pol.yaml"
	for i in $(seq "$n"); do
		$TB cpnctl --name "$name" --router "$i" apply --config "$TMP/$name-$pol.yaml" \
			>/dev/null 2>&1 || return 1
	done
}

echo "bench-fleet: $K workers, rho $RHO ($RATE req/s), policies $POLICIES, $REPS x ($WARM + $DUR) s" >&2
: >"$TMP/runs.txt"
for r in $(seq "$REPS"); do
	for pol in ${POLICIES//,/ }; do
		for n in 1 3; do
			name=fb3
			set_policy "$name" 3 "$pol" || die "cannot set policy $pol on $name"
			for i in 2 3; do
				if [ "$n" = 1 ]; then $TB withdraw --name fb3 $i; else $TB restore --name fb3 $i; fi
			done
			sleep 0.2
			out=$TMP/run-$r-$pol-$n.json
			$TB exec --name "$name" client -- "$BUILD/cpn-load" --to 10.90.100.1:7470 \
				--service 1 --tenant 42 --rate "$RATE" --arrivals poisson --seed "$r" \
				--duration "$DUR" --warmup "$WARM" --timeout 1000 --sockets 64 \
				--kernel synthetic --json >"$out" 2>"$out.err" ||
				die "cpn-load ($pol, $n routers): $(tail -2 "$out.err")"
			echo "$r $pol $n $out" >>"$TMP/runs.txt"
			echo "  rep $r $pol, $n router(s): $(python3 -c "import json; d=json.load(open('$out')); print('p99', d['latency_us']['p99'], 'us, lost', d['lost'])")" >&2
		done
	done
done

export K RHO RATE SVC_US REPS DUR WARM MODE CMDLINE MMK=$BUILD/cpn-mmk ELAPSED=$((SECONDS - T0))
python3 - "$TMP/runs.txt" "${JSON_OUT:-}" <<'PY'
import json, os, statistics, subprocess, sys

E = os.environ
K, rho, svc = int(E["K"]), float(E["RHO"]), float(E["SVC_US"])
runs = {}
for line in open(sys.argv[1]):
    r, pol, n, path = line.split()
    d = json.load(open(path))
    runs.setdefault((pol, int(n)), []).append(d)

def mmk(k):
    out = subprocess.run([E["MMK"], "--k", str(k), "--rho", "%.6f" % rho, "--mean", "%.6f" % svc,
                          "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)

theory = {"mmk": mmk(K), "mm1": mmk(1)}
def q(t, name):
    for k, v in t.items():
        if isinstance(v, dict) and name in v:
            return v[name]
    return t.get(name)

rows = []
for (pol, n), ds in sorted(runs.items()):
    def med(key):
        xs = [d["latency_us"][key] / svc for d in ds]
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    rows.append({"policy": pol, "routers": n, "p50": med("p50"), "p99": med("p99"),
                 "p999": med("p99.9"), "sent": sum(d["sent"] for d in ds),
                 "lost": sum(d["lost"] for d in ds), "busy": sum(d["busy"] for d in ds)})
ratio = {}
for pol in sorted({r["policy"] for r in rows}):
    one = [r for r in rows if r["policy"] == pol and r["routers"] == 1]
    three = [r for r in rows if r["policy"] == pol and r["routers"] == 3]
    if one and three:
        ratio[pol] = three[0]["p99"]["median"] / one[0]["p99"]["median"]
res = {"bench": "fleet", "command": E["CMDLINE"], "mode": E["MODE"], "workers": K, "rho": rho,
       "rate": int(E["RATE"]), "mean_service_us": svc, "repeats": int(E["REPS"]),
       "duration_s": float(E["DUR"]), "warmup_s": float(E["WARM"]), "rows": rows,
       "p99_ratio_3_to_1": ratio, "theory_us": theory, "elapsed_s": int(E["ELAPSED"])}
print("%-6s %8s %10s %10s %10s %8s" % ("policy", "routers", "p50", "p99", "p99.9", "lost"))
for r in rows:
    print("%-6s %8d %10.2f %10.2f %10.2f %8d" % (r["policy"], r["routers"], r["p50"]["median"],
          r["p99"]["median"], r["p999"]["median"], r["lost"]))
for pol, x in ratio.items():
    print("p99 of 3 routers / 1 router, %s: %.3f" % (pol, x))
print("M/M/%d: %s; M/M/1: %s (us)" % (K, json.dumps(theory["mmk"]), json.dumps(theory["mm1"])))
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump(res, f, indent=1)
PY
