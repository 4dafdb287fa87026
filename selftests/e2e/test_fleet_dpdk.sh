#!/usr/bin/env bash
# e2e: the fleet tests (test_fleet.sh) with cpn-fwd as the router's data
# plane: tools/testbed up --plane dpdk runs cpn-fwd in the router namespace
# on net_af_packet ports, following the controller's pinned maps, instead
# of cpn_xdp on those ports. The tests are the same, unchanged.
set -u
cd "$(dirname "$0")/../.." || exit 1
. selftests/e2e/lib.sh
BUILD=${BUILD:-build}

need_root
need_file "$BUILD/cpn-fwd"
CPN_PLANE=dpdk exec selftests/e2e/test_fleet.sh "$@"
