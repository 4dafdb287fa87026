#!/usr/bin/env bash
# bench-sim: p50/p99/p99.9 response time of the policies of sched.h at scale,
# simulated by cpn-sim on the real policy core, in two parts:
#
#   scale         every policy, 1000 nodes, 1, 10 and 100 routers with stale
#                 views, in each view-update mode, next to the baselines
#                 measured in the same run (random: M/M/1; one central queue:
#                 M/M/k) and the theory (tools/cpn-sim/mmk.h). The simulator
#                 is first checked against M/M/k and M/M/1: more than 5 % off
#                 fails the benchmark (exit 1).
#   many routers  jiq (idle tokens to the steering router), jiq-rand (tokens
#                 to a random router), p2c on the router's own view,
#                 p2c-probe (two fresh probes per request) and the central
#                 queue: 1000 nodes, 1, 10 and 100 routers, rho 0.8, 0.9 and
#                 0.95, router load uniform or skewed (10 % of the routers
#                 take 50 % of the requests), with the extra messages per
#                 request of each; then jiq's node rule, heterogeneous node
#                 speeds and reply/token delays.
#   late binding  late1 and late2 (dispatch: late, JBSQ(n) of include/cpn/late.h
#                 with n = 1 and 2) next to central, least and p2c: k = 8
#                 nodes, one router with exact views, rho 0.5 to 0.9 (late1
#                 is M/M/k there); 100 nodes and 1 or 10 routers at rho 0.8,
#                 views exact or from 50 ms LOADs; round trips to the nodes
#                 (what n = 2 hides).
#
# Full: 2,000,000 measured requests per point, 3 repeats of each point of the
# main tables (median, min, max), about 7 minutes on one core.
# BENCH_QUICK=1: 200,000 per point (< 1 minute; message counts then start
# with the run rather than one heartbeat interval into it).
# --smoke: 128-200 nodes, 1 and 4 or 10 routers, a few seconds: the plumbing.
#
# usage: bench/bench-sim.sh [--json-out FILE] [--plot-dir DIR] [--smoke]
#                           [-- cpn-sim options of the scale part...]
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
command -v python3 >/dev/null || die "python3 not installed"
command -v gnuplot >/dev/null || die "gnuplot not installed"
TABLE=$PLOT_DIR/sim_p99.dat
PNG=$PLOT_DIR/sim_p99.png
MANY_PNG=$PLOT_DIR/sim_many.png
W=$(mktemp -d /tmp/cpn-bench-sim.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$W"' EXIT

# ---- scale: every policy, view-update modes -------------------------------
# BENCH_QUICK is read by cpn-sim itself: fewer requests per point.
SCALE_POL=random,round-robin,maglev,p2c,least,central
args=(--policies "$SCALE_POL" --repeats 3)
[ "$SMOKE" -eq 1 ] &&
	args=(--policies "$SCALE_POL" --nodes 128 --routers "1,4" --requests 20000 --repeats 2
		--val-requests 400000)
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
[ -n "$refs" ] || die "cannot read $JSON"
gnuplot -e "datafile='$TABLE'; outfile='$PNG'; $refs" bench/plot/sim.gp ||
	die "gnuplot failed"

# ---- many routers -----------------------------------------------------------
# Each run is one cpn-sim command (its JSON in $W/many-*.json, the command in
# $W/cmds); the merge below puts them under "many_routers" in $JSON.
t_many=$(date +%s)
MANY_POL=jiq,jiq-rand,p2c,p2c-probe,central
RHOS=(0.8 0.9 0.95)
RULES=(idle below:2 below:3 adapt)
m_base=(--nodes 1000 --modes router)
m_routers=1,10,100 m_big=100 m_reps=3
if [ "$SMOKE" -eq 1 ]; then
	m_base=(--nodes 200 --modes router --requests 20000)
	m_routers=1,10 m_big=10 m_reps=1
	RHOS=(0.8 0.9)
	RULES=(idle adapt)
fi
: >"$W/cmds"
# One cpn-sim command of a part (many, late): its options after the part's
# own (the array named BASE), its JSON in $W/PART-NAME.json, the command
# appended to CMDS, its errors to $W/PART.log.
run_sim() { # cmds part base name, cpn-sim options...
	local cmds=$1 part=$2 name=$4
	local -n base=$3
	shift 4
	echo "$name	$SIM ${base[*]} $*" >>"$cmds"
	"$SIM" "${base[@]}" "$@" --json-out "$W/$part-$name.json" 2>>"$W/$part.log" ||
		die "cpn-sim failed: $SIM ${base[*]} $* (see below)$(tail -5 "$W/$part.log")"
}
run_many() { run_sim "$W/cmds" many m_base "$@"; } # name, cpn-sim options...
for rho in "${RHOS[@]}"; do
	run_many "main-$rho-uniform" --policies "$MANY_POL" --routers "$m_routers" --rho "$rho" \
		--repeats "$m_reps"
	run_many "main-$rho-skewed" --policies "$MANY_POL" --routers "$m_routers" --rho "$rho" \
		--hot 0.1:0.5 --repeats "$m_reps"
	for rule in "${RULES[@]}"; do
		run_many "rule-$rho-${rule/:/}" --policies jiq --routers "$m_routers" --rho "$rho" \
			--token-rule "$rule"
	done
done
run_many "hetero" --policies "$MANY_POL" --routers "1,$m_big" --rho 0.8 --speeds 1,2,3,4
run_many "delay-reply200" --policies jiq,jiq-rand,p2c,p2c-probe --routers "$m_big" --rho 0.8 \
	--reply-us 200
run_many "delay-reply1000" --policies jiq,jiq-rand,p2c,p2c-probe --routers "$m_big" --rho 0.8 \
	--reply-us 1000
run_many "delay-token1000" --policies jiq,jiq-rand,p2c,p2c-probe --routers "$m_big" --rho 0.8 \
	--token-us 1000

python3 - "$JSON" "$W" "$PLOT_DIR" "$m_big" "$(($(date +%s) - t_many))" <<'PY' ||
import json, os, sys

out, work, plots, big, wall = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
d = json.load(open(out))
cmds = {}
for line in open(os.path.join(work, "cmds")):
    name, cmd = line.rstrip("\n").split("\t", 1)
    cmds[name] = cmd
FIG = ("p50", "p99", "p999")
MSG = ("msgs_per_req", "heartbeats_per_req", "probes_per_req", "token_msgs_per_req",
       "tokens_per_req", "by_token", "waited", "stale_views", "msgs_counted_from_s", "requests")


def rows(name):
    j = json.load(open(os.path.join(work, "many-%s.json" % name)))
    return j, j["results"]


def point(r, **extra):
    p = {"policy": r["policy"], "routers": r["routers"]}
    p.update(extra)
    for f in FIG:
        p[f] = r[f]
        p[f + "_min"], p[f + "_max"] = r[f + "_min"], r[f + "_max"]
    for f in MSG:
        p[f] = r.get(f)
    if r["policy"] == "central":  # one queue: no router, no message
        p["routers"] = None
        p["msgs_per_req"] = 0
    return p


table, rules, hetero, delays, params, commands = [], [], [], [], None, []
for name in cmds:
    j, res = rows(name)
    commands.append(cmds[name])
    kind = name.split("-")[0]
    if kind == "main":
        _, rho, load = name.split("-")
        params = params or j["params"]
        for r in res:
            table.append(point(r, rho=float(rho), load=load))
    elif kind == "rule":
        for r in res:
            rules.append(point(r, rho=j["params"]["rho"], rule=j["params"]["token_rule"] +
                               (":%d" % j["params"]["token_below"]
                                if j["params"]["token_rule"] == "below" else "")))
    elif kind == "hetero":
        for r in res:
            hetero.append(point(r, rho=j["params"]["rho"], speeds=j["params"]["speeds"]))
    else:
        for r in res:
            delays.append(point(r, rho=j["params"]["rho"], reply_us=j["params"]["reply_us"],
                                token_us=j["params"]["token_us"],
                                mean_us=j["params"]["mean_us"]))


def find(pol, R, rho, load):
    for p in table:
        if p["policy"] == pol and p["routers"] == R and p["rho"] == rho and p["load"] == load:
            return p
    return None


targets = []
u8, s8, u9 = find("jiq", big, 0.8, "uniform"), find("jiq", big, 0.8, "skewed"), \
    find("jiq", big, 0.9, "uniform")
if u8:
    targets.append({"what": "jiq, %d routers, rho 0.8: p99 <= 6.0 mean service times" % big,
                    "measured": u8["p99"], "limit": 6.0, "met": u8["p99"] <= 6.0})
    targets.append({"what": "jiq, %d routers, rho 0.8: <= 0.1 extra messages per request" % big,
                    "measured": u8["msgs_per_req"], "limit": 0.1,
                    "met": u8["msgs_per_req"] <= 0.1})
if u8 and s8:
    targets.append({"what": "jiq, %d routers, rho 0.8, skewed router load: p99 within 10 %% "
                    "of uniform" % big, "measured": s8["p99"] / u8["p99"], "limit": 1.1,
                    "met": s8["p99"] <= 1.1 * u8["p99"]})
if u9:
    targets.append({"what": "jiq, %d routers, rho 0.9: p99 <= 8" % big,
                    "measured": u9["p99"], "limit": 8.0, "met": u9["p99"] <= 8.0})

# The plot: p99 (top) and messages per request (bottom) against routers, a
# column per rho; uniform load solid, skewed dashed; central as a line.
rhos = sorted({p["rho"] for p in table})
pols = [p for p in ("jiq", "jiq-rand", "p2c", "p2c-probe") if any(q["policy"] == p for q in table)]
colour = {"jiq": "#1b9e77", "jiq-rand": "#d95f02", "p2c": "#7570b3", "p2c-probe": "#e7298a"}
dat = os.path.join(work, "many.dat")
blocks, idx = [], 0
with open(dat, "w") as f:
    for rho in rhos:
        for pol in pols:
            for load in ("uniform", "skewed"):
                pts = sorted((p for p in table if p["policy"] == pol and p["rho"] == rho and
                              p["load"] == load), key=lambda p: p["routers"])
                f.write("# rho %g %s %s\n" % (rho, pol, load))
                for p in pts:
                    f.write("%d %g %g %g %g\n" % (p["routers"], p["p99"], p["p99_min"],
                                                 p["p99_max"], max(p["msgs_per_req"], 1e-3)))
                f.write("\n\n")
                blocks.append((rho, pol, load, idx))
                idx += 1
png = os.path.join(plots, "sim_many.png")
gp = ["if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size %d,760 "
      "font ',10' } else { set terminal png size %d,760 }" % (420 * len(rhos), 420 * len(rhos)),
      "set output '%s'" % png,
      "set multiplot layout 2,%d title 'cpn-sim, many routers: %d nodes, one service "
      "(solid: uniform router load; dashed: 10%% of routers take 50%%)'" %
      (len(rhos), params["nodes"] if params else 0),
      "set logscale x", "set grid", "set xrange [0.8:*]", "set key top left font ',8'"]
for row in ("p99", "msgs"):
    for rho in rhos:
        c = [p for p in table if p["policy"] == "central" and p["rho"] == rho]
        gp.append("set title 'rho %g: %s'" % (rho, "p99 / mean service time" if row == "p99"
                                              else "extra messages per request (0 at 0.001)"))
        gp.append("set xlabel 'routers'")
        if row == "p99":
            gp += ["unset logscale y", "set yrange [0:*]", "set ylabel 'p99'"]
        else:
            gp += ["set logscale y", "set yrange [0.0008:20]", "set ylabel 'messages'"]
        parts = []
        for (r, pol, load, i) in blocks:
            if r != rho:
                continue
            col = "2:3:4" if row == "p99" else "5"
            style = "yerrorlines" if row == "p99" else "linespoints"
            parts.append("'%s' index %d using 1:%s with %s lw 2 pt 7 ps 0.6 dt %d lc rgb '%s' "
                         "title '%s'" % (dat, i, col, style, 1 if load == "uniform" else 2,
                                         colour[pol], pol if load == "uniform" else ""))
        if row == "p99" and c:
            parts.append("%g with lines dt 3 lc rgb 'black' title 'central queue'" % c[0]["p99"])
        if row == "msgs":
            parts.append("0.1 with lines dt 3 lc rgb 'black' title '0.1'")
        gp.append("plot " + ", ".join(parts))
gp.append("unset multiplot")
with open(os.path.join(work, "many.gp"), "w") as f:
    f.write("\n".join(gp) + "\n")
plot_ok = os.system("gnuplot '%s'" % os.path.join(work, "many.gp")) == 0

d["many_routers"] = {
    "units": "response time in units of the mean service time; messages per request beyond "
             "the request and its reply",
    "params": {k: params[k] for k in ("nodes", "mean_us", "report_ms", "stale_ms", "liveness_ms",
                                      "liveness_stale_ms", "token_rule", "token_store",
                                      "token_tries", "token_ttl_svc", "token_ttl_min_us",
                                      "requests", "warmup", "repeats", "seed")} if params else {},
    "skewed": "10 % of the routers take 50 % of the requests (--hot 0.1:0.5)",
    "commands": commands,
    "table": table, "node_rule": rules, "hetero": hetero, "delays": delays,
    "targets": targets,
    "plots": ["sim_many.png"] if plot_ok else [],
    "wall_s": float(wall),
}
with open(out, "w") as f:
    json.dump(d, f, indent=1)
    f.write("\n")
for t in targets:
    print("bench-sim: %s: %.3f, %s" % (t["what"], t["measured"], "met" if t["met"] else "NOT met"),
          file=sys.stderr)
sys.exit(0 if plot_ok else 3)
PY
	die "cannot merge the many-routers runs into $JSON (or plot them)"
# ---- late binding ---------------------------------------------------------
# Each run is one cpn-sim command (its JSON in $W/late-*.json, the command in
# $W/late-cmds); merged under "late_binding" in $JSON.
t_late=$(date +%s)
LATE_POL=central,late1,late2,least,p2c
L_RHOS=(0.5 0.7 0.8 0.9)
l_base=(--policies "$LATE_POL")
l_reps=3
if [ "$SMOKE" -eq 1 ]; then
	l_base=(--policies "$LATE_POL" --requests 20000)
	l_reps=1
	L_RHOS=(0.8 0.9)
fi
: >"$W/late-cmds"
run_late() { run_sim "$W/late-cmds" late l_base "$@"; } # name, cpn-sim options...
for rho in "${L_RHOS[@]}"; do
	run_late "k8-$rho" --nodes 8 --routers 1 --report-ms 0 --modes reports,router --rho "$rho" \
		--repeats "$l_reps"
done
run_late "routers-exact" --nodes 100 --routers 1,10 --report-ms 0 --modes router --rho 0.8
run_late "routers-loads" --nodes 100 --routers 1,10 --report-ms 50 --modes router --rho 0.8
for pu in 1000 4000; do
	run_late "path-$pu" --nodes 8 --routers 1 --report-ms 0 --modes router --rho 0.8 --path-us "$pu"
done

python3 - "$JSON" "$W" "$(($(date +%s) - t_late))" <<'PY' ||
import json, os, sys

out, work, wall = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(out))
FIG = ("mean", "p50", "p99", "p999")
table, mmk, commands, params = [], [], [], None
for line in open(os.path.join(work, "late-cmds")):
    name, cmd = line.rstrip("\n").split("\t", 1)
    commands.append(cmd)
    j = json.load(open(os.path.join(work, "late-%s.json" % name)))
    pr = j["params"]
    params = params or pr
    part = name.split("-")[0]
    if part == "k8":
        mmk.append(dict(j["theory"]["mmk_group"], rho=pr["rho"]))
    for r in j["results"]:
        p = {"part": part, "policy": r["policy"], "late_bound": r["late_bound"],
             "nodes": pr["nodes"], "routers": None if r["policy"] == "central" else r["routers"],
             "mode": r["mode"], "rho": pr["rho"], "report_ms": pr["report_ms"],
             "path_us": pr["path_us"]}
        for f in FIG:
            p[f] = r[f]
            p[f + "_min"], p[f + "_max"] = r[f + "_min"], r[f + "_max"]
        for f in ("held", "max_held", "max_queue", "refused", "early", "requests"):
            p[f] = r[f]
        table.append(p)
d["late_binding"] = {
    "units": "response time in units of the mean service time, a held request's from its "
             "arrival at the router; held: share of requests held at the router",
    "params": {k: params[k] for k in ("mean_us", "late_queue", "requests", "warmup",
                                      "seed")} if params else {},
    "commands": commands, "table": table, "mmk": mmk, "wall_s": float(wall),
}
with open(out, "w") as f:
    json.dump(d, f, indent=1)
    f.write("\n")
PY
	die "cannot merge the late-binding runs into $JSON"
echo "bench-sim: $JSON, $PNG, $MANY_PNG" >&2
[ $rc -eq 0 ] || echo "bench-sim: cpn-sim exited $rc (validation failed?)" >&2
exit $rc
