#!/usr/bin/env bash
# bench-seal: what sealed payloads (end-to-end XChaCha20-Poly1305, libsodium)
# cost in throughput, per payload size.
#
# Method: one cpn-worker --kernel echo (--capacity 1, --payload-key for the
# tenant) on 127.0.0.1, driven directly by cpn-load in a closed loop
# (--concurrency C: 16 requests outstanding up to 64 KiB, 4 for 1 MiB). Each
# size runs clear and sealed, alternated (clear, sealed, clear, ...) for
# --runs rounds, in one run of the script so that both see the same machine.
# Both modes read every reply payload (cpn-load --read-replies; sealed:
# --payload-key, which also opens them), so the difference is the sealing:
# the client seals each request and opens each reply, the worker opens each
# request and seals each reply (4 passes over the payload per request).
# req/s = replies / measured window; MB/s = req/s x payload bytes (one way);
# cost = 1 - sealed/clear req/s (median of the per-round ratios). Every
# request must be answered and every reply must open (unseal_failed 0).
#
# usage: bench/bench-seal.sh [--json-out FILE] [--runs N] [--sizes 256,4096,...]
#                            [--duration S] [--warmup S] [--port-base P] [--smoke]
#   default: sizes 256, 4096, 65536, 1048576; 3 rounds of 2 s (~1 min);
#   --smoke: sizes 256, 65536, 1 round of 0.3 s. Ports: P+1 worker, P+2 LOAD
#   sink (P: 7700).
#   env: BUILD (build)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
WORKER=$(realpath -m -- "$BUILD")/cpn-worker
LOAD=$(realpath -m -- "$BUILD")/cpn-load
PKEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
TENANT=7

JSON_OUT='' RUNS=3 SIZES=256,4096,65536,1048576 DUR=2 WARM=0.3 PBASE=7700
usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--json-out) JSON_OUT=${2:-}; shift 2 || usage ;;
	--runs) RUNS=${2:-}; shift 2 || usage ;;
	--sizes) SIZES=${2:-}; shift 2 || usage ;;
	--duration) DUR=${2:-}; shift 2 || usage ;;
	--warmup) WARM=${2:-}; shift 2 || usage ;;
	--port-base) PBASE=${2:-}; shift 2 || usage ;;
	--smoke) SIZES=256,65536 RUNS=1 DUR=0.3 WARM=0.1; shift ;;
	-h | --help) usage ;;
	*) echo "bench-seal: unknown argument '$1'" >&2; usage ;;
	esac
done
for f in "$WORKER" "$LOAD"; do
	[ -x "$f" ] || { echo "bench-seal: $f not built (make all)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench-seal: python3 missing (Debian package python3)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/cpn-bench-seal.XXXXXX)
WPID=''
cleanup() {
	[ -n "$WPID" ] && kill -TERM "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

W=127.0.0.1:$((PBASE + 1))
timeout 3600 "$WORKER" --listen "$W" --node-id 1 --router "127.0.0.1:$((PBASE + 2))" \
	--kernel echo --capacity 1 --max-message 2M --payload-key "$TENANT:$PKEY" \
	>"$TMP/worker.log" 2>&1 &
WPID=$!
# Up once it answers.
for _ in $(seq 50); do
	"$LOAD" --to "$W" --service 1 --tenant "$TENANT" --concurrency 1 --count 1 --timeout 200 \
		--json >/dev/null 2>&1 && break
	sleep 0.1
done

IFS=, read -r -a SZ <<<"$SIZES"
for ((r = 1; r <= RUNS; r++)); do
	for s in "${SZ[@]}"; do
		c=16
		[ "$s" -gt 65536 ] && c=4
		for mode in clear sealed; do
			extra=(--read-replies)
			[ "$mode" = sealed ] && extra=(--payload-key "$PKEY")
			timeout $((${DUR%.*} + 60)) "$LOAD" --to "$W" --service 1 --tenant "$TENANT" \
				--concurrency "$c" --duration "$DUR" --warmup "$WARM" --timeout 5000 \
				--payload-bytes "$s" "${extra[@]}" --json >"$TMP/$s.$mode.$r.json" \
				2>"$TMP/$s.$mode.$r.err" ||
				{ echo "bench-seal: cpn-load failed ($s $mode run $r)" >&2; cat "$TMP/$s.$mode.$r.err" >&2; exit 1; }
		done
	done
done

python3 - "$TMP" "$RUNS" "$SIZES" "$DUR" "$CMDLINE" "${JSON_OUT:-}" <<'PYEOF'
import json, os, platform, statistics, sys, time
tmp, runs, sizes, dur, cmd, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
rows, bad = [], []
for s in (int(x) for x in sizes.split(",")):
    per = {"clear": [], "sealed": []}
    p50 = {"clear": [], "sealed": []}
    for r in range(1, runs + 1):
        for mode in per:
            d = json.load(open(f"{tmp}/{s}.{mode}.{r}.json"))
            if d["lost"] or d["busy"] or d.get("unseal_failed", 0) or d["replied"] == 0:
                bad.append(f"{s} B {mode} run {r}: lost {d['lost']} busy {d['busy']} "
                           f"unseal_failed {d.get('unseal_failed')}")
            per[mode].append(d["reply_rate"])
            p50[mode].append(d["latency_us"]["p50"])
    ratio = [b / a for a, b in zip(per["clear"], per["sealed"]) if a]
    row = {"payload_bytes": s, "concurrency": 16 if s <= 65536 else 4}
    for mode in per:
        v = per[mode]
        row[mode] = {"req_s": {"median": statistics.median(v), "min": min(v), "max": max(v)},
                     "mb_s": statistics.median(v) * s / 1e6,
                     "p50_us": statistics.median(p50[mode])}
    row["sealed_over_clear"] = statistics.median(ratio) if ratio else None
    row["cost"] = 1 - row["sealed_over_clear"] if ratio else None
    rows.append(row)
res = {"bench": "seal", "command": cmd, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
       "runs": runs, "duration_s": float(dur), "cipher": "XChaCha20-Poly1305 (IETF), libsodium",
       "results": rows, "ok": not bad, "failures": bad}
text = json.dumps(res, indent=1)
if out:
    open(out, "w").write(text + "\n")
print(text)
for r in rows:
    print(f"# {r['payload_bytes']:>8} B: clear {r['clear']['req_s']['median']:9.0f} req/s, "
          f"sealed {r['sealed']['req_s']['median']:9.0f} req/s "
          f"({r['sealed']['mb_s']:.1f} MB/s), sealed/clear {r['sealed_over_clear']:.3f}",
          file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF
