// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The configuration model (cpn_cfg.h): a config's life, its lookups, and
 * the changes that cpnctl's commands and its daemon make to one in memory
 * (validated whole when committed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpn/proto.h"
#include "cpn_cfg_int.h"

/* ---- public lookups ------------------------------------------------------ */

void cpn_cfg_init(struct cpn_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->control_port = CPN_DEFAULT_CONTROL_PORT;
	snprintf(cfg->metrics, sizeof(cfg->metrics), "%s", CPN_DEFAULT_METRICS);
	cfg->max_hops = CPN_DEFAULT_MAX_HOPS;
	cfg->nh_ttl_ms = CPN_DEFAULT_NH_TTL_MS;
	cfg->freshness_ms = CPN_FRESH_WINDOW_MS;
	cfg->auto_join.weight = CPN_DEFAULT_WEIGHT;
	cfg->auto_join.retire_ms = CPN_DEFAULT_RETIRE_MS;
}

void cpn_cfg_free(struct cpn_cfg *cfg)
{
	free(cfg->services);
	free(cfg->nodes);
	free(cfg->tenants);
	cpn_cfg_init(cfg);
}

int cpn_policy_parse(const char *s)
{
	for (int i = 0; i <= CPN_POL_MAX; i++)
		if (!strcmp(s, cpn_policy_names[i]))
			return i;
	return -1;
}

static const char *const xdp_attach_names[] = {"auto", "libxdp", "plain"};

int cpn_xdp_attach_parse(const char *s)
{
	for (int i = 0; i <= CPN_XDP_ATTACH_PLAIN; i++)
		if (!strcmp(s, xdp_attach_names[i]))
			return i;
	return -1;
}

const char *cpn_xdp_attach_name(int how)
{
	return how >= 0 && how <= CPN_XDP_ATTACH_PLAIN ? xdp_attach_names[how] : "?";
}

const struct cfg_service *cpn_cfg_service(const struct cpn_cfg *cfg, __u16 id)
{
	for (int i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].id == id)
			return &cfg->services[i];
	return NULL;
}

const struct cfg_service *cpn_cfg_service_by_name(const struct cpn_cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_services; i++)
		if (!strncmp(cfg->services[i].name, name, sizeof(cfg->services[i].name)))
			return &cfg->services[i];
	return NULL;
}

const struct cfg_node *cpn_cfg_node(const struct cpn_cfg *cfg, __u16 id)
{
	for (int i = 0; i < cfg->n_nodes; i++)
		if (cfg->nodes[i].id == id)
			return &cfg->nodes[i];
	return NULL;
}

const struct cfg_tenant *cpn_cfg_tenant(const struct cpn_cfg *cfg, __u32 id)
{
	for (int i = 0; i < cfg->n_tenants; i++)
		if (cfg->tenants[i].id == id)
			return &cfg->tenants[i];
	return NULL;
}

bool cpn_cfg_tenant_lists(const struct cfg_tenant *t, __u16 id)
{
	for (int k = 0; k < t->n_services; k++)
		if (t->services[k] == id)
			return true;
	return false;
}

bool cpn_cfg_service_usable(const struct cpn_cfg *cfg, __u16 id)
{
	for (int i = 0; i < cfg->n_tenants; i++)
		if (cpn_cfg_tenant_lists(&cfg->tenants[i], id))
			return true;
	return false;
}

void cpn_cfg_warn_unusable(const struct cpn_cfg *cfg, FILE *f)
{
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];

		if (cpn_cfg_service_usable(cfg, s->id))
			continue;
		fprintf(f,
			"cpnctl: warning: no tenant may use service '%s' (id %u): every request "
			"to it is refused (drop_acl). List it in a tenant's services, or add "
			"{id: any, services: [%s]} under tenants to open it to every tenant.\n",
			s->name, s->id, s->name);
	}
}

static void *dup_array(const void *p, int n, size_t size, int *ok)
{
	void *q;

	if (n <= 0 || !p)
		return NULL;
	q = malloc((size_t)n * size);
	if (!q)
		*ok = 0;
	else
		memcpy(q, p, (size_t)n * size);
	return q;
}

int cpn_cfg_copy(struct cpn_cfg *dst, const struct cpn_cfg *src)
{
	int ok = 1;

	*dst = *src;
	dst->services = dup_array(src->services, src->n_services, sizeof(*src->services), &ok);
	dst->nodes = dup_array(src->nodes, src->n_nodes, sizeof(*src->nodes), &ok);
	dst->tenants = dup_array(src->tenants, src->n_tenants, sizeof(*src->tenants), &ok);
	if (!ok) {
		cpn_cfg_free(dst);
		errno = ENOMEM;
		return -1;
	}
	if (!dst->services)
		dst->n_services = 0;
	if (!dst->nodes)
		dst->n_nodes = 0;
	if (!dst->tenants)
		dst->n_tenants = 0;
	return 0;
}

__u32 cpn_cfg_tenant_max_sessions(const struct cfg_tenant *t)
{
	return t->max_sessions ? t->max_sessions : CPN_DEFAULT_MAX_SESSIONS;
}
