// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Large messages: the receiver's reassembly and the large replies' sender
 * (worker_frag.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cpn/siphash.h"
#include "worker_frag.h"
#include "cpn_util.h"

#define MSG_BUCKETS    16384
#define CLIENT_BUCKETS 4096

/* A byte range held, [lo, hi). */
struct wk_iv {
	uint32_t lo, hi;
};

/* A request being reassembled. Its key is r's source, request id, tenant
 * and service; r->payload is the whole message, filled as fragments come.
 */
struct wk_rmsg {
	struct wk_rmsg *hnext;
	struct wk_rmsg *prev, *next; /* LRU */
	struct wk_rclient *cl;
	struct wk_req *r;
	uint64_t last_ns;
	uint32_t total, held, next_ack;
	uint32_t charge;
	uint32_t n_iv, cap_iv;
	struct wk_iv *iv; /* sorted, disjoint, not adjacent */
	uint32_t hash;
};

/* A client (source address and port) with messages being reassembled. */
struct wk_rclient {
	struct wk_rclient *hnext;
	struct wk_addr src;
	uint64_t bytes;
	uint32_t msgs;
	uint32_t hash;
};

/* ---- keys ------------------------------------------------------------------ */

/* The address and port of a source as two words and a half. */
static void addr_words(const struct wk_addr *a, __u64 w[3])
{
	w[0] = w[1] = w[2] = 0;
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		memcpy(w, &s6->sin6_addr, 16);
		w[2] = ((__u64)AF_INET6 << 16) | s6->sin6_port;
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		memcpy(w, &s4->sin_addr, 4);
		w[2] = ((__u64)AF_INET << 16) | s4->sin_port;
	}
}

static int same_src(const struct wk_addr *a, const struct wk_addr *b)
{
	__u64 x[3], y[3];

	addr_words(a, x);
	addr_words(b, y);
	return !memcmp(x, y, sizeof(x));
}

static uint32_t client_hash(const struct wk_reasm *ra, const struct wk_addr *src)
{
	__u64 w[3];

	addr_words(src, w);
	return (uint32_t)cpn_siphash24(ra->hkey, w, 3);
}

static uint32_t msg_hash(const struct wk_reasm *ra, const struct wk_addr *src,
			 const struct cpn_msg *m)
{
	__u64 w[5];

	addr_words(src, w);
	w[3] = m->request_id;
	w[4] = ((__u64)m->tenant_id << 16) | m->service_id;
	return (uint32_t)cpn_siphash24(ra->hkey, w, 5);
}

static int msg_match(const struct wk_rmsg *x, const struct wk_addr *src, const struct cpn_msg *m)
{
	return x->r->m.request_id == m->request_id && x->r->m.tenant_id == m->tenant_id &&
	       x->r->m.service_id == m->service_id && same_src(&x->r->src, src);
}

/* ---- reassembly ------------------------------------------------------------- */

int wk_reasm_init(struct wk_reasm *ra, const struct wk_frag_cfg *c, struct wk_stats *st, char *err,
		  size_t errlen)
{
	memset(ra, 0, sizeof(*ra));
	ra->c = *c;
	ra->st = st;
	if (getrandom(ra->hkey, sizeof(ra->hkey), 0) != sizeof(ra->hkey)) {
		/* No entropy: a key from the clock still differs per process. */
		ra->hkey[0] = cpn_now_ns();
		ra->hkey[1] = (__u64)(uintptr_t)ra;
	}
	ra->msgs = calloc(MSG_BUCKETS, sizeof(*ra->msgs));
	ra->clients = calloc(CLIENT_BUCKETS, sizeof(*ra->clients));
	if (!ra->msgs || !ra->clients) {
		free(ra->msgs);
		free(ra->clients);
		ra->msgs = NULL;
		ra->clients = NULL;
		snprintf(err, errlen, "out of memory for the reassembly tables");
		return -ENOMEM;
	}
	return 0;
}

static struct wk_rclient *client_get(struct wk_reasm *ra, const struct wk_addr *src, int add)
{
	uint32_t h = client_hash(ra, src);
	struct wk_rclient *c;

	for (c = ra->clients[h % CLIENT_BUCKETS]; c; c = c->hnext)
		if (c->hash == h && same_src(&c->src, src))
			return c;
	if (!add || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->src = *src;
	c->hash = h;
	c->hnext = ra->clients[h % CLIENT_BUCKETS];
	ra->clients[h % CLIENT_BUCKETS] = c;
	return c;
}

static void client_put(struct wk_reasm *ra, struct wk_rclient *c)
{
	struct wk_rclient **pp;

	if (c->msgs)
		return;
	for (pp = &ra->clients[c->hash % CLIENT_BUCKETS]; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	free(c);
}

static struct wk_rmsg *msg_find(struct wk_reasm *ra, const struct wk_addr *src,
				const struct cpn_msg *m, uint32_t h)
{
	for (struct wk_rmsg *x = ra->msgs[h % MSG_BUCKETS]; x; x = x->hnext)
		if (x->hash == h && msg_match(x, src, m))
			return x;
	return NULL;
}

static void lru_unlink(struct wk_reasm *ra, struct wk_rmsg *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		ra->lru_head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		ra->lru_tail = x->prev;
	x->prev = x->next = NULL;
}

static void lru_append(struct wk_reasm *ra, struct wk_rmsg *x)
{
	x->prev = ra->lru_tail;
	x->next = NULL;
	if (ra->lru_tail)
		ra->lru_tail->next = x;
	else
		ra->lru_head = x;
	ra->lru_tail = x;
}

/* Take x out of the tables; its request is returned (still charged to the
 * total budget as r->held), or freed with free_req.
 */
static struct wk_req *msg_remove(struct wk_reasm *ra, struct wk_rmsg *x, int free_req)
{
	struct wk_rmsg **pp;
	struct wk_req *r = x->r;

	for (pp = &ra->msgs[x->hash % MSG_BUCKETS]; *pp; pp = &(*pp)->hnext)
		if (*pp == x) {
			*pp = x->hnext;
			break;
		}
	lru_unlink(ra, x);
	x->cl->bytes -= x->charge;
	x->cl->msgs--;
	client_put(ra, x->cl);
	ra->n_msgs--;
	/* What stays charged while the request lives on: its own bytes. */
	r->held = x->charge;
	free(x->iv);
	free(x);
	if (free_req) {
		wk_req_free(ra->st, r);
		return NULL;
	}
	return r;
}

void wk_reasm_fini(struct wk_reasm *ra)
{
	while (ra->lru_head)
		msg_remove(ra, ra->lru_head, 1);
	free(ra->msgs);
	free(ra->clients);
	ra->msgs = NULL;
	ra->clients = NULL;
}

void wk_reasm_expire(struct wk_reasm *ra, uint64_t now)
{
	uint64_t t = (uint64_t)ra->c.timeout_ms * 1000000u;

	while (ra->lru_head && now - ra->lru_head->last_ns >= t) {
		msg_remove(ra, ra->lru_head, 1);
		WK_ADD(ra->st, frag_timeouts_in, 1);
	}
}

/* Add [lo, hi) to x's ranges. 0, or -1 when it overlaps what is held (a
 * duplicate) or there is no memory for another range.
 */
static int iv_add(struct wk_rmsg *x, uint32_t lo, uint32_t hi)
{
	uint32_t i = 0;

	while (i < x->n_iv && x->iv[i].hi < lo)
		i++;
	/* x->iv[i] is the first range that ends at or after lo. */
	if (i < x->n_iv && x->iv[i].lo < hi && lo < x->iv[i].hi)
		return -1;
	if (i < x->n_iv && x->iv[i].hi == lo) {
		/* Extends range i; perhaps joins range i + 1. */
		if (i + 1 < x->n_iv && x->iv[i + 1].lo < hi)
			return -1;
		x->iv[i].hi = hi;
		if (i + 1 < x->n_iv && x->iv[i + 1].lo == hi) {
			x->iv[i].hi = x->iv[i + 1].hi;
			memmove(&x->iv[i + 1], &x->iv[i + 2], (x->n_iv - i - 2) * sizeof(x->iv[0]));
			x->n_iv--;
		}
		return 0;
	}
	if (i < x->n_iv && x->iv[i].lo == hi) {
		x->iv[i].lo = lo;
		return 0;
	}
	if (x->n_iv == x->cap_iv) {
		uint32_t cap = x->cap_iv ? x->cap_iv * 2 : 4;
		struct wk_iv *n;

		/* Ranges are charged to nothing: bounded instead. */
		if (cap > 4096 || !(n = realloc(x->iv, cap * sizeof(*n))))
			return -1;
		x->iv = n;
		x->cap_iv = cap;
	}
	memmove(&x->iv[i + 1], &x->iv[i], (x->n_iv - i) * sizeof(x->iv[0]));
	x->iv[i] = (struct wk_iv){lo, hi};
	x->n_iv++;
	return 0;
}

/* The next held count at which an ack is due. */
static uint32_t ack_due(uint32_t held)
{
	return (held / CPN_FRAG_ACK_EVERY + 1) * CPN_FRAG_ACK_EVERY;
}

static enum wk_frag_verdict first_frag(struct wk_reasm *ra, const struct wk_addr *src,
				       const struct cpn_msg *in, const uint8_t *data, uint32_t dlen,
				       uint32_t total, uint64_t now, int draining,
				       int (*payload_ok)(void *, uint32_t), void *ctx,
				       struct wk_frag_res *res)
{
	uint32_t h = msg_hash(ra, src, in);
	uint64_t charge, held;
	struct wk_rclient *cl;
	struct wk_rmsg *x;
	struct wk_req *r;

	if (msg_find(ra, src, in, h)) {
		WK_ADD(ra->st, frag_dup, 1);
		return WK_FV_NONE;
	}
	WK_ADD(ra->st, requests, 1);
	if (draining) {
		res->status = CPN_BUSY_DRAINING;
		return WK_FV_BUSY;
	}
	if (total > ra->c.max_message) {
		WK_ADD(ra->st, frag_too_large, 1);
		res->status = CPN_ST_TOO_LARGE;
		return WK_FV_REPLY;
	}
	if ((in->flags & CPN_F_SEALED) && total < CPN_SEAL_OVERHEAD) {
		WK_ADD(ra->st, sealed_refused, 1);
		res->status = CPN_ST_BAD_REQUEST;
		return WK_FV_REPLY;
	}
	/* The handler judges the plaintext of a sealed message. */
	if (payload_ok &&
	    !payload_ok(ctx, in->flags & CPN_F_SEALED ? total - CPN_SEAL_OVERHEAD : total)) {
		res->status = CPN_ST_BAD_REQUEST;
		return WK_FV_REPLY;
	}
	charge = (uint64_t)total + sizeof(struct wk_req) + sizeof(struct wk_rmsg);
	cl = client_get(ra, src, 0);
	if ((cl ? cl->bytes : 0) + charge > ra->c.client_budget) {
		WK_ADD(ra->st, frag_over_client, 1);
		res->status = CPN_BUSY_OVERLOAD;
		return WK_FV_BUSY;
	}
	held = WK_LOAD(&ra->st->frag_held);
	if (held + charge > ra->c.budget) {
		WK_ADD(ra->st, frag_over_total, 1);
		res->status = CPN_BUSY_OVERLOAD;
		return WK_FV_BUSY;
	}
	cl = client_get(ra, src, 1);
	x = calloc(1, sizeof(*x));
	r = malloc(sizeof(*r) + total);
	if (!cl || !x || !r) {
		free(x);
		free(r);
		if (cl)
			client_put(ra, cl);
		WK_ADD(ra->st, frag_over_total, 1);
		res->status = CPN_BUSY_OVERLOAD;
		return WK_FV_BUSY;
	}
	memset(r, 0, sizeof(*r));
	r->t_rx = now;
	r->src = *src;
	r->m = *in;
	r->m.flags &= (uint16_t) ~(CPN_F_FRAG | CPN_F_CONT);
	r->len = total;
	memcpy(r->payload, data, dlen);
	x->r = r;
	x->cl = cl;
	x->hash = h;
	x->total = total;
	x->held = 0;
	x->charge = (uint32_t)charge;
	x->last_ns = now;
	if (dlen && iv_add(x, 0, dlen)) {
		free(x);
		free(r);
		client_put(ra, cl);
		res->status = CPN_BUSY_OVERLOAD;
		return WK_FV_BUSY;
	}
	x->held = dlen;
	x->next_ack = ack_due(dlen);
	cl->bytes += charge;
	cl->msgs++;
	WK_ADD(ra->st, frag_held, charge);
	x->hnext = ra->msgs[h % MSG_BUCKETS];
	ra->msgs[h % MSG_BUCKETS] = x;
	lru_append(ra, x);
	ra->n_msgs++;
	res->total = total;
	res->held = dlen;
	if (dlen == total) {
		res->req = msg_remove(ra, x, 0);
		WK_ADD(ra->st, frag_msgs_in, 1);
		return WK_FV_DONE;
	}
	return WK_FV_ACK;
}

enum wk_frag_verdict wk_reasm_frag(struct wk_reasm *ra, const struct wk_addr *src,
				   const struct cpn_msg *in, const uint8_t *pl, uint32_t len,
				   uint64_t now, int draining, int (*payload_ok)(void *, uint32_t),
				   void *ctx, struct wk_frag_res *res)
{
	struct cpn_frag f;
	uint32_t total, off, dlen;
	struct wk_rmsg *x;

	memset(res, 0, sizeof(*res));
	if (len < CPN_FRAG_LEN)
		goto malformed;
	memcpy(&f, pl, sizeof(f));
	total = ntohl(f.total);
	off = ntohl(f.offset);
	dlen = len - CPN_FRAG_LEN;
	if (!total || total > CPN_FRAG_MAX_TOTAL || off > total || dlen > total - off)
		goto malformed;
	if (in->flags & CPN_F_CONT) {
		if (!dlen) {
			/* The client's ack of a large reply. */
			res->total = total;
			res->held = off;
			return WK_FV_REPLY_ACK;
		}
		x = msg_find(ra, src, in, msg_hash(ra, src, in));
		if (!x) {
			WK_ADD(ra->st, frag_unknown, 1);
			return WK_FV_NONE;
		}
		if (x->total != total)
			goto malformed;
		if (iv_add(x, off, off + dlen)) {
			WK_ADD(ra->st, frag_dup, 1);
			return WK_FV_NONE;
		}
		memcpy(x->r->payload + off, pl + CPN_FRAG_LEN, dlen);
		x->held += dlen;
		x->last_ns = now;
		lru_unlink(ra, x);
		lru_append(ra, x);
		res->total = total;
		res->held = x->held;
		if (x->held == total) {
			res->req = msg_remove(ra, x, 0);
			WK_ADD(ra->st, frag_msgs_in, 1);
			return WK_FV_DONE;
		}
		if (x->held >= x->next_ack) {
			x->next_ack = ack_due(x->held);
			return WK_FV_ACK;
		}
		return WK_FV_NONE;
	}
	if (off != 0)
		goto malformed;
	return first_frag(ra, src, in, pl + CPN_FRAG_LEN, dlen, total, now, draining, payload_ok,
			  ctx, res);
malformed:
	WK_ADD(ra->st, frag_malformed, 1);
	return WK_FV_NONE;
}

/* ---- large replies ------------------------------------------------------------ */

struct wk_oreply {
	struct wk_oreply *next;
	struct wk_addr dst;
	struct cpn_msg m; /* the reply: identity, status, flags */
	uint64_t t_rx;	  /* the request's receipt */
	uint64_t last_ns; /* last progress: put, or an ack that moved acked */
	uint32_t total, sent, acked;
	uint32_t charge;
	uint32_t hop; /* the request's hop tag: CONT fragments carry it back */
	uint8_t data[];
};

int wk_fragtx_init(struct wk_fragtx *f, struct wk_tx *tx, struct wk_queue *q, struct wk_stats *st,
		   const struct wk_frag_cfg *c)
{
	memset(f, 0, sizeof(*f));
	f->tx = tx;
	f->q = q;
	f->st = st;
	f->timeout_ms = c->timeout_ms;
	f->budget = c->budget;
	if (wk_sync_init(&f->lock, &f->cond))
		return -1;
	f->sync_ok = 1;
	return 0;
}

int wk_fragtx_put(struct wk_fragtx *f, const struct wk_req *r, const struct cpn_msg *m,
		  const void *pl, uint32_t len)
{
	uint64_t charge = (uint64_t)len + sizeof(struct wk_oreply);
	struct wk_oreply *o;

	if (len > CPN_FRAG_MAX_TOTAL || WK_LOAD(&f->st->frag_held) + charge > f->budget) {
		WK_ADD(f->st, frag_over_total, 1);
		return -ENOMEM;
	}
	o = malloc(sizeof(*o) + len);
	if (!o) {
		WK_ADD(f->st, frag_over_total, 1);
		return -ENOMEM;
	}
	o->next = NULL;
	o->dst = r->src;
	o->m = *m;
	o->t_rx = r->t_rx;
	o->total = len;
	o->hop = r->m.worker_us;
	o->sent = o->acked = 0;
	o->charge = (uint32_t)charge;
	memcpy(o->data, pl, len);
	WK_ADD(f->st, frag_held, charge);
	pthread_mutex_lock(&f->lock);
	o->last_ns = cpn_now_ns();
	o->next = f->head;
	f->head = o;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int wk_fragtx_ack(struct wk_fragtx *f, const struct wk_addr *src, const struct cpn_msg *in,
		  uint32_t held)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&f->lock);
	for (struct wk_oreply *o = f->head; o; o = o->next) {
		if (o->m.request_id != in->request_id || o->m.tenant_id != in->tenant_id ||
		    o->m.service_id != in->service_id || !same_src(&o->dst, src))
			continue;
		if (held > o->acked && held <= o->sent) {
			o->acked = held;
			o->last_ns = cpn_now_ns();
			pthread_cond_signal(&f->cond);
		}
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc)
		WK_ADD(f->st, frag_unknown, 1);
	return rc;
}

/* Seal a fragment (or, with len 0 and no FRAG, the failure REPLY) of o. */
static void seal_frag(struct wk_fragtx *f, struct wk_oreply *o, struct wk_out *out, uint32_t off,
		      uint32_t len, uint64_t now)
{
	struct cpn_msg m = o->m;
	uint64_t us = (now - o->t_rx) / 1000;

	m.flags |= CPN_F_FRAG;
	if (off + len < o->total)
		m.flags |= CPN_F_CONT;
	if (m.flags & CPN_F_CONT)
		m.flags &= (uint16_t)~CPN_F_TOKEN;
	/* The last fragment is the reply the router learns from: µs inside
	 * the node. The others carry the request's hop tag, which the
	 * client's acks of them copy (a node with the hop key checks it).
	 */
	m.worker_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (m.flags & CPN_F_CONT)
		m.worker_us = o->hop;
	wk_load_fill(f->q, &m);
	wk_tx_seal(f->tx, &m, out, &o->dst);
	wk_out_frag(out, o->total, off);
	out->pl = o->data + off;
	out->plen = len;
}

/* One round over the replies, under f->lock: fill out[] with what the
 * windows allow, at most max; finished and failed replies to *done.
 */
static int fill_round(struct wk_fragtx *f, struct wk_out *out, int max, struct wk_oreply **done,
		      struct wk_oreply **failed, uint64_t now)
{
	uint64_t t = (uint64_t)f->timeout_ms * 1000000u;
	struct wk_oreply **pp = &f->head, *o;
	int n = 0;

	while ((o = *pp)) {
		if (o->sent < o->total && now - o->last_ns >= t) {
			*pp = o->next;
			o->next = *failed;
			*failed = o;
			continue;
		}
		while (n < max && o->sent < o->total) {
			uint32_t len = o->total - o->sent;

			if (len > WK_FRAG_DATA)
				len = WK_FRAG_DATA;
			if (o->sent - o->acked + len > CPN_FRAG_WINDOW)
				break;
			seal_frag(f, o, &out[n++], o->sent, len, now);
			o->sent += len;
		}
		if (o->sent == o->total) {
			/* Its last fragment is in out[]: sent in this round. */
			*pp = o->next;
			o->next = *done;
			*done = o;
			continue;
		}
		pp = &o->next;
	}
	return n;
}

static void oreply_free(struct wk_fragtx *f, struct wk_oreply *o)
{
	WK_ADD(f->st, frag_held, -(uint64_t)o->charge);
	free(o);
}

static void *fragtx_main(void *arg)
{
	struct wk_fragtx *f = arg;
	struct wk_out out[WK_TX_BATCH];

	pthread_mutex_lock(&f->lock);
	for (;;) {
		struct wk_oreply *done = NULL, *failed = NULL, *o;
		uint64_t now = cpn_now_ns(), wake;
		struct timespec ts;
		int n = fill_round(f, out, WK_TX_BATCH, &done, &failed, now);

		if (n || done || failed) {
			pthread_mutex_unlock(&f->lock);
			/* Fragments of replies still listed stay valid: only this
			 * thread frees them.
			 */
			wk_tx_send(f->tx, out, n);
			for (; done; done = o) {
				o = done->next;
				WK_ADD(f->st, replies[done->m.status], 1);
				WK_ADD(f->st, frag_msgs_out, 1);
				wk_lat_add(f->st, (uint32_t)((now - done->t_rx) / 1000));
				oreply_free(f, done);
			}
			for (; failed; failed = o) {
				struct wk_out fo;
				struct cpn_msg m = failed->m;

				o = failed->next;
				/* The client stopped acking: a plain REPLY with an
				 * error ends the request (and the router's flow).
				 */
				m.status = CPN_ST_KERNEL_ERROR;
				m.flags &= (uint16_t) ~(CPN_F_FRAG | CPN_F_CONT);
				m.worker_us = (uint32_t)((now - failed->t_rx) / 1000);
				wk_load_fill(f->q, &m);
				wk_tx_seal(f->tx, &m, &fo, &failed->dst);
				wk_tx_send(f->tx, &fo, 1);
				WK_ADD(f->st, replies[CPN_ST_KERNEL_ERROR], 1);
				WK_ADD(f->st, frag_timeouts_out, 1);
				oreply_free(f, failed);
			}
			pthread_mutex_lock(&f->lock);
			continue;
		}
		if (f->stop && !f->head)
			break;
		/* Nothing to send: wait for an ack, a new reply, or the
		 * oldest reply's timeout (at most 100 ms: stop is seen).
		 */
		wake = now + 100000000u;
		for (o = f->head; o; o = o->next) {
			uint64_t d = o->last_ns + (uint64_t)f->timeout_ms * 1000000u;

			if (d < wake)
				wake = d;
		}
		ts = cpn_ns_timespec(wake);
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int wk_fragtx_start(struct wk_fragtx *f, char *err, size_t errlen)
{
	return wk_thread_start(&f->th, &f->started, fragtx_main, f, "reply sender thread", err,
			       errlen);
}

void wk_fragtx_stop(struct wk_fragtx *f)
{
	wk_thread_stop(&f->th, &f->started, &f->stop, &f->lock, &f->cond);
}

void wk_fragtx_fini(struct wk_fragtx *f)
{
	struct wk_oreply *o, *n;

	for (o = f->head; o; o = n) {
		n = o->next;
		oreply_free(f, o);
	}
	f->head = NULL;
	if (f->sync_ok)
		wk_sync_fini(&f->lock, &f->cond);
	f->sync_ok = 0;
}
