#!/usr/bin/env bash
# bench-sched: scheduling quality of the router's policies on the netns
# testbed, next to the M/M/k optimum and M/M/1 (random assignment), and a
# heterogeneous fleet.
#
# Homogeneous: K workers (default 8), each a FCFS single server
# (cpn-worker --kernel synthetic --svc exp:2000 --capacity 1 --max-batch 1,
# --seed k so that no two draw the same service times), behind the XDP
# router of `tools/testbed up --name sq`. cpn-load in the client namespace
# sends open-loop Poisson arrivals at rho x K x 500 req/s for --warmup +
# --duration seconds. Policies are switched between runs on the same
# testbed (cpnctl apply of the testbed's config with another policy; the
# policy the router then reports is checked). Runs are interleaved: repeat r
# of every rho and policy, then repeat r + 1; within one (r, rho) every
# policy gets the same arrival seed (--seed) and 4096 session keys (no
# STICKY: they only feed maglev's flow hash; without them maglev would see 4
# flows). Latencies are quoted in units of the nominal mean service time
# (2 ms): median over the repeats and min..max.
#
# Theory (build/cpn-mmk): M/M/k and M/M/1 quantiles at the nominal rho and
# mean, and at the measured ones: the workers measure their own busy time
# per request (the sleep and its overshoot) and report its mean in LOADs;
# the router's learned svc_us is read at 1/4, 1/2 and 3/4 of every run, and
# its mean at each rho is the effective mean service time S_eff, with
# rho_eff = rate x S_eff / K. A calibration on the same topology with fixed
# 2 ms service shows the overheads: the sleep's overshoot (router-learned
# svc_us - 2 ms), the latency of a lone request (concurrency 1: the path
# through router and veths and the wake-ups), and the occupancy per request
# at saturation (closed loop, 8 per worker outstanding; an upper bound).
#
# Other systems on the same workers, arrivals and rounds (--systems):
#   late1, late2  cpn-fwd with `dispatch: late` (JBSQ(n), include/cpn/late.h)
#                 and late_bound 1 or 2, on a second testbed of K workers
#                 (`tools/testbed up --name sqd --plane dpdk --dispatch late`:
#                 cpn-fwd on net_af_packet ports in the router namespace,
#                 following the pinned maps; policy least for what it binds
#                 early). cpn-fwd runs only during its own runs (restarted
#                 with the run's late_bound, stopped after): it busy-polls a
#                 core. A late run fails, naming the reason, unless cpn-fwd
#                 counts requests it held (req_held or cpn_late_bound_total
#                 on its /metrics).
#   nginx         nginx's UDP stream proxy (Debian nginx with
#                 libnginx-mod-stream), least_conn over the K workers,
#                 proxy_requests 1 and proxy_responses 1 (a session per
#                 request: least_conn counts the requests each worker has
#                 not answered), one worker process, in sqd's router
#                 namespace while cpn-fwd is stopped, listening on the VIP
#                 (added to that namespace's lo for the run); a foreground
#                 process of this script with its configuration, pid and
#                 logs in its temporary directory.
#   nginx-r2      the same with `random two least_conn`.
# The workers answer whoever sent a request: nginx, for nginx's.
# Router-side CPU per request, over the measured window (from the end of
# the warm-up to cpn-load's exit) divided by the requests sent in it: XDP,
# the router program's run_time_ns (kernel.bpf_stats_enabled set for the
# run, then restored); cpn-fwd, cpn_fwd_busy_seconds_total (its forwarding
# lcore's time on rounds that had packets or held requests to move), and
# its threads' time on CPU (busy polling: up to a whole core); nginx, its
# processes' time on CPU (/proc/PID/task/*/schedstat, the ns-resolution
# form of utime + stime; utime + stime from /proc/PID/stat are kept too).
# CPUs, for every row: CPU 1 is the router's (cpn-fwd's forwarding lcore,
# nginx); the client, the workers and the daemons are pinned to the others
# (taskset), so that a polling cpn-fwd has a core to itself, as it would
# in production. The XDP program runs in the senders' softirqs.
#
# Heterogeneous: 4 workers on `testbed --name sqh`: exp:1000, exp:2000,
# exp:4000 and exp:2000 with --delay-us 2000 (2 ms of emulated path delay),
# capacity 1 each (2250 req/s together), at --hetero-rho of that capacity,
# every policy on a fresh testbed (a backlog left by a load-unaware policy
# must not leak into the next run). Reported: p50/p99, the requests left
# without a REPLY (a quantile they may hide is given as >= the timeout), and
# the share of requests the router steered to each worker (its counters)
# next to the worker's share of the capacity.
#
# Reference (where build/cpn-sim exists): cpn-sim runs the same policies of
# sched.h on the router's information with no other cost, at each rho.
# Runs in which cpn-load sent a request over 10 ms late (the client was
# descheduled by other work) are listed in the JSON (disturbed_runs).
#
# usage: bench/bench-sched.sh [--json-out FILE] [--plot-dir DIR] [--quick] [--smoke]
#                             [--workers K] [--rhos LIST] [--policies LIST] [--reps R]
#                             [--target-reps R] [--systems LIST|none] [--duration S] [--warmup S]
#                             [--hetero-rho RHO]
#                             [--hetero-policies LIST] [--hetero-reps R]
#                             [--hetero-duration S] [--no-hetero] [--keep]
#   full: rho 0.5,0.7,0.8,0.9, 5 policies and late1,late2,nginx,nginx-r2,
#   3 repeats of 1 + 4 s (late1 and nginx, the rows the late-binding
#   targets compare: 5, --target-reps), hetero 2 repeats of 1 + 5 s
#   (~15 min); --quick (or
#   BENCH_QUICK=1): rho 0.8, 1 repeat of 1 + 3 s, hetero 1 + 3 s (~90 s);
#   --smoke: 3 workers, rho 0.8, random, least, late1 and nginx, 0.5 + 1.5 s
#   (~35 s). Testbeds: sq, sqd, sqh (removed on exit).
#   Needs root, build/{cpnctl,cpn-worker,cpn-load,cpn-mmk}, bpf/cpn_pass.bpf.o;
#   --systems: build/cpn-fwd; late*: curl; nginx*: nginx and its stream module;
#   gnuplot for --plot-dir (sched_p99.png, sched_hetero.png).
#   env: BUILD (build), NGINX_STREAM_MODULE (/usr/lib/nginx/modules/ngx_stream_module.so)
set -u
CMDLINE="$0"
for a in "$@"; do CMDLINE+=" $(printf '%q' "$a")"; done
[ "${BENCH_QUICK:-}" = 1 ] && CMDLINE="BENCH_QUICK=1 $CMDLINE"
CALLER_PWD=$(pwd)
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
SRC_BUILD=${BUILD:-build}
TB=$ROOT/tools/testbed
NAME=sq HNAME=sqh DNAME=sqd
VIP=10.90.100.1:7470
SVC_US=2000 SESSION_KEYS=4096 TIMEOUT_MS=1000
ALL_POLICIES=random,round-robin,maglev,p2c,least
ALL_SYSTEMS=late1,late2,nginx,nginx-r2
NGINX_MOD=${NGINX_STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}

MODE=full HETERO=1 KEEP=0
K='' RHOS='' POLICIES='' SYSTEMS='' REPS='' TREPS='' DUR='' WARM='' HRHO='' HPOLICIES='' HREPS='' HDUR=''
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
	--workers) K=${2:-}; shift 2 || usage ;;
	--rhos) RHOS=${2:-}; shift 2 || usage ;;
	--policies) POLICIES=${2:-}; shift 2 || usage ;;
	--systems) SYSTEMS=${2:-}; shift 2 || usage ;;
	--reps) REPS=${2:-}; shift 2 || usage ;;
	--target-reps) TREPS=${2:-}; shift 2 || usage ;;
	--duration) DUR=${2:-}; shift 2 || usage ;;
	--warmup) WARM=${2:-}; shift 2 || usage ;;
	--hetero-rho) HRHO=${2:-}; shift 2 || usage ;;
	--hetero-policies) HPOLICIES=${2:-}; shift 2 || usage ;;
	--hetero-reps) HREPS=${2:-}; shift 2 || usage ;;
	--hetero-duration) HDUR=${2:-}; shift 2 || usage ;;
	--no-hetero) HETERO=0; shift ;;
	--quick) MODE=quick; shift ;;
	--smoke) MODE=smoke; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
die() {
	echo "bench-sched: $*" >&2
	exit 1
}
# Paths given relative to where the command was started.
case "$JSON_OUT" in /* | '') ;; *) JSON_OUT=$CALLER_PWD/$JSON_OUT ;; esac
case "$PLOT_DIR" in /* | '') ;; *) PLOT_DIR=$CALLER_PWD/$PLOT_DIR ;; esac
log() { echo "bench-sched: $*" >&2; }

# Defaults per mode; options given win. CAL: seconds of each calibration
# run; SIMREQ: measured requests of each cpn-sim run.
dflt() { [ -n "${!1}" ] || printf -v "$1" '%s' "$2"; }
case "$MODE" in
full)
	dflt K 8; dflt RHOS "0.5,0.7,0.8,0.9"; dflt POLICIES "$ALL_POLICIES"; dflt SYSTEMS "$ALL_SYSTEMS"; dflt REPS 3
	dflt TREPS 5
	dflt DUR 4; dflt WARM 1; dflt HPOLICIES "$ALL_POLICIES"; dflt HREPS 2; dflt HDUR 5
	CAL=3 SIMREQ=400000 ;;
quick)
	dflt K 8; dflt RHOS 0.8; dflt POLICIES "$ALL_POLICIES"; dflt SYSTEMS "$ALL_SYSTEMS"; dflt REPS 1
	dflt DUR 3; dflt WARM 1; dflt HPOLICIES "$ALL_POLICIES"; dflt HREPS 1; dflt HDUR 3
	CAL=1.5 SIMREQ=200000 ;;
smoke)
	dflt K 3; dflt RHOS 0.8; dflt POLICIES "random,least"; dflt SYSTEMS "late1,nginx"; dflt REPS 1
	dflt DUR 1.5; dflt WARM 0.5; dflt HPOLICIES "random,least"; dflt HREPS 1; dflt HDUR 1.5
	CAL=1 SIMREQ=20000 ;;
esac
dflt HRHO 0.7
dflt TREPS "$REPS"

num='^[0-9]+([.][0-9]+)?$'
if ! [[ "$K" =~ ^[0-9]+$ ]] || [ "$K" -lt 1 ] || [ "$K" -gt 64 ]; then die "--workers: 1..64"; fi
if ! [[ "$REPS" =~ ^[1-9][0-9]*$ && "$TREPS" =~ ^[1-9][0-9]*$ && "$HREPS" =~ ^[1-9][0-9]*$ ]]; then
	die "--reps, --target-reps, --hetero-reps: >= 1"
fi
[ "$TREPS" -ge "$REPS" ] || TREPS=$REPS
for v in "$DUR" "$WARM" "$HDUR" "$HRHO"; do [[ "$v" =~ $num ]] || die "not a number: $v"; done
IFS=, read -r -a rhos <<<"$RHOS"
IFS=, read -r -a pols <<<"$POLICIES"
IFS=, read -r -a hpols <<<"$HPOLICIES"
for r in "${rhos[@]}" "$HRHO"; do
	if ! [[ "$r" =~ $num ]] || ! python3 -c "import sys; sys.exit(not 0 < $r < 1)"; then
		die "rho must lie in (0, 1): $r"
	fi
done
for p in "${pols[@]}" "${hpols[@]}"; do
	[[ ",$ALL_POLICIES," == *",$p,"* ]] || die "unknown policy '$p' ($ALL_POLICIES)"
done
syss=()
[ "$SYSTEMS" = none ] || IFS=, read -r -a syss <<<"$SYSTEMS"
want_late=0 want_nginx=0
for p in "${syss[@]}"; do
	[[ ",$ALL_SYSTEMS," == *",$p,"* ]] || die "unknown system '$p' ($ALL_SYSTEMS, or none)"
	case "$p" in late*) want_late=1 ;; nginx*) want_nginx=1 ;; esac
done
[ "$SYSTEMS" = none ] && SYSTEMS=''

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
for t in python3 nsenter ip bpftool sysctl; do command -v "$t" >/dev/null || die "$t not installed"; done
[ -z "$PLOT_DIR" ] || command -v gnuplot >/dev/null || die "gnuplot not installed (--plot-dir)"
for f in cpnctl cpn-worker cpn-load cpn-mmk; do
	[ -x "$SRC_BUILD/$f" ] || die "$SRC_BUILD/$f not built (make $SRC_BUILD/$f)"
done
[ -e bpf/cpn_pass.bpf.o ] || die "bpf/cpn_pass.bpf.o not built (make all)"
# sqd, the testbed of every system, is a dpdk one (cpn-fwd stopped for nginx).
if [ ${#syss[@]} -gt 0 ]; then
	[ -x "$SRC_BUILD/cpn-fwd" ] || die "$SRC_BUILD/cpn-fwd not built (make $SRC_BUILD/cpn-fwd): --systems need it"
fi
if [ "$want_late" = 1 ]; then
	command -v curl >/dev/null || die "curl not installed (Debian package curl): late1, late2 read cpn-fwd's /metrics"
fi
if [ "$want_nginx" = 1 ]; then
	command -v nginx >/dev/null || die "nginx not installed (Debian package nginx, tools/deps.list)"
	command -v pgrep >/dev/null || die "pgrep not installed (Debian package procps)"
	[ -e "$NGINX_MOD" ] ||
		die "$NGINX_MOD missing: nginx's stream module (Debian package libnginx-mod-stream)"
fi

TMP=$(mktemp -d /tmp/cpn-bench-sched.XXXXXX)
NGX_PID='' BPF_STATS0=''
# nginx, a child of this script: TERM (a fast shutdown), KILL after 5 s,
# and the VIP off sqd's router's lo.
nginx_stop() {
	local p
	[ -n "$NGX_PID" ] || return 0
	kill -TERM "$NGX_PID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$NGX_PID" 2>/dev/null || break; sleep 0.1; done
	for p in $(pgrep -P "$NGX_PID" 2>/dev/null) "$NGX_PID"; do kill -9 "$p" 2>/dev/null; done
	wait "$NGX_PID" 2>/dev/null
	NGX_PID=''
	ip -n "$DNAME-router" addr del "${VIP%:*}/32" dev lo 2>/dev/null
	return 0
}
# kernel.bpf_stats_enabled back to what it was (it is global).
bpf_stats_restore() {
	[ -n "$BPF_STATS0" ] || return 0
	sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS0"
	BPF_STATS0=''
}
cleanup() {
	nginx_stop
	bpf_stats_restore
	BUILD=$TMP/build "$TB" down --name "$NAME" 2>/dev/null
	BUILD=$TMP/build "$TB" down --name "$DNAME" 2>/dev/null
	BUILD=$TMP/build "$TB" down --name "$HNAME" 2>/dev/null
	if [ "$KEEP" -eq 1 ]; then log "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries of this run, copied: a rebuild while it runs cannot mix
# versions (the testbed takes them from $BUILD).
mkdir -p "$TMP/build" "$TMP/runs"
for f in cpnctl cpn-worker cpn-load cpn-mmk; do cp "$SRC_BUILD/$f" "$TMP/build/" || die "cannot copy $f"; done
[ -x "$SRC_BUILD/cpn-sim" ] && cp "$SRC_BUILD/cpn-sim" "$TMP/build/"
if [ ${#syss[@]} -gt 0 ]; then cp "$SRC_BUILD/cpn-fwd" "$TMP/build/" || die "cannot copy cpn-fwd"; fi
export BUILD=$TMP/build
LOAD=$BUILD/cpn-load
T0=$SECONDS
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)

tb() { "$TB" "$@"; }
# CPUs: the router's is CPU 1 (cpn-fwd's forwarding lcore, -l 0-1; nginx);
# the client, the workers and the daemons run on the others, so that a
# polling cpn-fwd has its core to itself and shares it with nobody's
# latency. The XDP program runs in the softirqs of the senders' CPUs.
NCPU=$(nproc)
ROUTER_CPU=1 REST_CPUS=0
[ "$NCPU" -gt 2 ] && REST_CPUS="0,2-$((NCPU - 1))"
pin_tb() { # name: its workers and daemon on REST_CPUS
	local st f
	[ "$NCPU" -ge 2 ] || return 0
	st=$(tb info --name "$1" | sed -n 's/.* STATE=\([^ ]*\) .*/\1/p')
	for f in "$st"/w*.pid "$st"/daemon.pid; do
		[ -e "$f" ] || continue
		taskset -a -p -c "$REST_CPUS" "$(cat "$f")" >/dev/null ||
			die "cannot pin $(basename "$f" .pid) of $1 to CPUs $REST_CPUS"
	done
}
pin_cmd() { # the prefix that runs a command on CPUS
	[ "$NCPU" -ge 2 ] && echo taskset -c "$1"
}
# cpn-load in NAME's client namespace, JSON to OUT:
#   load name out duration warmup seed (--rate R | --concurrency C)
load() {
	local name=$1 out=$2 dur=$3 warm=$4 seed=$5
	shift 5
	# shellcheck disable=SC2046
	tb exec --name "$name" client -- $(pin_cmd "$REST_CPUS") "$LOAD" --to "$VIP" --service 1 --tenant 42 \
		--kernel synthetic --session-keys "$SESSION_KEYS" --timeout "$TIMEOUT_MS" \
		--duration "$dur" --warmup "$warm" --seed "$seed" --json "$@" >"$out" 2>"$out.err" ||
		die "cpn-load on $name failed: $(cat "$out.err")"
}
status() { # name out
	tb cpnctl --name "$1" status -j >"$2" 2>"$2.err" || die "cpnctl status on $1 failed: $(cat "$2.err")"
}
# Switch the service's policy: the testbed's own config with another policy, applied.
set_policy() { # name policy
	local st
	st=$(tb info --name "$1" | sed -n 's/.* STATE=\([^ ]*\) .*/\1/p')
	if [ -z "$st" ] || ! sed "s/policy: [a-z-]*,/policy: $2,/" "$st/cpn.yaml" >"$TMP/$1.yaml" ||
		! tb cpnctl --name "$1" apply --config "$TMP/$1.yaml" >"$TMP/apply.log" 2>&1; then
		die "cannot switch $1 to $2: $(cat "$TMP/apply.log" 2>/dev/null)"
	fi
}
up() { # name policy worker-args...
	local name=$1 pol=$2 a=() w
	shift 2
	for w in "$@"; do a+=(--worker "$w"); done
	tb up --name "$name" --policy "$pol" "${a[@]}" >"$TMP/up.log" 2>&1 ||
		die "testbed up $name failed: $(cat "$TMP/up.log")"
	pin_tb "$name"
}
py() { python3 -c "$@"; }

# ---- the other systems (--systems) and the router's CPU ---------------------
# The testbed of late* and nginx*: K workers behind a router namespace with
# no XDP, cpn-fwd stopped between the runs that use it.
up_sqd() { # worker-args...
	local a=() w
	for w in "$@"; do a+=(--worker "$w"); done
	tb up --name "$DNAME" --plane dpdk --policy least --dispatch late --late-bound 1 "${a[@]}" \
		>"$TMP/up.log" 2>&1 || die "testbed up $DNAME (plane dpdk, dispatch late) failed: $(cat "$TMP/up.log")"
	tb stop-fwd --name "$DNAME" >/dev/null 2>&1 || die "cannot stop cpn-fwd on $DNAME"
	pin_tb "$DNAME"
	DSTATE=$(tb info --name "$DNAME" | sed -n 's/.* STATE=\([^ ]*\) .*/\1/p')
	FWD_METRICS=$(tb info --name "$DNAME" | sed -n 's/^FWD_METRICS=//p')
	if [ -z "$DSTATE" ] || [ -z "$FWD_METRICS" ]; then die "testbed $DNAME: no state or metrics address"; fi
}
# late N: sqd's service with late_bound N, cpn-fwd started on it.
late_start() { # n
	if ! sed "s/late_bound: [0-9]*/late_bound: $1/" "$DSTATE/cpn.yaml" >"$TMP/$DNAME.yaml" ||
		! grep -q "dispatch: late, late_bound: $1," "$TMP/$DNAME.yaml" ||
		! tb cpnctl --name "$DNAME" apply --config "$TMP/$DNAME.yaml" >"$TMP/apply.log" 2>&1; then
		die "cannot give $DNAME late_bound $1: $(cat "$TMP/apply.log" 2>/dev/null)"
	fi
	tb restart-fwd --name "$DNAME" >"$TMP/fwd.log" 2>&1 ||
		die "cannot start cpn-fwd on $DNAME: $(cat "$TMP/fwd.log") $(tail -5 "$DSTATE/fwd.log")"
	FWD_PID=$(cat "$DSTATE/fwd.pid")
}
late_stop() { tb stop-fwd --name "$DNAME" >/dev/null 2>&1 || die "cannot stop cpn-fwd on $DNAME"; }
# cpn-fwd's count of held requests (dispatch: late), from a /metrics scrape:
# empty when it exports none (a cpn-fwd without late binding).
held_of() { # metrics file
	awk '/^cpn_packets_total\{action="req_held"/ || /^cpn_late_bound_total[{ ]/ { n += $NF; f = 1 }
		END { if (f) print n }' "$1"
}
# nginx SYSTEM: nginx's stream proxy in sqd's router namespace on the VIP.
nginx_start() { # nginx | nginx-r2
	local d=$TMP/nginx bal=least_conn k
	[ "$1" = nginx-r2 ] && bal="random two least_conn"
	mkdir -p "$d/logs"
	{
		echo "load_module $NGINX_MOD;"
		echo "worker_processes 1;"
		echo "pid $d/nginx.pid;"
		echo "error_log $d/logs/error.log warn;"
		echo "events { worker_connections 4096; }"
		echo "stream {"
		echo "    upstream w {"
		echo "        $bal;"
		for k in $(seq "$K"); do echo "        server 10.90.$((10 + k)).2:7470;"; done
		echo "    }"
		echo "    server {"
		echo "        listen $VIP udp;"
		echo "        proxy_pass w;"
		echo "        proxy_requests 1;"
		echo "        proxy_responses 1;"
		echo "        proxy_timeout $((2 * TIMEOUT_MS))ms;"
		echo "        access_log off;"
		echo "    }"
		echo "}"
	} >"$d/nginx.conf"
	ip -n "$DNAME-router" addr add "${VIP%:*}/32" dev lo || die "cannot add the VIP to $DNAME-router's lo"
	# nsenter execs nginx: $! is nginx's master itself.
	# shellcheck disable=SC2046
	nsenter --net="/run/netns/$DNAME-router" $(pin_cmd "$ROUTER_CPU") nginx -c "$d/nginx.conf" \
		-p "$d/" -e "$d/logs/error.log" \
		-g 'daemon off;' >"$d/out.log" 2>&1 &
	NGX_PID=$!
	for _ in $(seq 100); do
		[ -s "$d/nginx.pid" ] && pgrep -P "$NGX_PID" >/dev/null && return 0
		kill -0 "$NGX_PID" 2>/dev/null || break
		sleep 0.05
	done
	die "nginx did not start: $(cat "$d/out.log" "$d/logs/error.log" 2>/dev/null)"
}
# The router's CPU counters now (raw; the evaluation takes differences):
#   cpu_snap xdp|fwd|nginx OUT
cpu_snap() {
	local p t procs=''
	{
		echo "t $(date +%s%N)"
		case "$1" in
		xdp) for p in $XDP_IDS; do echo "bpf $(bpftool prog show id "$p" -j)"; done ;;
		fwd)
			tb exec --name "$DNAME" router -- curl -s -m 2 "http://$FWD_METRICS/metrics" >"$2.metrics"
			procs="$FWD_PID"
			;;
		nginx) procs="$NGX_PID $(pgrep -P "$NGX_PID" | tr '\n' ' ')" ;;
		esac
		if [ "$1" != xdp ]; then
			for p in $procs; do
				echo "stat $p $(cat "/proc/$p/stat")"
				for t in /proc/"$p"/task/*; do echo "sched $p ${t##*/} $(cat "$t/schedstat")"; done
			done
		fi
	} >"$2" 2>>"$2.err"
}
quick_p99() { # cpn-load JSON: p99 in units of the nominal mean service time
	py "import json,sys; d=json.load(open(sys.argv[1])); print('%.2f' % (d['latency_us']['p99'] / $SVC_US))" "$1"
}
# One line per run: kind rho policy rep rate seed file loadavg
IDX=$TMP/runs.idx
: >"$IDX"

# ---- calibration: fixed service time, same topology ------------------------
log "calibration: $K workers, fixed:$SVC_US"
w=()
for k in $(seq "$K"); do w+=("--kernel synthetic --svc fixed:$SVC_US --capacity 1 --max-batch 1 --seed $k"); done
up "$NAME" least "${w[@]}"
load "$NAME" "$TMP/cal_lone.json" "$CAL" 0.3 1 --concurrency 1
status "$NAME" "$TMP/cal_lone.status.json"
load "$NAME" "$TMP/cal_sat.json" "$CAL" 0.5 2 --concurrency $((8 * K))
status "$NAME" "$TMP/cal_sat.status.json"
tb down --name "$NAME"

# ---- homogeneous fleet ------------------------------------------------------
w=()
for k in $(seq "$K"); do w+=("--kernel synthetic --svc exp:$SVC_US --capacity 1 --max-batch 1 --seed $k"); done
up "$NAME" "${pols[0]}" "${w[@]}"
# The router program(s) on sq's ports, whose run time is its CPU.
XDP_IDS=$(tb exec --name "$NAME" router -- bpftool net show -j |
	py "import json,sys; print(' '.join(sorted({str(x['id']) for e in json.load(sys.stdin) for x in e.get('xdp', [])})))")
[ -n "$XDP_IDS" ] || die "no XDP program on $NAME's router ports"
[ ${#syss[@]} -eq 0 ] || up_sqd "${w[@]}"
items=("${pols[@]}" "${syss[@]}")
# late1 and nginx, the two rows the late-binding targets compare, are
# repeated TREPS times; the others REPS times.
is_target() { [ "$1" = late1 ] || [ "$1" = nginx ]; }
nt=0
for p in "${items[@]}"; do is_target "$p" && nt=$((nt + 1)); done
np=${#items[@]} nr=${#rhos[@]} i=0
total=$((REPS * nr * np + (TREPS - REPS) * nr * nt))
Q=$(py "print($DUR / 4)")
log "homogeneous: $K x exp:$SVC_US, rho $RHOS, ${items[*]}, $REPS x ($WARM + $DUR) s (late1, nginx: $TREPS x)"
for rep in $(seq "$TREPS"); do
	for ((ri = 0; ri < nr; ri++)); do
		rho=${rhos[$ri]}
		rate=$(py "print(round($rho * $K * 1e6 / $SVC_US, 3))")
		seed=$((100 * rep + ri + 1))
		for ((j = 0; j < np; j++)); do
			# A rotating order: no policy or system always runs first or last.
			pol=${items[$(((j + rep + ri) % np))]}
			[ "$rep" -le "$REPS" ] || is_target "$pol" || continue
			i=$((i + 1))
			f=$TMP/runs/homog-$rho-$pol-$rep.json
			case "$pol" in
			late*) tbn=$DNAME ck=fwd; late_start "${pol#late}" ;;
			nginx*) tbn=$DNAME ck=nginx; nginx_start "$pol" ;;
			*)
				tbn=$NAME ck=xdp
				set_policy "$NAME" "$pol"
				if ! BPF_STATS0=$(sysctl -n kernel.bpf_stats_enabled) ||
					! sysctl -qw kernel.bpf_stats_enabled=1; then
					die "cannot set kernel.bpf_stats_enabled"
				fi
				;;
			esac
			# The router's CPU counters at the end of the warm-up and after
			# the run; its learned service times at 1/4, 1/2 and 3/4 of the
			# measured window: the real mean service time under this load.
			load "$tbn" "$f" "$DUR" "$WARM" "$seed" --rate "$rate" &
			lp=$!
			sleep "$WARM"
			cpu_snap "$ck" "$f.cpu0"
			sleep "$Q"
			for m in 1 2 3; do
				status "$tbn" "$f.mid$m"
				[ $m -lt 3 ] && sleep "$Q"
			done
			wait "$lp" || die "cpn-load failed ($f)"
			cpu_snap "$ck" "$f.cpu1"
			status "$tbn" "$f.status"
			case "$ck" in
			fwd)
				late_stop
				[ -n "$(held_of "$f.cpu1.metrics")" ] ||
					die "$pol: cpn-fwd ($SRC_BUILD/cpn-fwd) does not hold requests of a dispatch: late service" \
						"(no cpn_packets_total{action=\"req_held\"} nor cpn_late_bound_total on its /metrics):" \
						"it has no late binding"
				;;
			nginx) nginx_stop ;;
			xdp) bpf_stats_restore ;;
			esac
			echo "homog $rho $pol $rep $rate $seed $f $(cut -d' ' -f1 /proc/loadavg)" >>"$IDX"
			log "[$i/$total] rho $rho $pol rep $rep: p99 $(quick_p99 "$f") x mean"
		done
	done
done
tb down --name "$NAME"
[ ${#syss[@]} -eq 0 ] || tb down --name "$DNAME"

# ---- the same policies in cpn-sim (sched.h itself, no overheads) ------------
# A reference, not a baseline: what the policy core reaches with the router's
# information (LOADs every 50 ms, outstanding, the load carried by REPLYs)
# when nothing else costs time. Skipped without build/cpn-sim.
if [ -x "$BUILD/cpn-sim" ]; then
	for rho in "${rhos[@]}"; do
		"$BUILD/cpn-sim" --nodes "$K" --group-size "$K" --routers 1 --policies "$POLICIES" \
			--modes router --rho "$rho" --mean-us "$SVC_US" --requests "$SIMREQ" --repeats 3 \
			--json-out "$TMP/sim-$rho.json" >"$TMP/sim.log" 2>&1 ||
			log "cpn-sim at rho $rho failed (no simulated reference): $(tail -1 "$TMP/sim.log")"
	done
fi

# ---- heterogeneous fleet ----------------------------------------------------
# svc (exp mean, us) and emulated path delay (us) per worker.
HSVC=(1000 2000 4000 2000)
HDELAY=(0 0 0 2000)
if [ "$HETERO" -eq 1 ]; then
	w=()
	for k in 1 2 3 4; do
		wa="--kernel synthetic --svc exp:${HSVC[$((k - 1))]} --capacity 1 --max-batch 1 --seed $((100 + k))"
		[ "${HDELAY[$((k - 1))]}" -gt 0 ] && wa+=" --delay-us ${HDELAY[$((k - 1))]}"
		w+=("$wa")
	done
	hrate=$(py "print(round($HRHO * sum(1e6 / s for s in ($(IFS=,; echo "${HSVC[*]}"))), 3))")
	np=${#hpols[@]} i=0 total=$((HREPS * np))
	log "heterogeneous: exp:${HSVC[*]} (delay ${HDELAY[*]} us), rho $HRHO ($hrate/s), $HPOLICIES, $HREPS x ($WARM + $HDUR) s"
	for rep in $(seq "$HREPS"); do
		for ((j = 0; j < np; j++)); do
			pol=${hpols[$(((j + rep) % np))]}
			i=$((i + 1))
			f=$TMP/runs/hetero-$pol-$rep.json
			up "$HNAME" "$pol" "${w[@]}"
			load "$HNAME" "$f" "$HDUR" "$WARM" $((500 + rep)) --rate "$hrate"
			status "$HNAME" "$f.status"
			tb down --name "$HNAME"
			echo "hetero $HRHO $pol $rep $hrate $((500 + rep)) $f $(cut -d' ' -f1 /proc/loadavg)" >>"$IDX"
			log "[$i/$total] hetero $pol rep $rep: p99 $(py "import json; print(json.load(open('$f'))['latency_us']['p99'] / 1000)") ms"
		done
	done
fi

# ---- results: JSON, table, plots ------------------------------------------
NGINX_VERSION=''
[ "$want_nginx" = 1 ] && NGINX_VERSION=$(nginx -v 2>&1 | sed -n 's/^nginx version: //p')
export TMP JSON_OUT PLOT_DIR CMDLINE MODE K SVC_US RHOS POLICIES SYSTEMS REPS TREPS DUR WARM HRHO HPOLICIES HREPS \
	HDUR HETERO SESSION_KEYS TIMEOUT_MS LOADAVG0 CAL NGINX_VERSION NGINX_MOD
export HSVC_LIST="${HSVC[*]}" HDELAY_LIST="${HDELAY[*]}" MMK=$BUILD/cpn-mmk ELAPSED=$((SECONDS - T0))
mkdir -p "$TMP/plot"
python3 - <<'PY' || die "cannot evaluate the runs"
import glob, json, os, platform, statistics, subprocess

E = os.environ
TMP, K, S = E["TMP"], int(E["K"]), float(E["SVC_US"])
TIMEOUT_US = float(E["TIMEOUT_MS"]) * 1000
QN = {0.5: "p50", 0.99: "p99", 0.999: "p99.9"}
QS = ("p50", "p99", "p99.9")
SYSTEMS = [x for x in E["SYSTEMS"].split(",") if x]
# What runs each system, and how its router-side CPU is measured.
SYS_SETUP = {
    "xdp": {"router": "cpnctl's XDP program on every router port of testbed sq (native XDP on veth)",
            "cpu": "the router program's run_time_ns (kernel.bpf_stats_enabled on for the run, then "
                   "restored), all its runs: REQUESTs, REPLYs, LOADs; not the kernel's transmit of "
                   "what it redirects"},
    "late": {"router": "cpn-fwd (testbed sqd --plane dpdk: net_af_packet ports in the router namespace, "
                       "following the pinned maps, one busy-polling forwarding lcore), service "
                       "dispatch: late with late_bound n (JBSQ(n)), policy least for what it binds early",
             "cpu": "cpn_fwd_busy_seconds_total (the forwarding lcore's time on rounds that had packets "
                    "or held requests to move) where cpn-fwd exports it; proc_us_per_request: its threads' "
                    "time on CPU (schedstat), up to a whole core while it busy-polls"},
    "nginx": {"router": "%s stream proxy (%s), worker_processes 1, upstream of the K workers with "
                        "%%s, listen VIP udp, proxy_requests 1, proxy_responses 1 (a session per request), "
                        "proxy_timeout 2 x the client's timeout, access_log off; in testbed sqd's router "
                        "namespace (no XDP, cpn-fwd stopped, the VIP on its lo for the run); the workers "
                        "answer nginx (a REQUEST no router tagged)" % (E["NGINX_VERSION"] or "nginx",
                                                                       os.path.basename(E["NGINX_MOD"])),
              "cpu": "its processes' (master and worker) time on CPU, /proc/PID/task/*/schedstat (ns; "
                     "utime + stime of /proc/PID/stat kept as stat_us_per_request): its syscalls, and the "
                     "softirqs that ran in its time (a kernel without IRQ time accounting), not those that "
                     "ran elsewhere"},
}


def kind_of(pol):
    if pol.startswith("late"):
        return "late"
    if pol.startswith("nginx"):
        return "nginx"
    return "xdp"


def system_setup(pol):
    k = kind_of(pol)
    d = dict(SYS_SETUP[k])
    if k == "late":
        d["late_bound"] = int(pol[4:])
    if k == "nginx":
        d["router"] = d["router"] % ("random two least_conn" if pol == "nginx-r2" else "least_conn")
    return {"system": {"xdp": "cpn XDP router", "late": "cpn-fwd, late binding", "nginx": "nginx"}[k], **d}


def snap(p):
    """A cpu_snap file: time, BPF programs' stats, processes' CPU (ns)."""
    r = {"t": None, "bpf": {}, "sched": {}, "stat": {}}
    hz = os.sysconf("SC_CLK_TCK")
    with open(p) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            if k == "t":
                r["t"] = int(v)
            elif k == "bpf" and v:
                b = json.loads(v)
                r["bpf"][b["id"]] = (b.get("run_time_ns", 0), b.get("run_cnt", 0))
            elif k == "sched":
                pid, tid, ns = v.split()[:3]
                r["sched"][(pid, tid)] = int(ns)
            elif k == "stat":
                pid, st = v.split(" ", 1)
                rest = st[st.rindex(")") + 2:].split()
                r["stat"][pid] = (int(rest[11]) + int(rest[12])) * 1e9 / hz
    mp = p + ".metrics"
    r["metrics"] = {}
    if os.path.exists(mp):
        with open(mp) as f:
            for line in f:
                if line and not line.startswith("#") and " " in line:
                    n, v = line.rsplit(" ", 1)
                    try:
                        r["metrics"][n] = float(v)
                    except ValueError:
                        pass
    return r


def metric(m, pred):
    v = [x for n, x in m.items() if pred(n)]
    return sum(v) if v else None


def router_cpu(pol, f, sent):
    """The router's CPU per request over the measured window (us), or None."""
    if not os.path.exists(f + ".cpu0") or not os.path.exists(f + ".cpu1") or not sent:
        return None
    a, b = snap(f + ".cpu0"), snap(f + ".cpu1")
    k = kind_of(pol)
    r = {"window_s": (b["t"] - a["t"]) / 1e9, "requests": sent}
    if k == "xdp":
        ids = set(a["bpf"]) & set(b["bpf"])
        if not ids:
            return None
        ns = sum(b["bpf"][i][0] - a["bpf"][i][0] for i in ids)
        r.update(method="bpf_stats run_time_ns", us_per_request=ns / 1e3 / sent,
                 runs_per_request=sum(b["bpf"][i][1] - a["bpf"][i][1] for i in ids) / sent)
        return r
    both = set(a["sched"]) & set(b["sched"])
    proc_ns = sum(b["sched"][t] - a["sched"][t] for t in both)
    r["proc_us_per_request"] = proc_ns / 1e3 / sent
    r["proc_cores"] = proc_ns / 1e9 / r["window_s"] if r["window_s"] > 0 else None
    pids = set(a["stat"]) & set(b["stat"])
    r["stat_us_per_request"] = sum(b["stat"][p] - a["stat"][p] for p in pids) / 1e3 / sent
    if k == "nginx":
        r.update(method="schedstat of nginx's processes", us_per_request=r["proc_us_per_request"])
        return r
    busy = [metric(x["metrics"], lambda n: n.startswith("cpn_fwd_busy_seconds_total")) for x in (a, b)]
    def delta(name):
        v = [metric(x["metrics"], lambda n: n.startswith(name)) for x in (a, b)]
        return v[1] - v[0] if None not in v else None

    # Requests held for a slot; bound once held, bound early, refused after waiting.
    r["held"] = delta('cpn_packets_total{action="req_held"')
    if r["held"] is None:
        r["held"] = delta("cpn_late_bound_total")
    r["held_share"] = r["held"] / sent if r["held"] is not None else None
    for k, n in (("late_bound", "cpn_late_bound_total"), ("late_early", "cpn_late_early_total"),
                 ("late_timed_out", "cpn_late_timed_out_total")):
        r[k] = delta(n)
    if None not in busy:
        r.update(method="cpn_fwd_busy_seconds_total", us_per_request=(busy[1] - busy[0]) * 1e6 / sent)
    else:
        r.update(method="none: cpn-fwd exports no cpn_fwd_busy_seconds_total (proc_us_per_request: "
                        "its threads' CPU, busy polling)", us_per_request=None)
    return r


def load(p):
    with open(p) as f:
        return json.load(f)


def mmk(rho, mean):
    """cpn-mmk: M/M/k and M/M/1 quantiles (us) at utilisation rho, or None."""
    if not 0 < rho < 1:
        return None
    out = subprocess.run([E["MMK"], "--k", str(K), "--rho", "%.6f" % rho, "--mean", "%.6f" % mean,
                          "--q", "0.5,0.99,0.999", "--json"], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    r = {"rho": round(rho, 6), "mean_us": round(mean, 3), "erlang_c": d["erlang_c"],
         "mmk": {"mean": d["mmk_mean"]}, "mm1": {"mean": d["mm1_mean"]}}
    for q in d["quantiles"]:
        n = QN[round(q["q"], 6)]
        r["mmk"][n], r["mm1"][n] = q["mmk"], q["mm1"]
    return r


def spread(v):
    v = [x for x in v if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def router_view(st):
    return {str(n["id"]): {"svc_us": n["svc_us"], "path_us": n["path_us"], "requests": n["requests"]}
            for n in st["nodes"]}


def run_record(kind, rho, pol, rep, rate, seed, f):
    d, st = load(f), load(f + ".status")
    lat = d["latency_us"]
    seen = st["services"][0]["policy"]
    if pol not in SYSTEMS and seen != pol:
        raise SystemExit("bench-sched: %s: the router ran %s, not %s" % (f, seen, pol))
    unserved = (d["lost"] + d["busy"]) / d["sent"] if d["sent"] else 1.0
    rec = {"rep": rep, "seed": seed, "rate": rate, "send_rate": d["send_rate"], "sent": d["sent"],
           "replied": d["replied"], "lost": d["lost"], "busy": d["busy"], "unserved_share": unserved,
           "mean_us": lat["mean"], "max_us": lat["max"], "send_lag_max_us": d["send_lag_us"]["max"],
           "share": {n: c / d["replied"] for n, c in sorted(d["share"].items(), key=lambda x: int(x[0]))}
           if d["replied"] else {},
           "router": router_view(st), "censored": []}
    if kind == "homog":
        rec["router_cpu"] = router_cpu(pol, f, d["sent"])
    mids = [f + ".mid%d" % m for m in (1, 2, 3) if os.path.exists(f + ".mid%d" % m)]
    if mids:
        rec["mid_svc_us"] = [statistics.mean(n["svc_us"] for n in load(m)["nodes"]) for m in mids]
    # A quantile that the requests without a REPLY (lost after the timeout,
    # or BUSY) may hide is only known to be at least the timeout.
    for q, name in ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")):
        if unserved > 1 - q:
            rec[name + "_us"] = TIMEOUT_US
            rec["censored"].append(name)
        else:
            rec[name + "_us"] = lat[name]
    return rec


runs = {}
with open(os.path.join(TMP, "runs.idx")) as f:
    for line in f:
        kind, rho, pol, rep, rate, seed, path, la = line.split()
        key = (kind, float(rho), pol)
        rec = run_record(kind, float(rho), pol, int(rep), float(rate), int(seed), path)
        rec["loadavg_1min"] = float(la)
        # Disturbed: the client was descheduled (a request sent over 10 ms
        # late), or cpn-fwd's busy-polling lcore got less than 0.9 of a core
        # (another busy poller or other work on its core).
        c = rec.get("router_cpu") or {}
        rec["disturbed"] = rec["send_lag_max_us"] > 10000 or (
            kind_of(pol) == "late" and c.get("proc_cores") is not None and c["proc_cores"] < 0.9)
        runs.setdefault(key, []).append(rec)

# Calibration: fixed service time S on the same topology.
lone, sat = load(os.path.join(TMP, "cal_lone.json")), load(os.path.join(TMP, "cal_sat.json"))
sat_st = load(os.path.join(TMP, "cal_sat.status.json"))
router_svc = statistics.mean(n["svc_us"] for n in sat_st["nodes"])
occupancy = K * 1e6 / sat["reply_rate"] if sat["reply_rate"] else None
if not occupancy:
    raise SystemExit("bench-sched: the calibration at saturation got no replies")
# The effective mean service time at each rho: what the workers measured
# themselves (busy time per request, reported in their LOADs) as the router
# learned it, read at 1/4, 1/2 and 3/4 of every run's window; the mean over
# the nodes, the snapshots and the runs at that rho.
mid_svc = {}
for key, rs in runs.items():
    if key[0] == "homog" and key[2] not in SYSTEMS:
        for r in rs:
            mid_svc.setdefault(key[1], []).extend(r["mid_svc_us"])
cal = {
    "method": "fixed:%d us workers, same testbed: closed loop, concurrency 1 (a lone request), then "
              "concurrency 8 x K with least; occupancy = K / reply rate (an upper bound: a worker "
              "may idle while the client is descheduled)" % S,
    "seconds_each": float(E["CAL"]),
    "lone_latency_us": {"mean": lone["latency_us"]["mean"], "p50": lone["latency_us"]["p50"],
                        "p99": lone["latency_us"]["p99"]},
    "saturation_reply_rate": sat["reply_rate"],
    "occupancy_per_request_us": occupancy,
    "router_learned_svc_us": router_svc,
    "sleep_overshoot_us": router_svc - S,
    "reply_handling_us": occupancy - router_svc,
    "path_and_wakeup_us": lone["latency_us"]["mean"] - occupancy,
    "router_learned_svc_us_exp_runs": {str(r): spread(v) for r, v in sorted(mid_svc.items())},
    "effective_svc_method": "exp runs: the workers' own busy time per request (LOAD worker_us, as the "
                            "router learned it) at 1/4, 1/2, 3/4 of each window, mean over nodes, "
                            "snapshots and runs at each rho",
}
s_eff = {r: statistics.mean(v) for r, v in mid_svc.items()}
cal["effective_svc_us"] = {str(r): v for r, v in sorted(s_eff.items())}


def s_eff_at(rho):
    """S_eff between the measured rhos: linear, constant beyond them."""
    pts = sorted(s_eff.items())
    if rho <= pts[0][0]:
        return pts[0][1]
    for (r0, v0), (r1, v1) in zip(pts, pts[1:]):
        if rho <= r1:
            return v0 + (v1 - v0) * (rho - r0) / (r1 - r0)
    return pts[-1][1]

# Theory at each rho: nominal (S, rho) and measured (S_eff, rho x S_eff / S).
rhos = sorted({k[1] for k in runs if k[0] == "homog"})
theory = {}
for rho in rhos:
    theory[rho] = {"nominal": mmk(rho, S), "measured": mmk(rho * s_eff[rho] / S, s_eff[rho])}

# cpn-sim's p50/p99/p99.9 per rho and policy (units of S), where it ran.
sim = {}
for p in glob.glob(os.path.join(TMP, "sim-*.json")):
    d = load(p)
    rho = float(d["params"]["rho"])
    for r in d["results"]:
        if r.get("routers") == 1 and "router" in (r.get("mode"), r.get("measured_in_mode")):
            sim[(rho, r["policy"])] = {"p50": r["p50"], "p99": r["p99"], "p99.9": r["p999"],
                                       "p99_min": r["p99_min"], "p99_max": r["p99_max"]}

homog = []
by = {}
for (kind, rho, pol), rs in sorted(runs.items()):
    if kind != "homog":
        continue
    rs.sort(key=lambda r: r["rep"])
    ent = {"rho": rho, "policy": pol, "rate": rs[0]["rate"], "runs": rs,
           "system": system_setup(pol)["system"]}
    for q in QS:
        ent[q + "_us"] = spread([r[q + "_us"] for r in rs])
        ent[q] = spread([r[q + "_us"] / S for r in rs])  # units of the mean service time
        ent[q + "_censored_runs"] = sum(q in r["censored"] for r in rs)
    ent["lost"] = sum(r["lost"] for r in rs)
    ent["busy"] = sum(r["busy"] for r in rs)
    for basis in ("nominal", "measured"):
        th = theory[rho][basis]
        ent["vs_mmk_" + basis] = {q: ent[q + "_us"]["median"] / th["mmk"][q] for q in QS} if th else None
    ent["simulated"] = sim.get((rho, pol))
    # The same over the runs that nothing disturbed (None if none).
    ent["p99_undisturbed"] = spread([r["p99_us"] / S for r in rs if not r["disturbed"]])
    rc = [r["router_cpu"] for r in rs if r.get("router_cpu")]
    ent["router_cpu_us_per_request"] = spread([c["us_per_request"] for c in rc])
    ent["router_cpu_method"] = rc[0]["method"] if rc else None
    if kind_of(pol) != "xdp":
        ent["router_proc_cpu_us_per_request"] = spread([c["proc_us_per_request"] for c in rc])
    if kind_of(pol) == "late":
        ent["held_share"] = spread([c["held_share"] for c in rc])
    homog.append(ent)
    by[(rho, pol)] = ent
for ent in homog:
    rnd = by.get((ent["rho"], "random"))
    if rnd:
        ent["random_over_this"] = {q: rnd[q + "_us"]["median"] / ent[q + "_us"]["median"] for q in QS}
        # Per repeat: the same arrivals (seed) for both.
        rr = {r["rep"]: r for r in rnd["runs"]}
        ent["random_over_this_p99_per_rep"] = spread(
            [rr[r["rep"]]["p99_us"] / r["p99_us"] for r in ent["runs"] if r["rep"] in rr])

targets = []
if 0.8 in rhos:
    th = theory[0.8]
    for pol, lim in (("least", 1.25), ("p2c", 1.6)):
        e = by.get((0.8, pol))
        if not e:
            continue
        t = {"what": "%s p99 <= %.2f x M/M/k p99 at rho 0.8" % (pol, lim), "limit": lim,
             "ratio_measured": e["vs_mmk_measured"]["p99"] if e["vs_mmk_measured"] else None,
             "ratio_nominal": e["vs_mmk_nominal"]["p99"]}
        t["met"] = t["ratio_measured"] is not None and t["ratio_measured"] <= lim
        t["met_nominal"] = t["ratio_nominal"] <= lim
        targets.append(t)
    for pol in ("least", "p2c"):
        e = by.get((0.8, pol))
        if e and "random_over_this" in e:
            v = e["random_over_this"]["p99"]
            targets.append({"what": "random p99 >= 3 x %s p99 at rho 0.8" % pol, "limit": 3.0,
                            "ratio": v, "per_rep": e["random_over_this_p99_per_rep"], "met": v >= 3.0})

# Late binding against the optimum (M/M/k at the measured service time) and
# against nginx least_conn, in the same run, at every rho; per repeat the
# arrivals are the same.
late_ratios = []
for rho in rhos:
    ng = by.get((rho, "nginx"))
    for pol in SYSTEMS:
        e = by.get((rho, pol))
        if not e or kind_of(pol) != "late":
            continue
        und = e["p99_undisturbed"], ng and ng["p99_undisturbed"]
        lr = {"rho": rho, "system": pol, "p99": e["p99"]["median"],
              "p99_undisturbed": und[0]["median"] if und[0] else None,
              "vs_mmk_measured_p99_undisturbed": und[0]["median"] * S / theory[rho]["measured"]["mmk"]["p99"]
              if und[0] and theory[rho]["measured"] else None,
              "vs_nginx_p99_undisturbed": und[0]["median"] / und[1]["median"] if und[0] and und[1] else None,
              "vs_mmk_measured_p99": e["vs_mmk_measured"]["p99"] if e["vs_mmk_measured"] else None,
              "vs_mmk_nominal_p99": e["vs_mmk_nominal"]["p99"],
              "vs_nginx_p99": e["p99_us"]["median"] / ng["p99_us"]["median"] if ng else None}
        if ng:
            nr = {r["rep"]: r for r in ng["runs"]}
            lr["vs_nginx_p99_per_rep"] = spread([r["p99_us"] / nr[r["rep"]]["p99_us"] for r in e["runs"]
                                                 if r["rep"] in nr])
        late_ratios.append(lr)
        if rho != 0.8:
            continue
        t = {"what": "%s p99 <= 1.10 x M/M/k p99 at rho 0.8" % pol, "limit": 1.10,
             "ratio_measured": lr["vs_mmk_measured_p99"], "ratio_nominal": lr["vs_mmk_nominal_p99"],
             "ratio_undisturbed": lr["vs_mmk_measured_p99_undisturbed"]}
        t["met"] = t["ratio_measured"] is not None and t["ratio_measured"] <= 1.10
        t["met_nominal"] = t["ratio_nominal"] <= 1.10
        targets.append(t)
        if ng:
            targets.append({"what": "%s p99 <= 0.85 x nginx least_conn p99 at rho 0.8" % pol, "limit": 0.85,
                            "ratio": lr["vs_nginx_p99"], "per_rep": lr["vs_nginx_p99_per_rep"],
                            "ratio_undisturbed": lr["vs_nginx_p99_undisturbed"],
                            "met": lr["vs_nginx_p99"] <= 0.85})

hetero = None
if E["HETERO"] == "1":
    hsvc = [float(x) for x in E["HSVC_LIST"].split()]
    hdel = [int(x) for x in E["HDELAY_LIST"].split()]
    caps = [1e6 / s for s in hsvc]
    workers = [{"id": i + 1, "svc": "exp:%d" % s, "delay_us": dl, "capacity_rps": c,
                "capacity_share": c / sum(caps)} for i, (s, dl, c) in enumerate(zip(hsvc, hdel, caps))]
    pols = []
    for pol in E["HPOLICIES"].split(","):
        rs = next((v for k, v in runs.items() if k[0] == "hetero" and k[2] == pol), None)
        if not rs:
            continue
        rs.sort(key=lambda r: r["rep"])
        ent = {"policy": pol, "runs": rs}
        for q in QS:
            ent[q + "_us"] = spread([r[q + "_us"] for r in rs])
            ent[q + "_censored_runs"] = sum(q in r["censored"] for r in rs)
        ent["unserved_share"] = spread([r["unserved_share"] for r in rs])
        # share: requests the router steered to each worker (its own
        # counters, the testbed being fresh); reply_share: REPLYs cpn-load got.
        ent["share"], ent["reply_share"] = {}, {}
        for w in workers:
            i = str(w["id"])
            ent["share"][i] = statistics.median(
                r["router"][i]["requests"] / max(1, sum(v["requests"] for v in r["router"].values())) for r in rs)
            ent["reply_share"][i] = statistics.median(r["share"].get(i, 0.0) for r in rs)
        pols.append(ent)
    hetero = {"rho": float(E["HRHO"]), "rate": pols[0]["runs"][0]["rate"] if pols else None,
              "workers": workers, "total_capacity_rps": sum(caps),
              "reps": int(E["HREPS"]), "duration_s": float(E["HDUR"]), "policies": pols,
              "baseline": "capacity_share of each worker: the share a policy that equalises utilisation gives"}


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


with open("/proc/loadavg") as f:
    la1 = " ".join(f.read().split()[:3])
out = {
    "benchmark": "sched",
    "command": E["CMDLINE"],
    "mode": E["MODE"],
    "machine": {"uname": sh("uname -srm"), "nproc": int(sh("nproc")), "cpu": cpu_model(),
                "loadavg_start": E["LOADAVG0"], "loadavg_end": la1},
    "elapsed_s": int(E["ELAPSED"]),
    "params": {"workers": K, "svc": "exp:%d" % S, "capacity": 1, "max_batch": 1,
               "rhos": rhos, "policies": E["POLICIES"].split(","), "systems": SYSTEMS, "reps": int(E["REPS"]),
               "target_reps": int(E["TREPS"]),
               "warmup_s": float(E["WARM"]), "duration_s": float(E["DUR"]),
               "arrivals": "poisson (open loop)", "session_keys": int(E["SESSION_KEYS"]),
               "timeout_ms": float(E["TIMEOUT_MS"]), "units": "latencies without _us: multiples of the "
               "nominal mean service time %d us" % S},
    "calibration": cal,
    "theory": [{"rho": r, **theory[r]} for r in rhos],
    "homogeneous": homog,
    "targets_basis": "M/M/k p99 at the measured effective service time (calibration) and rho_eff = "
                     "rate x effective_svc_us / K; ratio_nominal: at the nominal 2 ms and rho",
    "targets": targets,
    "systems": {"policies": system_setup(E["POLICIES"].split(",")[0]), **{p: system_setup(p) for p in SYSTEMS}},
    "late_ratios": late_ratios,
    "disturbed_runs": {
        "what": "runs in which cpn-load sent some request more than 10 ms after its scheduled time "
                "(the client was descheduled: other work on the cores), and late runs in which cpn-fwd's "
                "threads got less than 0.9 of a core (its busy-polling lcore shared); medians over repeats "
                "absorb them, p99_undisturbed leaves them out",
        "runs": ["%s rho %g %s rep %d (%.0f ms%s)" % (
            k[0], k[1], k[2], r["rep"], r["send_lag_max_us"] / 1000,
            ", cpn-fwd %.2f of a core" % r["router_cpu"]["proc_cores"] if kind_of(k[2]) == "late" and
            r.get("router_cpu") else "")
            for k, rs in sorted(runs.items()) for r in rs if r["disturbed"]]},
    "simulated_reference": "cpn-sim --nodes K --group-size K --routers 1 --modes router --repeats 3, nominal rho "
                           "and mean: the policy core of sched.h with the router's information and no other cost"
                           if sim else None,
    "heterogeneous": hetero,
}

# Plot data: per policy p99 and p99.9 (units of S) against rho; theory on a grid.
P = os.path.join(TMP, "plot")
pols = E["POLICIES"].split(",") + SYSTEMS
with open(os.path.join(P, "homog.dat"), "w") as f:
    for pol in pols:
        f.write('"%s" 0 0 0 0 0 0 0 0\n' % pol)
        for rho in rhos:
            e = by.get((rho, pol))
            if e:
                sm = e["simulated"] or {"p99": float("nan"), "p99.9": float("nan")}
                f.write("%g %g %g %g %g %g %g %g %g\n" % (
                    rho, e["p99"]["median"], e["p99"]["min"], e["p99"]["max"],
                    e["p99.9"]["median"], e["p99.9"]["min"], e["p99.9"]["max"], sm["p99"], sm["p99.9"]))
        f.write("\n\n")
lo, hi = max(0.05, min(rhos) - 0.05), min(0.95, max(rhos) + 0.03)
with open(os.path.join(P, "theory.dat"), "w") as f:
    f.write("# rho  nominal: mmk p99, mm1 p99, mmk p99.9, mm1 p99.9  measured: the same\n")
    n = int(round((hi - lo) / 0.01))
    for i in range(n + 1):
        rho = lo + i * (hi - lo) / n
        row = [rho]
        se = s_eff_at(rho)
        for th in (mmk(rho, S), mmk(rho * se / S, se)):
            row += [th[m][q] / S if th else float("nan") for q in ("p99", "p99.9") for m in ("mmk", "mm1")]
        # columns: mmk p99, mm1 p99, mmk p99.9, mm1 p99.9 (order of the loop)
        f.write(" ".join("%g" % x for x in row) + "\n")
if hetero:
    with open(os.path.join(P, "hetero.dat"), "w") as f:
        f.write("policy " + " ".join('"w%d %s%s"' % (w["id"], w["svc"], " +%g ms" % (w["delay_us"] / 1000)
                                     if w["delay_us"] else "") for w in hetero["workers"]) + "\n")
        f.write('"capacity" ' + " ".join("%g" % w["capacity_share"] for w in hetero["workers"]) + "\n")
        for e in hetero["policies"]:
            f.write('"%s" ' % e["policy"] + " ".join("%g" % e["share"][str(w["id"])] for w in hetero["workers"]) +
                    "\n")
    with open(os.path.join(P, "hetero_p99.dat"), "w") as f:
        for e in hetero["policies"]:
            f.write('"%s" %g %g %g %g\n' % (e["policy"], e["p99_us"]["median"] / 1000, e["p99_us"]["min"] / 1000,
                                            e["p99_us"]["max"] / 1000, 100 * e["unserved_share"]["median"]))
with open(os.path.join(P, "subtitle"), "w") as f:
    f.write("%d x exp:%d us workers, open-loop Poisson, median of %s runs%s (bars min..max); %s, %d CPUs, "
            "load average %s at the start" % (K, S, E["REPS"],
                                               "" if E["TREPS"] == E["REPS"] else
                                               " (late1, nginx: %s)" % E["TREPS"],
                                               # gnuplot's enhanced text: "_" would subscript
                                               out["machine"]["uname"].replace("_", "\\_"),
                                               out["machine"]["nproc"], E["LOADAVG0"].split()[0]))
with open(os.path.join(TMP, "result.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")

# The table.
print("calibration (fixed:%d): occupancy %.0f us/request (sleep overshoot %.0f, reply %.0f), lone request %.0f us"
      % (S, occupancy, cal["sleep_overshoot_us"], cal["reply_handling_us"], lone["latency_us"]["mean"]))
print("effective mean service time (exp:%d) by rho: %s" % (S, ", ".join(
    "%g: %.0f us" % (r, v) for r, v in sorted(s_eff.items()))))
print("%-5s %-12s %16s %16s %16s %8s %8s %8s %8s %9s" % ("rho", "policy", "p50 (x S)", "p99", "p99.9", "p99/opt",
                                                           "(nom.)", "rnd/this", "sim p99", "cpu us/rq"))
for rho in rhos:
    th = theory[rho]
    for lab, b in (("M/M/k", "measured"), ("M/M/1", "measured")):
        if th[b]:
            m = th[b]["mmk" if lab == "M/M/k" else "mm1"]
            print("%-5g %-12s %16.2f %16.2f %16.2f" % (rho, lab + "*", m["p50"] / S, m["p99"] / S, m["p99.9"] / S))
    for pol in pols:
        e = by.get((rho, pol))
        if not e:
            continue
        cell = ["%.2f (%.2f-%.2f)" % (e[q]["median"], e[q]["min"], e[q]["max"]) for q in QS]
        vm = e["vs_mmk_measured"]["p99"] if e["vs_mmk_measured"] else float("nan")
        rr = e.get("random_over_this", {}).get("p99", float("nan"))
        sp = e["simulated"]["p99"] if e["simulated"] else float("nan")
        cu = e["router_cpu_us_per_request"]["median"] if e["router_cpu_us_per_request"] else float("nan")
        print("%-5g %-12s %16s %16s %16s %8.2f %8.2f %8.2f %8.2f %9.2f" % (
            rho, pol, *cell, vm, e["vs_mmk_nominal"]["p99"], rr, sp, cu))
print("(* theory at the measured effective service time; x S: multiples of %d us; sim: cpn-sim, nominal;\n"
      " cpu us/rq: the router's CPU per request: XDP run time, cpn-fwd's busy seconds, nginx's CPU)" % S)
for e in homog:
    if kind_of(e["policy"]) != "xdp" and e.get("router_proc_cpu_us_per_request"):
        print("  rho %g %-9s process CPU %.1f us/request%s" % (
            e["rho"], e["policy"], e["router_proc_cpu_us_per_request"]["median"],
            ", held %.0f %%" % (100 * e["held_share"]["median"]) if e.get("held_share") else ""))
def r2(v):
    return "%.2f" % v if v is not None else "-"


for lr in late_ratios:
    print("late: rho %g %-6s p99 %.2f x S: %s x M/M/k p99 (target <= 1.10 at rho 0.8), %s x nginx least_conn p99 "
          "(target <= 0.85 at rho 0.8); undisturbed runs: %s, %s" % (
              lr["rho"], lr["system"], lr["p99"], r2(lr["vs_mmk_measured_p99"]), r2(lr["vs_nginx_p99"]),
              r2(lr["vs_mmk_measured_p99_undisturbed"]), r2(lr["vs_nginx_p99_undisturbed"])))
for t in targets:
    v = t.get("ratio_measured", t.get("ratio"))
    print("target %-45s %6.2f  %s" % (t["what"], v if v is not None else float("nan"), "met" if t["met"] else "NOT met"))
if hetero:
    print("heterogeneous: rho %g (%.0f/s); share per worker (capacity share %s)" % (
        hetero["rho"], hetero["rate"] or 0, " ".join("%.2f" % w["capacity_share"] for w in hetero["workers"])))
    for e in hetero["policies"]:
        print("  %-12s p50 %7.1f ms  p99 %7.1f ms%s  unserved %5.1f %%  share %s" % (
            e["policy"], e["p50_us"]["median"] / 1000, e["p99_us"]["median"] / 1000,
            " (>= timeout)" if e["p99_censored_runs"] else "", 100 * e["unserved_share"]["median"],
            " ".join("%.2f" % e["share"][str(w["id"])] for w in hetero["workers"])))
PY

if [ -n "$PLOT_DIR" ]; then
	mkdir -p "$PLOT_DIR" || die "cannot create $PLOT_DIR"
	sub=$(cat "$TMP/plot/subtitle")
	gnuplot -e "datadir='$TMP/plot'; outdir='$PLOT_DIR'; npol=$((${#pols[@]} + ${#syss[@]})); subtitle='$sub'" \
		bench/plot/sched.gp >"$TMP/gnuplot.log" 2>&1 || die "gnuplot: $(cat "$TMP/gnuplot.log")"
	if [ "$HETERO" -eq 1 ]; then
		gnuplot -e "datadir='$TMP/plot'; outdir='$PLOT_DIR'; timeout_ms=$TIMEOUT_MS" \
			bench/plot/sched_hetero.gp >"$TMP/gnuplot.log" 2>&1 || die "gnuplot: $(cat "$TMP/gnuplot.log")"
	fi
	python3 - "$TMP/result.json" "$PLOT_DIR" "$HETERO" <<'PY'
import json, os, sys
p, d, het = sys.argv[1:]
r = json.load(open(p))
r["plots"] = [os.path.join(d, n) for n in ["sched_p99.png"] + (["sched_hetero.png"] if het == "1" else [])]
json.dump(r, open(p, "w"), indent=1)
PY
fi
if [ -n "$JSON_OUT" ]; then
	if ! mkdir -p "$(dirname "$JSON_OUT")" || ! cp "$TMP/result.json" "$JSON_OUT"; then
		die "cannot write $JSON_OUT"
	fi
fi
log "done in $((SECONDS - T0)) s"
