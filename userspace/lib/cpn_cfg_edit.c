// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Changes to a config in memory; cpnctl validates the result when it commits it. */
#include <stdlib.h>
#include <string.h>

#include "cpn_cfg_int.h"

/* Insert `item` into a sorted array of `size`-byte items keyed by `id`. */
static int put_sorted(void **arr, int *n, const void *item, size_t size,
		      __u32 (*id_of)(const void *))
{
	char *a = realloc(*arr, (size_t)(*n + 1) * size);
	int pos = 0;

	if (!a)
		return -1;
	*arr = a;
	while (pos < *n && id_of(a + (size_t)pos * size) < id_of(item))
		pos++;
	memmove(a + (size_t)(pos + 1) * size, a + (size_t)pos * size, (size_t)(*n - pos) * size);
	memcpy(a + (size_t)pos * size, item, size);
	(*n)++;
	return 0;
}

static void del_at(void *arr, int *n, int pos, size_t size)
{
	char *a = arr;

	memmove(a + (size_t)pos * size, a + (size_t)(pos + 1) * size,
		(size_t)(*n - pos - 1) * size);
	(*n)--;
}

static __u32 svc_id(const void *p)
{
	return ((const struct cfg_service *)p)->id;
}

static __u32 node_id(const void *p)
{
	return ((const struct cfg_node *)p)->id;
}

static __u32 tenant_id(const void *p)
{
	return ((const struct cfg_tenant *)p)->id;
}

static void drop_u16(__u16 *list, int *n, __u16 v)
{
	int k = 0;

	for (int i = 0; i < *n; i++)
		if (list[i] != v)
			list[k++] = list[i];
	*n = k;
}

int cpn_cfg_put_service(struct cpn_cfg *cfg, const struct cfg_service *s)
{
	return put_sorted((void **)&cfg->services, &cfg->n_services, s, sizeof(*s), svc_id);
}

void cpn_cfg_del_service(struct cpn_cfg *cfg, __u16 id)
{
	for (int i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].id == id)
			del_at(cfg->services, &cfg->n_services, i--, sizeof(cfg->services[0]));
	for (int i = 0; i < cfg->n_tenants; i++)
		drop_u16(cfg->tenants[i].services, &cfg->tenants[i].n_services, id);
	drop_u16(cfg->auto_join.services, &cfg->auto_join.n_services, id);
}

int cpn_cfg_put_node(struct cpn_cfg *cfg, const struct cfg_node *n)
{
	return put_sorted((void **)&cfg->nodes, &cfg->n_nodes, n, sizeof(*n), node_id);
}

void cpn_cfg_del_node(struct cpn_cfg *cfg, __u16 id)
{
	for (int i = 0; i < cfg->n_services; i++)
		drop_u16(cfg->services[i].nodes, &cfg->services[i].n_nodes, id);
	for (int i = 0; i < cfg->n_nodes; i++)
		if (cfg->nodes[i].id == id)
			del_at(cfg->nodes, &cfg->n_nodes, i--, sizeof(cfg->nodes[0]));
}

int cpn_cfg_put_tenant(struct cpn_cfg *cfg, const struct cfg_tenant *t)
{
	return put_sorted((void **)&cfg->tenants, &cfg->n_tenants, t, sizeof(*t), tenant_id);
}

void cpn_cfg_del_tenant(struct cpn_cfg *cfg, __u32 id)
{
	for (int i = 0; i < cfg->n_tenants; i++)
		if (cfg->tenants[i].id == id)
			del_at(cfg->tenants, &cfg->n_tenants, i--, sizeof(cfg->tenants[0]));
}

int cpn_cfg_service_add_node(struct cfg_service *s, __u16 id)
{
	for (int i = 0; i < s->n_nodes; i++)
		if (s->nodes[i] == id)
			return 0;
	if (s->n_nodes >= CPN_MAX_SVC_NODES)
		return -1;
	s->nodes[s->n_nodes++] = id;
	return 0;
}

static bool in_prefix(const struct cfg_prefix *p, const __be32 *addr, __u8 family)
{
	const __u8 *a = (const __u8 *)addr, *b = (const __u8 *)p->addr;
	int full = p->len / 8, rest = p->len % 8;

	if (p->family != family)
		return false;
	if (memcmp(a, b, (size_t)full))
		return false;
	if (rest && ((a[full] ^ b[full]) & (__u8)(0xff << (8 - rest))))
		return false;
	return true;
}

bool cpn_cfg_join_allowed(const struct cpn_cfg *cfg, const struct cfg_node *n)
{
	if (!cfg->has_auto_join)
		return false;
	for (int i = 0; i < cfg->auto_join.n_prefixes; i++)
		if (in_prefix(&cfg->auto_join.prefixes[i], n->addr, n->family))
			return true;
	return false;
}

int cpn_cfg_add_joined(struct cpn_cfg *cfg, const struct cfg_node *n)
{
	struct cfg_node j = *n;
	int room = 0;

	/* A node that no auto_join service could list would serve nothing. */
	for (int i = 0; i < cfg->auto_join.n_services; i++)
		for (int k = 0; k < cfg->n_services; k++) {
			const struct cfg_service *s = &cfg->services[k];

			if (s->id == cfg->auto_join.services[i] && s->family == j.family &&
			    s->n_nodes < CPN_MAX_SVC_NODES)
				room++;
		}
	if (!room)
		return CPN_CFG_JOIN_FULL;
	j.joined = true;
	j.line = 0;
	if (cpn_cfg_put_node(cfg, &j))
		return -1;
	for (int i = 0; i < cfg->auto_join.n_services; i++) {
		for (int k = 0; k < cfg->n_services; k++) {
			struct cfg_service *s = &cfg->services[k];

			if (s->id == cfg->auto_join.services[i] && s->family == j.family)
				cpn_cfg_service_add_node(s, j.id);
		}
	}
	return 0;
}

__u32 cpn_cfg_node_stale_ms(const struct cpn_cfg *cfg, __u16 id)
{
	__u32 best = 0;

	for (int i = 0; i < cfg->n_services; i++)
		for (int k = 0; k < cfg->services[i].n_nodes; k++)
			if (cfg->services[i].nodes[k] == id &&
			    (!best || cfg->services[i].stale_ms < best))
				best = cfg->services[i].stale_ms;
	return best ? best : CPN_DEFAULT_STALE_MS;
}
