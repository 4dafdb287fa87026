#!/usr/bin/env bash
# bench-worker: requests/s of cpn-worker against its batch size (--max-batch B)
# for the mlp and vsearch kernels, CPU backend (and CUDA where it starts).
#
# Method: one worker (--capacity 1, default models: mlp 256,512,256,16,
# vsearch 10000 x 128, k 10) on 127.0.0.1, started afresh for every
# measurement, driven directly by cpn-load in a closed loop with
# C = 2 B + 4 requests outstanding: one batch of B executes while the next B
# wait, so every batch closes full (checked: the mean batch size from the
# worker's /metrics is reported) and the worker, not the offered rate, sets
# the throughput. An open loop would need a rate sweep per B to find the
# same saturation point. req/s = replies / measured window after --warmup;
# p50/p99 are the REPLY latencies cpn-load saw (closed loop: they include the
# wait for the batch ahead, C / req/s by Little's law). The runs are
# interleaved (run 1 of every B, then run 2, ...) so that noise from the
# shared cores spreads over every B; medians and min/max are reported.
# Baseline: B = 1 of the same kernel and backend in the same run;
# speedup = req/s(B) / req/s(1), per run, then median/min/max.
# OpenBLAS: OPENBLAS_NUM_THREADS=1 (the worker also calls
# openblas_set_num_threads(1): one thread per batch slot); the core type
# OpenBLAS picked (its own CPUID detection, unless --openblas-coretype) is
# recorded. CUDA: one start of `cpn-worker --backend cuda`; where it fails,
# the backend is recorded as skipped with the worker's reason and what
# nvidia-smi says. The GPU's name, driver and memory (nvidia-smi) are
# recorded with the machine.
#
# usage: bench/bench-worker.sh [--json-out FILE] [--plot-dir DIR]
#                              [--runs N] [--batches 1,2,...] [--kernels mlp,vsearch]
#                              [--backends cpu,cuda] [--mlp-dims IN,...,OUT]
#                              [--vs-rows R] [--vs-dim D] [--timeout-ms T]
#                              [--duration S] [--warmup S] [--port-base P]
#                              [--openblas-coretype NAME] [--quick] [--smoke] [--keep]
#   full: B 1..64 (powers of 2), 3 runs of 2 s (~2.5 min); --quick (or
#   BENCH_QUICK=1): B 1,8,32, 1 run (~20 s); --smoke: B 1,4, 1 run of 0.3 s.
#   Models: --mlp-dims (default 256,512,256,16), --vs-rows x --vs-dim
#   (default 10000 x 128); --backends: those to measure (default both; cuda
#   only where it starts); --timeout-ms: cpn-load's reply timeout (2000).
#   Ports: P+1 worker, P+2 LOAD sink (nobody listens), P+3 /metrics (P: 7600).
#   env: BUILD (build)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
[ "${BENCH_QUICK:-}" = 1 ] && CMDLINE="BENCH_QUICK=1 $CMDLINE"
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
WORKER=$(realpath -m -- "$BUILD")/cpn-worker
LOAD=$(realpath -m -- "$BUILD")/cpn-load

MODE=full RUNS='' BATCHES='' KERNELS=mlp,vsearch DUR='' WARM='' PBASE=7600 CORETYPE='' KEEP=0
MLP_DIMS=256,512,256,16 VS_ROWS=10000 VS_DIM=128 WANT_BACKENDS=cpu,cuda TIMEOUT_MS=2000
JSON_OUT='' PLOT_DIR=''
[ "${BENCH_QUICK:-}" = 1 ] && MODE=quick
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) JSON_OUT=${2:-}; shift 2 || usage ;;
	--plot-dir) PLOT_DIR=${2:-}; shift 2 || usage ;;
	--runs) RUNS=${2:-}; shift 2 || usage ;;
	--batches) BATCHES=${2:-}; shift 2 || usage ;;
	--kernels) KERNELS=${2:-}; shift 2 || usage ;;
	--backends) WANT_BACKENDS=${2:-}; shift 2 || usage ;;
	--mlp-dims) MLP_DIMS=${2:-}; shift 2 || usage ;;
	--vs-rows) VS_ROWS=${2:-}; shift 2 || usage ;;
	--vs-dim) VS_DIM=${2:-}; shift 2 || usage ;;
	--timeout-ms) TIMEOUT_MS=${2:-}; shift 2 || usage ;;
	--duration) DUR=${2:-}; shift 2 || usage ;;
	--warmup) WARM=${2:-}; shift 2 || usage ;;
	--port-base) PBASE=${2:-}; shift 2 || usage ;;
	--openblas-coretype) CORETYPE=${2:-}; shift 2 || usage ;;
	--quick) MODE=quick; shift ;;
	--smoke) MODE=smoke; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage ;;
	*) echo "bench-worker: unknown argument '$1'" >&2; usage ;;
	esac
done
case "$MODE" in
full) : "${RUNS:=3}" "${BATCHES:=1,2,4,8,16,32,64}" "${DUR:=2}" "${WARM:=0.5}" ;;
quick) : "${RUNS:=1}" "${BATCHES:=1,8,32}" "${DUR:=2}" "${WARM:=0.5}" ;;
smoke) : "${RUNS:=1}" "${BATCHES:=1,4}" "${DUR:=0.3}" "${WARM:=0.1}" ;;
esac
die() {
	echo "bench-worker: $*" >&2
	exit 1
}
badarg() {
	echo "bench-worker: $*" >&2
	usage
}
[[ "$RUNS" =~ ^[1-9][0-9]?$ ]] || badarg "--runs: 1..99"
[[ "$BATCHES" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || badarg "--batches: a list like 1,2,4"
[[ "$KERNELS" =~ ^(mlp|vsearch)(,(mlp|vsearch))*$ ]] || badarg "--kernels: mlp and/or vsearch"
[[ "$WANT_BACKENDS" =~ ^(cpu|cuda)(,(cpu|cuda))*$ ]] || badarg "--backends: cpu and/or cuda"
[[ "$MLP_DIMS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)+$ ]] || badarg "--mlp-dims: IN,H1,...,OUT"
[[ "$VS_ROWS" =~ ^[1-9][0-9]*$ && "$VS_DIM" =~ ^[1-9][0-9]*$ ]] || badarg "--vs-rows, --vs-dim: numbers"
[[ "$TIMEOUT_MS" =~ ^[1-9][0-9]*$ ]] || badarg "--timeout-ms: a number"
if ! [[ "$DUR" =~ ^[0-9]+(\.[0-9]+)?$ && "$WARM" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
	badarg "--duration/--warmup: seconds"
fi
if ! [[ "$PBASE" =~ ^[0-9]+$ ]] || [ "$PBASE" -lt 1024 ] || [ "$PBASE" -gt 65530 ]; then
	badarg "--port-base: 1024..65530"
fi
[[ "$CORETYPE" =~ ^[A-Za-z0-9]*$ ]] || badarg "--openblas-coretype: a name such as Haswell"
[ -x "$WORKER" ] || die "$WORKER not built (make $BUILD/cpn-worker)"
[ -x "$LOAD" ] || die "$LOAD not built (make $BUILD/cpn-load)"
command -v python3 >/dev/null || die "python3 not installed"
IFS=, read -r -a BLIST <<<"$BATCHES"
IFS=, read -r -a KLIST <<<"$KERNELS"
for b in "${BLIST[@]}"; do [ "$b" -le 4096 ] || badarg "--batches: at most 4096"; done

LO=127.0.0.1
WPORT=$((PBASE + 1)) SINK=$LO:$((PBASE + 2)) MPORT=$((PBASE + 3))
python3 - "$WPORT" "$MPORT" <<'PY' || die "ports $WPORT (UDP) or $MPORT (TCP) in use: pick --port-base"
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", int(sys.argv[1])))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", int(sys.argv[2])))
PY

TMP=$(mktemp -d /tmp/cpn-bench-worker.XXXXXX)
wpid=
stop_worker() { # SIGTERM (it drains), at most 10 s, then SIGKILL
	[ -n "$wpid" ] || return 0
	kill -TERM "$wpid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	wpid=
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	stop_worker
	if [ "$KEEP" = 1 ]; then echo "bench-worker: files kept in $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export OPENBLAS_NUM_THREADS=1
if [ -n "$CORETYPE" ]; then export OPENBLAS_CORETYPE=$CORETYPE; else unset OPENBLAS_CORETYPE; fi

kargs() { # kernel -> the worker's model arguments
	case "$1" in
	mlp) echo "--mlp-dims $MLP_DIMS" ;;
	vsearch) echo "--vs-rows $VS_ROWS --vs-dim $VS_DIM" ;;
	esac
}
largs() { # kernel -> cpn-load's payload arguments (matching kargs)
	case "$1" in
	mlp) echo "--kernel mlp --mlp-in ${MLP_DIMS%%,*}" ;;
	vsearch) echo "--kernel vsearch --vs-dim $VS_DIM --vs-k 10" ;;
	esac
}

# start_worker LOG KERNEL BACKEND B: 0 once it listens, 1 if it exited.
start_worker() {
	local log=$1 k=$2 be=$3 b=$4 lim
	lim=$(awk -v d="$DUR" -v w="$WARM" 'BEGIN{printf "%d", d + w + 40}')
	: >"$log"
	# shellcheck disable=SC2046 # word splitting of kargs wanted
	timeout -s KILL "$lim" "$WORKER" --listen "$LO:$WPORT" --node-id 1 --router "$SINK" \
		--kernel "$k" --backend "$be" --max-batch "$b" --capacity 1 --metrics "$LO:$MPORT" \
		--load-interval-ms 100 --seed 1 $(kargs "$k") >"$log" 2>&1 &
	wpid=$!
	for _ in $(seq 300); do
		grep -q "node 1 on" "$log" && return 0
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.05
	done
	stop_worker
	return 1
}

# measure KERNEL BACKEND B RUN: $TMP/KERNEL-BACKEND-B-RUN.{json,prom,log}
measure() {
	local k=$1 be=$2 b=$3 r=$4 f="$TMP/$1-$2-$3-$4" c=$((2 * $3 + 4)) lim
	lim=$(awk -v d="$DUR" -v w="$WARM" 'BEGIN{printf "%d", d + w + 20}')
	if ! start_worker "$f.log" "$k" "$be" "$b"; then
		echo "bench-worker: $k/$be B=$b run $r: the worker did not start:" >&2
		sed 's/^/  /' "$f.log" >&2
		return 1
	fi
	# shellcheck disable=SC2046
	timeout "$lim" "$LOAD" --to "$LO:$WPORT" --service 1 --tenant 1 $(largs "$k") \
		--concurrency "$c" --warmup "$WARM" --duration "$DUR" --timeout "$TIMEOUT_MS" --seed "$r" \
		--json >"$f.json" 2>"$f.err" || echo "cpn-load exit $?" >>"$f.err"
	timeout 10 python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
' "http://$LO:$MPORT/metrics" >"$f.prom" 2>>"$f.err"
	stop_worker
	if [ -s "$f.err" ]; then
		echo "bench-worker: $k/$be B=$b run $r:" >&2
		sed 's/^/  /' "$f.err" >&2
	fi
	printf 'bench-worker: %-7s %-4s B=%-4s run %s: %s\n' "$k" "$be" "$b" "$r" \
		"$(python3 -c 'import json,sys; print("%.0f req/s" % json.load(open(sys.argv[1]))["reply_rate"])' \
			"$f.json" 2>/dev/null || echo failed)" >&2
}

# ---- CUDA: does the worker start with --backend cuda? ---------------------
BACKENDS=()
[[ ",$WANT_BACKENDS," == *,cpu,* ]] && BACKENDS+=(cpu)
: >"$TMP/gpu"
if command -v nvidia-smi >/dev/null 2>&1; then
	timeout 20 nvidia-smi -L >"$TMP/nvidia-smi" 2>&1 || echo "(nvidia-smi exit $?)" >>"$TMP/nvidia-smi"
	timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
		>"$TMP/gpu" 2>/dev/null || : >"$TMP/gpu"
else
	echo "nvidia-smi: not installed" >"$TMP/nvidia-smi"
fi
if [[ ",$WANT_BACKENDS," == *,cuda,* ]] && start_worker "$TMP/cuda-probe.log" mlp cuda 1; then
	stop_worker
	BACKENDS+=(cuda)
fi
# The CPU backend's device string names OpenBLAS's core type.
start_worker "$TMP/cpu-probe.log" mlp cpu 1 || die "the worker does not start: $(cat "$TMP/cpu-probe.log")"
stop_worker

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$RUNS"); do
	for be in "${BACKENDS[@]}"; do
		for k in "${KLIST[@]}"; do
			for b in "${BLIST[@]}"; do measure "$k" "$be" "$b" "$r"; done
		done
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- summary: JSON, text table, plots -------------------------------------
export TMP CMDLINE MODE RUNS BATCHES KERNELS DUR WARM WPORT MPORT CORETYPE LOAD0 LOAD1 START
export MLP_DIMS VS_ROWS VS_DIM WANT_BACKENDS TIMEOUT_MS
export BACKENDS_STR="${BACKENDS[*]}"
export JSON_OUT PLOT_DIR
python3 - <<'PY'
import json, os, re, statistics, subprocess, sys, time

E = os.environ
tmp = E["TMP"]
runs = int(E["RUNS"])
batches = [int(x) for x in E["BATCHES"].split(",")]
kernels = E["KERNELS"].split(",")
backends = E["BACKENDS_STR"].split()

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""

cpu_model = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu_model = line.split(":", 1)[1].strip()
        break
flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break

def firstline(path):
    try:
        return open(path).read().splitlines()[0]
    except Exception:
        return ""

probe = open(os.path.join(tmp, "cpu-probe.log")).read()
m = re.search(r"backend cpu \((.*)\), \d+ slot", probe)
cpu_device = m.group(1) if m else ""
m = re.search(r"openblas, ([A-Za-z0-9]+)", cpu_device)
corename = m.group(1) if m else None

def prom(path, name):
    try:
        for line in open(path):
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    except Exception:
        pass
    return None

def spread(v):
    v = [x for x in v if x is not None]
    if not v:
        return None
    return {"median": round(statistics.median(v), 3), "min": round(min(v), 3),
            "max": round(max(v), 3), "runs": [round(x, 3) for x in v]}

results = []
for be in [b for b in ("cpu", "cuda") if b in E["WANT_BACKENDS"].split(",")]:
    for k in kernels:
        if be not in backends:
            err = firstline(os.path.join(tmp, "cuda-probe.log")) or "did not start"
            err = err[len("cpn-worker: "):] if err.startswith("cpn-worker: ") else err
            why = ("cpn-worker --backend cuda: %s; %s"
                   % (err, open(os.path.join(tmp, "nvidia-smi")).read().strip()))
            results.append({"kernel": k, "backend": be, "status": "skipped", "reason": why})
            continue
        series = {"kernel": k, "backend": be, "status": "ok",
                  "device": cpu_device if be == "cpu" else "", "points": []}
        per_run = {}  # (B, run) -> req/s
        for b in batches:
            rs, p50, p99, bm, svc = [], [], [], [], []
            lost = busy = failed = 0
            for r in range(1, runs + 1):
                f = os.path.join(tmp, "%s-%s-%d-%d" % (k, be, b, r))
                try:
                    d = json.load(open(f + ".json"))
                except Exception:
                    failed += 1
                    continue
                if be == "cuda" and not series["device"]:
                    m = re.search(r"backend cuda \((.*)\), \d+ slot", open(f + ".log").read())
                    series["device"] = m.group(1) if m else ""
                rs.append(d["reply_rate"])
                per_run[(b, r)] = d["reply_rate"]
                p50.append(d["latency_us"]["p50"])
                p99.append(d["latency_us"]["p99"])
                lost += d["lost"]
                busy += d["busy"]
                s, c = prom(f + ".prom", "cpn_worker_batch_size_sum"), prom(f + ".prom", "cpn_worker_batch_size_count")
                bm.append(s / c if s is not None and c else None)
                v = prom(f + ".prom", "cpn_worker_service_time_seconds")
                svc.append(v * 1e6 if v else None)
            sp = [per_run[(b, r)] / per_run[(batches[0], r)] for r in range(1, runs + 1)
                  if (b, r) in per_run and (batches[0], r) in per_run and per_run[(batches[0], r)] > 0]
            series["points"].append({
                "B": b, "concurrency": 2 * b + 4, "req_s": spread(rs), "p50_us": spread(p50),
                "p99_us": spread(p99), "baseline_B": batches[0],
                "baseline_req_s": None, "speedup": spread(sp), "mean_batch": spread(bm),
                "service_us_per_req": spread(svc),
                "lost": lost, "busy": busy, "failed_runs": failed})
        base = series["points"][0]["req_s"]
        for p in series["points"]:
            p["baseline_req_s"] = base
        if all(p["failed_runs"] == runs for p in series["points"]):
            series["status"] = "failed"
            series["reason"] = "every measurement failed (cpn-worker or cpn-load)"
        results.append(series)

out = {
    "benchmark": "worker-batch",
    "command": E["CMDLINE"],
    "mode": E["MODE"],
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "wall_s": int(time.time()) - int(E["START"]),
    "machine": {"uname": sh("uname -srm"), "nproc": int(sh("nproc") or 0), "cpu_model": cpu_model,
                "cpu_flags": sorted(flags & {"sse3", "avx", "avx2", "fma", "avx512f"}),
                "gpu": [g.strip() for g in open(os.path.join(tmp, "gpu")).read().splitlines()
                        if g.strip()],
                "loadavg_before": E["LOAD0"], "loadavg_after": E["LOAD1"]},
    "openblas": {"OPENBLAS_NUM_THREADS": "1", "threads_per_call": 1,
                 "OPENBLAS_CORETYPE": E["CORETYPE"] or None, "corename": corename},
    "method": {"load": "closed loop, cpn-load --concurrency 2*B+4, directly to the worker on 127.0.0.1",
               "worker": "--capacity 1 --max-delay-us 500 (default) --seed 1, fresh worker per measurement",
               "models": {"mlp": "--mlp-dims " + E["MLP_DIMS"],
                          "vsearch": "--vs-rows %s --vs-dim %s, k 10" % (E["VS_ROWS"], E["VS_DIM"])},
               "timeout_ms": int(E["TIMEOUT_MS"]),
               "warmup_s": float(E["WARM"]), "duration_s": float(E["DUR"]), "runs": runs,
               "order": "interleaved: run r of every backend, kernel and B, then run r+1",
               "req_s": "replies / measured window (cpn-load reply_rate)",
               "latency": "REPLY latency seen by cpn-load, microseconds, median over runs",
               "mean_batch": "worker /metrics batch_size sum/count over the worker's life (warmup included)",
               "service_us_per_req": "worker /metrics service_time_seconds at the end: EWMA of batch time / batch size "
                                     "(compute only, whole microseconds); 1e6 / it bounds req/s without I/O",
               "baseline": "B=%d of the same kernel and backend in the same run; speedup = req/s(B)/req/s(%d) per run"
                           % (batches[0], batches[0]),
               "ports": {"worker": int(E["WPORT"]), "metrics": int(E["MPORT"])}},
    "batches": batches,
    "results": results,
}
js = json.dumps(out, indent=1)
if E["JSON_OUT"]:
    d = os.path.dirname(E["JSON_OUT"])
    if d:
        os.makedirs(d, exist_ok=True)
    with open(E["JSON_OUT"], "w") as f:
        f.write(js + "\n")

# Text table on stdout.
print("bench-worker (%s): %s, %s CPUs, %s; OpenBLAS %s, 1 thread; load avg %s -> %s"
      % (E["MODE"], cpu_model, out["machine"]["nproc"], out["machine"]["uname"], corename,
         E["LOAD0"], E["LOAD1"]))
print("%-8s %-5s %5s %5s %10s %19s %8s %8s %7s %6s %6s" % ("kernel", "back", "B", "C", "req/s", "(min..max)",
      "p50 us", "p99 us", "xB=%d" % batches[0], "batch", "svc us"))
for s in results:
    if s["status"] != "ok":
        print("%-8s %-5s %s: %s" % (s["kernel"], s["backend"], s["status"], s.get("reason", "")))
        continue
    for p in s["points"]:
        if not p["req_s"]:
            print("%-8s %-5s %5d  failed" % (s["kernel"], s["backend"], p["B"]))
            continue
        print("%-8s %-5s %5d %5d %10.0f %19s %8.0f %8.0f %7.2f %6.1f %6.0f" % (
            s["kernel"], s["backend"], p["B"], p["concurrency"], p["req_s"]["median"],
            "(%.0f..%.0f)" % (p["req_s"]["min"], p["req_s"]["max"]), p["p50_us"]["median"],
            p["p99_us"]["median"], p["speedup"]["median"] if p["speedup"] else 0,
            p["mean_batch"]["median"] if p["mean_batch"] else 0,
            p["service_us_per_req"]["median"] if p["service_us_per_req"] else 0))
print("wall %d s" % out["wall_s"])
failed = sum(p["failed_runs"] for s in results for p in s.get("points", []))

# Data for gnuplot: one block (index) per series, its title on the first line.
ok = [s for s in results if s["status"] == "ok"]
with open(os.path.join(tmp, "worker.dat"), "w") as f:
    for s in ok:
        f.write('"%s (%s)" x x x x x x x x x x x x\n' % (s["kernel"], s["backend"]))
        for p in s["points"]:
            if not p["req_s"]:
                continue
            sp = p["speedup"] or {"median": 0, "min": 0, "max": 0}
            f.write("%d %.3f %.3f %.3f %.1f %.1f %.1f %.1f %.1f %.1f %.3f %.3f %.3f\n" % (
                p["B"], p["req_s"]["median"], p["req_s"]["min"], p["req_s"]["max"],
                p["p50_us"]["median"], p["p50_us"]["min"], p["p50_us"]["max"],
                p["p99_us"]["median"], p["p99_us"]["min"], p["p99_us"]["max"],
                sp["median"], sp["min"], sp["max"]))
        f.write("\n\n")
with open(os.path.join(tmp, "nseries"), "w") as f:
    f.write("%d\n" % len(ok))
with open(os.path.join(tmp, "subtitle"), "w") as f:
    f.write("%s, %s CPUs, OpenBLAS %s 1 thread; closed loop C=2B+4; median of %d (bars: min..max)\n"
            % (cpu_model, out["machine"]["nproc"], corename, runs))
if failed:
    print("bench-worker: %d measurement(s) failed (see above)" % failed, file=sys.stderr)
    sys.exit(3)
PY
SUMMARY_RC=$?
[ "$SUMMARY_RC" = 0 ] || [ "$SUMMARY_RC" = 3 ] || die "summary failed"

if [ -n "$PLOT_DIR" ]; then
	command -v gnuplot >/dev/null || die "gnuplot not installed (gnuplot-nox): no plots"
	n=$(cat "$TMP/nseries")
	[ "$n" -gt 0 ] || die "no series measured: no plots"
	mkdir -p "$PLOT_DIR" || die "cannot create $PLOT_DIR"
	for gp in bench/plot/worker.gp bench/plot/worker_latency.gp; do
		timeout 60 gnuplot -e "datafile='$TMP/worker.dat'; outdir='$PLOT_DIR'; nseries=$n; subtitle='$(sed "s/'/ /g" "$TMP/subtitle")'" \
			"$gp" || die "gnuplot $gp failed"
	done
	echo "bench-worker: plots in $PLOT_DIR (worker_throughput.png, worker_latency.png)" >&2
fi
[ -n "$JSON_OUT" ] && echo "bench-worker: JSON in $JSON_OUT" >&2
[ "$SUMMARY_RC" = 0 ] || die "some measurements failed"
exit 0
