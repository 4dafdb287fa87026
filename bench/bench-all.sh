#!/usr/bin/env bash
# bench-all: `make bench`. Every benchmark of cpn in turn, each next to its
# baseline measured in the same run, then the report:
#   bench/results.json     every figure, machine-readable, with its command
#   docs/bench/*.png       the plots (gnuplot)
#   docs/BENCHMARKS.md     the tables and plots, with the commands and machine
#
#   xdp      router cost per packet (BPF_PROG_TEST_RUN, repeat=1 calls) vs a
#            trivial XDP_PASS and a minimal rewrite-and-XDP_TX floor
#   insns    the same paths in BPF instructions and helper calls per packet
#            (interpreted, checked against the kernel's run)
#   fwd      cpn-fwd Mpps on one lcore vs dpdk-testpmd 5tswap and io, and
#            its instructions per request (callgrind)
#   fwdrate  packets/s through a router namespace on veth: XDP steering vs
#            kernel forwarding, cpn-pktgen (AF_XDP) as the generator
#   latency  the latency the router adds to a request on the netns testbed
#            (p50, p99): through cpn_xdp to the VIP vs kernel forwarding to
#            the worker's own address, rounds alternated
#   sched    scheduling quality on the netns testbed: p50/p99/p99.9 per
#            policy vs the M/M/k optimum and M/M/1; heterogeneous fleet
#   sim      cpn-sim: 1000 nodes, 1/10/100 routers with stale views
#   fleet    three routers behind ECMP against one, the same workers and load
#   worker   cpn-worker requests/s against batch size
#   model    ResNet-18 (PyTorch) through the router, batch 1 against 16
#   seal     sealed payloads (end-to-end encryption) against clear, per size
#
# usage: bench/bench-all.sh [--only NAME[,NAME...]] [--smoke] [--results FILE]
#                           [--plots DIR] [--doc FILE]
#   BENCH_QUICK=1   the short version (within 5 minutes on 2 cores); the full
#                   one fits 30 minutes.
#   --smoke         the plumbing only (make test): tiny runs, outputs in a
#                   temporary place unless --results/--plots/--doc say where.
# A benchmark that fails is recorded as failed, and the exit status is 1;
# what a machine cannot have (a GPU) is recorded inside the benchmark's own
# result as skipped, with the reason.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
ALL=(xdp insns fwd fwdrate latency sched sim fleet worker model seal)
only="" smoke=0
RESULTS=bench/results.json PLOTS=docs/bench DOC=docs/BENCHMARKS.md

usage() {
	sed -n '/^# usage:/,/^# exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--only) only=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	--results) RESULTS=$2; shift 2 ;;
	--plots) PLOTS=$2; shift 2 ;;
	--doc) DOC=$2; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
steps=("${ALL[@]}")
if [ -n "$only" ]; then
	IFS=, read -r -a steps <<<"$only"
	for s in "${steps[@]}"; do
		[[ " ${ALL[*]} " == *" $s "* ]] || { echo "bench-all: unknown benchmark '$s' (${ALL[*]})" >&2; usage; }
	done
fi
[ "$(id -u)" -eq 0 ] || { echo "bench-all: needs root (BPF, netns, DPDK)" >&2; exit 1; }
quick=${BENCH_QUICK:-0}
mode=full
[ "$quick" = 1 ] && mode=quick
[ "$smoke" = 1 ] && mode=smoke

W=$(mktemp -d /tmp/cpn-bench.XXXXXX)
cleanup() { [ -n "${KEEP_TMP:-}" ] && echo "bench-all: work files in $W" >&2 || rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$PLOTS" "$(dirname "$RESULTS")" "$(dirname "$DOC")"

# The command of each benchmark in this mode (an array, printed into the
# report as it ran).
cmd_of() {
	case "$1:$mode" in
	xdp:full) echo "$BUILD/bench-xdp --calls 1000000 --rounds 10 --json" ;;
	xdp:quick) echo "$BUILD/bench-xdp --calls 100000 --rounds 5 --json" ;;
	xdp:smoke) echo "$BUILD/bench-xdp --calls 3000 --rounds 3 --json" ;;
	insns:*) echo "$BUILD/bench-insns --json" ;;
	fwd:full) echo "bench/bench-fwd.sh --runs 3 --seconds 5 --ir --json" ;;
	fwd:quick) echo "bench/bench-fwd.sh --runs 1 --seconds 2 --ir --json" ;;
	fwd:smoke) echo "bench/bench-fwd.sh --runs 1 --seconds 1 --warmup 0.5 --json" ;;
	fwdrate:smoke) echo "bench/bench-fwdrate.sh --smoke --json-out $W/fwdrate.json --plot-dir $PLOTS" ;;
	fwdrate:*) echo "bench/bench-fwdrate.sh --json-out $W/fwdrate.json --plot-dir $PLOTS" ;;
	latency:smoke) echo "bench/bench-latency.sh --smoke --json-out $W/latency.json" ;;
	latency:*) echo "bench/bench-latency.sh --json-out $W/latency.json" ;;
	sched:smoke) echo "bench/bench-sched.sh --smoke --json-out $W/sched.json --plot-dir $PLOTS" ;;
	sched:*) echo "bench/bench-sched.sh --json-out $W/sched.json --plot-dir $PLOTS" ;;
	sim:smoke) echo "bench/bench-sim.sh --smoke --json-out $W/sim.json --plot-dir $PLOTS" ;;
	sim:*) echo "bench/bench-sim.sh --json-out $W/sim.json --plot-dir $PLOTS" ;;
	fleet:smoke) echo "bench/bench-fleet.sh --smoke --json-out $W/fleet.json" ;;
	fleet:*) echo "bench/bench-fleet.sh --json-out $W/fleet.json" ;;
	worker:smoke) echo "bench/bench-worker.sh --smoke --json-out $W/worker.json --plot-dir $PLOTS" ;;
	worker:*) echo "bench/bench-worker.sh --json-out $W/worker.json --plot-dir $PLOTS" ;;
	model:smoke) echo "bench/bench-model.sh --smoke --json-out $W/model.json" ;;
	model:*) echo "bench/bench-model.sh --json-out $W/model.json" ;;
	seal:smoke) echo "bench/bench-seal.sh --smoke --json-out $W/seal.json" ;;
	seal:*) echo "bench/bench-seal.sh --json-out $W/seal.json" ;;
	esac
}
limit_of() { # seconds benchmark $1 may take in this mode
	case "$mode" in
	full) if [ "$1" = sched ]; then echo 1200; else echo 600; fi ;;
	quick) echo 150 ;;
	smoke) echo 90 ;;
	esac
}

failed=0
: >"$W/steps.txt"
t_all=$(date +%s)
for s in "${steps[@]}"; do
	cmd=$(cmd_of "$s")
	echo "bench-all: [$s] $cmd" >&2
	t0=$(date +%s.%N)
	# xdp, insns and fwd print their JSON on stdout; the others write --json-out.
	# shellcheck disable=SC2086
	BENCH_QUICK=$quick timeout "$(limit_of "$s")" $cmd >"$W/$s.out" 2>"$W/$s.log"
	rc=$?
	t1=$(date +%s.%N)
	case "$s" in xdp | insns | fwd) cp "$W/$s.out" "$W/$s.json" ;; esac
	status=ok reason=""
	if [ $rc -ne 0 ]; then
		status=failed reason="exit $rc: $(tail -n 3 "$W/$s.log" | tr '\n' ' ' | cut -c1-300)"
		failed=1
	elif ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/$s.json" 2>/dev/null; then
		status=failed reason="no JSON result"
		failed=1
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$status" "$secs" "$cmd" "$reason" >>"$W/steps.txt"
	echo "bench-all: [$s] $status ($secs s)${reason:+: $reason}" >&2
	[ "$status" = failed ] && tail -n 20 "$W/$s.log" | sed 's/^/    /' >&2
done
echo "bench-all: all benchmarks took $(($(date +%s) - t_all)) s" >&2

python3 bench/bench-report.py --work "$W" --mode "$mode" --results "$RESULTS" --plots "$PLOTS" \
	--doc "$DOC" --invoked "bench/bench-all.sh${only:+ --only $only}${BENCH_QUICK:+ (BENCH_QUICK=$BENCH_QUICK)}" ||
	failed=1
echo "bench-all: wrote $RESULTS, $DOC and plots in $PLOTS/" >&2
exit $failed
