// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The router's paths as the benchmarks drive them: see xdp_paths.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "cpn_test.h"
#include "cpn_util.h"
#include "xdp_paths.h"

const char *xdp_paths_prog = "bench-xdp";

const char *const path_names[P_MAX] = {"trivial",    "floor",	    "pass-through", "request",
				       "reply",	     "load",	    "request-jiq",  "request-fnat",
				       "reply-fnat", "request-chk", "reply-chk",    "request-open"};
const char *const path_desc[P_MAX] = {
    "XDP_PASS program (baseline)",
    "parse, rewrite dst + checksums, swap MACs, XDP_TX (the floor)",
    "non-cpn UDP through the router",
    "REQUEST: choose, tag, DNAT, FIB, redirect",
    "REPLY: learn, reverse NAT, FIB, redirect",
    "LOAD heartbeat: learn, consume",
    "REQUEST, policy jiq, to an idle token's node",
    "REQUEST, full NAT: + the flow recorded, the source rewritten",
    "REPLY, full NAT: + the flow found and forgotten, the client restored",
    "REQUEST, reply_check (DNAT): + the flow recorded",
    "REPLY, reply_check (DNAT): + the flow found, its client checked, forgotten",
    "REQUEST to a service open to every tenant: no tenant lookup"};

/* veth in0 (clients, 10.0.0.254/24) and veth out0 (nodes, 10.1.0.254/24),
 * each with a peer carrying an XDP_PASS program; neighbours permanent.
 */
const struct xdp_port xdp_ports[2] = {{"in0", "10.0.0.254"}, {"out0", "10.1.0.254"}};
const struct xdp_neigh xdp_neighs[3] = {{"in0", "10.0.0.1", "02:00:00:00:00:01"},
					{"out0", "10.1.0.1", "02:00:00:00:01:01"},
					{"out0", "10.1.0.2", "02:00:00:00:01:02"}};

/* jiq: one idle token of node 2 in service 2's store. */
static int pre_token(struct path_run *p)
{
	struct cpn_tokens t = {0};
	__u32 k = 2;

	t.top = 1;
	t.slot[0].node = 2;
	t.slot[0].t_us = (__u32)(cpn_now_ns() / 1000);
	return bpf_map_update_elem(p->r->maps.tokens, &k, &t, BPF_ANY);
}

/* full NAT reply: the flow of its request, as the request path left it. */
static struct cpn_flow_key fnat_key;
static struct cpn_flow fnat_flow;

static int pre_flow(struct path_run *p)
{
	return bpf_map_update_elem(p->r->maps.flows, &fnat_key, &fnat_flow, BPF_ANY);
}

/* reply_check: the flow of the DNAT request, as the request path left it. */
static struct cpn_flow_key chk_key;

static int pre_flow_chk(struct path_run *p)
{
	return bpf_map_update_elem(p->r->maps.flows, &chk_key, &fnat_flow, BPF_ANY);
}

int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "%s: '%s' failed (%d)\n", xdp_paths_prog, cmd, rc);
	return rc;
}

int make_netns(int *if_in, int *if_out)
{
	static const char *cmds[] = {
	    "ip link set lo up",
	    "ip link add in0 type veth peer name in1",
	    "ip link add out0 type veth peer name out1",
	    "ip addr add 10.0.0.254/24 dev in0",
	    "ip addr add 10.1.0.254/24 dev out0",
	    "ip link set in0 up",
	    "ip link set in1 up",
	    "ip link set out0 up",
	    "ip link set out1 up",
	};
	static const char *fwd[] = {
	    "sysctl -qw net.ipv4.ip_forward=1",
	    "sysctl -qw net.ipv4.conf.all.forwarding=1",
	};
	char cmd[160];

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s\n", xdp_paths_prog, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (sh(cmds[i]))
			return -1;
	for (size_t i = 0; i < sizeof(xdp_neighs) / sizeof(xdp_neighs[0]); i++) {
		snprintf(cmd, sizeof(cmd), "ip neigh replace %s lladdr %s nud permanent dev %s",
			 xdp_neighs[i].ip, xdp_neighs[i].mac, xdp_neighs[i].dev);
		if (sh(cmd))
			return -1;
	}
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		if (sh(fwd[i]))
			return -1;
	*if_in = (int)if_nametoindex("in0");
	*if_out = (int)if_nametoindex("out0");
	return *if_in && *if_out ? 0 : -1;
}

void xdp_paths_after(struct path_run *p)
{
	p->r->maps.state[1].unanswered = 0;
	p->r->maps.state[2].unanswered = 0;
}

/* A REPLY of node 1 (10.1.0.1) to dst, port 40000, for request rid of
 * service svc, with a load report and a router_ts 1 ms old.
 */
static void node1_reply(struct cpn_pkt *s, const char *dst, __u16 svc, __u64 rid)
{
	cpn_pkt_default(s, CPN_AF_INET);
	s->src = "10.1.0.1";
	s->dst = dst;
	s->sport = T_PORT;
	s->dport = 40000;
	cpn_msg_init(&s->msg, CPN_T_REPLY);
	s->msg.service_id = svc;
	s->msg.tenant_id = T_TENANT;
	s->msg.node_id = 1;
	s->msg.request_id = rid;
	s->msg.capacity = 64;
	s->msg.worker_us = 900;
	s->msg.router_ts = (__u32)(cpn_now_ns() / 1000) - 1000;
}

int xdp_paths_config(struct router *r, int if_in, int if_out, int nocache)
{
	__u16 nodes[] = {1, 2};

	/* Two nodes, p2c, a tenant without limits; stale_ms long enough for
	 * the whole run so that the live path is what gets timed.
	 */
	if (t_config(r) || t_add_node(r, 1, CPN_AF_INET, 100) ||
	    t_add_node(r, 2, CPN_AF_INET, 100) ||
	    t_add_service(r, T_SVC, CPN_AF_INET, CPN_POL_P2C, nodes, 2) ||
	    t_add_tenant(r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL) ||
	    cpn_maps_add_port(&r->maps, if_in) || cpn_maps_add_port(&r->maps, if_out)) {
		fprintf(stderr, "%s: cannot configure the router\n", xdp_paths_prog);
		return -1;
	}
	{
		struct cpn_service svc;

		cpn_maps_get_service(&r->maps, T_SVC, &svc);
		svc.stale_ms = 3600 * 1000;
		cpn_maps_set_service(&r->maps, T_SVC, &svc);
	}
	if (nocache) {
		struct cpn_config cfg;

		cpn_maps_get_config(&r->maps, &cfg);
		cfg.flags |= CPN_CFG_NO_NH_CACHE;
		cpn_maps_set_config(&r->maps, &cfg);
	}
	t_report(r, 1, 0, 0, 64, 1000, 100);
	t_report(r, 2, 0, 0, 64, 1000, 100);

	/* Service 2 (VIP .101): jiq; service 3 (VIP .102): full NAT, the
	 * router's address toward the nodes 10.1.0.254; service 4 (VIP .103):
	 * DNAT with reply_check.
	 */
	for (__u16 id = 2; id <= 4; id++) {
		struct cpn_service svc;

		cpn_maps_get_service(&r->maps, T_SVC, &svc);
		svc.vip[0] = htonl(ntohl(svc.vip[0]) + id - 1);
		if (id == 2)
			svc.policy = CPN_POL_JIQ;
		else if (id == 3)
			svc.flags |= CPN_SVC_FULLNAT;
		else
			svc.flags |= CPN_SVC_REPLY_CHECK;
		if (cpn_maps_set_service(&r->maps, id, &svc) ||
		    t_add_tenant(r, T_TENANT, (__u16[]){T_SVC, 2, 3, 4}, 4, 0, 0, NULL)) {
			fprintf(stderr, "%s: cannot configure services 2 to 4\n", xdp_paths_prog);
			return -1;
		}
	}
	/* Service 5 (VIP .104): REQUEST's service, open to every tenant:
	 * only `any` names it, with no key and no rate (CPN_SVC_OPEN, as
	 * cpn_cfg_service_open() would set it).
	 */
	{
		struct cpn_service svc;

		cpn_maps_get_service(&r->maps, T_SVC, &svc);
		svc.vip[0] = htonl(ntohl(svc.vip[0]) + 4);
		svc.flags |= CPN_SVC_OPEN;
		if (cpn_maps_set_service(&r->maps, 5, &svc) ||
		    t_add_tenant(r, CPN_TENANT_ANY, (__u16[]){5}, 1, 0, 0, NULL)) {
			fprintf(stderr, "%s: cannot configure service 5\n", xdp_paths_prog);
			return -1;
		}
	}
	for (__u32 id = 1; id <= 2; id++) {
		struct cpn_node_cfg nc;

		if (bpf_map_lookup_elem(r->maps.nodes, &id, &nc))
			return -1;
		nc.src[0] = htonl(0x0a0100fe); /* 10.1.0.254 */
		if (bpf_map_update_elem(r->maps.nodes, &id, &nc, BPF_ANY))
			return -1;
	}

	return 0;
}

/* A REQUEST from the client on if_in: redirected to a node, 10.1.0.x. */
static void request_path(struct path_run *pr, struct cpn_pkt *s, int if_in)
{
	struct cpn_pkt_view v;

	pr->in_len = cpn_pkt_build(s, pr->in, CPN_PKT_MAX);
	pr->want = XDP_REDIRECT;
	pr->ifindex = if_in;
	cpn_pkt_locate(pr->in, pr->in_len, &v);
	pr->check_off = v.l3 + 16; /* destination: 10.1.0.x */
	memcpy(pr->check, (__u8[]){10, 1, 0}, 3);
	pr->check_len = 3;
}

void xdp_paths_build(struct path_run p[P_MAX], struct router *r, int pass_fd, int floor_fd,
		     int if_in, int if_out)
{
	struct cpn_pkt s;
	struct cpn_pkt_view v;

	for (int i = 0; i < P_MAX; i++) {
		p[i].prog_fd = r->prog_fd;
		p[i].r = r;
	}
	/* REQUEST from the client to the VIP: redirected to a node on out0. */
	cpn_pkt_default(&s, CPN_AF_INET);
	request_path(&p[P_REQUEST], &s, if_in);

	/* The trivial program on the same frame. */
	memcpy(p[P_TRIVIAL].in, p[P_REQUEST].in, p[P_REQUEST].in_len);
	p[P_TRIVIAL].in_len = p[P_REQUEST].in_len;
	p[P_TRIVIAL].prog_fd = pass_fd;
	p[P_TRIVIAL].want = XDP_PASS;
	p[P_TRIVIAL].ifindex = if_in;

	/* The floor on the same frame: rewritten and sent back. */
	memcpy(p[P_FLOOR].in, p[P_REQUEST].in, p[P_REQUEST].in_len);
	p[P_FLOOR].in_len = p[P_REQUEST].in_len;
	p[P_FLOOR].prog_fd = floor_fd;
	p[P_FLOOR].want = XDP_TX;
	p[P_FLOOR].ifindex = if_in;
	p[P_FLOOR].check_off = p[P_REQUEST].check_off;
	memcpy(p[P_FLOOR].check, (__u8[]){10, 1, 0, 1}, 4);
	p[P_FLOOR].check_len = 4;

	/* Non-cpn UDP (a DNS query) through the router: untouched. */
	{
		static const __u8 dns[] = {0x12, 0x34, 1,   0,	 0,   1, 0, 0, 0, 0, 0,
					   0,	 3,    'c', 'p', 'n', 0, 0, 1, 0, 1};

		cpn_pkt_default(&s, CPN_AF_INET);
		s.with_hdr = false;
		s.dport = 53;
		s.payload = dns;
		s.payload_len = sizeof(dns);
		p[P_PASS].in_len = cpn_pkt_build(&s, p[P_PASS].in, CPN_PKT_MAX);
		p[P_PASS].want = XDP_PASS;
		p[P_PASS].ifindex = if_in;
		p[P_PASS].check_off = 0;
		memcpy(p[P_PASS].check, p[P_PASS].in, 16);
		p[P_PASS].check_len = 16;
	}

	/* REPLY from node 1 to the client: reverse NAT, redirected to in0. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.src = "10.1.0.1";
	s.dst = T_CLIENT4;
	s.sport = T_PORT;
	s.dport = 40000;
	cpn_msg_init(&s.msg, CPN_T_REPLY);
	s.msg.service_id = T_SVC;
	s.msg.tenant_id = T_TENANT;
	s.msg.node_id = 1;
	s.msg.capacity = 64;
	s.msg.worker_us = 900;
	s.msg.router_ts = (__u32)(cpn_now_ns() / 1000) - 1000;
	p[P_REPLY].in_len = cpn_pkt_build(&s, p[P_REPLY].in, CPN_PKT_MAX);
	p[P_REPLY].want = XDP_REDIRECT;
	p[P_REPLY].ifindex = if_out;
	cpn_pkt_locate(p[P_REPLY].in, p[P_REPLY].in_len, &v);
	p[P_REPLY].check_off = v.l3 + 12; /* source: the VIP */
	memcpy(p[P_REPLY].check, (__u8[]){10, 0, 0, 100}, 4);
	p[P_REPLY].check_len = 4;

	/* LOAD from node 2 to the control port: learned and consumed. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.src = "10.1.0.2";
	s.dst = "10.1.0.254";
	s.sport = T_PORT;
	s.dport = T_CTL;
	cpn_msg_init(&s.msg, CPN_T_LOAD);
	s.msg.node_id = 2;
	s.msg.capacity = 64;
	s.msg.worker_us = 1000;
	p[P_LOAD].in_len = cpn_pkt_build(&s, p[P_LOAD].in, CPN_PKT_MAX);
	p[P_LOAD].want = XDP_DROP;
	p[P_LOAD].ifindex = if_out;

	/* The same REQUEST to service 2 (jiq, a token each time) and to
	 * service 3 (full NAT).
	 */
	for (int i = P_REQ_JIQ; i <= P_REQ_FNAT; i++) {
		cpn_pkt_default(&s, CPN_AF_INET);
		s.dst = i == P_REQ_JIQ ? "10.0.0.101" : "10.0.0.102";
		s.msg.service_id = (__u16)(i == P_REQ_JIQ ? 2 : 3);
		p[i].in_len = cpn_pkt_build(&s, p[i].in, CPN_PKT_MAX);
		p[i].want = XDP_REDIRECT;
		p[i].ifindex = if_in;
		cpn_pkt_locate(p[i].in, p[i].in_len, &v);
		if (i == P_REQ_JIQ) { /* to the token's node, 10.1.0.2 */
			p[i].check_off = v.l3 + 16;
			memcpy(p[i].check, (__u8[]){10, 1, 0, 2}, 4);
			p[i].pre = pre_token;
		} else { /* from the router, to a node */
			p[i].check_off = v.l3 + 12;
			memcpy(p[i].check, (__u8[]){10, 1, 0, 254, 10, 1, 0}, 7);
		}
		p[i].check_len = i == P_REQ_JIQ ? 4 : 7;
	}
	/* The full-NAT REPLY of node 1, to the router's address. */
	node1_reply(&s, "10.1.0.254", 3, 77);
	p[P_REPLY_FNAT].in_len = cpn_pkt_build(&s, p[P_REPLY_FNAT].in, CPN_PKT_MAX);
	p[P_REPLY_FNAT].want = XDP_REDIRECT;
	p[P_REPLY_FNAT].ifindex = if_out;
	p[P_REPLY_FNAT].pre = pre_flow;
	cpn_pkt_locate(p[P_REPLY_FNAT].in, p[P_REPLY_FNAT].in_len, &v);
	p[P_REPLY_FNAT].check_off = v.l3 + 12; /* from the VIP .102 to the client */
	memcpy(p[P_REPLY_FNAT].check, (__u8[]){10, 0, 0, 102, 10, 0, 0, 1}, 8);
	p[P_REPLY_FNAT].check_len = 8;
	fnat_key = (struct cpn_flow_key){.request_id = cpn_htonll(77),
					 .tenant_id = htonl(T_TENANT),
					 .service_id = htons(3),
					 .node_id = htons(1),
					 .cport = htons(40000)};
	fnat_flow = (struct cpn_flow){.family = CPN_AF_INET};
	fnat_flow.client[0] = htonl(0x0a000001); /* 10.0.0.1 */

	/* reply_check: the REQUEST to service 4, and node 1's REPLY to it. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.dst = "10.0.0.103";
	s.msg.service_id = 4;
	request_path(&p[P_REQ_CHECK], &s, if_in);
	node1_reply(&s, T_CLIENT4, 4, 88);
	p[P_REPLY_CHECK].in_len = cpn_pkt_build(&s, p[P_REPLY_CHECK].in, CPN_PKT_MAX);
	p[P_REPLY_CHECK].want = XDP_REDIRECT;
	p[P_REPLY_CHECK].ifindex = if_out;
	p[P_REPLY_CHECK].pre = pre_flow_chk;
	cpn_pkt_locate(p[P_REPLY_CHECK].in, p[P_REPLY_CHECK].in_len, &v);
	p[P_REPLY_CHECK].check_off = v.l3 + 12; /* from the VIP .103 to the client */
	memcpy(p[P_REPLY_CHECK].check, (__u8[]){10, 0, 0, 103, 10, 0, 0, 1}, 8);
	p[P_REPLY_CHECK].check_len = 8;
	chk_key = (struct cpn_flow_key){.request_id = cpn_htonll(88),
					.tenant_id = htonl(T_TENANT),
					.service_id = htons(4),
					.node_id = htons(1),
					.cport = htons(40000)};

	/* REQUEST's frame to the open service 5, of a tenant nobody names. */
	cpn_pkt_default(&s, CPN_AF_INET);
	s.dst = "10.0.0.104";
	s.msg.service_id = 5;
	s.msg.tenant_id = 4242;
	request_path(&p[P_REQ_OPEN], &s, if_in);
}
