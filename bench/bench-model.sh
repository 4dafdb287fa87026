#!/usr/bin/env bash
# bench-model: a real model served through cpn, at batch 1 and batch 16, in
# the same run.
#
# ResNet-18 (Debian's python3-torch/torchvision, random initialisation) on
# 3 x SIZE x SIZE float32 images (224: 588 KiB requests; 64: 48 KiB; the
# replies 4000 bytes: large messages both ways), served by
# examples/resnet_worker.py on the worker library behind the XDP router of
# the netns testbed. For each size, two nodes, one with --max-batch 1 and
# one with --max-batch 16 (max delay 20 ms), one slot each, torch on
# --threads threads; each repeat drains one node at the router and
# undrains the other, then examples/resnet_client.py sends --requests
# images with --window in flight and reports the throughput and latency
# (the answers are not checked here: test_model does that). Runs alternate
# batch 1 and batch 16.
#
# usage: bench/bench-model.sh [--json-out FILE] [--quick] [--smoke] [--requests N]
#                             [--sizes S[,S]] [--reps R] [--window W] [--threads T]
#   full: sizes 64 and 224, 160 requests, 3 repeats (~3 min); --quick (or
#   BENCH_QUICK=1): 224, 1 repeat of 64; --smoke: 64, 32 requests. Testbed bmd
#   (removed on exit).
#   Needs root, build/{cpnctl,libcpn.so.0}, python3-torch, python3-torchvision.
#   env: BUILD (build)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
[ "${BENCH_QUICK:-}" = 1 ] && CMDLINE="BENCH_QUICK=1 $CMDLINE"
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${BUILD:-build}
TB=tools/testbed
PY=/usr/bin/python3

MODE=full N='' SIZES='' REPS='' WIN=32 THREADS=1 JSON_OUT=''
[ "${BENCH_QUICK:-}" = 1 ] && MODE=quick
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "bench-model: $*" >&2
	exit 1
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) [ $# -ge 2 ] || usage; JSON_OUT=$2; shift 2 ;;
	--quick) MODE=quick; shift ;;
	--smoke) MODE=smoke; shift ;;
	--requests) [ $# -ge 2 ] || usage; N=$2; shift 2 ;;
	--sizes) [ $# -ge 2 ] || usage; SIZES=$2; shift 2 ;;
	--reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
	--window) [ $# -ge 2 ] || usage; WIN=$2; shift 2 ;;
	--threads) [ $# -ge 2 ] || usage; THREADS=$2; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
case "$MODE" in
full) : "${N:=160}" "${SIZES:=64,224}" "${REPS:=3}" ;;
quick) : "${N:=64}" "${SIZES:=224}" "${REPS:=1}" ;;
smoke) : "${N:=32}" "${SIZES:=64}" "${REPS:=1}" ;;
esac
[[ "$SIZES" =~ ^[0-9]+(,[0-9]+)?$ ]] || die "--sizes: one or two sides in pixels, e.g. 64,224"
for v in N REPS WIN THREADS; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v: a positive integer"
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
[ -x "$BUILD/cpnctl" ] && [ -e "$BUILD/libcpn.so.0" ] || die "$BUILD/cpnctl, libcpn.so.0 not built: make all"
for m in torch torchvision; do
	[ -e /usr/lib/python3/dist-packages/$m/__init__.py ] || die "missing python3-$m: make deps"
done
TMP=$(mktemp -d /tmp/cpn-bench-model.XXXXXX)
cleanup() {
	$TB down --name bmd >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$TMP/node" <<SH
#!/bin/sh
export PYTHONPATH="$ROOT/python" CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0"
exec $PY "$ROOT/examples/resnet_worker.py" "\$@"
SH
chmod +x "$TMP/node"
T0=$SECONDS
: >"$TMP/runs.txt"
for SIZE in ${SIZES//,/ }; do
	[ "$SIZE" -ge 32 ] && [ "$SIZE" -le 512 ] || die "--sizes: 32..512 pixels"
	common="--max-delay-us 20000 --size $SIZE --threads $THREADS"
	TESTBED_WORKER="$TMP/node" TESTBED_WAIT_S=90 timeout 180 $TB up --name bmd \
		--worker "--max-batch 1 $common" --worker "--max-batch 16 $common" >"$TMP/up.log" 2>&1 ||
		die "testbed bmd: $(tail -3 "$TMP/up.log")"
	echo "bench-model: ResNet-18 ${SIZE}x$SIZE, $N requests, window $WIN, $REPS repeat(s), torch threads $THREADS" >&2
	for r in $(seq "$REPS"); do
		for b in 1 16; do
			on=$([ "$b" = 1 ] && echo 1 || echo 2) off=$([ "$b" = 1 ] && echo 2 || echo 1)
			{ $TB cpnctl --name bmd node drain "$off" && $TB cpnctl --name bmd node undrain "$on"; } \
				>"$TMP/drain.log" 2>&1 || die "cannot drain node $off: $(tail -2 "$TMP/drain.log")"
			sleep 0.3
			out=$TMP/run-$SIZE-$r-$b.json
			timeout 900 $TB exec --name bmd client -- env PYTHONPATH="$ROOT/python" \
				CPN_LIBRARY="$ROOT/$BUILD/libcpn.so.0" "$PY" "$ROOT/examples/resnet_client.py" \
				10.90.100.1:7470 --requests "$N" --size "$SIZE" --window "$WIN" --timeout 300 \
				--no-check --json "$out" >"$out.log" 2>&1 || die "batch $b: $(tail -3 "$out.log")"
			echo "$SIZE $r $b $out" >>"$TMP/runs.txt"
			echo "  ${SIZE}px rep $r batch $b: $(cat "$out.log")" >&2
		done
	done
	$TB down --name bmd >/dev/null 2>&1
done

export N SIZES REPS WIN THREADS MODE CMDLINE ELAPSED=$((SECONDS - T0))
$PY - "$TMP/runs.txt" "${JSON_OUT:-}" <<'PYEOF'
import json, os, statistics, sys

E = os.environ
runs = {}
for line in open(sys.argv[1]):
    size, r, b, path = line.split()
    runs.setdefault((int(size), int(b)), []).append(json.load(open(path)))
rows = []
for (size, b), ds in sorted(runs.items()):
    def med(k):
        xs = [d[k] for d in ds]
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    rows.append({"size": size, "request_bytes": 12 * size * size, "max_batch": b,
                 "req_per_s": med("req_per_s"), "p50_ms": med("p50_ms"),
                 "p99_ms": med("p99_ms"), "answered": sum(d["answered"] for d in ds),
                 "errors": sum(d["errors"] for d in ds)})
speedup = {}
for size in sorted({r["size"] for r in rows}):
    by = {r["max_batch"]: r for r in rows if r["size"] == size}
    if 1 in by and 16 in by:
        speedup[str(size)] = by[16]["req_per_s"]["median"] / by[1]["req_per_s"]["median"]
res = {"bench": "model", "command": E["CMDLINE"], "mode": E["MODE"], "model": "resnet18",
       "sizes": [int(x) for x in E["SIZES"].split(",")], "requests": int(E["N"]),
       "window": int(E["WIN"]), "threads": int(E["THREADS"]), "repeats": int(E["REPS"]),
       "rows": rows, "speedup_16_over_1": speedup, "elapsed_s": int(E["ELAPSED"]),
       "reply_bytes": 4000}
print("%-5s %-9s %10s %10s %10s %8s" % ("size", "max_batch", "req/s", "p50 ms", "p99 ms", "errors"))
for r in rows:
    print("%-5d %-9d %10.1f %10.1f %10.1f %8d" % (r["size"], r["max_batch"],
          r["req_per_s"]["median"], r["p50_ms"]["median"], r["p99_ms"]["median"], r["errors"]))
for size, x in speedup.items():
    print("%spx: batch 16 / batch 1 throughput: %.2f" % (size, x))
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump(res, f, indent=1)
PYEOF
