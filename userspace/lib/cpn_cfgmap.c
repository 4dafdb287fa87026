// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Config -> map values: see cpn_cfg.h. */
#include <string.h>

#include "cpn_addr.h"
#include "cpn_cfg.h"

/* Open to every tenant: `any` admits the service with no key and no rate
 * limit, and no other tenant names it. Every request is then judged by
 * `any` whatever its tenant id, and admitted, so the data planes skip the
 * tenant lookups (CPN_SVC_OPEN).
 */
bool cpn_cfg_service_open(const struct cpn_cfg *cfg, __u16 id)
{
	bool any = false;

	for (int i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *t = &cfg->tenants[i];

		if (!cpn_cfg_tenant_lists(t, id))
			continue;
		if (t->id != CPN_TENANT_ANY || t->has_key || t->rate)
			return false;
		any = true;
	}
	return any;
}

void cpn_cfg_to_service(const struct cpn_cfg *cfg, const struct cfg_service *c,
			struct cpn_service *s)
{
	memset(s, 0, sizeof(*s));
	s->flags =
	    CPN_SVC_ACTIVE | (c->dpdk ? CPN_SVC_DPDK : 0) | (c->fullnat ? CPN_SVC_FULLNAT : 0);
	if (cpn_cfg_service_open(cfg, c->id))
		s->flags |= CPN_SVC_OPEN;
	/* cpn-fwd keeps no flows: a `dataplane: dpdk` service is not bound. */
	if (!c->reply_unchecked && !c->dpdk)
		s->flags |= CPN_SVC_REPLY_CHECK;
	if (c->liveness_reports)
		s->flags |= CPN_SVC_LIVENESS_REPORTS;
	if (c->late)
		s->flags |= CPN_SVC_LATE;
	s->late_bound = c->late_bound;
	s->id = c->id;
	s->policy = c->policy;
	s->family = c->family;
	s->port = c->port;
	memcpy(s->vip, c->vip, sizeof(s->vip));
	s->max_wait_us = c->max_wait_us;
	s->max_queue = c->max_queue;
	s->stale_ms = c->stale_ms;
	cpn_svc_set_nodes(s, c->nodes, (__u32)c->n_nodes);
}

void cpn_cfg_to_node(const struct cfg_node *c, struct cpn_node_cfg *n, __u32 *admin)
{
	memset(n, 0, sizeof(*n));
	memcpy(n->addr, c->addr, sizeof(n->addr));
	n->port = c->port;
	n->family = c->family;
	n->flags = CPN_NODE_CFG_VALID | (c->has_key ? CPN_NODE_CFG_KEY : 0);
	if (c->has_key) {
		n->key[0] = c->key[0];
		n->key[1] = c->key[1];
		if (!c->fresh_optional)
			n->flags |= CPN_NODE_CFG_FRESH;
		if (c->has_key_next) {
			n->flags |= CPN_NODE_CFG_KEY_NEXT;
			n->key_next[0] = c->key_next[0];
			n->key_next[1] = c->key_next[1];
		}
	}
	*admin = CPN_ADMIN_UP | (c->drain ? CPN_ADMIN_DRAIN : 0);
	/* This router's own address toward the node: full NAT's source. */
	cpn_route_src(n->addr, n->family, n->src);
}

void cpn_cfg_to_tenant(const struct cfg_tenant *c, struct cpn_tenant *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < c->n_services; i++)
		t->services[c->services[i] / 64] |= 1ULL << (c->services[i] % 64);
	cpn_tenant_set_rate(t, c->rate, c->burst);
	t->max_sessions = cpn_cfg_tenant_max_sessions(c);
	if (c->has_key) {
		t->flags |= CPN_TENANT_KEY | (c->fresh_optional ? 0 : CPN_TENANT_FRESH);
		t->key[0] = c->key[0];
		t->key[1] = c->key[1];
		if (c->has_key_next) {
			t->flags |= CPN_TENANT_KEY_NEXT;
			t->key_next[0] = c->key_next[0];
			t->key_next[1] = c->key_next[1];
		}
	}
}
