// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Smoke: the object loads, a request is steered and its checksums hold. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/bpf.h>

#include "cpn_test.h"

static void test_request_is_steered_with_valid_checksums(void **state)
{
	struct router r;
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	size_t in_len, out_len = sizeof(out);
	__u16 nodes[] = {1};
	int act;

	(void)state;
	assert_int_equal(router_open(&r), 0);
	assert_int_equal(t_config(&r), 0);
	assert_int_equal(t_add_node(&r, 1, CPN_AF_INET, 100), 0);
	assert_int_equal(t_add_service(&r, T_SVC, CPN_AF_INET, CPN_POL_P2C, nodes, 1), 0);
	assert_int_equal(t_add_tenant(&r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL), 0);
	t_report(&r, 1, 0, 0, 1, 1000, 100);
	cpn_pkt_default(&s, CPN_AF_INET);
	in_len = cpn_pkt_build(&s, in, sizeof(in));
	act = router_run(&r, in, in_len, out, &out_len);
	assert_int_equal(act, XDP_PASS);
	assert_int_equal(cpn_pkt_locate(out, out_len, &v), 0);
	assert_true(cpn_pkt_csum_ok(out, out_len));
	assert_int_equal(router_stat(&r, CPN_STAT_REQ_STEERED), 1);
	router_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_is_steered_with_valid_checksums),
	};
	return cmocka_run_group_tests_name("bpf_smoke", tests, NULL, NULL);
}
