// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl's Prometheus endpoint (userspace/cpnctl/metrics.c) against the real
 * router: traffic through BPF_PROG_TEST_RUN makes the counters move, the
 * rendered text must say exactly what the maps say, pass
 * `promtool check metrics` without a word, and be what GET /metrics serves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/bpf.h>

#include "cpn/sched.h"
#include "cpn_test.h"
#include "cpnctl.h"
#include "cpn_http.h"

#define N_REQUESTS 6
/* Two path samples from node 1: ~1.1 ms (bucket 10: [1024, 2048) µs) and
 * ~100 ms (bucket 16: [65536, 131072) µs).
 */
#define SAMPLE1_US 1100
#define SAMPLE2_US 100000
#define ODD_NAME   "odd\"na\\me\nx"
#define ODD_LABEL  "service=\"odd\\\"na\\\\me\\nx\""

struct fx {
	struct router r;
	struct cpn_cfg cfg;
	struct cfg_service svcs[2];
	struct cfg_node nodes[3];
	int packets; /* frames run through the router */
};

/* ---- traffic ---------------------------------------------------------- */

static int run(struct fx *x, const struct cpn_pkt *s)
{
	__u8 in[CPN_PKT_MAX], out[CPN_PKT_MAX];
	size_t len = cpn_pkt_build(s, in, sizeof(in)), out_len = sizeof(out);

	if (!len)
		return -1;
	x->packets++;
	return router_run(&x->r, in, len, out, &out_len);
}

static void cfg_node(struct cfg_node *n, __u16 id, const char *addr)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->weight = 100;
	if (cpn_addr_port_parse(addr, n->addr, &n->port, &n->family))
		fail_msg("bad address %s", addr);
}

static void cfg_service(struct cfg_service *s, const char *name, __u16 id, __u32 stale_ms,
			const __u16 *nodes, int n)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->id = id;
	s->stale_ms = stale_ms;
	s->n_nodes = n;
	memcpy(s->nodes, nodes, (size_t)n * sizeof(*nodes));
}

/* The router: service 1 "resnet" over nodes 1 and 2 (stale_ms 500); node 3
 * in the maps only (up, never reported); node 4 in the config only. The
 * config also names a service 2 (not in the maps) over nodes 1 and 2 with a
 * long stale_ms and a name that needs escaping.
 * Traffic: N_REQUESTS requests, two REPLYs from node 1 with known path
 * latencies, a bad magic, a request of an unknown tenant, a datagram that is
 * not cpn. Node 2's last report is then made 1 s old.
 */
static int group_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	__u16 both[] = {1, 2};
	struct cpn_pkt s;

	if (!x || router_open(&x->r)) {
		free(x);
		return -1;
	}
	*state = x;
	if (t_config(&x->r) || t_add_node(&x->r, 1, CPN_AF_INET, 100) ||
	    t_add_node(&x->r, 2, CPN_AF_INET, 100) || t_add_node(&x->r, 3, CPN_AF_INET, 100) ||
	    t_add_service(&x->r, T_SVC, CPN_AF_INET, CPN_POL_P2C, both, 2) ||
	    t_add_tenant(&x->r, T_TENANT, (__u16[]){T_SVC}, 1, 0, 0, NULL))
		return -1;
	t_report(&x->r, 1, 0, 0, 4, 100, 50);
	t_report(&x->r, 2, 0, 0, 4, 100, 50);

	cfg_node(&x->nodes[0], 1, "10.1.0.1:7470");
	cfg_node(&x->nodes[1], 2, "10.1.0.2:7470");
	cfg_node(&x->nodes[2], 4, "[fd01::4]:7470");
	cfg_service(&x->svcs[0], "resnet", T_SVC, 500, both, 2);
	cfg_service(&x->svcs[1], ODD_NAME, 2, 100000, both, 2);
	x->cfg.services = x->svcs;
	x->cfg.n_services = 2;
	x->cfg.nodes = x->nodes;
	x->cfg.n_nodes = 3;

	for (int i = 0; i < N_REQUESTS; i++) {
		cpn_pkt_default(&s, CPN_AF_INET);
		s.sport = (__u16)(40000 + i);
		s.msg.request_id = (__u64)i + 1;
		if (run(x, &s) < 0)
			return -1;
	}
	/* Replies: the path sample is (now - router_ts) - worker_us. */
	cpn_pkt_reply(&s, CPN_AF_INET, 1);
	s.msg.queue_depth = 3;
	s.msg.inflight = 2;
	s.msg.capacity = 8;
	s.msg.util = 128;
	s.msg.worker_us = 0;
	s.msg.router_ts = t_now_us() - SAMPLE1_US;
	if (run(x, &s) < 0)
		return -1;
	s.msg.router_ts = t_now_us() - SAMPLE2_US;
	if (run(x, &s) < 0)
		return -1;

	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.magic = 0xbeef;
	if (run(x, &s) < 0)
		return -1;
	cpn_pkt_default(&s, CPN_AF_INET);
	s.msg.tenant_id = 99;
	if (run(x, &s) < 0)
		return -1;
	cpn_pkt_default(&s, CPN_AF_INET);
	s.dport = 53;
	s.with_hdr = false;
	s.payload = "dns?";
	s.payload_len = 4;
	if (run(x, &s) < 0)
		return -1;

	x->r.maps.state[2].last_report_ns = cpn_now_ns() - 1000000000ULL;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *x = *state;

	if (x) {
		router_close(&x->r);
		free(x);
	}
	return 0;
}

/* ---- reading the exposition ------------------------------------------ */

static char *render(struct fx *x, const struct cpn_cfg *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(cpn_metrics_render(&x->r.maps, cfg, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

/* Whether k="v" is one of the labels in [b, e) (the text between braces). */
static int has_label(const char *b, const char *e, const char *kv)
{
	size_t n = strlen(kv);

	for (const char *p = b; p + n <= e; p++) {
		if (strncmp(p, kv, n))
			continue;
		if ((p == b || p[-1] == ',') && (p + n == e || p[n] == ','))
			return 1;
	}
	return 0;
}

/* Lines of series `name` (a full series name: with _bucket etc.) whose
 * labels include every k="v" of `labels` (NULL-terminated). The value of
 * the last match goes to *v. Returns the number of matches.
 */
static int find_series(const char *text, const char *name, const char *const *labels, double *v)
{
	size_t n = strlen(name);
	int found = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *b, *e, *sp;
		int all = 1;

		if (*l == '#' || strncmp(l, name, n) || (l[n] != '{' && l[n] != ' '))
			continue;
		if (l[n] == '{') {
			b = l + n + 1;
			e = strstr(b, "} ");
			if (!e)
				continue;
			sp = e + 1;
		} else {
			b = e = l + n;
			sp = l + n;
		}
		for (const char *const *k = labels; *k; k++)
			all &= has_label(b, e, *k);
		if (!all)
			continue;
		found++;
		*v = strtod(sp + 1, NULL);
	}
	return found;
}

/* The value of the one series of `name` with these labels; fails the test
 * when there is not exactly one.
 */
static double value_of(const char *text, const char *name, const char *const *labels)
{
	double v = NAN;
	int n = find_series(text, name, labels, &v);

	if (n != 1) {
		char sel[512] = "";

		for (const char *const *k = labels; *k; k++)
			snprintf(sel + strlen(sel), sizeof(sel) - strlen(sel), "%s%s", *k,
				 k[1] ? "," : "");
		fail_msg("%d series %s{%s}, want 1", n, name, sel);
	}
	return v;
}

#define VAL(text, name, ...)	value_of(text, name, (const char *const[]){__VA_ARGS__, NULL})
#define ABSENT(text, name, ...) absent(text, name, (const char *const[]){__VA_ARGS__, NULL})

static void absent(const char *text, const char *name, const char *const *labels)
{
	double v;

	assert_int_equal(find_series(text, name, labels, &v), 0);
}

static const char *label_kv(char *buf, size_t len, const char *k, unsigned long long v)
{
	snprintf(buf, len, "%s=\"%llu\"", k, v);
	return buf;
}

/* ---- rendering -------------------------------------------------------- */

/* Every data-plane counter appears once, in its family, with the value
 * libcpn sums over CPUs; the traffic of the setup shows in it.
 */
static void test_packet_counters_equal_the_data_plane_counters(void **state)
{
	struct fx *x = *state;
	__u64 st[CPN_STAT_MAX];
	char *t = render(x, &x->cfg);

	assert_int_equal(router_stats(&x->r, st), 0);
	for (int i = 0; i < CPN_STAT_MAX; i++) {
		const char *n = cpn_stat_names[i];
		char kv[96];
		double v;

		if (!strncmp(n, "drop_", 5)) {
			snprintf(kv, sizeof(kv), "reason=\"%s\"", n + 5);
			v = VAL(t, "cpn_dropped_packets_total", kv, "plane=\"xdp\"");
		} else if (!strncmp(n, "pass_", 5)) {
			snprintf(kv, sizeof(kv), "reason=\"%s\"", n + 5);
			v = VAL(t, "cpn_passed_packets_total", kv, "plane=\"xdp\"");
		} else {
			snprintf(kv, sizeof(kv), "action=\"%s\"", n);
			v = VAL(t, "cpn_packets_total", kv, "plane=\"xdp\"");
		}
		assert_true(v == (double)st[i]);
	}
	assert_true(VAL(t, "cpn_packets_total", "action=\"rx\"") == x->packets);
	assert_true(VAL(t, "cpn_packets_total", "action=\"req_steered\"") == N_REQUESTS);
	assert_true(VAL(t, "cpn_packets_total", "action=\"reply_fwd\"") == 2);
	assert_true(VAL(t, "cpn_dropped_packets_total", "reason=\"bad_magic\"") == 1);
	assert_true(VAL(t, "cpn_dropped_packets_total", "reason=\"acl\"") == 1);
	assert_true(VAL(t, "cpn_passed_packets_total", "reason=\"not_cpn\"") >= 1);
	/* The prefix names a family, never a label value. */
	assert_null(strstr(t, "reason=\"drop_"));
	assert_null(strstr(t, "reason=\"pass_"));
	assert_null(strstr(t, "action=\"drop_"));
	assert_true(VAL(t, "cpn_build_info", "version=\"0.1\"") == 1);
	free(t);
}

static void test_service_counters_count_steered_refused_and_replied_requests(void **state)
{
	struct fx *x = *state;
	char *t = render(x, &x->cfg);
	const char *resnet[] = {"service=\"resnet\"", "service_id=\"1\"", "plane=\"xdp\""};

	assert_true(VAL(t, "cpn_service_requests_total", resnet[0], resnet[1], resnet[2]) ==
		    N_REQUESTS);
	/* By reason: the one refused request was the ACL's. */
	assert_true(VAL(t, "cpn_service_refused_total", resnet[0], resnet[1], resnet[2],
			"reason=\"acl\"") == 1);
	for (int k = 0; k < CPN_REFUSE_MAX; k++) {
		char kv[64];

		snprintf(kv, sizeof(kv), "reason=\"%s\"", cpn_refusal_names[k]);
		assert_true(VAL(t, "cpn_service_refused_total", resnet[0], kv) ==
			    (k == CPN_REFUSE_ACL ? 1 : 0));
	}
	assert_true(VAL(t, "cpn_service_replies_total", resnet[0], resnet[1], resnet[2]) == 2);
	for (int k = 0; k < CPN_SVC_BUSY_REASONS; k++) {
		char kv[64];

		snprintf(kv, sizeof(kv), "reason=\"%s\"", cpn_svc_busy_names[k]);
		assert_true(VAL(t, "cpn_service_busy_total", resnet[0], resnet[1], kv) == 0);
	}
	assert_true(VAL(t, "cpn_service_node_busy_total", resnet[0], resnet[1], resnet[2]) == 0);
	assert_true(VAL(t, "cpn_service_nodes", resnet[0], resnet[1]) == 2);
	/* Service 2 is in the config only: named, all zero. */
	assert_true(VAL(t, "cpn_service_requests_total", "service_id=\"2\"") == 0);
	free(t);
}

/* Liveness uses each service's stale_ms: node 2 reported 1 s ago is stale
 * for resnet (500 ms) but live for service 2 (100 s); as a node, it counts
 * by the smallest stale_ms of its services.
 */
static void test_liveness_follows_each_services_stale_ms(void **state)
{
	struct fx *x = *state;
	char *t;

	x->r.maps.state[1].last_report_ns = cpn_now_ns();
	t = render(x, &x->cfg);
	assert_true(VAL(t, "cpn_service_live_nodes", "service=\"resnet\"") == 1);
	assert_true(VAL(t, "cpn_service_live_nodes", "service_id=\"2\"") == 2);
	assert_true(VAL(t, "cpn_node_live", "node=\"1\"") == 1);
	assert_true(VAL(t, "cpn_node_live", "node=\"2\"") == 0);
	assert_true(VAL(t, "cpn_node_live", "node=\"3\"") == 0); /* never reported */
	assert_true(VAL(t, "cpn_node_live", "node=\"4\"") == 0); /* not in the maps */
	/* Plane-shared state carries no plane label. */
	absent(t, "cpn_node_live", (const char *const[]){"plane=\"xdp\"", NULL});
	free(t);
}

static void test_node_counters_equal_the_nodes_data_plane_counters(void **state)
{
	struct fx *x = *state;
	char *t = render(x, &x->cfg);
	double steered = 0;

	for (__u16 id = 1; id <= 4; id++) {
		struct cpn_node_stats ns;
		char node[32];

		assert_int_equal(router_node_stats(&x->r, id, &ns), 0);
		label_kv(node, sizeof(node), "node", id);
		assert_true(VAL(t, "cpn_node_requests_total", node, "plane=\"xdp\"") ==
			    ns.requests);
		assert_true(VAL(t, "cpn_node_replies_total", node, "plane=\"xdp\"") == ns.replies);
		assert_true(VAL(t, "cpn_node_busy_total", node, "plane=\"xdp\"") == ns.busy);
		assert_true(VAL(t, "cpn_node_reports_total", node, "plane=\"xdp\"") == ns.reports);
		steered += VAL(t, "cpn_node_requests_total", node);
	}
	assert_true(steered == N_REQUESTS);
	assert_true(VAL(t, "cpn_node_replies_total", "node=\"1\"") == 2);
	/* Addresses: the config's (v4 and v6), else the maps' (node 3). */
	assert_true(VAL(t, "cpn_node_up", "node=\"1\"", "addr=\"10.1.0.1:7470\"") == 1);
	assert_true(VAL(t, "cpn_node_up", "node=\"3\"", "addr=\"10.1.0.3:7470\"") == 1);
	assert_true(VAL(t, "cpn_node_up", "node=\"4\"", "addr=\"[fd01::4]:7470\"") == 0);
	/* Only nodes that are up or configured. */
	absent(t, "cpn_node_up", (const char *const[]){"node=\"5\"", NULL});
	free(t);
}

static void test_node_gauges_equal_the_learned_state(void **state)
{
	struct fx *x = *state;
	__u64 t0 = cpn_now_ns(), t1;
	char *t = render(x, &x->cfg);

	t1 = cpn_now_ns();
	/* Node 1 learned its load from the replies. */
	assert_true(VAL(t, "cpn_node_queue_depth", "node=\"1\"") == 3);
	assert_true(VAL(t, "cpn_node_inflight", "node=\"1\"") == 2);
	assert_true(VAL(t, "cpn_node_capacity", "node=\"1\"") == 8);
	assert_true(VAL(t, "cpn_node_utilization_ratio", "node=\"1\"") == 128 / 255.0);
	for (__u16 id = 1; id <= 4; id++) {
		const struct cpn_node *n = &x->r.maps.state[id];
		char node[32];

		label_kv(node, sizeof(node), "node", id);
		assert_true(VAL(t, "cpn_node_up", node) == cpn_node_up(n));
		assert_true(VAL(t, "cpn_node_queue_depth", node) == n->queue_depth);
		assert_true(VAL(t, "cpn_node_inflight", node) == n->inflight);
		assert_true(VAL(t, "cpn_node_capacity", node) == n->capacity);
		assert_true(VAL(t, "cpn_node_outstanding", node) == n->outstanding);
		assert_true(VAL(t, "cpn_node_unanswered", node) == n->unanswered);
		assert_true(VAL(t, "cpn_node_suspect", node) == 0);
		assert_true(VAL(t, "cpn_node_overclaim_ratio", node) ==
			    (n->overclaim ? n->overclaim : CPN_OVERCLAIM_ONE) /
				(double)CPN_OVERCLAIM_ONE);
		assert_true(VAL(t, "cpn_node_utilization_ratio", node) == n->util / 255.0);
		assert_true(VAL(t, "cpn_node_service_time_seconds", node) == n->svc_us / 1e6);
		assert_true(VAL(t, "cpn_node_path_latency_ewma_seconds", node) == n->path_us / 1e6);
		assert_true(VAL(t, "cpn_node_estimated_wait_seconds", node) ==
			    (double)cpn_est_us(n) / 1e6);
		if (!n->last_report_ns) {
			absent(t, "cpn_node_report_age_seconds", (const char *const[]){node, NULL});
		} else {
			double age = VAL(t, "cpn_node_report_age_seconds", node);

			assert_true(age >= (double)(t0 - n->last_report_ns) / 1e9);
			assert_true(age <= (double)(t1 - n->last_report_ns) / 1e9);
		}
	}
	/* Node 2 got requests since its last report; node 1's replies reset it. */
	assert_true(VAL(t, "cpn_node_outstanding", "node=\"1\"") == 0);
	assert_true(VAL(t, "cpn_node_outstanding", "node=\"2\"") == x->r.maps.state[2].outstanding);
	assert_true(VAL(t, "cpn_node_report_age_seconds", "node=\"2\"") >= 1.0);
	assert_true(VAL(t, "cpn_node_up", "node=\"3\"") == 1);
	free(t);
}

/* Buckets le = 2^(k+1) µs, cumulative, +Inf = _count = samples, _sum the
 * bucket midpoints; every node's histogram agrees with the map's.
 */
static void test_path_histogram_is_cumulative_and_counts_every_sample(void **state)
{
	struct fx *x = *state;
	char *t = render(x, &x->cfg);
	const char *h = "cpn_node_path_latency_seconds_bucket";

	for (__u16 id = 1; id <= 4; id++) {
		struct cpn_node_stats ns;
		char node[32], le[64];
		__u64 cum = 0;
		double prev = 0;

		assert_int_equal(router_node_stats(&x->r, id, &ns), 0);
		label_kv(node, sizeof(node), "node", id);
		for (int k = 0; k < CPN_HIST_BUCKETS - 1; k++) {
			double v;

			cum += ns.lat_hist[k];
			snprintf(le, sizeof(le), "le=\"%.15g\"", ldexp(1.0, k + 1) / 1e6);
			v = VAL(t, h, node, "plane=\"xdp\"", le);
			assert_true(v == (double)cum);
			assert_true(v >= prev);
			prev = v;
		}
		cum += ns.lat_hist[CPN_HIST_BUCKETS - 1];
		assert_true(VAL(t, h, node, "le=\"+Inf\"") == (double)cum);
		assert_true(VAL(t, "cpn_node_path_latency_seconds_count", node, "plane=\"xdp\"") ==
			    (double)cum);
		/* One bucket line per bound and +Inf, nothing else. */
		{
			double v;

			assert_int_equal(find_series(t, h, (const char *const[]){node, NULL}, &v),
					 CPN_HIST_BUCKETS);
		}
	}
	/* Node 1: the two replies, in the buckets their latencies fall in. */
	assert_true(VAL(t, "cpn_node_path_latency_seconds_count", "node=\"1\"") == 2);
	assert_true(VAL(t, h, "node=\"1\"", "le=\"0.001024\"") == 0);
	assert_true(VAL(t, h, "node=\"1\"", "le=\"0.002048\"") == 1);
	assert_true(VAL(t, h, "node=\"1\"", "le=\"0.065536\"") == 1);
	assert_true(VAL(t, h, "node=\"1\"", "le=\"0.131072\"") == 2);
	assert_true(VAL(t, h, "node=\"1\"", "le=\"8.388608\"") == 2);
	/* _sum: 1.5 x 2^10 + 1.5 x 2^16 µs. */
	assert_true(fabs(VAL(t, "cpn_node_path_latency_seconds_sum", "node=\"1\"") -
			 1.5 * (1024 + 65536) / 1e6) < 1e-12);
	assert_true(VAL(t, "cpn_node_path_latency_seconds_sum", "node=\"2\"") == 0);
	assert_non_null(strstr(t, "# TYPE cpn_node_path_latency_seconds histogram\n"));
	assert_non_null(strstr(t, "approximate"));
	free(t);
}

static void test_label_values_are_escaped(void **state)
{
	struct fx *x = *state;
	char *t = render(x, &x->cfg);

	assert_true(VAL(t, "cpn_service_nodes", ODD_LABEL, "service_id=\"2\"") == 2);
	/* No raw newline inside a label: every line is a comment or a series. */
	for (const char *l = t; *l; l = strchr(l, '\n') + 1) {
		assert_non_null(strchr(l, '\n'));
		assert_true(*l == '#' || !strncmp(l, "cpn_", 4));
	}
	free(t);
}

/* Each family: one HELP and one TYPE, before its series, and its series
 * together.
 */
static void test_every_family_has_help_and_type_before_its_series(void **state)
{
	struct fx *x = *state;
	char *t = render(x, &x->cfg);
	char fam[128] = "", seen[64][128];
	int n_seen = 0;

	for (char *l = t; *l; l = strchr(l, '\n') + 1) {
		char name[128];

		if (!strncmp(l, "# HELP ", 7)) {
			sscanf(l + 7, "%127s", fam);
			for (int i = 0; i < n_seen; i++)
				assert_string_not_equal(seen[i], fam);
			assert_true(n_seen < 64);
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", fam);
			l = strchr(l, '\n') + 1;
			assert_int_equal(strncmp(l, "# TYPE ", 7), 0);
			sscanf(l + 7, "%127s", name);
			assert_string_equal(name, fam);
			continue;
		}
		sscanf(l, "%127[^{ ]", name);
		/* A series of the current family (histograms add suffixes). */
		assert_int_equal(strncmp(name, fam, strlen(fam)), 0);
		assert_true(!name[strlen(fam)] || !strcmp(name + strlen(fam), "_bucket") ||
			    !strcmp(name + strlen(fam), "_sum") ||
			    !strcmp(name + strlen(fam), "_count"));
	}
	assert_int_equal(n_seen, 30);
	free(t);
}

/* Without a config: no services, the nodes that are up by id, addresses
 * from the maps.
 */
static void test_render_without_config_lists_up_nodes_by_id(void **state)
{
	struct fx *x = *state;
	char *t = render(x, NULL);
	double v;

	assert_int_equal(
	    find_series(t, "cpn_service_requests_total", (const char *const[]){NULL}, &v), 0);
	assert_non_null(strstr(t, "# TYPE cpn_service_requests_total counter\n"));
	for (__u16 id = 1; id <= 3; id++) {
		char node[32];

		label_kv(node, sizeof(node), "node", id);
		assert_true(VAL(t, "cpn_node_up", node) == 1);
	}
	assert_true(VAL(t, "cpn_node_up", "addr=\"10.1.0.2:7470\"") == 1);
	absent(t, "cpn_node_up", (const char *const[]){"node=\"4\"", NULL});
	assert_true(VAL(t, "cpn_dropped_packets_total", "reason=\"bad_magic\"") == 1);
	free(t);
}

/* `promtool check metrics` on a rendering: it must print nothing, exit 0. */
static void promtool_check(const char *text)
{
	char path[] = "/tmp/cpn-metrics.XXXXXX", cmd[256], out[4096];
	size_t n;
	FILE *p;
	int fd, st;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	st = pclose(p);
	unlink(path);
	if (n)
		fail_msg("promtool check metrics said:\n%s", out);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

#define NO_PROMTOOL "promtool not installed (Debian package prometheus)"
#define NO_IPV6	    "no IPv6 loopback"

static bool have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa));

	if (fd >= 0)
		close(fd);
	return ok;
}

static void test_output_passes_promtool_check_metrics(void **state)
{
	struct fx *x = *state;
	char *t;

	if (!have_promtool()) {
		print_message("# " NO_PROMTOOL ": not checked\n");
		return; /* main() names the test "... # SKIP" */
	}
	t = render(x, &x->cfg);
	promtool_check(t);
	free(t);
	t = render(x, NULL);
	promtool_check(t);
	free(t);
}

/* ---- HTTP ------------------------------------------------------------- */

struct scrape {
	struct fx *x;
	int fail; /* render returns -EIO */
};

static int render_cb(void *arg, FILE *out)
{
	struct scrape *s = arg;

	if (s->fail)
		return -EIO;
	return cpn_metrics_render(&s->x->r.maps, &s->x->cfg, out);
}

static struct cpn_http *start_on_random_port(struct scrape *s, int *port)
{
	struct cpn_err err = {0};

	srand((unsigned)(getpid() ^ time(NULL)));
	for (int i = 0; i < 50; i++) {
		struct cpn_http *srv;
		char ap[64];

		*port = 20000 + rand() % 20001;
		snprintf(ap, sizeof(ap), "127.0.0.1:%d", *port);
		srv = cpn_http_start(ap, render_cb, s, err.msg, sizeof(err.msg));
		if (srv)
			return srv;
	}
	fail_msg("no port to serve on: %s", err.msg);
	return NULL;
}

/* One HTTP/1.0 exchange: status code, the raw response in *resp (malloc'ed),
 * *body pointing into it.
 */
static int http(int port, const char *method, const char *path, char **resp, char **body)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((__u16)port)};
	struct timeval tv = {.tv_sec = 10};
	size_t len = 0, cap = 1 << 16;
	char req[256], *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0), code = -1;
	ssize_t n;

	assert_non_null(buf);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while ((n = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	assert_int_equal(n, 0); /* the server closed: the whole response is here */
	close(fd);
	buf[len] = 0;
	sscanf(buf, "HTTP/%*s %d", &code);
	*body = strstr(buf, "\r\n\r\n");
	assert_non_null(*body);
	*body += 4;
	*resp = buf;
	return code;
}

/* The text without the series that depend on the time of the rendering. */
static void drop_time_dependent(char *t)
{
	static const char *const fams[] = {"cpn_node_live", "cpn_service_live_nodes",
					   "cpn_node_report_age_seconds"};
	char *w = t;

	for (char *l = t; *l;) {
		char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l + 1) : strlen(l);
		bool keep = true;

		for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
			size_t fl = strlen(fams[i]);

			if (!strncmp(l, fams[i], fl) && (l[fl] == '{' || l[fl] == ' '))
				keep = false;
		}
		if (keep) {
			memmove(w, l, n);
			w += n;
		}
		l += n;
	}
	*w = 0;
}

static void test_server_serves_the_rendering_on_get_metrics(void **state)
{
	struct scrape s = {.x = *state};
	struct cpn_http *srv;
	char *resp, *body, *fresh;
	int port;

	srv = start_on_random_port(&s, &port);
	assert_int_equal(http(port, "GET", "/metrics", &resp, &body), 200);
	assert_non_null(strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4"));
	fresh = render(s.x, &s.x->cfg);
	drop_time_dependent(body);
	drop_time_dependent(fresh);
	assert_string_equal(body, fresh);
	assert_true(VAL(body, "cpn_service_requests_total", "service=\"resnet\"") == N_REQUESTS);
	free(fresh);
	free(resp);

	/* A query string is not part of the path. */
	assert_int_equal(http(port, "GET", "/metrics?x=1", &resp, &body), 200);
	free(resp);
	cpn_http_stop(srv);
}

static void test_server_answers_404_elsewhere_and_405_to_other_methods(void **state)
{
	struct scrape s = {.x = *state};
	struct cpn_http *srv;
	char *resp, *body;
	int port;

	srv = start_on_random_port(&s, &port);
	assert_int_equal(http(port, "GET", "/nope", &resp, &body), 404);
	free(resp);
	assert_int_equal(http(port, "GET", "/", &resp, &body), 404);
	free(resp);
	assert_int_equal(http(port, "POST", "/metrics", &resp, &body), 405);
	assert_non_null(strcasestr(resp, "\r\nAllow: GET, HEAD"));
	free(resp);
	assert_int_equal(http(port, "DELETE", "/metrics", &resp, &body), 405);
	free(resp);
	/* HEAD: the headers of GET, no body. */
	assert_int_equal(http(port, "HEAD", "/metrics", &resp, &body), 200);
	assert_string_equal(body, "");
	free(resp);
	cpn_http_stop(srv);
}

static void test_server_answers_500_when_render_fails(void **state)
{
	struct scrape s = {.x = *state, .fail = 1};
	struct cpn_http *srv;
	char *resp, *body;
	int port;

	srv = start_on_random_port(&s, &port);
	assert_int_equal(http(port, "GET", "/metrics", &resp, &body), 500);
	assert_null(strstr(body, "cpn_"));
	free(resp);
	cpn_http_stop(srv);
}

static void test_server_refuses_a_bad_address_and_a_taken_port(void **state)
{
	struct scrape s = {.x = *state};
	struct cpn_http *srv, *again;
	struct cpn_err err = {0};
	char ap[64];
	int port;

	assert_null(cpn_http_start("localhost", render_cb, &s, err.msg, sizeof(err.msg)));
	assert_non_null(strstr(err.msg, "localhost"));
	assert_null(cpn_http_start("127.0.0.1:0", render_cb, &s, err.msg, sizeof(err.msg)));
	assert_null(cpn_http_start("[::1:9470", render_cb, &s, err.msg, sizeof(err.msg)));

	srv = start_on_random_port(&s, &port);
	snprintf(ap, sizeof(ap), "127.0.0.1:%d", port);
	err.msg[0] = 0;
	again = cpn_http_start(ap, render_cb, &s, err.msg, sizeof(err.msg));
	if (again) {
		cpn_http_stop(again);
		cpn_http_stop(srv);
		fail_msg("a second server bound %s", ap);
	}
	assert_non_null(strstr(err.msg, ap));
	cpn_http_stop(srv);
	cpn_http_stop(NULL);
}

/* An IPv6 listener: [::1]:PORT. */
static void test_server_listens_on_ipv6(void **state)
{
	struct scrape s = {.x = *state};
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct cpn_http *srv = NULL;
	struct cpn_err err = {0};
	char ap[64], buf[64];
	int fd, port = 0;
	ssize_t n;

	if (!have_ipv6_loopback()) {
		print_message("# " NO_IPV6 ": not checked\n");
		return; /* main() names the test "... # SKIP" */
	}
	for (int i = 0; i < 50 && !srv; i++) {
		port = 20000 + rand() % 20001;
		snprintf(ap, sizeof(ap), "[::1]:%d", port);
		srv = cpn_http_start(ap, render_cb, &s, err.msg, sizeof(err.msg));
	}
	if (!srv)
		fail_msg("cannot serve on [::1]: %s", err.msg);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){.tv_sec = 10},
		   sizeof(struct timeval));
	sa.sin6_port = htons((__u16)port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(send(fd, "GET /nope HTTP/1.0\r\n\r\n", 22, MSG_NOSIGNAL) == 22);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL);
	assert_true(n > 12);
	buf[n] = 0;
	assert_non_null(strstr(buf, " 404"));
	close(fd);
	cpn_http_stop(srv);
}

int main(void)
{
	struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_packet_counters_equal_the_data_plane_counters),
	    cmocka_unit_test(test_service_counters_count_steered_refused_and_replied_requests),
	    cmocka_unit_test(test_liveness_follows_each_services_stale_ms),
	    cmocka_unit_test(test_node_counters_equal_the_nodes_data_plane_counters),
	    cmocka_unit_test(test_node_gauges_equal_the_learned_state),
	    cmocka_unit_test(test_path_histogram_is_cumulative_and_counts_every_sample),
	    cmocka_unit_test(test_label_values_are_escaped),
	    cmocka_unit_test(test_every_family_has_help_and_type_before_its_series),
	    cmocka_unit_test(test_render_without_config_lists_up_nodes_by_id),
	    cmocka_unit_test(test_output_passes_promtool_check_metrics),
	    cmocka_unit_test(test_server_serves_the_rendering_on_get_metrics),
	    cmocka_unit_test(test_server_answers_404_elsewhere_and_405_to_other_methods),
	    cmocka_unit_test(test_server_answers_500_when_render_fails),
	    cmocka_unit_test(test_server_refuses_a_bad_address_and_a_taken_port),
	    cmocka_unit_test(test_server_listens_on_ipv6),
	};

	/* A check that cannot run here passes with "# SKIP why" in its name:
	 * cmocka's own skip() reads "not ok ... # SKIP" in TAP, a failure to run.sh.
	 */
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (tests[i].test_func == test_output_passes_promtool_check_metrics &&
		    !have_promtool())
			tests[i].name =
			    "test_output_passes_promtool_check_metrics # SKIP " NO_PROMTOOL;
		if (tests[i].test_func == test_server_listens_on_ipv6 && !have_ipv6_loopback())
			tests[i].name = "test_server_listens_on_ipv6 # SKIP " NO_IPV6;
	}
	return cmocka_run_group_tests_name("bpf_metrics", tests, group_setup, group_teardown);
}
