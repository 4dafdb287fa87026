// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of cpnctl's configuration (userspace/cpnctl/config.c): the
 * documented example (docs/OPERATIONS.md) and its defaults, IPv6, a table of broken files that
 * must each be refused with "FILE:LINE: reason" naming the right line,
 * the write/parse round trip, deep copies and in-memory validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "cpn_addr.h"
#include "cpn_cfg.h"

#define KEY1 "00112233445566778899aabbccddeeff"
#define KEY2 "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define KEY3 "ffeeddccbbaa99887766554433221100"

/* The documented example with every optional field spelled out. */
static const char design_yaml[] =
    "interfaces: [eth0, eth1]\n"
    "control_port: 7471\n"
    "metrics: 127.0.0.1:9470\n"
    "max_hops: 4\n"
    "nh_ttl_ms: 100\n"
    "services:\n"
    "  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, policy: p2c,\n"
    "     max_wait_us: 20000, max_queue: 256, stale_ms: 500, nodes: [1, 2, 3], dataplane: xdp}\n"
    "nodes:\n"
    "  - {id: 1, addr: \"10.1.0.2:7470\", weight: 100, key: \"" KEY1 "\", drain: false, "
    "joined: false}\n"
    "  - {id: 2, addr: \"10.1.0.3:7470\", weight: 100}\n"
    "  - {id: 3, addr: \"10.1.0.4:7471\", weight: 250}\n"
    "tenants:\n"
    "  - {id: 42, services: [resnet], rate: 10000, burst: 2000, key: \"" KEY2 "\"}\n"
    "auto_join: {prefixes: [10.1.0.0/16], services: [resnet], weight: 100, retire_ms: 5000, "
    "key: \"" KEY3 "\"}\n";

/* Everything that can differ from a default, IPv4 and IPv6, block and flow
 * style, items out of id order.
 */
static const char full_yaml[] =
    "# a comment\n"
    "interfaces:\n"
    "  - eth0\n"
    "  - ens1f0np0\n"
    "control_port: 9000\n"
    "metrics: \"[::1]:9999\"\n"
    "max_hops: 7\n"
    "nh_ttl_ms: 250\n"
    "services:\n"
    "  - name: bert\n"
    "    id: 7\n"
    "    vip: fd00::100\n"
    "    port: 8080\n"
    "    policy: round-robin\n"
    "    max_wait_us: 1000\n"
    "    max_queue: 16\n"
    "    stale_ms: 50\n"
    "    nodes: [12, 11]\n"
    "    dataplane: dpdk\n"
    "  - {name: resnet, id: 1, vip: 10.0.0.100, port: 7470, policy: maglev, nodes: [3, 1]}\n"
    "  - {name: idle.svc-0, id: 0, vip: 10.0.0.100, port: 7471, policy: least}\n"
    "  - {name: r, id: 255, vip: 10.0.0.101, port: 1, policy: random}\n"
    "nodes:\n"
    "  - {id: 3, addr: \"10.1.0.4:7471\", weight: 1000, drain: true}\n"
    "  - {id: 1, addr: \"10.1.0.2:7470\", weight: 1, key: \"" KEY1 "\"}\n"
    "  - {id: 12, addr: \"[fd01::12]:7470\", joined: true}\n"
    "  - {id: 11, addr: \"[fd01::11]:65535\", key: \"" KEY3 "\", drain: false}\n"
    "  - {id: 1023, addr: \"192.168.1.1:7470\"}\n"
    "tenants:\n"
    "  - {id: any, services: [bert, resnet, r], rate: 1000000000, burst: 1000000000}\n"
    "  - {id: 0, services: [], key: \"" KEY2 "\"}\n"
    "  - {id: 42, services: [resnet], rate: 7}\n"
    "auto_join:\n"
    "  prefixes: [10.1.0.0/16, \"fd01::/64\", 0.0.0.0/0, 192.168.1.1/32]\n"
    "  services: [resnet, bert]\n"
    "  weight: 3\n"
    "  retire_ms: 1\n"
    "xdp_attach: libxdp\n";

static int parse(const char *yaml, struct cpn_cfg *cfg, struct cpn_err *err)
{
	return cpn_cfg_parse("test.yaml", yaml, strlen(yaml), cfg, err);
}

static void parse_ok(const char *yaml, struct cpn_cfg *cfg)
{
	struct cpn_err err = {""};

	if (parse(yaml, cfg, &err)) {
		print_error("unexpected error: %s\n", err.msg);
		fail();
	}
}

static void assert_addr(const __be32 addr[4], __u8 family, const char *want, __u8 want_family)
{
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(family, want_family);
	assert_string_equal(cpn_addr_str(addr, family, buf, sizeof(buf)), want);
	if (family == CPN_AF_INET)
		assert_true(!addr[1] && !addr[2] && !addr[3]);
}

/* key[] as cpn_key_parse() gives it: bytes in order, read little-endian. */
static void assert_key(const __u64 key[2], const char *hex)
{
	for (int i = 0; i < 16; i++) {
		unsigned b;

		sscanf(hex + 2 * i, "%2x", &b);
		assert_int_equal((key[i / 8] >> (8 * (i % 8))) & 0xff, b);
	}
}

/* ---- the documented example ------------------------------------------------ */

static void test_design_example(void **state)
{
	struct cpn_cfg cfg;
	const struct cfg_service *s;
	const struct cfg_node *n;
	const struct cfg_tenant *t;
	const struct cfg_auto_join *aj = &cfg.auto_join;

	(void)state;
	parse_ok(design_yaml, &cfg);
	assert_int_equal(cfg.n_ifaces, 2);
	assert_string_equal(cfg.ifaces[0], "eth0");
	assert_string_equal(cfg.ifaces[1], "eth1");
	assert_int_equal(cfg.control_port, 7471);
	assert_string_equal(cfg.metrics, "127.0.0.1:9470");
	assert_int_equal(cfg.max_hops, 4);
	assert_int_equal(cfg.nh_ttl_ms, 100);
	assert_int_equal(cfg.xdp_attach, CPN_XDP_ATTACH_AUTO);

	assert_int_equal(cfg.n_services, 1);
	s = &cfg.services[0];
	assert_string_equal(s->name, "resnet");
	assert_int_equal(s->id, 1);
	assert_addr(s->vip, s->family, "10.0.0.100", CPN_AF_INET);
	assert_int_equal(ntohs(s->port), 7470);
	assert_int_equal(s->policy, CPN_POL_P2C);
	assert_false(s->dpdk);
	assert_int_equal(s->max_wait_us, 20000);
	assert_int_equal(s->max_queue, 256);
	assert_int_equal(s->stale_ms, 500);
	assert_int_equal(s->n_nodes, 3);
	assert_int_equal(s->nodes[0], 1);
	assert_int_equal(s->nodes[1], 2);
	assert_int_equal(s->nodes[2], 3);
	assert_int_equal(s->line, 7);

	assert_int_equal(cfg.n_nodes, 3);
	n = &cfg.nodes[0];
	assert_int_equal(n->id, 1);
	assert_addr(n->addr, n->family, "10.1.0.2", CPN_AF_INET);
	assert_int_equal(ntohs(n->port), 7470);
	assert_int_equal(n->weight, 100);
	assert_true(n->has_key);
	assert_key(n->key, KEY1);
	assert_true(n->key[0] == 0x7766554433221100ULL && n->key[1] == 0xffeeddccbbaa9988ULL);
	assert_false(n->drain);
	assert_false(n->joined);
	assert_int_equal(n->line, 10);
	n = &cfg.nodes[1];
	assert_int_equal(n->id, 2);
	assert_addr(n->addr, n->family, "10.1.0.3", CPN_AF_INET);
	assert_int_equal(ntohs(n->port), 7470);
	assert_int_equal(n->weight, 100);
	assert_false(n->has_key);
	n = &cfg.nodes[2];
	assert_int_equal(n->id, 3);
	assert_addr(n->addr, n->family, "10.1.0.4", CPN_AF_INET);
	assert_int_equal(ntohs(n->port), 7471);
	assert_int_equal(n->weight, 250);

	assert_int_equal(cfg.n_tenants, 1);
	t = &cfg.tenants[0];
	assert_int_equal(t->id, 42);
	assert_int_equal(t->n_services, 1);
	assert_int_equal(t->services[0], 1);
	assert_int_equal(t->rate, 10000);
	assert_int_equal(t->burst, 2000);
	assert_true(t->has_key);
	assert_key(t->key, KEY2);
	assert_int_equal(t->line, 14);

	assert_true(cfg.has_auto_join);
	assert_int_equal(aj->n_prefixes, 1);
	assert_addr(aj->prefixes[0].addr, aj->prefixes[0].family, "10.1.0.0", CPN_AF_INET);
	assert_int_equal(aj->prefixes[0].len, 16);
	assert_int_equal(aj->n_services, 1);
	assert_int_equal(aj->services[0], 1);
	assert_int_equal(aj->weight, 100);
	assert_int_equal(aj->retire_ms, 5000);
	assert_true(aj->has_key);
	assert_key(aj->key, KEY3);
	assert_int_equal(aj->line, 15);

	/* lookups */
	assert_ptr_equal(cpn_cfg_service(&cfg, 1), &cfg.services[0]);
	assert_null(cpn_cfg_service(&cfg, 2));
	assert_ptr_equal(cpn_cfg_service_by_name(&cfg, "resnet"), &cfg.services[0]);
	assert_null(cpn_cfg_service_by_name(&cfg, "resne"));
	assert_ptr_equal(cpn_cfg_node(&cfg, 3), &cfg.nodes[2]);
	assert_null(cpn_cfg_node(&cfg, 4));
	assert_ptr_equal(cpn_cfg_tenant(&cfg, 42), &cfg.tenants[0]);
	assert_null(cpn_cfg_tenant(&cfg, 43));
	cpn_cfg_free(&cfg);
	assert_null(cfg.services);
	assert_int_equal(cfg.n_services, 0);
	cpn_cfg_free(&cfg); /* twice is harmless */
}

static void test_policy_parse(void **state)
{
	(void)state;
	assert_int_equal(cpn_policy_parse("p2c"), CPN_POL_P2C);
	assert_int_equal(cpn_policy_parse("least"), CPN_POL_LEAST);
	assert_int_equal(cpn_policy_parse("maglev"), CPN_POL_MAGLEV);
	assert_int_equal(cpn_policy_parse("random"), CPN_POL_RANDOM);
	assert_int_equal(cpn_policy_parse("round-robin"), CPN_POL_RR);
	assert_int_equal(cpn_policy_parse("rr"), -1);
	assert_int_equal(cpn_policy_parse(""), -1);
	assert_int_equal(cpn_policy_parse("P2C"), -1);
}

/* ---- defaults ------------------------------------------------------------- */

static void assert_global_defaults(const struct cpn_cfg *cfg)
{
	assert_int_equal(cfg->n_ifaces, 0);
	assert_int_equal(cfg->control_port, 7471);
	assert_string_equal(cfg->metrics, "127.0.0.1:9470");
	assert_int_equal(cfg->max_hops, 4);
	assert_int_equal(cfg->nh_ttl_ms, 100);
	assert_int_equal(cfg->freshness_ms, 2000);
	assert_false(cfg->has_hop_key);
}

static void test_empty(void **state)
{
	static const char *const empty[] = {
	    "",
	    "\n",
	    "# nothing here\n",
	    "---\n",
	    "~\n",
	    "{}\n",
	    "interfaces:\nservices:\nnodes: []\ntenants:\nauto_join:\n",
	};
	struct cpn_cfg cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		parse_ok(empty[i], &cfg);
		assert_global_defaults(&cfg);
		assert_int_equal(cfg.n_services, 0);
		assert_int_equal(cfg.n_nodes, 0);
		assert_int_equal(cfg.n_tenants, 0);
		assert_false(cfg.has_auto_join);
		assert_null(cfg.services);
		cpn_cfg_free(&cfg);
	}
	cpn_cfg_init(&cfg);
	assert_global_defaults(&cfg);
	assert_int_equal(cfg.auto_join.weight, 100);
	assert_int_equal(cfg.auto_join.retire_ms, 5000);
}

/* Tenants and auto_join may come before the services they name. */
static void test_order(void **state)
{
	static const char yaml[] = "tenants:\n"
				   "  - {id: 1, services: [s]}\n"
				   "auto_join: {services: [s]}\n"
				   "services:\n"
				   "  - {name: s, id: 3, vip: 10.0.0.1, port: 80}\n";
	struct cpn_cfg cfg;

	(void)state;
	parse_ok(yaml, &cfg);
	assert_int_equal(cfg.tenants[0].services[0], 3);
	assert_int_equal(cfg.auto_join.services[0], 3);
	cpn_cfg_free(&cfg);
}

static void test_defaults(void **state)
{
	static const char yaml[] = "services:\n"
				   "  - {name: s, id: 3, vip: 10.0.0.1, port: 80}\n"
				   "nodes:\n"
				   "  - {id: 5, addr: \"10.1.0.5:7470\"}\n"
				   "tenants:\n"
				   "  - {id: 1}\n"
				   "  - {id: 2, rate: 500}\n"
				   "  - {id: 3, rate: 500, burst: 9}\n"
				   "auto_join: {}\n";
	struct cpn_cfg cfg;
	const struct cfg_service *s;
	const struct cfg_node *n;

	(void)state;
	parse_ok(yaml, &cfg);
	assert_global_defaults(&cfg);
	s = &cfg.services[0];
	assert_int_equal(s->policy, CPN_POL_P2C);
	assert_false(s->dpdk);
	assert_int_equal(s->max_wait_us, 0);
	assert_int_equal(s->max_queue, 0);
	assert_int_equal(s->stale_ms, 500);
	assert_int_equal(s->n_nodes, 0);
	assert_false(s->reply_unchecked);
	n = &cfg.nodes[0];
	assert_int_equal(n->weight, 100);
	assert_false(n->has_key);
	assert_false(n->has_key_next);
	assert_false(n->fresh_optional);
	assert_false(n->drain);
	assert_false(n->joined);
	assert_int_equal(cfg.n_tenants, 3);
	assert_int_equal(cfg.tenants[0].rate, 0);
	assert_int_equal(cfg.tenants[0].burst, 1);
	assert_int_equal(cfg.tenants[0].n_services, 0);
	assert_false(cfg.tenants[0].has_key);
	assert_false(cfg.tenants[0].has_key_next);
	assert_false(cfg.tenants[0].fresh_optional);
	assert_int_equal(cpn_cfg_tenant_max_sessions(&cfg.tenants[0]), 4096);
	assert_int_equal(cfg.tenants[1].rate, 500);
	assert_int_equal(cfg.tenants[1].burst, 500);
	assert_int_equal(cfg.tenants[2].burst, 9);
	assert_true(cfg.has_auto_join);
	assert_int_equal(cfg.auto_join.n_prefixes, 0);
	assert_int_equal(cfg.auto_join.n_services, 0);
	assert_int_equal(cfg.auto_join.weight, 100);
	assert_int_equal(cfg.auto_join.retire_ms, 5000);
	assert_false(cfg.auto_join.has_key);
	cpn_cfg_free(&cfg);
}

/* ---- IPv6, sorting, every non-default value ------------------------------- */

static void test_full_ipv6_sorted(void **state)
{
	struct cpn_cfg cfg;
	const struct cfg_service *s;
	const struct cfg_node *n;
	const struct cfg_auto_join *aj = &cfg.auto_join;

	(void)state;
	parse_ok(full_yaml, &cfg);
	assert_int_equal(cfg.n_ifaces, 2);
	assert_string_equal(cfg.ifaces[1], "ens1f0np0");
	assert_int_equal(cfg.control_port, 9000);
	assert_string_equal(cfg.metrics, "[::1]:9999");
	assert_int_equal(cfg.max_hops, 7);
	assert_int_equal(cfg.nh_ttl_ms, 250);
	assert_int_equal(cfg.xdp_attach, CPN_XDP_ATTACH_LIBXDP);

	/* sorted by id */
	assert_int_equal(cfg.n_services, 4);
	assert_int_equal(cfg.services[0].id, 0);
	assert_int_equal(cfg.services[1].id, 1);
	assert_int_equal(cfg.services[2].id, 7);
	assert_int_equal(cfg.services[3].id, 255);
	assert_int_equal(cfg.n_nodes, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(cfg.nodes[i].id, ((const int[]){1, 3, 11, 12, 1023})[i]);
	assert_int_equal(cfg.n_tenants, 3);
	assert_int_equal(cfg.tenants[0].id, 0);
	assert_int_equal(cfg.tenants[1].id, 42);
	assert_int_equal(cfg.tenants[2].id, CPN_TENANT_ANY); /* `any` sorts last */

	s = cpn_cfg_service_by_name(&cfg, "bert");
	assert_non_null(s);
	assert_int_equal(s->id, 7);
	assert_addr(s->vip, s->family, "fd00::100", CPN_AF_INET6);
	assert_int_equal(ntohs(s->port), 8080);
	assert_int_equal(s->policy, CPN_POL_RR);
	assert_true(s->dpdk);
	assert_int_equal(s->max_wait_us, 1000);
	assert_int_equal(s->max_queue, 16);
	assert_int_equal(s->stale_ms, 50);
	assert_int_equal(s->n_nodes, 2);
	assert_int_equal(s->nodes[0], 12); /* a service's nodes keep their order */
	assert_int_equal(s->nodes[1], 11);
	assert_int_equal(s->line, 10);
	assert_int_equal(cpn_cfg_service(&cfg, 1)->policy, CPN_POL_MAGLEV);
	assert_int_equal(cpn_cfg_service(&cfg, 0)->policy, CPN_POL_LEAST);
	assert_string_equal(cpn_cfg_service(&cfg, 0)->name, "idle.svc-0");
	assert_int_equal(cpn_cfg_service(&cfg, 255)->policy, CPN_POL_RANDOM);

	n = cpn_cfg_node(&cfg, 12);
	assert_addr(n->addr, n->family, "fd01::12", CPN_AF_INET6);
	assert_int_equal(ntohs(n->port), 7470);
	assert_true(n->joined);
	assert_false(n->drain);
	n = cpn_cfg_node(&cfg, 11);
	assert_addr(n->addr, n->family, "fd01::11", CPN_AF_INET6);
	assert_int_equal(ntohs(n->port), 65535);
	assert_key(n->key, KEY3);
	n = cpn_cfg_node(&cfg, 3);
	assert_true(n->drain);
	assert_int_equal(n->weight, 1000);
	assert_int_equal(cpn_cfg_node(&cfg, 1)->weight, 1);

	assert_int_equal(cfg.tenants[2].n_services, 3);
	assert_int_equal(cfg.tenants[2].services[0], 7);
	assert_int_equal(cfg.tenants[2].services[1], 1);
	assert_int_equal(cfg.tenants[2].services[2], 255);
	assert_int_equal(cfg.tenants[2].rate, 1000000000);
	assert_true(cfg.tenants[0].has_key);
	assert_int_equal(cfg.tenants[0].n_services, 0);
	assert_int_equal(cfg.tenants[1].burst, 7);

	assert_true(cfg.has_auto_join);
	assert_int_equal(aj->n_prefixes, 4);
	assert_addr(aj->prefixes[1].addr, aj->prefixes[1].family, "fd01::", CPN_AF_INET6);
	assert_int_equal(aj->prefixes[1].len, 64);
	assert_int_equal(aj->prefixes[2].len, 0);
	assert_int_equal(aj->prefixes[3].len, 32);
	assert_int_equal(aj->n_services, 2);
	assert_int_equal(aj->services[0], 1);
	assert_int_equal(aj->services[1], 7);
	assert_int_equal(aj->weight, 3);
	assert_int_equal(aj->retire_ms, 1);
	assert_false(aj->has_key);
	cpn_cfg_free(&cfg);
}

/* ---- broken files ----------------------------------------------------------- */

/* Two nodes and a service, 5 lines: cases append to the service list. */
#define BASE                                                                                       \
	"nodes:\n"                                                                                 \
	"  - {id: 1, addr: \"10.1.0.1:7470\"}\n"                                                   \
	"  - {id: 2, addr: \"10.1.0.2:7470\"}\n"                                                   \
	"services:\n"                                                                              \
	"  - {name: a, id: 1, vip: 10.0.0.1, port: 7470, nodes: [1, 2]}\n"

struct bad {
	const char *yaml;
	int line;
	const char *why; /* a substring of the message */
};

static char many_nodes[4096], many_least[4096], many_ifaces[512];

static const struct bad bad[] = {
    /* YAML syntax: libyaml's line */
    {"control_port: 7471\nmetrics: a: b\n", 2, "YAML syntax error"},
    {"interfaces: [eth0, eth1\ncontrol_port: 1\n", 2, "YAML syntax error"},
    {"a: 1\n---\nb: 2\n", 3, "second YAML document"},
    {"control_port: 1\nmetrics: \"\xff\"\n", 2, "YAML syntax error"},
    {"control_port: 1\nservices:\n\t- {name: a}\n", 3, "YAML syntax error"},
    {"- 1\n- 2\n", 1, "must be a mapping"},
    /* unknown keys, each section */
    {"control_port: 7471\ncontrol_prot: 7472\n", 2, "unknown key 'control_prot'"},
    {BASE "  - name: b\n    id: 2\n    vip: 10.0.0.2\n    prot: 80\n", 9, "unknown key 'prot'"},
    {"nodes:\n  - id: 1\n    adr: \"10.1.0.1:7470\"\n", 3, "unknown key 'adr'"},
    {BASE "tenants:\n  - {id: 1, services: [a]}\n  - {id: 2, sevrices: [a]}\n", 8,
     "unknown key 'sevrices'"},
    {BASE "auto_join:\n  prefixes: [10.1.0.0/16]\n  weigth: 5\n", 8, "unknown key 'weigth'"},
    {"max_hops: 4\nmax_hops: 5\n", 2, "duplicate key 'max_hops'"},
    {"control_port: 1\nxdp_attach: dispatcher\n", 2, "unknown xdp_attach 'dispatcher'"},
    {"auto_join: {prefixes: [10.1.0.0/x]}\n", 1, "'10.1.0.0/x' is not a prefix"},
    {"auto_join: {prefixes: [10.1.0.0/]}\n", 1, "'10.1.0.0/' is not a prefix"},
    {"auto_join: {prefixes: [10.1.0.0/33]}\n", 1, "'10.1.0.0/33' is not a prefix"},
    {"auto_join: {prefixes: [\"fd01::/129\"]}\n", 1, "'fd01::/129' is not a prefix"},
    /* wrong types */
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2,\n     port: http}\n", 7, "not a number"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: \"80\"}\n", 6, "quoted"},
    {"control_port: 1\ninterfaces: {eth0: 1}\n", 2, "must be a list"},
    {"services:\n  - [resnet, 1]\n", 2, "must be a mapping"},
    {BASE "  - {name: b, id: 2, vip: [10.0.0.2], port: 80}\n", 6, "must be a string"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\",\n     drain: maybe}\n", 3, "true or false"},
    {"nodes:\n  - {id: 1.5, addr: \"10.1.0.1:7470\"}\n", 2, "not a number"},
    {"control_port:\n", 1, "must be a number"},
    /* numbers out of range, negative, trailing garbage */
    {"metrics: 127.0.0.1:9470\ncontrol_port: 65536\n", 2, "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 0}\n", 6, "out of range"},
    {BASE "  - {name: b, id: 256, vip: 10.0.0.2, port: 80}\n", 6, "out of range"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n  - {id: 0, addr: \"10.1.0.2:7470\"}\n", 3,
     "out of range"},
    {"nodes:\n  - {id: 1024, addr: \"10.1.0.1:7470\"}\n", 2, "out of range"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\", weight: 1001}\n", 2, "out of range"},
    {"nodes:\n  - id: 1\n    addr: \"10.1.0.1:7470\"\n    weight: 0\n", 4, "out of range"},
    {"max_hops: 256\n", 1, "out of range"},
    {"nh_ttl_ms: 0\n", 1, "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, stale_ms: 0}\n", 6, "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, max_queue: -1}\n", 6, "negative"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, max_wait_us: 12abc}\n", 6,
     "'12abc' is not a number"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, max_wait_us: 4294967296}\n", 6,
     "out of range"},
    {"control_port: 99999999999999999999999\n", 1, "out of range"},
    {BASE "tenants:\n  - {id: 1, rate: 100, burst: 0}\n", 7, "out of range"},
    {BASE "tenants:\n  - {id: 4294967296}\n", 7, "out of range"},
    /* 2^32 - 1 is `any`'s: written as a number it is refused. */
    {BASE "tenants:\n  - {id: 4294967295}\n", 7, "out of range: use 0..4294967294"},
    {BASE "tenants:\n  - {id: \"any\"}\n", 7, "quoted"},
    {BASE "tenants:\n  - {id: any, services: [a]}\n  - {id: any}\n", 8, "duplicate tenant id"},
    {BASE "tenants:\n  - {id: 1, rate: 1000000001}\n", 7, "out of range"},
    {BASE "auto_join: {retire_ms: 0}\n", 6, "out of range"},
    /* duplicates */
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80}\n  - {name: c, id: 1, vip: 10.0.0.3, "
	  "port: 80}\n",
     7, "duplicate service id 1"},
    {BASE "  - name: a\n    id: 2\n    vip: 10.0.0.2\n    port: 80\n", 6,
     "duplicate service name a"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n  - {id: 2, addr: \"10.1.0.2:7470\"}\n"
     "  - id: 3\n    addr: \"10.1.0.3:7470\"\n  - addr: \"10.1.0.4:7470\"\n    id: 2\n",
     7, "duplicate node id 2"},
    {BASE "tenants:\n  - {id: 1}\n  - {id: 2}\n  - {id: 1}\n", 9, "duplicate tenant id 1"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80}\n  - {name: c, id: 3,\n     vip: "
	  "10.0.0.1, port: 7470}\n",
     8, "duplicate VIP 10.0.0.1 port 7470"},
    {"interfaces: [eth0, eth1, eth0]\n", 1, "listed twice"},
    /* addresses, prefixes, keys */
    {BASE "  - {name: b, id: 2, vip: 10.0.0.300, port: 80}\n", 6, "not an IPv4 or IPv6"},
    {BASE "  - {name: b, id: 2, vip: \"10.0.0.2:80\", port: 80}\n", 6, "not an IPv4 or IPv6"},
    {"nodes:\n  - {id: 1, addr: 10.1.0.1}\n", 2, "not ADDR:PORT"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:0\"}\n", 2, "not ADDR:PORT"},
    {"nodes:\n  - {id: 1, addr: \"fd00::1:7470\"}\n", 2, "brackets"},
    {"metrics: localhost:9470\n", 1, "not ADDR:PORT"},
    {BASE "auto_join:\n  prefixes:\n    - 10.1.0.0/16\n    - 10.2.0.0/33\n", 9, "not a prefix"},
    {BASE "auto_join: {prefixes: [10.1.0.0]}\n", 6, "not a prefix"},
    {BASE "auto_join: {prefixes: [\"fd01::1/64\"]}\n", 6, "host bits set: write fd01::/64"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\",\n     key: "
     "\"0011223344556677889900aabbccdd\"}\n",
     3, "32 hex digits"},
    {BASE "tenants:\n  - {id: 1, key: \"00112233445566778899aabbccddeefg\"}\n", 7, "32 hex digits"},
    {BASE "auto_join: {key: 1234}\n", 6, "32 hex digits"},
    /* names */
    {BASE "  - {name: fastest, id: 2, vip: 10.0.0.2, port: 80, policy: fastest}\n", 6,
     "unknown policy 'fastest'"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dataplane: ebpf}\n", 6,
     "unknown dataplane 'ebpf'"},
    {BASE "  - {name: \"b c\", id: 2, vip: 10.0.0.2, port: 80}\n", 6, "not a valid name"},
    {BASE "  - {name: abcdefghijabcdefghijabcdefghijab, id: 2, vip: 10.0.0.2, port: 80}\n", 6,
     "too long"},
    /* cross-references */
    {BASE "  - name: b\n    id: 2\n    vip: 10.0.0.2\n    port: 80\n    nodes:\n      - 1\n"
	  "      - 9\n",
     12, "names node 9, which is not defined"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, nodes: [2,\n     1, 2]}\n", 7,
     "lists node 2 twice"},
    {many_nodes, 3, "more than 1024 nodes"},
    {many_least, 68, "policy least looks at every one: at most 64"},
    {BASE "tenants:\n  - id: 1\n    services: [a,\n      b]\n", 9,
     "names service 'b', which is not defined"},
    {BASE "tenants:\n  - {id: 1, services: [a, a]}\n", 7, "lists service a twice"},
    {BASE "auto_join:\n  prefixes: [10.1.0.0/16]\n  services: [a, resnet]\n", 8,
     "names service 'resnet', which is not defined"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n  - {id: 2, addr: \"[fd00::2]:7470\"}\n"
     "services:\n  - {name: a, id: 1, vip: 10.0.0.1, port: 7470, nodes: [1,\n"
     "    2]}\n",
     6, "address family"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n"
     "services:\n  - {name: a, id: 1, vip: \"fd00::1\", port: 7470, nodes: [1]}\n",
     4, "address family"},
    /* interfaces */
    {"interfaces:\n  - eth0\n  - averyveryverylongname\n", 3, "too long"},
    {many_ifaces, 18, "too many"},
    {"interfaces: [\"eth/0\"]\n", 1, "not a valid interface name"},
    /* required fields */
    {BASE "  - {name: b, id: 2, port: 80}\n", 6, "has no vip"},
    {BASE "  - {id: 2, vip: 10.0.0.2, port: 80}\n", 6, "has no name"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n  - id: 2\n    weight: 5\n", 3, "has no addr"},
    {BASE "tenants:\n  - {rate: 5}\n", 7, "has no id"},
    {BASE "auto_join: [10.1.0.0/16]\n", 6, "must be a mapping"},
    /* trust: the fleet's hop key, freshness, key rotation, reply_check, sessions */
    {"control_port: 1\nfleet: {hop_key: \"0011\"}\n", 2, "is not 32 hex digits"},
    {"fleet: {hop_key: \"" KEY1 "\", hopkey: 1}\n", 1, "unknown key 'hopkey' in fleet"},
    {"fleet: [1]\n", 1, "fleet must be a mapping"},
    {"fleet: {hop_key: \"00000000000000000000000000000000\"}\n", 1, "hop_key is all zero"},
    {"max_hops: 4\nfreshness_ms: 0\n", 2, "out of range"},
    {"freshness_ms: 600001\n", 1, "out of range"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\", key: \"" KEY1 "\", fresh: sometimes}\n", 2,
     "unknown fresh 'sometimes'"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\", key_next: \"" KEY1 "\"}\n", 2,
     "key_next but no key"},
    {"nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\", key_next: \"xyz\"}\n", 2,
     "is not 32 hex digits"},
    {BASE "tenants:\n  - {id: 1, services: [a], key_next: \"" KEY2 "\"}\n", 7,
     "key_next but no key"},
    {BASE "tenants:\n  - {id: 1, services: [a], fresh: yes}\n", 7, "unknown fresh 'yes'"},
    {BASE "tenants:\n  - {id: 1, services: [a], max_sessions: 0}\n", 7, "out of range"},
    {BASE "tenants:\n  - {id: 1, services: [a], max_sessions: 65537}\n", 7, "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, reply_check: maybe}\n", 6,
     "must be true or false"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, liveness: heartbeats}\n", 6,
     "unknown liveness 'heartbeats'"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: lazy}\n", 6,
     "unknown dispatch 'lazy'"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: late, late_bound: 0}\n", 6,
     "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: late, late_bound: 65}\n", 6,
     "out of range"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80,\n     late_bound: 2}\n", 7,
     "late_bound is the bound of dispatch: late"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: late, liveness: reports}\n", 6,
     "cannot go with liveness: reports"},
    {BASE "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: late, max_queue: 70000}\n", 6,
     "the most a dispatch: late service holds"},
};

static void gen_cases(void)
{
	size_t n;

	/* a service with 1025 entries: refused at the 1025th, on line 3 */
	n = (size_t)snprintf(many_nodes, sizeof(many_nodes),
			     "services:\n  - {name: a, id: 1, vip: 10.0.0.1, port: 80, nodes: [");
	for (int i = 1; i <= 1024; i++)
		n += (size_t)snprintf(many_nodes + n, sizeof(many_nodes) - n, "1,");
	snprintf(many_nodes + n, sizeof(many_nodes) - n, "\n    1]}\n");
	/* least over 65 nodes: it would scan them all */
	n = (size_t)snprintf(many_least, sizeof(many_least), "nodes:\n");
	for (int i = 1; i <= 65; i++)
		n += (size_t)snprintf(many_least + n, sizeof(many_least) - n,
				      "  - {id: %d, addr: \"10.1.0.%d:7470\"}\n", i, i);
	n += (size_t)snprintf(many_least + n, sizeof(many_least) - n,
			      "services:\n  - {name: a, id: 1, vip: 10.0.0.1, port: 80, "
			      "policy: least, nodes: [");
	for (int i = 1; i <= 65; i++)
		n += (size_t)snprintf(many_least + n, sizeof(many_least) - n, "%d%s", i,
				      i < 65 ? "," : "]}\n");
	/* 17 interfaces, one per line: refused at the 17th, on line 18 */
	n = (size_t)snprintf(many_ifaces, sizeof(many_ifaces), "interfaces:\n");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(many_ifaces + n, sizeof(many_ifaces) - n, "  - eth%d\n", i);
}

static void test_broken(void **state)
{
	size_t n = sizeof(bad) / sizeof(bad[0]);
	int failures = 0;

	(void)state;
	assert_true(n >= 20);
	gen_cases();
	for (size_t i = 0; i < n; i++) {
		struct cpn_err err = {""};
		struct cpn_cfg cfg;
		char prefix[64];
		int rc = parse(bad[i].yaml, &cfg, &err);

		snprintf(prefix, sizeof(prefix), "test.yaml:%d: ", bad[i].line);
		if (rc != -1 || strncmp(err.msg, prefix, strlen(prefix)) ||
		    !strstr(err.msg, bad[i].why)) {
			print_error("case %zu: rc %d, want '%s...%s', got '%s'\n", i, rc, prefix,
				    bad[i].why, err.msg);
			failures++;
		}
		if (getenv("CPN_SHOW_ERRORS"))
			print_message("%s\n", err.msg);
		/* a refused file leaves an empty config behind */
		assert_int_equal(cfg.n_services, 0);
		assert_null(cfg.services);
		assert_null(cfg.nodes);
		assert_null(cfg.tenants);
		assert_false(cfg.has_auto_join);
	}
	assert_int_equal(failures, 0);
}

/* ---- round trip ------------------------------------------------------------- */

static void assert_cfg_equal(const struct cpn_cfg *a, const struct cpn_cfg *b)
{
	assert_int_equal(a->n_ifaces, b->n_ifaces);
	for (int i = 0; i < a->n_ifaces; i++)
		assert_string_equal(a->ifaces[i], b->ifaces[i]);
	assert_int_equal(a->control_port, b->control_port);
	assert_string_equal(a->metrics, b->metrics);
	assert_int_equal(a->max_hops, b->max_hops);
	assert_int_equal(a->nh_ttl_ms, b->nh_ttl_ms);
	assert_int_equal(a->freshness_ms, b->freshness_ms);
	assert_int_equal(a->has_hop_key, b->has_hop_key);
	assert_memory_equal(a->hop_key, b->hop_key, sizeof(a->hop_key));

	assert_int_equal(a->n_services, b->n_services);
	for (int i = 0; i < a->n_services; i++) {
		const struct cfg_service *x = &a->services[i], *y = &b->services[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->id, y->id);
		assert_memory_equal(x->vip, y->vip, sizeof(x->vip));
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->family, y->family);
		assert_int_equal(x->policy, y->policy);
		assert_int_equal(x->dpdk, y->dpdk);
		assert_int_equal(x->reply_unchecked, y->reply_unchecked);
		assert_int_equal(x->late, y->late);
		assert_int_equal(x->late_bound, y->late_bound);
		assert_int_equal(x->max_wait_us, y->max_wait_us);
		assert_int_equal(x->max_queue, y->max_queue);
		assert_int_equal(x->stale_ms, y->stale_ms);
		assert_int_equal(x->n_nodes, y->n_nodes);
		assert_memory_equal(x->nodes, y->nodes, sizeof(x->nodes));
	}

	assert_int_equal(a->n_nodes, b->n_nodes);
	for (int i = 0; i < a->n_nodes; i++) {
		const struct cfg_node *x = &a->nodes[i], *y = &b->nodes[i];

		assert_int_equal(x->id, y->id);
		assert_memory_equal(x->addr, y->addr, sizeof(x->addr));
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->family, y->family);
		assert_int_equal(x->weight, y->weight);
		assert_int_equal(x->has_key, y->has_key);
		assert_memory_equal(x->key, y->key, sizeof(x->key));
		assert_int_equal(x->has_key_next, y->has_key_next);
		assert_memory_equal(x->key_next, y->key_next, sizeof(x->key_next));
		assert_int_equal(x->fresh_optional, y->fresh_optional);
		assert_int_equal(x->drain, y->drain);
		assert_int_equal(x->joined, y->joined);
	}

	assert_int_equal(a->n_tenants, b->n_tenants);
	for (int i = 0; i < a->n_tenants; i++) {
		const struct cfg_tenant *x = &a->tenants[i], *y = &b->tenants[i];

		assert_int_equal(x->id, y->id);
		assert_int_equal(x->n_services, y->n_services);
		assert_memory_equal(x->services, y->services, sizeof(x->services));
		assert_int_equal(x->rate, y->rate);
		assert_int_equal(x->burst, y->burst);
		assert_int_equal(x->has_key, y->has_key);
		assert_memory_equal(x->key, y->key, sizeof(x->key));
		assert_int_equal(x->has_key_next, y->has_key_next);
		assert_memory_equal(x->key_next, y->key_next, sizeof(x->key_next));
		assert_int_equal(x->fresh_optional, y->fresh_optional);
		assert_int_equal(cpn_cfg_tenant_max_sessions(x), cpn_cfg_tenant_max_sessions(y));
	}

	assert_int_equal(a->has_auto_join, b->has_auto_join);
	assert_int_equal(a->auto_join.n_prefixes, b->auto_join.n_prefixes);
	for (int i = 0; i < a->auto_join.n_prefixes; i++) {
		const struct cfg_prefix *x = &a->auto_join.prefixes[i],
					*y = &b->auto_join.prefixes[i];

		assert_memory_equal(x->addr, y->addr, sizeof(x->addr));
		assert_int_equal(x->family, y->family);
		assert_int_equal(x->len, y->len);
	}
	assert_int_equal(a->auto_join.n_services, b->auto_join.n_services);
	assert_memory_equal(a->auto_join.services, b->auto_join.services,
			    sizeof(a->auto_join.services));
	assert_int_equal(a->auto_join.weight, b->auto_join.weight);
	assert_int_equal(a->auto_join.retire_ms, b->auto_join.retire_ms);
	assert_int_equal(a->auto_join.has_key, b->auto_join.has_key);
	assert_memory_equal(a->auto_join.key, b->auto_join.key, sizeof(a->auto_join.key));
}

static char *write_cfg(const struct cpn_cfg *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(cpn_cfg_write(f, cfg), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void round_trip(const char *yaml)
{
	struct cpn_cfg a, b;
	char *text_a, *text_b;
	size_t len_a, len_b;

	parse_ok(yaml, &a);
	text_a = write_cfg(&a, &len_a);
	if (getenv("CPN_SHOW_ERRORS"))
		print_message("%s", text_a);
	parse_ok(text_a, &b);
	assert_cfg_equal(&a, &b);
	text_b = write_cfg(&b, &len_b);
	assert_string_equal(text_a, text_b);
	free(text_a);
	free(text_b);
	cpn_cfg_free(&a);
	cpn_cfg_free(&b);
}

/* Every key of the trust model, non-default. */
static const char trust_yaml[] =
    "freshness_ms: 750\n"
    "fleet: {hop_key: \"" KEY3 "\"}\n"
    "services:\n"
    "  - {name: a, id: 1, vip: 10.0.0.1, port: 7470, nodes: [1, 2], reply_check: false}\n"
    "  - {name: b, id: 2, vip: 10.0.0.2, port: 7470, nodes: [1], reply_check: true, "
    "liveness: reports}\n"
    "nodes:\n"
    "  - {id: 1, addr: \"10.1.0.1:7470\", key: \"" KEY1 "\", key_next: \"" KEY2 "\", "
    "fresh: optional}\n"
    "  - {id: 2, addr: \"10.1.0.2:7470\", key: \"" KEY1 "\", fresh: required}\n"
    "tenants:\n"
    "  - {id: 7, services: [a], key: \"" KEY2 "\", key_next: \"" KEY3 "\", fresh: optional, "
    "max_sessions: 10}\n"
    "  - {id: 8, services: [b], key: \"" KEY2 "\"}\n";

static void test_trust_keys(void **state)
{
	struct cpn_cfg cfg;
	struct cpn_service s;
	struct cpn_node_cfg n;
	struct cpn_tenant t;
	__u32 admin;

	(void)state;
	parse_ok(trust_yaml, &cfg);
	assert_int_equal(cfg.freshness_ms, 750);
	assert_true(cfg.has_hop_key);
	assert_key(cfg.hop_key, KEY3);
	assert_true(cfg.services[0].reply_unchecked);
	assert_false(cfg.services[1].reply_unchecked);
	assert_false(cfg.services[0].liveness_reports);
	assert_true(cfg.services[1].liveness_reports);
	assert_true(cfg.nodes[0].has_key_next);
	assert_key(cfg.nodes[0].key_next, KEY2);
	assert_true(cfg.nodes[0].fresh_optional);
	assert_false(cfg.nodes[1].fresh_optional);
	assert_true(cfg.tenants[0].has_key_next);
	assert_key(cfg.tenants[0].key_next, KEY3);
	assert_true(cfg.tenants[0].fresh_optional);
	assert_int_equal(cfg.tenants[0].max_sessions, 10);
	assert_false(cfg.tenants[1].fresh_optional);

	/* The map values: flags and second keys where the config says. */
	cpn_cfg_to_service(&cfg, &cfg.services[0], &s);
	assert_false(s.flags & CPN_SVC_REPLY_CHECK);
	assert_false(s.flags & CPN_SVC_LIVENESS_REPORTS);
	cpn_cfg_to_service(&cfg, &cfg.services[1], &s);
	assert_true(s.flags & CPN_SVC_REPLY_CHECK);
	assert_true(s.flags & CPN_SVC_LIVENESS_REPORTS);
	cfg.services[1].dpdk = true; /* cpn-fwd keeps no flows */
	cpn_cfg_to_service(&cfg, &cfg.services[1], &s);
	assert_false(s.flags & CPN_SVC_REPLY_CHECK);
	cpn_cfg_to_node(&cfg.nodes[0], &n, &admin);
	assert_int_equal(n.flags & (CPN_NODE_CFG_KEY | CPN_NODE_CFG_KEY_NEXT | CPN_NODE_CFG_FRESH),
			 CPN_NODE_CFG_KEY | CPN_NODE_CFG_KEY_NEXT);
	assert_key(n.key_next, KEY2);
	cpn_cfg_to_node(&cfg.nodes[1], &n, &admin);
	assert_int_equal(n.flags & (CPN_NODE_CFG_KEY | CPN_NODE_CFG_KEY_NEXT | CPN_NODE_CFG_FRESH),
			 CPN_NODE_CFG_KEY | CPN_NODE_CFG_FRESH);
	cpn_cfg_to_tenant(&cfg.tenants[0], &t);
	assert_int_equal(t.flags, CPN_TENANT_KEY | CPN_TENANT_KEY_NEXT);
	assert_key(t.key_next, KEY3);
	cpn_cfg_to_tenant(&cfg.tenants[1], &t);
	assert_int_equal(t.flags, CPN_TENANT_KEY | CPN_TENANT_FRESH);
	cpn_cfg_free(&cfg);

	/* Without a key, fresh: required asks nothing of the data plane. */
	parse_ok("nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\"}\n", &cfg);
	cpn_cfg_to_node(&cfg.nodes[0], &n, &admin);
	assert_int_equal(n.flags, CPN_NODE_CFG_VALID);
	cpn_cfg_free(&cfg);
}

static void test_round_trip(void **state)
{
	(void)state;
	round_trip(design_yaml);
	round_trip(full_yaml);
	round_trip(trust_yaml);
	round_trip("");
	round_trip("auto_join: {}\n");
	round_trip("services:\n  - {name: s, id: 3, vip: 10.0.0.1, port: 80}\n");
	round_trip("services:\n  - {name: s, id: 3, vip: 10.0.0.1, port: 80, dispatch: late}\n");
	round_trip("services:\n  - {name: s, id: 3, vip: 10.0.0.1, port: 80, dispatch: late, "
		   "late_bound: 2, max_queue: 64}\n");
}

/* dispatch: late and its bound, into the service's map value. */
static void test_dispatch_late(void **state)
{
	struct cpn_cfg cfg;
	struct cpn_service s;

	(void)state;
	parse_ok("services:\n"
		 "  - {name: a, id: 1, vip: 10.0.0.1, port: 80, dispatch: late, late_bound: 2}\n"
		 "  - {name: b, id: 2, vip: 10.0.0.2, port: 80, dispatch: late}\n"
		 "  - {name: c, id: 3, vip: 10.0.0.3, port: 80, dispatch: early}\n"
		 "  - {name: d, id: 4, vip: 10.0.0.4, port: 80}\n",
		 &cfg);
	cpn_cfg_to_service(&cfg, &cfg.services[0], &s);
	assert_true(s.flags & CPN_SVC_LATE);
	assert_int_equal(s.late_bound, 2);
	cpn_cfg_to_service(&cfg, &cfg.services[1], &s);
	assert_true(s.flags & CPN_SVC_LATE);
	assert_int_equal(s.late_bound, 0); /* the default, CPN_LATE_BOUND_DEFAULT */
	for (int i = 2; i < 4; i++) {
		cpn_cfg_to_service(&cfg, &cfg.services[i], &s);
		assert_false(s.flags & CPN_SVC_LATE);
		assert_int_equal(s.late_bound, 0);
	}
	cpn_cfg_free(&cfg);
}

/* CPN_SVC_OPEN: only `any` names the service, with no key and no rate.
 * Anything that would judge a request otherwise (a tenant of its own, a
 * key, a rate, nobody admitting it) keeps the tenant lookups.
 */
static void test_service_open(void **state)
{
	static const struct {
		const char *name;
		bool open;
	} want[] = {{"open", true},	{"keyed", false},  {"rated", false},
		    {"anyrate", false}, {"nobody", false}, {"open2", true}};
	struct cpn_cfg cfg;
	struct cpn_service s;

	(void)state;
	parse_ok("services:\n"
		 "  - {name: open, id: 1, vip: 10.0.0.1, port: 80}\n"
		 "  - {name: keyed, id: 2, vip: 10.0.0.2, port: 80}\n"
		 "  - {name: rated, id: 3, vip: 10.0.0.3, port: 80}\n"
		 "  - {name: anyrate, id: 4, vip: 10.0.0.4, port: 80}\n"
		 "  - {name: nobody, id: 5, vip: 10.0.0.5, port: 80}\n"
		 "  - {name: open2, id: 6, vip: 10.0.0.6, port: 80}\n"
		 "tenants:\n"
		 "  - {id: any, services: [open, keyed, rated, open2]}\n"
		 "  - {id: 7, services: [keyed], key: \"" KEY2 "\"}\n"
		 "  - {id: 8, services: [rated]}\n"
		 "  - {id: 9, services: [anyrate], rate: 100}\n",
		 &cfg);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct cfg_service *c = &cfg.services[i];

		assert_string_equal(c->name, want[i].name);
		cpn_cfg_to_service(&cfg, c, &s);
		assert_int_equal(!!(s.flags & CPN_SVC_OPEN), want[i].open);
		assert_int_equal(cpn_cfg_service_open(&cfg, c->id), want[i].open);
	}
	cpn_cfg_free(&cfg);

	/* `any` with a rate or a key opens nothing. */
	parse_ok("services:\n  - {name: a, id: 1, vip: 10.0.0.1, port: 80}\n"
		 "tenants:\n  - {id: any, services: [a], rate: 5}\n",
		 &cfg);
	assert_false(cpn_cfg_service_open(&cfg, 1));
	cpn_cfg_free(&cfg);
	parse_ok("services:\n  - {name: a, id: 1, vip: 10.0.0.1, port: 80}\n"
		 "tenants:\n  - {id: any, services: [a], key: \"" KEY2 "\"}\n",
		 &cfg);
	assert_false(cpn_cfg_service_open(&cfg, 1));
	cpn_cfg_free(&cfg);
}

/* The written keys are the bytes in order, lowercase. */
static void test_write_keys(void **state)
{
	struct cpn_cfg cfg;
	size_t len;
	char *text;

	(void)state;
	parse_ok("nodes:\n  - {id: 1, addr: \"10.1.0.1:7470\", key: "
		 "\"00112233445566778899AABBCCDDEEFF\"}\n",
		 &cfg);
	text = write_cfg(&cfg, &len);
	assert_non_null(strstr(text, "key: \"" KEY1 "\""));
	free(text);
	cpn_cfg_free(&cfg);
}

/* ---- copy ------------------------------------------------------------------- */

static void test_copy(void **state)
{
	struct cpn_cfg a, b;

	(void)state;
	parse_ok(full_yaml, &a);
	assert_int_equal(cpn_cfg_copy(&b, &a), 0);
	assert_cfg_equal(&a, &b);
	assert_ptr_not_equal(a.services, b.services);
	assert_ptr_not_equal(a.nodes, b.nodes);
	assert_ptr_not_equal(a.tenants, b.tenants);

	snprintf(b.services[0].name, sizeof(b.services[0].name), "changed");
	b.services[1].nodes[0] = 999;
	b.nodes[0].weight = 77;
	b.tenants[0].services[0] = 200;
	b.tenants[0].rate = 1;
	snprintf(b.ifaces[0], sizeof(b.ifaces[0]), "lo");
	b.auto_join.prefixes[0].len = 8;
	b.auto_join.services[0] = 0;

	assert_string_equal(a.services[0].name, "idle.svc-0");
	assert_int_equal(a.services[1].nodes[0], 3);
	assert_int_equal(a.nodes[0].weight, 1);
	assert_int_equal(a.tenants[0].rate, 0);
	assert_string_equal(a.ifaces[0], "eth0");
	assert_int_equal(a.auto_join.prefixes[0].len, 16);
	assert_int_equal(a.auto_join.services[0], 1);

	/* the copy's arrays belong to it: freeing one leaves the other whole */
	cpn_cfg_free(&b);
	assert_string_equal(cpn_cfg_service(&a, 7)->name, "bert");
	cpn_cfg_free(&a);

	/* an empty config copies to an empty one */
	cpn_cfg_init(&a);
	assert_int_equal(cpn_cfg_copy(&b, &a), 0);
	assert_null(b.services);
	assert_int_equal(b.n_services, 0);
	cpn_cfg_free(&b);
}

/* ---- in-memory validation, load from a file -------------------------------- */

static void test_validate(void **state)
{
	struct cpn_err err = {""};
	struct cpn_cfg cfg;

	(void)state;
	cpn_cfg_init(&cfg);
	assert_int_equal(cpn_cfg_validate(&cfg, &err), 0);

	cfg.services = calloc(1, sizeof(*cfg.services));
	cfg.nodes = calloc(1, sizeof(*cfg.nodes));
	assert_non_null(cfg.services);
	assert_non_null(cfg.nodes);
	cfg.n_services = 1;
	cfg.n_nodes = 1;
	snprintf(cfg.services[0].name, sizeof(cfg.services[0].name), "mem");
	cfg.services[0].id = 5;
	assert_int_equal(cpn_addr_parse("10.0.0.9", cfg.services[0].vip, &cfg.services[0].family),
			 0);
	cfg.services[0].port = htons(80);
	cfg.services[0].stale_ms = 500;
	cfg.services[0].nodes[0] = 4;
	cfg.services[0].n_nodes = 1;
	cfg.nodes[0].id = 4;
	cfg.nodes[0].weight = 100;
	assert_int_equal(cpn_addr_port_parse("10.1.0.9:7470", cfg.nodes[0].addr, &cfg.nodes[0].port,
					     &cfg.nodes[0].family),
			 0);
	assert_int_equal(cpn_cfg_validate(&cfg, &err), 0);

	/* no line: "config: ..." */
	cfg.services[0].nodes[0] = 6;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_true(!strncmp(err.msg, "config: ", 8));
	assert_non_null(strstr(err.msg, "names node 6, which is not defined"));

	/* with a line: "config:LINE: ..." */
	cfg.services[0].nodes[0] = 4;
	cfg.nodes[0].weight = 0;
	cfg.nodes[0].line = 12;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_true(!strncmp(err.msg, "config:12: ", 11));
	assert_non_null(strstr(err.msg, "weight 0 is out of range"));
	cfg.nodes[0].weight = 100;

	cfg.max_hops = 0;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "max_hops"));
	cfg.max_hops = 4;

	/* what the writer could not write back */
	snprintf(cfg.metrics, sizeof(cfg.metrics), "fd00::1:9470");
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "metrics"));
	snprintf(cfg.metrics, sizeof(cfg.metrics), "[fd00::1]:9470");
	assert_int_equal(cpn_cfg_validate(&cfg, &err), 0);
	snprintf(cfg.ifaces[0], sizeof(cfg.ifaces[0]), "eth0:1");
	cfg.n_ifaces = 1;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "not a valid interface name"));
	snprintf(cfg.ifaces[0], sizeof(cfg.ifaces[0]), "eth0");
	cfg.services[0].name[0] = 0;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "bad name"));
	snprintf(cfg.services[0].name, sizeof(cfg.services[0].name), "mem");

	cfg.has_auto_join = true;
	cfg.auto_join.services[0] = 9;
	cfg.auto_join.n_services = 1;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "auto_join names service id 9"));
	cfg.auto_join.services[0] = 5;
	assert_int_equal(cpn_cfg_validate(&cfg, &err), 0);
	cpn_cfg_free(&cfg);
}

static void test_load(void **state)
{
	char path[] = "/tmp/cpn-test-config.XXXXXX";
	struct cpn_err err = {""};
	struct cpn_cfg cfg;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, design_yaml, sizeof(design_yaml) - 1),
			 (ssize_t)sizeof(design_yaml) - 1);
	close(fd);
	assert_int_equal(cpn_cfg_load(path, &cfg, &err), 0);
	assert_int_equal(cfg.n_services, 1);
	assert_int_equal(cfg.n_nodes, 3);
	cpn_cfg_free(&cfg);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "max_hops: 4\nmax_hops: x\n", 24), 24);
	close(fd);
	assert_int_equal(cpn_cfg_load(path, &cfg, &err), -1);
	{
		char want[128];

		snprintf(want, sizeof(want), "%s:2: ", path);
		assert_true(!strncmp(err.msg, want, strlen(want)));
	}
	unlink(path);

	assert_int_equal(cpn_cfg_load(path, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_int_equal(cfg.n_services, 0);
}

/* The one MAC parser (libcpn): cpn-fwd --neigh, cpn-pktgen, the fixtures. */
static void test_mac_parse(void **state)
{
	unsigned char m[6];
	static const unsigned char want[6] = {0x02, 0x00, 0x00, 0xab, 0x01, 0xff};

	(void)state;
	assert_int_equal(cpn_mac_parse("02:00:00:ab:01:ff", m), 0);
	assert_memory_equal(m, want, 6);
	assert_int_equal(cpn_mac_parse("02:00:00:AB:1:FF", m), 0);
	assert_memory_equal(m, want, 6);
	assert_int_equal(cpn_mac_parse("02:00:00:ab:01", m), -1);
	assert_int_equal(cpn_mac_parse("02:00:00:ab:01:ff:", m), -1);
	assert_int_equal(cpn_mac_parse("02:00:00:ab:01:100", m), -1);
	assert_int_equal(cpn_mac_parse("zz:00:00:ab:01:ff", m), -1);
	assert_int_equal(cpn_mac_parse("", m), -1);
}

/* A join that no auto_join service has room for is refused whole: the node
 * is not added (it would be listed in no service).
 */
static void test_join_past_a_full_service_refused(void **state)
{
	struct cpn_cfg cfg;
	struct cfg_node n = {.family = CPN_AF_INET, .weight = 100};
	int added = 0;

	(void)state;
	parse_ok(design_yaml, &cfg);
	for (int id = 100; id < 100 + CPN_MAX_SVC_NODES + 5; id++) {
		n.id = (__u16)id;
		n.addr[0] = htonl(0x0a010000 | (__u32)id);
		n.port = htons(7470);
		int rc = cpn_cfg_add_joined(&cfg, &n);

		if (added < CPN_MAX_SVC_NODES - 3) {
			assert_int_equal(rc, 0);
			added++;
			assert_non_null(cpn_cfg_node(&cfg, n.id));
		} else {
			assert_int_equal(rc, CPN_CFG_JOIN_FULL);
			assert_null(cpn_cfg_node(&cfg, n.id));
		}
	}
	assert_int_equal(cfg.services[0].n_nodes, CPN_MAX_SVC_NODES);
	/* An IPv6 node: no auto_join service of its family. */
	n.family = CPN_AF_INET6;
	n.id = 9;
	assert_int_equal(cpn_cfg_add_joined(&cfg, &n), CPN_CFG_JOIN_FULL);
	cpn_cfg_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_design_example),
	    cmocka_unit_test(test_mac_parse),
	    cmocka_unit_test(test_policy_parse),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_full_ipv6_sorted),
	    cmocka_unit_test(test_broken),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_trust_keys),
	    cmocka_unit_test(test_dispatch_late),
	    cmocka_unit_test(test_service_open),
	    cmocka_unit_test(test_join_past_a_full_service_refused),
	    cmocka_unit_test(test_write_keys),
	    cmocka_unit_test(test_copy),
	    cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
