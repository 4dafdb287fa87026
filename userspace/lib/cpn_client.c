// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn's client library (cpn/client.h): requests to a service, in flight by
 * the thousand from one thread.
 *
 * Request slots. A client has a power-of-two table of slots, twice its
 * max in flight. A request's id is its counter through a keyed permutation
 * of 64-bit numbers (a 4-round Feistel network on SipHash, under a random
 * key per client): ids are unique, as counters are, and nobody who sees
 * some can predict the next. A request lives in slot counter & mask, so an
 * answer finds its slot by inverting the permutation and one look-up. The
 * counter skips slots still busy (a request with a long deadline). A completed slot keeps its id
 * and how it ended until it is reused: a second answer is a duplicate, one after the deadline is
 * late.
 *
 * Freshness. A signed request carries FRESH and its send time (CLOCK_TAI,
 * ms) in `stamp`, under the tag (cpn_tag_request_fresh). Every attempt
 * gets its own stamp; the fragments and acks of one attempt share it, with
 * the router_ts and hop tag the node's ack echoed (the hop tag covers
 * the stamp).
 *
 * Timers. Every request in flight has a key in a min-heap (indexed by the
 * slot): its deadline, or an earlier action (a BUSY retry after its backoff,
 * an idempotent request sent again). poll() pops what is due.
 *
 * Sending. Slots that have datagrams to send (a new request, a retry,
 * fragments of a large request within the window, an ack of reply data) go
 * on a FIFO; flushing builds the datagrams into a batch of headers and
 * sends it with one sendmmsg. What a full socket buffer refused is rolled
 * back and tried again on the next call (poll then waits for POLLOUT too).
 *
 * Receiving. recvmmsg into a batch of buffers; a single-datagram reply is
 * handed to the caller in place (valid until the next call). Fragments of a
 * reply are reassembled in the slot's buffer, in any order, with the byte
 * ranges held kept merged (a duplicate or an overlap is counted, not
 * copied).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "cpn/client.h"
#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn_addr.h"
#include "cpn_seal.h"
#include "cpn_util.h"

#define RX_BATCH   64
#define TX_BATCH   64
#define MAX_ADDRS  16
#define RX_DGRAM   65536
#define RX_HDRS	   128 /* header, tag and fragment header: what is read when discarding */
#define HDR_MAX	   (CPN_HDR_LEN + CPN_TAG_LEN + CPN_FRAG_LEN)
#define KEEP_BUF   (64u << 10) /* a slot's buffers above this are freed when it completes */
#define MAX_IV	   4096	       /* disjoint byte ranges of one reply being reassembled */
#define SUSPECT_NS 1000000000ULL
#define NO_TIME	   UINT64_MAX
#define SOCK_BUF   (8 << 20)
#define MS_NS	   1000000ULL

enum slot_state {
	S_FREE = 0,
	S_DONE,	    /* completed by an answer or an error */
	S_EXPIRED,  /* completed by its deadline */
	S_QUEUED,   /* to be sent (first time or again) */
	S_WAIT,	    /* sent whole (or every fragment): waiting for the answer */
	S_BACKOFF,  /* BUSY: sent again at t_action */
	S_FRAG_ACK, /* the first fragment sent: waiting for the node's ack */
	S_FRAG_TX,  /* acknowledged: the rest within the window */
};

/* A large message of one slot: the request's sending and the reply's
 * reassembly. Allocated on a slot's first large message and kept.
 */
struct frag {
	uint32_t sent, acked; /* request bytes sent, acknowledged by the node */
	uint16_t node;	      /* the node that acknowledged the first fragment */
	uint32_t rts, hop;    /* its ack's router_ts and hop tag, for the rest */
	/* The reply. */
	uint8_t *buf;
	uint32_t cap, total, held, acked_at; /* acked_at: held when the last ack was sent */
	uint16_t rnode;
	uint32_t rrts, rhop; /* router_ts and hop tag of the reply's CONT fragments */
	uint8_t rstatus;
	bool rsealed; /* the reply's fragments say SEALED */
	bool ack_due, have_last, reply_started, counted;
	uint32_t (*iv)[2]; /* merged [start, end) ranges held, sorted */
	uint32_t niv, ivcap;
};

struct slot {
	uint64_t id, user;
	uint64_t t_submit, deadline, t_action, tkey;
	const uint8_t *data;
	uint8_t *own;
	uint32_t own_cap, len, session, attempt_ns;
	uint32_t stamp; /* this attempt's FRESH stamp */
	uint32_t hpos;	/* its place in the timer heap + 1; 0: not there */
	uint16_t wflags;
	uint8_t state, class_, rflags, tries, addr;
	bool queued, large, sealed;
	struct frag *fr;
};

enum tx_kind { K_WHOLE, K_FIRST, K_DATA, K_ACK };

struct tx_meta {
	uint32_t slot;
	uint8_t kind;
	uint32_t off;
};

struct cpn_client {
	int fd;
	bool connected, broken;
	struct sockaddr_storage addrs[MAX_ADDRS];
	socklen_t alen[MAX_ADDRS];
	uint64_t suspect_until[MAX_ADDRS];
	int naddrs, rr, family;
	uint16_t service;
	uint32_t tenant;
	bool have_key;
	__u64 key[2];
	bool have_pkey; /* the payload key: requests sealed, replies opened */
	uint8_t pkey[CPN_SEAL_KEY_LEN];

	/* Options. */
	uint64_t timeout_ms, backoff_us, backoff_max_us, attempt_ms, max_message, reasm_budget;
	uint32_t max_retries, retry_percent, retry_floor, session, max_inflight, frag_size,
	    dgram_max;
	bool busy_retry, sticky, discard;
	uint8_t class_;

	/* Slots, timers, the send FIFO. */
	struct slot *slots;
	uint32_t mask, inflight;
	uint64_t ctr, ctr0; /* ctr0: ctr when the table was made */
	__u64 idkey[2];	    /* the id permutation's key */
	uint32_t *heap, nheap;
	uint32_t *txq, txq_head, txq_n;
	uint32_t *release, nrelease, release_cap;
	uint64_t reasm_used;
	uint64_t rng[2];

	/* Retry budget, in thousandths of a retry. */
	uint64_t tokens, t_tokens;

	/* The send batch. */
	uint8_t hdrs[TX_BATCH][HDR_MAX] __attribute__((aligned(8)));
	struct iovec tiov[TX_BATCH][2];
	struct mmsghdr tmsgs[TX_BATCH];
	struct tx_meta tmeta[TX_BATCH];
	int ntx;
	bool tx_blocked;

	/* The receive batch. */
	uint8_t *rbuf;
	uint32_t rbuf_len;
	struct iovec riov[RX_BATCH];
	struct mmsghdr rmsgs[RX_BATCH];
	struct sockaddr_storage rfrom[RX_BATCH];

	struct cpn_completion last;
	struct cpn_client_stats st;
	void (*stray)(void *arg, uint64_t id, int kind);
	void *stray_arg;
};

const char *cpn_strerror(int err)
{
	switch (err) {
	case CPN_OK:
		return "success";
	case CPN_E_INVAL:
		return "invalid argument";
	case CPN_E_NOMEM:
		return "out of memory";
	case CPN_E_TIMEOUT:
		return "timed out: no answer before the deadline";
	case CPN_E_BUSY:
		return "busy: the service refused the request";
	case CPN_E_REMOTE:
		return "the node answered with an error status";
	case CPN_E_TOO_LARGE:
		return "message too large";
	case CPN_E_PROTO:
		return "protocol error: the node does not take large messages";
	case CPN_E_CLOSED:
		return "the client's socket failed";
	case CPN_E_FULL:
		return "too many requests in flight";
	case CPN_E_SYS:
		return "system call failed";
	case CPN_E_SEAL:
		return "a sealed reply did not open (payload key, or altered)";
	default:
		return "unknown error";
	}
}

/* ---- small things ---------------------------------------------------------- */

static uint64_t rng_next(struct cpn_client *cl)
{
	/* xorshift128+ */
	uint64_t s1 = cl->rng[0], s0 = cl->rng[1];

	cl->rng[0] = s0;
	s1 ^= s1 << 23;
	cl->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return cl->rng[1] + s0;
}

/* One Feistel round function: SipHash of the half and the round. */
static uint32_t id_round(const struct cpn_client *cl, uint32_t half, uint32_t round)
{
	__u64 w = (__u64)round << 32 | half;

	return (uint32_t)cpn_siphash24(cl->idkey, &w, 1);
}

/* The request id of counter c: a keyed permutation (unique, unpredictable). */
static uint64_t id_of(const struct cpn_client *cl, uint64_t c)
{
	uint32_t l = (uint32_t)(c >> 32), r = (uint32_t)c;

	for (uint32_t i = 0; i < 4; i++) {
		uint32_t t = l ^ id_round(cl, r, i);

		l = r;
		r = t;
	}
	return (uint64_t)l << 32 | r;
}

/* The counter of request id `id` (id_of inverted). */
static uint64_t ctr_of(const struct cpn_client *cl, uint64_t id)
{
	uint32_t l = (uint32_t)(id >> 32), r = (uint32_t)id;

	for (uint32_t i = 4; i-- > 0;) {
		uint32_t t = r ^ id_round(cl, l, i);

		r = l;
		l = t;
	}
	return (uint64_t)l << 32 | r;
}

static bool is_active(const struct slot *s)
{
	return s->state >= S_QUEUED;
}

static uint32_t hdr_len(const struct cpn_client *cl)
{
	return CPN_HDR_LEN + (cl->have_key ? CPN_TAG_LEN : 0);
}

/* ---- the timer heap ---------------------------------------------------------- */

static void heap_swap(struct cpn_client *cl, uint32_t a, uint32_t b)
{
	uint32_t x = cl->heap[a];

	cl->heap[a] = cl->heap[b];
	cl->heap[b] = x;
	cl->slots[cl->heap[a]].hpos = a + 1;
	cl->slots[cl->heap[b]].hpos = b + 1;
}

static uint64_t hkey(const struct cpn_client *cl, uint32_t i)
{
	return cl->slots[cl->heap[i]].tkey;
}

static void heap_up(struct cpn_client *cl, uint32_t i)
{
	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (hkey(cl, p) <= hkey(cl, i))
			break;
		heap_swap(cl, i, p);
		i = p;
	}
}

static void heap_down(struct cpn_client *cl, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < cl->nheap && hkey(cl, l) < hkey(cl, m))
			m = l;
		if (r < cl->nheap && hkey(cl, r) < hkey(cl, m))
			m = r;
		if (m == i)
			break;
		heap_swap(cl, i, m);
		i = m;
	}
}

static void heap_remove(struct cpn_client *cl, struct slot *s)
{
	uint32_t i;

	if (!s->hpos)
		return;
	i = s->hpos - 1;
	s->hpos = 0;
	if (i == --cl->nheap)
		return;
	cl->heap[i] = cl->heap[cl->nheap];
	cl->slots[cl->heap[i]].hpos = i + 1;
	heap_up(cl, i);
	heap_down(cl, cl->slots[cl->heap[i]].hpos - 1);
}

/* The slot's timer: its deadline, or its next action when earlier. */
static void timer_update(struct cpn_client *cl, struct slot *s)
{
	uint64_t k = s->deadline;

	if (s->t_action < k)
		k = s->t_action;
	s->tkey = k;
	if (!s->hpos) {
		uint32_t i = cl->nheap++;

		cl->heap[i] = (uint32_t)(s - cl->slots);
		s->hpos = i + 1;
		heap_up(cl, i);
	} else {
		heap_up(cl, s->hpos - 1);
		heap_down(cl, s->hpos - 1);
	}
}

/* ---- the send FIFO and the batch ----------------------------------------------- */

static void txq_push(struct cpn_client *cl, struct slot *s)
{
	if (s->queued)
		return;
	s->queued = true;
	cl->txq[(cl->txq_head + cl->txq_n++) & cl->mask] = (uint32_t)(s - cl->slots);
}

static void tx_rollback(struct cpn_client *cl, int from)
{
	for (int i = from; i < cl->ntx; i++) {
		struct slot *s = &cl->slots[cl->tmeta[i].slot];

		switch (cl->tmeta[i].kind) {
		case K_WHOLE:
			if (s->state == S_WAIT)
				s->state = S_QUEUED;
			break;
		case K_FIRST:
			if (s->state == S_FRAG_ACK) {
				s->state = S_QUEUED;
				s->fr->sent = 0;
			}
			break;
		case K_DATA:
			if (s->state == S_WAIT || s->state == S_FRAG_TX) {
				s->state = S_FRAG_TX;
				if (s->fr->sent > cl->tmeta[i].off)
					s->fr->sent = cl->tmeta[i].off;
			}
			break;
		case K_ACK:
			s->fr->ack_due = true;
			break;
		}
		txq_push(cl, s);
	}
}

/* Send the batch. False when the socket is full (what it refused is rolled
 * back) or broken.
 */
static bool tx_flush(struct cpn_client *cl)
{
	int off = 0, tries = 0;

	while (off < cl->ntx) {
		int r = sendmmsg(cl->fd, cl->tmsgs + off, (unsigned)(cl->ntx - off), MSG_DONTWAIT);

		if (r > 0) {
			cl->st.tx_datagrams += (uint64_t)r;
			off += r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNREFUSED && ++tries <= 8) {
			/* An ICMP error of an earlier datagram, reported now. */
			cl->st.send_refused++;
			continue;
		}
		/* The host refused this one datagram (a firewall rule, no route,
		 * too large for the interface): lost, as on the path; the
		 * request's deadline or the message's acks tell.
		 */
		if (errno == EPERM || errno == EACCES || errno == EHOSTUNREACH ||
		    errno == ENETUNREACH || errno == EMSGSIZE) {
			cl->st.send_dropped++;
			cl->st.tx_datagrams++;
			off++;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ||
		    errno == ECONNREFUSED) {
			cl->st.send_full++;
			cl->tx_blocked = true;
		} else {
			cl->broken = true;
		}
		tx_rollback(cl, off);
		cl->ntx = 0;
		return false;
	}
	cl->ntx = 0;
	return true;
}

/* The header of a datagram of slot s at p; returns its length. */
static uint32_t build_hdr(struct cpn_client *cl, const struct slot *s, uint8_t *p, uint16_t flags,
			  uint16_t node, bool frag, uint32_t total, uint32_t off)
{
	struct cpn_msg m;
	uint32_t len = hdr_len(cl);

	cpn_msg_init(&m, CPN_T_REQUEST);
	m.flags = s->wflags | flags;
	m.service_id = cl->service;
	m.tenant_id = cl->tenant;
	m.session_key = s->session;
	m.request_id = s->id;
	m.node_id = node;
	m.class = s->class_;
	if (m.flags & CPN_F_FRESH)
		m.stamp = s->stamp;
	if (node && s->fr) {
		/* A CONT fragment or an ack: the steering hop's router_ts and
		 * hop tag, as the node echoed them.
		 */
		bool req = s->large && s->state != S_FRAG_ACK;

		m.router_ts = req ? s->fr->rts : s->fr->rrts;
		m.worker_us = req ? s->fr->hop : s->fr->rhop;
	}
	cpn_hdr_encode(&m, (struct cpn_hdr *)p);
	if (m.flags & CPN_F_AUTH) {
		__u64 tag = cpn_tag_request_any(cl->key, (const struct cpn_hdr *)p);

		memcpy(p + CPN_HDR_LEN, &tag, CPN_TAG_LEN);
	}
	if (frag) {
		struct cpn_frag f = {.total = cpn_htonl(total), .offset = cpn_htonl(off)};

		memcpy(p + len, &f, CPN_FRAG_LEN);
		len += CPN_FRAG_LEN;
	}
	return len;
}

/* Add one datagram to the batch (flushing a full one first). False: blocked. */
static bool tx_add(struct cpn_client *cl, struct slot *s, enum tx_kind kind, uint16_t flags,
		   uint16_t node, bool frag, uint32_t total, uint32_t off, const void *data,
		   uint32_t len)
{
	int i;

	if (cl->ntx == TX_BATCH && !tx_flush(cl))
		return false;
	i = cl->ntx++;
	cl->tiov[i][0].iov_base = cl->hdrs[i];
	cl->tiov[i][0].iov_len = build_hdr(cl, s, cl->hdrs[i], flags, node, frag, total, off);
	cl->tiov[i][1].iov_base = (void *)data;
	cl->tiov[i][1].iov_len = len;
	memset(&cl->tmsgs[i].msg_hdr, 0, sizeof(cl->tmsgs[i].msg_hdr));
	cl->tmsgs[i].msg_hdr.msg_iov = cl->tiov[i];
	cl->tmsgs[i].msg_hdr.msg_iovlen = len ? 2 : 1;
	if (!cl->connected) {
		cl->tmsgs[i].msg_hdr.msg_name = &cl->addrs[s->addr];
		cl->tmsgs[i].msg_hdr.msg_namelen = cl->alen[s->addr];
	}
	cl->tmeta[i] =
	    (struct tx_meta){.slot = (uint32_t)(s - cl->slots), .kind = (uint8_t)kind, .off = off};
	return true;
}

static uint32_t frag_len(const struct cpn_client *cl, const struct slot *s, uint32_t off)
{
	uint32_t n = s->len - off;

	return n < cl->frag_size ? n : cl->frag_size;
}

/* Put the datagrams slot s owes into the batch. False: blocked. */
static bool tx_slot(struct cpn_client *cl, struct slot *s, uint64_t now)
{
	struct frag *fr = s->fr;

	if (fr && fr->ack_due) {
		fr->ack_due = false;
		fr->acked_at = fr->held;
		cl->st.tx_acks++;
		if (!tx_add(cl, s, K_ACK, CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED, fr->rnode, true,
			    fr->total, fr->held, NULL, 0))
			return false;
	}
	if (s->state == S_QUEUED) {
		if (s->wflags & CPN_F_FRESH) {
			/* Each attempt its own stamp, so its own tag. */
			uint32_t t = cpn_tai_ms();

			s->stamp = t == s->stamp ? t + 1 : t;
		}
		if (!s->large) {
			s->state = S_WAIT;
			if (!tx_add(cl, s, K_WHOLE, 0, 0, false, 0, 0, s->data, s->len))
				return false;
		} else {
			uint32_t n = frag_len(cl, s, 0);

			s->state = S_FRAG_ACK;
			fr->sent = n;
			fr->acked = 0;
			cl->st.tx_fragments++;
			if (!tx_add(cl, s, K_FIRST, CPN_F_FRAG, 0, true, s->len, 0, s->data, n))
				return false;
		}
		if (s->rflags & CPN_REQ_IDEMPOTENT && !s->large) {
			s->t_action = now + s->attempt_ns;
			timer_update(cl, s);
		}
	}
	if (s->state == S_FRAG_TX) {
		while (fr->sent < s->len) {
			uint32_t off = fr->sent, n = frag_len(cl, s, off);

			if (off + n - fr->acked > CPN_FRAG_WINDOW)
				return true; /* an ack reopens the window */
			fr->sent += n;
			if (fr->sent == s->len)
				s->state = S_WAIT;
			cl->st.tx_fragments++;
			if (!tx_add(cl, s, K_DATA, CPN_F_FRAG | CPN_F_CONT | CPN_F_TAGGED, fr->node,
				    true, s->len, off, s->data + off, n))
				return false;
		}
		s->state = S_WAIT;
	}
	return true;
}

/* Send what the FIFO holds. */
static void tx_run(struct cpn_client *cl, uint64_t now)
{
	cl->tx_blocked = false;
	while (cl->txq_n && !cl->broken) {
		uint32_t i = cl->txq[cl->txq_head & cl->mask];
		struct slot *s = &cl->slots[i];

		cl->txq_head++;
		cl->txq_n--;
		s->queued = false;
		if (!tx_slot(cl, s, now))
			return;
	}
	if (cl->ntx)
		tx_flush(cl);
}

/* ---- completing ---------------------------------------------------------------- */

/* A completed slot's buffers: freed at the next call (the caller may be
 * reading them now), when they are large.
 */
static void release_later(struct cpn_client *cl, struct slot *s)
{
	bool big = s->own_cap > KEEP_BUF || (s->fr && s->fr->cap > KEEP_BUF);

	if (s->fr && s->fr->counted) {
		cl->reasm_used -= s->fr->total;
		s->fr->counted = false;
	}
	if (!big)
		return;
	if (cl->nrelease == cl->release_cap) {
		uint32_t cap = cl->release_cap ? 2 * cl->release_cap : 64;
		uint32_t *r = realloc(cl->release, cap * sizeof(*r));

		if (!r)
			return; /* kept for the slot's next use */
		cl->release = r;
		cl->release_cap = cap;
	}
	cl->release[cl->nrelease++] = (uint32_t)(s - cl->slots);
}

static void release_run(struct cpn_client *cl)
{
	for (uint32_t i = 0; i < cl->nrelease; i++) {
		struct slot *s = &cl->slots[cl->release[i]];

		if (is_active(s))
			continue;
		if (s->own_cap > KEEP_BUF) {
			free(s->own);
			s->own = NULL;
			s->own_cap = 0;
		}
		if (s->fr && s->fr->cap > KEEP_BUF) {
			free(s->fr->buf);
			s->fr->buf = NULL;
			s->fr->cap = 0;
		}
	}
	cl->nrelease = 0;
}

struct outq {
	struct cpn_completion *out;
	int n, max;
	bool refs_rx; /* a completion points into the receive buffers */
};

static void complete(struct cpn_client *cl, struct slot *s, int status, uint8_t remote,
		     uint16_t node, const void *data, size_t len, uint64_t now, struct outq *q)
{
	struct cpn_completion *c = &q->out[q->n++];

	*c = (struct cpn_completion){.id = s->id,
				     .user = s->user,
				     .status = status,
				     .remote = remote,
				     .node_id = node,
				     .retries = s->tries,
				     .latency_ns = now > s->t_submit ? now - s->t_submit : 0,
				     .data = (status == 0 || status == CPN_E_REMOTE) ? data : NULL,
				     .len = (status == 0 || status == CPN_E_REMOTE) ? len : 0};
	if (!c->data)
		c->len = 0;
	s->state = status == CPN_E_TIMEOUT ? S_EXPIRED : S_DONE;
	heap_remove(cl, s);
	s->t_action = NO_TIME;
	cl->inflight--;
	cl->st.completed++;
	switch (status) {
	case 0:
		cl->st.replies++;
		break;
	case CPN_E_REMOTE:
		cl->st.remote_errors++;
		break;
	case CPN_E_BUSY:
		cl->st.busy++;
		break;
	case CPN_E_TIMEOUT:
		cl->st.timeouts++;
		break;
	default:
		cl->st.failed++;
	}
	release_later(cl, s);
}

/* ---- retries -------------------------------------------------------------------- */

static bool budget_take(struct cpn_client *cl, uint64_t now)
{
	uint64_t cap = 1000ULL * (cl->retry_floor + 10 * (uint64_t)cl->retry_percent + 1);

	if (now > cl->t_tokens) {
		uint64_t ms = (now - cl->t_tokens) / 1000000;

		cl->tokens += ms * cl->retry_floor; /* retry_floor per second */
		cl->t_tokens += ms * 1000000;
	}
	if (cl->tokens > cap)
		cl->tokens = cap;
	if (cl->tokens < 1000)
		return false;
	cl->tokens -= 1000;
	return true;
}

static bool may_retry(struct cpn_client *cl, struct slot *s, uint64_t when, uint64_t now)
{
	if (s->rflags & CPN_REQ_NO_RETRY || s->tries >= cl->max_retries || when >= s->deadline ||
	    !budget_take(cl, now)) {
		cl->st.retries_denied++;
		return false;
	}
	s->tries++;
	return true;
}

static int next_addr(struct cpn_client *cl, uint64_t now)
{
	for (int i = 0; i < cl->naddrs; i++) {
		int a = cl->rr++ % cl->naddrs;

		if (cl->rr >= cl->naddrs)
			cl->rr = 0;
		if (cl->suspect_until[a] <= now)
			return a;
	}
	return cl->rr++ % cl->naddrs;
}

static void busy(struct cpn_client *cl, struct slot *s, uint8_t reason, uint64_t now,
		 struct outq *q)
{
	if (cl->busy_retry) {
		uint64_t cap = cl->backoff_us << (s->tries < 20 ? s->tries : 20);
		uint64_t d;

		if (cap > cl->backoff_max_us)
			cap = cl->backoff_max_us;
		/* Full jitter: uniform in [cap / 2, cap]. */
		d = (cap / 2 + (cap ? rng_next(cl) % (cap / 2 + 1) : 0)) * 1000;
		if (may_retry(cl, s, now + d, now)) {
			cl->st.retries_busy++;
			s->state = S_BACKOFF;
			if (s->fr) {
				s->fr->sent = s->fr->acked = 0;
				s->fr->ack_due = false;
			}
			s->t_action = now + d;
			timer_update(cl, s);
			return;
		}
	}
	complete(cl, s, CPN_E_BUSY, reason, 0, NULL, 0, now, q);
}

/* ---- receiving -------------------------------------------------------------------- */

static void stray(struct cpn_client *cl, uint64_t id, int kind)
{
	if (kind == CPN_STRAY_LATE)
		cl->st.late++;
	else
		cl->st.duplicates++;
	if (cl->stray)
		cl->stray(cl->stray_arg, id, kind);
}

/* Record [off, off + len) held; 0 new, 1 duplicate, -1 overlap or too many pieces. */
static int iv_insert(struct frag *fr, uint32_t off, uint32_t len)
{
	uint32_t end = off + len, i = 0;

	while (i < fr->niv && fr->iv[i][1] < off)
		i++;
	/* fr->iv[i] is the first range that ends at or after off. */
	if (i < fr->niv && fr->iv[i][1] > off && fr->iv[i][0] < end) {
		if (fr->iv[i][0] <= off && end <= fr->iv[i][1])
			return 1;
		return -1;
	}
	if (i < fr->niv && fr->iv[i][1] == off) {
		/* Extends range i at its end, perhaps up to range i + 1. */
		if (i + 1 < fr->niv && fr->iv[i + 1][0] < end)
			return -1;
		fr->iv[i][1] = end;
		if (i + 1 < fr->niv && fr->iv[i + 1][0] == end) {
			fr->iv[i][1] = fr->iv[i + 1][1];
			memmove(fr->iv + i + 1, fr->iv + i + 2,
				(fr->niv - i - 2) * sizeof(fr->iv[0]));
			fr->niv--;
		}
		return 0;
	}
	if (i < fr->niv && fr->iv[i][0] == end) {
		fr->iv[i][0] = off;
		return 0;
	}
	if (fr->niv == fr->ivcap) {
		uint32_t cap = fr->ivcap ? 2 * fr->ivcap : 8;
		uint32_t(*n)[2];

		if (cap > MAX_IV)
			return -1;
		n = realloc(fr->iv, cap * sizeof(*n));
		if (!n)
			return -1;
		fr->iv = n;
		fr->ivcap = cap;
	}
	memmove(fr->iv + i + 1, fr->iv + i, (fr->niv - i) * sizeof(fr->iv[0]));
	fr->iv[i][0] = off;
	fr->iv[i][1] = end;
	fr->niv++;
	return 0;
}

static struct frag *frag_get(struct slot *s)
{
	if (!s->fr)
		s->fr = calloc(1, sizeof(*s->fr));
	return s->fr;
}

/* The payload of a reply to slot s, opened in place when the request was
 * sealed: 0 with *data and *len the plaintext, or CPN_E_SEAL (counted). A
 * reply with an error status and no payload needs no opening.
 */
static int unseal(struct cpn_client *cl, const struct slot *s, const struct cpn_hdr *h, bool sealed,
		  uint8_t status, uint8_t *p, uint32_t len, const void **data, size_t *dlen)
{
	uint8_t ad[CPN_SEAL_AD_LEN];

	*data = p;
	*dlen = len;
	if (cl->discard || (!s->sealed && !sealed) || (!sealed && status && !len))
		return 0;
	cpn_seal_ad(h, ad);
	if (!s->sealed || !sealed || !cl->have_pkey || cpn_open_inplace(cl->pkey, ad, p, len)) {
		cl->st.unseal_failed++;
		return CPN_E_SEAL;
	}
	*data = p + CPN_SEAL_NONCE_LEN;
	*dlen = len - CPN_SEAL_OVERHEAD;
	return 0;
}

/* A REPLY fragment (data) for slot s. */
static void rx_reply_frag(struct cpn_client *cl, struct slot *s, const struct cpn_hdr *h,
			  uint32_t total, uint32_t off, const uint8_t *data, uint32_t len,
			  uint64_t now, struct outq *q)
{
	struct frag *fr = frag_get(s);
	uint16_t node = cpn_ntohs(h->node_id);
	int r;

	if (!fr) {
		complete(cl, s, CPN_E_NOMEM, 0, node, NULL, 0, now, q);
		return;
	}
	if (!fr->reply_started) {
		if (total > cl->max_message) {
			complete(cl, s, CPN_E_TOO_LARGE, 0, node, NULL, 0, now, q);
			return;
		}
		if (cl->reasm_used + total > cl->reasm_budget) {
			complete(cl, s, CPN_E_NOMEM, 0, node, NULL, 0, now, q);
			return;
		}
		if (!cl->discard && fr->cap < total) {
			uint8_t *b = realloc(fr->buf, total);

			if (!b) {
				complete(cl, s, CPN_E_NOMEM, 0, node, NULL, 0, now, q);
				return;
			}
			fr->buf = b;
			fr->cap = total;
		}
		fr->reply_started = true;
		fr->rsealed = false;
		fr->counted = true;
		cl->reasm_used += total;
		fr->total = total;
		fr->held = fr->acked_at = 0;
		fr->niv = 0;
		fr->have_last = false;
		fr->rnode = node;
		/* Every byte of the request reached the node. */
		if (s->state == S_FRAG_TX || s->state == S_FRAG_ACK)
			s->state = S_WAIT;
	} else if (total != fr->total) {
		cl->st.frag_bad++;
		return;
	}
	r = len ? iv_insert(fr, off, len) : 0;
	if (r) {
		if (r > 0)
			cl->st.frag_dup++;
		else
			cl->st.frag_bad++;
		return;
	}
	cl->st.rx_fragments++;
	if (cpn_ntohs(h->flags) & CPN_F_CONT) {
		/* What the client's acks carry back: the node echoes the hop's
		 * router_ts, and its hop tag in worker_us, in CONT fragments.
		 */
		fr->rrts = cpn_ntohl(h->router_ts);
		fr->rhop = cpn_ntohl(h->worker_us);
	}
	if (len && !cl->discard)
		memcpy(fr->buf + off, data, len);
	if (cpn_ntohs(h->flags) & CPN_F_SEALED)
		fr->rsealed = true;
	fr->held += len;
	if (!(cpn_ntohs(h->flags) & CPN_F_CONT) || !fr->have_last) {
		fr->rstatus = h->status;
		fr->rnode = node;
		fr->have_last = !(cpn_ntohs(h->flags) & CPN_F_CONT);
	}
	if (fr->held == fr->total ||
	    fr->held / CPN_FRAG_ACK_EVERY != fr->acked_at / CPN_FRAG_ACK_EVERY) {
		fr->ack_due = true;
		txq_push(cl, s);
	}
	if (fr->held == fr->total) {
		uint8_t st = fr->rstatus;
		const void *d;
		size_t dl;

		if (unseal(cl, s, h, fr->rsealed, st, fr->buf, fr->total, &d, &dl)) {
			complete(cl, s, CPN_E_SEAL, st, fr->rnode, NULL, 0, now, q);
			return;
		}
		complete(cl, s, st ? CPN_E_REMOTE : 0, st, fr->rnode, cl->discard ? NULL : d, dl,
			 now, q);
	}
}

/* The node's ack of request bytes. */
static void rx_ack(struct cpn_client *cl, struct slot *s, const struct cpn_hdr *h, uint32_t total,
		   uint32_t off)
{
	struct frag *fr = s->fr;

	if (!s->large || !fr || total != s->len || off > s->len ||
	    (s->state != S_FRAG_ACK && s->state != S_FRAG_TX && s->state != S_WAIT)) {
		cl->st.frag_bad++;
		return;
	}
	cl->st.rx_acks++;
	if (s->state == S_FRAG_ACK) {
		/* The node, and the hop's router_ts and hop tag it echoed: the
		 * rest of the message carries them.
		 */
		fr->node = cpn_ntohs(h->node_id);
		fr->rts = cpn_ntohl(h->router_ts);
		fr->hop = cpn_ntohl(h->worker_us);
		s->state = S_FRAG_TX;
	}
	if (off > fr->acked)
		fr->acked = off;
	if (s->state == S_FRAG_TX)
		txq_push(cl, s);
}

static bool from_ours(const struct cpn_client *cl, const struct sockaddr_storage *ss)
{
	for (int i = 0; i < cl->naddrs; i++) {
		if (ss->ss_family != cl->addrs[i].ss_family)
			continue;
		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)ss,
						 *b = (const void *)&cl->addrs[i];

			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				return true;
		} else {
			const struct sockaddr_in6 *a = (const void *)ss,
						  *b = (const void *)&cl->addrs[i];

			if (a->sin6_port == b->sin6_port &&
			    !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)))
				return true;
		}
	}
	return false;
}

static void rx_one(struct cpn_client *cl, const uint8_t *buf, uint32_t len, bool trunc,
		   const struct sockaddr_storage *from, uint64_t now, struct outq *q)
{
	const struct cpn_hdr *h = (const struct cpn_hdr *)buf;
	uint32_t hl, plen;
	uint16_t flags;
	uint64_t id, c;
	struct slot *s;

	cl->st.rx_datagrams++;
	if (cpn_hdr_check(h, len) != CPN_HDR_OK) {
		cl->st.malformed++;
		return;
	}
	if (h->type != CPN_T_REPLY && h->type != CPN_T_BUSY) {
		cl->st.bad_type++;
		return;
	}
	if ((!cl->connected && !from_ours(cl, from)) || cpn_ntohs(h->service_id) != cl->service ||
	    cpn_ntohl(h->tenant_id) != cl->tenant) {
		cl->st.foreign++;
		return;
	}
	id = cpn_ntohll(h->request_id);
	c = ctr_of(cl, id);
	s = &cl->slots[c & cl->mask];
	if (s->id != id || s->state == S_FREE) {
		if (c < cl->ctr)
			stray(cl, id, CPN_STRAY_LATE); /* its slot was reused since */
		else
			cl->st.unknown++;
		return;
	}
	if (!is_active(s)) {
		stray(cl, id, s->state == S_EXPIRED ? CPN_STRAY_LATE : CPN_STRAY_DUPLICATE);
		return;
	}
	if (now >= s->deadline) {
		/* Read after its deadline, before the timer fired: a timeout all the same. */
		complete(cl, s, CPN_E_TIMEOUT, 0, 0, NULL, 0, now, q);
		stray(cl, id, CPN_STRAY_LATE);
		return;
	}
	hl = cpn_hdr_total_len(h);
	plen = len - hl;
	flags = cpn_ntohs(h->flags);
	if (h->type == CPN_T_BUSY) {
		busy(cl, s, h->status, now, q);
		return;
	}
	if (flags & CPN_F_FRAG) {
		struct cpn_frag f;
		uint32_t total, off, dlen;

		if (plen < CPN_FRAG_LEN || (trunc && !cl->discard)) {
			cl->st.frag_bad++;
			return;
		}
		memcpy(&f, buf + hl, sizeof(f));
		total = cpn_ntohl(f.total);
		off = cpn_ntohl(f.offset);
		dlen = plen - CPN_FRAG_LEN;
		if (total == 0 || total > CPN_FRAG_MAX_TOTAL) {
			cl->st.frag_bad++;
			return;
		}
		if (!dlen && (flags & CPN_F_CONT)) {
			rx_ack(cl, s, h, total, off);
			return;
		}
		if (off > total || dlen > total - off) {
			cl->st.frag_bad++;
			return;
		}
		rx_reply_frag(cl, s, h, total, off, buf + hl + CPN_FRAG_LEN, dlen, now, q);
		return;
	}
	if (s->state == S_FRAG_ACK) {
		/* The first fragment answered whole: the node takes no fragments. */
		int st = h->status == CPN_ST_TOO_LARGE ? CPN_E_TOO_LARGE
			 : h->status		       ? CPN_E_REMOTE
						       : CPN_E_PROTO;

		complete(cl, s, st, h->status, cpn_ntohs(h->node_id), NULL, 0, now, q);
		return;
	}
	if (trunc && !cl->discard) {
		cl->st.malformed++;
		return;
	}
	if (s->fr && s->fr->reply_started) {
		/* A whole reply while fragments of one come: not this protocol. */
		cl->st.frag_bad++;
		return;
	}
	{
		const void *d;
		size_t dl;

		/* The receive buffer is the client's: a sealed reply opens in it. */
		if (unseal(cl, s, h, flags & CPN_F_SEALED, h->status, (uint8_t *)buf + hl, plen, &d,
			   &dl)) {
			complete(cl, s, CPN_E_SEAL, h->status, cpn_ntohs(h->node_id), NULL, 0, now,
				 q);
			return;
		}
		complete(cl, s, h->status ? CPN_E_REMOTE : 0, h->status, cpn_ntohs(h->node_id),
			 cl->discard ? NULL : d, cl->discard ? 0 : dl, now, q);
	}
	if (!cl->discard)
		q->refs_rx = true;
}

/* Read what waits, in batches, while completions fit. */
static void rx_run(struct cpn_client *cl, struct outq *q)
{
	while (q->n < q->max && !q->refs_rx && !cl->broken) {
		unsigned want = (unsigned)(q->max - q->n);
		int n;

		if (want > RX_BATCH)
			want = RX_BATCH;
		for (unsigned i = 0; i < want; i++)
			cl->rmsgs[i].msg_hdr.msg_namelen = sizeof(cl->rfrom[i]);
		/* MSG_TRUNC: msg_len is the datagram's length, also when only
		 * its headers were read (CPN_OPT_DISCARD_REPLY).
		 */
		n = recvmmsg(cl->fd, cl->rmsgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* An ICMP error of an earlier datagram (port or host
			 * unreachable), reported now: that datagram was lost.
			 */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH || errno == EHOSTDOWN) {
				cl->st.send_refused++;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				cl->broken = true;
			return;
		}
		uint64_t now = cpn_now_ns();

		for (int i = 0; i < n; i++)
			rx_one(cl, cl->riov[i].iov_base, cl->rmsgs[i].msg_len,
			       cl->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC, &cl->rfrom[i], now, q);
		/* Acks and window-opened fragments go out before the next batch. */
		if (cl->txq_n)
			tx_run(cl, now);
		if ((unsigned)n < want)
			return;
	}
}

/* ---- timers ---------------------------------------------------------------------- */

static void timers_run(struct cpn_client *cl, uint64_t now, struct outq *q)
{
	while (cl->nheap && q->n < q->max) {
		struct slot *s = &cl->slots[cl->heap[0]];

		if (s->tkey > now)
			return;
		if (s->deadline <= now) {
			if (cl->naddrs > 1)
				cl->suspect_until[s->addr] = now + SUSPECT_NS;
			complete(cl, s, CPN_E_TIMEOUT, 0, 0, NULL, 0, now, q);
			continue;
		}
		s->t_action = NO_TIME;
		if (s->state == S_BACKOFF) {
			s->state = S_QUEUED;
			txq_push(cl, s);
		} else if (s->state == S_WAIT && !s->large && (s->rflags & CPN_REQ_IDEMPOTENT)) {
			/* Unanswered: lost, or its answer was. Again, to the next address. */
			if (may_retry(cl, s, now, now)) {
				cl->st.retries_lost++;
				if (cl->naddrs > 1) {
					cl->suspect_until[s->addr] = now + SUSPECT_NS;
					s->addr = (uint8_t)next_addr(cl, now);
				}
				s->state = S_QUEUED;
				txq_push(cl, s);
			}
		}
		timer_update(cl, s);
	}
}

/* ---- opening and options ---------------------------------------------------------- */

/* The receive buffers: whole datagrams, or (discarding reply payloads) the
 * headers only, packed together.
 */
static void rx_layout(struct cpn_client *cl)
{
	cl->rbuf_len = cl->discard ? RX_HDRS : RX_DGRAM;
	for (int i = 0; i < RX_BATCH; i++) {
		cl->riov[i].iov_base = cl->rbuf + (size_t)i * cl->rbuf_len;
		cl->riov[i].iov_len = cl->rbuf_len;
		cl->rmsgs[i].msg_hdr.msg_iov = &cl->riov[i];
		cl->rmsgs[i].msg_hdr.msg_iovlen = 1;
		cl->rmsgs[i].msg_hdr.msg_name = &cl->rfrom[i];
	}
}

/* Free the buffers of the slots ever used (those the counter passed:
 * the others were never touched, and stay untouched).
 */
static void slots_free(struct cpn_client *cl)
{
	uint64_t used = cl->ctr - cl->ctr0;

	if (!cl->slots)
		return;
	if (used > (uint64_t)cl->mask + 1)
		used = (uint64_t)cl->mask + 1;
	for (uint64_t i = 0; i < used; i++) {
		struct slot *s = &cl->slots[(cl->ctr0 + i) & cl->mask];

		if (s->fr) {
			free(s->fr->buf);
			free(s->fr->iv);
		}
		free(s->fr);
		free(s->own);
	}
}

static int set_sizes(struct cpn_client *cl, uint32_t max_inflight)
{
	uint32_t size = 16;
	struct slot *slots;
	uint32_t *heap, *txq;

	while (size < 2 * max_inflight)
		size <<= 1;
	slots = calloc(size, sizeof(*slots));
	heap = calloc(size, sizeof(*heap));
	txq = calloc(size, sizeof(*txq));
	if (!slots || !heap || !txq) {
		free(slots);
		free(heap);
		free(txq);
		return CPN_E_NOMEM;
	}
	slots_free(cl);
	free(cl->slots);
	free(cl->heap);
	free(cl->txq);
	cl->slots = slots;
	cl->heap = heap;
	cl->txq = txq;
	cl->mask = size - 1;
	cl->nheap = cl->txq_n = cl->txq_head = 0;
	cl->nrelease = 0;
	cl->max_inflight = max_inflight;
	/* Ids of the old table are stale now: move the counter past them. */
	cl->ctr += size;
	cl->ctr0 = cl->ctr;
	return 0;
}

static int parse_addrs(struct cpn_client *cl, const char *to)
{
	const char *p = to;

	if (!to || !*to)
		return CPN_E_INVAL;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char buf[128];

		if (n == 0 || n >= sizeof(buf) || cl->naddrs == MAX_ADDRS)
			return CPN_E_INVAL;
		memcpy(buf, p, n);
		buf[n] = 0;
		if (cpn_sockaddr_parse(buf, 1, &cl->addrs[cl->naddrs], &cl->alen[cl->naddrs]))
			return CPN_E_INVAL;
		if (cl->naddrs && cl->addrs[cl->naddrs].ss_family != cl->addrs[0].ss_family)
			return CPN_E_INVAL; /* one socket: one family */
		cl->naddrs++;
		p += n;
		if (*p == ',')
			p++;
		if (e && !*p)
			return CPN_E_INVAL;
	}
	cl->family = cl->addrs[0].ss_family;
	return 0;
}

struct cpn_client *cpn_client_open(const char *to, uint16_t service, uint32_t tenant, int *err)
{
	struct cpn_client *cl = calloc(1, sizeof(*cl));
	int rc = CPN_E_NOMEM, buf = SOCK_BUF;
	uint64_t seed;

	if (!cl)
		goto fail;
	cl->fd = -1;
	rc = parse_addrs(cl, to);
	if (rc)
		goto fail;
	cl->service = service;
	cl->tenant = tenant;
	cl->timeout_ms = 1000;
	cl->max_retries = 2;
	cl->retry_percent = 10;
	cl->retry_floor = 10;
	cl->backoff_us = 1000;
	cl->backoff_max_us = 100000;
	cl->max_message = 4u << 20;
	cl->reasm_budget = 64u << 20;
	cl->frag_size = cl->family == AF_INET6 ? CPN_FRAG_DATA_DEFAULT - 20 : CPN_FRAG_DATA_DEFAULT;
	cl->dgram_max = cl->family == AF_INET6 ? 1452 : 1472;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = cpn_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)cl;
	cl->rng[0] = cpn_splitmix64(&seed) | 1;
	cl->rng[1] = cpn_splitmix64(&seed);
	if (getrandom(cl->idkey, sizeof(cl->idkey), GRND_NONBLOCK) != sizeof(cl->idkey)) {
		cl->idkey[0] = cpn_splitmix64(&seed);
		cl->idkey[1] = cpn_splitmix64(&seed);
	}
	cl->tokens = 1000ULL * cl->retry_floor;
	cl->t_tokens = cpn_now_ns();
	rc = set_sizes(cl, 4096);
	if (rc)
		goto fail;
	cl->rbuf_len = RX_DGRAM;
	rc = CPN_E_NOMEM;
	cl->rbuf = malloc((size_t)RX_BATCH * RX_DGRAM);
	if (!cl->rbuf)
		goto fail;
	rx_layout(cl);
	rc = CPN_E_SYS;
	cl->fd = socket(cl->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cl->fd < 0)
		goto fail;
	if (setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (cl->naddrs == 1) {
		/* Connected: a route looked up once, and only the VIP's answers. */
		if (connect(cl->fd, (const struct sockaddr *)&cl->addrs[0], cl->alen[0]))
			goto fail;
		cl->connected = true;
	} else {
		struct sockaddr_storage any = {.ss_family = (sa_family_t)cl->family};

		if (bind(cl->fd, (const struct sockaddr *)&any,
			 cl->family == AF_INET6 ? sizeof(struct sockaddr_in6)
						: sizeof(struct sockaddr_in)))
			goto fail;
	}
	if (err)
		*err = 0;
	return cl;
fail:
	if (err)
		*err = rc;
	cpn_client_close(cl);
	return NULL;
}

void cpn_client_close(struct cpn_client *cl)
{
	if (!cl)
		return;
	if (cl->fd >= 0)
		close(cl->fd);
	slots_free(cl);
	free(cl->slots);
	free(cl->heap);
	free(cl->txq);
	free(cl->release);
	free(cl->rbuf);
	free(cl);
}

int cpn_client_set_key(struct cpn_client *cl, const char *hex)
{
	__u64 k[2];

	if (!cl)
		return CPN_E_INVAL;
	if (!hex) {
		cl->have_key = false;
		return 0;
	}
	if (cpn_key_parse(hex, k))
		return CPN_E_INVAL;
	memcpy(cl->key, k, sizeof(k));
	cl->have_key = true;
	return 0;
}

int cpn_client_set_key_bytes(struct cpn_client *cl, const uint8_t key[16])
{
	if (!cl)
		return CPN_E_INVAL;
	if (!key) {
		cl->have_key = false;
		return 0;
	}
	/* As cpn_key_parse: the first 8 bytes little-endian are k0, the next k1. */
	memcpy(cl->key, key, 16);
	cl->key[0] = cpn_le64(cl->key[0]);
	cl->key[1] = cpn_le64(cl->key[1]);
	cl->have_key = true;
	return 0;
}

int cpn_client_set_payload_key_bytes(struct cpn_client *cl, const uint8_t key[32])
{
	if (!cl)
		return CPN_E_INVAL;
	if (!key) {
		cl->have_pkey = false;
		memset(cl->pkey, 0, sizeof(cl->pkey));
		return 0;
	}
	if (cpn_seal_init())
		return CPN_E_SYS;
	memcpy(cl->pkey, key, sizeof(cl->pkey));
	cl->have_pkey = true;
	return 0;
}

int cpn_client_set_payload_key(struct cpn_client *cl, const char *hex)
{
	uint8_t k[CPN_SEAL_KEY_LEN];
	int rc;

	if (!cl)
		return CPN_E_INVAL;
	if (!hex)
		return cpn_client_set_payload_key_bytes(cl, NULL);
	if (cpn_seal_key_parse(hex, k))
		return CPN_E_INVAL;
	rc = cpn_client_set_payload_key_bytes(cl, k);
	memset(k, 0, sizeof(k));
	return rc;
}

int cpn_client_setopt(struct cpn_client *cl, enum cpn_client_opt opt, uint64_t v)
{
	uint32_t hl;

	if (!cl)
		return CPN_E_INVAL;
	hl = CPN_HDR_LEN + CPN_TAG_LEN;
	switch (opt) {
	case CPN_OPT_TIMEOUT_MS:
		if (v < 1 || v > 86400000)
			return CPN_E_INVAL;
		cl->timeout_ms = v;
		return 0;
	case CPN_OPT_BUSY_RETRY:
	case CPN_OPT_STICKY:
	case CPN_OPT_DISCARD_REPLY:
		if (v > 1)
			return CPN_E_INVAL;
		if (opt == CPN_OPT_BUSY_RETRY)
			cl->busy_retry = v;
		else if (opt == CPN_OPT_STICKY)
			cl->sticky = v;
		else {
			cl->discard = v;
			rx_layout(cl);
		}
		return 0;
	case CPN_OPT_MAX_RETRIES:
		if (v > 100)
			return CPN_E_INVAL;
		cl->max_retries = (uint32_t)v;
		return 0;
	case CPN_OPT_RETRY_PERCENT:
		if (v > 100)
			return CPN_E_INVAL;
		cl->retry_percent = (uint32_t)v;
		return 0;
	case CPN_OPT_RETRY_FLOOR:
		if (v > 1000000)
			return CPN_E_INVAL;
		cl->retry_floor = (uint32_t)v;
		return 0;
	case CPN_OPT_BACKOFF_US:
	case CPN_OPT_BACKOFF_MAX_US:
		if (v < 1 || v > 60000000)
			return CPN_E_INVAL;
		if (opt == CPN_OPT_BACKOFF_US)
			cl->backoff_us = v;
		else
			cl->backoff_max_us = v;
		return 0;
	case CPN_OPT_ATTEMPT_MS:
		if (v > 86400000)
			return CPN_E_INVAL;
		cl->attempt_ms = v;
		return 0;
	case CPN_OPT_SESSION:
		if (v > UINT32_MAX)
			return CPN_E_INVAL;
		cl->session = (uint32_t)v;
		return 0;
	case CPN_OPT_CLASS:
		if (v > 255)
			return CPN_E_INVAL;
		cl->class_ = (uint8_t)v;
		return 0;
	case CPN_OPT_MAX_INFLIGHT:
		if (v < 1 || v > (1u << 24) || cl->inflight || cl->txq_n)
			return CPN_E_INVAL;
		return set_sizes(cl, (uint32_t)v);
	case CPN_OPT_MAX_MESSAGE:
		if (v < 1 || v > CPN_FRAG_MAX_TOTAL)
			return CPN_E_INVAL;
		cl->max_message = v;
		return 0;
	case CPN_OPT_FRAG_SIZE:
		if (v < 1 || v > 65507 - hl - CPN_FRAG_LEN)
			return CPN_E_INVAL;
		cl->frag_size = (uint32_t)v;
		return 0;
	case CPN_OPT_DGRAM_MAX:
		if (v < hl || v > 65507)
			return CPN_E_INVAL;
		cl->dgram_max = (uint32_t)v;
		return 0;
	case CPN_OPT_REASM_BUDGET:
		if (v < 1)
			return CPN_E_INVAL;
		cl->reasm_budget = v;
		return 0;
	}
	return CPN_E_INVAL;
}

int cpn_client_getopt(const struct cpn_client *cl, enum cpn_client_opt opt, uint64_t *v)
{
	if (!cl || !v)
		return CPN_E_INVAL;
	switch (opt) {
	case CPN_OPT_TIMEOUT_MS:
		*v = cl->timeout_ms;
		return 0;
	case CPN_OPT_BUSY_RETRY:
		*v = cl->busy_retry;
		return 0;
	case CPN_OPT_MAX_RETRIES:
		*v = cl->max_retries;
		return 0;
	case CPN_OPT_RETRY_PERCENT:
		*v = cl->retry_percent;
		return 0;
	case CPN_OPT_RETRY_FLOOR:
		*v = cl->retry_floor;
		return 0;
	case CPN_OPT_BACKOFF_US:
		*v = cl->backoff_us;
		return 0;
	case CPN_OPT_BACKOFF_MAX_US:
		*v = cl->backoff_max_us;
		return 0;
	case CPN_OPT_ATTEMPT_MS:
		*v = cl->attempt_ms;
		return 0;
	case CPN_OPT_SESSION:
		*v = cl->session;
		return 0;
	case CPN_OPT_STICKY:
		*v = cl->sticky;
		return 0;
	case CPN_OPT_CLASS:
		*v = cl->class_;
		return 0;
	case CPN_OPT_MAX_INFLIGHT:
		*v = cl->max_inflight;
		return 0;
	case CPN_OPT_MAX_MESSAGE:
		*v = cl->max_message;
		return 0;
	case CPN_OPT_FRAG_SIZE:
		*v = cl->frag_size;
		return 0;
	case CPN_OPT_DGRAM_MAX:
		*v = cl->dgram_max;
		return 0;
	case CPN_OPT_DISCARD_REPLY:
		*v = cl->discard;
		return 0;
	case CPN_OPT_REASM_BUDGET:
		*v = cl->reasm_budget;
		return 0;
	}
	return CPN_E_INVAL;
}

int cpn_client_fd(const struct cpn_client *cl)
{
	return cl ? cl->fd : -1;
}

unsigned cpn_client_inflight(const struct cpn_client *cl)
{
	return cl ? cl->inflight : 0;
}

void cpn_client_on_stray(struct cpn_client *cl, void (*fn)(void *arg, uint64_t id, int kind),
			 void *arg)
{
	if (!cl)
		return;
	cl->stray = fn;
	cl->stray_arg = arg;
}

int cpn_client_stats(const struct cpn_client *cl, struct cpn_client_stats *st, size_t size)
{
	if (!cl || !st)
		return CPN_E_INVAL;
	if (size > sizeof(cl->st)) {
		memset((char *)st + sizeof(cl->st), 0, size - sizeof(cl->st));
		size = sizeof(cl->st);
	}
	memcpy(st, &cl->st, size);
	return 0;
}

/* ---- submitting -------------------------------------------------------------------- */

/* Check a request and take a slot for it. */
static int take(struct cpn_client *cl, const struct cpn_req *r, uint64_t now, uint64_t *idp)
{
	uint32_t session = r->session_key ? r->session_key : cl->session;
	bool sticky = (r->flags & CPN_REQ_STICKY) || (cl->sticky && session);
	bool seal = cl->have_pkey;
	size_t wire = r->len + (seal ? CPN_SEAL_OVERHEAD : 0);
	bool large = hdr_len(cl) + wire > cl->dgram_max;
	uint16_t wflags;
	struct slot *s;
	uint64_t id;

	if ((r->len && !r->data) || (sticky && !session) || r->flags & ~31u)
		return CPN_E_INVAL;
	if (r->len > cl->max_message || wire > CPN_FRAG_MAX_TOTAL)
		return CPN_E_TOO_LARGE;
	if (cl->inflight >= cl->max_inflight)
		return CPN_E_FULL;
	/* The next free slot along the counter (at least half are). */
	for (;;) {
		s = &cl->slots[cl->ctr & cl->mask];
		if (!is_active(s) && !s->queued)
			break;
		cl->ctr++;
	}
	if (large && !frag_get(s))
		return CPN_E_NOMEM;
	id = id_of(cl, cl->ctr);
	/* FRAG_OK: a reply too large for one datagram may come as fragments.
	 * A signed request is always fresh: FRESH and the stamp under the tag.
	 */
	wflags = (uint16_t)(CPN_F_FRAG_OK | (cl->have_key ? CPN_F_AUTH | CPN_F_FRESH : 0) |
			    (sticky ? CPN_F_STICKY : 0) | (seal ? CPN_F_SEALED : 0));
	if (seal) {
		/* Sealed whole, once: every attempt and fragment sends these bytes. */
		struct cpn_msg m;
		struct cpn_hdr h;
		uint8_t ad[CPN_SEAL_AD_LEN];

		if (s->own_cap < wire) {
			uint8_t *b = realloc(s->own, wire);

			if (!b)
				return CPN_E_NOMEM;
			s->own = b;
			s->own_cap = (uint32_t)wire;
		}
		cpn_msg_init(&m, CPN_T_REQUEST);
		m.flags = wflags;
		m.service_id = cl->service;
		m.tenant_id = cl->tenant;
		m.session_key = session;
		m.request_id = id;
		cpn_hdr_encode(&m, &h);
		cpn_seal_ad(&h, ad);
		if (cpn_seal(cl->pkey, ad, r->data, r->len, s->own))
			return CPN_E_SYS;
		s->data = s->own;
	} else if (r->len && !(r->flags & CPN_REQ_NOCOPY)) {
		if (s->own_cap < r->len) {
			uint8_t *b = realloc(s->own, r->len);

			if (!b)
				return CPN_E_NOMEM;
			s->own = b;
			s->own_cap = (uint32_t)r->len;
		}
		memcpy(s->own, r->data, r->len);
		s->data = s->own;
	} else {
		s->data = r->data;
	}
	s->id = id;
	cl->ctr++;
	s->user = r->user;
	s->len = (uint32_t)wire;
	s->session = session;
	s->wflags = wflags;
	s->sealed = seal;
	s->stamp = 0;
	s->class_ = r->flags & CPN_REQ_CLASS ? r->class_ : cl->class_;
	s->rflags = (uint8_t)r->flags;
	s->tries = 0;
	s->large = large;
	s->addr = (uint8_t)(cl->naddrs > 1 ? next_addr(cl, now) : 0);
	s->t_submit = now;
	s->deadline = now + (r->timeout_ms ? r->timeout_ms : cl->timeout_ms) * MS_NS;
	s->attempt_ns = cl->attempt_ms ? (uint32_t)(cl->attempt_ms * MS_NS)
				       : (uint32_t)((s->deadline - now) / (cl->max_retries + 1));
	if (cl->attempt_ms && cl->attempt_ms * MS_NS > UINT32_MAX)
		s->attempt_ns = UINT32_MAX;
	s->t_action = NO_TIME;
	if (s->fr) {
		s->fr->sent = s->fr->acked = 0;
		s->fr->ack_due = s->fr->reply_started = s->fr->have_last = false;
		s->fr->niv = 0;
	}
	s->state = S_QUEUED;
	timer_update(cl, s);
	txq_push(cl, s);
	cl->inflight++;
	cl->st.submitted++;
	cl->tokens += 10ULL * cl->retry_percent;
	if (idp)
		*idp = s->id;
	return 0;
}

int cpn_client_submit_many(struct cpn_client *cl, const struct cpn_req *reqs, int n, uint64_t *ids)
{
	uint64_t now;
	int i, rc = 0;

	if (!cl || n < 0 || (n && !reqs))
		return CPN_E_INVAL;
	if (cl->broken)
		return CPN_E_CLOSED;
	release_run(cl);
	now = cpn_now_ns();
	for (i = 0; i < n; i++) {
		rc = take(cl, &reqs[i], now, ids ? &ids[i] : NULL);
		if (rc)
			break;
	}
	tx_run(cl, now);
	return i ? i : rc;
}

int cpn_client_submit(struct cpn_client *cl, const struct cpn_req *req, uint64_t *id)
{
	int r = cpn_client_submit_many(cl, req, 1, id);

	return r == 1 ? 0 : r;
}

/* ---- polling ------------------------------------------------------------------------ */

int cpn_client_next_ms(const struct cpn_client *cl)
{
	uint64_t now, k;

	if (!cl || !cl->nheap)
		return -1;
	if (cl->txq_n)
		return 0;
	now = cpn_now_ns();
	k = cl->slots[cl->heap[0]].tkey;
	if (k <= now)
		return 0;
	k = (k - now + MS_NS - 1) / MS_NS;
	return k > 1000000 ? 1000000 : (int)k;
}

static void step(struct cpn_client *cl, struct outq *q)
{
	rx_run(cl, q);
	timers_run(cl, cpn_now_ns(), q);
	if (cl->txq_n)
		tx_run(cl, cpn_now_ns());
}

int cpn_client_poll(struct cpn_client *cl, struct cpn_completion *out, int max, int timeout_ms)
{
	struct outq q = {.out = out, .max = max};
	uint64_t end, now;

	if (!cl || max < 1 || !out)
		return CPN_E_INVAL;
	release_run(cl);
	now = cpn_now_ns();
	end = timeout_ms < 0 ? NO_TIME : now + (uint64_t)timeout_ms * MS_NS;
	for (;;) {
		step(cl, &q);
		if (q.n)
			return q.n;
		if (cl->broken)
			return CPN_E_CLOSED;
		now = cpn_now_ns();
		if (now >= end || (timeout_ms < 0 && !cl->inflight))
			return 0;

		uint64_t wait = end - now;
		struct pollfd p = {.fd = cl->fd, .events = POLLIN};

		if (cl->nheap) {
			uint64_t k = cl->slots[cl->heap[0]].tkey;

			if (k <= now)
				wait = 0;
			else if (k - now < wait)
				wait = k - now;
		}
		if (cl->tx_blocked) {
			p.events |= POLLOUT;
			if (wait > MS_NS)
				wait = MS_NS;
		}
		struct timespec ts = cpn_ns_timespec(wait);

		if (ppoll(&p, 1, &ts, NULL) < 0 && errno != EINTR)
			return CPN_E_SYS;
	}
}

/* ---- synchronous calls ---------------------------------------------------------------- */

int cpn_client_call_req(struct cpn_client *cl, const struct cpn_req *req,
			struct cpn_completion *out)
{
	uint64_t id;
	int rc;

	if (!cl || !req || !out)
		return CPN_E_INVAL;
	if (cl->inflight)
		return CPN_E_INVAL;
	memset(&cl->last, 0, sizeof(cl->last));
	rc = cpn_client_submit(cl, req, &id);
	if (rc) {
		cl->last.status = rc;
		return rc;
	}
	for (;;) {
		rc = cpn_client_poll(cl, out, 1, -1);
		if (rc < 0) {
			cl->last.status = rc;
			return rc;
		}
		if (rc == 1 && out->id == id)
			break;
	}
	cl->last = *out;
	cl->last.data = NULL;
	return out->status;
}

int cpn_client_call(struct cpn_client *cl, const void *req, size_t len, void *reply, size_t cap,
		    size_t *reply_len, uint32_t timeout_ms)
{
	struct cpn_req r = {
	    .data = req, .len = len, .timeout_ms = timeout_ms, .flags = CPN_REQ_NOCOPY};
	struct cpn_completion c;
	int rc;

	if (reply_len)
		*reply_len = 0;
	if (cap && !reply)
		return CPN_E_INVAL;
	rc = cpn_client_call_req(cl, &r, &c);
	if (rc != 0 && rc != CPN_E_REMOTE)
		return rc;
	if (reply_len)
		*reply_len = c.len;
	if (c.len > cap) {
		cl->last.status = CPN_E_TOO_LARGE;
		return CPN_E_TOO_LARGE;
	}
	if (c.len)
		memcpy(reply, c.data, c.len);
	return rc;
}

int cpn_client_call_alloc(struct cpn_client *cl, const void *req, size_t len, void **reply,
			  size_t *reply_len, uint32_t timeout_ms)
{
	struct cpn_req r = {
	    .data = req, .len = len, .timeout_ms = timeout_ms, .flags = CPN_REQ_NOCOPY};
	struct cpn_completion c;
	int rc;

	if (!reply)
		return CPN_E_INVAL;
	*reply = NULL;
	if (reply_len)
		*reply_len = 0;
	rc = cpn_client_call_req(cl, &r, &c);
	if (rc != 0 && rc != CPN_E_REMOTE)
		return rc;
	if (c.len) {
		*reply = malloc(c.len);
		if (!*reply) {
			cl->last.status = CPN_E_NOMEM;
			return CPN_E_NOMEM;
		}
		memcpy(*reply, c.data, c.len);
	}
	if (reply_len)
		*reply_len = c.len;
	return rc;
}

void cpn_free(void *p)
{
	free(p);
}

void cpn_client_last(const struct cpn_client *cl, struct cpn_completion *out)
{
	if (!out)
		return;
	if (!cl) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = cl->last;
}
