#!/usr/bin/env bash
# e2e: cpnctl and bpffs. Where the pin directory is not on bpffs, `cpnctl up`
# mounts it as bpftool does: in a mount namespace of its own without bpffs
# at /sys/fs/bpf, `up` mounts it, pins, and `status` and `down` work there;
# under `ip netns exec` (a mount namespace per command, /sys remounted) `up`
# works and says that the pins vanish with the command and what to run
# instead, and a later `status` there says the same instead of a bare
# "no router"; a directory that is not empty is never mounted over. The
# host's /sys/fs/bpf is left as it was. No interface is attached.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
CPNCTL=$(pwd)/${BUILD:-build}/cpnctl

need_root
need_file "$CPNCTL"
need_cmd unshare ip mountpoint mount timeout

NS=cpn-bpffs-$$
TMP=$(mktemp -d /tmp/cpn-bpffs.XXXXXX)
cleanup() {
	ip netns del "$NS" 2>/dev/null
	umount "$TMP/full" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
host_before=$(ls /sys/fs/bpf | sort)

cat >"$TMP/cfg.yaml" <<'YAML'
interfaces: []
services:
  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, nodes: [1]}
nodes:
  - {id: 1, addr: "10.1.0.2:7470"}
tenants:
  - {id: 42, services: [resnet]}
YAML

echo "1..4"

# 1. No bpffs in this mount namespace: up mounts it; status and down work.
cat >"$TMP/priv.sh" <<SH
set -u
while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 10; done
ip link set lo up
c() { timeout 20 "$CPNCTL" --pin-dir /sys/fs/bpf/cpn --state-dir "$TMP/state1" "\$@"; }
c up --config "$TMP/cfg.yaml" || exit 11
mountpoint -q /sys/fs/bpf || exit 12
[ -e /sys/fs/bpf/cpn/progs/cpn_xdp ] || exit 13
c status -j | grep -q '"name":"resnet"' || exit 14
c down || exit 15
[ ! -e /sys/fs/bpf/cpn ] || exit 16
SH
timeout 60 unshare -m -n --propagation private bash "$TMP/priv.sh" >"$TMP/priv.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "mounted bpffs at /sys/fs/bpf" "$TMP/priv.log"; then
	ok "cpnctl_up_mounts_bpffs_where_none_is_and_status_and_down_work"
else
	not_ok "cpnctl_up_mounts_bpffs_where_none_is_and_status_and_down_work" "rc=$rc" "$TMP/priv.log"
fi

# 2. ip netns exec: up works and warns; status afterwards explains.
ip netns add "$NS" && ip -n "$NS" link set lo up
timeout 30 ip netns exec "$NS" "$CPNCTL" --state-dir "$TMP/state2" up --config "$TMP/cfg.yaml" \
	>"$TMP/exec_up.log" 2>&1
up_rc=$?
timeout 30 ip netns exec "$NS" "$CPNCTL" --state-dir "$TMP/state2" status >"$TMP/exec_st.log" 2>&1
st_rc=$?
if [ $up_rc -eq 0 ] && grep -q "mount namespace of its own" "$TMP/exec_up.log" &&
	grep -q "nsenter --net=/run/netns/NAME" "$TMP/exec_up.log" && [ $st_rc -eq 1 ] &&
	grep -q "ip netns exec.*nsenter --net=/run/netns/NAME" "$TMP/exec_st.log"; then
	ok "under_ip_netns_exec_up_works_and_says_the_pins_vanish_and_what_to_run"
else
	not_ok "under_ip_netns_exec_up_works_and_says_the_pins_vanish_and_what_to_run" \
		"up rc=$up_rc, status rc=$st_rc" "$TMP/exec_up.log" "$TMP/exec_st.log"
fi

# 3. A directory with something in it is not mounted over.
mkdir -p "$TMP/full" && echo keep >"$TMP/full/file"
timeout 20 "$CPNCTL" --pin-dir "$TMP/full/pins" --state-dir "$TMP/state3" up \
	--config "$TMP/cfg.yaml" >"$TMP/full.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "is not on bpffs and is not empty" "$TMP/full.log" &&
	! mountpoint -q "$TMP/full" && [ "$(cat "$TMP/full/file")" = keep ]; then
	ok "a_directory_that_is_not_empty_is_never_mounted_over"
else
	not_ok "a_directory_that_is_not_empty_is_never_mounted_over" "rc=$rc" "$TMP/full.log"
fi

# 4. The host's bpffs is as it was.
if mountpoint -q /sys/fs/bpf && [ "$(ls /sys/fs/bpf | sort)" = "$host_before" ]; then
	ok "the_hosts_bpffs_is_untouched"
else
	not_ok "the_hosts_bpffs_is_untouched" "$(ls /sys/fs/bpf)"
fi
