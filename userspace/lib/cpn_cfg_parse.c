// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The configuration's first step: the shape of the YAML file. It is read
 * with libyaml's document API, so that every value knows the line it came
 * from: known keys, each once; values of the right type and range;
 * addresses, prefixes, keys, names. Then cpn_cfg_check.c judges the items
 * against each other, pointing at the lines recorded here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <yaml.h>

#include "cpn_cfg_int.h"

struct ctx {
	const char *name;
	struct cpn_err *err;
	yaml_document_t *doc;
	struct cpn_cfg *cfg;
	struct lines lx;
	int svc_cap, node_cap, tenant_cap;
};

#define fail(c, line, ...) cpn_cfg__errat((c)->err, (c)->name, (line), __VA_ARGS__)

static int cmp_svc(const void *a, const void *b)
{
	const struct cfg_service *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int cmp_node(const void *a, const void *b)
{
	const struct cfg_node *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int cmp_tenant(const void *a, const void *b)
{
	const struct cfg_tenant *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* ---- parsing ------------------------------------------------------------- */

static yaml_node_t *get(struct ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

static int n_pairs(const yaml_node_t *m)
{
	return (int)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

static int n_items(const yaml_node_t *seq)
{
	return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item(struct ctx *c, const yaml_node_t *seq, int i)
{
	return get(c, seq->data.sequence.items.start[i]);
}

static int ln(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = sval(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static const char *kind(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (is_null(n))
		return "an empty value";
	return "a string";
}

/* One `key: value` of a section, and how messages name it. */
struct field {
	struct ctx *c;
	const char *sec; /* "service", "node", ... or NULL at the top level */
	const char *key;
	int kline; /* line of the key */
	yaml_node_t *v;
};

#define WHAT(f) (f)->sec ? (f)->sec : "", (f)->sec ? " " : "", (f)->key

/* The line of the value; an empty value has the key's. */
static int vline(const struct field *f)
{
	return is_null(f->v) ? f->kline : ln(f->v);
}

static int get_num(const struct field *f, __u64 min, __u64 max, __u64 *out)
{
	const yaml_node_t *v = f->v;
	const char *s, *d = "0123456789";
	unsigned long long lo = min, hi = max;
	__u64 x = 0;

	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return fail(f->c, vline(f), "%s%s%s must be a number, not %s: use %llu..%llu",
			    WHAT(f), kind(v), lo, hi);
	s = sval(v);
	if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail(f->c, vline(f),
			    "%s%s%s must be a number, not the quoted string \"%s\": remove the "
			    "quotes",
			    WHAT(f), s);
	if (s[0] == '-' && s[1] && strspn(s + 1, d) == strlen(s + 1))
		return fail(f->c, vline(f), "%s%s%s %s is negative: use %llu..%llu", WHAT(f), s, lo,
			    hi);
	if (strspn(s, d) != strlen(s))
		return fail(f->c, vline(f),
			    "%s%s%s '%s' is not a number: use a whole number in %llu..%llu",
			    WHAT(f), s, lo, hi);
	for (const char *p = s; *p; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (x > (UINT64_MAX - digit) / 10) {
			x = UINT64_MAX;
			break;
		}
		x = x * 10 + digit;
	}
	if (x < min || x > max || strlen(s) > 20)
		return fail(f->c, vline(f), "%s%s%s %s is out of range: use %llu..%llu", WHAT(f), s,
			    lo, hi);
	*out = x;
	return 0;
}

static int get_u32(const struct field *f, __u32 min, __u32 max, __u32 *out)
{
	__u64 x;

	if (get_num(f, min, max, &x))
		return -1;
	*out = (__u32)x;
	return 0;
}

/* A scalar's text, any style. */
static int get_s(const struct field *f, const char **out)
{
	const yaml_node_t *v = f->v;

	if (v->type != YAML_SCALAR_NODE || is_null(v))
		return fail(f->c, vline(f), "%s%s%s must be a string, not %s", WHAT(f), kind(v));
	if (strlen(sval(v)) != v->data.scalar.length)
		return fail(f->c, vline(f), "%s%s%s contains a NUL character", WHAT(f));
	*out = sval(v);
	return 0;
}

static int get_str(const struct field *f, char *buf, size_t size)
{
	const char *s;

	if (get_s(f, &s))
		return -1;
	if (strlen(s) >= size)
		return fail(f->c, vline(f), "%s%s%s '%.40s' is too long: at most %zu characters",
			    WHAT(f), s, size - 1);
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int get_bool(const struct field *f, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
									       "off"};
	const yaml_node_t *v = f->v;

	if (v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		for (int i = 0; i < 3; i++) {
			if (!strcasecmp(sval(v), yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcasecmp(sval(v), no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	return fail(f->c, vline(f), "%s%s%s must be true or false, not %s%s%s%s", WHAT(f), kind(v),
		    v->type == YAML_SCALAR_NODE && !is_null(v) ? " '" : "",
		    v->type == YAML_SCALAR_NODE && !is_null(v) ? sval(v) : "",
		    v->type == YAML_SCALAR_NODE && !is_null(v) ? "'" : "");
}

static int get_key(const struct field *f, bool *has, __u64 key[2])
{
	const char *s;

	if (get_s(f, &s))
		return -1;
	if (cpn_key_parse(s, key))
		return fail(f->c, vline(f),
			    "%s%s%s is not 32 hex digits: write the 16-byte key as 32 hex digits "
			    "(openssl rand -hex 16)",
			    WHAT(f));
	*has = true;
	return 0;
}

/* fresh: required (false) or optional (true). */
static int get_fresh(const struct field *f, bool *optional)
{
	const char *s;

	if (get_s(f, &s))
		return -1;
	if (strcmp(s, "required") && strcmp(s, "optional"))
		return fail(f->c, vline(f),
			    "unknown fresh '%.40s': use required (signed messages must carry "
			    "FRESH) or optional",
			    s);
	*optional = !strcmp(s, "optional");
	return 0;
}

/* A list; an empty value is an empty list (*out = NULL). */
static int get_list(const struct field *f, yaml_node_t **out)
{
	*out = NULL;
	if (is_null(f->v))
		return 0;
	if (f->v->type != YAML_SEQUENCE_NODE)
		return fail(f->c, vline(f), "%s%s%s must be a list such as [a, b], not %s", WHAT(f),
			    kind(f->v));
	*out = f->v;
	return 0;
}

/* The key of a pair: one of keys[], each at most once (*seen). */
static int key_of(struct ctx *c, const char *sec, const char *const *keys, int nkeys,
		  const yaml_node_pair_t *p, unsigned long *seen, struct field *f)
{
	yaml_node_t *k = get(c, p->key);
	char in[32], known[256] = "";
	size_t n = 0;

	if (!sec)
		snprintf(in, sizeof(in), "at the top level");
	else
		snprintf(in, sizeof(in), "in %s%s",
			 strcmp(sec, "auto_join") && strcmp(sec, "fleet") ? "a " : "", sec);
	f->c = c;
	f->sec = sec;
	f->kline = ln(k);
	f->v = get(c, p->value);
	if (k->type != YAML_SCALAR_NODE)
		return fail(c, ln(k), "a key %s is %s: keys are names such as %s", in, kind(k),
			    keys[0]);
	for (int i = 0; i < nkeys; i++) {
		if (strcmp(sval(k), keys[i]))
			continue;
		if (*seen & (1UL << i))
			return fail(c, ln(k), "duplicate key '%s' %s: give it once", keys[i], in);
		*seen |= 1UL << i;
		f->key = keys[i];
		return i;
	}
	for (int i = 0; i < nkeys && n < sizeof(known); i++)
		n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", keys[i]);
	return fail(c, ln(k), "unknown key '%.40s' %s: the keys are %s", sval(k), in, known);
}

/* "every service needs name, id, vip and port" for the first missing one. */
static int need(struct ctx *c, const yaml_node_t *m, const char *sec, const char *const *keys,
		unsigned long seen, unsigned long required, const char *list)
{
	for (int i = 0; required >> i; i++)
		if ((required & (1UL << i)) && !(seen & (1UL << i)))
			return fail(c, ln(m), "%s has no %s: every %s needs %s", sec, keys[i], sec,
				    list);
	return 0;
}

static int want_map(struct ctx *c, const yaml_node_t *m, const char *sec, const char *example)
{
	if (m->type == YAML_MAPPING_NODE)
		return 0;
	return fail(c, ln(m), "%s must be a mapping such as %s, not %s", sec, example, kind(m));
}

static int grow(void **p, int *cap, int n, size_t size)
{
	void *q;
	int ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	q = realloc(*p, (size_t)ncap * size);
	if (!q)
		return -1;
	memset((char *)q + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
	*p = q;
	*cap = ncap;
	return 0;
}

static int parse_ifaces(struct ctx *c, const struct field *f)
{
	struct cpn_cfg *cfg = c->cfg;
	yaml_node_t *seq;

	if (get_list(f, &seq))
		return -1;
	if (!seq)
		return 0;
	for (int i = 0; i < n_items(seq); i++) {
		struct field fi = {c, NULL, "interface name", 0, item(c, seq, i)};
		char *name = cfg->ifaces[cfg->n_ifaces];

		fi.kline = ln(fi.v);
		if (cfg->n_ifaces == CPN_CFG_MAX_IFACES)
			return fail(c, fi.kline,
				    "more than %d interfaces: too many, list at most %d",
				    CPN_CFG_MAX_IFACES, CPN_CFG_MAX_IFACES);
		if (get_str(&fi, name, IF_NAMESIZE))
			return -1;
		if (!cpn_cfg__iface_ok(name))
			return fail(c, fi.kline,
				    "interface name '%s' is not a valid interface name", name);
		for (int j = 0; j < cfg->n_ifaces; j++)
			if (!strcmp(cfg->ifaces[j], name))
				return fail(
				    c, fi.kline,
				    "interface %s is listed twice: list each interface once", name);
		cfg->n_ifaces++;
	}
	return 0;
}

static int parse_service(struct ctx *c, yaml_node_t *m, struct cfg_service *s, struct svc_lines *sl)
{
	static const char *const keys[] = {"name",     "id",	      "vip",	   "port",
					   "policy",   "max_wait_us", "max_queue", "stale_ms",
					   "nodes",    "dataplane",   "reply",	   "reply_check",
					   "liveness", "dispatch",    "late_bound"};
	enum {
		K_NAME,
		K_ID,
		K_VIP,
		K_PORT,
		K_POLICY,
		K_WAIT,
		K_QUEUE,
		K_STALE,
		K_NODES,
		K_DP,
		K_REPLY,
		K_REPLY_CHECK,
		K_LIVENESS,
		K_DISPATCH,
		K_LATE_BOUND,
	};
	unsigned long seen = 0;
	int bound_line = 0;
	struct field f;
	const char *str;
	yaml_node_t *seq;
	__u32 x;
	int k, pol;

	if (want_map(c, m, "a service", "{name: resnet, id: 1, vip: 10.0.0.100, port: 7470}"))
		return -1;
	s->policy = CPN_POL_P2C;
	s->stale_ms = CPN_DEFAULT_STALE_MS;
	s->line = ln(m);
	for (int i = 0; i < n_pairs(m); i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];

		if ((k = key_of(c, "service", keys, (int)(sizeof(keys) / sizeof(keys[0])), p, &seen,
				&f)) < 0)
			return -1;
		switch (k) {
		case K_NAME:
			if (get_str(&f, s->name, sizeof(s->name)))
				return -1;
			if (!cpn_cfg__name_ok(s->name))
				return fail(c, vline(&f),
					    "service name '%s' is not a valid name: use letters, "
					    "digits, '.', '-' and '_'",
					    s->name);
			sl->name = vline(&f);
			break;
		case K_ID:
			if (get_u32(&f, 0, CPN_MAX_SERVICES - 1, &x))
				return -1;
			s->id = (__u16)x;
			sl->id = vline(&f);
			break;
		case K_VIP:
			if (get_s(&f, &str))
				return -1;
			if (cpn_addr_parse(str, s->vip, &s->family))
				return fail(
				    c, vline(&f),
				    "service vip '%.60s' is not an IPv4 or IPv6 address: "
				    "write a bare address such as 10.0.0.100 or fd00::100 (the "
				    "port goes in port)",
				    str);
			sl->vip = vline(&f);
			break;
		case K_PORT:
			if (get_u32(&f, 1, 65535, &x))
				return -1;
			s->port = htons((__u16)x);
			break;
		case K_POLICY:
			if (get_s(&f, &str))
				return -1;
			if ((pol = cpn_policy_parse(str)) < 0)
				return fail(
				    c, vline(&f),
				    "unknown policy '%.40s': use p2c, jiq, least, maglev, random "
				    "or round-robin",
				    str);
			s->policy = (__u8)pol;
			break;
		case K_WAIT:
			if (get_u32(&f, 0, UINT32_MAX, &s->max_wait_us))
				return -1;
			break;
		case K_QUEUE:
			if (get_u32(&f, 0, UINT32_MAX, &s->max_queue))
				return -1;
			break;
		case K_STALE:
			if (get_u32(&f, 1, UINT32_MAX, &s->stale_ms))
				return -1;
			break;
		case K_NODES:
			if (get_list(&f, &seq))
				return -1;
			if (!seq)
				break;
			for (int j = 0; j < n_items(seq); j++) {
				struct field fi = {c, "service", "node id", 0, item(c, seq, j)};

				fi.kline = ln(fi.v);
				if (s->n_nodes == CPN_MAX_SVC_NODES)
					return fail(
					    c, fi.kline,
					    "service lists more than %d nodes: too many, at "
					    "most %d per service",
					    CPN_MAX_SVC_NODES, CPN_MAX_SVC_NODES);
				if (get_u32(&fi, 1, CPN_MAX_NODES - 1, &x))
					return -1;
				sl->nodes[s->n_nodes] = fi.kline;
				s->nodes[s->n_nodes++] = (__u16)x;
			}
			break;
		case K_DP:
			if (get_s(&f, &str))
				return -1;
			if (strcmp(str, "xdp") && strcmp(str, "dpdk"))
				return fail(c, vline(&f),
					    "unknown dataplane '%.40s': use xdp or dpdk", str);
			s->dpdk = !strcmp(str, "dpdk");
			break;
		case K_REPLY:
			if (get_s(&f, &str))
				return -1;
			if (strcmp(str, "direct") && strcmp(str, "router"))
				return fail(
				    c, vline(&f),
				    "unknown reply '%.40s': use direct (the node answers the "
				    "client) or router (back through the router that steered "
				    "it)",
				    str);
			s->fullnat = !strcmp(str, "router");
			break;
		case K_REPLY_CHECK: {
			bool on;

			if (get_bool(&f, &on))
				return -1;
			s->reply_unchecked = !on;
			break;
		}
		case K_LIVENESS:
			if (get_s(&f, &str))
				return -1;
			if (strcmp(str, "traffic") && strcmp(str, "reports"))
				return fail(
				    c, vline(&f),
				    "unknown liveness '%.40s': use traffic (answers and "
				    "reports) or reports (reports only: this router does not "
				    "see the service's answers)",
				    str);
			s->liveness_reports = !strcmp(str, "reports");
			break;
		case K_DISPATCH:
			if (get_s(&f, &str))
				return -1;
			if (strcmp(str, "early") && strcmp(str, "late"))
				return fail(
				    c, vline(&f),
				    "unknown dispatch '%.40s': use early (bound to a node on "
				    "arrival) or late (held by cpn-fwd until a node has room)",
				    str);
			s->late = !strcmp(str, "late");
			break;
		case K_LATE_BOUND:
			if (get_u32(&f, 1, CPN_LATE_BOUND_MAX, &x))
				return -1;
			s->late_bound = (__u16)x;
			bound_line = vline(&f);
			break;
		}
	}
	if (bound_line && !s->late)
		return fail(c, bound_line,
			    "late_bound is the bound of dispatch: late: add dispatch: late to the "
			    "service, or remove late_bound");
	if (s->late && s->liveness_reports)
		return fail(c, s->line,
			    "dispatch: late counts the answers that free a node's slots: it cannot "
			    "go with liveness: reports (answers this router does not see)");
	if (s->late && s->max_queue > CPN_LATE_QUEUE_MAX)
		return fail(c, s->line,
			    "max_queue %u is above %u, the most a dispatch: late service holds",
			    s->max_queue, CPN_LATE_QUEUE_MAX);
	return need(c, m, "service", keys, seen,
		    1UL << K_NAME | 1UL << K_ID | 1UL << K_VIP | 1UL << K_PORT,
		    "name, id, vip and port");
}

static int parse_node(struct ctx *c, yaml_node_t *m, struct cfg_node *n, struct node_lines *nl)
{
	static const char *const keys[] = {"id",    "addr",   "weight",	  "key",
					   "drain", "joined", "key_next", "fresh"};
	enum { K_ID, K_ADDR, K_WEIGHT, K_KEY, K_DRAIN, K_JOINED, K_KEY_NEXT, K_FRESH };
	unsigned long seen = 0;
	struct field f;
	const char *str;
	__u32 x;
	int k;

	if (want_map(c, m, "a node", "{id: 1, addr: \"10.1.0.2:7470\"}"))
		return -1;
	n->weight = CPN_DEFAULT_WEIGHT;
	n->line = ln(m);
	for (int i = 0; i < n_pairs(m); i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];

		if ((k = key_of(c, "node", keys, 8, p, &seen, &f)) < 0)
			return -1;
		switch (k) {
		case K_ID:
			if (get_u32(&f, 1, CPN_MAX_NODES - 1, &x))
				return -1;
			n->id = (__u16)x;
			nl->id = vline(&f);
			break;
		case K_ADDR:
			if (get_s(&f, &str))
				return -1;
			/* More than one colon and no brackets: an IPv6 address
			 * whose port cannot be told from its last group.
			 */
			if (str[0] != '[' && strchr(str, ':') != strrchr(str, ':'))
				return fail(
				    c, vline(&f),
				    "node addr '%.60s' is ambiguous: put an IPv6 address in "
				    "brackets, such as [fd00::2]:7470",
				    str);
			if (cpn_addr_port_parse(str, n->addr, &n->port, &n->family))
				return fail(c, vline(&f),
					    "node addr '%.60s' is not ADDR:PORT: write it as "
					    "10.1.0.2:7470 or [fd00::2]:7470",
					    str);
			nl->addr = vline(&f);
			break;
		case K_WEIGHT:
			if (get_u32(&f, 1, CPN_CFG_WEIGHT_MAX, &n->weight))
				return -1;
			break;
		case K_KEY:
			if (get_key(&f, &n->has_key, n->key))
				return -1;
			break;
		case K_DRAIN:
			if (get_bool(&f, &n->drain))
				return -1;
			break;
		case K_JOINED:
			if (get_bool(&f, &n->joined))
				return -1;
			break;
		case K_KEY_NEXT:
			if (get_key(&f, &n->has_key_next, n->key_next))
				return -1;
			break;
		case K_FRESH:
			if (get_fresh(&f, &n->fresh_optional))
				return -1;
			break;
		}
	}
	return need(c, m, "node", keys, seen, 1UL << K_ID | 1UL << K_ADDR, "id and addr");
}

/* A list of service names, resolved to ids (services are parsed by now). */
static int parse_svc_names(const struct field *f, __u16 *ids, int *n)
{
	struct ctx *c = f->c;
	yaml_node_t *seq;

	if (get_list(f, &seq))
		return -1;
	if (!seq)
		return 0;
	for (int i = 0; i < n_items(seq); i++) {
		struct field fi = {c, f->sec, "service", 0, item(c, seq, i)};
		const struct cfg_service *s;
		const char *str;

		fi.kline = ln(fi.v);
		if (get_s(&fi, &str))
			return -1;
		s = cpn_cfg_service_by_name(c->cfg, str);
		if (!s)
			return fail(
			    c, fi.kline,
			    "%s names service '%.40s', which is not defined: define it under "
			    "services or take it out of %s",
			    f->sec, str, strcmp(f->sec, "tenant") ? f->sec : "the tenant");
		/* The same service, not merely the same id: two services that
		 * share an id are the error validation reports, not this one.
		 */
		for (int j = 0; j < *n; j++)
			if (cpn_cfg_service(c->cfg, ids[j]) == s)
				return fail(c, fi.kline,
					    "%s lists service %s twice: list each service once",
					    f->sec, s->name);
		if (*n == CPN_MAX_SERVICES)
			return fail(c, fi.kline, "%s lists too many services", f->sec);
		ids[(*n)++] = s->id;
	}
	return 0;
}

static int parse_tenant(struct ctx *c, yaml_node_t *m, struct cfg_tenant *t, int *id_line)
{
	static const char *const keys[] = {"id",  "services", "rate",  "burst",
					   "key", "key_next", "fresh", "max_sessions"};
	enum { K_ID, K_SERVICES, K_RATE, K_BURST, K_KEY, K_KEY_NEXT, K_FRESH, K_SESSIONS };
	unsigned long seen = 0;
	struct field f;
	__u64 x;
	int k;

	if (want_map(c, m, "a tenant", "{id: 42, services: [resnet], rate: 10000}"))
		return -1;
	t->line = ln(m);
	for (int i = 0; i < n_pairs(m); i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];

		if ((k = key_of(c, "tenant", keys, 8, p, &seen, &f)) < 0)
			return -1;
		switch (k) {
		case K_ID:
			/* `any`: every tenant id, for the services it lists. */
			if (f.v->type == YAML_SCALAR_NODE &&
			    f.v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    !strcmp(sval(f.v), "any"))
				x = CPN_TENANT_ANY;
			else if (get_num(&f, 0, CPN_TENANT_ANY - 1, &x))
				return -1;
			t->id = (__u32)x;
			*id_line = vline(&f);
			break;
		case K_SERVICES:
			if (parse_svc_names(&f, t->services, &t->n_services))
				return -1;
			break;
		case K_RATE:
			if (get_num(&f, 0, CPN_CFG_RATE_MAX, &t->rate))
				return -1;
			break;
		case K_BURST:
			if (get_num(&f, 1, CPN_CFG_BURST_MAX, &t->burst))
				return -1;
			break;
		case K_KEY:
			if (get_key(&f, &t->has_key, t->key))
				return -1;
			break;
		case K_KEY_NEXT:
			if (get_key(&f, &t->has_key_next, t->key_next))
				return -1;
			break;
		case K_FRESH:
			if (get_fresh(&f, &t->fresh_optional))
				return -1;
			break;
		case K_SESSIONS:
			if (get_u32(&f, 1, CPN_CFG_SESSIONS_MAX, &t->max_sessions))
				return -1;
			break;
		}
	}
	if (!(seen & (1UL << K_BURST)))
		t->burst = t->rate ? t->rate : 1;
	return need(c, m, "tenant", keys, seen, 1UL << K_ID, "an id");
}

static int parse_prefix(const struct field *f, struct cfg_prefix *p)
{
	char addr[INET6_ADDRSTRLEN + 1], buf[INET6_ADDRSTRLEN];
	const char *str, *slash;
	__be32 masked[4];
	uint64_t len = 0;
	size_t al;

	if (get_s(f, &str))
		return -1;
	slash = strchr(str, '/');
	al = slash ? (size_t)(slash - str) : 0;
	if (!slash || !al || al >= sizeof(addr) || !slash[1] || strlen(slash + 1) > 3 ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1))
		goto bad;
	memcpy(addr, str, al);
	addr[al] = 0;
	if (cpn_addr_parse(addr, p->addr, &p->family))
		goto bad;
	if (cpn_parse_u64(slash + 1, 0, p->family == CPN_AF_INET6 ? 128 : 32, &len))
		goto bad;
	p->len = (__u8)len;
	if (!cpn_cfg__prefix_mask(p, masked)) {
		return fail(f->c, vline(f), "%s prefix '%s' has host bits set: write %s/%u", f->sec,
			    str, cpn_addr_str(masked, p->family, buf, sizeof(buf)), p->len);
	}
	return 0;
bad:
	return fail(f->c, vline(f),
		    "%s prefix '%.60s' is not a prefix: write ADDR/LEN such as 10.1.0.0/16 or "
		    "fd01::/64",
		    f->sec, str);
}

static int parse_auto_join(struct ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"prefixes", "services", "weight", "retire_ms", "key"};
	enum { K_PREFIXES, K_SERVICES, K_WEIGHT, K_RETIRE, K_KEY };
	struct cfg_auto_join *aj = &c->cfg->auto_join;
	unsigned long seen = 0;
	yaml_node_t *seq;
	struct field f;
	int k;

	if (is_null(m))
		return 0; /* "auto_join:" with nothing: no joining */
	if (want_map(c, m, "auto_join", "{prefixes: [10.1.0.0/16], services: [resnet]}"))
		return -1;
	c->cfg->has_auto_join = true;
	aj->line = ln(m);
	for (int i = 0; i < n_pairs(m); i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];

		if ((k = key_of(c, "auto_join", keys, 5, p, &seen, &f)) < 0)
			return -1;
		switch (k) {
		case K_PREFIXES:
			if (get_list(&f, &seq))
				return -1;
			if (!seq)
				break;
			for (int j = 0; j < n_items(seq); j++) {
				struct field fi = {c, "auto_join", "prefix", 0, item(c, seq, j)};

				fi.kline = ln(fi.v);
				if (aj->n_prefixes == CPN_CFG_MAX_PREFIXES)
					return fail(
					    c, fi.kline,
					    "auto_join lists more than %d prefixes: too many",
					    CPN_CFG_MAX_PREFIXES);
				if (parse_prefix(&fi, &aj->prefixes[aj->n_prefixes]))
					return -1;
				aj->n_prefixes++;
			}
			break;
		case K_SERVICES:
			if (parse_svc_names(&f, aj->services, &aj->n_services))
				return -1;
			break;
		case K_WEIGHT:
			if (get_u32(&f, 1, CPN_CFG_WEIGHT_MAX, &aj->weight))
				return -1;
			break;
		case K_RETIRE:
			if (get_u32(&f, 1, UINT32_MAX, &aj->retire_ms))
				return -1;
			break;
		case K_KEY:
			if (get_key(&f, &aj->has_key, aj->key))
				return -1;
			break;
		}
	}
	return 0;
}

static int parse_services(struct ctx *c, const struct field *f)
{
	struct cpn_cfg *cfg = c->cfg;
	yaml_node_t *seq;

	if (get_list(f, &seq))
		return -1;
	if (!seq)
		return 0;
	for (int i = 0; i < n_items(seq); i++) {
		yaml_node_t *m = item(c, seq, i);
		int cap = c->svc_cap;

		if (cfg->n_services == CPN_MAX_SERVICES)
			return fail(c, ln(m), "more than %d services: too many", CPN_MAX_SERVICES);
		if (grow((void **)&cfg->services, &cap, cfg->n_services, sizeof(*cfg->services)) ||
		    grow((void **)&c->lx.svc, &c->svc_cap, cfg->n_services, sizeof(*c->lx.svc)))
			return fail(c, ln(m), "out of memory");
		if (parse_service(c, m, &cfg->services[cfg->n_services],
				  &c->lx.svc[cfg->n_services]))
			return -1;
		cfg->n_services++;
	}
	return 0;
}

static int parse_nodes(struct ctx *c, const struct field *f)
{
	struct cpn_cfg *cfg = c->cfg;
	yaml_node_t *seq;

	if (get_list(f, &seq))
		return -1;
	if (!seq)
		return 0;
	for (int i = 0; i < n_items(seq); i++) {
		yaml_node_t *m = item(c, seq, i);
		int cap = c->node_cap;

		if (cfg->n_nodes == CPN_MAX_NODES - 1)
			return fail(c, ln(m), "more than %d nodes: too many", CPN_MAX_NODES - 1);
		if (grow((void **)&cfg->nodes, &cap, cfg->n_nodes, sizeof(*cfg->nodes)) ||
		    grow((void **)&c->lx.node, &c->node_cap, cfg->n_nodes, sizeof(*c->lx.node)))
			return fail(c, ln(m), "out of memory");
		if (parse_node(c, m, &cfg->nodes[cfg->n_nodes], &c->lx.node[cfg->n_nodes]))
			return -1;
		cfg->n_nodes++;
	}
	return 0;
}

static int parse_tenants(struct ctx *c, const struct field *f)
{
	struct cpn_cfg *cfg = c->cfg;
	yaml_node_t *seq;

	if (get_list(f, &seq))
		return -1;
	if (!seq)
		return 0;
	for (int i = 0; i < n_items(seq); i++) {
		yaml_node_t *m = item(c, seq, i);
		int cap = c->tenant_cap;

		if (cfg->n_tenants == CPN_MAX_TENANTS)
			return fail(c, ln(m), "more than %d tenants: too many", CPN_MAX_TENANTS);
		if (grow((void **)&cfg->tenants, &cap, cfg->n_tenants, sizeof(*cfg->tenants)) ||
		    grow((void **)&c->lx.tenant, &c->tenant_cap, cfg->n_tenants,
			 sizeof(*c->lx.tenant)))
			return fail(c, ln(m), "out of memory");
		if (parse_tenant(c, m, &cfg->tenants[cfg->n_tenants],
				 &c->lx.tenant[cfg->n_tenants]))
			return -1;
		cfg->n_tenants++;
	}
	return 0;
}

/* fleet: {hop_key: HEX32}: what the routers of a fleet share. */
static int parse_fleet(struct ctx *c, yaml_node_t *m)
{
	static const char *const keys[] = {"hop_key"};
	unsigned long seen = 0;
	struct field f;

	if (is_null(m))
		return 0;
	if (want_map(c, m, "fleet", "{hop_key: 00112233445566778899aabbccddeeff}"))
		return -1;
	for (int i = 0; i < n_pairs(m); i++) {
		yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];

		if (key_of(c, "fleet", keys, 1, p, &seen, &f) < 0)
			return -1;
		if (get_key(&f, &c->cfg->has_hop_key, c->cfg->hop_key))
			return -1;
		if (!c->cfg->hop_key[0] && !c->cfg->hop_key[1])
			return fail(
			    c, vline(&f),
			    "fleet hop_key is all zero: draw one with openssl rand -hex 16");
	}
	return 0;
}

static int parse_root(struct ctx *c, yaml_node_t *root)
{
	static const char *const keys[] = {"interfaces", "control_port", "metrics", "max_hops",
					   "nh_ttl_ms",	 "services",	 "nodes",   "tenants",
					   "auto_join",	 "xdp_attach",	 "fleet",   "freshness_ms"};
	enum {
		K_IFACES,
		K_CPORT,
		K_METRICS,
		K_HOPS,
		K_TTL,
		K_SERVICES,
		K_NODES,
		K_TENANTS,
		K_AJ,
		K_XDP_ATTACH,
		K_FLEET,
		K_FRESHNESS,
	};
	struct cpn_cfg *cfg = c->cfg;
	struct field f, tenants = {0}, aj = {0};
	unsigned long seen = 0;
	const char *str;
	__be32 a[4];
	__be16 port;
	__u8 fam;
	__u32 x;
	int k;

	if (!root || is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return fail(c, ln(root),
			    "the file is %s: it must be a mapping of keys such as interfaces:, "
			    "services:, nodes:",
			    kind(root));
	for (int i = 0; i < n_pairs(root); i++) {
		yaml_node_pair_t *p = &root->data.mapping.pairs.start[i];

		if ((k = key_of(c, NULL, keys, 12, p, &seen, &f)) < 0)
			return -1;
		switch (k) {
		case K_XDP_ATTACH: {
			int how;

			if (get_s(&f, &str))
				return -1;
			if ((how = cpn_xdp_attach_parse(str)) < 0)
				return fail(c, vline(&f),
					    "unknown xdp_attach '%.40s': use auto, libxdp or plain",
					    str);
			cfg->xdp_attach = (__u8)how;
			break;
		}
		case K_IFACES:
			if (parse_ifaces(c, &f))
				return -1;
			break;
		case K_CPORT:
			if (get_u32(&f, 1, 65535, &x))
				return -1;
			cfg->control_port = (__u16)x;
			break;
		case K_METRICS:
			if (get_s(&f, &str))
				return -1;
			if (strlen(str) >= sizeof(cfg->metrics) ||
			    !cpn_cfg__addr_port_ok(str, a, &port, &fam))
				return fail(c, vline(&f),
					    "metrics '%.60s' is not ADDR:PORT: write it as %s or "
					    "[::1]:9470",
					    str, CPN_DEFAULT_METRICS);
			memcpy(cfg->metrics, str, strlen(str) + 1);
			break;
		case K_HOPS:
			if (get_u32(&f, 1, CPN_CFG_HOPS_MAX, &x))
				return -1;
			cfg->max_hops = (__u16)x;
			break;
		case K_TTL:
			if (get_u32(&f, 1, CPN_CFG_NH_TTL_MAX, &cfg->nh_ttl_ms))
				return -1;
			break;
		case K_SERVICES:
			if (parse_services(c, &f))
				return -1;
			break;
		case K_NODES:
			if (parse_nodes(c, &f))
				return -1;
			break;
		case K_TENANTS:
			tenants = f; /* after services, whose names they use */
			break;
		case K_AJ:
			aj = f;
			break;
		case K_FRESHNESS:
			if (get_u32(&f, 1, CPN_CFG_FRESH_MAX, &cfg->freshness_ms))
				return -1;
			break;
		case K_FLEET:
			if (parse_fleet(c, f.v))
				return -1;
			break;
		}
	}
	if (tenants.v && parse_tenants(c, &tenants))
		return -1;
	if (aj.v && parse_auto_join(c, aj.v))
		return -1;
	return 0;
}

/* libyaml's own message and line. */
static int syntax_error(struct ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
	int line = (int)p->problem_mark.line + 1;
	char where[96] = "";

	if (p->error == YAML_READER_ERROR) {
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < len; i++)
			line += text[i] == '\n';
	}
	if (p->context)
		snprintf(where, sizeof(where), " (%s at line %d)", p->context,
			 (int)p->context_mark.line + 1);
	if (p->error == YAML_MEMORY_ERROR)
		return fail(c, 0, "out of memory");
	return fail(c, line, "YAML syntax error: %s%s: fix the YAML", p->problem ? p->problem : "?",
		    where);
}

int cpn_cfg_parse(const char *name, const char *yaml, size_t len, struct cpn_cfg *cfg,
		  struct cpn_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *r2;
	struct ctx c = {.name = name ? name : "config", .err = err, .doc = &doc, .cfg = cfg};
	int rc = -1;

	cpn_cfg_init(cfg);
	err->msg[0] = 0;
	if (!yaml_parser_initialize(&parser))
		return fail(&c, 0, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		syntax_error(&c, &parser, yaml, len);
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!yaml_parser_load(&parser, &extra)) {
		syntax_error(&c, &parser, yaml, len);
		goto out;
	}
	r2 = yaml_document_get_root_node(&extra);
	if (r2) {
		fail(&c, ln(r2), "a second YAML document: put the whole configuration in one");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	rc = parse_root(&c, root);
	if (!rc)
		rc = cpn_cfg__check(cfg, c.name, &c.lx, err);
	if (!rc) {
		if (cfg->n_services)
			qsort(cfg->services, (size_t)cfg->n_services, sizeof(*cfg->services),
			      cmp_svc);
		if (cfg->n_nodes)
			qsort(cfg->nodes, (size_t)cfg->n_nodes, sizeof(*cfg->nodes), cmp_node);
		if (cfg->n_tenants)
			qsort(cfg->tenants, (size_t)cfg->n_tenants, sizeof(*cfg->tenants),
			      cmp_tenant);
	}
out:
	free(c.lx.svc);
	free(c.lx.node);
	free(c.lx.tenant);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc)
		cpn_cfg_free(cfg);
	return rc;
}

int cpn_cfg_load(const char *path, struct cpn_cfg *cfg, struct cpn_err *err)
{
	size_t len = 0, cap = 0, n;
	char *buf = NULL, *nb;
	FILE *f;
	int rc;

	cpn_cfg_init(cfg);
	f = fopen(path, "r");
	if (!f)
		return cpn_cfg__errat(err, path, 0, "cannot open: %s", strerror(errno));
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 16384;
			nb = cap > (64u << 20) ? NULL : realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return cpn_cfg__errat(err, path, 0, "too large or out of memory");
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	if (ferror(f)) {
		rc = cpn_cfg__errat(err, path, 0, "cannot read: %s", strerror(errno));
		free(buf);
		fclose(f);
		return rc;
	}
	fclose(f);
	rc = cpn_cfg_parse(path, buf ? buf : "", len, cfg, err);
	free(buf);
	return rc;
}
