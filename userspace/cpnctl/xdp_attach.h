/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Putting the router's program on an interface, and taking it off, beside
 * whatever XDP program the interface already runs (docs/OPERATIONS.md,
 * "Other XDP programs"):
 *
 *   nothing there      cpn_xdp attached itself: native mode, generic as a
 *                      fallback with a warning (xdp_attach: libxdp puts it
 *                      in a libxdp dispatcher instead, where one can run);
 *   libxdp dispatcher  cpn_xdp joins it at run priority CPN_XDP_RUN_PRIO,
 *                      chaining on XDP_PASS (xdp-tools' convention);
 *   another program    cpn_xdp_chain (cpn_xdp's body, and a tail call through
 *                      cpn_chain for every packet it passes) takes its place
 *                      atomically; a detach puts it back as atomically.
 *
 * xdp_attach: plain refuses the last two, as a router that must not share.
 */
#ifndef CPNCTL_XDP_ATTACH_H
#define CPNCTL_XDP_ATTACH_H

#include <stdbool.h>

#include "cpnctl.h"

struct cpn_xdp_target {
	int prog_fd;	       /* the pinned cpn_xdp */
	int chain_fd;	       /* the pinned cpn_xdp_chain, or -1 */
	const char *pin_dir;   /* where its maps are pinned */
	struct cpn_maps *maps; /* opened from pin_dir */
	const char *object;    /* the router object it came from; NULL: cpnctl's own */
	bool skb;	       /* generic mode asked for */
	enum cpn_xdp_attach how;
};

/* Attach the router to ifname; already attached (in any of the ways
 * above): nothing to do. An exit status, err on failure (nothing changed).
 */
int cpn_xdp_attach(const struct cpn_xdp_target *t, const char *ifname, struct cpn_err *err);
/* Detach it from ifname if it is there, leaving any other program running. */
void cpn_xdp_detach(const struct cpn_xdp_target *t, const char *ifname);

/* How the router is on ifname, for status: "native", "generic",
 * "libxdp native prio 30", "native, then prog 42 (xdp_count)", or "" when
 * it is not.
 */
void cpn_xdp_describe(const struct cpn_xdp_target *t, const char *ifname, char *buf, size_t len);

#endif /* CPNCTL_XDP_ATTACH_H */
