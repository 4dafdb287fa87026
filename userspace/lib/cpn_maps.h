/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libcpn map access: the one place userspace reads and writes the router's
 * maps, whether they come from a loaded object (skeleton) or from pins
 * under /sys/fs/bpf/cpn. Used by cpnctl, cpn-fwd, the tools and the tests.
 */
#ifndef CPN_USER_MAPS_H
#define CPN_USER_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "cpn/maps.h"
#include "cpn_addr.h"
#include "cpn_util.h"

struct bpf_object;

/* The fds of the maps (CPN_MAPS), then the mmaped node table. */
struct cpn_maps {
#define CPN_MAP_FD(field, name, type, key, value) int field;
	CPN_MAPS(CPN_MAP_FD)
#undef CPN_MAP_FD
	struct cpn_node *state; /* cpn_node_state, mmaped: CPN_MAX_NODES entries */
	int ncpus;
	bool owns_fds; /* opened from pins: close them */
};

enum {
#define CPN_MAP_IDX(field, name, type, key, value) CPN_MAP_IDX_##field,
	CPN_MAPS(CPN_MAP_IDX)
#undef CPN_MAP_IDX
	    CPN_NR_MAPS,
};
/* Map names as pinned, in the order of CPN_MAPS. */
extern const char *const cpn_map_names[CPN_NR_MAPS];

/* -EPROTO: the pinned node state is another build's struct cpn_node
 * (cpn_maps_check_layout: member names, offsets and sizes from its BTF, or
 * its value size where it has none).
 */
int cpn_maps_open_pinned(struct cpn_maps *m, const char *pin_dir);
int cpn_maps_check_layout(int node_state_fd);
#define CPN_MAPS_LAYOUT_HINT                                                                       \
	"its node state is laid out by another version of cpn: 'cpnctl down' and 'cpnctl up' "     \
	"load this one (the router restarts: requests in flight through it are lost)"

/* bpffs under a pin directory (cpn_bpffs.c). cpn_on_bpffs: is PATH on it.
 * cpn_bpffs_prepare: make sure the pin directory (or the directory it will
 * be made in) is on bpffs, mounting bpffs there where it is /sys/fs/bpf or
 * an empty directory; NOTE says what was done (empty: nothing) or, on error
 * (-errno), why not. cpn_bpffs_hint: "" where the pins can be, else a clause
 * for an error message that says why they cannot and what to run.
 */
bool cpn_on_bpffs(const char *path);
int cpn_bpffs_prepare(const char *pin_dir, char *note, size_t len);
const char *cpn_bpffs_hint(const char *pin_dir);

/* The router program pinned at DIR/progs/cpn_xdp: an fd, or < 0. */
int cpn_pinned_prog_fd(const char *pin_dir);
/* Its build that chains another program (DIR/progs/cpn_xdp_chain). */
int cpn_pinned_chain_fd(const char *pin_dir);
/* The id of a program fd; 0 if it has none. */
__u32 cpn_prog_id(int prog_fd);
int cpn_maps_from_object(struct cpn_maps *m, struct bpf_object *obj);
void cpn_maps_close(struct cpn_maps *m);

int cpn_maps_set_config(struct cpn_maps *m, const struct cpn_config *cfg);
int cpn_maps_get_config(struct cpn_maps *m, struct cpn_config *cfg);
/* The hop key the router tags and checks with (the fleet's, or the one
 * cpnctl drew at `up`): what PROBE cookies are made with. 0, or < 0 (a
 * router without a hop key yet: -ENOENT).
 */
int cpn_maps_hop_key(struct cpn_maps *m, __u64 key[2]);
/* The freshness window of the router's data plane, in ms. */
__u32 cpn_config_fresh_ms(const struct cpn_config *cfg);

/* A node: its address (cpn_nodes) and its admin state and weight
 * (cpn_node_state). Learned state is kept across updates.
 */
int cpn_maps_set_node(struct cpn_maps *m, __u16 id, const struct cpn_node_cfg *cfg, __u32 weight,
		      __u32 admin);
int cpn_maps_get_node(struct cpn_maps *m, __u16 id, struct cpn_node_cfg *cfg);
int cpn_maps_del_node(struct cpn_maps *m, __u16 id);
/* Retire a node that no service names any more: never chosen, but the
 * replies still in flight from it are forwarded. Delete it later.
 */
int cpn_maps_retire_node(struct cpn_maps *m, __u16 id);
/* Set or clear admin flags (CPN_ADMIN_DRAIN, ...) of a node. */
int cpn_maps_node_admin(struct cpn_maps *m, __u16 id, __u32 set, __u32 clear);

/* A service: Maglev table (built from its nodes' weights), then the service
 * entry, then its VIP, in that order so that a packet that finds the VIP
 * finds everything behind it.
 */
int cpn_maps_set_service(struct cpn_maps *m, __u16 id, const struct cpn_service *svc);
int cpn_maps_get_service(struct cpn_maps *m, __u16 id, struct cpn_service *svc);
int cpn_maps_del_service(struct cpn_maps *m, __u16 id);

/* A tenant: first its affinity map (cpn_affinity[id], an LRU of
 * t->max_sessions entries, created anew when the size changes), then its
 * entry. Deleting a tenant deletes both.
 */
int cpn_maps_set_tenant(struct cpn_maps *m, __u32 id, const struct cpn_tenant *t);
int cpn_maps_del_tenant(struct cpn_maps *m, __u32 id);

/* Egress ports for the devmap redirect. */
int cpn_maps_add_port(struct cpn_maps *m, int ifindex);
int cpn_maps_del_port(struct cpn_maps *m, int ifindex);

/* Counters summed over CPUs. */
int cpn_maps_stats(struct cpn_maps *m, __u64 out[CPN_STAT_MAX]);
/* Every CPU's generator (struct cpn_cpu.rng) set to `seed` (0: drawn again
 * from the kernel's PRNG at the next packet): the data plane then draws
 * the same sequence on every run. For tests and benchmarks.
 */
int cpn_maps_seed_rng(struct cpn_maps *m, __u64 seed);
int cpn_maps_node_stats(struct cpn_maps *m, __u16 id, struct cpn_node_stats *out);
int cpn_maps_svc_stats(struct cpn_maps *m, __u16 id, struct cpn_svc_stats *out);

#endif /* CPN_USER_MAPS_H */
