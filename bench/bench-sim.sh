#!/usr/bin/env bash
# bench-sim: p50/p99/p99.9 response time of every policy of sched.h at scale
# (1000 nodes, 1, 10 and 100 routers, stale views), simulated by cpn-sim on
# the real policy core, next to the baselines measured in the same run
# (random: M/M/1; one central queue per service: M/M/k) and the theory
# (tools/cpn-sim/mmk.h). The simulator is first checked against M/M/k and M/M/1:
# more than 5 % off fails the benchmark (exit 1).
#
# Full: 2,000,000 measured requests per point, 3 repeats (median, min, max),
# about 2 minutes on one core. BENCH_QUICK=1: 200,000 per point (< 30 s).
# --smoke: 128 nodes, 1 and 4 routers, a few seconds: the plumbing only.
#
# usage: bench/bench-sim.sh [--json-out FILE] [--plot-dir DIR] [--smoke]
#                           [-- cpn-sim options...]
#   env: BUILD (build), BENCH_QUICK=1 (short runs)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SIM=$BUILD/cpn-sim
PLOT_DIR=docs/bench
JSON=
SMOKE=0
self="bench/bench-sim.sh $*"

usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) [ $# -ge 2 ] || usage; JSON=$2; shift 2 ;;
	--plot-dir) [ $# -ge 2 ] || usage; PLOT_DIR=$2; shift 2 ;;
	--smoke) SMOKE=1; shift ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
die() {
	echo "bench-sim: $*" >&2
	exit 1
}
[ -x "$SIM" ] || die "$SIM not built (make $SIM)"
[ -n "$JSON" ] || JSON=$PLOT_DIR/sim.json
mkdir -p "$PLOT_DIR" "$(dirname "$JSON")" || die "cannot create the output directories"
TABLE=$PLOT_DIR/sim_p99.dat
PNG=$PLOT_DIR/sim_p99.png

# BENCH_QUICK is read by cpn-sim itself: fewer requests per point.
args=(--repeats 3)
[ "$SMOKE" -eq 1 ] &&
	args=(--nodes 128 --routers "1,4" --requests 20000 --repeats 2 --val-requests 400000)
"$SIM" "${args[@]}" --validate --json-out "$JSON" --table-out "$TABLE" \
	--invoked-by "$self" "$@"
rc=$?
[ -s "$JSON" ] || die "cpn-sim wrote no JSON (rc=$rc)"

# References for the plot, from the JSON: M/M/1 p99 and the central queue.
refs=$(python3 - "$JSON" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
c = [r for r in d["results"] if r["policy"] == "central"]
pol = []
for r in d["results"]:
    if r["policy"] != "central" and r["policy"] not in pol:
        pol.append(r["policy"])
modes = []
for r in d["results"]:
    if r["mode"] != "none" and r["mode"] not in modes:
        modes.append(r["mode"])
print("mm1=%g; central=%s; npol=%d; modes='%s'; subtitle='(%d nodes, rho %g)'" % (
    d["theory"]["mm1"]["p99"], c[0]["p99"] if c else "NaN", len(pol), " ".join(modes),
    d["params"]["nodes"], d["params"]["rho"]))
PY
)
[ -n "$refs" ] || die "cannot read $JSON (python3 missing?)"
command -v gnuplot >/dev/null || die "gnuplot not installed"
gnuplot -e "datafile='$TABLE'; outfile='$PNG'; $refs" bench/plot/sim.gp ||
	die "gnuplot failed"
echo "bench-sim: $JSON, $PNG" >&2
[ $rc -eq 0 ] || echo "bench-sim: cpn-sim exited $rc (validation failed?)" >&2
exit $rc
