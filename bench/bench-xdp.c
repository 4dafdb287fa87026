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
#include "xdp_paths.h"

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
	xdp_paths_after(p);
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

	if (xdp_paths_config(&r, if_in, if_out, nocache))
		return 1;

	memset(p, 0, sizeof(p));
	xdp_paths_build(p, &r, bpf_program__fd(pass->progs.cpn_pass),
			bpf_program__fd(floor->progs.cpn_floor), if_in, if_out);
	for (int i = 0; i < P_MAX; i++)
		p[i].round_ns = calloc((size_t)rounds, sizeof(double));

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
