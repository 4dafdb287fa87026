// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd's options (after DPDK's EAL arguments and --):
 *
 *   cpn-fwd [EAL args] -- (--config FILE | --pin-dir DIR) [--burst 32] [--seed S]
 *           [--neigh IP=MAC[@PORT]]... [--default-port P] [--metrics ADDR:PORT]
 *           [--stats-interval S]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "fwd_ctl.h"
#include "cpn_addr.h"
#include "cpn_util.h"

void fwd_usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s [EAL args] -- (--config FILE | --pin-dir DIR) [--burst N] [--seed S]\n"
	    "          [--neigh IP=MAC[@PORT]]... [--default-port P] [--metrics ADDR:PORT]\n"
	    "          [--stats-interval S]\n"
	    "  --config FILE        services, nodes, tenants from cpnctl's YAML (SIGHUP re-reads)\n"
	    "  --pin-dir DIR        follow the router pinned at DIR (maps re-read every second,\n"
	    "                       node state shared with the XDP routers)\n"
	    "  --burst N            RX burst, 1..%d (default 32)\n"
	    "  --seed S             seed of the per-lcore generators (deterministic runs)\n"
	    "  --neigh IP=MAC[@P]   static next hop: IPv4/IPv6 address behind port P (default 0)\n"
	    "  --default-port P     where PASS packets go (default: dropped and counted)\n"
	    "  --metrics ADDR:PORT  serve Prometheus /metrics\n"
	    "  --stats-interval S   print counters every S seconds\n",
	    prog, FWD_MAX_BURST);
}

/* "IP=MAC[@PORT]" */
static int neigh_opt(const char *s)
{
	char buf[128], *eq, *at;
	struct neigh_key k = {0};
	__u8 m[6];
	long port = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	eq = strchr(buf, '=');
	if (!eq)
		return -1;
	*eq = 0;
	at = strchr(eq + 1, '@');
	if (at) {
		uint32_t v;

		*at = 0;
		if (cpn_parse_u32(at + 1, 0, FWD_MAX_PORTS - 1, &v))
			return -1;
		port = (int)v;
	}
	if (cpn_addr_parse(buf, k.addr, &k.family))
		return -1;
	if (cpn_mac_parse(eq + 1, m))
		return -1;
	return fwd_neigh_set(&k, m, (__u16)port);
}

int fwd_parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"pin-dir", required_argument, NULL, 'p'},
	    {"burst", required_argument, NULL, 'b'},
	    {"seed", required_argument, NULL, 's'},
	    {"neigh", required_argument, NULL, 'n'},
	    {"default-port", required_argument, NULL, 'd'},
	    {"metrics", required_argument, NULL, 'm'},
	    {"stats-interval", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctl.config_path = optarg;
			break;
		case 'p':
			ctl.pin_dir = optarg;
			break;
		case 'b':
			if (cpn_parse_u64(optarg, 1, FWD_MAX_BURST, &v)) {
				fprintf(stderr, "cpn-fwd: --burst: 1..%d\n", FWD_MAX_BURST);
				return -1;
			}
			fwd.burst = (unsigned int)v;
			break;
		case 's':
			if (cpn_parse_u64(optarg, 0, UINT64_MAX, &v)) {
				fprintf(stderr, "cpn-fwd: --seed: a number\n");
				return -1;
			}
			ctl.seed = v;
			ctl.have_seed = true;
			break;
		case 'n':
			/* checked here, added once the table exists */
			break;
		case 'd':
			if (cpn_parse_u64(optarg, 0, FWD_MAX_PORTS - 1, &v)) {
				fprintf(stderr, "cpn-fwd: --default-port: a port number\n");
				return -1;
			}
			fwd.default_port = (int)v;
			break;
		case 'm':
			ctl.metrics = optarg;
			break;
		case 'i':
			if (cpn_parse_u64(optarg, 0, 86400, &v)) {
				fprintf(stderr, "cpn-fwd: --stats-interval: seconds\n");
				return -1;
			}
			ctl.stats_interval = (unsigned int)v;
			break;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpn-fwd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!ctl.config_path == !ctl.pin_dir) {
		fprintf(stderr, "cpn-fwd: one of --config FILE or --pin-dir DIR\n");
		return -1;
	}
	return 0;
}

int fwd_add_neighbours(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = NULL;

		if (!strcmp(argv[i], "--neigh") && i + 1 < argc)
			a = argv[++i];
		else if (!strncmp(argv[i], "--neigh=", 8))
			a = argv[i] + 8;
		if (a && neigh_opt(a)) {
			fprintf(stderr, "cpn-fwd: --neigh %s: want IP=MAC[@PORT]\n", a);
			return -1;
		}
	}
	return 0;
}
