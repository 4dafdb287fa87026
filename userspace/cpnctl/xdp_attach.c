// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP attachment of the router: see xdp_attach.h. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp_attach.h"

int cpn_xdp_attach(int prog_fd, const char *pin_dir, const char *ifname, bool skb,
		   struct cpn_err *err)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 cur = 0, mine = cpn_prog_id(prog_fd);
	int e;

	(void)pin_dir;
	if (!ifindex) {
		snprintf(err->msg, sizeof(err->msg), "interface %s: no such device", ifname);
		return CPN_EXIT_FAIL;
	}
	if (!bpf_xdp_query_id(ifindex, 0, &cur) && cur) {
		if (cur == mine)
			return CPN_EXIT_OK;
		snprintf(err->msg, sizeof(err->msg),
			 "interface %s already has XDP program id %u that is not cpn's; "
			 "detach it (ip link set dev %s xdp off) and run again",
			 ifname, cur, ifname);
		return CPN_EXIT_FAIL;
	}
	if (!skb) {
		e = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL);
		if (!e)
			return CPN_EXIT_OK;
		fprintf(stderr,
			"cpnctl: warning: %s: native XDP refused (%s); attaching in generic mode, "
			"which is much slower\n",
			ifname, strerror(-e));
	}
	e = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (e) {
		snprintf(err->msg, sizeof(err->msg), "cannot attach XDP to %s: %s", ifname,
			 strerror(-e));
		return CPN_EXIT_FAIL;
	}
	return CPN_EXIT_OK;
}

void cpn_xdp_detach(int prog_fd, const char *pin_dir, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 cur = 0, mine = cpn_prog_id(prog_fd);
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);

	(void)pin_dir;
	if (!ifindex || bpf_xdp_query_id(ifindex, 0, &cur) || cur != mine || !mine)
		return;
	/* Both modes: whichever it is attached in. */
	bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, &xo);
	bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, &xo);
}
