#!/usr/bin/env bash
# Install the Debian packages cpn needs, only those that are missing.
# Idempotent: a machine that has everything runs no apt at all.
set -euo pipefail

pkgs=(
	build-essential clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
	libcmocka-dev libyaml-dev libmicrohttpd-dev libopenblas-dev
	libdpdk-dev dpdk libpcap-dev libxdp-dev
	iproute2 iputils-ping tcpdump pkg-config python3 gnuplot-nox prometheus
	clang-format
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
