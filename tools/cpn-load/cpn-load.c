// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-load: the load generator of cpn. Open loop (Poisson or uniform
 * arrivals at a set rate, sent whatever the replies do) or closed loop (C
 * requests outstanding); latency percentiles, achieved rates, BUSY and lost
 * counts, share per node. `cpn-load reflect` is its loopback echo responder
 * (cpn-load-reflect.c). Usage: `cpn-load --help`.
 *
 * How it works
 *
 * Every request has request_id = nonce << 40 | seq: the nonce is random per
 * run (a stray reply of an earlier run is "unexpected"), seq counts up from
 * 0. Its send time lives in a table of slots indexed by seq's low bits; a
 * slot holds seq, the send time and a state (outstanding, answered, lost).
 * The receiver resolves a slot when its reply arrives, and walks a cursor
 * along seq that declares lost every request still outstanding `--timeout`
 * after its send, so every seq below the cursor is resolved. The sender
 * reuses a slot only once the cursor has passed it; the table holds about
 * twice rate x timeout, so that never waits in practice.
 *
 * Open loop, by default in one thread: send what is due (one sendmmsg of
 * up to LOAD_BATCH), read what came (recvmmsg on the sockets ppoll says are
 * ready), expire, then wait in ppoll (timer slack 1 ns) for an answer or the
 * next arrival, whichever comes first; the batch grows by itself when the
 * rate is high. On a small machine most of the cost is waking up, and one
 * thread wakes where two would. With --threads 2 a sender thread follows the
 * schedule (clock_nanosleep to the next arrival) and the main thread only
 * receives and expires: for machines with cores to spare. Closed loop is one
 * thread: poll, read, expire, send one new request per request resolved.
 * Datagrams go out over --sockets connected UDP sockets in turn (distinct
 * source ports for the router's flow hash) and come back to the socket that
 * sent them.
 * Headers are built in a per-batch buffer from a template (request_id,
 * session key and tag patched); payloads come from a pool made at start:
 * nothing is allocated per request. Clock readings are one per batch.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn-load.h"
#include "hist.h"
#include "cpn_util.h"

#define SEQ_BITS     40
#define SEQ_MASK     ((1ULL << SEQ_BITS) - 1)
#define MAX_SOCKETS  64
#define RX_BUF	     64 /* header + tag: the rest of a reply is not read */
#define PAYLOAD_POOL 16 /* distinct payloads per run (mlp, vsearch) */
#define MAX_DGRAM    65507

enum kernel { K_ECHO, K_MLP, K_VSEARCH, K_SYNTHETIC };
static const char *const kernel_names[] = {"echo", "mlp", "vsearch", "synthetic"};

enum slot_state { SL_FREE, SL_OUT, SL_DONE, SL_LOST };

struct slot {
	uint64_t seq;
	uint64_t sent_ns;
	uint8_t state; /* written last by the sender (release), then by the receiver */
	uint8_t measured;
};

struct opts {
	struct load_addr to;
	char to_str[80];
	uint16_t service;
	uint32_t tenant;
	bool have_key;
	__u64 key[2];
	double rate;	 /* open loop when > 0 */
	bool poisson;	 /* else uniform */
	uint32_t conc;	 /* closed loop when > 0 */
	double duration; /* seconds, or */
	uint64_t count;	 /* requests */
	uint64_t timeout_ns;
	enum kernel kernel;
	uint32_t payload_bytes;
	uint32_t mlp_in, vs_dim, vs_k;
	uint32_t session_keys;
	bool sticky;
	uint64_t seed;
	bool json;
	double warmup;
	int sockets;
	int threads; /* open loop: 1 or 2 */
};

/* A request due to be sent (open loop): its arrival time, in the measured part. */
struct pend {
	uint64_t due;
	bool measured;
};

struct gen {
	const struct opts *o;
	int fds[MAX_SOCKETS];
	int nfds;
	struct slot *tab;
	uint64_t mask;
	uint64_t nonce_hi;
	uint64_t t0, measure_start, end_ns; /* end_ns: duration mode only */

	/* Request template and payload pool. */
	uint8_t tmpl[CPN_HDR_LEN];
	uint32_t hdr_len;
	uint8_t *payloads;
	uint32_t payload_len, npayloads;

	/* Shared between the threads. */
	_Atomic uint64_t sent_seq
	    __attribute__((aligned(64))); /* every seq below was sent (sender publishes) */
	_Atomic uint64_t cursor;	  /* every seq below is resolved (receiver publishes) */
	atomic_bool sender_done;

	/* Sender side. */
	uint64_t next_seq __attribute__((aligned(64)));
	uint64_t rng[4];
	int rr;
	uint8_t hdrs[LOAD_BATCH][CPN_HDR_LEN + CPN_TAG_LEN] __attribute__((aligned(8)));
	struct iovec iov[LOAD_BATCH][2];
	struct mmsghdr msgs[LOAD_BATCH];
	uint64_t sent, first_send, last_send, window_end;
	uint64_t gap_n, prev_send;
	double gap_sum, gap_sumsq;
	uint64_t lag_n, lag_max;
	double lag_sum;
	uint64_t send_refused, send_full;
	int tx_errno; /* a send failed for good */

	/* Receiver side (its own cache lines: the threads write both sides). */
	uint64_t rx_cursor __attribute__((aligned(64)));
	uint64_t resolved;
	int rx_errno; /* a receive failed for good */
	uint8_t rbuf[LOAD_BATCH][RX_BUF];
	struct iovec riov[LOAD_BATCH];
	struct mmsghdr rmsgs[LOAD_BATCH];
	struct load_hist *hist;
	uint64_t replied, busy, lost, late, dup, unexpected, recv_refused;
	uint64_t reply_status[256], busy_status[256];
	uint64_t *share; /* per node_id */
};

static atomic_bool stop_req;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_req, true);
}

/* ---- usage ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cpn-load --to VIP:PORT --service S --tenant T [--key HEX32]\n"
	    "                (--rate R [--arrivals poisson|uniform] | --concurrency C)\n"
	    "                (--duration SECONDS | --count N) [--timeout MS]\n"
	    "                [--kernel echo|mlp|vsearch|synthetic] [--payload-bytes N]\n"
	    "                [--mlp-in D] [--vs-dim D --vs-k K] [--session-keys N [--sticky]]\n"
	    "                [--seed S] [--json] [--warmup SECONDS] [--sockets N] [--threads 1|2]\n"
	    "       cpn-load reflect --listen IP:PORT [--threads N] [--node-id N] [--drop-every "
	    "N]\n"
	    "                [--busy-every N] [--require-key HEX32] [--duration SECONDS]\n"
	    "\n"
	    "Sends cpn REQUESTs to VIP:PORT and measures the answers.\n"
	    "  --rate R              open loop: R arrivals per second, sent whatever the\n"
	    "                        replies do; --arrivals poisson (default: exponential\n"
	    "                        gaps, seeded) or uniform (1/R apart)\n"
	    "  --concurrency C       closed loop: C requests outstanding; one is sent as\n"
	    "                        soon as one is answered or times out\n"
	    "  --duration SECONDS    send for this long (after the warmup), or\n"
	    "  --count N             send N measured requests\n"
	    "  --timeout MS          a request with no answer within MS is lost (1000);\n"
	    "                        after the last send cpn-load waits at most this long\n"
	    "  --key HEX32           tenant key: requests carry AUTH and the SipHash tag\n"
	    "  --kernel K            payload: echo (--payload-bytes random bytes, 64),\n"
	    "                        mlp (--mlp-in float32, 256), vsearch (uint32 k =\n"
	    "                        --vs-k (10), then a unit vector of --vs-dim float32\n"
	    "                        (128)), synthetic (--payload-bytes, 0)\n"
	    "  --session-keys N      each request carries a session key drawn from 1..N;\n"
	    "                        --sticky sets the STICKY flag\n"
	    "  --seed S              arrivals, payloads and session keys (1)\n"
	    "  --warmup SECONDS      traffic of the first SECONDS is sent but not counted\n"
	    "  --sockets N           source sockets (ports) used in turn (4)\n"
	    "  --threads 1|2         open loop: one thread (default) or a sender and a\n"
	    "                        receiver (for machines with cores to spare)\n"
	    "  --json                one JSON object on stdout instead of the text report\n"
	    "\n"
	    "Counts cover the measured requests (not the warmup). Every measured request\n"
	    "ends as exactly one of replied, busy or lost: sent = replied + busy + lost.\n"
	    "JSON fields:\n"
	    "  mode \"open\"|\"closed\", arrivals \"poisson\"|\"uniform\"|null, target_rate (/s,\n"
	    "  open loop), concurrency (closed loop), kernel, request_bytes (header, tag and\n"
	    "  payload), sockets, timeout_ms, warmup_s,\n"
	    "  window_s       measured send window: first measured arrival (or send) to the\n"
	    "                 end of the schedule or the last send, whichever is later\n"
	    "  sent, replied, busy, lost   requests (replied: REPLY of any status)\n"
	    "  send_rate, reply_rate       sent / window_s, replied / window_s\n"
	    "  reply_status   {status: count} of the REPLY messages whose status is not 0\n"
	    "  busy_status    {status: count} of BUSYs (1 WAIT .. 5 OVERLOAD)\n"
	    "  late           answers that came after --timeout (counted in lost)\n"
	    "  duplicates     second answers to one request\n"
	    "  unexpected     datagrams that answer no request of this run\n"
	    "  send_errors    sends refused (ICMP) or retried for a full socket buffer\n"
	    "  latency_us     REPLY latency, µs: count, min, mean, stddev, p50, p90, p99,\n"
	    "                 p99.9, max (log-linear histogram, <= 0.2 %% coarse)\n"
	    "  latency_hist   [[lowest_us, highest_us, count], ...] power-of-two buckets\n"
	    "  share          {node_id: replies}\n"
	    "  send_gap_us    mean, stddev, cv of the gaps between measured sends\n"
	    "  send_lag_us    mean, max of send time minus scheduled arrival (open loop)\n"
	    "SIGINT or SIGTERM ends the sending early; the report covers what was sent.\n"
	    "Exit: 0 done (whatever was lost), 1 runtime failure, 2 bad arguments.\n");
}

static void __attribute__((noreturn)) bad_args(const char *fmt, const char *arg)
{
	fprintf(stderr, "cpn-load: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n");
	usage(stderr);
	exit(2);
}

/* ---- random numbers: xoshiro256**, seeded by splitmix64 -------------------- */

static void rng_seed(uint64_t r[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r[i] = cpn_splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1). */
static inline double rng_unit(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---- setup ---------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	put_le32(p, v);
}

static double rng_gauss(uint64_t r[4])
{
	double u = rng_unit(r), v = rng_unit(r);

	return sqrt(-2.0 * log1p(-u)) * cos(2 * M_PI * v);
}

static int make_payloads(struct gen *g)
{
	const struct opts *o = g->o;
	uint64_t r[4];

	rng_seed(r, o->seed ^ 0x7061796c6f6164ULL);
	switch (o->kernel) {
	case K_ECHO:
	case K_SYNTHETIC:
		g->payload_len = o->payload_bytes;
		g->npayloads = 1;
		break;
	case K_MLP:
		g->payload_len = 4 * o->mlp_in;
		g->npayloads = PAYLOAD_POOL;
		break;
	case K_VSEARCH:
		g->payload_len = 4 + 4 * o->vs_dim;
		g->npayloads = PAYLOAD_POOL;
		break;
	}
	g->payloads = calloc(g->npayloads, g->payload_len ? g->payload_len : 1);
	if (!g->payloads)
		return -1;
	for (uint32_t n = 0; n < g->npayloads; n++) {
		uint8_t *p = g->payloads + (size_t)n * g->payload_len;

		if (o->kernel == K_MLP) {
			for (uint32_t i = 0; i < o->mlp_in; i++)
				put_f32(p + 4 * i, (float)(2 * rng_unit(r) - 1));
		} else if (o->kernel == K_VSEARCH) {
			double *v = malloc(o->vs_dim * sizeof(*v)), norm = 0;

			if (!v)
				return -1;
			for (uint32_t i = 0; i < o->vs_dim; i++) {
				v[i] = rng_gauss(r);
				norm += v[i] * v[i];
			}
			norm = sqrt(norm) > 0 ? sqrt(norm) : 1;
			put_le32(p, o->vs_k);
			for (uint32_t i = 0; i < o->vs_dim; i++)
				put_f32(p + 4 + 4 * i, (float)(v[i] / norm));
			free(v);
		} else {
			for (uint32_t i = 0; i < g->payload_len; i++)
				p[i] = (uint8_t)rng_next(r);
		}
	}
	return 0;
}

static int open_sockets(struct gen *g)
{
	const struct opts *o = g->o;
	int buf = 32 << 20;

	for (int i = 0; i < o->sockets; i++) {
		int fd = socket(o->to.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			fprintf(stderr, "cpn-load: socket: %s\n", strerror(errno));
			return -1;
		}
		g->fds[g->nfds++] = fd;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		/* Connected: a route cached once, and only the target's answers. */
		if (connect(fd, (const struct sockaddr *)&o->to.sa, o->to.len)) {
			fprintf(stderr, "cpn-load: cannot send to %s: %s\n", o->to_str,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int gen_init(struct gen *g, const struct opts *o)
{
	memset(g, 0, sizeof(*g));
	g->o = o;

	/* Slots: twice what can be outstanding within a timeout. */
	double tmo_s = (double)o->timeout_ns / 1e9;
	double want = o->rate > 0 ? 2.0 * o->rate * (tmo_s + 0.5) : (double)(1 << 20);

	if (want < 4 * (double)o->conc)
		want = 4 * (double)o->conc;
	if (o->count) {
		double warm = o->rate > 0 ? o->rate * o->warmup : 1e9;
		double all = (double)o->count + warm + 2 * LOAD_BATCH;

		if (all < want)
			want = all;
	}
	if (want < 4096)
		want = 4096;
	if (want > (double)(1ULL << 26))
		want = (double)(1ULL << 26);
	uint64_t size = pow2_at_least((uint64_t)want);

	g->mask = size - 1;
	g->tab = calloc(size, sizeof(*g->tab));
	g->hist = malloc(sizeof(*g->hist));
	g->share = calloc(65536, sizeof(*g->share));
	if (!g->tab || !g->hist || !g->share || make_payloads(g)) {
		fprintf(stderr, "cpn-load: out of memory\n");
		return -1;
	}
	load_hist_init(g->hist);

	uint64_t ns = cpn_now_ns(), nonce;

	nonce = cpn_splitmix64(&ns) ^ ((uint64_t)getpid() << 20);
	nonce &= (1ULL << (64 - SEQ_BITS)) - 1;
	g->nonce_hi = (nonce ? nonce : 1) << SEQ_BITS;
	rng_seed(g->rng, o->seed);

	struct cpn_msg m;

	cpn_msg_init(&m, CPN_T_REQUEST);
	m.flags = (o->have_key ? CPN_F_AUTH : 0) | (o->sticky ? CPN_F_STICKY : 0);
	m.service_id = o->service;
	m.tenant_id = o->tenant;
	cpn_hdr_encode(&m, (struct cpn_hdr *)g->tmpl);
	g->hdr_len = CPN_HDR_LEN + (o->have_key ? CPN_TAG_LEN : 0);

	for (int i = 0; i < LOAD_BATCH; i++) {
		g->iov[i][0].iov_base = g->hdrs[i];
		g->iov[i][0].iov_len = g->hdr_len;
		g->iov[i][1].iov_len = g->payload_len;
		g->msgs[i].msg_hdr.msg_iov = g->iov[i];
		g->msgs[i].msg_hdr.msg_iovlen = g->payload_len ? 2 : 1;
		g->riov[i].iov_base = g->rbuf[i];
		g->riov[i].iov_len = RX_BUF;
		g->rmsgs[i].msg_hdr.msg_iov = &g->riov[i];
		g->rmsgs[i].msg_hdr.msg_iovlen = 1;
	}
	return open_sockets(g);
}

static void gen_free(struct gen *g)
{
	for (int i = 0; i < g->nfds; i++)
		close(g->fds[i]);
	free(g->tab);
	free(g->hist);
	free(g->share);
	free(g->payloads);
}

/* ---- sending -------------------------------------------------------------- */

/* Requests that may be sent now without reusing an unresolved slot. */
static uint64_t tx_room(struct gen *g)
{
	uint64_t cur = atomic_load_explicit(&g->cursor, memory_order_acquire);

	return cur + g->mask + 1 - g->next_seq;
}

/* Send n requests (n <= LOAD_BATCH) as one batch. pend: their arrivals (open
 * loop), or NULL with `measured` for all (closed loop). Returns how many went
 * out (the first ones); the rest are for a later call. -1: fatal error.
 */
static int tx_batch(struct gen *g, int n, const struct pend *pend, bool measured)
{
	const struct opts *o = g->o;

	for (int i = 0; i < n; i++) {
		struct cpn_hdr *h = (struct cpn_hdr *)g->hdrs[i];
		uint64_t seq = g->next_seq + (uint64_t)i;

		memcpy(h, g->tmpl, CPN_HDR_LEN);
		h->request_id = cpn_htonll(g->nonce_hi | (seq & SEQ_MASK));
		if (o->session_keys)
			h->session_key =
			    cpn_htonl((uint32_t)(1 + rng_next(g->rng) % o->session_keys));
		if (o->have_key) {
			uint64_t tag = cpn_tag_request(o->key, h);

			memcpy(g->hdrs[i] + CPN_HDR_LEN, &tag, sizeof(tag));
		}
		g->iov[i][1].iov_base = g->payloads + (size_t)(seq % g->npayloads) * g->payload_len;
	}

	uint64_t ts = cpn_now_ns();

	for (int i = 0; i < n; i++) {
		uint64_t seq = g->next_seq + (uint64_t)i;
		struct slot *s = &g->tab[seq & g->mask];

		__atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
		__atomic_store_n(&s->sent_ns, ts, __ATOMIC_RELAXED);
		s->measured = pend ? pend[i].measured : measured;
		__atomic_store_n(&s->state, SL_OUT, __ATOMIC_RELEASE);
	}

	int off = 0, tries = 0;

	while (off < n) {
		int r = sendmmsg(g->fds[g->rr], g->msgs + off, (unsigned)(n - off), MSG_DONTWAIT);

		if (r > 0) {
			off += r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNREFUSED) {
			/* An ICMP error of an earlier datagram, reported now. */
			g->send_refused++;
			if (++tries > 8)
				break;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
			g->send_full++;
			g->rr = (g->rr + 1) % g->nfds;
			if (++tries > g->nfds)
				break;
			continue;
		}
		g->tx_errno = errno;
		return -1;
	}
	g->rr = (g->rr + 1) % g->nfds;
	if (!off)
		return 0;

	for (int i = 0; i < off; i++) {
		bool m = pend ? pend[i].measured : measured;

		if (!m)
			continue;
		if (!g->sent)
			g->first_send = ts;
		else {
			double gap = i ? 0.0 : (double)(ts - g->prev_send);

			g->gap_n++;
			g->gap_sum += gap;
			g->gap_sumsq += gap * gap;
		}
		g->prev_send = ts;
		g->sent++;
		if (pend) {
			uint64_t lag = ts > pend[i].due ? ts - pend[i].due : 0;

			g->lag_n++;
			g->lag_sum += (double)lag;
			if (lag > g->lag_max)
				g->lag_max = lag;
		}
	}
	g->last_send = ts;
	g->next_seq += (uint64_t)off;
	atomic_store_explicit(&g->sent_seq, g->next_seq, memory_order_release);
	return off;
}

/* Wait a little for room: a socket buffer or the slot table is full. */
static void tx_backoff(struct gen *g)
{
	struct pollfd p = {.fd = g->fds[g->rr], .events = POLLOUT};

	if (tx_room(g) == 0)
		usleep(200);
	else
		poll(&p, 1, 1);
}

/* The open loop's arrival schedule and the requests due but not yet sent. */
struct sched {
	struct pend pend[LOAD_BATCH];
	int np;
	double period_ns, off_ns; /* next arrival: t0 + off_ns */
	uint64_t scheduled, deadline;
	bool more;    /* arrivals left in the schedule */
	bool done;    /* nothing more will be sent */
	bool blocked; /* the last send found no room: back off */
};

static void sched_init(struct gen *g, struct sched *sc)
{
	const struct opts *o = g->o;

	memset(sc, 0, sizeof(*sc));
	sc->period_ns = 1e9 / o->rate;
	sc->more = true;
	/* Behind schedule (a starved machine), the sending ends all the same. */
	if (o->count)
		sc->deadline =
		    g->measure_start + (uint64_t)(2e9 * (double)o->count / o->rate) + 1000000000ULL;
	else
		sc->deadline = g->end_ns + 1000000000ULL;
}

static uint64_t sched_next(const struct gen *g, const struct sched *sc)
{
	return g->t0 + (uint64_t)sc->off_ns;
}

/* Send what is due at `now` (one batch at most). Returns how many were sent,
 * -1 on a fatal error; sets sc->done when nothing more will be sent.
 */
static int sched_step(struct gen *g, struct sched *sc, uint64_t now)
{
	const struct opts *o = g->o;

	sc->blocked = false;
	if (atomic_load_explicit(&stop_req, memory_order_relaxed) || now > sc->deadline) {
		/* Stopped early: the window ends here. */
		if (sc->more)
			g->window_end = now;
		sc->done = true;
		return 0;
	}
	while (sc->more && sc->np < LOAD_BATCH) {
		uint64_t due = sched_next(g, sc);
		bool measured = due >= g->measure_start;

		if (o->count ? (measured && sc->scheduled == o->count) : due >= g->end_ns) {
			sc->more = false;
			g->window_end = o->count ? due : g->end_ns;
			break;
		}
		if (due > now)
			break;
		sc->pend[sc->np].due = due;
		sc->pend[sc->np].measured = measured;
		sc->np++;
		sc->scheduled += measured;
		sc->off_ns +=
		    o->poisson ? -log1p(-rng_unit(g->rng)) * sc->period_ns : sc->period_ns;
	}
	if (!sc->np) {
		sc->done = !sc->more;
		return 0;
	}
	uint64_t room = tx_room(g);
	int k = room < (uint64_t)sc->np ? (int)room : sc->np, sent = 0;

	if (k)
		sent = tx_batch(g, k, sc->pend, false);
	if (sent < 0)
		return -1;
	sc->np -= sent;
	memmove(sc->pend, sc->pend + sent, (size_t)sc->np * sizeof(sc->pend[0]));
	sc->blocked = sent < k || !k;
	return sent;
}

/* Open loop, sender thread: send what is due, sleep until the next arrival. */
static void *tx_open_loop(void *arg)
{
	struct gen *g = arg;
	struct sched sc;

	sched_init(g, &sc);
	/* Sleep as precisely as the clock allows: the default slack is 50 µs. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (;;) {
		uint64_t now = cpn_now_ns();
		int r = sched_step(g, &sc, now);

		if (r < 0 || sc.done)
			break;
		if (sc.blocked) {
			tx_backoff(g);
			continue;
		}
		if (r > 0 || sc.np)
			continue;
		/* In slices of 100 ms at most: a signal may have gone to the receiver. */
		uint64_t next = sched_next(g, &sc);

		if (next > now + 100000000ULL)
			next = now + 100000000ULL;
		struct timespec ts = cpn_ns_timespec(next);

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	atomic_store_explicit(&g->sender_done, true, memory_order_release);
	return NULL;
}

/* ---- receiving ------------------------------------------------------------ */

static void rx_one(struct gen *g, const uint8_t *buf, uint32_t len, uint64_t now)
{
	const struct cpn_hdr *h = (const struct cpn_hdr *)buf;

	if (cpn_hdr_check(h, len) != CPN_HDR_OK ||
	    (h->type != CPN_T_REPLY && h->type != CPN_T_BUSY)) {
		g->unexpected++;
		return;
	}
	uint64_t id = cpn_ntohll(h->request_id), seq = id & SEQ_MASK;

	if ((id & ~SEQ_MASK) != g->nonce_hi) {
		g->unexpected++;
		return;
	}
	struct slot *s = &g->tab[seq & g->mask];
	uint8_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

	if (st == SL_FREE || __atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq) {
		/* A request whose slot was reused long ago: late; never sent: unexpected. */
		if (st != SL_FREE && seq < __atomic_load_n(&s->seq, __ATOMIC_RELAXED))
			g->late++;
		else
			g->unexpected++;
		return;
	}
	if (st == SL_DONE) {
		g->dup += s->measured;
		return;
	}
	if (st == SL_LOST) {
		g->late += s->measured;
		return;
	}
	uint64_t sent = __atomic_load_n(&s->sent_ns, __ATOMIC_RELAXED);
	uint64_t lat = now > sent ? now - sent : 0;

	g->resolved++;
	if (lat > g->o->timeout_ns) {
		/* Came after the timeout but before the sweep: lost all the same. */
		s->state = SL_LOST;
		g->lost += s->measured;
		g->late += s->measured;
		return;
	}
	s->state = SL_DONE;
	if (!s->measured)
		return;
	if (h->type == CPN_T_BUSY) {
		g->busy++;
		g->busy_status[h->status]++;
		return;
	}
	g->replied++;
	if (h->status)
		g->reply_status[h->status]++;
	g->share[cpn_ntohs(h->node_id)]++;
	load_hist_record(g->hist, (lat + 500) / 1000);
}

/* Read what one socket holds. Returns datagrams read, -1 on a fatal error. */
static int rx_drain(struct gen *g, int fd)
{
	int total = 0;

	for (;;) {
		int n = recvmmsg(fd, g->rmsgs, LOAD_BATCH, MSG_DONTWAIT, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED) {
				g->recv_refused++;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			g->rx_errno = errno;
			return -1;
		}
		uint64_t now = cpn_now_ns();

		for (int i = 0; i < n; i++)
			rx_one(g, g->rbuf[i], g->rmsgs[i].msg_len, now);
		total += n;
		if (n < LOAD_BATCH)
			return total;
	}
}

/* Declare lost what is outstanding past the timeout; move the cursor. */
static void rx_expire(struct gen *g, uint64_t now)
{
	uint64_t c = g->rx_cursor, end = atomic_load_explicit(&g->sent_seq, memory_order_acquire);

	while (c < end) {
		struct slot *s = &g->tab[c & g->mask];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == SL_OUT) {
			uint64_t sent = __atomic_load_n(&s->sent_ns, __ATOMIC_RELAXED);

			if (now < sent || now - sent <= g->o->timeout_ns)
				break;
			s->state = SL_LOST;
			g->lost += s->measured;
			g->resolved++;
		}
		c++;
	}
	g->rx_cursor = c;
	atomic_store_explicit(&g->cursor, c, memory_order_release);
}

/* Wait up to timeout_ns for answers, read them. -1 on a fatal error. */
static int rx_poll(struct gen *g, uint64_t timeout_ns)
{
	struct pollfd p[MAX_SOCKETS];
	struct timespec ts = cpn_ns_timespec(timeout_ns);
	int got = 0;

	for (int i = 0; i < g->nfds; i++)
		p[i] = (struct pollfd){.fd = g->fds[i], .events = POLLIN};
	int n = ppoll(p, (nfds_t)g->nfds, &ts, NULL);

	if (n <= 0)
		return 0;
	for (int i = 0; i < g->nfds; i++) {
		if (!p[i].revents)
			continue;
		int r = rx_drain(g, g->fds[i]);

		if (r < 0)
			return -1;
		got += r;
	}
	return got;
}

/* ---- the two modes -------------------------------------------------------- */

#define MS 1000000ULL

/* Open loop in two threads: the sender (tx_open_loop) and this receiver. */
static int run_open2(struct gen *g)
{
	pthread_t tx;

	if (pthread_create(&tx, NULL, tx_open_loop, g)) {
		fprintf(stderr, "cpn-load: cannot start the sender thread\n");
		return -1;
	}
	int rc = 0;

	for (;;) {
		if (rx_poll(g, 1 * MS) < 0) {
			rc = -1;
			atomic_store(&stop_req, true);
			break;
		}
		rx_expire(g, cpn_now_ns());
		if (atomic_load_explicit(&g->sender_done, memory_order_acquire) &&
		    g->rx_cursor == atomic_load_explicit(&g->sent_seq, memory_order_acquire))
			break;
	}
	pthread_join(tx, NULL);
	if (g->tx_errno || g->rx_errno)
		rc = -1;
	return rc;
}

/* Open loop in one thread: send what is due, read what came, then wait in
 * ppoll for an answer or the next arrival, whichever is first. One thread
 * wakes where two would: on a small machine that is most of the cost.
 */
static int run_open1(struct gen *g)
{
	struct sched sc;

	sched_init(g, &sc);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (;;) {
		uint64_t now = cpn_now_ns(), wait = 1 * MS;

		/* A few batches at most, then read: answers must not wait long. */
		for (int i = 0; i < 4 && !sc.done; i++) {
			int r = sched_step(g, &sc, now);

			if (r < 0)
				return -1;
			if (sc.blocked || (r == 0 && !sc.np))
				break;
			now = cpn_now_ns();
		}
		rx_expire(g, now);
		if (sc.done) {
			if (g->rx_cursor ==
			    atomic_load_explicit(&g->sent_seq, memory_order_acquire))
				break;
		} else if (sc.blocked) {
			wait = 200000;
		} else if (sc.np) {
			wait = 0;
		} else {
			uint64_t next = sched_next(g, &sc), t = cpn_now_ns();

			wait = next > t ? next - t : 0;
			if (wait > 100 * MS)
				wait = 100 * MS;
		}
		if (rx_poll(g, wait) < 0)
			return -1;
	}
	return 0;
}

static int run_closed(struct gen *g)
{
	const struct opts *o = g->o;
	bool sending = true;

	for (;;) {
		uint64_t now = cpn_now_ns();
		bool measured = now >= g->measure_start;

		if (sending) {
			bool over = o->count ? g->sent >= o->count : now >= g->end_ns;

			if (over || atomic_load_explicit(&stop_req, memory_order_relaxed)) {
				sending = false;
				g->window_end =
				    o->count ? now : (now < g->end_ns ? now : g->end_ns);
			}
		}
		while (sending) {
			uint64_t inflight = g->next_seq - g->resolved, want, room = tx_room(g);

			want = inflight < o->conc ? o->conc - inflight : 0;
			if (want > room)
				want = room;
			if (want > LOAD_BATCH)
				want = LOAD_BATCH;
			if (measured && o->count && want > o->count - g->sent)
				want = o->count - g->sent;
			if (!want)
				break;
			int s = tx_batch(g, (int)want, NULL, measured);

			if (s < 0)
				return -1;
			if ((uint64_t)s < want) {
				tx_backoff(g);
				break;
			}
		}
		if (rx_poll(g, 1 * MS) < 0)
			return -1;
		rx_expire(g, cpn_now_ns());
		if (!sending && g->next_seq == g->resolved)
			break;
	}
	return 0;
}

/* ---- report --------------------------------------------------------------- */

struct summary {
	double window_s, send_rate, reply_rate;
	double gap_mean, gap_sd, gap_cv, lag_mean, lag_max;
	uint64_t p50, p90, p99, p999;
};

static void summarize(const struct gen *g, struct summary *s)
{
	uint64_t start = g->o->rate > 0 ? g->measure_start : g->first_send;
	uint64_t end = g->window_end > g->last_send ? g->window_end : g->last_send;

	if (!g->sent)
		start = end = 0;
	memset(s, 0, sizeof(*s));
	s->window_s = end > start ? (double)(end - start) / 1e9 : 0;
	if (s->window_s > 0) {
		s->send_rate = (double)g->sent / s->window_s;
		s->reply_rate = (double)g->replied / s->window_s;
	}
	if (g->gap_n) {
		double m = g->gap_sum / (double)g->gap_n;
		double var = g->gap_sumsq / (double)g->gap_n - m * m;

		s->gap_mean = m / 1e3;
		s->gap_sd = (var > 0 ? sqrt(var) : 0) / 1e3;
		s->gap_cv = m > 0 ? s->gap_sd * 1e3 / m : 0;
	}
	if (g->lag_n) {
		s->lag_mean = g->lag_sum / (double)g->lag_n / 1e3;
		s->lag_max = (double)g->lag_max / 1e3;
	}
	s->p50 = load_hist_percentile(g->hist, 50);
	s->p90 = load_hist_percentile(g->hist, 90);
	s->p99 = load_hist_percentile(g->hist, 99);
	s->p999 = load_hist_percentile(g->hist, 99.9);
}

static void json_status_map(const uint64_t st[256])
{
	bool first = true;

	putchar('{');
	for (int i = 0; i < 256; i++) {
		if (!st[i])
			continue;
		printf("%s\"%d\": %llu", first ? "" : ", ", i, (unsigned long long)st[i]);
		first = false;
	}
	putchar('}');
}

/* Power-of-two view of the histogram: [2^k, 2^(k+1)) µs, [0, 1) first. */
static void log2_buckets(const struct load_hist *h, uint64_t out[65])
{
	memset(out, 0, 65 * sizeof(out[0]));
	for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++) {
		uint64_t lo;

		if (!h->buckets[i])
			continue;
		lo = load_hist_lowest(i);
		out[lo ? 64 - __builtin_clzll(lo) : 0] += h->buckets[i];
	}
}

static void bucket_range(int k, uint64_t *lo, uint64_t *hi)
{
	*lo = k ? 1ULL << (k - 1) : 0;
	*hi = k ? (1ULL << k) - 1 : 0;
}

static void report_json(const struct gen *g, const struct summary *s)
{
	const struct opts *o = g->o;
	const struct load_hist *h = g->hist;
	uint64_t lb[65];
	bool first = true;

	printf("{\"mode\": \"%s\", \"arrivals\": %s, ", o->rate > 0 ? "open" : "closed",
	       o->rate > 0 ? (o->poisson ? "\"poisson\"" : "\"uniform\"") : "null");
	if (o->rate > 0)
		printf("\"target_rate\": %.3f, \"concurrency\": null, ", o->rate);
	else
		printf("\"target_rate\": null, \"concurrency\": %u, ", o->conc);
	printf("\"to\": \"%s\", \"service\": %u, \"tenant\": %u, \"auth\": %s, ", o->to_str,
	       o->service, o->tenant, o->have_key ? "true" : "false");
	printf("\"kernel\": \"%s\", \"request_bytes\": %u, \"sockets\": %d, ",
	       kernel_names[o->kernel], g->hdr_len + g->payload_len, g->nfds);
	printf("\"timeout_ms\": %.3f, \"warmup_s\": %.3f, \"window_s\": %.6f, ",
	       (double)o->timeout_ns / 1e6, o->warmup, s->window_s);
	printf("\"sent\": %llu, \"replied\": %llu, \"busy\": %llu, \"lost\": %llu, ",
	       (unsigned long long)g->sent, (unsigned long long)g->replied,
	       (unsigned long long)g->busy, (unsigned long long)g->lost);
	printf("\"send_rate\": %.3f, \"reply_rate\": %.3f, ", s->send_rate, s->reply_rate);
	printf("\"reply_status\": ");
	json_status_map(g->reply_status);
	printf(", \"busy_status\": ");
	json_status_map(g->busy_status);
	printf(", \"late\": %llu, \"duplicates\": %llu, \"unexpected\": %llu, "
	       "\"send_errors\": %llu, ",
	       (unsigned long long)g->late, (unsigned long long)g->dup,
	       (unsigned long long)g->unexpected,
	       (unsigned long long)(g->send_refused + g->send_full + g->recv_refused));
	printf("\"latency_us\": {\"count\": %llu, \"min\": %llu, \"mean\": %.3f, "
	       "\"stddev\": %.3f, \"p50\": %llu, \"p90\": %llu, \"p99\": %llu, "
	       "\"p99.9\": %llu, \"max\": %llu}, ",
	       (unsigned long long)h->count, (unsigned long long)(h->count ? h->min : 0),
	       load_hist_mean(h), load_hist_stddev(h), (unsigned long long)s->p50,
	       (unsigned long long)s->p90, (unsigned long long)s->p99, (unsigned long long)s->p999,
	       (unsigned long long)h->max);
	printf("\"latency_hist\": [");
	log2_buckets(h, lb);
	for (int k = 0; k < 65; k++) {
		uint64_t lo, hi;

		if (!lb[k])
			continue;
		bucket_range(k, &lo, &hi);
		printf("%s[%llu, %llu, %llu]", first ? "" : ", ", (unsigned long long)lo,
		       (unsigned long long)hi, (unsigned long long)lb[k]);
		first = false;
	}
	printf("], \"share\": {");
	first = true;
	for (int n = 0; n < 65536; n++) {
		if (!g->share[n])
			continue;
		printf("%s\"%d\": %llu", first ? "" : ", ", n, (unsigned long long)g->share[n]);
		first = false;
	}
	printf("}, \"send_gap_us\": {\"mean\": %.3f, \"stddev\": %.3f, \"cv\": %.4f}, ",
	       s->gap_mean, s->gap_sd, s->gap_cv);
	if (o->rate > 0)
		printf("\"send_lag_us\": {\"mean\": %.3f, \"max\": %.3f}}\n", s->lag_mean,
		       s->lag_max);
	else
		printf("\"send_lag_us\": null}\n");
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

static void report_text(const struct gen *g, const struct summary *s)
{
	const struct opts *o = g->o;
	const struct load_hist *h = g->hist;
	uint64_t lb[65], peak = 0;

	printf("cpn-load -> %s  service %u  tenant %u%s  %s, %u-byte requests, %d sockets\n",
	       o->to_str, o->service, o->tenant, o->have_key ? " (signed)" : "",
	       kernel_names[o->kernel], g->hdr_len + g->payload_len, g->nfds);
	if (o->rate > 0)
		printf("open loop, %s arrivals at %.0f/s", o->poisson ? "Poisson" : "uniform",
		       o->rate);
	else
		printf("closed loop, %u outstanding", o->conc);
	printf(", measured window %.3f s (warmup %.3f s), timeout %.0f ms\n\n", s->window_s,
	       o->warmup, (double)o->timeout_ns / 1e6);
	printf("  sent        %10llu  %12.1f/s", (unsigned long long)g->sent, s->send_rate);
	if (o->rate > 0)
		printf("  (%.2f%% of target; send lag mean %.1f µs, max %.1f µs)",
		       100.0 * s->send_rate / o->rate, s->lag_mean, s->lag_max);
	printf("\n  replied     %10llu  %12.1f/s  (%.2f%%)\n", (unsigned long long)g->replied,
	       s->reply_rate, pct(g->replied, g->sent));
	printf("  busy        %10llu                  (%.2f%%)", (unsigned long long)g->busy,
	       pct(g->busy, g->sent));
	for (int i = 0; i < 256; i++)
		if (g->busy_status[i])
			printf("  status %d: %llu", i, (unsigned long long)g->busy_status[i]);
	printf("\n  lost        %10llu                  (%.2f%%)\n", (unsigned long long)g->lost,
	       pct(g->lost, g->sent));
	for (int i = 0; i < 256; i++)
		if (g->reply_status[i])
			printf("  reply status %d: %llu\n", i,
			       (unsigned long long)g->reply_status[i]);
	printf("  late %llu, duplicates %llu, unexpected %llu, send errors %llu\n",
	       (unsigned long long)g->late, (unsigned long long)g->dup,
	       (unsigned long long)g->unexpected,
	       (unsigned long long)(g->send_refused + g->send_full + g->recv_refused));
	printf("  send gaps   mean %.1f µs, stddev %.1f µs, cv %.3f\n\n", s->gap_mean, s->gap_sd,
	       s->gap_cv);

	printf("latency (µs) of %llu replies: min %llu  mean %.1f  p50 %llu  p90 %llu  "
	       "p99 %llu  p99.9 %llu  max %llu\n",
	       (unsigned long long)h->count, (unsigned long long)(h->count ? h->min : 0),
	       load_hist_mean(h), (unsigned long long)s->p50, (unsigned long long)s->p90,
	       (unsigned long long)s->p99, (unsigned long long)s->p999, (unsigned long long)h->max);
	log2_buckets(h, lb);
	for (int k = 0; k < 65; k++)
		if (lb[k] > peak)
			peak = lb[k];
	for (int k = 0; k < 65; k++) {
		uint64_t lo, hi;
		char bar[41];
		int w;

		if (!lb[k])
			continue;
		bucket_range(k, &lo, &hi);
		w = (int)(40.0 * (double)lb[k] / (double)peak + 0.5);
		memset(bar, '#', (size_t)w);
		bar[w] = 0;
		printf("  %9llu .. %-9llu %10llu %6.2f%%  %s\n", (unsigned long long)lo,
		       (unsigned long long)hi, (unsigned long long)lb[k], pct(lb[k], h->count),
		       bar);
	}
	printf("\nshare per node (replies):\n");
	for (int n = 0; n < 65536; n++)
		if (g->share[n])
			printf("  node %-5d %10llu  %6.2f%%\n", n, (unsigned long long)g->share[n],
			       pct(g->share[n], g->replied));
}

/* ---- arguments ------------------------------------------------------------ */

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_TO = 256,
		O_SERVICE,
		O_TENANT,
		O_KEY,
		O_RATE,
		O_ARRIVALS,
		O_CONC,
		O_DURATION,
		O_COUNT,
		O_TIMEOUT,
		O_KERNEL,
		O_PAYLOAD,
		O_MLP_IN,
		O_VS_DIM,
		O_VS_K,
		O_SESSIONS,
		O_STICKY,
		O_SEED,
		O_JSON,
		O_WARMUP,
		O_SOCKETS,
		O_THREADS,
	};
	static const struct option lopts[] = {
	    {"to", required_argument, NULL, O_TO},
	    {"service", required_argument, NULL, O_SERVICE},
	    {"tenant", required_argument, NULL, O_TENANT},
	    {"key", required_argument, NULL, O_KEY},
	    {"rate", required_argument, NULL, O_RATE},
	    {"arrivals", required_argument, NULL, O_ARRIVALS},
	    {"concurrency", required_argument, NULL, O_CONC},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"count", required_argument, NULL, O_COUNT},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"payload-bytes", required_argument, NULL, O_PAYLOAD},
	    {"mlp-in", required_argument, NULL, O_MLP_IN},
	    {"vs-dim", required_argument, NULL, O_VS_DIM},
	    {"vs-k", required_argument, NULL, O_VS_K},
	    {"session-keys", required_argument, NULL, O_SESSIONS},
	    {"sticky", no_argument, NULL, O_STICKY},
	    {"seed", required_argument, NULL, O_SEED},
	    {"json", no_argument, NULL, O_JSON},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"sockets", required_argument, NULL, O_SOCKETS},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool have_to = false, have_svc = false, have_tenant = false, have_arr = false;
	bool have_payload = false, have_mlp = false, have_vs = false, have_threads = false;
	uint64_t v;
	double d;
	int c;

	memset(o, 0, sizeof(*o));
	o->poisson = true;
	o->timeout_ns = 1000000000ULL;
	o->kernel = K_ECHO;
	o->payload_bytes = 64;
	o->mlp_in = 256;
	o->vs_dim = 128;
	o->vs_k = 10;
	o->seed = 1;
	o->sockets = 4;
	o->threads = 1;
	o->duration = -1;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case O_TO:
			if (load_addr_parse(optarg, &o->to))
				bad_args("--to: '%s' is not IPv4:PORT or [IPv6]:PORT", optarg);
			if (((struct sockaddr_in *)&o->to.sa)->sin_port == 0)
				bad_args("--to: '%s': port 0", optarg);
			snprintf(o->to_str, sizeof(o->to_str), "%s", optarg);
			have_to = true;
			break;
		case O_SERVICE:
			if (cpn_parse_u64(optarg, 0, 65535, &v))
				bad_args("--service: '%s' is not 0..65535", optarg);
			o->service = (uint16_t)v;
			have_svc = true;
			break;
		case O_TENANT:
			if (cpn_parse_u64(optarg, 0, UINT32_MAX, &v))
				bad_args("--tenant: '%s' is not a 32-bit number", optarg);
			o->tenant = (uint32_t)v;
			have_tenant = true;
			break;
		case O_KEY:
			if (cpn_key_parse(optarg, o->key))
				bad_args("--key: '%s' is not 32 hex digits", optarg);
			o->have_key = true;
			break;
		case O_RATE:
			if (cpn_parse_double(optarg, 1e-3, 1e8, &o->rate))
				bad_args("--rate: '%s' is not a rate in (0, 1e8] per second",
					 optarg);
			break;
		case O_ARRIVALS:
			if (!strcmp(optarg, "poisson"))
				o->poisson = true;
			else if (!strcmp(optarg, "uniform"))
				o->poisson = false;
			else
				bad_args("--arrivals: '%s' is neither poisson nor uniform", optarg);
			have_arr = true;
			break;
		case O_CONC:
			if (cpn_parse_u64(optarg, 1, 1 << 16, &v))
				bad_args("--concurrency: '%s' is not 1..65536", optarg);
			o->conc = (uint32_t)v;
			break;
		case O_DURATION:
			if (cpn_parse_double(optarg, 1e-3, 1e7, &o->duration))
				bad_args("--duration: '%s' is not a positive number of seconds",
					 optarg);
			break;
		case O_COUNT:
			if (cpn_parse_u64(optarg, 1, SEQ_MASK / 2, &o->count))
				bad_args("--count: '%s' is not a positive count", optarg);
			break;
		case O_TIMEOUT:
			if (cpn_parse_double(optarg, 0.001, 3600e3, &d))
				bad_args("--timeout: '%s' is not a positive number of ms", optarg);
			o->timeout_ns = (uint64_t)(d * 1e6);
			break;
		case O_KERNEL:
			o->kernel = K_SYNTHETIC + 1;
			for (int k = 0; k <= K_SYNTHETIC; k++)
				if (!strcmp(optarg, kernel_names[k]))
					o->kernel = (enum kernel)k;
			if (o->kernel > K_SYNTHETIC)
				bad_args("--kernel: '%s' is not echo, mlp, vsearch or synthetic",
					 optarg);
			break;
		case O_PAYLOAD:
			if (cpn_parse_u64(optarg, 0, MAX_DGRAM, &v))
				bad_args("--payload-bytes: '%s' is not 0..65507", optarg);
			o->payload_bytes = (uint32_t)v;
			have_payload = true;
			break;
		case O_MLP_IN:
			if (cpn_parse_u64(optarg, 1, MAX_DGRAM / 4, &v))
				bad_args("--mlp-in: '%s' is not a dimension", optarg);
			o->mlp_in = (uint32_t)v;
			have_mlp = true;
			break;
		case O_VS_DIM:
			if (cpn_parse_u64(optarg, 1, MAX_DGRAM / 4, &v))
				bad_args("--vs-dim: '%s' is not a dimension", optarg);
			o->vs_dim = (uint32_t)v;
			have_vs = true;
			break;
		case O_VS_K:
			if (cpn_parse_u64(optarg, 1, UINT32_MAX, &v))
				bad_args("--vs-k: '%s' is not a positive k", optarg);
			o->vs_k = (uint32_t)v;
			have_vs = true;
			break;
		case O_SESSIONS:
			if (cpn_parse_u64(optarg, 1, UINT32_MAX - 1, &v))
				bad_args("--session-keys: '%s' is not 1..2^32-2", optarg);
			o->session_keys = (uint32_t)v;
			break;
		case O_STICKY:
			o->sticky = true;
			break;
		case O_SEED:
			if (cpn_parse_u64(optarg, 0, UINT64_MAX, &o->seed))
				bad_args("--seed: '%s' is not a number", optarg);
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_WARMUP:
			if (cpn_parse_double(optarg, 0, 1e6, &o->warmup))
				bad_args("--warmup: '%s' is not a number of seconds", optarg);
			break;
		case O_SOCKETS:
			if (cpn_parse_u64(optarg, 1, MAX_SOCKETS, &v))
				bad_args("--sockets: '%s' is not 1..64", optarg);
			o->sockets = (int)v;
			break;
		case O_THREADS:
			if (cpn_parse_u64(optarg, 1, 2, &v))
				bad_args("--threads: '%s' is neither 1 nor 2", optarg);
			o->threads = (int)v;
			have_threads = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad_args("%s", "unknown option or missing argument");
		}
	}
	if (optind != argc)
		bad_args("unexpected argument '%s'", argv[optind]);
	if (!have_to || !have_svc || !have_tenant)
		bad_args("%s", "--to, --service and --tenant are required");
	if ((o->rate > 0) == (o->conc > 0))
		bad_args("%s", "give one of --rate (open loop) and --concurrency (closed loop)");
	if (have_arr && o->rate <= 0)
		bad_args("%s", "--arrivals goes with --rate");
	if (have_threads && o->rate <= 0)
		bad_args("%s", "--threads goes with --rate (the closed loop has one thread)");
	if ((o->duration > 0) == (o->count > 0))
		bad_args("%s", "give one of --duration and --count");
	if (o->sticky && !o->session_keys)
		bad_args("%s", "--sticky needs --session-keys");
	if (have_payload && o->kernel != K_ECHO && o->kernel != K_SYNTHETIC)
		bad_args("%s", "--payload-bytes goes with --kernel echo or synthetic");
	if (have_mlp && o->kernel != K_MLP)
		bad_args("%s", "--mlp-in goes with --kernel mlp");
	if (have_vs && o->kernel != K_VSEARCH)
		bad_args("%s", "--vs-dim and --vs-k go with --kernel vsearch");
	if (o->kernel == K_SYNTHETIC && !have_payload)
		o->payload_bytes = 0;

	uint32_t plen = o->kernel == K_MLP	 ? 4 * o->mlp_in
			: o->kernel == K_VSEARCH ? 4 + 4 * o->vs_dim
						 : o->payload_bytes;
	uint32_t hl = CPN_HDR_LEN + (o->have_key ? CPN_TAG_LEN : 0);

	if (hl + plen > MAX_DGRAM)
		bad_args("%s", "the request would not fit in one datagram (65507 bytes)");
	if (o->duration < 0)
		o->duration = 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "reflect"))
		return load_reflect_main(argc - 1, argv + 1);

	struct opts o;
	struct gen *g;
	struct summary s;
	int rc;

	parse_args(argc, argv, &o);
	g = aligned_alloc(64, (sizeof(*g) + 63) & ~(size_t)63);
	if (!g) {
		fprintf(stderr, "cpn-load: out of memory\n");
		return 1;
	}
	if (gen_init(g, &o)) {
		gen_free(g);
		free(g);
		return 1;
	}

	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	g->t0 = cpn_now_ns();
	g->measure_start = g->t0 + (uint64_t)(o.warmup * 1e9);
	g->end_ns = g->measure_start + (uint64_t)(o.duration * 1e9);
	rc = o.rate <= 0 ? run_closed(g) : o.threads == 1 ? run_open1(g) : run_open2(g);
	if (rc) {
		fprintf(stderr, "cpn-load: %s: %s\n", o.to_str,
			strerror(g->tx_errno   ? g->tx_errno
				 : g->rx_errno ? g->rx_errno
					       : EIO));
		gen_free(g);
		free(g);
		return 1;
	}
	summarize(g, &s);
	if (o.json)
		report_json(g, &s);
	else
		report_text(g, &s);
	gen_free(g);
	free(g);
	return 0;
}
