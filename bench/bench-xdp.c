// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-xdp: per-packet cost of the router's paths under BPF_PROG_TEST_RUN.
 *
 * BPF_PROG_TEST_RUN with repeat > 1 runs the program again on the packet it
 * already rewrote, so a rewriting path would be timed as pass-through. Every
 * path here is timed as many calls at repeat = 1, each on the pristine
 * input, each return value and output checked; the kernel's own per-run
 * duration is summed (wall-clock per call, syscall included, is shown too).
 * Paths are interleaved in rounds so that drift hits them all alike, and the
 * trivial XDP_PASS program is timed the same way in the same run, and so is
 * the floor: a program that only parses, rewrites and transmits.
 *
 * The router runs in a private network namespace with two veth pairs,
 * forwarding on, and permanent neighbours, so the REQUEST and REPLY paths
 * include a successful FIB lookup and a devmap redirect: the real path.
 *
 * usage: bench-xdp [--calls N] [--rounds R] [--json] [--no-fib] [--no-nh-cache]
 *
 * --no-fib runs REQUEST and REPLY in from lo, which does not forward: the FIB
 * lookup fails at once and the rewritten packet goes to the kernel (XDP_PASS), which
 * separates the cost of cpn's own work from that of routing. --no-nh-cache
 * turns off the per-node next-hop cache: a FIB lookup for every request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "cpn_floor.skel.h"
#include "cpn_pass.skel.h"
#include "cpn_test.h"
#include "cpn_util.h"

enum path {
	P_TRIVIAL,
	P_FLOOR,
	P_PASS,
	P_REQUEST,
	P_REPLY,
	P_LOAD,
	P_REQ_JIQ,
	P_REQ_FNAT,
	P_REPLY_FNAT,
	P_REQ_CHECK,
	P_REPLY_CHECK,
	P_MAX
};
static const char *const path_names[P_MAX] = {
    "trivial",	   "floor",	   "pass-through", "request",	  "reply",    "load",
    "request-jiq", "request-fnat", "reply-fnat",   "request-chk", "reply-chk"};
static const char *const path_desc[P_MAX] = {
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
    "REPLY, reply_check (DNAT): + the flow found, its client checked, forgotten"};

struct path_run;
typedef int (*pre_fn)(struct path_run *);

struct path_run {
	int prog_fd;
	__u8 in[CPN_PKT_MAX];
	size_t in_len;
	int want;	  /* expected XDP action */
	size_t check_off; /* bytes of the output checked on every call */
	__u8 check[16];
	size_t check_len;
	int ifindex;
	__u64 kern_ns; /* sum of kernel durations */
	__u64 wall_ns;
	__u64 calls;
	double *round_ns; /* kernel ns/packet per round */
	pre_fn pre;	  /* before each run, not timed: the state the path needs */
	struct router *r;
};

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

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "bench-xdp: '%s' failed (%d)\n", cmd, rc);
	return rc;
}

/* veth in0 (clients, 10.0.0.254/24) and veth out0 (nodes, 10.1.0.254/24),
 * each with a peer carrying an XDP_PASS program; neighbours permanent.
 */
static int make_netns(int *if_in, int *if_out)
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
	    "ip neigh replace 10.0.0.1 lladdr 02:00:00:00:00:01 nud permanent dev in0",
	    "ip neigh replace 10.1.0.1 lladdr 02:00:00:00:01:01 nud permanent dev out0",
	    "ip neigh replace 10.1.0.2 lladdr 02:00:00:00:01:02 nud permanent dev out0",
	    "sysctl -qw net.ipv4.ip_forward=1",
	    "sysctl -qw net.ipv4.conf.all.forwarding=1",
	};

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench-xdp: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (sh(cmds[i]))
			return -1;
	*if_in = (int)if_nametoindex("in0");
	*if_out = (int)if_nametoindex("out0");
	return *if_in && *if_out ? 0 : -1;
}

static int run_once(struct path_run *p)
{
	__u8 out[CPN_PKT_MAX];
	struct xdp_md ctx = {.data_end = (__u32)p->in_len, .ingress_ifindex = (__u32)p->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->in, .data_size_in = (__u32)p->in_len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));
	__u64 t0, t1;

	if (p->pre && p->pre(p)) {
		fprintf(stderr, "bench-xdp: cannot prepare the run: %s\n", strerror(errno));
		return -1;
	}
	t0 = cpn_now_ns();
	if (bpf_prog_test_run_opts(p->prog_fd, &opts)) {
		fprintf(stderr, "bench-xdp: test run: %s\n", strerror(errno));
		return -1;
	}
	t1 = cpn_now_ns();
	if ((int)opts.retval != p->want) {
		fprintf(stderr, "bench-xdp: action %u, expected %d\n", opts.retval, p->want);
		return -1;
	}
	if (p->check_len && (opts.data_size_out < p->check_off + p->check_len ||
			     memcmp(out + p->check_off, p->check, p->check_len))) {
		fprintf(stderr, "bench-xdp: output differs from the expected rewrite\n");
		return -1;
	}
	/* The nodes answer every request, outside the timed run: left with
	 * requests unanswered they would turn suspect, and requests into BUSY.
	 */
	p->r->maps.state[1].unanswered = 0;
	p->r->maps.state[2].unanswered = 0;
	p->kern_ns += opts.duration;
	p->wall_ns += t1 - t0;
	p->calls++;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: bench-xdp [--calls N] [--rounds R] [--json] [--no-fib] [--no-nh-cache]\n"
	    "  N calls at repeat=1 per path in all (default 1000000), in R rounds (default 10)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"calls", required_argument, 0, 'n'},
					     {"rounds", required_argument, 0, 'r'},
					     {"json", no_argument, 0, 'j'},
					     {"no-fib", no_argument, 0, 'F'},
					     {"no-nh-cache", no_argument, 0, 'C'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	long calls = 1000000, rounds = 10;
	int json = 0, nofib = 0, nocache = 0, c, if_in = 0, if_out = 0;
	struct path_run p[P_MAX];
	struct cpn_pass *pass;
	struct cpn_floor *floor;
	struct router r;
	struct cpn_pkt s;
	struct cpn_pkt_view v;
	__u16 nodes[] = {1, 2};
	double med[P_MAX], mean[P_MAX];
	uint32_t u;

	while ((c = getopt_long(argc, argv, "n:r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cpn_parse_u32(optarg, 1, INT32_MAX, &u))
				usage();
			calls = (int)u;
			break;
		case 'r':
			if (cpn_parse_u32(optarg, 1, 1000, &u))
				usage();
			rounds = (int)u;
			break;
		case 'j':
			json = 1;
			break;
		case 'F':
			nofib = 1;
			break;
		case 'C':
			nocache = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (calls < rounds)
		rounds = calls;

	if (make_netns(&if_in, &if_out))
		return 1;
	if (router_open(&r))
		return 1;
	pass = cpn_pass__open_and_load();
	floor = cpn_floor__open_and_load();
	if (!pass || !floor) {
		fprintf(stderr, "bench-xdp: cannot load cpn_pass.bpf.o or cpn_floor.bpf.o\n");
		return 1;
	}

	/* Two nodes, p2c, a tenant without limits; stale_ms long enough for
	 * the whole run so that the live path is what gets timed.
	 */
	if (t_config(&r) || t_add_node(&r, 1, CPN_AF_INET, 100) ||
	    t_add_node(&r, 2, CPN_AF_INET, 100) ||
	    t_add_service(&r, T_SVC, CPN_AF_INET, CPN_POL_P2C, nodes, 2) ||
	    t_add_tenant(&r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL) ||
	    cpn_maps_add_port(&r.maps, if_in) || cpn_maps_add_port(&r.maps, if_out)) {
		fprintf(stderr, "bench-xdp: cannot configure the router\n");
		return 1;
	}
	{
		struct cpn_service svc;

		cpn_maps_get_service(&r.maps, T_SVC, &svc);
		svc.stale_ms = 3600 * 1000;
		cpn_maps_set_service(&r.maps, T_SVC, &svc);
	}
	if (nocache) {
		struct cpn_config cfg;

		cpn_maps_get_config(&r.maps, &cfg);
		cfg.flags |= CPN_CFG_NO_NH_CACHE;
		cpn_maps_set_config(&r.maps, &cfg);
	}
	t_report(&r, 1, 0, 0, 64, 1000, 100);
	t_report(&r, 2, 0, 0, 64, 1000, 100);

	/* Service 2 (VIP .101): jiq; service 3 (VIP .102): full NAT, the
	 * router's address toward the nodes 10.1.0.254; service 4 (VIP .103):
	 * DNAT with reply_check.
	 */
	for (__u16 id = 2; id <= 4; id++) {
		struct cpn_service svc;

		cpn_maps_get_service(&r.maps, T_SVC, &svc);
		svc.vip[0] = htonl(ntohl(svc.vip[0]) + id - 1);
		if (id == 2)
			svc.policy = CPN_POL_JIQ;
		else if (id == 3)
			svc.flags |= CPN_SVC_FULLNAT;
		else
			svc.flags |= CPN_SVC_REPLY_CHECK;
		if (cpn_maps_set_service(&r.maps, id, &svc) ||
		    t_add_tenant(&r, T_TENANT, (__u16[]){T_SVC, 2, 3, 4}, 4, 0, 0, NULL)) {
			fprintf(stderr, "bench-xdp: cannot configure services 2 to 4\n");
			return 1;
		}
	}
	for (__u32 id = 1; id <= 2; id++) {
		struct cpn_node_cfg nc;

		if (bpf_map_lookup_elem(r.maps.nodes, &id, &nc))
			return 1;
		nc.src[0] = htonl(0x0a0100fe); /* 10.1.0.254 */
		if (bpf_map_update_elem(r.maps.nodes, &id, &nc, BPF_ANY))
			return 1;
	}

	memset(p, 0, sizeof(p));
	for (int i = 0; i < P_MAX; i++) {
		p[i].prog_fd = r.prog_fd;
		p[i].r = &r;
		p[i].round_ns = calloc((size_t)rounds, sizeof(double));
	}

	/* REQUEST from the client to the VIP: redirected to a node on out0. */
	cpn_pkt_default(&s, CPN_AF_INET);
	p[P_REQUEST].in_len = cpn_pkt_build(&s, p[P_REQUEST].in, CPN_PKT_MAX);
	p[P_REQUEST].want = XDP_REDIRECT;
	p[P_REQUEST].ifindex = if_in;
	cpn_pkt_locate(p[P_REQUEST].in, p[P_REQUEST].in_len, &v);
	p[P_REQUEST].check_off = v.l3 + 16; /* destination: 10.1.0.x */
	memcpy(p[P_REQUEST].check, (__u8[]){10, 1, 0}, 3);
	p[P_REQUEST].check_len = 3;

	/* The trivial program on the same frame. */
	memcpy(p[P_TRIVIAL].in, p[P_REQUEST].in, p[P_REQUEST].in_len);
	p[P_TRIVIAL].in_len = p[P_REQUEST].in_len;
	p[P_TRIVIAL].prog_fd = bpf_program__fd(pass->progs.cpn_pass);
	p[P_TRIVIAL].want = XDP_PASS;
	p[P_TRIVIAL].ifindex = if_in;

	/* The floor on the same frame: rewritten and sent back. */
	memcpy(p[P_FLOOR].in, p[P_REQUEST].in, p[P_REQUEST].in_len);
	p[P_FLOOR].in_len = p[P_REQUEST].in_len;
	p[P_FLOOR].prog_fd = bpf_program__fd(floor->progs.cpn_floor);
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
	p[P_REQ_CHECK].in_len = cpn_pkt_build(&s, p[P_REQ_CHECK].in, CPN_PKT_MAX);
	p[P_REQ_CHECK].want = XDP_REDIRECT;
	p[P_REQ_CHECK].ifindex = if_in;
	cpn_pkt_locate(p[P_REQ_CHECK].in, p[P_REQ_CHECK].in_len, &v);
	p[P_REQ_CHECK].check_off = v.l3 + 16;
	memcpy(p[P_REQ_CHECK].check, (__u8[]){10, 1, 0}, 3);
	p[P_REQ_CHECK].check_len = 3;
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

	if (nofib) {
		if (sh("sysctl -qw net.ipv4.conf.lo.forwarding=0"))
			return 1;
		for (int i = 0; i < P_MAX; i++)
			if (p[i].want == XDP_REDIRECT) {
				p[i].ifindex = 0;
				p[i].want = XDP_PASS;
			}
	}

	/* Rounds: each path gets calls/rounds calls per round, interleaved. */
	for (long rd = 0; rd < rounds; rd++) {
		long per = calls / rounds + (rd < calls % rounds);

		for (int i = 0; i < P_MAX; i++) {
			__u64 k0 = p[i].kern_ns, n0 = p[i].calls;

			for (long k = 0; k < per; k++)
				if (run_once(&p[i])) {
					fprintf(stderr, "bench-xdp: path %s failed\n",
						path_names[i]);
					return 1;
				}
			p[i].round_ns[rd] = (double)(p[i].kern_ns - k0) / (double)(p[i].calls - n0);
		}
	}

	for (int i = 0; i < P_MAX; i++) {
		med[i] = median(p[i].round_ns, (int)rounds);
		mean[i] = (double)p[i].kern_ns / (double)p[i].calls;
	}
	if (json) {
		printf("{\"bench\":\"xdp\",\"calls_per_path\":%ld,\"rounds\":%ld,\"paths\":[",
		       calls, rounds);
		for (int i = 0; i < P_MAX; i++)
			printf("%s{\"path\":\"%s\",\"ns_per_pkt_median\":%.1f,\"ns_per_pkt_mean\":%"
			       ".1f,"
			       "\"wall_ns_per_call\":%.1f,\"ratio_to_trivial\":%.2f}",
			       i ? "," : "", path_names[i], med[i], mean[i],
			       (double)p[i].wall_ns / (double)p[i].calls, med[i] / med[P_TRIVIAL]);
		printf("]}\n");
	} else {
		printf("bench-xdp: %ld calls per path at repeat=1 in %ld interleaved rounds, every "
		       "return value and rewrite checked\n",
		       calls, rounds);
		printf("%-13s %12s %12s %10s %14s  %s\n", "path", "ns/pkt(med)", "ns/pkt(mean)",
		       "x trivial", "wall ns/call", "what");
		for (int i = 0; i < P_MAX; i++)
			printf("%-13s %12.1f %12.1f %10.2f %14.1f  %s\n", path_names[i], med[i],
			       mean[i], med[i] / med[P_TRIVIAL],
			       (double)p[i].wall_ns / (double)p[i].calls, path_desc[i]);
		printf("ns/pkt: the kernel's duration of each single run (median over rounds); "
		       "wall: per syscall, copy in/out included\n");
	}
	for (int i = 0; i < P_MAX; i++)
		free(p[i].round_ns);
	cpn_pass__destroy(pass);
	cpn_floor__destroy(floor);
	router_close(&r);
	return 0;
}
