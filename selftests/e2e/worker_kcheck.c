// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A client of cpn-worker for selftests/e2e/test_worker.sh: what is checked
 * against the project's own C (the kernels' reference code, cpn_tag_node).
 *
 *   worker_kcheck kernel --to IP:PORT --kernel mlp|vsearch|echo --node-id N
 *                 [--count N] [--key HEX32] [--capacity C] [--seed S]
 *                 [--mlp-dims A,B,..] [--vs-rows R --vs-dim D] [--timeout-ms T]
 *       Sends N REQUESTs (and one with a payload of the wrong size, for mlp
 *       and vsearch) and checks that every one gets exactly one REPLY that
 *       echoes its identity, comes from node N with status 0 (1 for the bad
 *       one), carries capacity C, and whose payload equals cpn_mlp_ref /
 *       cpn_vsearch_ref on the same seeded model (the request's payload for
 *       echo). With --key, every REPLY, and the PROBE_ACK of a PROBE sent at
 *       the end, must carry AUTH and cpn_tag_node's tag.
 *
 *       With --service S --tenant T the requests go through a router (to its
 *       VIP): they carry that service and tenant, leave with hops 0 and no
 *       node, and their REPLY must show hops 1 (one steering hop) and node N;
 *       router_ts is the router's and is not compared.
 *
 *   worker_kcheck loads --at IP:PORT --node-id N --key HEX32 [--ms T]
 *       Stands in for a router's control port for T ms: every LOAD from
 *       node N must be signed with the key. Prints loads=N signed_ok=N.
 *
 * Prints what it checked as key=value lines, `FAIL ...` per failure; exits 0
 * when every check held, 1 when one failed, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn_kernels.h"
#include "cpn_util.h"

#define MAX_COUNT 4096
#define BUF	  65536

struct args {
	const char *to, *at, *kernel;
	int node_id, count, capacity, have_key, vs_rows, vs_dim, timeout_ms, ms;
	int via_router; /* --service given: through a router's VIP */
	uint16_t service;
	uint32_t tenant;
	int dims[CPN_MLP_MAX_LAYERS + 1], n_layers;
	uint64_t seed;
	__u64 key[2];
};

static int failures;

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (++failures > 20)
		return; /* enough said */
	printf("FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *c = strrchr(s, ':');
	int v6 = s[0] == '[';

	memset(ss, 0, sizeof(*ss));
	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s + v6, (size_t)(c - s - 2 * v6));
	host[c - s - 2 * v6] = 0;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)atoi(c + 1));
		*len = sizeof(*a);
		return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(c + 1));
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int key_parse(const char *hex, __u64 key[2])
{
	uint8_t b[16];

	if (strlen(hex) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		b[i] = (uint8_t)v;
	}
	memcpy(key, b, 16);
	key[0] = cpn_le64(key[0]);
	key[1] = cpn_le64(key[1]);
	return 0;
}

/* A node's datagram: AUTH and the tag of cpn_tag_node right after the header. */
static int tag_ok(const struct args *a, const uint8_t *d, size_t len)
{
	const struct cpn_hdr *h = (const struct cpn_hdr *)d;
	__u64 t;

	if (!(h->flags & cpn_htons(CPN_F_AUTH)) || len < CPN_HDR_LEN + CPN_TAG_LEN)
		return 0;
	memcpy(&t, d + CPN_HDR_LEN, 8);
	return t == cpn_tag_node(a->key, h);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	return cpn_splitmix64(&rng_state);
}

static float rndf(void)
{
	return (float)((double)(rnd() >> 11) * 0x1p-53 * 2 - 1);
}

static int close_enough(float got, float want)
{
	return fabsf(got - want) <= 1e-4f * fmaxf(1.0f, fabsf(want));
}

struct sent {
	struct cpn_msg m;
	uint32_t plen;
	uint8_t *pl;
	int replies;
	int bad; /* sent with a wrong payload size */
};

static void check_payload(const struct args *a, const struct cpn_mlp *mlp,
			  const struct cpn_vtable *vt, const struct sent *s, const uint8_t *pl,
			  uint32_t plen)
{
	char what[64];

	snprintf(what, sizeof(what), "request %llu", (unsigned long long)s->m.request_id);
	if (!strcmp(a->kernel, "echo")) {
		if (plen != s->plen || memcmp(pl, s->pl, plen))
			fail("%s: echo payload differs (%u bytes, sent %u)", what, plen, s->plen);
		return;
	}
	if (!strcmp(a->kernel, "mlp")) {
		int out = mlp->dims[mlp->n_layers];
		float *want = calloc((size_t)out, sizeof(float));

		cpn_mlp_ref(mlp, (const float *)s->pl, 1, want);
		if (plen != (uint32_t)out * 4) {
			fail("%s: mlp reply of %u bytes, want %d", what, plen, out * 4);
		} else {
			for (int i = 0; i < out; i++) {
				float g;

				memcpy(&g, pl + 4 * i, 4);
				if (!close_enough(g, want[i])) {
					fail("%s: mlp out[%d] = %g, reference %g", what, i, g,
					     want[i]);
					break;
				}
			}
		}
		free(want);
		return;
	}
	/* vsearch: k clamped to 1..min(64, rows); near-ties may swap ids. */
	uint32_t k;
	int kk, max = vt->rows < CPN_VS_MAX_K ? vt->rows : CPN_VS_MAX_K;
	uint32_t ids[CPN_VS_MAX_K];
	float sc[CPN_VS_MAX_K];

	memcpy(&k, s->pl, 4);
	kk = k < 1 ? 1 : k > (uint32_t)max ? max : (int)k;
	cpn_vsearch_ref(vt, (const float *)(s->pl + 4), 1, kk, ids, sc);
	if (plen != (uint32_t)kk * 8) {
		fail("%s: vsearch reply of %u bytes for k=%u, want %d", what, plen, k, kk * 8);
		return;
	}
	for (int j = 0; j < kk; j++) {
		uint32_t id;
		float g;

		memcpy(&id, pl + 8 * j, 4);
		memcpy(&g, pl + 8 * j + 4, 4);
		if (!close_enough(g, sc[j]) ||
		    (id != ids[j] && fabsf(g - sc[j]) > 1e-6f * fmaxf(1.0f, fabsf(sc[j])))) {
			fail("%s: vsearch #%d = (%u, %g), reference (%u, %g)", what, j, id, g,
			     ids[j], sc[j]);
			return;
		}
	}
}

static int cmd_kernel(const struct args *a)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	struct cpn_mlp mlp = {0};
	struct cpn_vtable vt = {0};
	struct sent *s;
	uint8_t *buf = malloc(BUF);
	int fd, n = a->count, total, bad_idx = -1, replies = 0, dup = 0, probe_ok = -1;
	uint64_t base = rnd() & 0xffffffffff000000ULL, deadline;
	uint32_t probe_ts = (uint32_t)rnd();

	if (addr_parse(a->to, &to, &tolen)) {
		fprintf(stderr, "bad --to\n");
		return 2;
	}
	if (!strcmp(a->kernel, "mlp") && cpn_mlp_seeded(&mlp, a->dims, a->n_layers, a->seed)) {
		fprintf(stderr, "cpn_mlp_seeded: %s\n", strerror(errno));
		return 2;
	}
	if (!strcmp(a->kernel, "vsearch") &&
	    cpn_vtable_seeded(&vt, a->vs_rows, a->vs_dim, a->seed)) {
		fprintf(stderr, "cpn_vtable_seeded: %s\n", strerror(errno));
		return 2;
	}
	total = n + (strcmp(a->kernel, "echo") ? 1 : 0);
	s = calloc((size_t)total, sizeof(*s));
	fd = socket(to.ss_family, SOCK_DGRAM, 0);
	if (!s || !buf || fd < 0) {
		perror("setup");
		return 2;
	}
	int rcv = 8 << 20;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	for (int i = 0; i < total; i++) {
		struct sent *x = &s[i];
		uint8_t d[BUF];

		cpn_msg_init(&x->m, CPN_T_REQUEST);
		x->m.service_id = (uint16_t)(1 + rnd() % 1000);
		x->m.tenant_id = (uint32_t)rnd();
		x->m.session_key = (uint32_t)rnd();
		x->m.request_id = base + (uint64_t)i;
		x->m.node_id = (uint16_t)a->node_id;
		x->m.hops = (uint8_t)(1 + rnd() % 3);
		if (a->via_router) {
			x->m.service_id = a->service;
			x->m.tenant_id = a->tenant;
			x->m.node_id = 0;
			x->m.hops = 0;
		}
		x->m.class = (uint8_t)(rnd() % 8);
		x->m.router_ts = (uint32_t)rnd();
		x->m.flags = CPN_F_TAGGED;
		if (!strcmp(a->kernel, "mlp")) {
			x->plen = (uint32_t)a->dims[0] * 4;
		} else if (!strcmp(a->kernel, "vsearch")) {
			static const uint32_t ks[] = {0, 1, 3, 10, 64, 100};
			uint32_t k = ks[i % 6];

			x->plen = 4 + (uint32_t)a->vs_dim * 4;
			x->pl = malloc(x->plen);
			memcpy(x->pl, &k, 4);
		} else {
			x->plen = (uint32_t)(rnd() % 200);
		}
		if (!x->pl)
			x->pl = malloc(x->plen + 1);
		for (uint32_t o = (!strcmp(a->kernel, "vsearch") ? 4 : 0); o < x->plen; o += 4) {
			float f = rndf();

			memcpy(x->pl + o, &f, x->plen - o < 4 ? x->plen - o : 4);
		}
		if (i == n) { /* the malformed one: a payload 4 bytes short */
			x->bad = 1;
			x->plen -= 4;
			bad_idx = i;
		}
		cpn_hdr_encode(&x->m, (struct cpn_hdr *)d);
		memcpy(d + CPN_HDR_LEN, x->pl, x->plen);
		if (sendto(fd, d, CPN_HDR_LEN + x->plen, 0, (struct sockaddr *)&to, tolen) < 0)
			fail("sendto: %s", strerror(errno));
		if (i % 32 == 31)
			usleep(2000); /* bursts of 32: within any queue, no drops */
	}
	deadline = (cpn_now_ns() / 1000000) + (uint64_t)a->timeout_ms;
	while (replies < total && (cpn_now_ns() / 1000000) < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct cpn_msg m;
		ssize_t len;

		if (poll(&p, 1, 50) <= 0)
			continue;
		len = recv(fd, buf, BUF, 0);
		if (len < CPN_HDR_LEN)
			continue;
		cpn_hdr_decode((struct cpn_hdr *)buf, &m);
		if (m.request_id < base || m.request_id >= base + (uint64_t)total) {
			fail("a datagram for an unknown request_id %llu",
			     (unsigned long long)m.request_id);
			continue;
		}
		struct sent *x = &s[m.request_id - base];
		uint32_t off = (m.flags & CPN_F_AUTH) ? CPN_HDR_LEN + CPN_TAG_LEN : CPN_HDR_LEN;

		if (x->replies++) {
			dup++;
			continue;
		}
		replies++;
		if (m.type != CPN_T_REPLY || m.magic != CPN_MAGIC || m.version != CPN_VERSION) {
			fail("request %llu: type %u, want REPLY", (unsigned long long)m.request_id,
			     m.type);
			continue;
		}
		if (m.service_id != x->m.service_id || m.tenant_id != x->m.tenant_id ||
		    m.session_key != x->m.session_key ||
		    m.hops != x->m.hops + (a->via_router ? 1 : 0) || m.class != x->m.class ||
		    (!a->via_router && m.router_ts != x->m.router_ts))
			fail("request %llu: identity not echoed", (unsigned long long)m.request_id);
		if (m.node_id != a->node_id)
			fail("request %llu: node_id %u", (unsigned long long)m.request_id,
			     m.node_id);
		if (a->capacity && m.capacity != a->capacity)
			fail("request %llu: capacity %u, want %d", (unsigned long long)m.request_id,
			     m.capacity, a->capacity);
		if (a->have_key && !tag_ok(a, buf, (size_t)len))
			fail("request %llu: REPLY not signed with the key",
			     (unsigned long long)m.request_id);
		if (!a->have_key && (m.flags & CPN_F_AUTH))
			fail("request %llu: AUTH without --key", (unsigned long long)m.request_id);
		if (x->bad) {
			if (m.status != CPN_ST_BAD_REQUEST || len != off)
				fail("malformed request: status %u, %zd bytes; want 1 and no "
				     "payload",
				     m.status, len);
			continue;
		}
		if (m.status != CPN_ST_OK) {
			fail("request %llu: status %u", (unsigned long long)m.request_id, m.status);
			continue;
		}
		check_payload(a, &mlp, &vt, x, buf + off, (uint32_t)(len - off));
	}
	if (a->have_key) {
		struct cpn_msg m;
		uint8_t d[CPN_HDR_LEN];

		probe_ok = 0;
		cpn_msg_init(&m, CPN_T_PROBE);
		m.router_ts = probe_ts;
		cpn_hdr_encode(&m, (struct cpn_hdr *)d);
		sendto(fd, d, sizeof(d), 0, (struct sockaddr *)&to, tolen);
		deadline = (cpn_now_ns() / 1000000) + 2000;
		while ((cpn_now_ns() / 1000000) < deadline && !probe_ok) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			ssize_t len;

			if (poll(&p, 1, 50) <= 0)
				continue;
			len = recv(fd, buf, BUF, 0);
			if (len < CPN_HDR_LEN)
				continue;
			cpn_hdr_decode((struct cpn_hdr *)buf, &m);
			if (m.type != CPN_T_PROBE_ACK || m.router_ts != probe_ts)
				continue;
			probe_ok = tag_ok(a, buf, (size_t)len) ? 1 : -2;
		}
		if (probe_ok != 1)
			fail("PROBE_ACK %s",
			     probe_ok == -2 ? "not signed with the key" : "missing");
	}
	printf("kernel=%s sent=%d replies=%d duplicates=%d bad_request_checked=%d "
	       "probe_signed=%d\n",
	       a->kernel, total, replies, dup, bad_idx >= 0, probe_ok);
	if (replies < total)
		fail("%d requests got no REPLY", total - replies);
	if (dup)
		fail("%d duplicate replies", dup);
	for (int i = 0; i < total; i++)
		free(s[i].pl);
	free(s);
	free(buf);
	close(fd);
	cpn_mlp_free(&mlp);
	cpn_vtable_free(&vt);
	return failures ? 1 : 0;
}

static int cmd_loads(const struct args *a)
{
	struct sockaddr_storage at;
	socklen_t len;
	uint8_t buf[2048];
	int fd, loads = 0, good = 0, one = 1;
	uint64_t deadline = (cpn_now_ns() / 1000000) + (uint64_t)a->ms;

	if (addr_parse(a->at, &at, &len)) {
		fprintf(stderr, "bad --at\n");
		return 2;
	}
	fd = socket(at.ss_family, SOCK_DGRAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&at, len)) {
		perror("bind");
		return 2;
	}
	while ((cpn_now_ns() / 1000000) < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct cpn_msg m;
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < CPN_HDR_LEN)
			continue;
		cpn_hdr_decode((struct cpn_hdr *)buf, &m);
		if (m.type != CPN_T_LOAD || m.node_id != a->node_id)
			continue;
		loads++;
		if (tag_ok(a, buf, (size_t)n))
			good++;
		else
			fail("LOAD %d not signed with the key", loads);
	}
	close(fd);
	printf("loads=%d signed_ok=%d\n", loads, good);
	if (!loads)
		fail("no LOAD arrived in %d ms", a->ms);
	return failures ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: worker_kcheck kernel --to IP:PORT --kernel mlp|vsearch|echo "
		"--node-id N [--count N] [--key HEX32] [--capacity C] [--seed S] "
		"[--mlp-dims A,B,..] [--vs-rows R] [--vs-dim D] [--timeout-ms T]\n"
		"       worker_kcheck loads --at IP:PORT --node-id N --key HEX32 [--ms T]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"to", required_argument, NULL, 't'},
	    {"at", required_argument, NULL, 'a'},
	    {"kernel", required_argument, NULL, 'k'},
	    {"node-id", required_argument, NULL, 'n'},
	    {"count", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'K'},
	    {"capacity", required_argument, NULL, 'C'},
	    {"seed", required_argument, NULL, 's'},
	    {"mlp-dims", required_argument, NULL, 'd'},
	    {"vs-rows", required_argument, NULL, 'r'},
	    {"vs-dim", required_argument, NULL, 'D'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"ms", required_argument, NULL, 'm'},
	    {"service", required_argument, NULL, 'S'},
	    {"tenant", required_argument, NULL, 'U'},
	    {NULL, 0, NULL, 0},
	};
	struct args a = {.count = 64,
			 .vs_rows = 10000,
			 .vs_dim = 128,
			 .timeout_ms = 10000,
			 .ms = 1000,
			 .seed = 1,
			 .kernel = "echo"};
	const char *dims = "256,512,256,16";
	int c;

	if (argc < 2)
		return usage();
	rng_state ^= (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			a.to = optarg;
			break;
		case 'a':
			a.at = optarg;
			break;
		case 'k':
			a.kernel = optarg;
			break;
		case 'n':
			a.node_id = atoi(optarg);
			break;
		case 'c':
			a.count = atoi(optarg);
			break;
		case 'K':
			if (key_parse(optarg, a.key))
				return usage();
			a.have_key = 1;
			break;
		case 'C':
			a.capacity = atoi(optarg);
			break;
		case 's':
			a.seed = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			dims = optarg;
			break;
		case 'r':
			a.vs_rows = atoi(optarg);
			break;
		case 'D':
			a.vs_dim = atoi(optarg);
			break;
		case 'T':
			a.timeout_ms = atoi(optarg);
			break;
		case 'S':
			a.via_router = 1;
			a.service = (uint16_t)atoi(optarg);
			break;
		case 'U':
			a.tenant = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			a.ms = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	for (const char *p = dims; *p && a.n_layers <= CPN_MLP_MAX_LAYERS; a.n_layers++) {
		a.dims[a.n_layers] = atoi(p);
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	if (a.count < 1 || a.count > MAX_COUNT || a.timeout_ms < 1 || a.ms < 1)
		return usage();
	if (!strcmp(argv[1], "kernel") && a.to && a.node_id)
		return cmd_kernel(&a);
	if (!strcmp(argv[1], "loads") && a.at && a.node_id && a.have_key)
		return cmd_loads(&a);
	return usage();
}
