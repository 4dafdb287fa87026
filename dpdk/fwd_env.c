// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cpn-fwd's configuration snapshots: see fwd_env.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <rte_hash.h>
#include <rte_errno.h>
#include <rte_jhash.h>

#include "fwd.h"
#include "cpn/sched.h"
#include "cpn_maps.h"
#include "cpn_cfg.h"

_Static_assert(sizeof(((struct fwd_snap *)0)->svc_name[0]) == CPN_NAME_MAX,
	       "fwd_snap.svc_name holds a config name");

static struct rte_hash *hash_new(const char *kind, __u64 gen, __u32 key_len, __u32 entries)
{
	struct rte_hash_parameters p = {0};
	char name[RTE_HASH_NAMESIZE];

	snprintf(name, sizeof(name), "cpn_%s_%llu", kind, (unsigned long long)gen);
	p.name = name;
	p.entries = entries < 8 ? 8 : entries;
	p.key_len = key_len;
	p.hash_func = rte_jhash;
	p.socket_id = SOCKET_ID_ANY;
	/* Filled once by the control thread, then only read. */
	p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
	return rte_hash_create(&p);
}

static void aff_put(struct fwd_aff_table *tb)
{
	if (tb && !--tb->refs) {
		free(tb->ent);
		free(tb);
	}
}

/* The tenant's session table: the old snapshot's where its size holds
 * (its sessions kept), else a new one.
 */
static struct fwd_aff_table *aff_get(const struct fwd_tenant *old, __u32 max_sessions)
{
	struct fwd_aff_table *tb;
	__u32 size = 1;

	while (size < max_sessions && size < (1u << 24))
		size <<= 1;
	if (old && old->aff && old->aff->mask == size - 1) {
		old->aff->refs++;
		return old->aff;
	}
	tb = calloc(1, sizeof(*tb));
	if (!tb)
		return NULL;
	tb->ent = calloc(size, sizeof(*tb->ent));
	if (!tb->ent) {
		free(tb);
		return NULL;
	}
	tb->refs = 1;
	tb->mask = size - 1;
	return tb;
}

void fwd_snap_free(struct fwd_snap *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_tenants; i++)
		aff_put(s->tenant[i].aff);
	rte_hash_free(s->vips);
	rte_hash_free(s->tenants);
	for (int i = 0; i < CPN_MAX_SERVICES; i++)
		free(s->maglev[i]);
	free(s->tenant);
	free(s);
}

static struct fwd_snap *snap_new(__u64 gen, int n_tenants, char *err, size_t errlen)
{
	struct fwd_snap *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->gen = gen;
	s->vips = hash_new("vip", gen, sizeof(struct cpn_vip_key), CPN_MAX_SERVICES);
	s->tenants = hash_new("ten", gen, sizeof(__u32), n_tenants > 0 ? (__u32)n_tenants : 1);
	s->tenant = calloc(n_tenants > 0 ? (size_t)n_tenants : 1, sizeof(*s->tenant));
	if (!s->vips || !s->tenants || !s->tenant) {
		snprintf(err, errlen, "cannot create the lookup tables: %s",
			 rte_strerror(rte_errno));
		fwd_snap_free(s);
		return NULL;
	}
	return s;
}

static int add_vip(struct fwd_snap *s, const struct cpn_service *svc, const struct fwd_snap *old)
{
	struct cpn_vip_key k = {0};
	void *data;
	int i = s->n_vips;

	if (i >= CPN_MAX_SERVICES)
		return -1;
	memcpy(k.addr, svc->vip, sizeof(k.addr));
	k.port = svc->port;
	k.family = svc->family;
	s->vip_svc[i] = *svc;
	/* The round-robin cursor carries on across configurations. */
	if (old && old->vips && rte_hash_lookup_data(old->vips, &k, &data) >= 0 &&
	    old->vip_svc[(uintptr_t)data].id == svc->id)
		s->vip_svc[i].rr =
		    __atomic_load_n(&old->vip_svc[(uintptr_t)data].rr, __ATOMIC_RELAXED);
	if (rte_hash_add_key_data(s->vips, &k, (void *)(uintptr_t)i))
		return -1;
	s->n_vips++;
	return 0;
}

static int add_tenant(struct fwd_snap *s, __u32 id, const struct cpn_tenant *t,
		      const struct fwd_snap *old)
{
	struct fwd_tenant *ft = &s->tenant[s->n_tenants];
	const struct fwd_tenant *oft = NULL;
	void *data;

	ft->t = *t;
	ft->id = id;
	rte_spinlock_init(&ft->lock);
	/* A tenant whose rate did not change keeps its bucket. */
	if (old && old->tenants && rte_hash_lookup_data(old->tenants, &id, &data) >= 0) {
		const struct cpn_tenant *o = &old->tenant[(uintptr_t)data].t;

		oft = &old->tenant[(uintptr_t)data];
		if (o->interval_ns == t->interval_ns && o->burst_ns == t->burst_ns)
			ft->t.tat = __atomic_load_n(&o->tat, __ATOMIC_RELAXED);
	}
	ft->aff = aff_get(oft, t->max_sessions ? t->max_sessions : CPN_DEFAULT_MAX_SESSIONS);
	if (!ft->aff)
		return -1;
	if (rte_hash_add_key_data(s->tenants, &id, (void *)(uintptr_t)s->n_tenants)) {
		aff_put(ft->aff);
		ft->aff = NULL;
		return -1;
	}
	s->n_tenants++;
	return 0;
}

/* The DPDK flag tells the XDP router to hand a service to cpn-fwd; here it
 * would hand the request to ourselves: cpn-fwd serves every service.
 * cpn-fwd keeps no flows, so it binds no replies either (reply_check is the
 * XDP router's): without this, every reply would find no flow.
 */
static void own_service(struct cpn_service *svc)
{
	svc->flags &= (__u16) ~(CPN_SVC_DPDK | CPN_SVC_REPLY_CHECK);
}

struct fwd_snap *fwd_snap_from_cfg(const struct cpn_cfg *cfg, struct cpn_node *state,
				   const struct fwd_snap *old, __u64 gen, char *err, size_t errlen)
{
	struct fwd_snap *s = snap_new(gen, cfg->n_tenants, err, errlen);
	__u32 weights[CPN_MAX_SVC_NODES];
	struct cpn_service svc;
	struct cpn_tenant t;
	__u32 admin;

	if (!s)
		return NULL;
	s->has_config = true;
	s->config.control_port = htons(cfg->control_port);
	s->config.max_hops = cfg->max_hops;
	s->config.nh_ttl_ms = cfg->nh_ttl_ms;
	s->config.fresh_ms = cfg->freshness_ms;
	/* Without the router's maps, the fleet's hop key: none configured,
	 * cpn-fwd's tags verify nowhere else (a lone cpn-fwd tags for itself).
	 */
	if (cfg->has_hop_key) {
		s->config.hop_key[0] = cfg->hop_key[0];
		s->config.hop_key[1] = cfg->hop_key[1];
	}

	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *c = &cfg->nodes[i];

		if (!c->id || c->id >= CPN_MAX_NODES)
			continue;
		cpn_cfg_to_node(c, &s->nodes[c->id], &admin);
		/* As cpnctl does for the pinned state: admin and weight are
		 * the controller's, the rest is learned and kept.
		 */
		cpn_node_set_weight(&state[c->id],
				    (__u16)(c->weight ? c->weight : CPN_DEFAULT_WEIGHT));
		__atomic_store_n(&state[c->id].admin, admin, __ATOMIC_RELEASE);
	}
	if (old)
		for (int id = 1; id < CPN_MAX_NODES; id++)
			if ((old->nodes[id].flags & CPN_NODE_CFG_VALID) &&
			    !(s->nodes[id].flags & CPN_NODE_CFG_VALID)) {
				s->nodes[id] = old->nodes[id];
				s->nodes[id].flags |= CPN_NODE_CFG_RETIRED;
			}

	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *c = &cfg->services[i];

		if (c->id >= CPN_MAX_SERVICES)
			continue;
		cpn_cfg_to_service(cfg, c, &svc);
		own_service(&svc);
		s->svc[c->id] = svc;
		s->has_svc[c->id] = true;
		snprintf(s->svc_name[c->id], sizeof(s->svc_name[c->id]), "%s", c->name);
		s->maglev[c->id] = malloc(sizeof(struct cpn_maglev));
		if (!s->maglev[c->id])
			goto oom;
		for (int k = 0; k < c->n_nodes; k++)
			weights[k] = state[c->nodes[k]].weight ? state[c->nodes[k]].weight
							       : CPN_DEFAULT_WEIGHT;
		if (cpn_maglev_build(s->maglev[c->id], svc.nodes, weights, (int)svc.n_nodes)) {
			snprintf(err, errlen, "service %s: cannot build its Maglev table", c->name);
			goto fail;
		}
		if (add_vip(s, &svc, old)) {
			snprintf(err, errlen, "service %s: cannot add its VIP", c->name);
			goto fail;
		}
	}
	for (int i = 0; i < cfg->n_tenants; i++) {
		cpn_cfg_to_tenant(&cfg->tenants[i], &t);
		if (add_tenant(s, cfg->tenants[i].id, &t, old)) {
			snprintf(err, errlen, "tenant %u: cannot add it", cfg->tenants[i].id);
			goto fail;
		}
	}
	return s;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	fwd_snap_free(s);
	return NULL;
}

/* Every key of a pinned hash map, into keys[] (at most max). */
static int map_keys(int fd, void *keys, __u32 key_size, int max)
{
	char prev[sizeof(struct cpn_vip_key)], next[sizeof(struct cpn_vip_key)];
	int n = 0;
	void *p = NULL;

	while (n < max && !bpf_map_get_next_key(fd, p, next)) {
		memcpy((char *)keys + (size_t)n * key_size, next, key_size);
		memcpy(prev, next, key_size);
		p = prev;
		n++;
	}
	return n;
}

struct fwd_snap *fwd_snap_from_maps(struct cpn_maps *m, const struct fwd_snap *old, __u64 gen,
				    char *err, size_t errlen)
{
	static __u32 tenant_ids[CPN_MAX_TENANTS];
	static __u32 svc_ids[CPN_MAX_SERVICES];
	static struct cpn_vip_key vip_keys[CPN_MAX_SERVICES];
	struct fwd_snap *s;
	struct cpn_service svc;
	struct cpn_tenant t;
	int n_t, n_s, n_v;
	__u32 key;

	n_t = map_keys(m->tenants, tenant_ids, sizeof(__u32), CPN_MAX_TENANTS);
	s = snap_new(gen, n_t, err, errlen);
	if (!s)
		return NULL;
	key = 0;
	s->has_config = !bpf_map_lookup_elem(m->config, &key, &s->config);
	for (key = 1; key < CPN_MAX_NODES; key++)
		if (bpf_map_lookup_elem(m->nodes, &key, &s->nodes[key]))
			memset(&s->nodes[key], 0, sizeof(s->nodes[key]));

	n_s = map_keys(m->services, svc_ids, sizeof(__u32), CPN_MAX_SERVICES);
	for (int i = 0; i < n_s; i++) {
		key = svc_ids[i];
		if (key >= CPN_MAX_SERVICES || bpf_map_lookup_elem(m->services, &key, &svc))
			continue;
		own_service(&svc);
		s->svc[key] = svc;
		s->has_svc[key] = true;
	}
	/* Maglev tables may exist apart from services (written first). */
	n_s = map_keys(m->maglev, svc_ids, sizeof(__u32), CPN_MAX_SERVICES);
	for (int i = 0; i < n_s; i++) {
		key = svc_ids[i];
		if (key >= CPN_MAX_SERVICES)
			continue;
		s->maglev[key] = malloc(sizeof(struct cpn_maglev));
		if (!s->maglev[key]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (bpf_map_lookup_elem(m->maglev, &key, s->maglev[key])) {
			free(s->maglev[key]);
			s->maglev[key] = NULL;
		}
	}
	n_v = map_keys(m->vips, vip_keys, sizeof(struct cpn_vip_key), CPN_MAX_SERVICES);
	for (int i = 0; i < n_v; i++) {
		if (bpf_map_lookup_elem(m->vips, &vip_keys[i], &svc))
			continue;
		own_service(&svc);
		if (add_vip(s, &svc, old)) {
			snprintf(err, errlen, "cannot add a VIP");
			goto fail;
		}
	}
	for (int i = 0; i < n_t; i++) {
		if (bpf_map_lookup_elem(m->tenants, &tenant_ids[i], &t))
			continue;
		if (add_tenant(s, tenant_ids[i], &t, old)) {
			snprintf(err, errlen, "cannot add tenant %u", tenant_ids[i]);
			goto fail;
		}
	}
	return s;
fail:
	fwd_snap_free(s);
	return NULL;
}

__u64 fwd_rng_seed(__u64 seed, unsigned int k)
{
	__u64 x = seed + (__u64)k * 0x9E3779B97F4A7C15ULL;

	return x ? x : 1;
}
