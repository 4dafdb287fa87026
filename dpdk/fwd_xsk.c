// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP -> cpn-fwd hand-off: see fwd_xsk.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif

#include "cpn/maps.h"
#include "cpn_maps.h"
#include "fwd_xsk.h"
#include "cpn_util.h"

#define XSK_PLACEHOLDER "cpn_xsk" /* the program of bpf/cpn_xsk.bpf.o */

/* The program attached to ifindex: id, mode flag, and its name. */
static int attached(int ifindex, __u32 *id, __u32 *mode, char name[BPF_OBJ_NAME_LEN])
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int fd, rc;

	*id = 0;
	*mode = 0;
	name[0] = '\0';
	rc = bpf_xdp_query(ifindex, 0, &q);
	if (rc)
		return rc;
	if (q.attach_mode == XDP_ATTACHED_DRV) {
		*id = q.drv_prog_id;
		*mode = XDP_FLAGS_DRV_MODE;
	} else if (q.attach_mode == XDP_ATTACHED_SKB) {
		*id = q.skb_prog_id;
		*mode = XDP_FLAGS_SKB_MODE;
	} else if (q.attach_mode != XDP_ATTACHED_NONE) {
		return -EOPNOTSUPP; /* offloaded or several: not a cpn interface */
	}
	if (!*id)
		return 0;
	fd = bpf_prog_get_fd_by_id(*id);
	if (fd < 0)
		return -errno;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		snprintf(name, BPF_OBJ_NAME_LEN, "%s", info.name);
	close(fd);
	return 0;
}

int fwd_xsk_prepare(struct fwd_xsk *x, int ifindex, int router_fd, char *err, size_t errlen)
{
	char name[BPF_OBJ_NAME_LEN];
	__u32 id, mode;
	int rc;

	memset(x, 0, sizeof(*x));
	x->ifindex = ifindex;
	rc = attached(ifindex, &id, &mode, name);
	if (rc) {
		snprintf(err, errlen, "cannot query the XDP program of ifindex %d: %s", ifindex,
			 strerror(-rc));
		return rc;
	}
	/* Free: the PMD attaches. Not ours: the PMD refuses and says why. A
	 * cpn_xsk left by a cpn-fwd that died before it adopted the port (the
	 * caller holds the hand-off lock, so none is running): taken off too.
	 */
	if (!id || (id != cpn_prog_id(router_fd) && strcmp(name, XSK_PLACEHOLDER)))
		return 0;
	x->mode = mode;
	x->off_ns = cpn_now_ns();
	rc = bpf_xdp_detach(ifindex, mode, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot take cpn_xdp off ifindex %d for the PMD: %s", ifindex,
			 strerror(-rc));
		return rc;
	}
	x->took_router = true;
	return 0;
}

/* This process's AF_XDP sockets that no port has claimed yet. */
static int claimed[CPN_XSK_SLOTS];
static unsigned int n_claimed;

static bool is_claimed(int fd)
{
	for (unsigned int i = 0; i < n_claimed; i++)
		if (claimed[i] == fd)
			return true;
	return false;
}

int fwd_xsk_claim(struct fwd_xsk *x, __u32 queue, char *err, size_t errlen)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1, n = 0;

	if (!d) {
		snprintf(err, errlen, "/proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		struct stat st;
		int fd, dom = 0;
		socklen_t l = sizeof(dom);

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d) || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) || dom != AF_XDP ||
		    is_claimed(fd))
			continue;
		found = fd;
		n++;
	}
	closedir(d);
	if (n != 1 || x->n_sock >= CPN_XSK_QUEUES || n_claimed >= CPN_XSK_SLOTS) {
		snprintf(err, errlen, "queue %u: %d new AF_XDP sockets after its setup, want 1",
			 queue, n);
		return -ENOENT;
	}
	claimed[n_claimed++] = found;
	x->fd[x->n_sock] = found;
	x->queue[x->n_sock] = queue;
	x->n_sock++;
	return 0;
}

/* Each socket goes into xsks_map at the port's slot for its queue, then its
 * slot into cpn_xsk_slots (in that order: the router sees a slot only with a
 * socket in it).
 */
static int move_sockets(struct fwd_xsk *x, __u32 base, int xsks_fd, int slots_fd)
{
	for (unsigned int i = 0; i < x->n_sock; i++) {
		struct cpn_xsk_key k = {.ifindex = (__u32)x->ifindex, .queue = x->queue[i]};
		__u32 slot = base + x->queue[i];

		if (x->queue[i] >= CPN_XSK_QUEUES)
			return -ERANGE;
		if (bpf_map_update_elem(xsks_fd, &slot, &x->fd[i], 0) ||
		    bpf_map_update_elem(slots_fd, &k, &slot, 0))
			return -errno;
	}
	return 0;
}

int fwd_xsk_adopt(struct fwd_xsk *x, __u16 port, int xsks_fd, int slots_fd, int router_fd,
		  char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	char name[BPF_OBJ_NAME_LEN];
	__u32 id, mode;
	int rc, old_fd;

	rc = attached(x->ifindex, &id, &mode, name);
	if (rc) {
		snprintf(err, errlen, "cannot query the XDP program of ifindex %d: %s", x->ifindex,
			 strerror(-rc));
		return rc;
	}
	if (!id || strcmp(name, XSK_PLACEHOLDER)) {
		if (!x->took_router)
			return 0;
		snprintf(err, errlen,
			 "ifindex %d carried cpn_xdp, but the PMD attached '%s', not cpn_xsk: "
			 "give the port xdp_prog=bpf/cpn_xsk.bpf.o for the hand-off",
			 x->ifindex, id ? name : "nothing");
		return -EINVAL;
	}
	if ((__u32)port * CPN_XSK_QUEUES >= CPN_XSK_SLOTS) {
		snprintf(err, errlen, "port %u: the router has hand-off slots for %d ports", port,
			 CPN_XSK_SLOTS / CPN_XSK_QUEUES);
		return -ERANGE;
	}
	x->slots_fd = slots_fd;
	if (!x->n_sock) {
		snprintf(err, errlen, "no AF_XDP socket of this process on ifindex %d", x->ifindex);
		return -ENOENT;
	}
	rc = move_sockets(x, (__u32)port * CPN_XSK_QUEUES, xsks_fd, slots_fd);
	if (rc) {
		snprintf(err, errlen,
			 "cannot put the AF_XDP sockets of ifindex %d into xsks_map: %s",
			 x->ifindex, strerror(-rc));
		return rc;
	}
	x->moved = true;
	old_fd = bpf_prog_get_fd_by_id(id);
	if (old_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cpn_xsk on ifindex %d: %s", x->ifindex, strerror(-rc));
		return rc;
	}
	ao.old_prog_fd = old_fd;
	rc = bpf_xdp_attach(x->ifindex, router_fd, mode | XDP_FLAGS_REPLACE, &ao);
	close(old_fd);
	if (rc) {
		snprintf(err, errlen, "cannot put cpn_xdp back on ifindex %d: %s", x->ifindex,
			 strerror(-rc));
		return rc;
	}
	x->mode = mode;
	x->adopted = true;
	if (x->took_router)
		x->gap_ns = cpn_now_ns() - x->off_ns;
	return 1;
}

void fwd_xsk_before_close(struct fwd_xsk *x, int router_fd)
{
	char name[BPF_OBJ_NAME_LEN];
	__u32 id, mode;

	if (x->ifindex && !attached(x->ifindex, &id, &mode, name) && id &&
	    id == cpn_prog_id(router_fd)) {
		x->keep = true;
		x->mode = mode;
	}
}

void fwd_xsk_restore(struct fwd_xsk *x, int router_fd)
{
	char name[BPF_OBJ_NAME_LEN];
	__u32 id, mode;
	int rc;

	if (x->moved) { /* the sockets closed with the port: forget their slots */
		for (unsigned int i = 0; i < x->n_sock; i++) {
			struct cpn_xsk_key k = {.ifindex = (__u32)x->ifindex, .queue = x->queue[i]};

			bpf_map_delete_elem(x->slots_fd, &k);
		}
		x->moved = false;
	}
	if (!x->took_router && !x->adopted && !x->keep)
		return;
	if (!attached(x->ifindex, &id, &mode, name) && id) {
		if (id == cpn_prog_id(router_fd))
			goto done; /* still there: nothing to do */
		if (strcmp(name, XSK_PLACEHOLDER))
			goto done; /* someone else's now: leave it */
		bpf_xdp_detach(x->ifindex, mode, NULL);
	}
	rc = bpf_xdp_attach(x->ifindex, router_fd, x->mode ? x->mode : XDP_FLAGS_DRV_MODE, NULL);
	if (rc)
		fprintf(stderr, "cpn-fwd: cannot attach cpn_xdp to ifindex %d again: %s\n",
			x->ifindex, strerror(-rc));
done:
	x->took_router = false;
	x->adopted = false;
	x->keep = false;
}
