#!/usr/bin/env bash
# e2e: bench/bench-worker.sh's plumbing, not its numbers: a --smoke run
# (mlp and vsearch on the CPU backend, B = 1 and 4, one 0.3 s run each,
# ports 7650-7653 on 127.0.0.1) must exit 0, write a JSON with every field
# (command, machine, OpenBLAS setting, per-B req/s, p50/p99, speedup over
# B = 1, mean batch; CUDA measured or skipped with a reason) and both PNG
# plots, and leave no worker behind; bad arguments exit 2 with the usage.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}
export BUILD

need_cmd python3 gnuplot timeout
need_file "$BUILD/cpn-worker" "$BUILD/cpn-load"

TMP=$(mktemp -d /tmp/cpn-bench-worker-smoke.XXXXXX)
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "1..5"

timeout 60 bench/bench-worker.sh --smoke --port-base 7650 --json-out "$TMP/out/w.json" \
	--plot-dir "$TMP/plots" >"$TMP/stdout" 2>"$TMP/stderr" &
bpid=$!
wait "$bpid"
rc=$?
bpid=
if [ "$rc" -eq 0 ] && grep -q '^mlp .* 4 ' "$TMP/stdout"; then
	ok "bench-worker --smoke runs end to end and prints its table"
else
	echo "exit $rc" >>"$TMP/stderr"
	not_ok "bench-worker --smoke runs end to end and prints its table" "$TMP/stderr" "$TMP/stdout"
fi

if python3 - "$TMP/out/w.json" >"$TMP/check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert "bench/bench-worker.sh" in d["command"] and "--smoke" in d["command"], d["command"]
m = d["machine"]
assert m["uname"] and m["nproc"] > 0 and m["cpu_model"], m
o = d["openblas"]
assert o["OPENBLAS_NUM_THREADS"] == "1" and o["threads_per_call"] == 1 and "corename" in o, o
assert d["batches"] == [1, 4] and d["method"]["runs"] == 1, d
series = {(s["kernel"], s["backend"]): s for s in d["results"]}
assert set(series) == {("mlp", "cpu"), ("vsearch", "cpu"), ("mlp", "cuda"), ("vsearch", "cuda")}, series.keys()
for (k, be), s in series.items():
    if be == "cuda" and s["status"] == "skipped":
        assert s["reason"], s
        continue
    assert s["status"] == "ok" and s["device"], s
    assert [p["B"] for p in s["points"]] == [1, 4], s
    for p in s["points"]:
        assert p["concurrency"] == 2 * p["B"] + 4, p
        for f in ("req_s", "p50_us", "p99_us", "speedup", "mean_batch", "service_us_per_req"):
            assert p[f] and p[f]["min"] <= p[f]["median"] <= p[f]["max"], (f, p)
        assert p["req_s"]["median"] > 0 and p["failed_runs"] == 0, p
        assert p["baseline_B"] == 1 and p["baseline_req_s"] == s["points"][0]["req_s"], p
    assert s["points"][0]["speedup"]["median"] == 1.0, s["points"][0]
PY
	ok "the JSON has command, machine, OpenBLAS, per-B figures, the B=1 baseline and CUDA's state"
else
	not_ok "the JSON has command, machine, OpenBLAS, per-B figures, the B=1 baseline and CUDA's state" \
		"$TMP/check" "$TMP/out/w.json"
fi

bad=
for p in worker_throughput.png worker_latency.png; do
	[ "$(head -c 4 "$TMP/plots/$p" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || bad="$bad $p"
done
if [ -z "$bad" ]; then
	ok "--plot-dir holds worker_throughput.png and worker_latency.png"
else
	echo "missing or not PNG:$bad" >"$TMP/plots.err"
	not_ok "--plot-dir holds worker_throughput.png and worker_latency.png" "$TMP/plots.err" "$TMP/stderr"
fi

# No worker left: its ports are free again.
if python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 7651))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", 7653))
' 2>"$TMP/ports"; then
	ok "no worker left behind (ports 7651/udp and 7653/tcp free)"
else
	not_ok "no worker left behind (ports 7651/udp and 7653/tcp free)" "$TMP/ports"
fi

bad=0
: >"$TMP/bad.log"
while IFS= read -r args; do
	# shellcheck disable=SC2086 # one case per line
	timeout 10 bench/bench-worker.sh $args >/dev/null 2>"$TMP/one.err"
	rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q '^usage:' "$TMP/one.err"; then
		echo "exit $rc for: $args" >>"$TMP/bad.log"
		bad=1
	fi
done <<ARGS
--bogus
--runs
--runs 0
--batches 1,x
--smoke extra
ARGS
if [ "$bad" = 0 ]; then ok "bad arguments: usage, exit 2"; else not_ok "bad arguments: usage, exit 2" "$TMP/bad.log"; fi
