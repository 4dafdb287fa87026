#!/usr/bin/env bash
# e2e: cpn installed as an operator installs it (mk/install.mk, debian/, man/).
#
#   (a) make install DESTDIR=<scratch root> PREFIX=/usr puts every file where
#       it belongs, with its mode; every installed program has a man page and
#       every page renders without a warning; the unit runs the installed
#       cpnctl on the installed config; libcpn.pc names prefix=/usr and
#       pkg-config finds it in the root; a program built against the
#       installed headers and libcpn.so runs; every installed program starts;
#       the installed cpnctl loads the installed cpn_router.bpf.o
#       (up --object), status shows the service, down removes the pins; a
#       second install keeps an edited config and uninstall removes every
#       file but that one.
#   (b) make deb builds the packages of the tree as it is now, from a copy
#       (build/ and the tree are left alone); lintian reports no error; the
#       packages, unpacked with dpkg -x into a scratch root, hold the same
#       files at Debian's paths (no CUDA library; the config a conffile); the
#       packaged cpnctl loads the packaged object, status, down; a program
#       builds against libcpn-dev and runs; the packaged cpn-worker looks for
#       libcpn_cuda.so beside itself, in /usr/libexec/cpn.
#
# Bounded: make, lintian, the compiler and every installed program run under
# `timeout` (the whole test takes about 20 s, the package build most of it).
# Everything is made under one temporary directory and one pin directory,
# both removed on exit, also on failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}

need_root
need_cmd make gcc pkg-config timeout mountpoint mount
need_cmd dpkg-buildpackage dh dpkg-deb lintian groff mandoc man

N=21
TMP=$(mktemp -d /tmp/cpn-install.XXXXXX)
PIN=/sys/fs/bpf/cpn-inst-$$
MA=$(gcc -print-multiarch)
SOVER=$(awk '$1 == "LIBCPN_VERSION" { print $3 }' mk/lib.mk)
cleanup() {
	local c
	if [ -e "$PIN" ]; then
		for c in "$TMP"/root/usr/sbin/cpnctl "$TMP"/deb-root/usr/sbin/cpnctl "$BUILD"/cpnctl; do
			[ -x "$c" ] && timeout 20 "$c" --pin-dir "$PIN" --state-dir "$TMP/state" down \
				>/dev/null 2>&1 && break
		done
		rm -rf "$PIN"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

cat >"$TMP/cfg.yaml" <<'YAML'
interfaces: []
services:
  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, nodes: [1]}
nodes:
  - {id: 1, addr: "10.1.0.2:7470"}
tenants:
  - {id: 42, services: [resnet]}
YAML

# A client of libcpn: the wire format's constants from cpn/proto.h, the
# number parser from cpn_util.h (found through -I${includedir}/cpn).
cat >"$TMP/client.c" <<'C'
#include <stdio.h>
#include <cpn/proto.h>
#include <cpn_util.h>

int main(int argc, char **argv)
{
	uint64_t port, big;

	if (argc < 2 || cpn_parse_u64(argv[1], 1, 65535, &port))
		return 2;
	if (!cpn_parse_u64("70000", 1, 65535, &big))
		return 3; /* out of range: must be refused */
	printf("cpn v%d header %d port %llu\n", CPN_VERSION, CPN_HDR_LEN,
	       (unsigned long long)port);
	return 0;
}
C
want_client="cpn v$(awk '$2 == "CPN_VERSION" { print $3 }' include/cpn/proto.h) header $(awk '$2 == "CPN_HDR_LEN" { print $3 }' include/cpn/proto.h) port 7470"

# The files an install holds: "f MODE PATH" (a file), "l TARGET PATH" (a
# symlink), "- PATH" (must not be there). KIND: install (make install,
# PREFIX=/usr) or deb (the packages: man pages compressed, the unit in
# /lib/systemd/system, no CUDA library).
expected() {
	local kind=$1 z="" unitdir=usr/lib/systemd/system p h m sec
	if [ "$kind" = deb ]; then z=.gz unitdir=lib/systemd/system; fi
	for p in cpnctl cpn-fwd; do echo "f 755 usr/sbin/$p"; done
	for p in cpn-load cpn-sim cpn-mmk cpn-pktgen; do echo "f 755 usr/bin/$p"; done
	echo "l ../libexec/cpn/cpn-worker usr/bin/cpn-worker"
	echo "f 755 usr/libexec/cpn/cpn-worker"
	for p in cpn_router cpn_xsk cpn_pass cpn_sink; do echo "f 644 usr/lib/$MA/bpf/$p.bpf.o"; done
	echo "f 644 usr/lib/$MA/libcpn.a"
	echo "f 644 usr/lib/$MA/libcpn.so.$SOVER"
	echo "l libcpn.so.$SOVER usr/lib/$MA/libcpn.so.0"
	echo "l libcpn.so.0 usr/lib/$MA/libcpn.so"
	echo "f 644 usr/lib/$MA/pkgconfig/libcpn.pc"
	for h in include/cpn/*.h userspace/lib/cpn_*.h; do
		[ "${h##*/}" = cpn_cfg_int.h ] && continue
		echo "f 644 usr/include/cpn/${h##*/}"
	done
	echo "- usr/include/cpn/cpn_cfg_int.h"
	for m in man/*.[138]; do
		sec=${m##*.}
		echo "f 644 usr/share/man/man$sec/${m##*/}$z"
	done
	echo "f 644 $unitdir/cpnctl.service"
	echo "f 640 etc/cpn/cpn.yaml"
	# libcpn_cuda.so goes beside cpn-worker where nvcc built it; never in the
	# packages.
	if [ "$kind" = install ] && [ -e "$BUILD/libcpn_cuda.so" ] &&
		command -v "${NVCC:-/usr/local/cuda/bin/nvcc}" >/dev/null 2>&1; then
		echo "f 644 usr/libexec/cpn/libcpn_cuda.so"
	else
		echo "- usr/libexec/cpn/libcpn_cuda.so"
	fi
}

# verify ROOT KIND LOG: every expected entry as it should be.
verify() {
	local root=$1 kind=$2 log=$3 t m p have bad=0
	: >"$log"
	while read -r t m p; do
		case $t in
		f)
			if [ ! -f "$root/$p" ] || [ -L "$root/$p" ]; then
				echo "missing: /$p" >>"$log"
				bad=1
			elif have=$(stat -c %a "$root/$p") && [ "$have" != "$m" ]; then
				echo "/$p: mode $have, not $m" >>"$log"
				bad=1
			fi
			;;
		l)
			if [ ! -L "$root/$p" ] || [ "$(readlink "$root/$p")" != "$m" ] || [ ! -e "$root/$p" ]; then
				echo "/$p: not a symlink to $m that resolves" >>"$log"
				bad=1
			fi
			;;
		-)
			if [ -e "$root/$m" ] || [ -L "$root/$m" ]; then
				echo "/$m: should not be installed" >>"$log"
				bad=1
			fi
			;;
		esac
	done < <(expected "$kind")
	return $bad
}

# Every program in ROOT's bin and sbin starts and prints its usage.
programs_start() {
	local root=$1 log=$2 p rc bad=0
	: >"$log"
	for p in "$root"/usr/sbin/* "$root"/usr/bin/*; do
		timeout 20 "$p" --help >"$TMP/help.out" 2>&1
		rc=$?
		if ! grep -qi usage "$TMP/help.out"; then
			echo "${p#"$root"} --help (exit $rc):" >>"$log"
			head -5 "$TMP/help.out" >>"$log"
			bad=1
		fi
	done
	return $bad
}

# client ROOT LOG: libcpn.pc of ROOT through pkg-config, the client built
# against ROOT's headers and libcpn.so, and run on it.
client() {
	local root=$1 log=$2 pcdir flags out
	pcdir=$root/usr/lib/$MA/pkgconfig
	: >"$log"
	flags=$(PKG_CONFIG_SYSROOT_DIR=$root pkg-config --with-path="$pcdir" --cflags --libs libcpn 2>>"$log") ||
		return 1
	echo "pkg-config: $flags" >>"$log"
	# shellcheck disable=SC2086 # flags are words
	timeout 60 gcc -Wall -Werror "$TMP/client.c" $flags -o "$TMP/client" >>"$log" 2>&1 || return 1
	LD_LIBRARY_PATH=$root/usr/lib/$MA ldd "$TMP/client" >>"$log" 2>&1
	grep -q "libcpn.so.0 => $root/usr/lib/$MA/libcpn.so.0" "$log" || {
		echo "the client does not run on $root's libcpn.so.0" >>"$log"
		return 1
	}
	out=$(LD_LIBRARY_PATH=$root/usr/lib/$MA timeout 10 "$TMP/client" 7470 2>>"$log")
	echo "client: $out" >>"$log"
	[ "$out" = "$want_client" ]
}

# pc_prefix ROOT LOG: the .pc says prefix=/usr, and pkg-config finds it there.
pc_prefix() {
	local root=$1 log=$2 pcdir v
	pcdir=$root/usr/lib/$MA/pkgconfig
	{
		cat "$pcdir/libcpn.pc"
		v=$(PKG_CONFIG_SYSROOT_DIR=$root pkg-config --with-path="$pcdir" --variable=prefix libcpn)
		echo "pkg-config --variable=prefix: $v"
		PKG_CONFIG_SYSROOT_DIR=$root pkg-config --with-path="$pcdir" --path libcpn
	} >"$log" 2>&1
	grep -qx 'prefix=/usr' "$pcdir/libcpn.pc" && [ "$v" = "$root/usr" ] &&
		grep -qx "$pcdir/libcpn.pc" "$log"
}

# router ROOT WHAT: up --object with ROOT's object, status, down (3 tests).
router() {
	local root=$1 what=$2 c obj
	c=$root/usr/sbin/cpnctl
	obj=$root/usr/lib/$MA/bpf/cpn_router.bpf.o
	rm -rf "$TMP/state"
	ctl() { timeout 30 "$c" --pin-dir "$PIN" --state-dir "$TMP/state" "$@"; }
	ctl up --object "$obj" --config "$TMP/cfg.yaml" >"$TMP/up.log" 2>&1
	local rc=$?
	if [ $rc -eq 0 ] && grep -q "cpn router loaded and pinned at $PIN" "$TMP/up.log" &&
		[ -e "$PIN/progs/cpn_xdp" ]; then
		ok "${what}_cpnctl_up_loads_the_${what}_router_object"
	else
		not_ok "${what}_cpnctl_up_loads_the_${what}_router_object" "rc=$rc" "$TMP/up.log"
		bail_rest $((tap_n + 2)) "${what}_cpnctl_status_and_down (up failed)"
		rm -rf "$PIN"
		return
	fi
	ctl status -j >"$TMP/status.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && grep -q '"name":"resnet"' "$TMP/status.log"; then
		ok "${what}_cpnctl_status_shows_the_service"
	else
		not_ok "${what}_cpnctl_status_shows_the_service" "rc=$rc" "$TMP/status.log"
	fi
	ctl down >"$TMP/down.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && [ ! -e "$PIN" ]; then
		ok "${what}_cpnctl_down_removes_the_pins"
	else
		not_ok "${what}_cpnctl_down_removes_the_pins" "rc=$rc" "$TMP/down.log" "$(ls "$PIN" 2>&1)"
		rm -rf "$PIN"
	fi
}

echo "1..$N"

# ==== (a) make install ======================================================
ROOT=$TMP/root
inst() { timeout 300 make --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr "$@"; }

# 1. Every file, with its mode.
inst >"$TMP/install.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && verify "$ROOT" install "$TMP/tree.log"; then
	ok "make_install_puts_every_file_in_place_with_its_mode"
elif [ $rc -ne 0 ]; then
	not_ok "make_install_puts_every_file_in_place_with_its_mode" "make install: rc=$rc" \
		"$(tail -30 "$TMP/install.log")"
	bail_rest 11 "make install failed"
else
	not_ok "make_install_puts_every_file_in_place_with_its_mode" "$TMP/tree.log"
fi

if [ "$tap_n" -lt 11 ]; then
	# 2. Man pages: one per program, each rendered without a warning.
	: >"$TMP/man.log"
	for p in "$ROOT"/usr/sbin/* "$ROOT"/usr/bin/*; do
		n=${p##*/}
		[ -e "$ROOT/usr/share/man/man1/$n.1" ] || [ -e "$ROOT/usr/share/man/man8/$n.8" ] ||
			echo "no man page for ${p#"$ROOT"}" >>"$TMP/man.log"
	done
	for m in "$ROOT"/usr/share/man/man?/*; do
		{
			groff -man -ww -z "$m"
			mandoc -Tlint -W warning "$m"
			MANWIDTH=80 man -l "$m" >/dev/null
		} >>"$TMP/man.log" 2>&1
	done
	if [ ! -s "$TMP/man.log" ] && [ -e "$ROOT/usr/share/man/man3/libcpn.3" ]; then
		ok "every_program_has_a_man_page_and_every_page_renders_without_warnings"
	else
		not_ok "every_program_has_a_man_page_and_every_page_renders_without_warnings" "$TMP/man.log"
	fi

	# 3. The unit runs what was installed, on the installed config.
	unit=$ROOT/usr/lib/systemd/system/cpnctl.service
	if grep -qx 'ExecStartPre=/usr/sbin/cpnctl up --config /etc/cpn/cpn.yaml' "$unit" &&
		grep -qx 'ExecStart=/usr/sbin/cpnctl daemon --config /etc/cpn/cpn.yaml' "$unit" &&
		! grep -q /usr/local "$unit"; then
		ok "the_unit_runs_the_installed_cpnctl_on_the_installed_config"
	else
		not_ok "the_unit_runs_the_installed_cpnctl_on_the_installed_config" "$(grep -n 'Exec\|/usr/local' "$unit")"
	fi

	# 4. libcpn.pc
	check "libcpn_pc_names_prefix_usr_and_pkg_config_finds_it" "$TMP/pc.log" pc_prefix "$ROOT" "$TMP/pc.log"

	# 5. A client of the installed library.
	check "a_program_built_against_the_installed_headers_and_libcpn_so_runs" "$TMP/client.log" \
		client "$ROOT" "$TMP/client.log"

	# 6. Every installed program starts.
	check "every_installed_program_starts_and_prints_its_usage" "$TMP/start.log" \
		programs_start "$ROOT" "$TMP/start.log"

	# 7-9. The installed cpnctl on the installed object.
	router "$ROOT" installed

	# 10. A second install keeps the operator's config.
	echo "# edited by the operator" >>"$ROOT/etc/cpn/cpn.yaml"
	inst >"$TMP/install2.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && grep -q "^# edited by the operator" "$ROOT/etc/cpn/cpn.yaml" &&
		grep -q "kept .*/etc/cpn/cpn.yaml" "$TMP/install2.log"; then
		ok "make_install_again_keeps_an_edited_config"
	else
		not_ok "make_install_again_keeps_an_edited_config" "rc=$rc" "$(tail -5 "$TMP/install2.log")"
	fi

	# 11. Uninstall: nothing left but that config.
	timeout 120 make --no-print-directory uninstall DESTDIR="$ROOT" PREFIX=/usr >"$TMP/uninstall.log" 2>&1
	rc=$?
	left=$(cd "$ROOT" && find . ! -type d | sort)
	if [ $rc -eq 0 ] && [ "$left" = "./etc/cpn/cpn.yaml" ] && [ ! -e "$ROOT/usr/include/cpn" ] &&
		grep -q "kept .*/etc/cpn/cpn.yaml" "$TMP/uninstall.log"; then
		ok "make_uninstall_removes_every_file_but_an_edited_config"
	else
		not_ok "make_uninstall_removes_every_file_but_an_edited_config" "rc=$rc" "left: $left" \
			"$(tail -5 "$TMP/uninstall.log")"
	fi
fi

# ==== (b) the Debian packages ================================================
DROOT=$TMP/deb-root
DEBS=$TMP/debs

# 12. make deb: from a copy of the tree; the developer's build outputs are
# still there afterwards (no `make clean` ran on them) and the tree gets no
# debhelper leftovers.
kept=()
for f in "$BUILD"/obj "$BUILD"/cpnctl "$BUILD"/libcpn.a bpf/cpn_router.bpf.o; do
	[ -e "$f" ] && kept+=("$f")
done
t0=$SECONDS
timeout 300 make --no-print-directory deb DEB_OUT="$DEBS" DEB_TMP="$TMP" >"$TMP/deb.log" 2>&1
rc=$?
gone=""
for f in "${kept[@]}"; do [ -e "$f" ] || gone="$gone $f"; done
debs=()
for p in cpn libcpn0 libcpn-dev python3-cpn; do
	f=$(ls "$DEBS"/"${p}"_*.deb 2>/dev/null | head -1)
	[ -n "$f" ] && debs+=("$f")
done
if [ $rc -eq 0 ] && [ ${#debs[@]} -eq 4 ] && [ -z "$gone" ] && [ ! -e debian/tmp ] &&
	[ ! -e debian/.debhelper ] && [ ! -e debian/files ]; then
	ok "make_deb_builds_cpn_libcpn0_libcpn_dev_python3_cpn_from_a_copy_leaving_build_alone ($((SECONDS - t0)) s)"
else
	not_ok "make_deb_builds_cpn_libcpn0_libcpn_dev_python3_cpn_from_a_copy_leaving_build_alone" "rc=$rc" \
		"packages: ${debs[*]}" "gone:$gone" "$(tail -30 "$TMP/deb.log")"
	bail_rest $N "make deb failed"
	exit 1
fi

# 13. lintian: no error.
timeout 240 lintian "${debs[@]}" >"$TMP/lintian.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q '^E:' "$TMP/lintian.log"; then
	ok "lintian_reports_no_error_on_the_packages"
else
	not_ok "lintian_reports_no_error_on_the_packages" "rc=$rc" "$TMP/lintian.log"
fi

# 14. What the packages hold.
mkdir -p "$DROOT"
for f in "${debs[@]}"; do dpkg -x "$f" "$DROOT" || echo "dpkg -x $f failed" >>"$TMP/dtree.log"; done
dpkg-deb -I "${debs[0]}" conffiles >"$TMP/conffiles" 2>&1
cuda=$(cd "$DROOT" && find . -name 'libcpn_cuda*')
if verify "$DROOT" deb "$TMP/dtree.log" && grep -qx /etc/cpn/cpn.yaml "$TMP/conffiles" && [ -z "$cuda" ] &&
	grep -qx 'ExecStart=/usr/sbin/cpnctl daemon --config /etc/cpn/cpn.yaml' \
		"$DROOT/lib/systemd/system/cpnctl.service"; then
	ok "the_packages_hold_every_file_at_debian_paths_without_cuda_and_the_config_is_a_conffile"
else
	not_ok "the_packages_hold_every_file_at_debian_paths_without_cuda_and_the_config_is_a_conffile" \
		"$TMP/dtree.log" "conffiles: $(cat "$TMP/conffiles")" "cuda: $cuda"
fi

# 15. Every packaged program starts.
check "every_packaged_program_starts_and_prints_its_usage" "$TMP/dstart.log" \
	programs_start "$DROOT" "$TMP/dstart.log"

# 16-18. The packaged cpnctl on the packaged object.
router "$DROOT" packaged

# 19. A client of libcpn-dev.
check "a_program_built_against_libcpn_dev_runs" "$TMP/dclient.log" client "$DROOT" "$TMP/dclient.log"

# 20. cpn-worker, run through its symlink in /usr/bin, looks for the CUDA
# backend beside its executable, /usr/libexec/cpn (the package has none: it
# says so and exits 1).
port=$((20000 + $$ % 20000))
timeout 20 "$DROOT/usr/bin/cpn-worker" --listen "127.0.0.1:$port" --node-id 1 \
	--router "127.0.0.1:$((port + 1))" --kernel mlp --mlp-dims 4,4 --backend cuda >"$TMP/worker.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "$DROOT/usr/libexec/cpn/libcpn_cuda.so: No such file" "$TMP/worker.log"; then
	ok "packaged_cpn_worker_looks_for_libcpn_cuda_so_beside_itself"
else
	not_ok "packaged_cpn_worker_looks_for_libcpn_cuda_so_beside_itself" "rc=$rc" "$TMP/worker.log"
fi

# 21. python3-cpn: the module imports from the package's place and loads the
# packaged libcpn.so.0.
pylib=$(cd "$DROOT" && ls -d usr/lib/*/libcpn.so.0 2>/dev/null | head -1)
check "python3_cpn_imports_and_opens_a_client_on_the_packaged_library" "$TMP/dpy.log" \
	bash -c "PYTHONPATH='$DROOT/usr/lib/python3/dist-packages' CPN_LIBRARY='$DROOT/$pylib' \
		/usr/bin/python3 -c 'import cpn; cpn.Client(\"127.0.0.1:9\", service=1, tenant=1).close(); print(cpn.Worker)' \
		>'$TMP/dpy.log' 2>&1"

tap_ran $N
