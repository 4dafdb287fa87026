// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench-insns: what one packet costs the router in machine-independent
 * terms, per path: the BPF instructions executed and the helper calls made
 * (map lookups, updates, deletes, clock reads, FIB lookups, redirects, ...).
 *
 * The paths, frames, topology and router configuration are bench-xdp's
 * (xdp_paths.c). Each packet runs twice on the same starting state: in the
 * kernel (BPF_PROG_TEST_RUN, repeat = 1) and in bpf_interp, which executes
 * the instructions libbpf loaded over a snapshot of every map taken just
 * before the kernel's run, counting. The interpreter's action and output
 * frame must equal the kernel's, and so must the counters it leaves in
 * cpn_stats; anything else is an error (exit 1).
 *
 * What makes the two runs see the same state: the process is pinned to one
 * CPU (per-CPU maps: the next-hop cache, the counters, the random state),
 * the router's per-CPU random state is set to one seed before each packet
 * (p2c draws the same two nodes in both runs, and in every run), the
 * next-hop cache lives 10 s (every request finds it warm, as bench-xdp's
 * back-to-back calls do), and each path runs once before it is measured.
 * The clock: the kernel's bpf_ktime_get_ns() read happened between two
 * CLOCK_MONOTONIC reads around the syscall; the interpreter is run with each
 * microsecond within that window (router_ts has microseconds) until its
 * output equals the kernel's, and the window's start when the path reads no
 * clock. A FIB lookup is answered from the namespace's ports and permanent
 * neighbours (xdp_paths.h), as the kernel's FIB answers it there.
 *
 * usage: bench-insns [--json] [--packets N] [--no-nh-cache] [--profile PATH]
 *   N packets per path (default 3), each checked; their counts must agree.
 *   --profile: after the table, how many times each instruction of cpn_xdp
 *   ran for PATH's packet ("pc count", the instructions as loaded; the main
 *   program's offsets are its section's in the object, subprograms follow).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "bpf_interp.h"
#include "cpn_floor.skel.h"
#include "cpn_pass.skel.h"
#include "cpn_router.skel.h"
#include "cpn_test.h"
#include "cpn_util.h"
#include "xdp_paths.h"

#define RNG_SEED       0x9e3779b97f4a7c15ULL
#define NH_TTL_MS      10000
#define MAX_CANDIDATES 100000 /* clock values tried: a 100 ms window */
#define MAX_PACKETS    100
#define WARMUP	       4
#define MAX_AGE_US     27
#define MAX_ATTEMPTS   50

/* ---- the FIB of the namespace ---------------------------------------------- */

struct fib_port {
	int ifindex;
	__u32 addr; /* network order, a /24 */
	__u8 mac[6];
	__u32 mtu;
};
struct fib_neigh {
	int ifindex;
	__u32 ip;
	__u8 mac[6];
};
static struct fib_port ports[2];
static struct fib_neigh neighs[3];

static int parse_mac(const char *s, __u8 mac[6])
{
	unsigned int b[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (__u8)b[i];
	return 0;
}

/* A port's MAC address and MTU, from the kernel (sysfs shows the namespace
 * it was mounted in, not this one).
 */
static int port_info(const char *dev, __u8 mac[6], __u32 *mtu)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc = -1;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (!ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
		if (!ioctl(fd, SIOCGIFMTU, &ifr)) {
			*mtu = (__u32)ifr.ifr_mtu;
			rc = 0;
		}
	}
	close(fd);
	return rc;
}

static int fib_init(void)
{
	for (size_t i = 0; i < 2; i++) {
		ports[i].ifindex = (int)if_nametoindex(xdp_ports[i].dev);
		if (!ports[i].ifindex ||
		    inet_pton(AF_INET, xdp_ports[i].addr, &ports[i].addr) != 1 ||
		    port_info(xdp_ports[i].dev, ports[i].mac, &ports[i].mtu))
			return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		neighs[i].ifindex = (int)if_nametoindex(xdp_neighs[i].dev);
		if (!neighs[i].ifindex ||
		    inet_pton(AF_INET, xdp_neighs[i].ip, &neighs[i].ip) != 1 ||
		    parse_mac(xdp_neighs[i].mac, neighs[i].mac))
			return -1;
	}
	return 0;
}

/* bpf_ipv4_fib_lookup() over connected /24 routes: forwarding on every
 * port of ours, the MTU checked, the neighbour permanent or missing.
 */
static int fib_lookup(void *user, struct bpf_fib_lookup *p, __u32 flags)
{
	const struct fib_port *in = NULL, *out = NULL;
	__u32 mask = htonl(0xffffff00);

	(void)user;
	if (flags || p->family != AF_INET)
		return BPF_FIB_LKUP_RET_NOT_FWDED;
	for (size_t i = 0; i < 2; i++) {
		if (ports[i].ifindex == (int)p->ifindex)
			in = &ports[i];
		if ((p->ipv4_dst & mask) == (ports[i].addr & mask))
			out = &ports[i];
	}
	if (!in)
		return BPF_FIB_LKUP_RET_FWD_DISABLED;
	if (!out || p->ipv4_dst == out->addr) /* no route, or a local one */
		return BPF_FIB_LKUP_RET_NOT_FWDED;
	p->rt_metric = 0;
	if (p->tot_len > out->mtu) {
		p->mtu_result = (__u16)out->mtu;
		return BPF_FIB_LKUP_RET_FRAG_NEEDED;
	}
	p->ifindex = (__u32)out->ifindex;
	for (size_t i = 0; i < 3; i++)
		if (neighs[i].ifindex == out->ifindex && neighs[i].ip == p->ipv4_dst) {
			memcpy(p->dmac, neighs[i].mac, 6);
			memcpy(p->smac, out->mac, 6);
			p->h_vlan_proto = 0;
			p->h_vlan_TCI = 0;
			p->mtu_result = (__u16)out->mtu;
			return BPF_FIB_LKUP_RET_SUCCESS;
		}
	return BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* ---- one path -------------------------------------------------------------- */

struct prog {
	const char *name;
	int fd;
	const struct bpf_insn *insns;
	size_t n;
	__u32 xlated, jited; /* the kernel's, after the verifier and the JIT */
	struct bi_vm *vm;
};

struct result {
	struct bi_counts c;
	__u32 retval;
	int match, stable, clock_reads;
	char why[200];
};

static __u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static int seed_rng(struct router *r, int ncpus)
{
	(void)ncpus;
	return cpn_maps_seed_rng(&r->maps, RNG_SEED);
}

static int kernel_run(struct path_run *p, __u8 *out, __u32 *out_len, __u32 *ret)
{
	struct xdp_md ctx = {.data_end = (__u32)p->in_len, .ingress_ifindex = (__u32)p->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->in, .data_size_in = (__u32)p->in_len,
		    .data_out = out, .data_size_out = 4096, .repeat = 1, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));

	if (bpf_prog_test_run_opts(p->prog_fd, &opts))
		return -1;
	*out_len = opts.data_size_out;
	*ret = opts.retval;
	return 0;
}

/* The checks bench-xdp makes on every call. */
static int kernel_ok(struct path_run *p, const __u8 *out, __u32 len, __u32 ret, char *why,
		     size_t wl)
{
	if ((int)ret != p->want) {
		snprintf(why, wl, "kernel: action %u, expected %d", ret, p->want);
		return 0;
	}
	if (p->check_len && (len < p->check_off + p->check_len ||
			     memcmp(out + p->check_off, p->check, p->check_len))) {
		snprintf(why, wl, "kernel: output differs from the expected rewrite");
		return 0;
	}
	return 1;
}

/* What every packet meets: both nodes as configured (reported idle just
 * now), the random state seeded, the path's own state (pre). A path's
 * counts would otherwise follow the history of the runs before it (the
 * learned means, the liveness deadlines), not the packet.
 */
static struct cpn_node canon[3];
static __u32 *profile_hits; /* the profiled path's packet, or NULL */
static int profile_path = -1;
static int if_in_g, if_out_g, pass_fd_g, floor_fd_g;

static int prepare(struct path_run *p, int ncpus)
{
	for (int id = 1; id <= 2; id++) {
		p->r->maps.state[id] = canon[id];
		p->r->maps.state[id].last_report_ns = cpn_now_ns();
	}
	return seed_rng(p->r, ncpus) || (p->pre && p->pre(p)) ? -1 : 0;
}

/* The path's frame built again: a REPLY's router_ts is 1 ms before now. */
static void rebuild(struct path_run *p, int i)
{
	static struct path_run fresh[P_MAX];

	memset(fresh, 0, sizeof(fresh));
	xdp_paths_build(fresh, p->r, pass_fd_g, floor_fd_g, if_in_g, if_out_g);
	memcpy(p->in, fresh[i].in, fresh[i].in_len);
	p->in_len = fresh[i].in_len;
}

/* One packet: the kernel's run and the interpreter's from the same state. */
static int one_packet(struct path_run *p, int i, struct prog *pg, int cpu, int ncpus, __u64 tai_off,
		      struct result *res)
{
	static __u8 kout[4096];
	static struct bi_run run;
	__u32 klen, kret;
	__u64 tb, t0, t1, t;
	int tried = 0;

	for (int attempt = 0;; attempt++) {
		/* WARMUP runs unmeasured: the next hop cached, as in a steady
		 * stream.
		 */
		for (int w = 0; w < WARMUP; w++) {
			if (prepare(p, ncpus) || kernel_run(p, kout, &klen, &kret)) {
				snprintf(res->why, sizeof(res->why), "kernel run: %s",
					 strerror(errno));
				return -1;
			}
			xdp_paths_after(p);
		}
		if (prepare(p, ncpus)) {
			snprintf(res->why, sizeof(res->why), "cannot prepare the run: %s",
				 strerror(errno));
			return -1;
		}
		if (bi_snapshot(pg->vm, cpu, res->why, sizeof(res->why)))
			return -1;
		rebuild(p, i); /* once to warm the caches the snapshot cooled */
		tb = clock_ns(CLOCK_MONOTONIC);
		rebuild(p, i);
		t0 = clock_ns(CLOCK_MONOTONIC);
		if (kernel_run(p, kout, &klen, &kret)) {
			snprintf(res->why, sizeof(res->why), "kernel run: %s", strerror(errno));
			return -1;
		}
		t1 = clock_ns(CLOCK_MONOTONIC);
		xdp_paths_after(p);
		/* A REPLY's path sample is (now - router_ts) - worker_us =
		 * 100 us + the frame's age: in the histogram's bucket of
		 * [64, 128) us while the run came within MAX_AGE_US of the
		 * build. One that came later (preempted) is run again.
		 */
		if (t1 / 1000 - tb / 1000 <= MAX_AGE_US)
			break;
		if (attempt == MAX_ATTEMPTS) {
			snprintf(res->why, sizeof(res->why),
				 "no run within %d us of its frame in %d attempts: the CPU is too "
				 "busy",
				 MAX_AGE_US, MAX_ATTEMPTS);
			return -1;
		}
	}
	if (!kernel_ok(p, kout, klen, kret, res->why, sizeof(res->why)))
		return -1;

	memset(&run, 0, sizeof(run));
	run.insns = pg->insns;
	run.n_insns = pg->n;
	run.frame = p->in;
	run.len = p->in_len;
	run.ingress_ifindex = (__u32)p->ifindex;
	run.fib = fib_lookup;
	if (i == profile_path && pg->fd == p->r->prog_fd)
		run.hits = profile_hits;
	/* Every microsecond of [t0, t1], from t0 on. */
	for (t = t0; t <= t1 && tried < MAX_CANDIDATES; t = (t / 1000 + 1) * 1000, tried++) {
		run.ktime_ns = t;
		run.tai_ns = t + tai_off;
		if (bi_exec(pg->vm, &run)) {
			snprintf(res->why, sizeof(res->why), "interpreter: %s", run.err);
			return -1;
		}
		if (run.retval == kret && run.out_len == klen && !memcmp(run.out, kout, klen))
			break;
		/* no clock read: another clock value changes nothing */
		if (!run.counts.helpers[BPF_FUNC_ktime_get_ns] &&
		    !run.counts.helpers[BPF_FUNC_ktime_get_tai_ns])
			break;
	}
	res->c = run.counts;
	res->retval = run.retval;
	if (run.retval != kret || run.out_len != klen || memcmp(run.out, kout, klen)) {
		size_t d = 0;

		while (d < klen && d < run.out_len && run.out[d] == kout[d])
			d++;
		snprintf(res->why, sizeof(res->why),
			 "interpreter: action %u, %zu bytes; kernel: action %u, %u bytes; first "
			 "difference at byte %zu",
			 run.retval, run.out_len, kret, klen, d);
		res->match = 0;
		return 0;
	}
	if (pg->fd == p->r->prog_fd) {
		int rc = bi_compare_map(pg->vm, "cpn_stats", res->why, sizeof(res->why));

		if (rc) {
			res->match = 0;
			return rc < 0 ? -1 : 0;
		}
	}
	res->match = 1;
	return 0;
}

static int prog_init(struct prog *pg, const char *name, struct bpf_program *bp,
		     struct bpf_object *obj)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	char err[160];

	pg->name = name;
	pg->fd = bpf_program__fd(bp);
	pg->insns = bpf_program__insns(bp);
	pg->n = bpf_program__insn_cnt(bp);
	if (!pg->insns || !pg->n) {
		fprintf(stderr, "bench-insns: %s: no instructions after load\n", name);
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(pg->fd, &info, &len)) {
		fprintf(stderr, "bench-insns: %s: prog info: %s\n", name, strerror(errno));
		return -1;
	}
	pg->xlated = info.xlated_prog_len / 8;
	pg->jited = info.jited_prog_len;
	pg->vm = bi_new(obj, err, sizeof(err));
	if (!pg->vm) {
		fprintf(stderr, "bench-insns: %s: %s\n", name, err);
		return -1;
	}
	return 0;
}

static __u64 h(const struct bi_counts *c, int id)
{
	return c->helpers[id];
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-insns [--json] [--packets N] [--no-nh-cache] [--profile "
			"PATH]\n"
			"  N packets per path (default 3, at most 100), each checked against "
			"the kernel's run\n"
			"  --profile PATH: then each cpn_xdp instruction's count for PATH\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, 0, 'j'},	  {"packets", required_argument, 0, 'n'},
	    {"no-nh-cache", no_argument, 0, 'C'}, {"profile", required_argument, 0, 'p'},
	    {"help", no_argument, 0, 'h'},	  {0, 0, 0, 0}};
	int json = 0, nocache = 0, c, if_in = 0, if_out = 0, cpu, ncpus, bad = 0, rc = 1,
	    opened = 0;
	__u32 packets = 3;
	struct path_run p[P_MAX];
	struct result res[P_MAX];
	struct prog progs[3] = {0};
	struct cpn_pass *pass = NULL;
	struct cpn_floor *floor = NULL;
	struct router r;
	cpu_set_t set;
	__u64 tai_off;

	while ((c = getopt_long(argc, argv, "jn:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'n':
			if (cpn_parse_u32(optarg, 1, MAX_PACKETS, &packets))
				usage();
			break;
		case 'C':
			nocache = 1;
			break;
		case 'p':
			for (int i = 0; i < P_MAX; i++)
				if (!strcmp(optarg, path_names[i]))
					profile_path = i;
			if (profile_path < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (json && profile_path >= 0))
		usage();
	xdp_paths_prog = "bench-insns";

	/* One CPU: the kernel's runs and the per-CPU maps read are that CPU's. */
	cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "bench-insns: cannot pin to a CPU: %s\n", strerror(errno));
		return 1;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return 1;

	if (make_netns(&if_in, &if_out))
		goto out;
	if (fib_init()) {
		fprintf(stderr, "bench-insns: cannot read the namespace's ports\n");
		goto out;
	}
	if (router_open(&r))
		goto out;
	opened = 1;
	pass = cpn_pass__open_and_load();
	floor = cpn_floor__open_and_load();
	if (!pass || !floor) {
		fprintf(stderr, "bench-insns: cannot load cpn_pass.bpf.o or cpn_floor.bpf.o\n");
		goto out;
	}
	if (xdp_paths_config(&r, if_in, if_out, nocache))
		goto out;
	{
		struct cpn_config cfg;

		if (cpn_maps_get_config(&r.maps, &cfg))
			goto out;
		cfg.nh_ttl_ms = NH_TTL_MS;
		if (cpn_maps_set_config(&r.maps, &cfg))
			goto out;
	}
	memcpy(canon, r.maps.state, sizeof(canon));
	if_in_g = if_in;
	if_out_g = if_out;
	pass_fd_g = bpf_program__fd(pass->progs.cpn_pass);
	floor_fd_g = bpf_program__fd(floor->progs.cpn_floor);
	memset(p, 0, sizeof(p));
	xdp_paths_build(p, &r, pass_fd_g, floor_fd_g, if_in, if_out);

	if (prog_init(&progs[0], "cpn_xdp", r.skel->progs.cpn_xdp, r.skel->obj) ||
	    prog_init(&progs[1], "cpn_pass", pass->progs.cpn_pass, pass->obj) ||
	    prog_init(&progs[2], "cpn_floor", floor->progs.cpn_floor, floor->obj))
		goto out;
	tai_off = clock_ns(CLOCK_TAI) - clock_ns(CLOCK_MONOTONIC);
	if (profile_path >= 0) {
		profile_hits = calloc(progs[0].n, sizeof(*profile_hits));
		if (!profile_hits)
			goto out;
	}

	memset(res, 0, sizeof(res));
	for (int i = 0; i < P_MAX; i++) {
		struct prog *pg = NULL;

		for (int k = 0; k < 3; k++)
			if (progs[k].fd == p[i].prog_fd)
				pg = &progs[k];
		if (!pg)
			goto out;
		res[i].stable = 1;
		for (__u32 n = 0; n < packets; n++) {
			struct result one;

			memset(&one, 0, sizeof(one));
			if (one_packet(&p[i], i, pg, cpu, ncpus, tai_off, &one)) {
				fprintf(stderr, "bench-insns: path %s: %s\n", path_names[i],
					one.why);
				goto out;
			}
			if (!one.match) {
				fprintf(stderr,
					"bench-insns: path %s: differs from the kernel: %s\n",
					path_names[i], one.why);
				bad = 1;
			}
			if (n == 0) {
				res[i] = one;
				res[i].stable = 1;
			} else {
				if (memcmp(&one.c, &res[i].c, sizeof(one.c))) {
					fprintf(stderr,
						"bench-insns: path %s: packet %u counted %llu "
						"instructions, packet 1 %llu\n",
						path_names[i], n + 1,
						(unsigned long long)one.c.insns,
						(unsigned long long)res[i].c.insns);
					res[i].stable = 0;
					bad = 1;
				}
				res[i].match &= one.match;
			}
		}
	}

	if (json) {
		printf("{\"bench\":\"insns\",\"packets_per_path\":%u,\"programs\":[", packets);
		for (int k = 0; k < 3; k++)
			printf("%s{\"program\":\"%s\",\"insns\":%zu,\"xlated_insns\":%u,"
			       "\"jited_bytes\":%u}",
			       k ? "," : "", progs[k].name, progs[k].n, progs[k].xlated,
			       progs[k].jited);
		printf("],\"paths\":[");
		for (int i = 0; i < P_MAX; i++) {
			const struct bi_counts *ct = &res[i].c;
			int first = 1;

			printf("%s{\"path\":\"%s\",\"insns\":%llu,\"helper_calls\":%llu,"
			       "\"map_lookups\":%llu,\"map_updates\":%llu,\"map_deletes\":%llu,"
			       "\"subprog_calls\":%llu,\"max_depth\":%u,\"retval\":%u,"
			       "\"kernel_match\":%s,\"stable\":%s,\"helpers\":{",
			       i ? "," : "", path_names[i], (unsigned long long)ct->insns,
			       (unsigned long long)ct->helper_calls,
			       (unsigned long long)h(ct, BPF_FUNC_map_lookup_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_update_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_delete_elem),
			       (unsigned long long)ct->subprog_calls, ct->max_depth, res[i].retval,
			       res[i].match ? "true" : "false", res[i].stable ? "true" : "false");
			for (int id = 0; id < BI_MAX_HELPER; id++)
				if (ct->helpers[id]) {
					printf("%s\"%s\":%llu", first ? "" : ",",
					       bi_helper_name(id) ? bi_helper_name(id) : "?",
					       (unsigned long long)ct->helpers[id]);
					first = 0;
				}
			printf("}}");
		}
		/* The report's table (bench/bench-report.py renders "tables"). */
		printf("],\"tables\":[{\"head\":[\"path\",\"BPF insns\",\"helper calls\",\"map "
		       "lookups\",\"updates\",\"deletes\",\"clock reads\",\"FIB "
		       "lookups\",\"redirects\",\"subprogram calls\",\"= kernel\"],\"rows\":[");
		for (int i = 0; i < P_MAX; i++) {
			const struct bi_counts *ct = &res[i].c;

			printf("%s[\"%s\",%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,\"%s\"]",
			       i ? "," : "", path_names[i], (unsigned long long)ct->insns,
			       (unsigned long long)ct->helper_calls,
			       (unsigned long long)h(ct, BPF_FUNC_map_lookup_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_update_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_delete_elem),
			       (unsigned long long)(h(ct, BPF_FUNC_ktime_get_ns) +
						    h(ct, BPF_FUNC_ktime_get_tai_ns)),
			       (unsigned long long)h(ct, BPF_FUNC_fib_lookup),
			       (unsigned long long)h(ct, BPF_FUNC_redirect_map),
			       (unsigned long long)ct->subprog_calls,
			       res[i].match && res[i].stable ? "yes" : "NO");
		}
		printf("]},{\"title\":\"The programs: instructions as loaded, after the kernel's "
		       "verifier, and bytes of JIT code\",\"head\":[\"program\",\"insns "
		       "loaded\",\"insns after the verifier\",\"JIT bytes\"],\"rows\":[");
		for (int k = 0; k < 3; k++)
			printf("%s[\"%s\",%zu,%u,%u]", k ? "," : "", progs[k].name, progs[k].n,
			       progs[k].xlated, progs[k].jited);
		printf("]}],\"summary\":{\"request_insns\":%llu,\"request_map_lookups\":%llu,"
		       "\"all_match_kernel\":%s}}\n",
		       (unsigned long long)res[P_REQUEST].c.insns,
		       (unsigned long long)h(&res[P_REQUEST].c, BPF_FUNC_map_lookup_elem),
		       bad ? "false" : "true");
	} else {
		printf("bench-insns: one packet per path, %u times each: BPF instructions executed "
		       "and "
		       "helper calls, every action and output frame checked against the kernel's "
		       "run\n",
		       packets);
		printf("%-13s %7s %8s %8s %8s %8s %6s %4s %9s %8s  %s\n", "path", "insns",
		       "helpers", "lookups", "updates", "deletes", "clock", "fib", "redirects",
		       "subprogs", "= kernel");
		for (int i = 0; i < P_MAX; i++) {
			const struct bi_counts *ct = &res[i].c;

			printf("%-13s %7llu %8llu %8llu %8llu %8llu %6llu %4llu %9llu %8llu  %s\n",
			       path_names[i], (unsigned long long)ct->insns,
			       (unsigned long long)ct->helper_calls,
			       (unsigned long long)h(ct, BPF_FUNC_map_lookup_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_update_elem),
			       (unsigned long long)h(ct, BPF_FUNC_map_delete_elem),
			       (unsigned long long)(h(ct, BPF_FUNC_ktime_get_ns) +
						    h(ct, BPF_FUNC_ktime_get_tai_ns)),
			       (unsigned long long)h(ct, BPF_FUNC_fib_lookup),
			       (unsigned long long)h(ct, BPF_FUNC_redirect_map),
			       (unsigned long long)ct->subprog_calls,
			       res[i].match && res[i].stable ? "yes" : "NO");
		}
		for (int k = 0; k < 3; k++)
			printf("program %-9s %6zu insns loaded, %6u after the verifier, %6u bytes "
			       "JITed\n",
			       progs[k].name, progs[k].n, progs[k].xlated, progs[k].jited);
		for (size_t pc = 0; profile_hits && pc < progs[0].n; pc++) {
			const struct bpf_insn *in = &progs[0].insns[pc];

			if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL)
				printf("profile-call %zu %zu\n", pc,
				       pc + 1 + (size_t)(long)in->imm);
			if (profile_hits[pc])
				printf("profile %s %zu %u\n", path_names[profile_path], pc,
				       profile_hits[pc]);
		}
	}
	rc = bad;
out:
	for (int k = 0; k < 3; k++)
		bi_free(progs[k].vm);
	free(profile_hits);
	cpn_pass__destroy(pass);
	cpn_floor__destroy(floor);
	if (opened)
		router_close(&r);
	return rc;
}
