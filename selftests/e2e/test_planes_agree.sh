#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The XDP program and cpn-fwd agree, packet for packet: selftests/dpdk/.
exec "$(dirname "$0")/../dpdk/test_planes_agree.sh" "$@"
