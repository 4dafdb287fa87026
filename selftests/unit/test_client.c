// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client library (cpn/client.h) against a fake node: a thread on
 * 127.0.0.1 that answers as a cpn-worker would, through no router. It
 * echoes payloads, answers BUSY, drops, checks tags with the router's own
 * cpn_tag_request(), records flags and session keys, and takes and sends
 * large messages as docs/PROTOCOL.md "Large messages" says (ack of the first
 * fragment, acks every CPN_FRAG_ACK_EVERY, a window of CPN_FRAG_WINDOW for
 * the reply, the client's acks).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpn/client.h"
#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn_seal.h"
#include "cpn_util.h"

#define PKEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define MARKER	 "a-plaintext-marker"

#define NODE_ID 7
#define KEY_HEX "000102030405060708090a0b0c0d0e0f"
#define MAXMSG	8
/* What the fake node's acks and CONT reply fragments echo as the steering
 * hop's router_ts and hop tag (worker_us): the client must copy them.
 */
#define FAKE_RTS 0x11223344u
#define FAKE_HOP 0x55667788u

enum mode {
	M_ECHO,
	M_BUSY,	      /* BUSY OVERLOAD, always */
	M_BUSY_TWICE, /* BUSY for the first two sends of each id, then echo */
	M_DROP,	      /* nothing */
	M_DROP_FIRST, /* the first send of each id dropped */
	M_OLD_NODE,   /* answers a first fragment whole, with `status` */
};

/* A large request being reassembled and its reply being sent. */
struct msg {
	bool used;
	uint64_t id;
	struct sockaddr_in from;
	uint8_t hdr[CPN_HDR_LEN];
	uint8_t *buf;
	uint32_t total, held, acked_at;
	uint32_t rsent, racked; /* the reply */
	bool replying;
};

static struct node {
	int fd;
	uint16_t port;
	pthread_t th;
	atomic_bool stop;
	atomic_int mode;
	atomic_int status;
	atomic_bool require_key;
	__u64 key[2];
	atomic_ulong tag_ok, tag_bad, requests, sticky_seen, last_session, frags_in, acks_in,
	    frag_ok;
	atomic_ulong drop_frag_id; /* a data fragment of this id is dropped, once */
	atomic_ulong drop_nth_msg; /* ... of the message whose first fragment is this one */
	atomic_ulong first_frags;
	/* FRESH: signed requests with FRESH whose tag is cpn_tag_request_fresh's,
	 * the largest distance of a stamp from the node's clock (ms); CONT
	 * fragments and acks that copied the ack's router_ts, hop tag and the
	 * first fragment's stamp, and those that did not
	 */
	atomic_ulong fresh_ok, fresh_missing, stamp_skew_max, cont_copied, cont_wrong;
	/* Sealed payloads: the node opens SEALED requests with pkey and seals
	 * its echo (tamper: one byte of it flipped after; clear: sent unsealed);
	 * opened, failed to open, the marker seen on the wire
	 */
	uint8_t pkey[CPN_SEAL_KEY_LEN];
	atomic_bool tamper, clear;
	atomic_ulong sealed_ok, sealed_bad, marker_seen;
	uint64_t seen_ids[4096];
	uint8_t seen_n[4096];
	struct msg msgs[MAXMSG];
} N;

static uint32_t tai_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_TAI, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static uint8_t seen(uint64_t id)
{
	uint32_t i = (uint32_t)(id * 0x9e3779b97f4a7c15ULL >> 52);

	for (;; i = (i + 1) & 4095) {
		if (N.seen_ids[i] == id && N.seen_n[i])
			return N.seen_n[i] < 255 ? N.seen_n[i]++ : 255;
		if (!N.seen_n[i]) {
			N.seen_ids[i] = id;
			N.seen_n[i] = 1;
			return 0;
		}
	}
}

static void send_to(const struct sockaddr_in *to, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	struct msghdr mh = {.msg_name = (void *)to,
			    .msg_namelen = sizeof(*to),
			    .msg_iov = iov,
			    .msg_iovlen = blen ? 2 : 1};

	while (sendmsg(N.fd, &mh, 0) < 0 && errno == EINTR)
		;
}

/* The answer's header: the request's identity, node id, flags. */
static void answer_hdr(const uint8_t *req, uint8_t type, uint16_t flags, uint8_t status,
		       uint8_t *out)
{
	struct cpn_msg m;

	cpn_hdr_decode((const struct cpn_hdr *)req, &m);
	m.type = type;
	m.flags = flags;
	m.node_id = NODE_ID;
	m.status = status;
	m.capacity = 4;
	if ((flags & CPN_F_CONT) && type == CPN_T_REPLY) {
		m.router_ts = FAKE_RTS;
		m.worker_us = FAKE_HOP;
	}
	cpn_hdr_encode(&m, (struct cpn_hdr *)out);
}

static void send_frag(const struct sockaddr_in *to, const uint8_t *req, uint16_t flags,
		      uint32_t total, uint32_t off, const void *data, uint32_t len)
{
	uint8_t h[CPN_HDR_LEN + CPN_FRAG_LEN];
	struct cpn_frag f = {.total = cpn_htonl(total), .offset = cpn_htonl(off)};

	answer_hdr(req, CPN_T_REPLY, flags, 0, h);
	memcpy(h + CPN_HDR_LEN, &f, sizeof(f));
	send_to(to, h, sizeof(h), data, len);
}

/* Send reply fragments of message m within the window. */
static void pump_reply(struct msg *m)
{
	while (m->rsent < m->total && m->rsent - m->racked < CPN_FRAG_WINDOW) {
		uint32_t n = m->total - m->rsent < 1000 ? m->total - m->rsent : 1000;
		bool last = m->rsent + n == m->total;

		send_frag(&m->from, m->hdr, CPN_F_FRAG | (last ? 0 : CPN_F_CONT), m->total,
			  m->rsent, m->buf + m->rsent, n);
		m->rsent += n;
	}
}

static struct msg *msg_find(uint64_t id, bool make)
{
	for (int i = 0; i < MAXMSG; i++)
		if (N.msgs[i].used && N.msgs[i].id == id)
			return &N.msgs[i];
	if (!make)
		return NULL;
	for (int i = 0; i < MAXMSG; i++)
		if (!N.msgs[i].used) {
			memset(&N.msgs[i], 0, sizeof(N.msgs[i]));
			N.msgs[i].used = true;
			N.msgs[i].id = id;
			return &N.msgs[i];
		}
	return NULL;
}

static void msg_free(struct msg *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

static void on_frag(const uint8_t *b, uint32_t len, uint32_t hl, const struct sockaddr_in *from)
{
	const struct cpn_hdr *h = (const void *)b;
	uint16_t flags = cpn_ntohs(h->flags);
	uint64_t id = cpn_ntohll(h->request_id);
	struct cpn_frag f;
	uint32_t total, off, dlen = len - hl - CPN_FRAG_LEN;
	struct msg *m;

	memcpy(&f, b + hl, sizeof(f));
	total = cpn_ntohl(f.total);
	off = cpn_ntohl(f.offset);
	if (!(flags & CPN_F_CONT)) {
		/* The first fragment. */
		if (N.mode == M_OLD_NODE) {
			uint8_t a[CPN_HDR_LEN];

			answer_hdr(b, CPN_T_REPLY, 0, (uint8_t)N.status, a);
			send_to(from, a, sizeof(a), NULL, 0);
			return;
		}
		m = msg_find(id, true);
		if (!m || off != 0 || !total)
			return;
		if (++N.first_frags == N.drop_nth_msg)
			N.drop_frag_id = id;
		m->from = *from;
		memcpy(m->hdr, b, CPN_HDR_LEN);
		m->total = total;
		m->buf = malloc(total);
		memcpy(m->buf, b + hl + CPN_FRAG_LEN, dlen);
		m->held = m->acked_at = dlen;
		send_frag(from, b, CPN_F_FRAG | CPN_F_CONT, total, m->held, NULL, 0);
		return;
	}
	/* CONT: TAGGED, our node id. */
	assert_true(flags & CPN_F_TAGGED);
	assert_int_equal(cpn_ntohs(h->node_id), NODE_ID);
	m = msg_find(id, false);
	if (!m)
		return;
	/* The hop's router_ts and hop tag as the node echoed them, and the
	 * stamp of the first fragment (the hop tag covers it).
	 */
	if (cpn_ntohl(h->router_ts) == FAKE_RTS && cpn_ntohl(h->worker_us) == FAKE_HOP &&
	    h->stamp == ((const struct cpn_hdr *)m->hdr)->stamp)
		N.cont_copied++;
	else
		N.cont_wrong++;
	if (!dlen) {
		/* The client's ack of reply bytes. */
		N.acks_in++;
		if (off > m->racked)
			m->racked = off;
		if (m->racked == m->total)
			msg_free(m);
		else
			pump_reply(m);
		return;
	}
	N.frags_in++;
	if (N.drop_frag_id == id && off > 100000) {
		N.drop_frag_id = 0;
		return;
	}
	assert_int_equal(total, m->total);
	assert_true(off + dlen <= total);
	memcpy(m->buf + off, b + hl + CPN_FRAG_LEN, dlen);
	m->held += dlen;
	if (m->held == m->total || m->held - m->acked_at >= CPN_FRAG_ACK_EVERY) {
		m->acked_at = m->held;
		send_frag(from, b, CPN_F_FRAG | CPN_F_CONT, total, m->held, NULL, 0);
	}
	if (m->held == m->total && !m->replying) {
		m->replying = true;
		pump_reply(m);
	}
}

static void on_dgram(const uint8_t *b, uint32_t len, const struct sockaddr_in *from)
{
	const struct cpn_hdr *h = (const void *)b;
	uint8_t a[CPN_HDR_LEN];
	uint32_t hl;
	uint16_t flags;

	if (cpn_hdr_check(h, len) != CPN_HDR_OK || h->type != CPN_T_REQUEST)
		return;
	hl = cpn_hdr_total_len(h);
	flags = cpn_ntohs(h->flags);
	if (flags & CPN_F_AUTH) {
		__u64 tag;

		memcpy(&tag, b + CPN_HDR_LEN, sizeof(tag));
		if (!(flags & CPN_F_FRESH)) {
			N.fresh_missing++;
		} else if (tag == cpn_tag_request_fresh(N.key, h)) {
			int64_t d = (int64_t)(int32_t)(cpn_ntohl(h->stamp) - tai_ms());

			if (d < 0)
				d = -d;
			if ((uint64_t)d > N.stamp_skew_max)
				N.stamp_skew_max = (uint64_t)d;
			N.fresh_ok++;
		}
		if (tag == cpn_tag_request_any(N.key, h)) {
			N.tag_ok++;
		} else {
			N.tag_bad++;
			return;
		}
	} else if (N.require_key) {
		N.tag_bad++;
		return;
	}
	if (flags & CPN_F_STICKY)
		N.sticky_seen++;
	if (flags & CPN_F_FRAG_OK)
		N.frag_ok++;
	N.last_session = cpn_ntohl(h->session_key);
	if (flags & CPN_F_FRAG) {
		on_frag(b, len, hl, from);
		return;
	}
	N.requests++;
	if (flags & CPN_F_SEALED) {
		static uint8_t rb[65536];
		uint8_t ad[CPN_SEAL_AD_LEN], *pl = (uint8_t *)b + hl;
		uint32_t plen = len - hl;

		if (memmem(pl, plen, MARKER, sizeof(MARKER) - 1))
			N.marker_seen++;
		cpn_seal_ad(h, ad);
		if (cpn_open_inplace(N.pkey, ad, pl, plen)) {
			N.sealed_bad++;
			answer_hdr(b, CPN_T_REPLY, 0, CPN_ST_BAD_REQUEST, a);
			send_to(from, a, sizeof(a), NULL, 0);
			return;
		}
		N.sealed_ok++;
		answer_hdr(b, CPN_T_REPLY, N.clear ? 0 : CPN_F_SEALED, 0, a);
		if (N.clear) {
			send_to(from, a, sizeof(a), pl + CPN_SEAL_NONCE_LEN,
				plen - CPN_SEAL_OVERHEAD);
			return;
		}
		cpn_seal_ad((const struct cpn_hdr *)a, ad);
		assert_int_equal(
		    cpn_seal(N.pkey, ad, pl + CPN_SEAL_NONCE_LEN, plen - CPN_SEAL_OVERHEAD, rb), 0);
		if (N.tamper)
			rb[plen / 2] ^= 1;
		send_to(from, a, sizeof(a), rb, plen);
		return;
	}
	switch (N.mode) {
	case M_DROP:
		return;
	case M_DROP_FIRST:
		if (!seen(cpn_ntohll(h->request_id)))
			return;
		break;
	case M_BUSY:
		answer_hdr(b, CPN_T_BUSY, 0, CPN_BUSY_OVERLOAD, a);
		send_to(from, a, sizeof(a), NULL, 0);
		return;
	case M_BUSY_TWICE:
		if (seen(cpn_ntohll(h->request_id)) < 2) {
			answer_hdr(b, CPN_T_BUSY, 0, CPN_BUSY_QUEUE, a);
			send_to(from, a, sizeof(a), NULL, 0);
			return;
		}
		break;
	default:
		break;
	}
	answer_hdr(b, CPN_T_REPLY, 0, (uint8_t)N.status, a);
	send_to(from, a, sizeof(a), b + hl, len - hl);
}

static void *node_main(void *arg)
{
	static uint8_t buf[65536];

	(void)arg;
	while (!N.stop) {
		struct pollfd p = {.fd = N.fd, .events = POLLIN};
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(&p, 1, 20) <= 0)
			continue;
		while ((n = recvfrom(N.fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl)) >= 0) {
			on_dgram(buf, (uint32_t)n, &from);
			fl = sizeof(from);
		}
	}
	return NULL;
}

static int node_start(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int buf = 8 << 20;

	(void)state;
	memset(&N, 0, sizeof(N));
	cpn_key_parse(KEY_HEX, N.key);
	cpn_seal_key_parse(PKEY_HEX, N.pkey);
	N.fd = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(N.fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	setsockopt(N.fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	if (N.fd < 0 || bind(N.fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(N.fd, (struct sockaddr *)&a, &al))
		return -1;
	N.port = ntohs(a.sin_port);
	return pthread_create(&N.th, NULL, node_main, NULL);
}

static int node_stop(void **state)
{
	(void)state;
	N.stop = true;
	pthread_join(N.th, NULL);
	close(N.fd);
	for (int i = 0; i < MAXMSG; i++)
		msg_free(&N.msgs[i]);
	return 0;
}

static struct cpn_client *open_client(void)
{
	char to[64];
	int err = 1;
	struct cpn_client *cl;

	snprintf(to, sizeof(to), "127.0.0.1:%u", N.port);
	cl = cpn_client_open(to, 1, 42, &err);
	assert_non_null(cl);
	assert_int_equal(err, 0);
	return cl;
}

static struct cpn_client_stats stats(struct cpn_client *cl)
{
	struct cpn_client_stats st;

	assert_int_equal(cpn_client_stats(cl, &st, sizeof(st)), 0);
	return st;
}

/* ---- tests ------------------------------------------------------------------- */

static void bad_arguments_change_nothing(void **state)
{
	struct cpn_client *cl;
	int err = 0;
	uint64_t v;

	(void)state;
	assert_null(cpn_client_open("nowhere", 1, 42, &err));
	assert_int_equal(err, CPN_E_INVAL);
	assert_null(cpn_client_open("127.0.0.1:0", 1, 42, &err));
	assert_null(cpn_client_open("127.0.0.1:1,", 1, 42, &err));
	assert_null(cpn_client_open("127.0.0.1:1,[::1]:1", 1, 42, &err));
	assert_int_equal(err, CPN_E_INVAL);
	assert_null(cpn_client_open(NULL, 1, 42, NULL));
	cl = open_client();
	assert_int_equal(cpn_client_set_key(cl, "00ff"), CPN_E_INVAL);
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_MAX_MESSAGE, (64ULL << 20) + 1),
			 CPN_E_INVAL);
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_TIMEOUT_MS, 0), CPN_E_INVAL);
	assert_int_equal(cpn_client_setopt(cl, (enum cpn_client_opt)999, 1), CPN_E_INVAL);
	assert_int_equal(cpn_client_getopt(cl, CPN_OPT_TIMEOUT_MS, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(cpn_client_getopt(cl, CPN_OPT_FRAG_SIZE, &v), 0);
	assert_int_equal(v, CPN_FRAG_DATA_DEFAULT);
	assert_int_equal(cpn_client_getopt(cl, CPN_OPT_MAX_MESSAGE, &v), 0);
	assert_int_equal(v, 4u << 20);
	/* STICKY needs a session key. */
	struct cpn_req r = {.data = "x", .len = 1, .flags = CPN_REQ_STICKY};

	assert_int_equal(cpn_client_submit(cl, &r, NULL), CPN_E_INVAL);
	assert_int_equal(cpn_client_inflight(cl), 0);
	assert_string_equal(cpn_strerror(CPN_E_BUSY), "busy: the service refused the request");
	assert_string_equal(cpn_strerror(12345), "unknown error");
	cpn_client_close(cl);
	cpn_client_close(NULL);
}

static void sync_call_echoes(void **state)
{
	struct cpn_client *cl = open_client();
	struct cpn_completion c;
	char buf[64];
	size_t len;
	void *p;

	(void)state;
	assert_int_equal(cpn_client_call(cl, "hello", 5, buf, sizeof(buf), &len, 1000), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	cpn_client_last(cl, &c);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.node_id, NODE_ID);
	assert_true(c.latency_ns > 0);
	/* Every request says the client takes a large reply as fragments. */
	assert_int_equal(N.frag_ok, 1);
	/* A buffer too small: the size is said. */
	assert_int_equal(cpn_client_call(cl, "hello", 5, buf, 2, &len, 1000), CPN_E_TOO_LARGE);
	assert_int_equal(len, 5);
	assert_int_equal(cpn_client_call_alloc(cl, "abc", 3, &p, &len, 1000), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "abc", 3);
	cpn_free(p);
	/* A remote error: status 2 with the reply. */
	N.status = CPN_ST_KERNEL_ERROR;
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), &len, 1000), CPN_E_REMOTE);
	cpn_client_last(cl, &c);
	assert_int_equal(c.remote, CPN_ST_KERNEL_ERROR);
	N.status = 0;
	cpn_client_close(cl);
}

static void async_thousand_in_flight(void **state)
{
	struct cpn_client *cl = open_client();
	static struct cpn_req reqs[1000];
	static uint32_t pay[1000];
	static bool got[1000];
	struct cpn_completion c[128];
	int done = 0, n;
	uint64_t t0 = cpn_now_ns();

	(void)state;
	for (int i = 0; i < 1000; i++) {
		pay[i] = (uint32_t)i * 2654435761u;
		reqs[i] = (struct cpn_req){.data = &pay[i], .len = 4, .user = (uint64_t)i};
	}
	assert_int_equal(cpn_client_submit_many(cl, reqs, 1000, NULL), 1000);
	assert_int_equal(cpn_client_inflight(cl), 1000);
	assert_true(cpn_client_fd(cl) >= 0);
	while (done < 1000 && cpn_now_ns() - t0 < 10000000000ULL) {
		n = cpn_client_poll(cl, c, 128, 100);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			uint64_t u = c[i].user;

			assert_int_equal(c[i].status, 0);
			assert_true(u < 1000 && !got[u]);
			assert_int_equal(c[i].len, 4);
			assert_memory_equal(c[i].data, &pay[u], 4);
			got[u] = true;
			done++;
		}
	}
	assert_int_equal(done, 1000);
	assert_int_equal(cpn_client_inflight(cl), 0);
	struct cpn_client_stats st = stats(cl);

	assert_int_equal(st.replies, 1000);
	assert_int_equal(st.malformed + st.unknown + st.duplicates + st.late, 0);
	cpn_client_close(cl);
}

static void busy_is_returned_or_retried(void **state)
{
	struct cpn_client *cl = open_client();
	struct cpn_completion c;
	struct cpn_req r = {.data = "q", .len = 1};
	int rc;

	(void)state;
	N.mode = M_BUSY;
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, CPN_E_BUSY);
	assert_int_equal(c.remote, CPN_BUSY_OVERLOAD);
	assert_int_equal(c.retries, 0);

	/* Retried with backoff: BUSY twice, then the reply. */
	N.mode = M_BUSY_TWICE;
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_BUSY_RETRY, 1), 0);
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, 0);
	assert_int_equal(c.retries, 2);
	assert_int_equal(stats(cl).retries_busy, 2);

	/* Retries per request are bounded: BUSY for ever ends BUSY after 2. */
	N.mode = M_BUSY;
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, CPN_E_BUSY);
	assert_int_equal(c.retries, 2);

	/* The client-wide budget: with no floor and 0 %, nothing is retried. */
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_RETRY_FLOOR, 0), 0);
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_RETRY_PERCENT, 0), 0);
	for (int i = 0; i < 20; i++) {
		rc = cpn_client_call_req(cl, &r, &c);
		assert_int_equal(rc, CPN_E_BUSY);
	}
	assert_true(stats(cl).retries_denied >= 15);
	cpn_client_close(cl);
}

static void timeout_when_nothing_answers(void **state)
{
	struct cpn_client *cl = open_client();
	char buf[8];
	uint64_t t0 = cpn_now_ns(), dt;

	(void)state;
	N.mode = M_DROP;
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 150), CPN_E_TIMEOUT);
	dt = cpn_now_ns() - t0;
	assert_true(dt >= 150000000ULL && dt < 1000000000ULL);
	assert_int_equal(stats(cl).timeouts, 1);
	cpn_client_close(cl);
}

static void idempotent_requests_are_sent_again(void **state)
{
	struct cpn_client *cl = open_client();
	struct cpn_completion c;
	struct cpn_req r = {.data = "idem", .len = 4, .timeout_ms = 600};
	int rc;

	(void)state;
	N.mode = M_DROP_FIRST;
	/* Not idempotent: the first send is lost, so is the request. */
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, CPN_E_TIMEOUT);
	/* Idempotent: sent again (same id) after 600 / 3 ms, answered. */
	r.flags = CPN_REQ_IDEMPOTENT;
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, 0);
	assert_int_equal(c.retries, 1);
	assert_int_equal(c.len, 4);
	assert_true(c.latency_ns >= 190000000ULL);
	assert_int_equal(stats(cl).retries_lost, 1);
	cpn_client_close(cl);
}

static void auth_tag_is_the_routers(void **state)
{
	struct cpn_client *cl = open_client();
	uint8_t kb[16];
	char buf[8];

	(void)state;
	N.require_key = true;
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 100), CPN_E_TIMEOUT);
	assert_int_equal(cpn_client_set_key(cl, KEY_HEX), 0);
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 1000), 0);
	assert_int_equal(N.tag_ok, 1);
	/* The key as bytes is the same key. */
	for (int i = 0; i < 16; i++)
		kb[i] = (uint8_t)i;
	assert_int_equal(cpn_client_set_key_bytes(cl, kb), 0);
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 1000), 0);
	assert_int_equal(N.tag_ok, 2);
	/* Another key: the node drops it. */
	assert_int_equal(cpn_client_set_key(cl, "ffffffffffffffffffffffffffffffff"), 0);
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 100), CPN_E_TIMEOUT);
	assert_int_equal(N.tag_bad, 2);
	cpn_client_close(cl);
}

/* Request ids: unique, and no counter an attacker could follow. */
static void request_ids_are_unpredictable(void **state)
{
	enum { K = 2000 };
	struct cpn_client *cl = open_client();
	static struct cpn_req r[K];
	static uint64_t ids[K];
	struct cpn_completion c[64];
	int done = 0, seq = 0, small = 0;

	(void)state;
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_MAX_INFLIGHT, K), 0);
	for (int i = 0; i < K; i++)
		r[i] = (struct cpn_req){.data = &ids[i], .len = 8, .timeout_ms = 5000, .user = i};
	assert_int_equal(cpn_client_submit_many(cl, r, K, ids), K);
	for (int i = 1; i < K; i++) {
		uint64_t d = ids[i] - ids[i - 1];

		seq += d == 1;
		/* Consecutive ids of a counter, or of base + counter, are close. */
		small += d < (1ULL << 40) || -d < (1ULL << 40);
		for (int j = 0; j < i; j++)
			assert_true(ids[j] != ids[i]);
	}
	assert_int_equal(seq, 0);
	assert_true(small < 5);
	/* ... and the answers still find their requests. */
	for (int t = 0; done < K && t < 500; t++) {
		int n = cpn_client_poll(cl, c, 64, 20);

		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			assert_int_equal(c[i].status, 0);
			assert_int_equal(c[i].id, ids[c[i].user]);
		}
		done += n;
	}
	assert_int_equal(done, K);
	assert_int_equal(stats(cl).unknown, 0);
	cpn_client_close(cl);
}

/* A signed request is fresh: FRESH, a current stamp, the tag over it; each
 * attempt has its own stamp.
 */
static void signed_requests_are_fresh(void **state)
{
	struct cpn_client *cl = open_client();
	struct cpn_completion c;
	struct cpn_req r = {.data = "f", .len = 1, .timeout_ms = 2000, .flags = CPN_REQ_IDEMPOTENT};
	char buf[8];

	(void)state;
	N.require_key = true;
	assert_int_equal(cpn_client_set_key(cl, KEY_HEX), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 1000), 0);
	assert_int_equal(N.fresh_ok, 20);
	assert_int_equal(N.fresh_missing, 0);
	assert_int_equal(N.tag_bad, 0);
	/* The node's clock and the client's are one here: within a second. */
	assert_true(N.stamp_skew_max < 1000);
	/* Sent again when unanswered: a new stamp, so a new tag (a replay
	 * cache would refuse the same one).
	 */
	N.mode = M_DROP_FIRST;
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_ATTEMPT_MS, 30), 0);
	assert_int_equal(cpn_client_call_req(cl, &r, &c), 0);
	assert_int_equal(c.retries, 1);
	assert_int_equal(N.fresh_ok, 22);
	/* Without a key: no FRESH, no stamp. */
	N.require_key = false;
	N.mode = M_ECHO;
	assert_int_equal(cpn_client_set_key(cl, NULL), 0);
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 1000), 0);
	assert_int_equal(N.fresh_ok, 22);
	cpn_client_close(cl);
}

/* Sealed payloads: sealed on the wire, opened for the caller; a reply
 * altered on the way, sent in clear, or under another key fails with
 * CPN_E_SEAL, counted.
 */
static void sealed_payloads(void **state)
{
	struct cpn_client *cl = open_client();
	char buf[64];
	size_t len = 0;

	(void)state;
	assert_int_equal(cpn_client_set_payload_key(cl, "0011"), CPN_E_INVAL);
	assert_int_equal(cpn_client_set_payload_key(cl, PKEY_HEX), 0);
	/* With the tenant key too: signed, fresh and sealed. */
	assert_int_equal(cpn_client_set_key(cl, KEY_HEX), 0);
	assert_int_equal(
	    cpn_client_call(cl, MARKER, sizeof(MARKER) - 1, buf, sizeof(buf), &len, 1000), 0);
	assert_int_equal(len, sizeof(MARKER) - 1);
	assert_memory_equal(buf, MARKER, len);
	assert_int_equal(N.sealed_ok, 1);
	assert_int_equal(N.marker_seen, 0);
	assert_int_equal(N.tag_bad, 0);
	/* Altered on the way. */
	N.tamper = true;
	assert_int_equal(
	    cpn_client_call(cl, MARKER, sizeof(MARKER) - 1, buf, sizeof(buf), &len, 1000),
	    CPN_E_SEAL);
	N.tamper = false;
	/* Not sealed: a downgrade is no reply either. */
	N.clear = true;
	assert_int_equal(
	    cpn_client_call(cl, MARKER, sizeof(MARKER) - 1, buf, sizeof(buf), &len, 1000),
	    CPN_E_SEAL);
	N.clear = false;
	assert_int_equal(stats(cl).unseal_failed, 2);
	/* Another key: the node cannot open the request. */
	assert_int_equal(cpn_client_set_payload_key(cl, "ff0102030405060708090a0b0c0d0e0f"
							"101112131415161718191a1b1c1d1e1f"),
			 0);
	assert_int_equal(
	    cpn_client_call(cl, MARKER, sizeof(MARKER) - 1, buf, sizeof(buf), &len, 1000),
	    CPN_E_REMOTE);
	assert_int_equal(N.sealed_bad, 1);
	/* No key: in clear again. */
	assert_int_equal(cpn_client_set_payload_key(cl, NULL), 0);
	assert_int_equal(
	    cpn_client_call(cl, MARKER, sizeof(MARKER) - 1, buf, sizeof(buf), &len, 1000), 0);
	assert_int_equal(N.marker_seen, 0);
	assert_int_equal(N.sealed_ok, 3);
	assert_string_equal(cpn_strerror(CPN_E_SEAL),
			    "a sealed reply did not open (payload key, or altered)");
	cpn_client_close(cl);
}

static void sticky_sessions(void **state)
{
	struct cpn_client *cl = open_client();
	struct cpn_completion c;
	struct cpn_req r = {.data = "s", .len = 1, .session_key = 77, .flags = CPN_REQ_STICKY};
	char buf[8];

	(void)state;
	assert_int_equal(cpn_client_call_req(cl, &r, &c), 0);
	assert_int_equal(N.sticky_seen, 1);
	assert_int_equal(N.last_session, 77);
	/* A session key without STICKY. */
	r.flags = 0;
	assert_int_equal(cpn_client_call_req(cl, &r, &c), 0);
	assert_int_equal(N.sticky_seen, 1);
	assert_int_equal(N.last_session, 77);
	/* Per client. */
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_SESSION, 99), 0);
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_STICKY, 1), 0);
	assert_int_equal(cpn_client_call(cl, "x", 1, buf, sizeof(buf), NULL, 1000), 0);
	assert_int_equal(N.sticky_seen, 2);
	assert_int_equal(N.last_session, 99);
	cpn_client_close(cl);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n);
	uint64_t s = seed;

	assert_non_null(p);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = cpn_splitmix64(&s);

		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
	return p;
}

static void large_request_and_reply(void **state)
{
	struct cpn_client *cl = open_client();
	size_t n = 1 << 20;
	uint8_t *req = pattern(n, 1);
	struct cpn_completion c;
	struct cpn_req r = {.data = req, .len = n, .timeout_ms = 10000, .flags = CPN_REQ_NOCOPY};
	int rc;

	(void)state;
	/* Keyed: every fragment and ack carries the tag the node checks. */
	assert_int_equal(cpn_client_set_key(cl, KEY_HEX), 0);
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, 0);
	assert_int_equal(c.len, n);
	assert_memory_equal(c.data, req, n);
	assert_int_equal(c.node_id, NODE_ID);
	struct cpn_client_stats st = stats(cl);

	assert_true(st.tx_fragments >= n / CPN_FRAG_DATA_DEFAULT);
	assert_true(st.rx_fragments >= n / 1000);
	assert_true(st.rx_acks >= n / CPN_FRAG_ACK_EVERY);
	assert_true(st.tx_acks >= n / CPN_FRAG_ACK_EVERY);
	assert_int_equal(st.frag_bad + st.frag_dup, 0);
	assert_int_equal(N.tag_bad, 0);
	assert_true(N.tag_ok > n / CPN_FRAG_DATA_DEFAULT);
	/* Every CONT fragment and ack carried the ack's router_ts and hop tag
	 * and the first fragment's stamp.
	 */
	assert_int_equal(N.cont_wrong, 0);
	assert_true(N.cont_copied >= n / CPN_FRAG_DATA_DEFAULT);
	assert_int_equal(N.fresh_missing, 0);
	/* A small one after: sent whole. */
	assert_int_equal(cpn_client_call(cl, "s", 1, NULL, 0, NULL, 1000), CPN_E_TOO_LARGE);
	/* Too large for the client's limit. */
	assert_int_equal(cpn_client_setopt(cl, CPN_OPT_MAX_MESSAGE, 1000), 0);
	rc = cpn_client_call_req(cl, &r, &c);
	assert_int_equal(rc, CPN_E_TOO_LARGE);
	free(req);
	cpn_client_close(cl);
}

static void a_lost_fragment_fails_only_its_request(void **state)
{
	struct cpn_client *cl = open_client();
	size_t n = 200000;
	uint8_t *p[4];
	struct cpn_req r[4];
	uint64_t ids[4];
	struct cpn_completion c[8];
	int done = 0, ok = 0, tmo = 0;

	(void)state;
	for (int i = 0; i < 4; i++) {
		p[i] = pattern(n, (uint32_t)i + 10);
		r[i] = (struct cpn_req){.data = p[i], .len = n, .timeout_ms = 1500, .user = i};
	}
	/* Ids are not predictable: the node drops one fragment of the third
	 * message whose first fragment it sees.
	 */
	N.drop_nth_msg = 3;
	assert_int_equal(cpn_client_submit_many(cl, r, 2, ids), 2);
	assert_int_equal(cpn_client_submit_many(cl, r + 2, 2, ids + 2), 2);
	while (done < 4) {
		int k = cpn_client_poll(cl, c, 8, 3000);

		assert_true(k > 0);
		for (int i = 0; i < k; i++) {
			done++;
			if (c[i].id == ids[2]) {
				assert_int_equal(c[i].status, CPN_E_TIMEOUT);
				tmo++;
			} else {
				assert_int_equal(c[i].status, 0);
				assert_int_equal(c[i].len, n);
				assert_memory_equal(c[i].data, p[c[i].user], n);
				ok++;
			}
		}
	}
	assert_int_equal(ok, 3);
	assert_int_equal(tmo, 1);
	for (int i = 0; i < 4; i++)
		free(p[i]);
	cpn_client_close(cl);
}

static void a_node_without_fragments_is_an_error(void **state)
{
	struct cpn_client *cl = open_client();
	size_t n = 5000;
	uint8_t *p = pattern(n, 3);
	struct cpn_req r = {.data = p, .len = n};
	struct cpn_completion c;

	(void)state;
	N.mode = M_OLD_NODE;
	N.status = 0;
	assert_int_equal(cpn_client_call_req(cl, &r, &c), CPN_E_PROTO);
	N.status = CPN_ST_TOO_LARGE;
	assert_int_equal(cpn_client_call_req(cl, &r, &c), CPN_E_TOO_LARGE);
	N.status = CPN_ST_BAD_REQUEST;
	assert_int_equal(cpn_client_call_req(cl, &r, &c), CPN_E_REMOTE);
	assert_int_equal(c.remote, CPN_ST_BAD_REQUEST);
	free(p);
	cpn_client_close(cl);
}

/* A second socket that answers as the node's address would not: the client
 * is connected, so junk has to come from the node's own socket.
 */
static void send_junk(const struct sockaddr_in *to, const void *b, size_t len)
{
	send_to(to, b, len, NULL, 0);
}

static void malformed_datagrams_are_counted_and_ignored(void **state)
{
	struct cpn_client *cl = open_client();
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	uint8_t h[CPN_HDR_LEN + CPN_FRAG_LEN + 16], base[CPN_HDR_LEN];
	struct cpn_completion c[4];
	struct cpn_msg m;
	uint64_t id;
	struct cpn_req r = {.data = "m", .len = 1};
	int n;

	(void)state;
	N.mode = M_DROP;
	assert_int_equal(getsockname(cpn_client_fd(cl), (struct sockaddr *)&me, &ml), 0);
	assert_int_equal(cpn_client_submit(cl, &r, &id), 0);
	cpn_msg_init(&m, CPN_T_REPLY);
	m.service_id = 1;
	m.tenant_id = 42;
	m.request_id = id;
	m.node_id = NODE_ID;
	cpn_hdr_encode(&m, (struct cpn_hdr *)base);

	send_junk(&me, "short", 5); /* malformed */
	memcpy(h, base, CPN_HDR_LEN);
	h[0] = 0x12; /* bad magic */
	send_junk(&me, h, CPN_HDR_LEN);
	memcpy(h, base, CPN_HDR_LEN);
	h[2] = 9; /* bad version */
	send_junk(&me, h, CPN_HDR_LEN);
	memcpy(h, base, CPN_HDR_LEN);
	h[3] = 77; /* bad type */
	send_junk(&me, h, CPN_HDR_LEN);
	memcpy(h, base, CPN_HDR_LEN);
	h[3] = CPN_T_LOAD; /* a type that answers nothing */
	send_junk(&me, h, CPN_HDR_LEN);
	memcpy(h, base, CPN_HDR_LEN);
	((struct cpn_hdr *)h)->request_id = cpn_htonll(id + 1000000); /* never sent */
	send_junk(&me, h, CPN_HDR_LEN);
	memcpy(h, base, CPN_HDR_LEN);
	((struct cpn_hdr *)h)->tenant_id = cpn_htonl(43); /* another tenant */
	send_junk(&me, h, CPN_HDR_LEN);
	/* Fragments out of range: total 0, total over the wire maximum, past the end,
	 * a FRAG flag without the fragment header.
	 */
	struct cpn_frag f[] = {
	    {0, 0}, {cpn_htonl(CPN_FRAG_MAX_TOTAL + 1), 0}, {cpn_htonl(10), cpn_htonl(8)}};

	for (unsigned i = 0; i < 3; i++) {
		memcpy(h, base, CPN_HDR_LEN);
		((struct cpn_hdr *)h)->flags = cpn_htons(CPN_F_FRAG);
		memcpy(h + CPN_HDR_LEN, &f[i], CPN_FRAG_LEN);
		memset(h + CPN_HDR_LEN + CPN_FRAG_LEN, 0xab, 16);
		send_junk(&me, h, CPN_HDR_LEN + CPN_FRAG_LEN + 16);
	}
	memcpy(h, base, CPN_HDR_LEN);
	((struct cpn_hdr *)h)->flags = cpn_htons(CPN_F_FRAG);
	send_junk(&me, h, CPN_HDR_LEN + 4);
	/* An ack for a request that is not large. */
	memcpy(h, base, CPN_HDR_LEN);
	((struct cpn_hdr *)h)->flags = cpn_htons(CPN_F_FRAG | CPN_F_CONT);
	memcpy(h + CPN_HDR_LEN, &f[2], CPN_FRAG_LEN);
	send_junk(&me, h, CPN_HDR_LEN + CPN_FRAG_LEN);
	/* Then the reply, and the same reply again. */
	memcpy(h, base, CPN_HDR_LEN);
	h[CPN_HDR_LEN] = 'R';
	send_junk(&me, h, CPN_HDR_LEN + 1);
	send_junk(&me, h, CPN_HDR_LEN + 1);
	n = cpn_client_poll(cl, c, 4, 1000);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].id, id);
	assert_int_equal(c[0].status, 0);
	assert_int_equal(c[0].len, 1);
	assert_memory_equal(c[0].data, "R", 1);
	n = cpn_client_poll(cl, c, 4, 100);
	assert_int_equal(n, 0);
	struct cpn_client_stats st = stats(cl);

	assert_int_equal(st.malformed, 4);
	assert_int_equal(st.bad_type, 1);
	assert_int_equal(st.unknown, 1);
	assert_int_equal(st.foreign, 1);
	assert_int_equal(st.frag_bad, 5);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(st.replies, 1);
	cpn_client_close(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(bad_arguments_change_nothing, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(sync_call_echoes, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(async_thousand_in_flight, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(busy_is_returned_or_retried, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(timeout_when_nothing_answers, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(idempotent_requests_are_sent_again, node_start,
					    node_stop),
	    cmocka_unit_test_setup_teardown(auth_tag_is_the_routers, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(request_ids_are_unpredictable, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(signed_requests_are_fresh, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(sealed_payloads, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(sticky_sessions, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(large_request_and_reply, node_start, node_stop),
	    cmocka_unit_test_setup_teardown(a_lost_fragment_fails_only_its_request, node_start,
					    node_stop),
	    cmocka_unit_test_setup_teardown(a_node_without_fragments_is_an_error, node_start,
					    node_stop),
	    cmocka_unit_test_setup_teardown(malformed_datagrams_are_counted_and_ignored, node_start,
					    node_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
