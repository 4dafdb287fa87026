// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-fwd's ports: the mbuf pool, one RX and one TX queue per forwarding
 * lcore on every port (RSS over IP and UDP where there are several), and
 * the hand-off of a net_af_xdp port's interface from the pinned cpn_xdp
 * (fwd_xsk.h). The burst functions live here too: fwd_loop.c must not see
 * rte_ethdev.h (fwd.h says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include <rte_common.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "fwd_ctl.h"

__u16 fwd_rx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

__u16 fwd_tx_burst(__u16 port, __u16 queue, struct rte_mbuf **pkts, __u16 n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

/* The device queue of a net_af_xdp port's first RX queue (start_queue=). */
static __u32 af_xdp_start_queue(const struct rte_device *dev)
{
	const struct rte_devargs *da = dev ? rte_dev_devargs(dev) : NULL;
	const char *p = da && da->args ? strstr(da->args, "start_queue=") : NULL;

	if (!p || (p != da->args && p[-1] != ','))
		return 0;
	return (__u32)strtoul(p + strlen("start_queue="), NULL, 0);
}

static int port_setup(__u16 port)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	__u16 nrx = FWD_RX_DESC, ntx = FWD_TX_DESC;
	bool handoff;
	__u32 start_queue = 0;
	char err[256];
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		return rc;
	handoff = ctl.router_fd >= 0 && info.if_index && info.driver_name &&
		  !strcmp(info.driver_name, "net_af_xdp");
	if (handoff)
		ctl.xsk[port].ifindex = (int)info.if_index; /* for the close, whatever happens */
	if (handoff && ctl.lock_fd < 0) {
		ctl.lock_fd = open(ctl.pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ctl.lock_fd < 0 || flock(ctl.lock_fd, LOCK_EX | LOCK_NB)) {
			rc = -errno;
			fprintf(stderr, "cpn-fwd: port %u: %s: %s\n", port, ctl.pin_dir,
				rc == -EWOULDBLOCK
				    ? "another cpn-fwd takes this router's hand-offs; stop it first"
				    : strerror(-rc));
			return rc;
		}
	}
	if (handoff) {
		start_queue = af_xdp_start_queue(info.device);
		rc = fwd_xsk_prepare(&ctl.xsk[port], (int)info.if_index, ctl.router_fd, err,
				     sizeof(err));
		if (rc) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
			return rc;
		}
	}
	if (info.max_rx_queues < ctl.nb_queues || info.max_tx_queues < ctl.nb_queues) {
		fprintf(stderr,
			"cpn-fwd: port %u has %u RX / %u TX queues, %u lcores need one each\n",
			port, info.max_rx_queues, info.max_tx_queues, ctl.nb_queues);
		return -EINVAL;
	}
	if (ctl.nb_queues > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		if (!conf.rx_adv_conf.rss_conf.rss_hf)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	rc = rte_eth_dev_configure(port, ctl.nb_queues, ctl.nb_queues, &conf);
	if (rc)
		return rc;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	if (rc)
		return rc;
	for (__u16 q = 0; q < ctl.nb_queues; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nrx, (unsigned int)rte_eth_dev_socket_id(port),
					    NULL, ctl.pool);
		if (rc)
			return rc;
		if (handoff) {
			rc = fwd_xsk_claim(&ctl.xsk[port], start_queue + q, err, sizeof(err));
			if (rc) {
				fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
				return rc;
			}
		}
		rc = rte_eth_tx_queue_setup(port, q, ntx, (unsigned int)rte_eth_dev_socket_id(port),
					    NULL);
		if (rc)
			return rc;
	}
	rc = rte_eth_dev_start(port);
	if (rc)
		return rc;
	if (handoff) {
		rc = fwd_xsk_adopt(&ctl.xsk[port], port, ctl.maps.xsks, ctl.maps.xsk_slots,
				   ctl.router_fd, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", port, err);
			return rc;
		}
		if (rc > 0)
			printf("cpn-fwd: port %u: hand-off from cpn_xdp on ifindex %u, %u AF_XDP "
			       "socket(s) (cpn_xdp off the interface %.1f ms)\n",
			       port, info.if_index, ctl.xsk[port].n_sock,
			       (double)ctl.xsk[port].gap_ns / 1e6);
	}
	rte_eth_promiscuous_enable(port); /* not every PMD has it: not an error */
	return rte_eth_macaddr_get(port, &fwd.mac[port]);
}

struct rte_hash *fwd_neigh_table(void)
{
	struct rte_hash_parameters p = {0};

	p.name = "cpn_neigh";
	p.entries = FWD_NEIGH_MAX;
	p.key_len = sizeof(struct neigh_key);
	p.hash_func = rte_jhash;
	p.socket_id = SOCKET_ID_ANY;
	p.extra_flag =
	    RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD;
	return rte_hash_create(&p);
}

int fwd_ports_setup(void)
{
	int rc;

	ctl.pool = rte_pktmbuf_pool_create(
	    "cpn_mbufs",
	    RTE_MAX(8191U,
		    fwd.nb_ports * ctl.nb_queues * (FWD_RX_DESC + FWD_TX_DESC + FWD_MAX_BURST) +
			ctl.nb_queues * 512U) +
		FWD_LATE_HELD_MAX,
	    256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!ctl.pool) {
		fprintf(stderr, "cpn-fwd: cannot create the mbuf pool: %s\n",
			rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		rc = port_setup(p);
		if (rc) {
			fprintf(stderr, "cpn-fwd: port %u: %s\n", p, rte_strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void fwd_ports_close(void)
{
	for (__u16 p = 0; p < fwd.nb_ports; p++) {
		rte_eth_dev_stop(p);
		if (ctl.router_fd >= 0)
			fwd_xsk_before_close(&ctl.xsk[p], ctl.router_fd);
		rte_eth_dev_close(p);
		if (ctl.router_fd >= 0)
			fwd_xsk_restore(&ctl.xsk[p], ctl.router_fd);
	}
}
