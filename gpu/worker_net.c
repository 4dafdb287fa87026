// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker's network side: one UDP socket for everything (requests in,
 * replies, BUSY, PROBE_ACK and LOAD out, so that every datagram the router
 * sees comes from the node's configured address and port), recvmmsg and
 * sendmmsg in batches, IPv4 and IPv6.
 *
 * --delay-us D emulates extra path delay where there is no netem (a worker
 * on the router's own host): every datagram that answers one received —
 * REPLY, BUSY, PROBE_ACK — is held D µs before it is sent, by the timer
 * thread. worker_us is stamped when the datagram is built, before the hold,
 * so the router counts those D µs as path latency, as it would a longer
 * wire. LOAD heartbeats are not held: they carry no timestamp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "cpn/siphash.h"
#include "worker.h"
#include "cpn_addr.h"

/* ---- addresses ---------------------------------------------------------- */

/* IPv4 "A.B.C.D:PORT" or IPv6 "[ADDR]:PORT"; port 1..65535. */
int wk_addr_parse(const char *s, struct wk_addr *a)
{
	return cpn_sockaddr_parse(s, 1, &a->ss, &a->len);
}

void wk_addr_str(const struct wk_addr *a, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof(h));
		snprintf(buf, len, "[%s]:%u", h, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, h, sizeof(h));
		snprintf(buf, len, "%s:%u", h, ntohs(s4->sin_port));
	}
}

/* An IPv4 router seen from an IPv6 socket: ::ffff:A.B.C.D. */
static void addr_map_v4(struct wk_addr *a)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

	memcpy(&s4, &a->ss, sizeof(s4));
	memset(&a->ss, 0, sizeof(a->ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = s4.sin_port;
	s6->sin6_addr.s6_addr[10] = 0xff;
	s6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&s6->sin6_addr.s6_addr[12], &s4.sin_addr, 4);
	a->len = sizeof(*s6);
}

/* Can a socket bound to `listen` send to `r`? IPv6 to IPv4 only from :: or
 * an IPv4-mapped address; IPv4 to IPv6 never.
 */
int wk_addr_reachable(const struct wk_addr *listen, const struct wk_addr *r)
{
	const struct in6_addr *l6 = &((const struct sockaddr_in6 *)&listen->ss)->sin6_addr;

	if (r->ss.ss_family == listen->ss.ss_family)
		return 1;
	return listen->ss.ss_family == AF_INET6 &&
	       (IN6_IS_ADDR_UNSPECIFIED(l6) || IN6_IS_ADDR_V4MAPPED(l6));
}

int wk_net_open(struct worker *w, char *err, size_t errlen)
{
	int fam = w->o.listen.ss.ss_family, one = 1, zero = 0, buf = 32 << 20;
	char a[INET6_ADDRSTRLEN + 8];

	/* The options were checked with wk_addr_reachable(). */
	for (int i = 0; i < w->o.n_routers; i++)
		if (w->o.routers[i].ss.ss_family != fam)
			addr_map_v4(&w->o.routers[i]);
	w->fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (w->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* Best effort: bursts of whole batches arrive at once. Past the
	 * system's rmem_max where allowed (CAP_NET_ADMIN), else up to it.
	 */
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(w->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		setsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(w->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6)
		setsockopt(w->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(w->fd, (struct sockaddr *)&w->o.listen.ss, w->o.listen.len)) {
		int e = errno;

		wk_addr_str(&w->o.listen, a, sizeof(a));
		snprintf(err, errlen, "bind %s: %s", a, strerror(e));
		close(w->fd);
		w->fd = -1;
		return -e;
	}
	return 0;
}

void wk_net_close(struct worker *w)
{
	struct wk_held *h, *n;

	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	for (h = w->hold_head; h; h = n) {
		n = h->next;
		free(h);
	}
	w->hold_head = w->hold_tail = NULL;
}

/* ---- building and sending --------------------------------------------- */

void wk_load_fill(struct worker *w, struct cpn_msg *m)
{
	uint32_t q = WK_LOAD(&w->queued), f = WK_LOAD(&w->inflight);

	m->queue_depth = q > 0xffff ? 0xffff : (uint16_t)q;
	m->inflight = f > 0xffff ? 0xffff : (uint16_t)f;
	m->capacity = w->report_capacity;
	m->util = WK_LOAD(&w->util);
	if (WK_LOAD(&w->draining))
		m->flags |= CPN_F_DRAINING;
}

void wk_seal(struct worker *w, struct cpn_msg *m, struct wk_tx *t)
{
	struct cpn_hdr *h = (struct cpn_hdr *)t->hdr;

	m->magic = CPN_MAGIC;
	m->version = CPN_VERSION;
	m->node_id = w->o.node_id;
	m->reserved = 0;
	if (w->o.have_key)
		m->flags |= CPN_F_AUTH;
	else
		m->flags &= ~CPN_F_AUTH;
	cpn_hdr_encode(m, h);
	t->hlen = CPN_HDR_LEN;
	if (w->o.have_key) {
		__u64 tag = cpn_tag_node(w->o.key, h);

		memcpy(t->hdr + CPN_HDR_LEN, &tag, CPN_TAG_LEN);
		t->hlen += CPN_TAG_LEN;
	}
}

/* sendmmsg until every datagram went or failed; a failure skips one. */
static void send_now(struct worker *w, struct mmsghdr *mm, int n)
{
	int sent = 0;

	while (sent < n) {
		int r = sendmmsg(w->fd, mm + sent, (unsigned)(n - sent), 0);

		if (r > 0) {
			sent += r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			WK_ADD(w, send_errors, 1);
			sent++;
		}
	}
}

static void send_direct(struct worker *w, struct wk_tx *t, int n)
{
	struct mmsghdr mm[WK_TX_BATCH];
	struct iovec iov[WK_TX_BATCH][2];

	for (int base = 0; base < n; base += WK_TX_BATCH) {
		int k = n - base < WK_TX_BATCH ? n - base : WK_TX_BATCH;

		memset(mm, 0, sizeof(mm[0]) * (size_t)k);
		for (int i = 0; i < k; i++) {
			struct wk_tx *x = &t[base + i];

			iov[i][0].iov_base = x->hdr;
			iov[i][0].iov_len = x->hlen;
			iov[i][1].iov_base = (void *)x->pl;
			iov[i][1].iov_len = x->plen;
			mm[i].msg_hdr.msg_name = (void *)&x->dst->ss;
			mm[i].msg_hdr.msg_namelen = x->dst->len;
			mm[i].msg_hdr.msg_iov = iov[i];
			mm[i].msg_hdr.msg_iovlen = x->plen ? 2 : 1;
		}
		send_now(w, mm, k);
	}
}

/* Copy each datagram and hand it to the timer thread, due in delay_us. */
static void send_held(struct worker *w, struct wk_tx *t, int n)
{
	struct wk_held *first = NULL, **pp = &first, *last = NULL;
	uint64_t due;

	for (int i = 0; i < n; i++) {
		struct wk_held *h = malloc(sizeof(*h) + t[i].hlen + t[i].plen);

		if (!h) {
			WK_ADD(w, send_errors, 1);
			continue;
		}
		h->next = NULL;
		h->dst = *t[i].dst;
		h->len = t[i].hlen + t[i].plen;
		memcpy(h->data, t[i].hdr, t[i].hlen);
		if (t[i].plen)
			memcpy(h->data + t[i].hlen, t[i].pl, t[i].plen);
		*pp = last = h;
		pp = &h->next;
	}
	if (!first)
		return;
	pthread_mutex_lock(&w->hold_lock);
	/* Stamped under the lock: with one delay for all, the list stays in
	 * due order, and the timer only ever looks at its head.
	 */
	due = cpn_now_ns() + (uint64_t)w->o.delay_us * 1000;
	for (struct wk_held *h = first; h; h = h->next)
		h->due = due;
	if (w->hold_tail)
		w->hold_tail->next = first;
	else
		w->hold_head = first;
	w->hold_tail = last;
	pthread_cond_signal(&w->hold_cond);
	pthread_mutex_unlock(&w->hold_lock);
}

void wk_send(struct worker *w, struct wk_tx *t, int n)
{
	if (n <= 0)
		return;
	if (w->o.delay_us)
		send_held(w, t, n);
	else
		send_direct(w, t, n);
}

/* A LOAD to every router, now (never held). */
void wk_send_load(struct worker *w)
{
	struct wk_tx t[WK_MAX_ROUTERS];
	struct cpn_msg m;

	cpn_msg_init(&m, CPN_T_LOAD);
	wk_load_fill(w, &m);
	m.worker_us = WK_LOAD(&w->svc_us);
	for (int i = 0; i < w->o.n_routers; i++) {
		struct cpn_msg mi = m;

		wk_seal(w, &mi, &t[i]);
		t[i].dst = &w->o.routers[i];
		t[i].pl = NULL;
		t[i].plen = 0;
	}
	send_direct(w, t, w->o.n_routers);
	WK_ADD(w, loads, (uint64_t)w->o.n_routers);
}

/* ---- receiver ---------------------------------------------------------- */

static void tx_answer(struct worker *w, struct wk_tx *t, struct cpn_msg *m,
		      const struct wk_addr *dst)
{
	wk_seal(w, m, t);
	t->dst = dst;
	t->pl = NULL;
	t->plen = 0;
}

/* The request's identity, echoed by every answer to it. */
static void echo_identity(struct cpn_msg *out, const struct cpn_msg *in, __u8 type)
{
	cpn_msg_init(out, type);
	out->service_id = in->service_id;
	out->tenant_id = in->tenant_id;
	out->session_key = in->session_key;
	out->request_id = in->request_id;
	out->hops = in->hops;
	out->class = in->class;
	out->router_ts = in->router_ts;
}

void wk_busy_msg(struct worker *w, const struct wk_req *r, uint8_t reason, struct wk_tx *t)
{
	struct cpn_msg m;

	echo_identity(&m, &r->m, CPN_T_BUSY);
	m.status = reason;
	wk_load_fill(w, &m);
	m.worker_us = (uint32_t)((cpn_now_ns() - r->t_rx) / 1000);
	tx_answer(w, t, &m, &r->src);
	if (reason == CPN_BUSY_DRAINING)
		WK_ADD(w, busy_draining, 1);
	else
		WK_ADD(w, busy_overload, 1);
}

struct rx_ctx {
	struct mmsghdr mm[WK_RX_BATCH];
	struct iovec iov[WK_RX_BATCH];
	struct wk_addr src[WK_RX_BATCH];
	uint8_t *buf; /* WK_RX_BATCH x 64 KiB */
	struct wk_tx tx[WK_RX_BATCH];
};

#define RX_BUF 65536

/* One datagram: queue a request, or answer it at once (PROBE, malformed
 * payload, no memory). Returns the request to queue, or NULL.
 */
static struct wk_req *rx_one(struct worker *w, struct rx_ctx *c, int i, uint64_t now, int *ntx)
{
	const uint8_t *data = c->buf + (size_t)i * RX_BUF;
	uint32_t len = c->mm[i].msg_len;
	const struct cpn_hdr *h = (const struct cpn_hdr *)data;
	uint32_t off, plen;
	struct cpn_msg in, out;
	struct wk_req *r;

	c->src[i].len = c->mm[i].msg_hdr.msg_namelen;
	if ((c->mm[i].msg_hdr.msg_flags & MSG_TRUNC) || cpn_hdr_check(h, len) != CPN_HDR_OK) {
		WK_ADD(w, ignored_malformed, 1);
		return NULL;
	}
	cpn_hdr_decode(h, &in);
	if (in.type == CPN_T_PROBE) {
		WK_ADD(w, probes, 1);
		echo_identity(&out, &in, CPN_T_PROBE_ACK);
		wk_load_fill(w, &out);
		out.worker_us = WK_LOAD(&w->svc_us);
		tx_answer(w, &c->tx[(*ntx)++], &out, &c->src[i]);
		return NULL;
	}
	if (in.type != CPN_T_REQUEST) {
		WK_ADD(w, ignored_type, 1);
		return NULL;
	}
	WK_ADD(w, requests, 1);
	off = cpn_hdr_total_len(h);
	plen = len - off;
	if (!wk_payload_ok(w, plen)) {
		echo_identity(&out, &in, CPN_T_REPLY);
		out.status = CPN_ST_BAD_REQUEST;
		wk_load_fill(w, &out);
		out.worker_us = (uint32_t)((cpn_now_ns() - now) / 1000);
		tx_answer(w, &c->tx[(*ntx)++], &out, &c->src[i]);
		WK_ADD(w, replies[CPN_ST_BAD_REQUEST], 1);
		return NULL;
	}
	r = malloc(sizeof(*r) + plen);
	if (!r) {
		struct wk_req tmp = {.t_rx = now, .src = c->src[i], .m = in};

		/* No memory for it: as good as a full queue. src is copied
		 * into the tx's own slot in c->src, which outlives the send.
		 */
		wk_busy_msg(w, &tmp, CPN_BUSY_OVERLOAD, &c->tx[*ntx]);
		c->tx[(*ntx)++].dst = &c->src[i];
		return NULL;
	}
	r->next = NULL;
	r->t_rx = now;
	r->src = c->src[i];
	r->m = in;
	r->len = plen;
	memcpy(r->payload, data + off, plen);
	return r;
}

static void *rx_main(void *arg)
{
	struct worker *w = arg;
	struct rx_ctx *c = calloc(1, sizeof(*c));
	struct pollfd pfd = {.fd = w->fd, .events = POLLIN};

	if (c)
		c->buf = malloc((size_t)WK_RX_BATCH * RX_BUF);
	if (!c || !c->buf) {
		wk_fatal(w, "receiver: out of memory");
		goto out;
	}
	while (!WK_LOAD(&w->stop_rx)) {
		struct wk_req *list = NULL, **pp = &list, *refused = NULL, *r;
		int n, ntx = 0, nref = 0;
		uint64_t now;

		/* Bounded wait: stop_rx is looked at every 50 ms. */
		n = poll(&pfd, 1, 50);
		if (n < 0 && errno != EINTR) {
			wk_fatal(w, "receiver: poll: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		for (int i = 0; i < WK_RX_BATCH; i++) {
			c->iov[i].iov_base = c->buf + (size_t)i * RX_BUF;
			c->iov[i].iov_len = RX_BUF;
			memset(&c->mm[i].msg_hdr, 0, sizeof(c->mm[i].msg_hdr));
			c->mm[i].msg_hdr.msg_iov = &c->iov[i];
			c->mm[i].msg_hdr.msg_iovlen = 1;
			c->mm[i].msg_hdr.msg_name = &c->src[i].ss;
			c->mm[i].msg_hdr.msg_namelen = sizeof(c->src[i].ss);
		}
		n = recvmmsg(w->fd, c->mm, WK_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			wk_fatal(w, "receiver: recvmmsg: %s", strerror(errno));
			break;
		}
		now = cpn_now_ns();
		for (int i = 0; i < n; i++) {
			r = rx_one(w, c, i, now, &ntx);
			if (r) {
				*pp = r;
				pp = &r->next;
			}
		}
		if (list)
			wk_enqueue(w, list, &refused);
		/* Answers first (they do not wait for anything), then BUSY for
		 * what the queue refused; both at most one per datagram.
		 */
		for (r = refused; r; r = r->next)
			wk_busy_msg(w, r, r->m.status, &c->tx[ntx + nref++]);
		wk_send(w, c->tx, ntx + nref);
		while (refused) {
			r = refused->next;
			free(refused);
			refused = r;
		}
	}
out:
	if (c)
		free(c->buf);
	free(c);
	return NULL;
}

/* ---- timer: heartbeats and held datagrams ------------------------------ */

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* util over [last, now]: the slots' busy time in that span over its length
 * times the number of slots, 0..255.
 */
static void update_util(struct worker *w, uint64_t now, uint64_t *last_t, uint64_t *last_busy)
{
	uint64_t busy = wk_busy_ns(w, now), span = now - *last_t;
	double u = 0;

	if (span > 0)
		u = (double)(busy - *last_busy) / ((double)span * w->o.capacity);
	if (u > 1)
		u = 1;
	if (u < 0)
		u = 0;
	WK_STORE(&w->util, (uint8_t)(u * 255 + 0.5));
	*last_t = now;
	*last_busy = busy;
}

/* Send the held datagrams that are due (at most one sendmmsg's worth);
 * called and returns with hold_lock held. Returns how many it sent.
 */
static int flush_due(struct worker *w, uint64_t now)
{
	struct wk_held *h[WK_TX_BATCH];
	struct mmsghdr mm[WK_TX_BATCH];
	struct iovec iov[WK_TX_BATCH];
	int n = 0;

	while (n < WK_TX_BATCH && w->hold_head && w->hold_head->due <= now) {
		h[n++] = w->hold_head;
		w->hold_head = w->hold_head->next;
	}
	if (!w->hold_head)
		w->hold_tail = NULL;
	if (!n)
		return 0;
	pthread_mutex_unlock(&w->hold_lock);
	memset(mm, 0, sizeof(mm[0]) * (size_t)n);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = h[i]->data;
		iov[i].iov_len = h[i]->len;
		mm[i].msg_hdr.msg_name = &h[i]->dst.ss;
		mm[i].msg_hdr.msg_namelen = h[i]->dst.len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	send_now(w, mm, n);
	for (int i = 0; i < n; i++)
		free(h[i]);
	pthread_mutex_lock(&w->hold_lock);
	return n;
}

static void *timer_main(void *arg)
{
	struct worker *w = arg;
	uint64_t interval = (uint64_t)w->o.load_interval_ms * 1000000u;
	uint64_t now = cpn_now_ns(), next_hb = now, last_t = now, last_busy = wk_busy_ns(w, now);

	/* Held datagrams are due to the µs: no 50 µs default timer slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&w->hold_lock);
	for (;;) {
		uint64_t wake;
		struct timespec ts;
		int stopping = WK_LOAD(&w->stop_timer);

		now = cpn_now_ns();
		if (flush_due(w, now))
			continue;
		if (stopping && !w->hold_head)
			break;
		if (!stopping && now >= next_hb) {
			pthread_mutex_unlock(&w->hold_lock);
			update_util(w, now, &last_t, &last_busy);
			wk_send_load(w);
			pthread_mutex_lock(&w->hold_lock);
			next_hb += interval;
			if (next_hb <= now)
				next_hb = now + interval;
			continue;
		}
		wake = stopping ? UINT64_MAX : next_hb;
		if (w->hold_head && w->hold_head->due < wake)
			wake = w->hold_head->due;
		/* At most 100 ms asleep, whatever is due: stop_timer is seen. */
		if (wake > now + 100000000u)
			wake = now + 100000000u;
		ns_to_ts(wake, &ts);
		pthread_cond_timedwait(&w->hold_cond, &w->hold_lock, &ts);
	}
	pthread_mutex_unlock(&w->hold_lock);
	return NULL;
}

int wk_net_start(struct worker *w, char *err, size_t errlen)
{
	int e;

	e = pthread_create(&w->timer_th, NULL, timer_main, w);
	if (e) {
		snprintf(err, errlen, "timer thread: %s", strerror(e));
		return -e;
	}
	w->timer_started = 1;
	e = pthread_create(&w->rx_th, NULL, rx_main, w);
	if (e) {
		snprintf(err, errlen, "receiver thread: %s", strerror(e));
		return -e;
	}
	w->rx_started = 1;
	return 0;
}

void wk_rx_stop(struct worker *w)
{
	if (!w->rx_started)
		return;
	WK_STORE(&w->stop_rx, 1);
	pthread_join(w->rx_th, NULL);
	w->rx_started = 0;
}

void wk_timer_stop(struct worker *w)
{
	if (!w->timer_started)
		return;
	pthread_mutex_lock(&w->hold_lock);
	WK_STORE(&w->stop_timer, 1);
	pthread_cond_signal(&w->hold_cond);
	pthread_mutex_unlock(&w->hold_lock);
	pthread_join(w->timer_th, NULL);
	w->timer_started = 0;
}
