#!/usr/bin/env bash
# bench-fwd: Mpps of cpn-fwd on ONE forwarding lcore, next to dpdk-testpmd on
# exactly the same ports in the same run (issues 5 and 6).
#
# Input: a pcap of N distinct, valid cpn REQUESTs to the VIP 10.0.0.100:7470
# from 16 clients, preceded by LOADs of nodes 1-4 (build/bench-fwd-pcap),
# replayed from memory by net_pcap with infinite_rx=1 (port 0); output:
# net_null with no-rx=1 (port 1). cpn-fwd runs a p2c service over the 4
# nodes whose neighbours sit behind port 1, so every request is chosen,
# tagged, DNATed and transmitted (the LOADs, which come round again every
# N + 4 frames, keep the nodes live and are consumed).
#
# Baselines on the same vdevs, one forwarding core (--nb-cores=1):
#   testpmd 5tswap  swaps MACs, IPs and ports: touches the headers like a
#                   router (the target: cpn-fwd >= 0.7 x this);
#   testpmd io      no header access: the framework's own limit.
# net_pcap's RX (a memcpy-free replay of mbufs held in memory, but still a
# PMD with per-packet work) is itself a limit: testpmd io shows how much.
#
# Method: every program gets `-l 0-1` (main lcore 0, forwarding lcore 1).
# After --warmup seconds, DPDK's telemetry (/ethdev/stats,1: the net_null
# port's opackets, the same counter for every program) is read twice,
# --seconds apart; rate = difference / monotonic elapsed time. The three
# programs run interleaved --runs times; medians are reported. The final
# counters printed on SIGINT are checked (cpn-fwd: every TX a steered
# request, no drops). Run as root (DPDK EAL), no hugepages needed.
#
# Instructions per request (--ir, --ir-only): deterministic, where Mpps
# depend on the machine and its other load. cpn-fwd runs under
# `valgrind --tool=callgrind` on the same input and configuration, but the
# pcap holds --ir-rounds copies of the frames above and is read once (no
# infinite_rx), so the count is bounded; collection is on only inside
# fwd_burst() (dpdk/fwd_loop.c: one received burst, every packet to its
# verdict and onto its TX queue, the burst's clock and snapshot reads
# included; the PMDs' RX and TX excluded). Ir per request = the Ir collected
# / the requests steered (the 4 LOADs per N requests included). Every frame
# must have been received, every request steered and sent. The Ir by source
# file (router.h, sched.h, ...: callgrind_annotate) is printed too.
#
# usage: bench/bench-fwd.sh [--seconds S] [--warmup W] [--runs R]
#                           [--requests N] [--ir] [--ir-only] [--ir-rounds K]
#                           [--json] [--keep]
#   env: BUILD (build), TESTPMD (dpdk-testpmd from PATH)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
FWD=$(pwd)/$BUILD/cpn-fwd
GEN=$(pwd)/$BUILD/bench-fwd-pcap
TESTPMD=${TESTPMD:-$(command -v dpdk-testpmd || true)}
SECS=5 WARM=1 RUNS=3 NREQ=1020 JSON=0 KEEP=0 IR=0 DO_MPPS=1 IR_ROUNDS=20

usage() {
	sed -n '/^# usage:/,/^#   env:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) SECS=$2; shift 2 ;;
	--warmup) WARM=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--requests) NREQ=$2; shift 2 ;;
	--ir) IR=1; shift ;;
	--ir-only) IR=1 DO_MPPS=0; shift ;;
	--ir-rounds) IR_ROUNDS=$2; shift 2 ;;
	--json) JSON=1; shift ;;
	--keep) KEEP=1; shift ;;
	*) usage ;;
	esac
done
die() {
	echo "bench-fwd: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (DPDK EAL)"
[ -x "$FWD" ] || die "$FWD not built (make all; needs libdpdk-dev)"
[ -x "$GEN" ] || die "$GEN not built (make $BUILD/bench-fwd-pcap)"
if [ "$DO_MPPS" -eq 1 ] && ! { [ -n "$TESTPMD" ] && [ -x "$TESTPMD" ]; }; then
	die "dpdk-testpmd not found (Debian package dpdk-dev; make deps; or set TESTPMD=)"
fi
command -v python3 >/dev/null || die "python3 not installed (Debian package python3; make deps)"
if [ "$IR" -eq 1 ]; then
	for c in valgrind callgrind_annotate; do
		command -v "$c" >/dev/null || die "$c not installed (Debian package valgrind; make deps)"
	done
	[[ "$IR_ROUNDS" =~ ^[1-9][0-9]{0,3}$ ]] || die "--ir-rounds: 1..9999"
fi

TMP=$(mktemp -d /tmp/cpn-bench-fwd.XXXXXX)
PFX=cpnbfwd$$
cur_pid=
cleanup() {
	[ -n "$cur_pid" ] && kill -INT "$cur_pid" 2>/dev/null && wait "$cur_pid" 2>/dev/null
	rm -rf "/var/run/dpdk/$PFX"*
	[ "$KEEP" -eq 1 ] && echo "bench-fwd: files kept in $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$GEN" "$TMP/req.pcap" "$NREQ" || die "cannot write the input pcap"
cat >"$TMP/cfg.yaml" <<'YAML'
control_port: 7471
services:
  - {name: bench, id: 1, vip: 10.0.0.100, port: 7470, policy: p2c, nodes: [1, 2, 3, 4],
     stale_ms: 60000, max_queue: 65535, liveness: reports}
nodes:
  - {id: 1, addr: "10.1.0.1:7470"}
  - {id: 2, addr: "10.1.0.2:7470"}
  - {id: 3, addr: "10.1.0.3:7470"}
  - {id: 4, addr: "10.1.0.4:7470"}
tenants:
  - {id: 42, services: [bench]}
YAML

# The telemetry sampler: PORT's opackets (and port 0's ipackets) twice,
# SECS apart, after WARM seconds.
cat >"$TMP/sample.py" <<'PY'
import json, socket, sys, time
sock, warm, dur = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def ask(cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock)
    s.recv(4096)
    s.send(cmd.encode())
    r = json.loads(s.recv(1 << 20))
    s.close()
    return r["/ethdev/stats"]
def snap():
    return ask("/ethdev/stats,0")["ipackets"], ask("/ethdev/stats,1")["opackets"], time.monotonic()
time.sleep(warm)
rx0, tx0, t0 = snap()
time.sleep(dur)
rx1, tx1, t1 = snap()
print(tx1 - tx0, rx1 - rx0, "%.6f" % (t1 - t0))
PY

EAL_COMMON=(--no-huge --no-shconf --no-pci -m 1024 -l 0-1
	--vdev "net_pcap0,rx_pcap=$TMP/req.pcap,infinite_rx=1" --vdev "net_null0,no-rx=1")
NEIGH=()
for i in 1 2 3 4; do NEIGH+=(--neigh "10.1.0.$i=02:00:00:00:01:0$i@1"); done
cmd_of() { # prog -> the command line, file prefix left as PFX_<prog>
	case "$1" in
	cpn-fwd) echo "$FWD --file-prefix ${PFX}_$1 ${EAL_COMMON[*]} -- --config $TMP/cfg.yaml --seed 1 ${NEIGH[*]}" ;;
	testpmd-5tswap | testpmd-io)
		echo "$TESTPMD --file-prefix ${PFX}_$1 ${EAL_COMMON[*]} -- --forward-mode=${1#testpmd-}" \
			"--nb-cores=1 --no-mlockall --total-num-mbufs=16384 --auto-start --stats-period=3600" ;;
	esac
}

# run PROG ROUND: prints "tx_pkts rx_pkts seconds"; exits non-zero on failure.
run() {
	local prog=$1 r=$2 log="$TMP/$1.$2.log" sock rc out args=()
	sock=/var/run/dpdk/${PFX}_$prog/dpdk_telemetry.v2
	case "$prog" in
	cpn-fwd) args=("$FWD" --file-prefix "${PFX}_$prog" "${EAL_COMMON[@]}" --
		--config "$TMP/cfg.yaml" --seed 1 "${NEIGH[@]}") ;;
	*) args=("$TESTPMD" --file-prefix "${PFX}_$prog" "${EAL_COMMON[@]}" --
		"--forward-mode=${prog#testpmd-}" --nb-cores=1 --no-mlockall --total-num-mbufs=16384
		--auto-start --stats-period=3600) ;;
	esac
	"${args[@]}" </dev/null >"$log" 2>&1 &
	cur_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	out=$(python3 "$TMP/sample.py" "$sock" "$WARM" "$SECS" 2>>"$log")
	kill -INT "$cur_pid" 2>/dev/null
	wait "$cur_pid"
	rc=$?
	cur_pid=
	rm -rf "/var/run/dpdk/${PFX}_$prog"
	if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
		echo "bench-fwd: $prog (round $r) failed (rc $rc); its log:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	if [ "$prog" = cpn-fwd ]; then
		# every packet sent must be a steered request, nothing dropped
		awk '/^  req_steered /{s=$2} /^  port 1: /{t=$6; d=$8}
		     END { exit !(s > 0 && s == t && d == 0) }' "$log" || {
			echo "bench-fwd: cpn-fwd (round $r): sent packets are not all steered requests:" >&2
			grep -vE '^  [a-z_0-9]+ +0$' "$log" | tail -n 20 >&2
			return 1
		}
	else
		grep -q "TX-packets: [1-9]" "$log" || {
			echo "bench-fwd: $prog (round $r) forwarded nothing" >&2
			return 1
		}
	fi
	echo "$out"
}

# ir_measure: cpn-fwd under callgrind over IR_ROUNDS copies of the input,
# read once; sets IR_PER_REQ, IR_TOTAL, IR_REQS, IR_BY_FILE (JSON), IR_CMD.
ir_measure() {
	local frames=$(((NREQ + 4) * IR_ROUNDS)) reqs=$((NREQ * IR_ROUNDS)) log=$TMP/ir.log
	local out=$TMP/callgrind.out rc args
	{
		head -c 24 "$TMP/req.pcap"
		for _ in $(seq "$IR_ROUNDS"); do tail -c +25 "$TMP/req.pcap"; done
	} >"$TMP/ir.pcap" || die "cannot write the --ir input pcap"
	args=(valgrind --tool=callgrind --fair-sched=yes "--callgrind-out-file=$out" --collect-atstart=no
		--toggle-collect=fwd_burst "$FWD" --file-prefix "${PFX}_ir" --no-huge --no-shconf
		--no-pci -m 512 -l 0-1 --vdev "net_pcap0,rx_pcap=$TMP/ir.pcap" --vdev "net_null0,no-rx=1"
		-- --config "$TMP/cfg.yaml" --seed 1 --stats-interval 1 "${NEIGH[@]}")
	IR_CMD="${args[*]}"
	"${args[@]}" </dev/null >"$log" 2>&1 &
	cur_pid=$!
	# Until port 0 has received every frame (cpn-fwd prints its counters
	# every second), 300 s at most.
	for _ in $(seq 600); do
		grep -q "^  port 0: rx $frames " "$log" && break
		kill -0 "$cur_pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -INT "$cur_pid" 2>/dev/null
	wait "$cur_pid"
	rc=$?
	cur_pid=
	rm -rf "/var/run/dpdk/${PFX}_ir"
	if [ "$rc" -ne 0 ] || [ ! -s "$out" ]; then
		tail -n 20 "$log" >&2
		die "--ir: cpn-fwd under callgrind failed (rc $rc)"
	fi
	# The final counters: every frame received, every request steered and sent.
	awk -v f="$frames" -v q="$reqs" '/final counters/ {fin = 1} !fin {next}
	     /^  req_steered / {s = $2} /^  port 0: / {r = $4} /^  port 1: / {t = $6; d = $8}
	     END { exit !(r == f && s == q && t == q && d == 0) }' "$log" || {
		sed -n '/final counters/,$p' "$log" | grep -vE '^  [a-z_0-9]+ +0$' >&2
		die "--ir: not every frame received and every request steered and sent ($frames frames, $reqs requests)"
	}
	IR_REQS=$reqs
	IR_TOTAL=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
	[ -n "$IR_TOTAL" ] && [ "$IR_TOTAL" -gt 0 ] || die "--ir: no Ir in $out"
	IR_PER_REQ=$(awk -v t="$IR_TOTAL" -v n="$reqs" 'BEGIN{printf "%.1f", t / n}')
	# Exclusive Ir by source file (inlined code counts where it is written).
	IR_BY_FILE=$(callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null | python3 -c '
import json, re, sys
n, by = int(sys.argv[1]), {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+?):\S", line)
    if not m or "PROGRAM TOTALS" in line:
        continue
    f = m.group(2).rsplit("/", 1)[-1]
    f = "(no source)" if f.startswith("???") else f
    by[f] = by.get(f, 0) + int(m.group(1).replace(",", ""))
out, rest = {}, 0
for k, v in sorted(by.items(), key=lambda kv: -kv[1]):
    if v / n >= 1:
        out[k] = round(v / n, 1)
    else:
        rest += v
out["(other)"] = round(rest / n, 1)
print(json.dumps(out))
' "$reqs")
}

if [ "$DO_MPPS" -eq 0 ]; then
	ir_measure
	if [ "$JSON" -eq 1 ]; then
		printf '{"bench":"fwd","requests_in_pcap":%s,"ir":{"per_request":%s,"requests":%s,"ir_total":%s,"by_file":%s,"command":"%s"}}\n' \
			"$NREQ" "$IR_PER_REQ" "$IR_REQS" "$IR_TOTAL" "$IR_BY_FILE" "$IR_CMD"
	else
		echo "cpn-fwd: $IR_PER_REQ instructions per request (Ir in fwd_burst: $IR_TOTAL over $IR_REQS requests)"
		echo "by source file (Ir per request): $IR_BY_FILE"
		echo "command: $IR_CMD"
	fi
	exit 0
fi

PROGS=(cpn-fwd testpmd-5tswap testpmd-io)
declare -A MPPS RXMPPS
for r in $(seq "$RUNS"); do
	for p in "${PROGS[@]}"; do
		res=$(run "$p" "$r") || exit 1
		read -r tx rx secs <<<"$res"
		MPPS[$p]+="$(awk -v n="$tx" -v s="$secs" 'BEGIN{printf "%.3f", n/s/1e6}') "
		RXMPPS[$p]+="$(awk -v n="$rx" -v s="$secs" 'BEGIN{printf "%.3f", n/s/1e6}') "
		[ "$JSON" -eq 1 ] || printf 'round %d %-15s %8.3f Mpps tx  (%s packets in %s s)\n' \
			"$r" "$p" "$(awk -v n="$tx" -v s="$secs" 'BEGIN{print n/s/1e6}')" "$tx" "$secs" >&2
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A MED
for p in "${PROGS[@]}"; do MED[$p]=$(echo "${MPPS[$p]}" | median); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b > 0) ? a / b : 0}'; }
r5=$(ratio "${MED[cpn-fwd]}" "${MED[testpmd-5tswap]}")
rio=$(ratio "${MED[cpn-fwd]}" "${MED[testpmd-io]}")
met=$(awk -v r="$r5" 'BEGIN{print ((r >= 0.7) ? "true" : "false")}')
load=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$IR" -eq 1 ] && ir_measure

if [ "$JSON" -eq 1 ]; then
	printf '{"bench":"fwd","seconds":%s,"warmup":%s,"runs":%s,"requests_in_pcap":%s,"cpus":%s,"loadavg":"%s","results":[' \
		"$SECS" "$WARM" "$RUNS" "$NREQ" "$(nproc)" "$load"
	sep=
	for p in "${PROGS[@]}"; do
		printf '%s{"prog":"%s","mpps_median":%s,"mpps_runs":[%s],"rx_mpps_runs":[%s],"command":"%s"}' \
			"$sep" "$p" "${MED[$p]}" "$(echo ${MPPS[$p]} | tr ' ' ',')" \
			"$(echo ${RXMPPS[$p]} | tr ' ' ',')" "$(cmd_of "$p")"
		sep=,
	done
	printf '],"ratio_vs_5tswap":%s,"ratio_vs_io":%s,"target_0_7_x_5tswap_met":%s' "$r5" "$rio" "$met"
	[ "$IR" -eq 1 ] &&
		printf ',"ir":{"per_request":%s,"requests":%s,"ir_total":%s,"by_file":%s,"command":"%s"}' \
			"$IR_PER_REQ" "$IR_REQS" "$IR_TOTAL" "$IR_BY_FILE" "$IR_CMD"
	printf '}\n'
	exit 0
fi
echo "bench-fwd: ${SECS} s per run after ${WARM} s warm-up, ${RUNS} interleaved rounds, one forwarding"
echo "lcore each (-l 0-1), input: $NREQ cpn REQUESTs + 4 LOADs replayed by net_pcap (infinite_rx),"
echo "output: net_null. $(nproc) CPUs, load average $load (other work may share the CPUs)."
printf '%-16s %12s  %s\n' program "Mpps (med)" "runs (Mpps, TX on net_null)"
for p in "${PROGS[@]}"; do printf '%-16s %12.3f  %s\n' "$p" "${MED[$p]}" "${MPPS[$p]}"; done
echo "cpn-fwd / testpmd 5tswap = $r5 (target >= 0.7: $([ "$met" = true ] && echo met || echo NOT met))"
echo "cpn-fwd / testpmd io     = $rio"
echo "note: net_pcap's RX from memory is itself a limit; testpmd io (no header access) is the"
echo "framework's ceiling on these ports. Commands (file prefix, pcap and config in a temp dir):"
for p in "${PROGS[@]}"; do echo "  $(cmd_of "$p")"; done
if [ "$IR" -eq 1 ]; then
	echo "cpn-fwd: $IR_PER_REQ instructions per request (callgrind, Ir in fwd_burst over $IR_REQS requests)"
	echo "  by source file (Ir per request): $IR_BY_FILE"
	echo "  $IR_CMD"
fi
