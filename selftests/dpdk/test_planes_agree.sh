#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The two data planes agree: a capture of LOADs, requests, replies,
# BUSY-triggering, malformed and non-cpn frames goes through cpn-fwd
# (net_pcap in -> net_pcap out); what it transmits must equal, packet for
# packet, what the XDP program produces for the same input under
# BPF_PROG_TEST_RUN with the same configuration and state.
#
# fixture_gen (selftests/dpdk/fixture_gen.c) builds IN.pcap and, from the real
# cpn_router.bpf.o, EXPECTED.pcap + MANIFEST.tsv; it documents which verdicts
# transmit what and why no choice depends on either plane's RNG.
# pcap_cmp.py compares and documents the comparison: exact bytes, except the
# source MAC of forwarded frames (the port's own) and router_ts, each plane's
# clock (then checked to be one offset throughout, with the UDP checksum that
# covers it verified from scratch).
#
# Besides the comparison: the generator's own checks (every frame's verdict
# and node as intended, no RNG-dependent choice), the output's size, that
# another seed of the XDP program's RNG changes nothing, and that the
# comparison catches a changed, a missing and an extra frame. Without cpn-fwd
# the last two tests fail (make all builds it; DPDK comes with make deps).
#
# Environment: BUILD (build), CPN_FWD (path of cpn-fwd), CPN_FWD_EAL (EAL
# arguments besides the vdev), CPN_FWD_RUN_S (seconds cpn-fwd runs, 3),
# CPN_FWD_PASS=out (cpn-fwd forwards PASS frames out: --default-port 0, and
# EXPECTED.pcap then holds them untouched).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
GEN=$BUILD/selftests/dpdk/fixture_gen
CMP="python3 selftests/dpdk/pcap_cmp.py"
CFG=selftests/dpdk/fixture.yaml
# The fleet's hop key of the fixture: both planes' hop tags must verify under it.
HOPKEY=$(sed -n 's/^fleet: {hop_key: "\([0-9a-f]\{32\}\)"}$/\1/p' "$CFG")
CMPH="$CMP --hop-key ${HOPKEY:-missing}"
FWD=${CPN_FWD:-$BUILD/cpn-fwd}
WANT_IN=92
WANT_OUT=38

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
fail_rest() { # reason: every test not yet reported fails
	while [ $n -lt 6 ]; do not_ok "$1"; done
	exit 1
}

echo "1..6"
[ "$(id -u)" -eq 0 ] || fail_rest "BPF_PROG_TEST_RUN needs root: run make test as root"
[ -x "$GEN" ] || fail_rest "fixture_gen is not built ($GEN: make all)"
command -v python3 >/dev/null || fail_rest "missing command 'python3' (Debian package python3): run make deps"

dir=$(mktemp -d /tmp/cpn-planes.XXXXXX)
PFX=cpnplanes$$ # a DPDK runtime of this run's own, removed on exit
trap 'rm -rf "$dir" /var/run/dpdk/$PFX' EXIT
pass_opt=()
[ "${CPN_FWD_PASS:-}" = out ] && pass_opt=(--pass-out)

# 1. The XDP side: every frame's verdict and node as the fixture intends.
if out=$("$GEN" --config "$CFG" --out "$dir/a" "${pass_opt[@]}" 2>&1); then
	ok "fixture_gen: XDP verdicts as intended ($(echo "$out" | tail -1))"
else
	echo "$out" | sed 's/^/# /'
	not_ok "fixture_gen: the XDP program disagrees with the fixture"
	fail_rest "no fixture"
fi

# 2. Sizes.
nin=$($CMP --count "$dir/a/IN.pcap")
nout=$($CMP --count "$dir/a/EXPECTED.pcap")
npass=$(awk -F'\t' '$3 == "pass"' "$dir/a/MANIFEST.tsv" | wc -l)
[ "${CPN_FWD_PASS:-}" = out ] && WANT_OUT=$((WANT_OUT + npass))
if [ "$nin" = "$WANT_IN" ] && [ "$nout" = "$WANT_OUT" ]; then
	ok "IN.pcap holds $nin frames, EXPECTED.pcap $nout"
else
	not_ok "IN.pcap holds $nin frames (want $WANT_IN), EXPECTED.pcap $nout (want $WANT_OUT)"
fi

# 3. No verdict depends on the XDP program's RNG: two other seeds, same output.
good=1
for seed in 1 0xdeadbeefcafe; do
	if ! "$GEN" --config "$CFG" --out "$dir/s$seed" --xdp-rng "$seed" "${pass_opt[@]}" >/dev/null 2>&1 ||
		! res=$($CMPH "$dir/a/EXPECTED.pcap" "$dir/s$seed/EXPECTED.pcap" "$dir/a/MANIFEST.tsv"); then
		echo "# seed $seed: ${res:-fixture_gen failed}"
		good=0
	fi
done
if [ $good = 1 ]; then ok "XDP RNG seeded 1 and 0xdeadbeefcafe: the same output"; else not_ok "the output depends on the XDP RNG"; fi

# 4. The comparison catches a changed byte, a missing frame and an extra one.
python3 - "$dir/a/EXPECTED.pcap" "$dir" <<'PY'
import sys
src, d = sys.argv[1], sys.argv[2]
data = bytearray(open(src, "rb").read())
# records start at 24; change the last byte of frame 18 (a reply), drop the
# last frame, repeat the first
off, recs = 24, []
while off < len(data):
    incl = int.from_bytes(data[off + 8:off + 12], "little")
    recs.append((off, 16 + incl))
    off += 16 + incl
hdr = bytes(data[:24])
chg = bytearray(data)
o, l = recs[17]
chg[o + l - 1] ^= 0x01
open(d + "/changed.pcap", "wb").write(chg)
open(d + "/missing.pcap", "wb").write(hdr + b"".join(bytes(data[o:o + l]) for o, l in recs[:-1]))
open(d + "/extra.pcap", "wb").write(bytes(data) + bytes(data[recs[0][0]:recs[0][0] + recs[0][1]]))
PY
good=1
for bad in changed missing extra; do
	if res=$($CMPH "$dir/a/EXPECTED.pcap" "$dir/$bad.pcap" "$dir/a/MANIFEST.tsv"); then
		echo "# $bad: not caught: $res"
		good=0
	else
		echo "# $bad: $(echo "$res" | head -1)"
	fi
done
if [ $good = 1 ]; then ok "pcap_cmp catches a changed, a missing and an extra frame"; else not_ok "pcap_cmp misses a difference"; fi

# 5, 6. cpn-fwd on the same capture.
[ -x "$FWD" ] || fail_rest "cpn-fwd is not built ($FWD: make all; DPDK comes with make deps)"
# shellcheck disable=SC2046
# --no-shconf, not --in-memory: DPDK 22.11 refuses --in-memory with --no-huge
# (which implies legacy memory).
eal=(${CPN_FWD_EAL:---no-huge --no-shconf -m 512 -l 0-1 --no-pci} --file-prefix "$PFX")
fwd_opt=()
[ "${CPN_FWD_PASS:-}" = out ] && fwd_opt=(--default-port 0)
mapfile -t neigh < <(tr ' ' '\n' <"$dir/a/NEIGH.args")
"$FWD" "${eal[@]}" --vdev "net_pcap0,rx_pcap=$dir/a/IN.pcap,tx_pcap=$dir/OUT.pcap" -- \
	--config "$CFG" --seed 1 "${neigh[@]}" "${fwd_opt[@]}" >"$dir/fwd.log" 2>&1 &
pid=$!
# net_pcap's rx ends with the capture: give it time, then stop it (it
# flushes tx_pcap when the port closes).
for _ in $(seq $((${CPN_FWD_RUN_S:-3} * 10))); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
kill -INT $pid 2>/dev/null
for _ in $(seq 100); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
kill -KILL $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 0 ] && [ -s "$dir/OUT.pcap" ]; then
	ok "cpn-fwd ran over IN.pcap and stopped on SIGINT"
else
	sed 's/^/# /' "$dir/fwd.log" | tail -30
	not_ok "cpn-fwd exited $rc$([ -s "$dir/OUT.pcap" ] || echo ', no OUT.pcap')"
fi
if res=$($CMPH "$dir/a/EXPECTED.pcap" "$dir/OUT.pcap" "$dir/a/MANIFEST.tsv" 2>&1); then
	ok "cpn-fwd and XDP agree: $res"
else
	echo "$res" | sed 's/^/# /'
	not_ok "cpn-fwd and XDP disagree"
fi
exit $failed
