// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Smoke: the object loads, a request is steered and its checksums hold; the
 * object's maps are exactly the list CPN_MAPS (maps.h) that libcpn opens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/bpf.h>

#include <bpf/libbpf.h>

#include "cpn_router.skel.h"
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

static void test_object_maps_are_the_maps_list(void **state)
{
	struct cpn_router *skel = cpn_router__open();
	const struct bpf_map *map;
	int seen[CPN_NR_MAPS] = {0}, n = 0;

	(void)state;
	assert_non_null(skel);
	bpf_object__for_each_map(map, skel->obj)
	{
		const char *name = bpf_map__name(map);
		int found = -1;

		if (strchr(name, '.')) /* .rodata and the like: not maps of ours */
			continue;
		n++;
		for (int i = 0; i < CPN_NR_MAPS; i++)
			if (!strcmp(name, cpn_map_names[i]))
				found = i;
		if (found < 0)
			fail_msg("map %s of the object is not in CPN_MAPS", name);
		seen[found]++;
	}
	for (int i = 0; i < CPN_NR_MAPS; i++)
		if (seen[i] != 1)
			fail_msg("CPN_MAPS names %s, which the object does not define once",
				 cpn_map_names[i]);
	assert_int_equal(n, CPN_NR_MAPS);
	cpn_router__destroy(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_is_steered_with_valid_checksums),
	    cmocka_unit_test(test_object_maps_are_the_maps_list),
	};
	return cmocka_run_group_tests_name("bpf_smoke", tests, NULL, NULL);
}
