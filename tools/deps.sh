#!/usr/bin/env bash
# make deps: install what cpn needs from Debian 12, then verify it.
#
# tools/deps.list names every command, pkg-config module and file that any
# target (all, test, demo, bench) uses, each with the Debian package that
# provides it. This script checks each one; installs, in one apt-get call,
# the packages of those that are missing; and checks again. It exits non-zero
# naming the package of anything still missing. Idempotent: a machine that has
# everything runs no apt at all.
#
# usage: tools/deps.sh [--check]      --check: verify only, install nothing
#        CPN_DEPS_LIST=FILE           another list (the tests use this)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
LIST=${CPN_DEPS_LIST:-tools/deps.list}
check_only=false
case "${1:-}" in
--check) check_only=true ;;
"") ;;
*)
	echo "usage: tools/deps.sh [--check]" >&2
	exit 2
	;;
esac
[ -r "$LIST" ] || {
	echo "deps: cannot read $LIST" >&2
	exit 1
}

# have KIND NAME: is it there?
have() {
	case "$1" in
	cmd) command -v "$2" >/dev/null 2>&1 ;;
	pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$2" ;;
	file) [ -e "$2" ] ;;
	*) return 2 ;;
	esac
}

# missing: "KIND NAME PACKAGE" of every entry that is not there.
missing() {
	local kind name pkg rest rc
	while read -r kind name pkg rest; do
		case "$kind" in "" | \#*) continue ;; esac
		if [ -z "$pkg" ]; then
			echo "deps: $LIST: '$kind $name': no package named" >&2
			return 2
		fi
		have "$kind" "$name"
		rc=$?
		if [ $rc -eq 2 ]; then
			echo "deps: $LIST: unknown kind '$kind' (cmd, pc, file)" >&2
			return 2
		fi
		[ $rc -eq 0 ] || echo "$kind $name $pkg"
	done <"$LIST"
}

miss=$(missing) || exit 1
[ -z "$miss" ] && exit 0

pkgs=$(awk '{print $3}' <<<"$miss" | sort -u | tr '\n' ' ')
if ! $check_only; then
	echo "deps: installing $pkgs"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # one word per package
	$SUDO apt-get update -qq || echo "deps: apt-get update failed" >&2
	# One call for all; if apt refuses the set (a package it cannot find),
	# each on its own, so that one bad name does not hold back the rest.
	if ! $SUDO apt-get install -y -qq --no-install-recommends $pkgs; then
		for p in $pkgs; do
			$SUDO apt-get install -y -qq --no-install-recommends "$p" ||
				echo "deps: apt-get could not install $p" >&2
		done
	fi
	hash -r
	# Debian starts and enables nginx's own service on port 80 when it
	# installs the package; cpn's benchmark runs its own nginx, on the
	# testbed's addresses only. A service this run brought up goes again.
	if [[ " $pkgs " == *" nginx "* ]] && command -v systemctl >/dev/null &&
		systemctl is-enabled nginx >/dev/null 2>&1; then
		echo "deps: nginx is for bench-sched's baseline: its system service is stopped and disabled"
		$SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
	fi
	miss=$(missing) || exit 1
	[ -z "$miss" ] && exit 0
fi

echo "deps: missing on this machine (install the package named, or run make deps as root):" >&2
while read -r kind name pkg; do
	case "$kind" in
	cmd) what="command '$name'" ;;
	pc) what="library '$name' (pkg-config)" ;;
	file) what="file $name" ;;
	esac
	printf '  %-40s Debian package %s\n' "$what" "$pkg" >&2
done <<<"$miss"
exit 1
