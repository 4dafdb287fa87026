// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libcpn map access: see cpn_maps.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "cpn/sched.h"
#include "cpn_maps.h"
#include "cpn_addr.h"

const char *const cpn_map_names[CPN_NR_MAPS] = {
#define CPN_MAP_NAME(field, name, type, key, value) name,
    CPN_MAPS(CPN_MAP_NAME)
#undef CPN_MAP_NAME
};

static int *map_slot(struct cpn_maps *m, int i)
{
	int *slots[CPN_NR_MAPS] = {
#define CPN_MAP_SLOT(field, name, type, key, value) &m->field,
	    CPN_MAPS(CPN_MAP_SLOT)
#undef CPN_MAP_SLOT
	};

	return slots[i];
}

static int map_state(struct cpn_maps *m)
{
	size_t len = (size_t)CPN_MAX_NODES * sizeof(struct cpn_node);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->node_state, 0);

	if (p == MAP_FAILED)
		return -errno;
	m->state = p;
	m->ncpus = libbpf_num_possible_cpus();
	return m->ncpus > 0 ? 0 : m->ncpus;
}

/* The layout of struct cpn_node that this build reads and writes, member by
 * member: the pinned cpn_node_state of another build must have the same,
 * or its nodes would be read and written wrong (an upgrade that keeps the
 * maps of a running router, across a change of the struct).
 */
#define NODE_FIELD(f)                                                                              \
	{                                                                                          \
#f, offsetof(struct cpn_node, f), sizeof(((struct cpn_node *)0)->f)                \
	}
static const struct {
	const char *name;
	size_t off, size;
} node_layout[] = {
    NODE_FIELD(admin),		NODE_FIELD(weight),	 NODE_FIELD(capacity),
    NODE_FIELD(queue_depth),	NODE_FIELD(inflight),	 NODE_FIELD(deadline_us),
    NODE_FIELD(slot_cost),	NODE_FIELD(util),	 NODE_FIELD(pad),
    NODE_FIELD(overclaim),	NODE_FIELD(svc_us),	 NODE_FIELD(path_us),
    NODE_FIELD(last_report_ns), NODE_FIELD(outstanding), NODE_FIELD(report_flags),
    NODE_FIELD(unanswered),	NODE_FIELD(reported_us), NODE_FIELD(since_ns),
};

int cpn_maps_check_layout(int node_state_fd)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	const struct btf_member *mb;
	const struct btf_type *t;
	struct btf *btf;
	int err = 0, n;

	if (bpf_obj_get_info_by_fd(node_state_fd, &info, &len))
		return -errno;
	if (info.value_size != sizeof(struct cpn_node))
		return -EPROTO;
	if (!info.btf_id || !info.btf_value_type_id)
		return 0; /* nothing to compare: the size must do */
	btf = btf__load_from_kernel_by_id(info.btf_id);
	if (!btf)
		return -errno;
	t = btf__type_by_id(btf, info.btf_value_type_id);
	while (t && (btf_is_typedef(t) || btf_is_mod(t)))
		t = btf__type_by_id(btf, t->type);
	n = (int)(sizeof(node_layout) / sizeof(node_layout[0]));
	if (!t || !btf_is_struct(t) || btf_vlen(t) != n) {
		err = -EPROTO;
		goto out;
	}
	mb = btf_members(t);
	for (int i = 0; i < n; i++, mb++) {
		const char *name = btf__name_by_offset(btf, mb->name_off);
		__s64 size = btf__resolve_size(btf, mb->type);

		if (!name || strcmp(name, node_layout[i].name) ||
		    btf_member_bit_offset(t, (__u32)i) != node_layout[i].off * 8 ||
		    size != (__s64)node_layout[i].size) {
			err = -EPROTO;
			break;
		}
	}
out:
	btf__free(btf);
	return err;
}

int cpn_maps_open_pinned(struct cpn_maps *m, const char *pin_dir)
{
	char path[PATH_MAX];
	int err;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < CPN_NR_MAPS; i++)
		*map_slot(m, i) = -1;
	m->owns_fds = true;
	for (int i = 0; i < CPN_NR_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, cpn_map_names[i]);
		*map_slot(m, i) = bpf_obj_get(path);
		if (*map_slot(m, i) < 0) {
			err = -errno;
			cpn_maps_close(m);
			return err;
		}
	}
	err = cpn_maps_check_layout(m->node_state);
	if (!err)
		err = map_state(m);
	if (err)
		cpn_maps_close(m);
	return err;
}

int cpn_pinned_prog_fd(const char *pin_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/progs/cpn_xdp", pin_dir);
	return bpf_obj_get(path);
}

int cpn_pinned_chain_fd(const char *pin_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/progs/cpn_xdp_chain", pin_dir);
	return bpf_obj_get(path);
}

__u32 cpn_prog_id(int prog_fd)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return 0;
	return info.id;
}

int cpn_maps_from_object(struct cpn_maps *m, struct bpf_object *obj)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < CPN_NR_MAPS; i++) {
		*map_slot(m, i) = bpf_object__find_map_fd_by_name(obj, cpn_map_names[i]);
		if (*map_slot(m, i) < 0)
			return -ENOENT;
	}
	return map_state(m);
}

void cpn_maps_close(struct cpn_maps *m)
{
	if (m->state)
		munmap(m->state, (size_t)CPN_MAX_NODES * sizeof(struct cpn_node));
	m->state = NULL;
	for (int i = 0; i < CPN_NR_MAPS; i++) {
		if (m->owns_fds && *map_slot(m, i) >= 0)
			close(*map_slot(m, i));
		*map_slot(m, i) = -1;
	}
}

static int ret(int rc)
{
	return rc ? -errno : 0;
}

int cpn_maps_set_config(struct cpn_maps *m, const struct cpn_config *cfg)
{
	__u32 k = 0;

	return ret(bpf_map_update_elem(m->config, &k, cfg, BPF_ANY));
}

int cpn_maps_get_config(struct cpn_maps *m, struct cpn_config *cfg)
{
	__u32 k = 0;

	return ret(bpf_map_lookup_elem(m->config, &k, cfg));
}

int cpn_maps_hop_key(struct cpn_maps *m, __u64 key[2])
{
	struct cpn_config c;
	int rc = cpn_maps_get_config(m, &c);

	if (rc)
		return rc;
	if (!c.hop_key[0] && !c.hop_key[1])
		return -ENOENT;
	key[0] = c.hop_key[0];
	key[1] = c.hop_key[1];
	return 0;
}

__u32 cpn_config_fresh_ms(const struct cpn_config *cfg)
{
	return cfg->fresh_ms ? cfg->fresh_ms : CPN_FRESH_WINDOW_MS;
}

/* Forget the cached next hop of a node on every CPU. */
static int flush_nexthop(struct cpn_maps *m, __u16 id)
{
	struct cpn_nexthop *zero = calloc((size_t)m->ncpus, sizeof(*zero));
	__u32 k = id;
	int err;

	if (!zero)
		return -ENOMEM;
	err = ret(bpf_map_update_elem(m->nh_cache, &k, zero, BPF_ANY));
	free(zero);
	return err;
}

int cpn_maps_set_node(struct cpn_maps *m, __u16 id, const struct cpn_node_cfg *cfg, __u32 weight,
		      __u32 admin)
{
	struct cpn_node_cfg c = *cfg;
	__u32 k = id;
	int err;

	if (!id || id >= CPN_MAX_NODES || !weight)
		return -EINVAL;
	c.flags |= CPN_NODE_CFG_VALID;
	err = ret(bpf_map_update_elem(m->nodes, &k, &c, BPF_ANY));
	if (!err)
		err = flush_nexthop(m, id);
	if (err)
		return err;
	cpn_node_set_weight(&m->state[id], (__u16)weight);
	__atomic_store_n(&m->state[id].admin, admin, __ATOMIC_RELEASE);
	return 0;
}

int cpn_maps_get_node(struct cpn_maps *m, __u16 id, struct cpn_node_cfg *cfg)
{
	__u32 k = id;

	if (!id || id >= CPN_MAX_NODES)
		return -EINVAL;
	if (bpf_map_lookup_elem(m->nodes, &k, cfg))
		return -errno;
	return (cfg->flags & CPN_NODE_CFG_VALID) ? 0 : -ENOENT;
}

int cpn_maps_del_node(struct cpn_maps *m, __u16 id)
{
	struct cpn_node_cfg zero = {0};
	__u32 k = id;

	if (!id || id >= CPN_MAX_NODES)
		return -EINVAL;
	/* Down first, so that no new choice lands on it, then forget it. */
	__atomic_store_n(&m->state[id].admin, 0, __ATOMIC_RELEASE);
	if (bpf_map_update_elem(m->nodes, &k, &zero, BPF_ANY))
		return -errno;
	memset(&m->state[id], 0, sizeof(m->state[id]));
	return flush_nexthop(m, id);
}

int cpn_maps_retire_node(struct cpn_maps *m, __u16 id)
{
	struct cpn_node_cfg c;
	__u32 k = id;

	if (!id || id >= CPN_MAX_NODES)
		return -EINVAL;
	if (bpf_map_lookup_elem(m->nodes, &k, &c))
		return -errno;
	__atomic_store_n(&m->state[id].admin, 0, __ATOMIC_RELEASE);
	if (!(c.flags & CPN_NODE_CFG_VALID) || (c.flags & CPN_NODE_CFG_RETIRED))
		return 0;
	c.flags |= CPN_NODE_CFG_RETIRED;
	return ret(bpf_map_update_elem(m->nodes, &k, &c, BPF_ANY));
}

int cpn_maps_node_admin(struct cpn_maps *m, __u16 id, __u32 set, __u32 clear)
{
	__u32 a;

	if (!id || id >= CPN_MAX_NODES)
		return -EINVAL;
	a = __atomic_load_n(&m->state[id].admin, __ATOMIC_ACQUIRE);
	__atomic_store_n(&m->state[id].admin, (a | set) & ~clear, __ATOMIC_RELEASE);
	return 0;
}

static void vip_key(const struct cpn_service *svc, struct cpn_vip_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, svc->vip, sizeof(k->addr));
	k->port = svc->port;
	k->family = svc->family;
}

int cpn_maps_set_service(struct cpn_maps *m, __u16 id, const struct cpn_service *svc)
{
	struct cpn_maglev *mg;
	struct cpn_vip_key vk;
	struct cpn_service old, s = *svc;
	__u32 weights[CPN_MAX_SVC_NODES];
	__u32 k = id;
	int n = (int)svc->n_nodes, err;

	if (id >= CPN_MAX_SERVICES || n > CPN_MAX_SVC_NODES)
		return -EINVAL;
	s.id = id;
	for (int i = 0; i < n; i++) {
		if (!svc->nodes[i] || svc->nodes[i] >= CPN_MAX_NODES)
			return -EINVAL;
		weights[i] = m->state[svc->nodes[i]].weight ? m->state[svc->nodes[i]].weight
							    : CPN_DEFAULT_WEIGHT;
	}
	mg = calloc(1, sizeof(*mg));
	if (!mg)
		return -ENOMEM;
	if (cpn_maglev_build(mg, svc->nodes, weights, n)) {
		free(mg);
		return -EINVAL;
	}
	err = ret(bpf_map_update_elem(m->maglev, &k, mg, BPF_ANY));
	free(mg);
	if (err)
		return err;
	/* A VIP that moved: the old one goes first. */
	if (!bpf_map_lookup_elem(m->services, &k, &old) &&
	    (memcmp(old.vip, svc->vip, sizeof(old.vip)) || old.port != svc->port ||
	     old.family != svc->family)) {
		vip_key(&old, &vk);
		bpf_map_delete_elem(m->vips, &vk);
	}
	err = ret(bpf_map_update_elem(m->services, &k, &s, BPF_ANY));
	if (err)
		return err;
	vip_key(&s, &vk);
	return ret(bpf_map_update_elem(m->vips, &vk, &s, BPF_ANY));
}

int cpn_maps_get_service(struct cpn_maps *m, __u16 id, struct cpn_service *svc)
{
	__u32 k = id;

	return ret(bpf_map_lookup_elem(m->services, &k, svc));
}

int cpn_maps_del_service(struct cpn_maps *m, __u16 id)
{
	struct cpn_service old;
	struct cpn_vip_key vk;
	__u32 k = id;

	if (bpf_map_lookup_elem(m->services, &k, &old))
		return -errno;
	/* The VIP first: no packet finds a service that is going away. */
	vip_key(&old, &vk);
	bpf_map_delete_elem(m->vips, &vk);
	bpf_map_delete_elem(m->services, &k);
	bpf_map_delete_elem(m->maglev, &k);
	return 0;
}

/* The tenant's affinity map holds `entries`: kept when it does, else a new
 * one (the sessions of the old are forgotten).
 */
static int tenant_aff(struct cpn_maps *m, __u32 id, __u32 entries)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), inner_id;
	char name[BPF_OBJ_NAME_LEN];
	int fd, rc;

	if (!bpf_map_lookup_elem(m->affinity, &id, &inner_id)) {
		memset(&info, 0, sizeof(info));
		fd = bpf_map_get_fd_by_id(inner_id);
		if (fd >= 0) {
			rc = bpf_obj_get_info_by_fd(fd, &info, &len);
			close(fd);
			if (!rc && info.max_entries == entries)
				return 0;
		}
	}
	snprintf(name, sizeof(name), "cpn_aff_%u", id);
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, name, sizeof(struct cpn_aff_key),
			    sizeof(struct cpn_aff), entries, NULL);
	if (fd < 0)
		return -errno;
	rc = ret(bpf_map_update_elem(m->affinity, &id, &fd, BPF_ANY));
	close(fd);
	return rc;
}

int cpn_maps_set_tenant(struct cpn_maps *m, __u32 id, const struct cpn_tenant *t)
{
	int rc = tenant_aff(m, id, t->max_sessions ? t->max_sessions : CPN_DEFAULT_MAX_SESSIONS);

	if (rc)
		return rc;
	return ret(bpf_map_update_elem(m->tenants, &id, t, BPF_ANY));
}

int cpn_maps_del_tenant(struct cpn_maps *m, __u32 id)
{
	int rc = ret(bpf_map_delete_elem(m->tenants, &id));

	bpf_map_delete_elem(m->affinity, &id);
	return rc;
}

int cpn_maps_add_port(struct cpn_maps *m, int ifindex)
{
	struct bpf_devmap_val v = {.ifindex = (__u32)ifindex};
	__u32 k = (__u32)ifindex;

	return ret(bpf_map_update_elem(m->tx_ports, &k, &v, BPF_ANY));
}

int cpn_maps_del_port(struct cpn_maps *m, int ifindex)
{
	__u32 k = (__u32)ifindex;

	return ret(bpf_map_delete_elem(m->tx_ports, &k));
}

int cpn_maps_stats(struct cpn_maps *m, __u64 out[CPN_STAT_MAX])
{
	struct cpn_cpu *v = calloc((size_t)m->ncpus, sizeof(*v));
	__u32 k = 0;

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->stats, &k, v)) {
		int err = -errno;

		free(v);
		return err;
	}
	for (__u32 i = 0; i < CPN_STAT_MAX; i++) {
		out[i] = 0;
		for (int c = 0; c < m->ncpus; c++)
			out[i] += v[c].stat[i];
	}
	free(v);
	return 0;
}

int cpn_maps_seed_rng(struct cpn_maps *m, __u64 seed)
{
	struct cpn_cpu *v = calloc((size_t)m->ncpus, sizeof(*v));
	__u32 k = 0;
	int err;

	if (!v)
		return -ENOMEM;
	err = ret(bpf_map_lookup_elem(m->stats, &k, v));
	for (int c = 0; !err && c < m->ncpus; c++)
		v[c].rng = seed;
	if (!err)
		err = ret(bpf_map_update_elem(m->stats, &k, v, BPF_ANY));
	free(v);
	return err;
}

int cpn_maps_node_stats(struct cpn_maps *m, __u16 id, struct cpn_node_stats *out)
{
	struct cpn_node_stats *v = calloc((size_t)m->ncpus, sizeof(*v));
	__u32 k = id;

	if (!v)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(m->node_stats, &k, v)) {
		int err = -errno;

		free(v);
		return err;
	}
	for (int c = 0; c < m->ncpus; c++) {
		out->requests += v[c].requests;
		out->replies += v[c].replies;
		out->busy += v[c].busy;
		out->reports += v[c].reports;
		for (int b = 0; b < CPN_HIST_BUCKETS; b++)
			out->lat_hist[b] += v[c].lat_hist[b];
	}
	free(v);
	return 0;
}

int cpn_maps_svc_stats(struct cpn_maps *m, __u16 id, struct cpn_svc_stats *out)
{
	struct cpn_svc_stats *v = calloc((size_t)m->ncpus, sizeof(*v));
	__u32 k = id;

	if (!v)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(m->svc_stats, &k, v)) {
		int err = -errno;

		free(v);
		return err;
	}
	for (int c = 0; c < m->ncpus; c++)
		cpn_svc_stats_add(out, &v[c]);
	free(v);
	return 0;
}
