// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A configuration written back as YAML: every field, one flow mapping per
 * item, so that cpn_cfg_load() reads back an equal config. Whatever
 * cpn_cfg_validate() accepts writes and reads back. cpnctl keeps its
 * desired state this way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "cpn_cfg_int.h"

/* ---- writing ------------------------------------------------------------- */

static void put_str(FILE *f, const char *s, size_t max)
{
	fputc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* The inverse of cpn_key_parse(): the key's bytes in order. */
static void put_key_as(FILE *f, const char *name, bool has, const __u64 key[2])
{
	if (!has)
		return;
	fprintf(f, ", %s: \"", name);
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", (unsigned)(key[i / 8] >> (8 * (i % 8))) & 0xff);
	fputc('"', f);
}

static void put_key(FILE *f, bool has, const __u64 key[2])
{
	put_key_as(f, "key", has, key);
}

static int put_svc_names(FILE *f, const struct cpn_cfg *cfg, const __u16 *ids, int n)
{
	fputs("services: [", f);
	for (int i = 0; i < n; i++) {
		const struct cfg_service *s = cpn_cfg_service(cfg, ids[i]);

		if (!s) {
			errno = EINVAL;
			return -1;
		}
		fputs(i ? ", " : "", f);
		put_str(f, s->name, sizeof(s->name));
	}
	fputc(']', f);
	return 0;
}

int cpn_cfg_write(FILE *f, const struct cpn_cfg *cfg)
{
	char buf[INET6_ADDRSTRLEN];

	fputs("# cpn configuration\n", f);
	fputs("interfaces: [", f);
	for (int i = 0; i < cfg->n_ifaces; i++) {
		fputs(i ? ", " : "", f);
		put_str(f, cfg->ifaces[i], IF_NAMESIZE);
	}
	fprintf(f, "]\nxdp_attach: %s\ncontrol_port: %u\nmetrics: ",
		cpn_xdp_attach_name(cfg->xdp_attach), cfg->control_port);
	put_str(f, cfg->metrics, sizeof(cfg->metrics));
	fprintf(f, "\nmax_hops: %u\nnh_ttl_ms: %u\nfreshness_ms: %u\n", cfg->max_hops,
		cfg->nh_ttl_ms, cfg->freshness_ms);
	if (cfg->has_hop_key) {
		fputs("fleet: {hop_key: \"", f);
		for (int i = 0; i < 16; i++)
			fprintf(f, "%02x", (unsigned)(cfg->hop_key[i / 8] >> (8 * (i % 8))) & 0xff);
		fputs("\"}\n", f);
	}

	fprintf(f, "services:%s\n", cfg->n_services ? "" : " []");
	for (int i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];

		if (s->policy > CPN_POL_MAX) {
			errno = EINVAL;
			return -1;
		}
		fputs("  - {name: ", f);
		put_str(f, s->name, sizeof(s->name));
		fprintf(f, ", id: %u, vip: \"%s\", port: %u, policy: %s, max_wait_us: %u", s->id,
			cpn_addr_str(s->vip, s->family, buf, sizeof(buf)), ntohs(s->port),
			cpn_policy_names[s->policy], s->max_wait_us);
		fprintf(f, ", max_queue: %u, stale_ms: %u, nodes: [", s->max_queue, s->stale_ms);
		for (int k = 0; k < s->n_nodes && k < CPN_MAX_SVC_NODES; k++)
			fprintf(f, "%s%u", k ? ", " : "", s->nodes[k]);
		fprintf(f, "], dataplane: %s, reply: %s, reply_check: %s%s",
			s->dpdk ? "dpdk" : "xdp", s->fullnat ? "router" : "direct",
			s->reply_unchecked ? "false" : "true",
			s->liveness_reports ? ", liveness: reports" : "");
		if (s->late) {
			fputs(", dispatch: late", f);
			if (s->late_bound)
				fprintf(f, ", late_bound: %u", s->late_bound);
		}
		fputs("}\n", f);
	}

	fprintf(f, "nodes:%s\n", cfg->n_nodes ? "" : " []");
	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *n = &cfg->nodes[i];
		bool v6 = n->family == CPN_AF_INET6;

		fprintf(f, "  - {id: %u, addr: \"%s%s%s:%u\", weight: %u", n->id, v6 ? "[" : "",
			cpn_addr_str(n->addr, n->family, buf, sizeof(buf)), v6 ? "]" : "",
			ntohs(n->port), n->weight);
		put_key(f, n->has_key, n->key);
		put_key_as(f, "key_next", n->has_key_next, n->key_next);
		fprintf(f, ", fresh: %s, drain: %s, joined: %s}\n",
			n->fresh_optional ? "optional" : "required", n->drain ? "true" : "false",
			n->joined ? "true" : "false");
	}

	fprintf(f, "tenants:%s\n", cfg->n_tenants ? "" : " []");
	for (int i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *t = &cfg->tenants[i];

		if (t->id == CPN_TENANT_ANY)
			fputs("  - {id: any, ", f);
		else
			fprintf(f, "  - {id: %u, ", t->id);
		if (put_svc_names(f, cfg, t->services, t->n_services))
			return -1;
		fprintf(f, ", rate: %llu, burst: %llu", (unsigned long long)t->rate,
			(unsigned long long)t->burst);
		put_key(f, t->has_key, t->key);
		put_key_as(f, "key_next", t->has_key_next, t->key_next);
		fprintf(f, ", fresh: %s, max_sessions: %u}\n",
			t->fresh_optional ? "optional" : "required",
			cpn_cfg_tenant_max_sessions(t));
	}

	if (cfg->has_auto_join) {
		const struct cfg_auto_join *aj = &cfg->auto_join;

		fputs("auto_join: {prefixes: [", f);
		for (int i = 0; i < aj->n_prefixes && i < CPN_CFG_MAX_PREFIXES; i++)
			fprintf(f, "%s\"%s/%u\"", i ? ", " : "",
				cpn_addr_str(aj->prefixes[i].addr, aj->prefixes[i].family, buf,
					     sizeof(buf)),
				aj->prefixes[i].len);
		fputs("], ", f);
		if (put_svc_names(f, cfg, aj->services, aj->n_services))
			return -1;
		fprintf(f, ", weight: %u, retire_ms: %u", aj->weight, aj->retire_ms);
		put_key(f, aj->has_key, aj->key);
		fputs("}\n", f);
	}
	return ferror(f) ? -1 : 0;
}
