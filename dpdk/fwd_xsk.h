/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP -> cpn-fwd hand-off on a net_af_xdp port (docs/ARCHITECTURE.md,
 * "Hand-off").
 *
 * One interface serves both data planes: the pinned router (cpn_xdp) stays
 * attached to it and redirects the requests of `dataplane: dpdk` services to
 * the AF_XDP sockets of cpn-fwd through its own xsks_map. DPDK 22.11's
 * net_af_xdp PMD binds its sockets only through a program it attaches
 * itself (xdp_prog=, which must hold a map named xsks_map), and it refuses
 * an interface that already has one. So, per port:
 *
 *   fwd_xsk_prepare()  before the queues are set up: if the pinned router is
 *                      attached, take it off (the PMD's attach would fail);
 *   (the PMD attaches bpf/cpn_xsk.bpf.o and binds its sockets)
 *   fwd_xsk_adopt()    after the port started: put this process's AF_XDP
 *                      sockets of that interface (claimed one by one as
 *                      each RX queue was set up: fwd_xsk_claim())
 *                      into the pinned xsks_map (slot per port and queue,
 *                      named in cpn_xsk_slots), then
 *                      replace cpn_xsk with the pinned router atomically
 *                      (XDP_FLAGS_REPLACE);
 *   fwd_xsk_restore()  after the port closed (the PMD detaches whatever is
 *                      attached, fwd_xsk_before_close() noted it): attach
 *                      the pinned router again, so that the XDP plane goes
 *                      on steering every service.
 */
#ifndef CPN_FWD_XSK_H
#define CPN_FWD_XSK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "cpn/maps.h"

struct fwd_xsk {
	int ifindex;
	__u32 mode;	     /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE of the router */
	bool took_router;    /* prepare detached the pinned router */
	bool adopted;	     /* the router is attached and holds our sockets */
	bool keep;	     /* the router was attached when the port closed */
	unsigned int n_sock; /* sockets claimed, one per RX queue */
	int fd[CPN_XSK_QUEUES];
	__u32 queue[CPN_XSK_QUEUES]; /* the device queue each is bound to */
	bool moved;		     /* they are in the pinned xsks_map */
	int slots_fd;		     /* the pinned cpn_xsk_slots */
	__u64 off_ns;		     /* when the router came off the interface */
	__u64 gap_ns;		     /* how long it was off (prepare -> adopt) */
};

/* router_fd: the pinned cpn_xdp. 0, or -errno with err filled. */
int fwd_xsk_prepare(struct fwd_xsk *x, int ifindex, int router_fd, char *err, size_t errlen);
/* After the setup of RX queue q of the port (the PMD binds its socket
 * there): claim the one AF_XDP socket of this process that is new since,
 * bound to device queue `queue` (start_queue + q). 0 or -errno.
 */
int fwd_xsk_claim(struct fwd_xsk *x, __u32 queue, char *err, size_t errlen);
/* xsks_fd, slots_fd: the pinned xsks_map and cpn_xsk_slots; port: cpn-fwd's
 * port index (its slots are port * CPN_XSK_QUEUES + queue). 1 adopted, 0
 * nothing to adopt (the port's program is not cpn_xsk and the router was not
 * taken off), -errno.
 */
int fwd_xsk_adopt(struct fwd_xsk *x, __u16 port, int xsks_fd, int slots_fd, int router_fd,
		  char *err, size_t errlen);
/* Before rte_eth_dev_close(): the PMD's close detaches whatever program the
 * interface has, even one it never attached (a port refused before its
 * queues were set up); note whether that is the pinned router.
 */
void fwd_xsk_before_close(struct fwd_xsk *x, int router_fd);
void fwd_xsk_restore(struct fwd_xsk *x, int router_fd);

#endif /* CPN_FWD_XSK_H */
