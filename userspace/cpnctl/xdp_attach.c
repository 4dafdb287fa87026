// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP attachment of the router: see xdp_attach.h. */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "xdp_attach.h"
#include "cpn_router.skel.h"

/* ---- what is on an interface ------------------------------------------- */

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Is program `id` a cpn_xdp of this router: one that uses its pinned
 * cpn_stats (the pinned program, or a copy libxdp loaded into a dispatcher)?
 * name: the program's name, for messages.
 */
static bool prog_is_ours(const struct cpn_xdp_target *t, __u32 id, char *name, size_t len)
{
	__u32 ids[64], want = t->maps ? map_id(t->maps->stats) : 0;
	struct bpf_prog_info info = {0};
	__u32 ilen = sizeof(info);
	bool ours = false;
	int fd = bpf_prog_get_fd_by_id(id);

	if (name && len)
		snprintf(name, len, "?");
	if (fd < 0)
		return false;
	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++)
			ours |= want && ids[i] == want;
		if (name && len)
			snprintf(name, len, "%s", info.name);
	}
	close(fd);
	return ours;
}

static __u32 mode_flag(__u8 attach_mode)
{
	return attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

/* The interface's chain slot, if cpnctl chained a program there. */
static int chain_slot(const struct cpn_xdp_target *t, int ifindex, __u32 *slot)
{
	__u32 k = (__u32)ifindex;

	if (!t->maps)
		return -ENOENT;
	return bpf_map_lookup_elem(t->maps->chain_slots, &k, slot) ? -errno : 0;
}

/* ---- libxdp: quiet, but keep the last warning for the message ---------- */

/* The last warning; and libxdp's first word on its dispatcher, which says
 * best why it could not use one.
 */
static char last_warning[256], dispatcher_warning[256];

static int keep_warning(const char *fmt, va_list ap, bool dispatcher)
{
	char buf[sizeof(last_warning)];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n)
		memcpy(last_warning, buf, n + 1);
	if (n && dispatcher && !dispatcher_warning[0] && strstr(buf, "dispatcher"))
		memcpy(dispatcher_warning, buf, n + 1);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	return level <= LIBXDP_INFO ? keep_warning(fmt, ap, true) : 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? keep_warning(fmt, ap, false) : 0;
}

/* A copy of the router for libxdp to load into a dispatcher: the same
 * object as the pinned program, its maps the pinned ones (libbpf checks
 * that each matches before it reuses it).
 */
static struct xdp_program *component(const struct cpn_xdp_target *t, struct bpf_object **objp,
				     struct cpn_err *err)
{
	struct bpf_object *obj;
	struct xdp_program *prog;
	struct bpf_map *m;
	char path[512];
	size_t sz;

	if (t->object) {
		obj = bpf_object__open_file(t->object, NULL);
	} else {
		const void *elf = cpn_router__elf_bytes(&sz);

		obj = bpf_object__open_mem(elf, sz, NULL);
	}
	if (!obj) {
		snprintf(err->msg, sizeof(err->msg), "cannot open the router object: %s",
			 strerror(errno));
		return NULL;
	}
	bpf_object__for_each_map(m, obj)
	{
		snprintf(path, sizeof(path), "%s/%s", t->pin_dir, bpf_map__name(m));
		if (bpf_map__set_pin_path(m, path)) {
			snprintf(err->msg, sizeof(err->msg), "map %s: bad pin path",
				 bpf_map__name(m));
			bpf_object__close(obj);
			return NULL;
		}
	}
	{
		/* The dispatcher is the chain here: cpn_xdp alone. */
		struct bpf_program *chain = bpf_object__find_program_by_name(obj, "cpn_xdp_chain");
		DECLARE_LIBXDP_OPTS(xdp_program_opts, xo, .obj = obj, .prog_name = "cpn_xdp");

		if (chain)
			bpf_program__set_autoload(chain, false);
		prog = xdp_program__create(&xo);
	}
	if (!prog || libxdp_get_error(prog)) {
		snprintf(err->msg, sizeof(err->msg), "libxdp cannot use the router object");
		bpf_object__close(obj);
		return NULL;
	}
	xdp_program__set_run_prio(prog, CPN_XDP_RUN_PRIO);
	xdp_program__set_chain_call_enabled(prog, XDP_PASS, true);
	*objp = obj;
	return prog;
}

/* Put the router into the interface's libxdp dispatcher (made if there is
 * none) in `mode`. 0, or -errno with err saying why libxdp could not.
 */
static int libxdp_join(const struct cpn_xdp_target *t, int ifindex, enum xdp_attach_mode mode,
		       struct cpn_err *err)
{
	libxdp_print_fn_t old_xdp = libxdp_set_print(libxdp_print);
	libbpf_print_fn_t old_bpf = libbpf_set_print(libbpf_print);
	struct bpf_object *obj = NULL;
	struct xdp_program *prog;
	struct xdp_multiprog *mp;
	int rc;

	last_warning[0] = 0;
	prog = component(t, &obj, err);
	if (!prog) {
		rc = -EINVAL;
		goto out;
	}
	rc = xdp_program__attach(prog, ifindex, mode, 0);
	/* Where the kernel cannot run a dispatcher libxdp falls back to a
	 * plain attach of its own copy: not what is wanted here.
	 */
	mp = rc ? NULL : xdp_multiprog__get_from_ifindex(ifindex);
	if (!rc && (libxdp_get_error(mp) || !mp || xdp_multiprog__is_legacy(mp))) {
		xdp_program__detach(prog, ifindex, mode, 0);
		rc = -EOPNOTSUPP;
	}
	if (!libxdp_get_error(mp) && mp)
		xdp_multiprog__close(mp);
	if (rc)
		snprintf(err->msg, sizeof(err->msg), "%s",
			 dispatcher_warning[0] ? dispatcher_warning
			 : last_warning[0]     ? last_warning
					       : strerror(-rc));
	xdp_program__close(prog);
out:
	if (obj)
		bpf_object__close(obj);
	libxdp_set_print(old_xdp);
	libbpf_set_print(old_bpf);
	return rc;
}

/* ---- the ways on -------------------------------------------------------- */

static int plain_attach(const struct cpn_xdp_target *t, int ifindex, const char *ifname,
			struct cpn_err *err)
{
	int e;

	if (!t->skb) {
		e = bpf_xdp_attach(ifindex, t->prog_fd, XDP_FLAGS_DRV_MODE, NULL);
		if (!e)
			return CPN_EXIT_OK;
		fprintf(stderr,
			"cpnctl: warning: %s: native XDP refused (%s); attaching in generic mode, "
			"which is much slower\n",
			ifname, strerror(-e));
	}
	e = bpf_xdp_attach(ifindex, t->prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (e) {
		snprintf(err->msg, sizeof(err->msg), "cannot attach XDP to %s: %s", ifname,
			 strerror(-e));
		return CPN_EXIT_FAIL;
	}
	return CPN_EXIT_OK;
}

/* A program attached without a dispatcher: cpn_xdp takes its place in the
 * same mode, atomically (XDP_FLAGS_REPLACE), and tail-calls it.
 */
static int chain_attach(const struct cpn_xdp_target *t, int ifindex, const char *ifname,
			__u32 other, __u8 attach_mode, struct cpn_err *err)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	__u32 k = (__u32)ifindex, slot, used[CPN_CHAIN_SLOTS] = {0}, key, next;
	char name[BPF_OBJ_NAME_LEN];
	int fd, e;

	prog_is_ours(t, other, name, sizeof(name));
	if (t->chain_fd < 0) {
		snprintf(err->msg, sizeof(err->msg),
			 "%s carries XDP program %u (%s), and the router pinned at %s has no "
			 "cpn_xdp_chain to run before it (pinned by an older cpn): run 'cpnctl "
			 "down' and 'cpnctl up', or detach it (ip link set dev %s xdp off)",
			 ifname, other, name, t->pin_dir, ifname);
		return CPN_EXIT_FAIL;
	}
	/* A free slot: one that no interface names. */
	for (e = bpf_map_get_next_key(t->maps->chain_slots, NULL, &key); !e;
	     e = bpf_map_get_next_key(t->maps->chain_slots, &key, &next), key = next)
		if (!bpf_map_lookup_elem(t->maps->chain_slots, &key, &slot) &&
		    slot < CPN_CHAIN_SLOTS)
			used[slot] = 1;
	for (slot = 0; slot < CPN_CHAIN_SLOTS && used[slot]; slot++)
		;
	if (slot == CPN_CHAIN_SLOTS) {
		snprintf(err->msg, sizeof(err->msg),
			 "%s: XDP program %u (%s) is there, and cpn already runs before %d "
			 "other programs: detach it (ip link set dev %s xdp off)",
			 ifname, other, name, CPN_CHAIN_SLOTS, ifname);
		return CPN_EXIT_FAIL;
	}
	fd = bpf_prog_get_fd_by_id(other);
	if (fd < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: XDP program %u: %s", ifname, other,
			 strerror(errno));
		return CPN_EXIT_FAIL;
	}
	if (bpf_map_update_elem(t->maps->chain, &slot, &fd, 0)) {
		e = errno;
		close(fd);
		snprintf(err->msg, sizeof(err->msg),
			 "%s carries XDP program %u (%s), which cpn cannot hand packets to (%s: "
			 "it must be a plain XDP program, without frags); load it through "
			 "libxdp (xdp-loader) or detach it (ip link set dev %s xdp off)",
			 ifname, other, name, strerror(e), ifname);
		return CPN_EXIT_FAIL;
	}
	if (bpf_map_update_elem(t->maps->chain_slots, &k, &slot, 0)) {
		e = errno;
		goto undo;
	}
	ao.old_prog_fd = fd;
	e = -bpf_xdp_attach(ifindex, t->chain_fd, mode_flag(attach_mode) | XDP_FLAGS_REPLACE, &ao);
	if (!e) {
		close(fd);
		fprintf(stderr,
			"cpnctl: %s: XDP program %u (%s) was there: cpn_xdp runs first and hands "
			"it every packet it does not take\n",
			ifname, other, name);
		return CPN_EXIT_OK;
	}
	bpf_map_delete_elem(t->maps->chain_slots, &k);
undo:
	bpf_map_delete_elem(t->maps->chain, &slot);
	close(fd);
	snprintf(err->msg, sizeof(err->msg), "cannot put cpn_xdp before program %u (%s) on %s: %s",
		 other, name, ifname, strerror(e));
	return CPN_EXIT_FAIL;
}

int cpn_xdp_attach(const struct cpn_xdp_target *t, const char *ifname, struct cpn_err *err)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 mine = cpn_prog_id(t->prog_fd);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_multiprog *mp;
	char name[BPF_OBJ_NAME_LEN];
	enum xdp_attach_mode mode = XDP_MODE_NATIVE;
	bool dispatcher, ours = false;
	int rc;

	if (!ifindex) {
		snprintf(err->msg, sizeof(err->msg), "interface %s: no such device", ifname);
		return CPN_EXIT_FAIL;
	}
	if (bpf_xdp_query(ifindex, 0, &q)) {
		snprintf(err->msg, sizeof(err->msg), "interface %s: cannot query XDP", ifname);
		return CPN_EXIT_FAIL;
	}
	if (!q.prog_id) {
		if (t->how != CPN_XDP_ATTACH_LIBXDP)
			return plain_attach(t, ifindex, ifname, err);
		mode = t->skb ? XDP_MODE_SKB : XDP_MODE_NATIVE;
		dispatcher_warning[0] = 0; /* libxdp says it once per process */
		rc = libxdp_join(t, ifindex, mode, err);
		if (rc && mode == XDP_MODE_NATIVE && rc != -EOPNOTSUPP)
			rc = libxdp_join(t, ifindex, mode = XDP_MODE_SKB, err);
		if (!rc)
			return CPN_EXIT_OK;
		fprintf(stderr,
			"cpnctl: warning: %s: libxdp's dispatcher cannot be used here (%s); "
			"attaching cpn_xdp on its own\n",
			ifname, err->msg);
		err->msg[0] = 0;
		return plain_attach(t, ifindex, ifname, err);
	}
	if (q.prog_id == mine || (q.prog_id && q.prog_id == cpn_prog_id(t->chain_fd)))
		return CPN_EXIT_OK;
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	dispatcher = !libxdp_get_error(mp) && mp && !xdp_multiprog__is_legacy(mp);
	if (dispatcher) {
		for (struct xdp_program *p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp))
			ours |= prog_is_ours(t, xdp_program__id(p), NULL, 0);
		mode = xdp_multiprog__attach_mode(mp);
	}
	if (!libxdp_get_error(mp) && mp)
		xdp_multiprog__close(mp);
	if (ours)
		return CPN_EXIT_OK;
	prog_is_ours(t, q.prog_id, name, sizeof(name));
	if (t->how == CPN_XDP_ATTACH_PLAIN) {
		snprintf(err->msg, sizeof(err->msg),
			 "interface %s already has XDP program id %u (%s) that is not cpn's, and "
			 "xdp_attach is plain: detach it (ip link set dev %s xdp off), or let cpn "
			 "share the interface (xdp_attach: auto)",
			 ifname, q.prog_id, name, ifname);
		return CPN_EXIT_FAIL;
	}
	if (dispatcher) {
		dispatcher_warning[0] = 0;
		if (libxdp_join(t, ifindex, mode, err)) {
			char why[sizeof(err->msg)];

			snprintf(why, sizeof(why), "%s", err->msg);
			snprintf(err->msg, sizeof(err->msg),
				 "cannot add cpn_xdp to the libxdp dispatcher on %s: %.400s",
				 ifname, why);
			return CPN_EXIT_FAIL;
		}
		return CPN_EXIT_OK;
	}
	return chain_attach(t, ifindex, ifname, q.prog_id, q.attach_mode, err);
}

/* ---- off ---------------------------------------------------------------- */

void cpn_xdp_detach(const struct cpn_xdp_target *t, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 mine = cpn_prog_id(t->prog_fd), k = (__u32)ifindex, slot, next_id;
	__u32 chain = t->chain_fd >= 0 ? cpn_prog_id(t->chain_fd) : 0;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	struct xdp_multiprog *mp;

	if (!ifindex || !mine || bpf_xdp_query(ifindex, 0, &q) || !q.prog_id)
		return;
	if (q.prog_id == mine || (chain && q.prog_id == chain)) {
		/* A chained program goes back in cpn_xdp's place, atomically. */
		if (q.prog_id == chain && !chain_slot(t, ifindex, &slot) &&
		    !bpf_map_lookup_elem(t->maps->chain, &slot, &next_id)) {
			int fd = bpf_prog_get_fd_by_id(next_id);

			ao.old_prog_fd = t->chain_fd;
			if (fd >= 0 &&
			    !bpf_xdp_attach(ifindex, fd,
					    mode_flag(q.attach_mode) | XDP_FLAGS_REPLACE, &ao)) {
				close(fd);
				bpf_map_delete_elem(t->maps->chain_slots, &k);
				bpf_map_delete_elem(t->maps->chain, &slot);
				return;
			}
			if (fd >= 0)
				close(fd);
		}
		bpf_xdp_detach(ifindex, mode_flag(q.attach_mode), NULL);
		if (t->maps)
			bpf_map_delete_elem(t->maps->chain_slots, &k);
		return;
	}
	if (!t->maps)
		return;
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp) || !mp)
		return;
	if (!xdp_multiprog__is_legacy(mp)) {
		libxdp_print_fn_t old = libxdp_set_print(libxdp_print);

		for (struct xdp_program *p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp)) {
			if (!prog_is_ours(t, xdp_program__id(p), NULL, 0))
				continue;
			if (xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0))
				fprintf(
				    stderr,
				    "cpnctl: warning: %s: cannot take cpn_xdp out of the libxdp "
				    "dispatcher: %s\n",
				    ifname, last_warning);
			break;
		}
		libxdp_set_print(old);
	}
	xdp_multiprog__close(mp);
}

void cpn_xdp_describe(const struct cpn_xdp_target *t, const char *ifname, char *buf, size_t len)
{
	int ifindex = (int)if_nametoindex(ifname);
	__u32 mine = cpn_prog_id(t->prog_fd), slot, next_id;
	__u32 chain = t->chain_fd >= 0 ? cpn_prog_id(t->chain_fd) : 0;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_multiprog *mp;
	char name[BPF_OBJ_NAME_LEN];
	const char *m;

	buf[0] = 0;
	if (!ifindex || bpf_xdp_query(ifindex, 0, &q) || !q.prog_id)
		return;
	m = q.attach_mode == XDP_ATTACHED_SKB ? "generic" : "native";
	if (q.prog_id == mine || (chain && q.prog_id == chain)) {
		if (q.prog_id == chain && !chain_slot(t, ifindex, &slot) &&
		    !bpf_map_lookup_elem(t->maps->chain, &slot, &next_id)) {
			prog_is_ours(t, next_id, name, sizeof(name));
			snprintf(buf, len, "%s, then prog %u (%s)", m, next_id, name);
		} else {
			snprintf(buf, len, "%s", m);
		}
		return;
	}
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp) || !mp)
		return;
	if (!xdp_multiprog__is_legacy(mp))
		for (struct xdp_program *p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp))
			if (prog_is_ours(t, xdp_program__id(p), NULL, 0)) {
				snprintf(buf, len, "libxdp %s prio %u of %d", m,
					 xdp_program__run_prio(p),
					 xdp_multiprog__program_count(mp));
				break;
			}
	xdp_multiprog__close(mp);
}
