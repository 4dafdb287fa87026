/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Putting the router's program on an interface, and taking it off: driver
 * (native) mode, generic mode as a fallback with a warning. An interface
 * that carries another XDP program is refused, not taken over.
 */
#ifndef CPNCTL_XDP_ATTACH_H
#define CPNCTL_XDP_ATTACH_H

#include <stdbool.h>

#include "cpnctl.h"

/* Attach the pinned router (prog_fd, pinned under pin_dir) to ifname;
 * already attached: nothing to do. An exit status, err on failure.
 */
int cpn_xdp_attach(int prog_fd, const char *pin_dir, const char *ifname, bool skb,
		   struct cpn_err *err);
/* Detach it from ifname if, and only if, it is the router's. */
void cpn_xdp_detach(int prog_fd, const char *pin_dir, const char *ifname);

#endif /* CPNCTL_XDP_ATTACH_H */
