#!/usr/bin/env bash
# e2e: a broken config is refused whole. A router is brought up by cpnctl
# with a good config; then each broken config of the table is applied: the
# command must exit 2, name the file and the line that is wrong, and leave
# `cpnctl status -j` exactly as it was (and `cpnctl up` with it likewise).
# No interfaces are needed: the router is loaded and configured, not attached.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
cpnctl_sandbox cfg

# The good config. Each broken one below is this with one change; the line
# that is wrong carries the marker `#<-` so that its number is known.
good() {
	cat <<'EOF'
interfaces: []
control_port: 7471
metrics: 127.0.0.1:9470
services:
  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, policy: p2c,
     max_wait_us: 20000, max_queue: 256, stale_ms: 500, nodes: [1, 2]}
  - {name: search, id: 2, vip: 10.0.0.101, port: 7470, policy: least, nodes: [2]}
nodes:
  - {id: 1, addr: "10.1.0.2:7470", weight: 100}
  - {id: 2, addr: "10.1.0.3:7470", weight: 50}
tenants:
  - {id: 42, services: [resnet, search], rate: 10000, burst: 2000,
     key: "000102030405060708090a0b0c0d0e0f"}
auto_join: {prefixes: [10.1.0.0/16], services: [resnet]}
EOF
}
many_nodes() { # a `least` service naming 65 nodes, each defined: least scans every one
	echo "services:"
	printf '  - {name: big, id: 1, vip: 10.0.0.100, port: 7470, policy: least, nodes: [%s]} #<-\n' \
		"$(seq -s ', ' 1 65)"
	echo "nodes:"
	for n in $(seq 1 65); do
		echo "  - {id: $n, addr: \"10.1.$((n / 200)).$((n % 200 + 1)):7470\"}"
	done
}

# name | sed program turning the good config into the broken one | word the message must hold
cases=(
	"unknown_top_level_key|/^metrics:/a colour: blue #<-|unknown key"
	"unknown_service_key|s/nodes: \[2\]}/nodes: [2], prot: 7470} #<-/|unknown key"
	"duplicate_service_id|s/name: search, id: 2/name: search, id: 1/;/name: search/s/\$/ #<-/|duplicate service id"
	"duplicate_node_id|s/{id: 2, addr/{id: 1, addr/;/10.1.0.3/s/\$/ #<-/|duplicate node id"
	"bad_vip_address|s/vip: 10.0.0.101/vip: 10.0.0.301/;/10.0.0.301/s/\$/ #<-/|address"
	"node_referenced_not_defined|s/nodes: \[2\]}/nodes: [2, 9]} #<-/|not defined"
	"bad_policy|s/policy: least/policy: fastest/;/fastest/s/\$/ #<-/|policy"
	"port_out_of_range|s/^control_port: 7471/control_port: 70000 #<-/|out of range"
	"yaml_syntax_error|s/nodes: \[2\]}/nodes: [2}} #<-/|YAML"
	"wrong_type|s/^control_port: 7471/control_port: [7471] #<-/|number"
	"tenant_names_unknown_service|s/services: \[resnet, search\]/services: [resnet, video]/;/video/s/\$/ #<-/|not defined"
	"bad_key|s/0c0d0e0f\"}/0c0d0e0fzz\"}/;/0fzz/s/\$/ #<-/|hex"
	"duplicate_vip_port|s/vip: 10.0.0.101/vip: 10.0.0.100/;/name: search/s/\$/ #<-/|VIP"
	"bad_auto_join_prefix|s#10.1.0.0/16#10.1.0.0/33#;/auto_join/s/\$/ #<-/|prefix"
	"family_mismatch|s/10.1.0.3:7470/[fd00::3]:7470/;/max_wait_us: 20000/s/\$/ #<-/|family"
	"least_over_more_than_64_nodes|MANY|at most 64"
)

echo "1..$((${#cases[@]} + 2))"
good >"$TMP/good.yaml"
if ctl up --config "$TMP/good.yaml" >"$TMP/up.log" 2>&1 && before=$(ctl status -j) &&
	[ -n "$before" ]; then
	ok "good_config_is_applied"
else
	not_ok "good_config_is_applied" "$TMP/up.log"
	exit 1
fi

for c in "${cases[@]}"; do
	IFS='|' read -r name prog word <<<"$c"
	f=$TMP/$name.yaml
	if [ "$prog" = MANY ]; then
		many_nodes >"$f"
	else
		good | sed "$prog" >"$f"
	fi
	line=$(grep -n '#<-' "$f" | head -1 | cut -d: -f1)
	ctl apply --config "$f" >"$TMP/out" 2>&1
	rc=$?
	after=$(ctl status -j)
	if [ -n "$line" ] && [ "$rc" -eq 2 ] && grep -q "$f:$line:" "$TMP/out" &&
		grep -qi -- "$word" "$TMP/out" && [ "$after" = "$before" ]; then
		ok "broken_config_${name}_refused_with_file_line_and_nothing_changes"
		sed "s/^/# /" "$TMP/out"
	else
		not_ok "broken_config_${name}_refused_with_file_line_and_nothing_changes"
		echo "# exit $rc (want 2), want '$f:$line:' and '$word' in:"
		sed 's/^/#   /' "$TMP/out"
		[ "$after" = "$before" ] || echo "# status -j changed"
	fi
done

# `up` with a broken config changes nothing either.
ctl up --config "$TMP/bad_policy.yaml" >"$TMP/out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && [ "$(ctl status -j)" = "$before" ]; then
	ok "up_with_a_broken_config_exits_2_and_changes_nothing"
else
	not_ok "up_with_a_broken_config_exits_2_and_changes_nothing" "$TMP/out"
fi
