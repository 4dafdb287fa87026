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
 * Requests go through cpn's client library (cpn/client.h): --sockets
 * clients, each one connected UDP socket (distinct source ports for the
 * router's flow hash), used in turn batch by batch. A batch of up to
 * LOAD_BATCH requests is one cpn_client_submit_many() (one sendmmsg); the
 * library gives each request its id, keeps its send time and deadline
 * (--timeout), and completes it with the REPLY, the BUSY or CPN_E_TIMEOUT
 * (lost): every request ends once. Nothing is resent, BUSY is not retried,
 * reply payloads are not read past the header. Each request carries whether
 * it is measured (not the warmup); answers after a request's completion
 * (late, duplicates) come back through the library's stray callback, and
 * ids grow along a client's sending, so those of measured requests are
 * known. What the library counted and ignored (not cpn, other tenants, ids
 * never sent) is `unexpected`.
 *
 * Open loop, by default in one thread: send what is due (one batch), take
 * completions (cpn_client_poll on the clients ppoll says are ready, or whose
 * next deadline has come), then wait in ppoll (timer slack 1 ns) for an
 * answer, a deadline or the next arrival, whichever comes first; the batch
 * grows by itself when the rate is high. On a small machine most of the
 * cost is waking up, and one thread wakes where two would. With --threads 2
 * a sender thread follows the schedule (clock_nanosleep to the next
 * arrival) and the main thread only receives; they take turns on a client
 * under its lock. Closed loop is one thread: poll, take completions, send
 * one new request per request completed.
 * Payloads come from a pool made at start and are not copied
 * (CPN_REQ_NOCOPY): nothing is allocated per request. Clock readings are
 * one per batch.
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

#include "cpn/client.h"
#include "cpn/proto.h"
#include "cpn-load.h"
#include "hist.h"
#include "cpn_seal.h"
#include "cpn_util.h"

#define SEQ_BITS     40
#define SEQ_MASK     ((1ULL << SEQ_BITS) - 1)
#define MAX_SOCKETS  64
#define PAYLOAD_POOL 16 /* distinct payloads per run (mlp, vsearch) */
#define MAX_DGRAM    65507
#define MAX_PAYLOAD  (16u << 20) /* echo: above a datagram, a large message of fragments */

enum kernel { K_ECHO, K_MLP, K_VSEARCH, K_SYNTHETIC };
static const char *const kernel_names[] = {"echo", "mlp", "vsearch", "synthetic"};

struct opts {
	struct load_addr to;
	char to_str[80];
	uint16_t service;
	uint32_t tenant;
	bool have_key;
	__u64 key[2];
	const char *key_hex;
	const char *pkey_hex; /* payload key: requests sealed, replies opened */
	bool read_replies;    /* reply payloads read (and opened), not discarded */
	double rate;	      /* open loop when > 0 */
	bool poisson;	      /* else uniform */
	uint32_t conc;	      /* closed loop when > 0 */
	double duration;      /* seconds, or */
	uint64_t count;	      /* requests */
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

/* One client of the library (one socket, one source port). With two
 * threads, the sender and the receiver take turns on it under `lock`.
 */
struct load_client {
	struct cpn_client *cl;
	pthread_mutex_t lock;
	bool measuring;		 /* its first measured request was sent */
	uint64_t first_measured; /* ... at this time, CLOCK_MONOTONIC ns */
	struct gen *g;
} __attribute__((aligned(64)));

struct gen {
	const struct opts *o;
	struct load_client cls[MAX_SOCKETS];
	int nfds;
	uint64_t t0, measure_start, end_ns; /* end_ns: duration mode only */
	uint32_t hdr_len;
	uint8_t *payloads;
	uint32_t payload_len, npayloads;

	/* Shared between the threads. */
	_Atomic uint64_t sent_all __attribute__((aligned(64))); /* requests taken, warmup too */
	atomic_bool sender_done;

	/* Sender side. */
	uint64_t next_seq __attribute__((aligned(64)));
	uint64_t rng[4];
	int rr;
	struct cpn_req reqs[LOAD_BATCH];
	uint64_t ids[LOAD_BATCH];
	uint64_t sent, first_send, last_send, window_end;
	uint64_t gap_n, prev_send;
	double gap_sum, gap_sumsq;
	uint64_t lag_n, lag_max;
	double lag_sum;
	int tx_err; /* a send failed for good (enum cpn_err) */

	/* Receiver side (its own cache lines: the threads write both sides). */
	uint64_t resolved __attribute__((aligned(64)));
	int rx_err;
	struct cpn_completion comps[LOAD_BATCH * 4];
	struct load_hist *hist;
	uint64_t replied, busy, lost, late, dup;
	uint64_t reply_status[256], busy_status[256];
	uint64_t *share; /* per node_id */
	/* From the library's counters, at the end. */
	uint64_t unexpected, send_errors;
	uint64_t unsealed; /* replies that did not open (--payload-key), counted in lost */
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
	    "usage: cpn-load --to VIP:PORT --service S --tenant T [--key HEX32] [--payload-key "
	    "HEX64]\n"
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
	    "  --payload-key HEX64   tenant payload key: payloads sealed end to end\n"
	    "                        (XChaCha20-Poly1305), replies read and opened\n"
	    "  --read-replies        read reply payloads (by default only headers are)\n"
	    "  --kernel K            payload: echo (--payload-bytes random bytes, 64; up\n"
	    "                        to 16 MiB, above a datagram as fragments),\n"
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
	    "  sealed, unseal_failed   --payload-key given; replies that did not open\n"
	    "                 (counted in lost)\n"
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

/* An answer to a request no longer in flight: late or a duplicate, counted
 * once the measured part began (request ids are unpredictable, so they do
 * not say which part a request was of): a duplicate from then on, a late
 * answer from one timeout after its first send on (no measured request
 * expired before).
 */
static void on_stray(void *arg, uint64_t id, int kind)
{
	struct load_client *lc = arg;

	(void)id;
	if (!lc->measuring ||
	    (kind == CPN_STRAY_LATE && cpn_now_ns() - lc->first_measured < lc->g->o->timeout_ns))
		return;
	if (kind == CPN_STRAY_LATE)
		lc->g->late++;
	else
		lc->g->dup++;
}

static int open_clients(struct gen *g, uint64_t inflight)
{
	const struct opts *o = g->o;
	uint64_t per = (inflight + (uint64_t)o->sockets - 1) / (uint64_t)o->sockets;
	uint64_t tmo_ms = (o->timeout_ns + 999999) / 1000000;

	for (int i = 0; i < o->sockets; i++) {
		struct load_client *lc = &g->cls[i];
		int err, rc = 0;

		lc->g = g;
		pthread_mutex_init(&lc->lock, NULL);
		lc->cl = cpn_client_open(o->to_str, o->service, o->tenant, &err);
		if (!lc->cl) {
			fprintf(stderr, "cpn-load: cannot send to %s: %s\n", o->to_str,
				err == CPN_E_SYS ? strerror(errno) : cpn_strerror(err));
			return -1;
		}
		g->nfds++;
		/* What cpn-load measures: every answer as it comes, nothing resent,
		 * replies not read past the header, datagrams up to the UDP limit.
		 */
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_MAX_INFLIGHT, per < 16 ? 16 : per);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_TIMEOUT_MS, tmo_ms ? tmo_ms : 1);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_BUSY_RETRY, 0);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_MAX_RETRIES, 0);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_DISCARD_REPLY,
					!(o->read_replies || o->pkey_hex));
		if (o->pkey_hex)
			rc |= cpn_client_set_payload_key(lc->cl, o->pkey_hex);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_DGRAM_MAX, MAX_DGRAM);
		rc |= cpn_client_setopt(lc->cl, CPN_OPT_MAX_MESSAGE, MAX_PAYLOAD + 4096);
		if (o->have_key)
			rc |= cpn_client_set_key(lc->cl, o->key_hex);
		if (rc) {
			fprintf(stderr, "cpn-load: cannot set up a client: %s\n", cpn_strerror(rc));
			return -1;
		}
		cpn_client_on_stray(lc->cl, on_stray, lc);
	}
	return 0;
}

static int gen_init(struct gen *g, const struct opts *o)
{
	memset(g, 0, sizeof(*g));
	g->o = o;

	/* In flight at most: what can be outstanding within a timeout, twice. */
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
	if (want > (double)(1ULL << 24))
		want = (double)(1ULL << 24);

	g->hist = malloc(sizeof(*g->hist));
	g->share = calloc(65536, sizeof(*g->share));
	if (!g->hist || !g->share || make_payloads(g)) {
		fprintf(stderr, "cpn-load: out of memory\n");
		return -1;
	}
	load_hist_init(g->hist);
	rng_seed(g->rng, o->seed);
	g->hdr_len = CPN_HDR_LEN + (o->have_key ? CPN_TAG_LEN : 0);
	for (int i = 0; i < LOAD_BATCH; i++)
		g->reqs[i] = (struct cpn_req){.len = g->payload_len,
					      .flags = CPN_REQ_NOCOPY | CPN_REQ_NO_RETRY |
						       (o->sticky ? CPN_REQ_STICKY : 0)};
	return open_clients(g, (uint64_t)want / 2);
}

static void gen_free(struct gen *g)
{
	for (int i = 0; i < g->nfds; i++) {
		cpn_client_close(g->cls[i].cl);
		pthread_mutex_destroy(&g->cls[i].lock);
	}
	free(g->hist);
	free(g->share);
	free(g->payloads);
}

/* What the library counted that cpn-load reports: answers to nothing of
 * this run, and sends refused or retried.
 */
static void gen_collect(struct gen *g)
{
	for (int i = 0; i < g->nfds; i++) {
		struct cpn_client_stats st;

		cpn_client_stats(g->cls[i].cl, &st, sizeof(st));
		g->unexpected += st.malformed + st.bad_type + st.foreign + st.unknown;
		g->send_errors += st.send_refused + st.send_full;
		g->unsealed += st.unseal_failed;
	}
}

/* ---- sending -------------------------------------------------------------- */

static void lc_lock(struct gen *g, struct load_client *lc)
{
	if (g->o->threads > 1)
		pthread_mutex_lock(&lc->lock);
}

static void lc_unlock(struct gen *g, struct load_client *lc)
{
	if (g->o->threads > 1)
		pthread_mutex_unlock(&lc->lock);
}

/* Send n requests (n <= LOAD_BATCH) as one batch of one client. pend: their
 * arrivals (open loop), or NULL with `measured` for all (closed loop).
 * Returns how many went out (the first ones); the rest are for a later
 * call. -1: fatal error.
 */
static int tx_batch(struct gen *g, int n, const struct pend *pend, bool measured)
{
	const struct opts *o = g->o;
	struct load_client *lc = &g->cls[g->rr];

	for (int i = 0; i < n; i++) {
		uint64_t seq = g->next_seq + (uint64_t)i;
		bool m = pend ? pend[i].measured : measured;

		if (o->session_keys)
			g->reqs[i].session_key = (uint32_t)(1 + rng_next(g->rng) % o->session_keys);
		g->reqs[i].data = g->payloads + (size_t)(seq % g->npayloads) * g->payload_len;
		g->reqs[i].user = m;
	}

	uint64_t ts = cpn_now_ns();

	lc_lock(g, lc);
	int off = cpn_client_submit_many(lc->cl, g->reqs, n, g->ids);

	if (off > 0 && !lc->measuring) {
		for (int i = 0; i < off; i++)
			if (g->reqs[i].user) {
				lc->first_measured = ts;
				lc->measuring = true;
				break;
			}
	}
	lc_unlock(g, lc);
	g->rr = (g->rr + 1) % g->nfds;
	if (off == CPN_E_FULL)
		return 0;
	if (off < 0) {
		g->tx_err = off;
		return -1;
	}

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
	atomic_store_explicit(&g->sent_all, g->next_seq, memory_order_release);
	return off;
}

/* Wait a little for room: every client is full. */
static void tx_backoff(struct gen *g)
{
	(void)g;
	usleep(200);
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
	int k = sc->np, sent = tx_batch(g, k, sc->pend, false);

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

static void rx_one(struct gen *g, const struct cpn_completion *c)
{
	g->resolved++;
	if (!c->user)
		return; /* warmup */
	switch (c->status) {
	case 0:
	case CPN_E_REMOTE:
		g->replied++;
		if (c->status)
			g->reply_status[c->remote]++;
		g->share[c->node_id]++;
		load_hist_record(g->hist, (c->latency_ns + 500) / 1000);
		break;
	case CPN_E_BUSY:
		g->busy++;
		g->busy_status[c->remote]++;
		break;
	default: /* CPN_E_TIMEOUT: no answer in time */
		g->lost++;
	}
}

/* Take what one client has completed (answers read, deadlines passed).
 * Returns completions, -1 on a fatal error.
 */
static int rx_drain(struct gen *g, struct load_client *lc)
{
	const int max = (int)(sizeof(g->comps) / sizeof(g->comps[0]));
	int total = 0, n;

	do {
		lc_lock(g, lc);
		n = cpn_client_poll(lc->cl, g->comps, max, 0);
		lc_unlock(g, lc);
		if (n < 0) {
			g->rx_err = n;
			return -1;
		}
		for (int i = 0; i < n; i++)
			rx_one(g, &g->comps[i]);
		total += n;
	} while (n == max);
	return total;
}

/* Wait up to timeout_ns for answers (or a client's next deadline), take
 * what completed. -1 on a fatal error.
 */
static int rx_poll(struct gen *g, uint64_t timeout_ns)
{
	struct pollfd p[MAX_SOCKETS];
	int got = 0;

	for (int i = 0; i < g->nfds; i++) {
		int ms = cpn_client_next_ms(g->cls[i].cl);

		if (ms >= 0 && (uint64_t)ms * 1000000ULL < timeout_ns)
			timeout_ns = (uint64_t)ms * 1000000ULL;
		p[i] = (struct pollfd){.fd = cpn_client_fd(g->cls[i].cl), .events = POLLIN};
	}
	struct timespec ts = cpn_ns_timespec(timeout_ns);

	if (ppoll(p, (nfds_t)g->nfds, &ts, NULL) < 0)
		return 0;
	for (int i = 0; i < g->nfds; i++) {
		if (!p[i].revents && cpn_client_next_ms(g->cls[i].cl) != 0)
			continue;
		int r = rx_drain(g, &g->cls[i]);

		if (r < 0)
			return -1;
		got += r;
	}
	return got;
}

/* Every request sent has completed. */
static bool rx_all_done(struct gen *g)
{
	return g->resolved == atomic_load_explicit(&g->sent_all, memory_order_acquire);
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
		if (atomic_load_explicit(&g->sender_done, memory_order_acquire) && rx_all_done(g))
			break;
	}
	pthread_join(tx, NULL);
	if (g->tx_err || g->rx_err)
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
		if (sc.done) {
			if (rx_all_done(g))
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
			uint64_t inflight = g->next_seq - g->resolved, want;

			want = inflight < o->conc ? o->conc - inflight : 0;
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
	       "\"send_errors\": %llu, \"sealed\": %s, \"unseal_failed\": %llu, ",
	       (unsigned long long)g->late, (unsigned long long)g->dup,
	       (unsigned long long)g->unexpected, (unsigned long long)g->send_errors,
	       g->o->pkey_hex ? "true" : "false", (unsigned long long)g->unsealed);
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
	       (unsigned long long)g->unexpected, (unsigned long long)g->send_errors);
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
		O_PAYLOAD_KEY,
		O_READ_REPLIES,
	};
	static const struct option lopts[] = {
	    {"to", required_argument, NULL, O_TO},
	    {"service", required_argument, NULL, O_SERVICE},
	    {"tenant", required_argument, NULL, O_TENANT},
	    {"key", required_argument, NULL, O_KEY},
	    {"payload-key", required_argument, NULL, O_PAYLOAD_KEY},
	    {"read-replies", no_argument, NULL, O_READ_REPLIES},
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
			o->key_hex = optarg;
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
			if (cpn_parse_u64(optarg, 0, MAX_PAYLOAD, &v))
				bad_args("--payload-bytes: '%s' is not 0..16777216", optarg);
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
		case O_PAYLOAD_KEY: {
			uint8_t k[32];

			if (cpn_seal_key_parse(optarg, k))
				bad_args("--payload-key: '%s' is not 64 hex digits", optarg);
			o->pkey_hex = optarg;
			break;
		}
		case O_READ_REPLIES:
			o->read_replies = true;
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

	if (hl + plen > MAX_DGRAM && o->kernel != K_ECHO)
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
			cpn_strerror(g->tx_err	 ? g->tx_err
				     : g->rx_err ? g->rx_err
						 : CPN_E_SYS));
		gen_free(g);
		free(g);
		return 1;
	}
	gen_collect(g);
	summarize(g, &s);
	if (o.json)
		report_json(g, &s);
	else
		report_text(g, &s);
	gen_free(g);
	free(g);
	return 0;
}
