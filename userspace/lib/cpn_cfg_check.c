// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The configuration's second step: what one item says about another
 * (duplicate ids, names and VIP:ports, the nodes a service names, address
 * families, limits). Shared by the parser (cpn_cfg_parse.c) and by
 * cpn_cfg_validate() for a config built in memory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>

#include "cpn_cfg_int.h"

/* ---- errors ------------------------------------------------------------ */

int cpn_cfg__errat(struct cpn_err *err, const char *name, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (line > 0)
		n = snprintf(err->msg, sizeof(err->msg), "%s:%d: ", name, line);
	else
		n = snprintf(err->msg, sizeof(err->msg), "%s: ", name);
	if (n < 0 || (size_t)n >= sizeof(err->msg))
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *family_name(__u8 family)
{
	return family == CPN_AF_INET6 ? "IPv6" : "IPv4";
}

static bool family_ok(__u8 family)
{
	return family == CPN_AF_INET || family == CPN_AF_INET6;
}

bool cpn_cfg__name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* What the kernel takes as a device name, and what YAML reads back. */
bool cpn_cfg__iface_ok(const char *s)
{
	return *s && !strpbrk(s, "/: \t\n\"\\") && strcmp(s, ".") && strcmp(s, "..");
}

/* ADDR:PORT, an IPv6 address in brackets (fd00::1:80 would be ambiguous). */
bool cpn_cfg__addr_port_ok(const char *s, __be32 addr[4], __be16 *port, __u8 *family)
{
	return !cpn_addr_port_parse(s, addr, port, family) &&
	       (*family != CPN_AF_INET6 || s[0] == '[');
}

/* The prefix with its host bits cleared; true if none was set. */
bool cpn_cfg__prefix_mask(const struct cfg_prefix *p, __be32 out[4])
{
	const __u8 *b = (const __u8 *)p->addr;
	__u8 *o = (__u8 *)out;
	bool clean = true;

	memset(out, 0, 16);
	for (int i = 0; i < (p->family == CPN_AF_INET6 ? 16 : 4); i++) {
		int bits = (int)p->len - 8 * i;
		__u8 mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (__u8)(0xff << (8 - bits));

		o[i] = b[i] & mask;
		clean &= o[i] == b[i];
	}
	return clean;
}

/* ---- validation ------------------------------------------------------------ */

/* The line of a value when the parser recorded it, else the item's. */
#define LX(lx, arr, i, f, dflt) ((lx) && (lx)->arr && (lx)->arr[i].f ? (lx)->arr[i].f : (dflt))

struct tid {
	__u32 id;
	int idx;
};

static int cmp_tid(const void *a, const void *b)
{
	const struct tid *x = a, *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return x->idx - y->idx;
}

static int check_globals(const struct cpn_cfg *cfg, const char *name, struct cpn_err *err)
{
	__be32 a[4];
	__be16 port;
	__u8 fam;

	if (cfg->xdp_attach > CPN_XDP_ATTACH_PLAIN)
		return cpn_cfg__errat(err, name, 0, "xdp_attach %u: use auto, libxdp or plain",
				      cfg->xdp_attach);
	if (cfg->n_ifaces < 0 || cfg->n_ifaces > CPN_CFG_MAX_IFACES)
		return cpn_cfg__errat(err, name, 0, "%d interfaces: at most %d", cfg->n_ifaces,
				      CPN_CFG_MAX_IFACES);
	for (int i = 0; i < cfg->n_ifaces; i++) {
		if (!memchr(cfg->ifaces[i], 0, IF_NAMESIZE))
			return cpn_cfg__errat(
			    err, name, 0, "interface name %d is too long: at most %d characters",
			    i + 1, IF_NAMESIZE - 1);
		if (!cpn_cfg__iface_ok(cfg->ifaces[i]))
			return cpn_cfg__errat(err, name, 0,
					      "interface name '%s' is not a valid interface name",
					      cfg->ifaces[i]);
		for (int j = 0; j < i; j++)
			if (!strcmp(cfg->ifaces[i], cfg->ifaces[j]))
				return cpn_cfg__errat(
				    err, name, 0,
				    "interface %s is listed twice: list each interface once",
				    cfg->ifaces[i]);
	}
	if (!cfg->control_port)
		return cpn_cfg__errat(err, name, 0, "control_port 0 is out of range: use 1..65535");
	if (!memchr(cfg->metrics, 0, sizeof(cfg->metrics)) ||
	    !cpn_cfg__addr_port_ok(cfg->metrics, a, &port, &fam))
		return cpn_cfg__errat(err, name, 0, "metrics is not ADDR:PORT such as %s",
				      CPN_DEFAULT_METRICS);
	if (cfg->max_hops < 1 || cfg->max_hops > CPN_CFG_HOPS_MAX)
		return cpn_cfg__errat(err, name, 0, "max_hops %u is out of range: use 1..%d",
				      cfg->max_hops, CPN_CFG_HOPS_MAX);
	if (cfg->nh_ttl_ms < 1 || cfg->nh_ttl_ms > CPN_CFG_NH_TTL_MAX)
		return cpn_cfg__errat(err, name, 0, "nh_ttl_ms %u is out of range: use 1..%d",
				      cfg->nh_ttl_ms, CPN_CFG_NH_TTL_MAX);
	if (cfg->freshness_ms < 1 || cfg->freshness_ms > CPN_CFG_FRESH_MAX)
		return cpn_cfg__errat(err, name, 0, "freshness_ms %u is out of range: use 1..%d",
				      cfg->freshness_ms, CPN_CFG_FRESH_MAX);
	if (cfg->has_hop_key && !cfg->hop_key[0] && !cfg->hop_key[1])
		return cpn_cfg__errat(
		    err, name, 0, "fleet hop_key is all zero: draw one with openssl rand -hex 16");
	return 0;
}

static int check_services(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
			  struct cpn_err *err)
{
	int first[CPN_MAX_SERVICES];

	if (cfg->n_services < 0 || cfg->n_services > CPN_MAX_SERVICES ||
	    (cfg->n_services && !cfg->services))
		return cpn_cfg__errat(err, name, 0, "%d services: at most %d", cfg->n_services,
				      CPN_MAX_SERVICES);
	for (int i = 0; i < CPN_MAX_SERVICES; i++)
		first[i] = -1;
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		int line = s->line;

		if (!memchr(s->name, 0, sizeof(s->name)) || !cpn_cfg__name_ok(s->name))
			return cpn_cfg__errat(
			    err, name, LX(lx, svc, i, name, line),
			    "service %u has a bad name: use 1..%d letters, digits, '.', '-' "
			    "or '_'",
			    s->id, CPN_NAME_MAX - 1);
		if (s->id >= CPN_MAX_SERVICES)
			return cpn_cfg__errat(err, name, LX(lx, svc, i, id, line),
					      "service %s id %u is out of range: use 0..%d",
					      s->name, s->id, CPN_MAX_SERVICES - 1);
		if (first[s->id] >= 0) {
			const struct cfg_service *o = &cfg->services[first[s->id]];

			return cpn_cfg__errat(
			    err, name, LX(lx, svc, i, id, line),
			    "duplicate service id %u: service %s (line %d) has it too: give "
			    "every service its own id",
			    s->id, o->name, LX(lx, svc, first[s->id], id, o->line));
		}
		first[s->id] = i;
		for (int j = 0; j < i; j++) {
			const struct cfg_service *o = &cfg->services[j];

			if (!strcmp(o->name, s->name))
				return cpn_cfg__errat(
				    err, name, LX(lx, svc, i, name, line),
				    "duplicate service name %s: service %u (line %d) has it too: "
				    "give every service its own name",
				    s->name, o->id, LX(lx, svc, j, name, o->line));
		}
		if (!family_ok(s->family))
			return cpn_cfg__errat(err, name, LX(lx, svc, i, vip, line),
					      "service %s has no VIP address family", s->name);
		for (int j = 0; j < i; j++) {
			const struct cfg_service *o = &cfg->services[j];
			char buf[INET6_ADDRSTRLEN];

			if (o->family == s->family && o->port == s->port &&
			    !memcmp(o->vip, s->vip, sizeof(s->vip)))
				return cpn_cfg__errat(
				    err, name, LX(lx, svc, i, vip, line),
				    "duplicate VIP %s port %u in service %s: service %s (line "
				    "%d) has it too: give every service its own VIP:port",
				    cpn_addr_str(s->vip, s->family, buf, sizeof(buf)),
				    ntohs(s->port), s->name, o->name, LX(lx, svc, j, vip, o->line));
		}
		if (!s->port)
			return cpn_cfg__errat(err, name, line,
					      "service %s port 0 is out of range: use 1..65535",
					      s->name);
		if (s->policy > CPN_POL_MAX)
			return cpn_cfg__errat(err, name, line,
					      "service %s has an unknown policy %u", s->name,
					      s->policy);
		if (!s->stale_ms)
			return cpn_cfg__errat(
			    err, name, line,
			    "service %s stale_ms 0 is out of range: use at least 1", s->name);
		if (s->n_nodes < 0 || s->n_nodes > CPN_MAX_SVC_NODES)
			return cpn_cfg__errat(
			    err, name, line,
			    "service %s lists %d nodes: too many, at most %d per service", s->name,
			    s->n_nodes, CPN_MAX_SVC_NODES);
		if ((s->policy == CPN_POL_LEAST || s->policy == CPN_POL_RR) &&
		    s->n_nodes > CPN_SVC_SCAN_MAX)
			return cpn_cfg__errat(err, name, line,
					      "service %s lists %d nodes, and policy %s looks at "
					      "every one: at most %d; use p2c or jiq for more",
					      s->name, s->n_nodes, cpn_policy_names[s->policy],
					      CPN_SVC_SCAN_MAX);
	}
	return 0;
}

static int check_nodes(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
		       struct cpn_err *err)
{
	int first[CPN_MAX_NODES];

	if (cfg->n_nodes < 0 || cfg->n_nodes > CPN_MAX_NODES - 1 || (cfg->n_nodes && !cfg->nodes))
		return cpn_cfg__errat(err, name, 0, "%d nodes: at most %d", cfg->n_nodes,
				      CPN_MAX_NODES - 1);
	for (int i = 0; i < CPN_MAX_NODES; i++)
		first[i] = -1;
	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *n = &cfg->nodes[i];
		int line = n->line;

		if (!n->id || n->id >= CPN_MAX_NODES)
			return cpn_cfg__errat(err, name, LX(lx, node, i, id, line),
					      "node id %u is out of range: use 1..%d", n->id,
					      CPN_MAX_NODES - 1);
		if (first[n->id] >= 0)
			return cpn_cfg__errat(
			    err, name, LX(lx, node, i, id, line),
			    "duplicate node id %u: line %d has it too: give every node its own id",
			    n->id, LX(lx, node, first[n->id], id, cfg->nodes[first[n->id]].line));
		first[n->id] = i;
		if (!family_ok(n->family) || !n->port)
			return cpn_cfg__errat(
			    err, name, LX(lx, node, i, addr, line),
			    "node %u has a bad addr: use ADDR:PORT such as 10.1.0.2:7470", n->id);
		if (n->weight < 1 || n->weight > CPN_CFG_WEIGHT_MAX)
			return cpn_cfg__errat(err, name, line,
					      "node %u weight %u is out of range: use 1..%d", n->id,
					      n->weight, CPN_CFG_WEIGHT_MAX);
		if (n->has_key_next && !n->has_key)
			return cpn_cfg__errat(
			    err, name, line,
			    "node %u has key_next but no key: key_next is the key "
			    "that comes next in a rotation, give key too",
			    n->id);
	}
	return 0;
}

/* What each service says about the nodes it names. */
static int check_svc_nodes(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
			   struct cpn_err *err)
{
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];

		for (int k = 0; k < s->n_nodes; k++) {
			int line = LX(lx, svc, i, nodes[k], s->line);
			const struct cfg_node *n = cpn_cfg_node(cfg, s->nodes[k]);
			char buf[INET6_ADDRSTRLEN];

			for (int j = 0; j < k; j++)
				if (s->nodes[j] == s->nodes[k])
					return cpn_cfg__errat(
					    err, name, line,
					    "service %s lists node %u twice: list each node "
					    "once",
					    s->name, s->nodes[k]);
			if (!n)
				return cpn_cfg__errat(
				    err, name, line,
				    "service %s names node %u, which is not defined: add it "
				    "to nodes or take it out of the service",
				    s->name, s->nodes[k]);
			if (n->family != s->family)
				return cpn_cfg__errat(
				    err, name, line,
				    "service %s has an %s VIP but node %u (line %d) is %s %s: "
				    "a service's nodes must be in its VIP's address family",
				    s->name, family_name(s->family), n->id, n->line,
				    family_name(n->family),
				    cpn_addr_str(n->addr, n->family, buf, sizeof(buf)));
		}
	}
	return 0;
}

static int check_tenants(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
			 struct cpn_err *err)
{
	struct tid *ids;

	if (cfg->n_tenants < 0 || cfg->n_tenants > CPN_MAX_TENANTS ||
	    (cfg->n_tenants && !cfg->tenants))
		return cpn_cfg__errat(err, name, 0, "%d tenants: at most %d", cfg->n_tenants,
				      CPN_MAX_TENANTS);
	for (int i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *t = &cfg->tenants[i];

		if (t->n_services < 0 || t->n_services > CPN_MAX_SERVICES)
			return cpn_cfg__errat(err, name, t->line,
					      "tenant %u lists %d services: at most %d", t->id,
					      t->n_services, CPN_MAX_SERVICES);
		for (int k = 0; k < t->n_services; k++) {
			if (!cpn_cfg_service(cfg, t->services[k]))
				return cpn_cfg__errat(
				    err, name, t->line,
				    "tenant %u names service id %u, which is not defined: "
				    "define it under services or take it out of the tenant",
				    t->id, t->services[k]);
			for (int j = 0; j < k; j++)
				if (t->services[j] == t->services[k])
					return cpn_cfg__errat(
					    err, name, t->line,
					    "tenant %u lists service %s twice: list each "
					    "service once",
					    t->id, cpn_cfg_service(cfg, t->services[k])->name);
		}
		if (t->rate > CPN_CFG_RATE_MAX)
			return cpn_cfg__errat(err, name, t->line,
					      "tenant %u rate %llu is out of range: use 0..%llu",
					      t->id, (unsigned long long)t->rate, CPN_CFG_RATE_MAX);
		if (t->burst < 1 || t->burst > CPN_CFG_BURST_MAX)
			return cpn_cfg__errat(
			    err, name, t->line, "tenant %u burst %llu is out of range: use 1..%llu",
			    t->id, (unsigned long long)t->burst, CPN_CFG_BURST_MAX);
		if (t->has_key_next && !t->has_key)
			return cpn_cfg__errat(
			    err, name, t->line,
			    "tenant %u has key_next but no key: key_next is the key "
			    "that comes next in a rotation, give key too",
			    t->id);
		if (t->max_sessions > CPN_CFG_SESSIONS_MAX)
			return cpn_cfg__errat(
			    err, name, t->line,
			    "tenant %u max_sessions %u is out of range: use 1..%d", t->id,
			    t->max_sessions, CPN_CFG_SESSIONS_MAX);
	}
	if (cfg->n_tenants < 2)
		return 0;
	ids = malloc((size_t)cfg->n_tenants * sizeof(*ids));
	if (!ids)
		return cpn_cfg__errat(err, name, 0, "out of memory");
	for (int i = 0; i < cfg->n_tenants; i++)
		ids[i] = (struct tid){cfg->tenants[i].id, i};
	qsort(ids, (size_t)cfg->n_tenants, sizeof(*ids), cmp_tid);
	for (int i = 1; i < cfg->n_tenants; i++) {
		if (ids[i].id != ids[i - 1].id)
			continue;
		int a = ids[i - 1].idx, b = ids[i].idx;
		int la = lx && lx->tenant && lx->tenant[a] ? lx->tenant[a] : cfg->tenants[a].line;
		int lb = lx && lx->tenant && lx->tenant[b] ? lx->tenant[b] : cfg->tenants[b].line;
		char id[16];

		if (ids[i].id == CPN_TENANT_ANY)
			snprintf(id, sizeof(id), "any");
		else
			snprintf(id, sizeof(id), "%u", ids[i].id);
		free(ids);
		return cpn_cfg__errat(
		    err, name, lb,
		    "duplicate tenant id %s: line %d has it too: give every tenant its own id", id,
		    la);
	}
	free(ids);
	return 0;
}

static int check_auto_join(const struct cpn_cfg *cfg, const char *name, struct cpn_err *err)
{
	const struct cfg_auto_join *aj = &cfg->auto_join;
	__be32 masked[4];

	if (!cfg->has_auto_join)
		return 0;
	if (aj->n_prefixes < 0 || aj->n_prefixes > CPN_CFG_MAX_PREFIXES)
		return cpn_cfg__errat(err, name, aj->line, "auto_join has %d prefixes: at most %d",
				      aj->n_prefixes, CPN_CFG_MAX_PREFIXES);
	for (int i = 0; i < aj->n_prefixes; i++) {
		const struct cfg_prefix *p = &aj->prefixes[i];

		if (!family_ok(p->family) || p->len > (p->family == CPN_AF_INET6 ? 128 : 32) ||
		    !cpn_cfg__prefix_mask(p, masked))
			return cpn_cfg__errat(
			    err, name, aj->line,
			    "auto_join prefix %d is not a prefix such as 10.1.0.0/16", i + 1);
	}
	if (aj->n_services < 0 || aj->n_services > CPN_MAX_SERVICES)
		return cpn_cfg__errat(err, name, aj->line,
				      "auto_join lists %d services: at most %d", aj->n_services,
				      CPN_MAX_SERVICES);
	for (int k = 0; k < aj->n_services; k++) {
		if (!cpn_cfg_service(cfg, aj->services[k]))
			return cpn_cfg__errat(
			    err, name, aj->line,
			    "auto_join names service id %u, which is not defined: define it "
			    "under services or take it out of auto_join",
			    aj->services[k]);
		for (int j = 0; j < k; j++)
			if (aj->services[j] == aj->services[k])
				return cpn_cfg__errat(
				    err, name, aj->line,
				    "auto_join lists service %s twice: list each service once",
				    cpn_cfg_service(cfg, aj->services[k])->name);
	}
	if (aj->weight < 1 || aj->weight > CPN_CFG_WEIGHT_MAX)
		return cpn_cfg__errat(err, name, aj->line,
				      "auto_join weight %u is out of range: use 1..%d", aj->weight,
				      CPN_CFG_WEIGHT_MAX);
	if (!aj->retire_ms)
		return cpn_cfg__errat(err, name, aj->line,
				      "auto_join retire_ms 0 is out of range: use at least 1");
	return 0;
}

int cpn_cfg__check(const struct cpn_cfg *cfg, const char *name, const struct lines *lx,
		   struct cpn_err *err)
{
	if (check_globals(cfg, name, err) || check_services(cfg, name, lx, err) ||
	    check_nodes(cfg, name, lx, err) || check_svc_nodes(cfg, name, lx, err) ||
	    check_tenants(cfg, name, lx, err) || check_auto_join(cfg, name, err))
		return -1;
	return 0;
}

int cpn_cfg_validate(const struct cpn_cfg *cfg, struct cpn_err *err)
{
	return cpn_cfg__check(cfg, "config", NULL, err);
}
