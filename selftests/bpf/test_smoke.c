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

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
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

/* An array map of 64-byte values described by BTF: `n` members of the
 * names, byte offsets and sizes given (1, 2, 4 or 8 bytes).
 */
static int layout_map(int n, const char *const *names, const int *off, const int *size)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	struct btf *btf = btf__new_empty();
	int ints[9] = {0}, st, fd;

	assert_non_null(btf);
	for (int b = 1; b <= 8; b *= 2) {
		char name[16];

		snprintf(name, sizeof(name), "__u%d", 8 * b);
		ints[b] = btf__add_int(btf, name, b, 0);
		assert_true(ints[b] > 0);
	}
	st = btf__add_struct(btf, "cpn_node", 64);
	assert_true(st > 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(btf__add_field(btf, names[i], ints[size[i]], off[i] * 8, 0), 0);
	assert_int_equal(btf__load_into_kernel(btf), 0);
	o.btf_fd = btf__fd(btf);
	o.btf_key_type_id = ints[4];
	o.btf_value_type_id = st;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cpn_layout", 4, 64, 4, &o);
	assert_true(fd >= 0);
	btf__free(btf); /* the map holds its own reference */
	return fd;
}

/* The pinned node state of another build is refused unless its struct
 * cpn_node is this build's, member for member: the router's own map
 * passes; the layout before slot_cost (weight and capacity of 32 bits)
 * and a map of another value size are refused; a map without BTF is
 * judged by its size alone.
 */
static void test_node_state_layout_is_checked(void **state)
{
	static const char *const old_names[] = {
	    "admin",	   "weight",	     "queue_depth", "inflight",	    "deadline_us",
	    "capacity",	   "util",	     "pad",	    "overclaim",    "svc_us",
	    "path_us",	   "last_report_ns", "outstanding", "report_flags", "unanswered",
	    "reported_us", "since_ns"};
	static const int old_off[] = {0,  4,  8,  10, 12, 16, 20, 21, 22,
				      24, 28, 32, 40, 44, 48, 52, 56};
	static const int old_size[] = {4, 4, 2, 2, 4, 4, 1, 1, 2, 4, 4, 8, 4, 4, 4, 4, 8};
	struct router r;
	int fd;

	(void)state;
	assert_int_equal(router_open(&r), 0);
	assert_int_equal(cpn_maps_check_layout(r.maps.node_state), 0);
	router_close(&r);

	fd = layout_map(17, old_names, old_off, old_size);
	assert_int_equal(cpn_maps_check_layout(fd), -EPROTO);
	close(fd);

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cpn_nobtf", 4, 64, 4, NULL);
	assert_true(fd >= 0);
	assert_int_equal(cpn_maps_check_layout(fd), 0);
	close(fd);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cpn_nobtf", 4, 72, 4, NULL);
	assert_true(fd >= 0);
	assert_int_equal(cpn_maps_check_layout(fd), -EPROTO);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_is_steered_with_valid_checksums),
	    cmocka_unit_test(test_object_maps_are_the_maps_list),
	    cmocka_unit_test(test_node_state_layout_is_checked),
	};
	return cmocka_run_group_tests_name("bpf_smoke", tests, NULL, NULL);
}
