// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test fixtures for the router: see cpn_test.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cpn/sched.h"
#include "cpn/siphash.h"
#include "cpn_router.skel.h"
#include "cpn_test.h"

/* ---- router ---------------------------------------------------------- */

int router_open(struct router *r)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->skel = cpn_router__open_and_load();
	if (!r->skel) {
		fprintf(stderr, "router_open: cannot load cpn_router.bpf.o: %s\n", strerror(errno));
		return -1;
	}
	err = cpn_maps_from_object(&r->maps, r->skel->obj);
	if (err) {
		fprintf(stderr, "router_open: maps: %s\n", strerror(-err));
		cpn_router__destroy(r->skel);
		return -1;
	}
	r->prog_fd = bpf_program__fd(r->skel->progs.cpn_xdp);
	r->chain_fd = bpf_program__fd(r->skel->progs.cpn_xdp_chain);
	return 0;
}

void router_close(struct router *r)
{
	cpn_maps_close(&r->maps);
	if (r->skel)
		cpn_router__destroy(r->skel);
	memset(r, 0, sizeof(*r));
}

int router_run_if(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len,
		  int ifindex)
{
	struct xdp_md ctx = {.data_end = (__u32)in_len, .ingress_ifindex = (__u32)ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (__u32)in_len,
		    .data_out = out, .data_size_out = (__u32)*out_len, .repeat = 1);

	if (ifindex) {
		opts.ctx_in = &ctx;
		opts.ctx_size_in = sizeof(ctx);
	}
	if (bpf_prog_test_run_opts(r->prog_fd, &opts))
		return -1;
	*out_len = opts.data_size_out;
	if (!r->silent_nodes && r->maps.state)
		for (__u32 id = 1; id < CPN_MAX_NODES; id++)
			r->maps.state[id].unanswered = 0;
	return (int)opts.retval;
}

int router_run(struct router *r, const __u8 *in, size_t in_len, __u8 *out, size_t *out_len)
{
	return router_run_if(r, in, in_len, out, out_len, 0);
}

__u64 router_stat(struct router *r, enum cpn_stat s)
{
	__u64 all[CPN_STAT_MAX];

	if (cpn_maps_stats(&r->maps, all))
		return ~0ULL;
	return all[s];
}

int t_add_node(struct router *r, __u16 id, int family, __u32 weight)
{
	struct cpn_node_cfg c = {0};
	char a[64];

	cpn_pkt_node_addr(id, family, a, sizeof(a));
	if (cpn_addr_parse(a, c.addr, &c.family))
		return -1;
	c.port = htons(T_PORT);
	return cpn_maps_set_node(&r->maps, id, &c, weight, CPN_ADMIN_UP);
}

int t_add_service(struct router *r, __u16 id, int family, int policy, const __u16 *nodes, int n)
{
	struct cpn_service s = {0};

	s.flags = CPN_SVC_ACTIVE;
	s.policy = (__u8)policy;
	if (cpn_addr_parse(family == CPN_AF_INET ? T_VIP4 : T_VIP6, s.vip, &s.family))
		return -1;
	s.port = htons(T_PORT);
	s.max_wait_us = 0;
	s.max_queue = 0;
	s.stale_ms = 500;
	cpn_svc_set_nodes(&s, nodes, (__u32)n);
	return cpn_maps_set_service(&r->maps, id, &s);
}

int t_service_flags(struct router *r, __u16 id, __u32 set, __u32 clear)
{
	struct cpn_service s;
	int err = cpn_maps_get_service(&r->maps, id, &s);

	if (err)
		return err;
	s.flags = (s.flags | set) & ~clear;
	return cpn_maps_set_service(&r->maps, id, &s);
}

int t_add_tenant(struct router *r, __u32 id, const __u16 *svcs, int n, __u64 rate, __u64 burst,
		 const __u64 *key)
{
	struct cpn_tenant t;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < n; i++)
		t.services[svcs[i] / 64] |= 1ULL << (svcs[i] % 64);
	cpn_tenant_set_rate(&t, rate, burst);
	if (key) {
		t.flags |= CPN_TENANT_KEY;
		t.key[0] = key[0];
		t.key[1] = key[1];
	}
	return cpn_maps_set_tenant(&r->maps, id, &t);
}

void t_report(struct router *r, __u16 id, __u32 queue, __u32 inflight, __u32 capacity, __u32 svc_us,
	      __u32 path_us)
{
	struct cpn_node *n = &r->maps.state[id];

	n->queue_depth = queue;
	n->inflight = inflight;
	n->capacity = capacity;
	n->svc_us = svc_us;
	n->path_us = path_us;
	n->outstanding = 0;
	n->report_flags = CPN_REP_SVC_VALID | CPN_REP_PATH_VALID;
	n->last_report_ns = cpn_now_ns();
	cpn_node_cost(n);
}

const __u64 t_hop_key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

__u64 t_probe_cookie(__u16 id, __u32 ts)
{
	return cpn_ntohll(cpn_probe_cookie(t_hop_key, htons(id), htonl(ts)));
}

int t_config(struct router *r)
{
	struct cpn_config c = {.control_port = htons(T_CTL),
			       .max_hops = 4,
			       .router_id = 1,
			       .hop_key = {t_hop_key[0], t_hop_key[1]}};

	return cpn_maps_set_config(&r->maps, &c);
}

/* ---- additions for the router suites --------------------------------- */

int t_router_setup(void **state)
{
	struct router *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	if (router_open(r)) {
		free(r);
		return -1;
	}
	if (t_config(r)) {
		router_close(r);
		free(r);
		return -1;
	}
	*state = r;
	return 0;
}

int t_router_teardown(void **state)
{
	struct router *r = *state;

	if (r) {
		router_close(r);
		free(r);
	}
	*state = NULL;
	return 0;
}

int t_topology(struct router *r, int family, int policy, int n)
{
	__u16 ids[CPN_MAX_SVC_NODES];

	if (n < 0 || n > CPN_MAX_SVC_NODES)
		return -1;
	for (int i = 0; i < n; i++) {
		ids[i] = (__u16)(i + 1);
		if (t_add_node(r, ids[i], family, 100))
			return -1;
		t_report(r, ids[i], 0, 0, 1, 100, 0);
	}
	if (t_add_service(r, T_SVC, family, policy, ids, n))
		return -1;
	return t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL);
}

int router_stats(struct router *r, __u64 out[CPN_STAT_MAX])
{
	return cpn_maps_stats(&r->maps, out);
}

int router_node_stats(struct router *r, __u16 id, struct cpn_node_stats *out)
{
	return cpn_maps_node_stats(&r->maps, id, out);
}

__u32 t_now_us(void)
{
	return (__u32)(cpn_now_ns() / 1000);
}

void t_make_stale(struct router *r, __u16 id)
{
	/* 10 s ago: past every stale_ms of the tests, and never 0 ("never"). */
	r->maps.state[id].last_report_ns = cpn_now_ns() - 10000000000ULL;
}
