// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-sim: discrete-event simulation of cpn's node choice at scale.
 *
 * Every decision is made by the policy core itself, cpn_choose() of
 * include/cpn/sched.h (late binding: the functions of include/cpn/late.h),
 * on a router's own view of the nodes (struct cpn_node, exactly what the
 * XDP router and cpn-fwd read), and every view update uses the same
 * functions the data planes use: cpn_node_steered() for a request sent,
 * cpn_learn_load() / cpn_learn_svc() for a LOAD heartbeat or the load
 * carried by a REPLY.
 *
 * The model:
 *   - N nodes, each one FCFS server (capacity 1), service ~ Exp(mean / speed),
 *     speeds 1 unless --speeds gives a mix (node i at LIST[i mod n], scaled
 *     so that they average 1: the mean is that of the fleet's capacity).
 *   - Poisson arrivals at rho * N / mean in all, each to a
 *     router out of R: uniformly (ECMP), or with --hot F:S a fraction F of
 *     the routers takes a share S of the requests. A service has at most
 *     --group-size candidates (default CPN_MAX_SVC_NODES: 1000 nodes are one
 *     service); the scanning policies (least, round-robin) at most
 *     CPN_SVC_SCAN_MAX (64), so for them the N nodes are split into equal
 *     services ("groups"); a request belongs to a group with probability
 *     proportional to its size: every node sees the same rho.
 *   - Each router holds its own view of every node. Heartbeats: each node
 *     sends a LOAD to every router every --report-ms, at its own phase.
 *     The policies that learn load in band (jiq, jiq-rand, p2c-probe) use
 *     heartbeats for liveness only, as a worker would: a node sends a
 *     router a LOAD only when it has sent that router nothing (reply or
 *     LOAD) for --liveness-ms, looking 4 times per interval, and stale_ms
 *     is 3 intervals. Modes:
 *       reports      the view changes only on those LOADs (no outstanding)
 *       outstanding  plus cpn_node_steered() on every request the router
 *                    sends; the next LOAD resets it (cpn_learn_load)
 *       router       as router.h: plus the load carried by every REPLY,
 *                    learned by the router that steered the request
 *     --report-ms 0 gives every router the exact state at every change.
 *   - jiq: each router keeps a struct cpn_tokens per service, reached by
 *     sched.h through cpn_tokens_at(); a node marks its reply with a token
 *     by its rule (--token-rule: when it falls idle, when it holds fewer
 *     than T, or adapting T between 1 and 2 to the share of its requests
 *     that had to wait) and the router that steered the request pushes it
 *     with cpn_token_push() when the reply arrives, as router.h does.
 *     jiq-rand sends each token to a random router instead (a message of
 *     its own unless that is the steering router). p2c-probe probes the
 *     two nodes p2c is about to compare and gets their exact state (two
 *     messages each, answered at once).
 *   - Replies reach the router after half the node's round trip (--path-us)
 *     plus --reply-us; a token is usable --token-us after its reply.
 *   - Response time = queueing + service (+ the node's round trip with
 *     --path-us, + --reply-us), reported in units of the mean service time.
 *   - Messages beyond each request and its reply are counted: LOADs,
 *     probes and their answers, tokens sent on their own; per request,
 *     from one heartbeat interval into the run on (where it lasts that
 *     long), so that every heartbeat looks back over time the run had.
 *   - Late binding (`dispatch: late`, policies lateN, `late` with
 *     --late-bound N): each router keeps late.h's held[] (what it sent each
 *     node and has not had answered) and one struct cpn_late_queue per
 *     group, as cpn-fwd does; every request is class 0. On arrival,
 *     cpn_late_admit: BIND sends it now to the node with a free slot of
 *     the n x capacity (cpn_late_sent, then as any request sent); HOLD
 *     pushes it (the handle: the simulated request); EARLY (no candidate
 *     to wait for) binds it by the early policy, p2c through cpn_choose()
 *     (a slot taken too: every answer frees one); BUSY refuses it (the
 *     queue at its limit, CPN_LATE_QUEUE_DEFAULT), counted as `busy`,
 *     its share as `refused`. When the reply reaches the router that sent
 *     the request, cpn_late_answered, then cpn_late_next until NONE. While
 *     a router holds requests of a group, cpn_late_expire runs at its
 *     decisions at most once a millisecond, as in cpn-fwd (in the modes
 *     that count what a router sends: cpn_node_steered starts the clock of
 *     a node's answer; the sim's nodes never die, but one may be slow long
 *     enough to look stuck). A held request's response time counts from
 *     its arrival at the router. Each router's bound is its own: with R
 *     routers a node may have n x R requests.
 *   - The pseudo-policy `central` is one FCFS queue per group feeding its
 *     nodes (M/M/k): the ideal no router reaches, measured as a baseline.
 *
 * Validation (--validate): k = 8 nodes, one group, one router at rho 0.8:
 * `central` and late binding with n = 1 (exact slots, the same central
 * queue made of the router's decisions) against M/M/k and the real
 * `random` policy against M/M/1 (tools/cpn-sim/mmk.h); mean, p50 and p99
 * must be within --tolerance.
 *
 * Deterministic for a given --seed: the arrival sequence (times, routers,
 * groups, flows, service times) comes from its own generator and is the same
 * for every policy; the policy's 64 random bits come from another, jiq-rand's
 * token destinations from a third. Bounded: every run ends when its
 * requests have arrived and been served.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/utsname.h>

#include "cpn/maps.h"
#include "cpn/proto.h"

/* ---- the policy core, on a router's view -------------------------------- */

struct sim_view {
	struct cpn_node *nodes;	 /* [0 .. n], index = node id, 0 unused */
	struct cpn_tokens *toks; /* [n_svcs]: jiq's idle tokens, by service id */
	__u32 n, n_svcs;
};

static inline struct cpn_node *sim_node_at(struct sim_view *v, __u32 id)
{
	if (id == 0 || id > v->n)
		return NULL;
	return &v->nodes[id];
}

static inline struct cpn_tokens *sim_tokens_at(struct sim_view *v, __u32 svc_id)
{
	if (!v->toks || svc_id >= v->n_svcs)
		return NULL;
	return &v->toks[svc_id];
}

#define CPN_CTX			   struct sim_view
#define cpn_node_at(ctx, id)	   sim_node_at(ctx, id)
#define cpn_tokens_at(ctx, svc_id) sim_tokens_at(ctx, svc_id)
#include "cpn/sched.h"
#include "cpn/late.h"

#include "mmk.h"
#include "cpn_util.h"

#define T0_NS	       1000000000000ULL /* the simulation starts at 1000 s of monotonic time */
#define POL_CENTRAL    (CPN_POL_MAX + 1)
#define POL_JIQ_RAND   (CPN_POL_MAX + 2) /* jiq, each token sent to a random router */
#define POL_P2C_PROBE  (CPN_POL_MAX + 3) /* p2c on two nodes probed at decision time */
#define POL_LATE       (CPN_POL_MAX + 4) /* late1 .. late64: dispatch late, JBSQ(n) */
#define N_POL	       (POL_LATE + CPN_LATE_BOUND_MAX)
#define MAX_SPEEDS     16
#define LIVE_TICKS     4	  /* a suppressed heartbeat is considered 4 times per interval */
#define LATE_EXPIRE_NS 1000000ULL /* cpn_late_expire at most this often, as cpn-fwd */
#define MAX_ROUTERS    4096
#define MAX_LIST       16
#define HIST_SUB_BITS  9 /* 512 linear sub-buckets per octave: < 0.2 % error */
#define HIST_SUB       (1 << HIST_SUB_BITS)
#define HIST_MIN_EXP   (-24) /* values below 2^-24 mean service times: bucket 0 */
#define HIST_OCTAVES   48
#define HIST_N	       (HIST_OCTAVES * HIST_SUB)

enum sim_mode {
	MODE_REPORTS = 0,
	MODE_OUTSTANDING = 1,
	MODE_ROUTER = 2,
	N_MODES,
};

static const char *const mode_names[N_MODES] = {"reports", "outstanding", "router"};

/* n of JBSQ(n) for a late binding policy (lateN), else 0. */
static int pol_late(int p)
{
	return p >= POL_LATE && p < N_POL ? p - POL_LATE + 1 : 0;
}

static const char *pol_name(int p)
{
	static char late_names[CPN_LATE_BOUND_MAX][8];

	if (pol_late(p)) {
		char *name = late_names[pol_late(p) - 1];

		if (!name[0])
			snprintf(name, sizeof(late_names[0]), "late%u", pol_late(p));
		return name;
	}
	switch (p) {
	case POL_CENTRAL:
		return "central";
	case POL_JIQ_RAND:
		return "jiq-rand";
	case POL_P2C_PROBE:
		return "p2c-probe";
	default:
		return cpn_policy_names[p];
	}
}

/* The policy of sched.h that a simulated one runs (late binding: its
 * early policy, for a request late.h finds no candidate to wait for).
 */
static int pol_core(int p)
{
	if (pol_late(p))
		return CPN_POL_P2C;
	return p == POL_JIQ_RAND ? CPN_POL_JIQ : p == POL_P2C_PROBE ? CPN_POL_P2C : p;
}

/* Reads the load in the view. Late binding reads the router's own count
 * of what it sent and was not answered, exact in every mode; the modes
 * still differ for it (below, pol_per_mode).
 */
static int pol_load_aware(int p)
{
	if (pol_late(p))
		return 0;
	p = pol_core(p);
	return p == CPN_POL_P2C || p == CPN_POL_LEAST || p == CPN_POL_JIQ;
}

/* Run in every mode: the load-aware policies, and late binding, whose
 * count of a node's slots is its own but whose liveness (a node that does
 * not answer is stuck, cpn_late_expire) needs what a router sends counted
 * (cpn_node_steered, not in mode reports).
 */
static int pol_per_mode(int p)
{
	return pol_load_aware(p) || pol_late(p);
}

/* Nodes send idle tokens. */
static int pol_tokens(int p)
{
	return pol_core(p) == CPN_POL_JIQ;
}

/* The load comes in band (tokens, replies, probes): heartbeats are for
 * liveness only, slow and suppressed (see the header).
 */
static int pol_liveness_only(int p)
{
	return pol_tokens(p) || p == POL_P2C_PROBE;
}

/* Scanning policies: services of at most CPN_SVC_SCAN_MAX nodes (late
 * binding's pick scans as `least` does).
 */
static int pol_late(int p);
static int pol_scans(int p)
{
	return p == CPN_POL_LEAST || p == CPN_POL_RR || pol_late(p);
}

/* ---- random numbers ------------------------------------------------------ */

/* Uniform in (0, 1]. */
static double rng_unit(uint64_t *s)
{
	return ((double)(cpn_splitmix64(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double rng_exp(uint64_t *s, double mean)
{
	return -log(rng_unit(s)) * mean;
}

static __u32 rng_below(uint64_t *s, __u32 n)
{
	return (__u32)(((cpn_splitmix64(s) >> 32) * (__u64)n) >> 32);
}

/* ---- histogram of response times (units of the mean service time) -------- */

struct hist {
	__u64 b[HIST_N];
	__u64 n;
	double sum;
};

static __u32 hist_bucket(double x)
{
	int e;
	double m;
	long idx;

	if (!(x > 0))
		return 0;
	m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
	e -= 1;		  /* x = (2m) 2^e, 2m in [1, 2) */
	if (e < HIST_MIN_EXP)
		return 0;
	if (e >= HIST_MIN_EXP + HIST_OCTAVES)
		return HIST_N - 1;
	idx = (long)(e - HIST_MIN_EXP) * HIST_SUB + (long)((2 * m - 1) * HIST_SUB);
	return idx >= HIST_N ? HIST_N - 1 : (__u32)idx;
}

static double hist_lower(__u32 i)
{
	int e = (int)(i / HIST_SUB) + HIST_MIN_EXP;

	return ldexp(1.0 + (double)(i % HIST_SUB) / HIST_SUB, e);
}

static void hist_add(struct hist *h, double x)
{
	h->b[hist_bucket(x)]++;
	h->n++;
	h->sum += x;
}

/* The q-quantile, interpolated linearly inside its bucket. */
static double hist_quantile(const struct hist *h, double q)
{
	double want = q * (double)h->n, acc = 0;

	if (!h->n)
		return NAN;
	for (__u32 i = 0; i < HIST_N; i++) {
		if (!h->b[i])
			continue;
		if (acc + (double)h->b[i] >= want) {
			double lo = hist_lower(i), hi = hist_lower(i + 1);

			return lo + (hi - lo) * (want - acc) / (double)h->b[i];
		}
		acc += (double)h->b[i];
	}
	return hist_lower(HIST_N - 1);
}

/* ---- the simulation ------------------------------------------------------- */

struct sim_cfg {
	int nodes, routers, group_size, policy, mode;
	double rho, mean_us, report_us, path_us;
	double live_us;		    /* liveness heartbeats of the in-band policies, µs */
	double reply_us, token_us;  /* extra delay of every reply; of a token past its reply */
	double hot_frac, hot_share; /* hot_frac of the routers take hot_share of the requests */
	double speeds[MAX_SPEEDS];  /* node id serves at speeds[(id - 1) % n_speeds] */
	int n_speeds;
	int token_below; /* token when a node holds fewer after a completion; 0: adaptive */
	__u32 stale_ms, live_stale_ms;
	long long requests, warmup;
	__u64 seed;
};

struct req {
	double t0;  /* arrival at the router, µs */
	double svc; /* service time at speed 1, µs */
	__u16 router;
	__u8 measured;
};

struct fifo {
	struct req *buf;
	__u32 cap, head, len;
};

struct node {
	struct fifo q; /* waiting, not in service */
	struct req cur;
	__u32 busy;
	__u32 group;
	double rtt_us;	   /* path round trip */
	double speed;	   /* service rate, in units of a speed-1 node's */
	double svc_us;	   /* mean service time, µs */
	double *last_sent; /* [R]: when it last sent each router a reply or a LOAD */
	double waited;	   /* adaptive token rule: share of arrivals that waited, EWMA */
};

enum ev_kind {
	EV_DEPART,  /* node finishes cur */
	EV_DELIVER, /* request reaches the node */
	EV_REPLY,   /* reply reaches the router */
	EV_TOKEN,   /* a token travelling on its own reaches router rq.router */
};

struct event {
	double t;
	struct req rq;
	__u32 node;
	__u16 qd, infl; /* EV_REPLY: the load it carries */
	__u8 kind;
	__u8 token; /* EV_REPLY: marked CPN_F_TOKEN */
};

struct heap {
	struct event *e;
	size_t n, cap;
};

struct group {
	__u32 first, n; /* node ids first .. first + n - 1 */
	struct fifo q;	/* central: the shared queue */
	__u32 *idle;	/* central: idle node ids */
	__u32 n_idle;
};

struct sim {
	const struct sim_cfg *c;
	struct node *nodes; /* [1 .. N] */
	struct group *groups;
	__u32 n_groups;
	__u32 *group_of_slot; /* node index 0..N-1 -> group, for proportional choice */
	struct cpn_node *view_mem;
	struct sim_view *views;	    /* [R] */
	struct cpn_service *svcs;   /* [R][G] */
	struct cpn_maglev *mgs;	    /* [G], maglev only */
	struct cpn_tokens *tok_mem; /* [R][G], jiq only */
	double *last_sent_mem;	    /* [N + 1][R], suppressed heartbeats only */
	struct heap heap;
	__u32 *report_order; /* node ids by report phase */
	double *phase;	     /* [1 .. N] */
	uint64_t rng_arr, rng_pol, rng_tok;
	double now;
	double unit_us; /* response times are counted in this unit: the mean */
	double hb_us;	/* heartbeat interval; 0: every change reaches every router */
	double tick_us; /* heartbeats are considered every tick_us */
	__u32 stale_ms;
	int suppress; /* no heartbeat to a router the node replied through lately */
	/* late binding: each router's held[] (late.h's, indexed by node id)
	 * and one queue per group; the requests held, by handle
	 */
	__u32 *late_held;	       /* [R][CPN_MAX_NODES] */
	struct cpn_late_queue *late_q; /* [R][G], entries allocated at the first hold */
	__u64 *late_exp_ns;	       /* [R][G]: the last cpn_late_expire */
	struct req *pool;
	__u32 *pool_free;
	__u32 pool_n, pool_cap, n_free;
	/* results */
	struct hist *h;
	__u32 max_q, max_held;
	long long fallback, busy, events, early, arrivals_all;
	long long arrivals, msg_hb, msg_probe, msg_token, tokens, by_token, stale_views;
	long long waited; /* requests that found their node (or central queue) busy */
	long long held;	  /* late binding: requests held at the router on arrival */
	/* the counts above at t = hb_us and at the last arrival: messages are
	 * counted in between, once every heartbeat looks back over a whole
	 * interval of the run and while requests still come
	 */
	long long c0[9], c1[9];
	int counted_from;
};

struct sim_result {
	double mean, p50, p99, p999;
	long long n, fallback, busy, events, early, arrivals_all;
	long long arrivals, msg_hb, msg_probe, msg_token, tokens, by_token, stale_views, waited;
	long long held;
	__u32 max_q, max_held, groups;
	double sim_s, wall_s, counted_from_s;
};

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		fprintf(stderr, "cpn-sim: out of memory\n");
		exit(1);
	}
	return p;
}

static void fifo_push(struct fifo *f, const struct req *r)
{
	if (f->len == f->cap) {
		__u32 ncap = f->cap ? f->cap * 2 : 8;
		struct req *nb = xcalloc(ncap, sizeof(*nb));

		for (__u32 i = 0; i < f->len; i++)
			nb[i] = f->buf[(f->head + i) % f->cap];
		free(f->buf);
		f->buf = nb;
		f->cap = ncap;
		f->head = 0;
	}
	f->buf[(f->head + f->len) % f->cap] = *r;
	f->len++;
}

static struct req fifo_pop(struct fifo *f)
{
	struct req r = f->buf[f->head];

	f->head = (f->head + 1) % f->cap;
	f->len--;
	return r;
}

static void heap_push(struct heap *h, const struct event *ev)
{
	size_t i;

	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->e = realloc(h->e, h->cap * sizeof(*h->e));
		if (!h->e) {
			fprintf(stderr, "cpn-sim: out of memory\n");
			exit(1);
		}
	}
	i = h->n++;
	while (i) {
		size_t p = (i - 1) / 2;

		if (h->e[p].t <= ev->t)
			break;
		h->e[i] = h->e[p];
		i = p;
	}
	h->e[i] = *ev;
}

static struct event heap_pop(struct heap *h)
{
	struct event top = h->e[0], last = h->e[--h->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= h->n)
			break;
		m = l + 1 < h->n && h->e[l + 1].t < h->e[l].t ? l + 1 : l;
		if (last.t <= h->e[m].t)
			break;
		h->e[i] = h->e[m];
		i = m;
	}
	if (h->n)
		h->e[i] = last;
	return top;
}

static __u64 sim_ns(double t_us)
{
	return T0_NS + (__u64)(t_us * 1000.0);
}

/* A LOAD (or the load on a REPLY or PROBE_ACK) from node `id` as a router
 * learns it.
 */
static void learn_load(struct cpn_node *v, __u32 qd, __u32 infl, __u64 now_ns)
{
	struct cpn_hdr h;

	memset(&h, 0, sizeof(h));
	h.queue_depth = cpn_htons(qd > 0xffff ? 0xffff : qd);
	h.inflight = cpn_htons(infl > 0xffff ? 0xffff : infl);
	h.capacity = cpn_htons(1);
	cpn_learn_load(v, &h, now_ns);
}

/* Node `id` reports to every router: a LOAD heartbeat (heartbeat = 1), or
 * with --report-ms 0 the exact state at every change. The in-band policies'
 * heartbeats are for liveness: the node looks LIVE_TICKS times per interval
 * and sends a router a LOAD only when it has sent that router nothing (no
 * reply, which carries its load, and no LOAD) for a whole interval. Each
 * LOAD sent is a message.
 */
static void report_to_all(struct sim *s, __u32 id, int heartbeat)
{
	struct node *nd = &s->nodes[id];
	__u64 now_ns = sim_ns(s->now);

	for (int r = 0; r < s->c->routers; r++) {
		struct cpn_node *v = &s->views[r].nodes[id];

		if (heartbeat) {
			/* Stale: its reports too old (not a suspicion, which
			 * the traffic raises and clears).
			 */
			if (now_ns - v->last_report_ns > (__u64)s->stale_ms * 1000000ULL)
				s->stale_views++;
			if (s->suppress) {
				if (s->now - nd->last_sent[r] < s->hb_us * (1 - 1e-9))
					continue;
				nd->last_sent[r] = s->now;
			}
		}
		learn_load(v, nd->q.len, nd->busy, now_ns);
		if (heartbeat)
			cpn_learn_svc(v, (__u32)nd->svc_us);
		s->msg_hb++;
	}
}

static void record(struct sim *s, const struct req *r)
{
	if (r->measured)
		hist_add(s->h, (s->now - r->t0) / s->unit_us);
}

static void start_service(struct sim *s, __u32 id, const struct req *r)
{
	struct node *nd = &s->nodes[id];
	struct event ev = {.t = s->now + r->svc / nd->speed, .node = id, .kind = EV_DEPART};

	nd->cur = *r;
	nd->busy = 1;
	heap_push(&s->heap, &ev);
}

/* A REPLY marked CPN_F_TOKEN (or a token on its own) reaches `router`: kept
 * as router.h keeps it, for a jiq service.
 */
static void token_at_router(struct sim *s, __u32 router, __u32 id)
{
	struct sim_view *v = &s->views[router];
	struct cpn_service *svc = &s->svcs[(size_t)router * s->n_groups + s->nodes[id].group];

	if (svc->policy == CPN_POL_JIQ)
		cpn_token_push(cpn_tokens_at(v, svc->id), (__u16)id, sim_ns(s->now));
}

static void late_answered(struct sim *s, __u32 router, __u32 id);

/* The reply reaches the router that steered the request. */
static void reply_at_router(struct sim *s, __u32 id, const struct req *r, __u32 qd, __u32 infl,
			    int token)
{
	record(s, r);
	if (s->c->policy == POL_CENTRAL)
		return;
	/* The router sees the answer go by: the node is answering. */
	cpn_learn_answer(&s->views[r->router].nodes[id], 0, 0, qd + infl,
			 (__u32)(s->now > r->t0 ? s->now - r->t0 : 0), sim_ns(s->now));
	if (s->c->mode == MODE_ROUTER)
		learn_load(&s->views[r->router].nodes[id], qd, infl, sim_ns(s->now));
	if (token)
		token_at_router(s, r->router, id);
	if (pol_late(s->c->policy))
		late_answered(s, r->router, id);
}

static void node_arrive(struct sim *s, __u32 id, const struct req *r)
{
	struct node *nd = &s->nodes[id];

	if (s->c->policy == POL_CENTRAL) {
		struct group *g = &s->groups[nd->group];

		if (g->n_idle) {
			start_service(s, g->idle[--g->n_idle], r);
		} else {
			fifo_push(&g->q, r);
			s->waited++;
		}
		if (g->q.len > s->max_q)
			s->max_q = g->q.len;
		return;
	}
	if (!nd->busy) {
		start_service(s, id, r);
	} else {
		fifo_push(&nd->q, r);
		s->waited++;
		nd->waited += 1.0 / 64;
	}
	nd->waited -= nd->waited / 64;
	if (nd->q.len + nd->busy > s->max_q)
		s->max_q = nd->q.len + nd->busy;
	if (s->hb_us == 0)
		report_to_all(s, id, 0);
}

/* The node's token rule, after a completion (the next request, if any, has
 * started): a token when it holds fewer than T requests. T = 1 is JIQ (a
 * token when it falls idle); T = 2 a token when nothing waits
 * (join-below-threshold). Adaptive (0, the default): T = 2 while more than
 * a tenth of the requests the node received had to wait (an EWMA over 64
 * arrivals): tokens are too few at the routers, which sent those requests
 * without one; else T = 1.
 */
#define ADAPT_WAITED 0.1
static int token_due(struct sim *s, struct node *nd)
{
	__u32 held = nd->q.len + nd->busy;
	int t = s->c->token_below;

	if (!t)
		t = nd->waited > ADAPT_WAITED ? 2 : 1;
	return held < (__u32)t;
}

static void node_depart(struct sim *s, __u32 id)
{
	const struct sim_cfg *c = s->c;
	struct node *nd = &s->nodes[id];
	struct req done = nd->cur;
	struct fifo *q = &nd->q;
	__u32 target = done.router;
	double d = nd->rtt_us / 2 + c->reply_us;
	int tok, piggy;

	if (c->policy == POL_CENTRAL)
		q = &s->groups[nd->group].q;
	nd->busy = 0;
	if (q->len) {
		struct req next = fifo_pop(q);

		start_service(s, id, &next);
	} else if (c->policy == POL_CENTRAL) {
		struct group *g = &s->groups[nd->group];

		g->idle[g->n_idle++] = id;
	}
	if (c->policy == POL_CENTRAL) {
		reply_at_router(s, id, &done, 0, 0, 0);
		return;
	}
	if (s->hb_us == 0)
		report_to_all(s, id, 0);
	if (s->suppress)
		nd->last_sent[done.router] = s->now;
	/* The token goes back with the reply to the router that steered the
	 * request; jiq-rand sends it to a random router, a message of its own
	 * unless that is the same router.
	 */
	tok = pol_tokens(c->policy) && token_due(s, nd);
	if (tok) {
		s->tokens++;
		if (c->policy == POL_JIQ_RAND)
			target = rng_below(&s->rng_tok, (__u32)c->routers);
		if (target != done.router)
			s->msg_token++;
	}
	piggy = tok && target == done.router && c->token_us == 0;
	if (d > 0) {
		struct event ev = {.t = s->now + d,
				   .rq = done,
				   .node = id,
				   .qd = (__u16)(nd->q.len > 0xffff ? 0xffff : nd->q.len),
				   .infl = (__u16)nd->busy,
				   .kind = EV_REPLY,
				   .token = (__u8)piggy};

		heap_push(&s->heap, &ev);
	} else {
		reply_at_router(s, id, &done, nd->q.len, nd->busy, piggy);
	}
	if (tok && !piggy) {
		if (d + c->token_us > 0) {
			struct event ev = {.t = s->now + d + c->token_us,
					   .rq = done,
					   .node = id,
					   .kind = EV_TOKEN};

			ev.rq.router = (__u16)target;
			heap_push(&s->heap, &ev);
		} else {
			token_at_router(s, target, id);
		}
	}
}

/* p2c-probe: the two candidates that cpn_choose()'s p2c will draw from the
 * same random bits are probed first, each answering with its exact state
 * (PROBE + PROBE_ACK: two messages per node), at once: probing at its best,
 * its round trip not charged.
 */
static void probe_two(struct sim *s, struct sim_view *v, struct cpn_service *svc, __u64 rnd,
		      __u64 now_ns)
{
	__u32 n = cpn_svc_n(svc);
	int idx[2];

	idx[0] = cpn_random_live(v, svc, (__u32)rnd, -1, now_ns);
	if (idx[0] < 0)
		return;
	idx[1] = n > 1 ? cpn_random_live(v, svc, (__u32)(rnd >> 32), idx[0], now_ns) : -1;
	for (int i = 0; i < 2; i++) {
		__u16 id;

		if (idx[i] < 0)
			continue;
		id = svc->nodes[idx[i] & (CPN_MAX_SVC_NODES - 1)];
		learn_load(&v->nodes[id], s->nodes[id].q.len, s->nodes[id].busy, now_ns);
		if (s->suppress)
			s->nodes[id].last_sent[v - s->views] = s->now;
		s->msg_probe += 2;
	}
}

/* A request bound to node `id` leaves router `v`: accounted as the data
 * planes do (in the modes that count what is sent), and on its way.
 */
static void send_req(struct sim *s, struct sim_view *v, __u32 id, const struct req *r, __u64 now_ns)
{
	if (s->c->mode >= MODE_OUTSTANDING)
		cpn_node_steered(&v->nodes[id], now_ns);
	if (s->nodes[id].rtt_us > 0) {
		struct event ev = {.t = s->now + s->nodes[id].rtt_us / 2,
				   .rq = *r,
				   .node = id,
				   .kind = EV_DELIVER};

		heap_push(&s->heap, &ev);
		return;
	}
	node_arrive(s, id, r);
}

/* ---- late binding (include/cpn/late.h) ------------------------------------ */

static __u32 *late_held(struct sim *s, __u32 router)
{
	return &s->late_held[(size_t)router * CPN_MAX_NODES];
}

static struct cpn_late_queue *late_queue(struct sim *s, __u32 router, __u32 group)
{
	return &s->late_q[(size_t)router * s->n_groups + group];
}

/* A held request's handle: its slot in the pool. */
static __u64 pool_put(struct sim *s, const struct req *r)
{
	__u32 i;

	if (s->n_free) {
		i = s->pool_free[--s->n_free];
	} else {
		if (s->pool_n == s->pool_cap) {
			s->pool_cap = s->pool_cap ? s->pool_cap * 2 : 1024;
			s->pool = realloc(s->pool, s->pool_cap * sizeof(*s->pool));
			s->pool_free = realloc(s->pool_free, s->pool_cap * sizeof(*s->pool_free));
			if (!s->pool || !s->pool_free) {
				fprintf(stderr, "cpn-sim: out of memory\n");
				exit(1);
			}
		}
		i = s->pool_n++;
	}
	s->pool[i] = *r;
	return i;
}

static struct req pool_take(struct sim *s, __u64 handle)
{
	s->pool_free[s->n_free++] = (__u32)handle;
	return s->pool[handle];
}

/* Bound to `id`: one of the router's slots there taken, and sent. Every
 * request of a late service that is sent takes a slot (an early one too):
 * every answer frees one.
 */
static void late_bind(struct sim *s, struct sim_view *v, __u32 id, const struct req *r,
		      __u64 now_ns)
{
	cpn_late_sent(late_held(s, r->router), (__u16)id);
	send_req(s, v, id, r, now_ns);
}

/* No candidate to wait for: bound early, by the service's policy (p2c). */
static void late_early(struct sim *s, struct sim_view *v, struct cpn_service *svc,
		       const struct req *r, __u32 flow_hash, __u64 now_ns)
{
	struct cpn_pick pick = {0};

	cpn_choose(v, svc, NULL, flow_hash, cpn_splitmix64(&s->rng_pol), now_ns, &pick);
	if (pick.verdict == CPN_PICK_BUSY || !pick.node_id || pick.node_id > (__u32)s->c->nodes) {
		s->busy++;
		return;
	}
	s->early++;
	if (pick.verdict == CPN_PICK_FALLBACK)
		s->fallback++;
	late_bind(s, v, pick.node_id, r, now_ns);
}

/* The router's held requests of a group, while a slot is free: bound,
 * refused (waited past max_wait_us) or bound early, in the order
 * cpn_late_next gives them.
 */
static void late_drain(struct sim *s, __u32 router, __u32 group, __u64 now_ns)
{
	struct sim_view *v = &s->views[router];
	struct cpn_service *svc = &s->svcs[(size_t)router * s->n_groups + group];
	struct cpn_late_queue *q = late_queue(s, router, group);
	__u32 *held = late_held(s, router);

	for (;;) {
		struct cpn_late_result res;
		struct req r;

		cpn_late_next(v, svc, q, held, (__u32)cpn_splitmix64(&s->rng_pol), now_ns, &res);
		if (res.verdict == CPN_LATE_NONE)
			return;
		r = pool_take(s, res.ent.handle);
		if (res.verdict == CPN_LATE_BIND)
			late_bind(s, v, res.node, &r, now_ns);
		else if (res.verdict == CPN_LATE_EARLY)
			late_early(s, v, svc, &r, 0, now_ns);
		else
			s->busy++;
	}
}

/* Slots of stuck nodes go back (cpn_late_expire), as cpn-fwd gives them
 * back: while requests are held, at most once every LATE_EXPIRE_NS. Only
 * where the router counts what it sends (cpn_node_steered starts the
 * clock of a node's answer; elsewhere none is ever stuck). Returns the
 * slots freed.
 */
static __u32 late_expire(struct sim *s, __u32 router, __u32 group, __u64 now_ns)
{
	size_t i = (size_t)router * s->n_groups + group;

	if (s->c->mode < MODE_OUTSTANDING || !s->late_q[i].len ||
	    now_ns - s->late_exp_ns[i] < LATE_EXPIRE_NS)
		return 0;
	s->late_exp_ns[i] = now_ns;
	return cpn_late_expire(&s->views[router], &s->svcs[i], late_held(s, router), NULL, now_ns);
}

/* A request of a late service reaches its router. */
static void late_arrive(struct sim *s, struct sim_view *v, struct cpn_service *svc,
			const struct req *r, __u32 group, __u32 flow_hash, __u64 rnd, __u64 now_ns)
{
	struct cpn_late_queue *q = late_queue(s, r->router, group);
	struct cpn_late_result res;

	if (late_expire(s, r->router, group, now_ns))
		late_drain(s, r->router, group, now_ns);
	cpn_late_admit(v, svc, q, late_held(s, r->router), 0, (__u32)rnd, now_ns, &res);
	switch (res.verdict) {
	case CPN_LATE_BIND:
		late_bind(s, v, res.node, r, now_ns);
		break;
	case CPN_LATE_HOLD: {
		struct cpn_late_ent e = {.handle = pool_put(s, r), .t_ns = now_ns};

		if (!q->ent)
			q->ent = xcalloc((size_t)q->cap * CPN_LATE_CLASSES, sizeof(*q->ent));
		if (cpn_late_push(q, 0, &e)) {
			pool_take(s, e.handle);
			s->busy++;
			break;
		}
		s->held++;
		if (q->len > s->max_held)
			s->max_held = q->len;
		break;
	}
	case CPN_LATE_EARLY:
		late_early(s, v, svc, r, flow_hash, now_ns);
		break;
	default:
		s->busy++;
	}
}

/* A REPLY of node `id` at the router that sent the request: a slot free,
 * taken by what the router holds.
 */
static void late_answered(struct sim *s, __u32 router, __u32 id)
{
	__u64 now_ns = sim_ns(s->now);

	cpn_late_answered(late_held(s, router), (__u16)id);
	late_expire(s, router, s->nodes[id].group, now_ns);
	late_drain(s, router, s->nodes[id].group, now_ns);
}

/* One request at a router: choose with the policy core, account, send. */
static void dispatch(struct sim *s, const struct req *r, __u32 group, __u32 flow_hash)
{
	const struct sim_cfg *c = s->c;
	struct group *g = &s->groups[group];
	struct sim_view *v;
	struct cpn_service *svc;
	struct cpn_pick pick = {0};
	__u64 rnd, now_ns;

	s->arrivals++;
	if (c->policy == POL_CENTRAL) {
		node_arrive(s, g->first, r);
		return;
	}
	v = &s->views[r->router];
	svc = &s->svcs[(size_t)r->router * s->n_groups + group];
	rnd = cpn_splitmix64(&s->rng_pol);
	now_ns = sim_ns(s->now);
	if (pol_late(c->policy)) {
		late_arrive(s, v, svc, r, group, flow_hash, rnd, now_ns);
		return;
	}
	if (c->policy == POL_P2C_PROBE)
		probe_two(s, v, svc, rnd, now_ns);
	cpn_choose(v, svc, c->policy == CPN_POL_MAGLEV ? &s->mgs[group] : NULL, flow_hash, rnd,
		   now_ns, &pick);
	if (pick.verdict == CPN_PICK_BUSY || !pick.node_id || pick.node_id > (__u32)c->nodes) {
		s->busy++;
		return;
	}
	if (pick.verdict == CPN_PICK_FALLBACK)
		s->fallback++;
	if (pick.token)
		s->by_token++;
	send_req(s, v, pick.node_id, r, now_ns);
}

/* The router a request reaches: uniform (ECMP), or with --hot F:S the first
 * round(F R) routers (at least one) take a share S of the requests.
 */
static __u16 pick_router(struct sim *s)
{
	const struct sim_cfg *c = s->c;
	__u32 r = (__u32)c->routers, hot;

	if (c->hot_share <= 0 || r < 2)
		return (__u16)rng_below(&s->rng_arr, r);
	hot = (__u32)lround(c->hot_frac * r);
	if (hot < 1)
		hot = 1;
	if (hot >= r)
		return (__u16)rng_below(&s->rng_arr, r);
	if (rng_unit(&s->rng_arr) <= c->hot_share)
		return (__u16)rng_below(&s->rng_arr, hot);
	return (__u16)(hot + rng_below(&s->rng_arr, r - hot));
}

static int cmp_phase(const void *a, const void *b, void *arg)
{
	const double *ph = arg;
	double x = ph[*(const __u32 *)a], y = ph[*(const __u32 *)b];

	return x < y ? -1 : x > y;
}

static double speed_sum(const struct sim_cfg *c)
{
	double sum = 0;

	for (int id = 1; id <= c->nodes; id++)
		sum += c->speeds[(id - 1) % c->n_speeds];
	return sum;
}

/* Candidates per service for this policy: scanning ones at most 64. */
static __u32 eff_group_size(const struct sim_cfg *c)
{
	__u32 gs = (__u32)c->group_size;

	return pol_scans(c->policy) && gs > CPN_SVC_SCAN_MAX ? CPN_SVC_SCAN_MAX : gs;
}

static void sim_init(struct sim *s, const struct sim_cfg *c, struct hist *h)
{
	uint64_t setup = c->seed ^ 0x5e7b5e7b5e7b5e7bULL;
	__u32 n = (__u32)c->nodes, gs = eff_group_size(c);
	double speed_scale = n / speed_sum(c);

	memset(s, 0, sizeof(*s));
	s->c = c;
	s->h = h;
	s->rng_arr = c->seed ^ 0xa5a5a5a5a5a5a5a5ULL;
	s->rng_pol = c->seed ^ 0x0123456789abcdefULL;
	s->rng_tok = c->seed ^ 0x7a6b5c4d3e2f1a0bULL;
	s->unit_us = c->mean_us;
	if (pol_liveness_only(c->policy)) {
		s->hb_us = c->live_us;
		s->stale_ms = c->live_stale_ms;
		s->suppress = c->mode == MODE_ROUTER;
	} else {
		s->hb_us = c->report_us;
		s->stale_ms = c->stale_ms;
	}
	s->tick_us = s->suppress ? s->hb_us / LIVE_TICKS : s->hb_us;
	s->nodes = xcalloc(n + 1, sizeof(*s->nodes));
	s->phase = xcalloc(n + 1, sizeof(*s->phase));
	s->report_order = xcalloc(n, sizeof(*s->report_order));
	s->n_groups = (n + gs - 1) / gs;
	s->groups = xcalloc(s->n_groups, sizeof(*s->groups));
	s->group_of_slot = xcalloc(n, sizeof(*s->group_of_slot));

	/* Groups of equal size (differing by at most one), ids consecutive. */
	for (__u32 g = 0, id = 1; g < s->n_groups; g++) {
		struct group *gr = &s->groups[g];

		gr->first = id;
		gr->n = n / s->n_groups + (g < n % s->n_groups);
		gr->idle = xcalloc(gr->n, sizeof(*gr->idle));
		for (__u32 i = 0; i < gr->n; i++) {
			s->nodes[id + i].group = g;
			s->group_of_slot[id + i - 1] = g;
			gr->idle[gr->n - 1 - i] = id + i;
		}
		gr->n_idle = gr->n;
		id += gr->n;
	}
	/* Each node reports at its own phase; each has its own path. */
	for (__u32 id = 1; id <= n; id++) {
		s->phase[id] = s->tick_us > 0 ? rng_unit(&setup) * s->tick_us : 0;
		s->nodes[id].rtt_us = c->path_us > 0 ? rng_unit(&setup) * c->path_us : 0;
		s->nodes[id].speed = c->speeds[(id - 1) % c->n_speeds] * speed_scale;
		s->nodes[id].svc_us = c->mean_us / s->nodes[id].speed;
		s->report_order[id - 1] = id;
	}
	qsort_r(s->report_order, n, sizeof(__u32), cmp_phase, s->phase);

	if (c->policy == POL_CENTRAL)
		return;
	if (s->suppress) {
		/* Each node sent its LOADs at some moment of the interval
		 * before t = 0.
		 */
		s->last_sent_mem = xcalloc((size_t)(n + 1) * c->routers, sizeof(double));
		for (__u32 id = 1; id <= n; id++) {
			double t = -rng_unit(&setup) * s->hb_us;

			s->nodes[id].last_sent = &s->last_sent_mem[(size_t)id * c->routers];
			for (int r = 0; r < c->routers; r++)
				s->nodes[id].last_sent[r] = t;
		}
	}
	s->views = xcalloc((size_t)c->routers, sizeof(*s->views));
	s->view_mem = xcalloc((size_t)c->routers * (n + 1), sizeof(*s->view_mem));
	s->svcs = xcalloc((size_t)c->routers * s->n_groups, sizeof(*s->svcs));
	if (pol_tokens(c->policy))
		s->tok_mem = xcalloc((size_t)c->routers * s->n_groups, sizeof(*s->tok_mem));
	if (pol_late(c->policy)) {
		s->late_held = xcalloc((size_t)c->routers * CPN_MAX_NODES, sizeof(*s->late_held));
		s->late_q = xcalloc((size_t)c->routers * s->n_groups, sizeof(*s->late_q));
		s->late_exp_ns = xcalloc((size_t)c->routers * s->n_groups, sizeof(*s->late_exp_ns));
	}
	for (int r = 0; r < c->routers; r++) {
		s->views[r].nodes = &s->view_mem[(size_t)r * (n + 1)];
		s->views[r].n = n;
		if (s->tok_mem) {
			s->views[r].toks = &s->tok_mem[(size_t)r * s->n_groups];
			s->views[r].n_svcs = s->n_groups;
		}
		for (__u32 id = 1; id <= n; id++) {
			struct cpn_node *v = &s->views[r].nodes[id];

			/* Configured by the controller, then one LOAD at t = 0. */
			v->admin = CPN_ADMIN_UP;
			v->weight = CPN_DEFAULT_WEIGHT;
			learn_load(v, 0, 0, T0_NS);
			cpn_learn_svc(v, (__u32)s->nodes[id].svc_us);
			if (s->nodes[id].rtt_us > 0)
				cpn_learn_path(v, (__u32)s->nodes[id].rtt_us);
		}
		for (__u32 g = 0; g < s->n_groups; g++) {
			struct cpn_service *svc = &s->svcs[(size_t)r * s->n_groups + g];

			svc->flags = CPN_SVC_ACTIVE;
			svc->id = (__u16)g;
			svc->policy = (__u8)pol_core(c->policy);
			svc->family = CPN_AF_INET;
			svc->stale_ms = s->stale_ms;
			if (pol_late(c->policy)) {
				svc->flags |= CPN_SVC_LATE;
				svc->late_bound = (__u16)pol_late(c->policy);
				s->late_q[(size_t)r * s->n_groups + g].cap = cpn_late_cap(svc);
			}
			/* Routers started at different times: cursors out of step. */
			svc->rr = (__u32)cpn_splitmix64(&setup);
			{
				__u16 ids[CPN_MAX_SVC_NODES];

				for (__u32 i = 0; i < s->groups[g].n; i++)
					ids[i] = (__u16)(s->groups[g].first + i);
				cpn_svc_set_nodes(svc, ids, s->groups[g].n);
			}
		}
	}
	if (c->policy == CPN_POL_MAGLEV) {
		s->mgs = xcalloc(s->n_groups, sizeof(*s->mgs));
		for (__u32 g = 0; g < s->n_groups; g++) {
			__u16 ids[CPN_MAX_SVC_NODES];
			__u32 w[CPN_MAX_SVC_NODES];

			for (__u32 i = 0; i < s->groups[g].n; i++) {
				ids[i] = (__u16)(s->groups[g].first + i);
				w[i] = CPN_DEFAULT_WEIGHT;
			}
			cpn_maglev_build(&s->mgs[g], ids, w, (int)s->groups[g].n);
		}
	}
}

static void sim_free(struct sim *s)
{
	for (__u32 id = 1; id <= (__u32)s->c->nodes; id++)
		free(s->nodes[id].q.buf);
	for (__u32 g = 0; g < s->n_groups; g++) {
		free(s->groups[g].q.buf);
		free(s->groups[g].idle);
	}
	free(s->nodes);
	free(s->phase);
	free(s->report_order);
	free(s->groups);
	free(s->group_of_slot);
	free(s->views);
	free(s->view_mem);
	free(s->svcs);
	free(s->mgs);
	free(s->tok_mem);
	free(s->last_sent_mem);
	free(s->heap.e);
	for (size_t i = 0; s->late_q && i < (size_t)s->c->routers * s->n_groups; i++)
		free(s->late_q[i].ent);
	free(s->late_q);
	free(s->late_exp_ns);
	free(s->late_held);
	free(s->pool);
	free(s->pool_free);
}

static void sim_counts(const struct sim *s, long long out[9])
{
	const long long c[9] = {s->arrivals, s->msg_hb,	     s->msg_probe, s->msg_token, s->tokens,
				s->by_token, s->stale_views, s->waited,	   s->held};

	memcpy(out, c, sizeof(c));
}

static void sim_run(const struct sim_cfg *c, struct sim_result *res)
{
	static struct hist h;
	const long long total = c->warmup + c->requests;
	const double lambda = c->rho * c->nodes / c->mean_us; /* per µs */
	double t_arr, t_rep = INFINITY, w0 = ((double)cpn_now_ns() * 1e-9);
	long long arrived = 0, cycle = 0;
	__u32 rep_i = 0;
	struct sim s;

	memset(&h, 0, sizeof(h));
	sim_init(&s, c, &h);
	t_arr = rng_exp(&s.rng_arr, 1.0 / lambda);
	if (s.hb_us > 0 && c->policy != POL_CENTRAL)
		t_rep = s.phase[s.report_order[0]];

	for (;;) {
		double t_ev = s.heap.n ? s.heap.e[0].t : INFINITY;
		double t_a = arrived < total ? t_arr : INFINITY;
		double t_r = arrived < total ? t_rep : INFINITY;

		if (t_a == INFINITY && t_ev == INFINITY)
			break;
		s.events++;
		if (!s.counted_from && t_a < INFINITY && t_a >= s.hb_us) {
			sim_counts(&s, s.c0);
			s.counted_from = 1;
		}
		if (t_r <= t_a && t_r <= t_ev) {
			/* A LOAD heartbeat from the next node in phase order. */
			__u32 id = s.report_order[rep_i];

			s.now = t_r;
			report_to_all(&s, id, 1);
			if (++rep_i == (__u32)c->nodes) {
				rep_i = 0;
				cycle++;
			}
			t_rep = s.phase[s.report_order[rep_i]] + (double)cycle * s.tick_us;
		} else if (t_a <= t_ev) {
			struct req r;
			__u32 slot, fh;
			__be32 saddr[4] = {0, 0, 0, 0};

			s.now = t_a;
			r.t0 = t_a;
			r.router = pick_router(&s);
			slot = rng_below(&s.rng_arr, (__u32)c->nodes);
			saddr[0] = (__be32)cpn_splitmix64(&s.rng_arr);
			fh = cpn_flow_hash(saddr, (__be16)cpn_splitmix64(&s.rng_arr), 1, 0);
			r.svc = rng_exp(&s.rng_arr, c->mean_us);
			r.measured = arrived >= c->warmup;
			arrived++;
			t_arr += rng_exp(&s.rng_arr, 1.0 / lambda);
			dispatch(&s, &r, s.group_of_slot[slot], fh);
			if (arrived == total)
				sim_counts(&s, s.c1);
		} else {
			struct event ev = heap_pop(&s.heap);

			s.now = ev.t;
			switch (ev.kind) {
			case EV_DEPART:
				node_depart(&s, ev.node);
				break;
			case EV_DELIVER:
				node_arrive(&s, ev.node, &ev.rq);
				break;
			case EV_TOKEN:
				token_at_router(&s, ev.rq.router, ev.node);
				break;
			default:
				reply_at_router(&s, ev.node, &ev.rq, ev.qd, ev.infl, ev.token);
				break;
			}
		}
	}
	res->n = (long long)h.n;
	res->mean = h.n ? h.sum / (double)h.n : NAN;
	res->p50 = hist_quantile(&h, 0.5);
	res->p99 = hist_quantile(&h, 0.99);
	res->p999 = hist_quantile(&h, 0.999);
	res->fallback = s.fallback;
	res->busy = s.busy;
	res->events = s.events;
	/* Counts from t = hb_us on where the run lasted that long, to the last
	 * arrival.
	 */
	res->arrivals = s.c1[0] - s.c0[0];
	res->msg_hb = s.c1[1] - s.c0[1];
	res->msg_probe = s.c1[2] - s.c0[2];
	res->msg_token = s.c1[3] - s.c0[3];
	res->tokens = s.c1[4] - s.c0[4];
	res->by_token = s.c1[5] - s.c0[5];
	res->stale_views = s.stale_views; /* all of the run */
	res->waited = s.c1[7] - s.c0[7];
	res->held = s.c1[8] - s.c0[8];
	res->early = s.early;
	res->arrivals_all = s.arrivals;
	res->max_held = s.max_held;
	res->counted_from_s = s.counted_from ? s.hb_us * 1e-6 : 0;
	res->max_q = s.max_q;
	res->groups = s.n_groups;
	res->sim_s = s.now * 1e-6;
	res->wall_s = ((double)cpn_now_ns() * 1e-9) - w0;
	sim_free(&s);
}

/* ---- repeats: median and spread ------------------------------------------ */

#define MAX_REPEATS 15

struct stat3 {
	double med, min, max;
};

struct row {
	int policy, mode, routers;
	int measured_mode; /* load-blind policies run once per router count */
	struct stat3 mean, p50, p99, p999;
	long long n, fallback, busy, early, arrivals_all;
	long long arrivals, msg_hb, msg_probe, msg_token, tokens, by_token, stale_views, waited;
	long long held;
	__u32 max_q, max_held, groups;
	double wall_s, counted_from_s;
};

/* Messages beyond the request and its reply, per request. */
static double per_req(const struct row *r, long long x)
{
	return r->arrivals ? (double)x / (double)r->arrivals : 0;
}

static double extra_msgs(const struct row *r)
{
	return per_req(r, r->msg_hb + r->msg_probe + r->msg_token);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct stat3 stat_of(double *v, int n)
{
	struct stat3 s;

	qsort(v, (size_t)n, sizeof(double), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
	return s;
}

static void run_repeats(struct sim_cfg c, int repeats, struct row *row)
{
	double mean[MAX_REPEATS], p50[MAX_REPEATS], p99[MAX_REPEATS], p999[MAX_REPEATS];
	__u64 seed = c.seed;

	memset(row, 0, sizeof(*row));
	row->policy = c.policy;
	row->mode = c.mode;
	row->measured_mode = c.mode;
	row->routers = c.routers;
	for (int i = 0; i < repeats; i++) {
		struct sim_result r;

		c.seed = seed + (__u64)i * 0x9e3779b97f4a7c15ULL;
		sim_run(&c, &r);
		mean[i] = r.mean;
		p50[i] = r.p50;
		p99[i] = r.p99;
		p999[i] = r.p999;
		row->n += r.n;
		row->fallback += r.fallback;
		row->busy += r.busy;
		row->arrivals += r.arrivals;
		row->msg_hb += r.msg_hb;
		row->msg_probe += r.msg_probe;
		row->msg_token += r.msg_token;
		row->tokens += r.tokens;
		row->by_token += r.by_token;
		row->stale_views += r.stale_views;
		row->waited += r.waited;
		row->held += r.held;
		row->early += r.early;
		row->arrivals_all += r.arrivals_all;
		if (r.max_held > row->max_held)
			row->max_held = r.max_held;
		row->groups = r.groups;
		row->counted_from_s = r.counted_from_s;
		if (r.max_q > row->max_q)
			row->max_q = r.max_q;
		row->wall_s += r.wall_s;
	}
	row->mean = stat_of(mean, repeats);
	row->p50 = stat_of(p50, repeats);
	row->p99 = stat_of(p99, repeats);
	row->p999 = stat_of(p999, repeats);
}

/* ---- options ----------------------------------------------------------- */

struct opts {
	struct sim_cfg base;
	int routers[MAX_LIST], n_routers;
	int policies[N_POL], n_policies;
	int modes[N_MODES], n_modes;
	int repeats;
	int matrix, validate;
	long long val_requests;
	double tolerance;
	const char *json_out, *table_out, *invoked_by;
	int quick;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cpn-sim [options]\n"
		"  --nodes N          nodes, each one FCFS server (default 1000)\n"
		"  --group-size K     candidates per service, <= %d (default %d); least\n"
		"                     and round-robin at most %d\n"
		"  --routers LIST     router counts (default 1,10,100)\n"
		"  --policies LIST    of random,round-robin,maglev,p2c,least,jiq,\n"
		"                     jiq-rand,p2c-probe,late,lateN,central (default all,\n"
		"                     late binding as late1 and late2)\n"
		"  --modes LIST       of reports,outstanding,router (default all)\n"
		"  --rho RHO          utilisation, 0 < RHO < 1 (default 0.8)\n"
		"  --mean-us US       mean service time, exponential (default 2000)\n"
		"  --report-ms MS     LOAD interval per node; 0 = exact view (default 50)\n"
		"  --stale-ms MS      the services' stale_ms (default max(500, 3 x the\n"
		"                     heartbeat interval))\n"
		"  --liveness-ms MS   heartbeat interval of jiq, jiq-rand and p2c-probe,\n"
		"                     which learn load in band: a LOAD to a router only\n"
		"                     when the node sent it nothing for MS (default 2500)\n"
		"  --token-rule R     when a node marks its reply with a token: idle (when\n"
		"                     it falls idle: JIQ), below:T (when it holds fewer\n"
		"                     than T requests after a completion), adapt\n"
		"                     (default adapt: below:2 while more than a tenth of\n"
		"                     the node's requests wait, else idle)\n"
		"  --hot F:S          a fraction F of the routers takes a share S of the\n"
		"                     requests (default: uniform)\n"
		"  --speeds LIST      relative node speeds, node i at LIST[i mod n], scaled\n"
		"                     to average 1: --mean-us stays the fleet's mean\n"
		"                     (default 1)\n"
		"  --path-us US       node round trips drawn uniformly in [0, US] (default 0)\n"
		"  --reply-us US      one-way delay added to every reply (and the load and\n"
		"                     token it carries) (default 0)\n"
		"  --token-us US      a token usable US after its reply arrives (default 0)\n"
		"  --late-bound N     n of `late`, late binding JBSQ(n): each router sends a\n"
		"                     node at most n x its capacity requests unanswered and\n"
		"                     holds the rest in one FIFO per service (default 1,\n"
		"                     at most %d); lateN names n itself (late1, late2)\n"
		"  --requests N       measured requests per run (default 2000000;\n"
		"                     BENCH_QUICK=1: 200000)\n"
		"  --warmup N         requests discarded first (default requests / 4)\n"
		"  --repeats R        runs per point, seeds apart: median, min, max\n"
		"                     (default 1)\n"
		"  --seed S           (default 1)\n"
		"  --validate         also check the simulator against M/M/k (central and\n"
		"                     late1) and M/M/1 (random)\n"
		"  --validate-only    only that\n"
		"  --val-requests N   requests of each validation run (default 4000000;\n"
		"                     BENCH_QUICK=1: 2000000)\n"
		"  --tolerance F      allowed relative error of validation (default 0.05)\n"
		"  --json-out FILE    write the results as JSON\n"
		"  --table-out FILE   write p99 per policy, mode and router count for gnuplot\n"
		"  --invoked-by STR   the wrapper's command line, recorded in the JSON\n"
		"Times in the output are in units of the mean service time; a request\n"
		"held by late binding counts from its arrival at the router. Exit 1 when\n"
		"validation fails, 2 on bad arguments.\n",
		CPN_MAX_SVC_NODES, CPN_MAX_SVC_NODES, CPN_SVC_SCAN_MAX, CPN_LATE_BOUND_MAX);
}

/* cpn_parse_u64 for the long long options (all of them non-negative). */
static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	uint64_t v;

	if (cpn_parse_u64(s, (uint64_t)lo, (uint64_t)hi, &v))
		return -1;
	*out = (long long)v;
	return 0;
}

/* A policy (policies: `late` is lateN for n = late_bound) or a mode. */
static int name_index(const char *name, int policies, int late_bound)
{
	if (policies) {
		long long n;

		if (!strcmp(name, "central"))
			return POL_CENTRAL;
		if (!strcmp(name, "late"))
			return POL_LATE + late_bound - 1;
		if (!strncmp(name, "late", 4) && name[4] >= '1' && name[4] <= '9' &&
		    !parse_ll(name + 4, 1, CPN_LATE_BOUND_MAX, &n))
			return POL_LATE + (int)n - 1;
		if (!strcmp(name, "rr"))
			return CPN_POL_RR;
		for (int p = POL_JIQ_RAND; p < N_POL; p++)
			if (!strcmp(name, pol_name(p)))
				return p;
		for (int p = 0; p <= CPN_POL_MAX; p++)
			if (!strcmp(name, cpn_policy_names[p]))
				return p;
		return -1;
	}
	for (int m = 0; m < N_MODES; m++)
		if (!strcmp(name, mode_names[m]))
			return m;
	return -1;
}

/* Comma list of names (kind 1 policies, 0 modes) or of router counts (-1). */
static int parse_list(const char *s, int kind, int *out, int max, int late_bound)
{
	char buf[512], *save = NULL, *tok;
	int n = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long long v;

		if (n >= max)
			return -1;
		if (kind < 0) {
			if (parse_ll(tok, 1, MAX_ROUTERS, &v))
				return -1;
		} else if ((v = name_index(tok, kind, late_bound)) < 0) {
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (out[i] == (int)v)
				return -1;
		out[n++] = (int)v;
	}
	return n ? n : -1;
}

static long long default_stale_ms(double interval_ms)
{
	long long stale = 3 * (long long)ceil(interval_ms);

	return stale < 500 ? 500 : stale;
}

/* idle | below:T | adapt -> T (0: adaptive) */
static int parse_token_rule(const char *s, int *below)
{
	long long v;

	if (!strcmp(s, "idle")) {
		*below = 1;
		return 0;
	}
	if (!strcmp(s, "adapt")) {
		*below = 0;
		return 0;
	}
	if (strncmp(s, "below:", 6) || parse_ll(s + 6, 1, 1000, &v))
		return -1;
	*below = (int)v;
	return 0;
}

/* F:S, 0 < F < 1, 0 < S < 1 */
static int parse_hot(const char *s, double *frac, double *share)
{
	char buf[64], *colon;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (cpn_parse_double(buf, 1e-6, 0.999999, frac) ||
	    cpn_parse_double(colon + 1, 1e-6, 0.999999, share))
		return -1;
	return 0;
}

/* Comma list of speeds, each in [0.01, 1000]. */
static int parse_speeds(const char *s, struct sim_cfg *c)
{
	char buf[512], *save = NULL, *tok;
	int n = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= MAX_SPEEDS || cpn_parse_double(tok, 0.01, 1000, &c->speeds[n]))
			return -1;
		n++;
	}
	if (!n)
		return -1;
	c->n_speeds = n;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"nodes", required_argument, 0, 'n'},
	    {"group-size", required_argument, 0, 'g'},
	    {"routers", required_argument, 0, 'R'},
	    {"policies", required_argument, 0, 'p'},
	    {"modes", required_argument, 0, 'M'},
	    {"rho", required_argument, 0, 'r'},
	    {"mean-us", required_argument, 0, 'm'},
	    {"report-ms", required_argument, 0, 'i'},
	    {"stale-ms", required_argument, 0, 's'},
	    {"path-us", required_argument, 0, 'P'},
	    {"liveness-ms", required_argument, 0, 'L'},
	    {"token-rule", required_argument, 0, 'x'},
	    {"hot", required_argument, 0, 'H'},
	    {"speeds", required_argument, 0, 'z'},
	    {"reply-us", required_argument, 0, 'y'},
	    {"token-us", required_argument, 0, 'u'},
	    {"late-bound", required_argument, 0, 'b'},
	    {"requests", required_argument, 0, 'N'},
	    {"warmup", required_argument, 0, 'w'},
	    {"repeats", required_argument, 0, 'k'},
	    {"seed", required_argument, 0, 'S'},
	    {"validate", no_argument, 0, 'v'},
	    {"validate-only", no_argument, 0, 'V'},
	    {"val-requests", required_argument, 0, 'q'},
	    {"tolerance", required_argument, 0, 't'},
	    {"json-out", required_argument, 0, 'j'},
	    {"table-out", required_argument, 0, 'T'},
	    {"invoked-by", required_argument, 0, 'I'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	const char *q = getenv("BENCH_QUICK"), *pol_arg = NULL;
	long long v, stale = -1, warmup = -1, late_bound = CPN_LATE_BOUND_DEFAULT;
	double d, report_ms = 50, live_ms = 2500;
	int c;

	memset(o, 0, sizeof(*o));
	o->quick = q && *q && strcmp(q, "0");
	o->base.nodes = 1000;
	o->base.group_size = CPN_MAX_SVC_NODES;
	o->base.rho = 0.8;
	o->base.mean_us = 2000;
	o->base.requests = o->quick ? 200000 : 2000000;
	o->base.seed = 1;
	o->base.speeds[0] = 1;
	o->base.n_speeds = 1;
	o->base.token_below = 0;
	o->routers[0] = 1, o->routers[1] = 10, o->routers[2] = 100, o->n_routers = 3;
	/* every policy, late binding with n = 1 and 2 */
	o->n_policies = 0;
	for (int p = 0; p < POL_LATE + 2; p++)
		o->policies[o->n_policies++] = p;
	for (int m = 0; m < N_MODES; m++)
		o->modes[o->n_modes++] = m;
	o->repeats = 1;
	o->matrix = 1;
	o->val_requests = o->quick ? 2000000 : 4000000;
	o->tolerance = 0.05;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'n':
			bad = parse_ll(optarg, 1, 65535, &v);
			o->base.nodes = (int)v;
			break;
		case 'g':
			bad = parse_ll(optarg, 1, CPN_MAX_SVC_NODES, &v);
			o->base.group_size = (int)v;
			break;
		case 'R':
			bad = (o->n_routers = parse_list(optarg, -1, o->routers, MAX_LIST, 0)) < 0;
			break;
		case 'p':
			pol_arg = optarg; /* once --late-bound is known */
			break;
		case 'M':
			bad = (o->n_modes = parse_list(optarg, 0, o->modes, N_MODES, 0)) < 0;
			break;
		case 'r':
			bad = cpn_parse_double(optarg, 1e-6, 0.999999, &o->base.rho);
			break;
		case 'm':
			bad = cpn_parse_double(optarg, 1, 1e9, &o->base.mean_us);
			break;
		case 'i':
			bad = cpn_parse_double(optarg, 0, 1e6, &report_ms);
			break;
		case 's':
			bad = parse_ll(optarg, 1, 1000000000, &stale);
			break;
		case 'P':
			bad = cpn_parse_double(optarg, 0, 1e7, &o->base.path_us);
			break;
		case 'L':
			bad = cpn_parse_double(optarg, 0.001, 1e6, &live_ms);
			break;
		case 'x':
			bad = parse_token_rule(optarg, &o->base.token_below);
			break;
		case 'H':
			bad = parse_hot(optarg, &o->base.hot_frac, &o->base.hot_share);
			break;
		case 'z':
			bad = parse_speeds(optarg, &o->base);
			break;
		case 'y':
			bad = cpn_parse_double(optarg, 0, 1e7, &o->base.reply_us);
			break;
		case 'u':
			bad = cpn_parse_double(optarg, 0, 1e7, &o->base.token_us);
			break;
		case 'b':
			bad = parse_ll(optarg, 1, CPN_LATE_BOUND_MAX, &late_bound);
			break;
		case 'N':
			bad = parse_ll(optarg, 100, 1000000000000LL, &o->base.requests);
			break;
		case 'w':
			bad = parse_ll(optarg, 0, 1000000000000LL, &warmup);
			break;
		case 'k':
			bad = parse_ll(optarg, 1, MAX_REPEATS, &v);
			o->repeats = (int)v;
			break;
		case 'S':
			bad = parse_ll(optarg, 0, INT64_MAX, &v);
			o->base.seed = (__u64)v;
			break;
		case 'v':
			o->validate = 1;
			break;
		case 'V':
			o->validate = 1;
			o->matrix = 0;
			break;
		case 'q':
			bad = parse_ll(optarg, 1000, 1000000000000LL, &o->val_requests);
			break;
		case 't':
			bad = cpn_parse_double(optarg, 0, 10, &d);
			o->tolerance = d;
			break;
		case 'j':
			o->json_out = optarg;
			break;
		case 'T':
			o->table_out = optarg;
			break;
		case 'I':
			o->invoked_by = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
		}
		if (bad)
			return -1;
	}
	if (optind != argc)
		return -1;
	if (pol_arg &&
	    (o->n_policies = parse_list(pol_arg, 1, o->policies, N_POL, (int)late_bound)) < 0)
		return -1;
	for (int i = 0; i < o->n_routers; i++)
		if (o->routers[i] > 0xffff)
			return -1;
	o->base.report_us = report_ms * 1000;
	o->base.live_us = live_ms * 1000;
	o->base.stale_ms = (__u32)(stale >= 0 ? stale : default_stale_ms(report_ms));
	o->base.live_stale_ms = (__u32)(stale >= 0 ? stale : default_stale_ms(live_ms));
	/* jiq's membership bitmap and late binding's held[] cover node ids
	 * below CPN_MAX_NODES.
	 */
	for (int p = 0; p < o->n_policies; p++)
		if ((pol_tokens(o->policies[p]) || pol_late(o->policies[p])) &&
		    o->base.nodes >= CPN_MAX_NODES)
			return -1;
	o->base.warmup = warmup >= 0 ? warmup : o->base.requests / 4;
	return 0;
}

/* ---- output -------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* The command line, each argument shell-quoted where it needs to be. */
static void command_line(char *buf, size_t len, int argc, char **argv)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < argc && off < len; i++) {
		const char *a = argv[i];
		int plain = *a != 0;

		for (const char *p = a; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_=.,/:+@%",
				    *p))
				plain = 0;
		off += (size_t)snprintf(buf + off, len - off, "%s%s%s%s", i ? " " : "",
					plain ? "" : "'", a, plain ? "" : "'");
	}
}

static void machine_json(FILE *f)
{
	struct utsname u;
	char line[512], model[256] = "unknown", un[512];
	cpu_set_t set;
	int ncpu = 0;
	FILE *ci = fopen("/proc/cpuinfo", "r");

	if (ci) {
		while (fgets(line, sizeof(line), ci)) {
			char *colon = strchr(line, ':');

			if (!strncmp(line, "model name", 10) && colon) {
				snprintf(model, sizeof(model), "%s", colon + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		}
		fclose(ci);
	}
	if (!sched_getaffinity(0, sizeof(set), &set))
		ncpu = CPU_COUNT(&set);
	if (uname(&u))
		snprintf(un, sizeof(un), "unknown");
	else
		snprintf(un, sizeof(un), "%s %s %s", u.sysname, u.release, u.machine);
	fprintf(f, "{\"uname\": ");
	json_str(f, un);
	fprintf(f, ", \"nproc\": %d, \"cpu\": ", ncpu);
	json_str(f, model);
	fprintf(f, "}");
}

static void stat_json(FILE *f, const char *name, const struct stat3 *s)
{
	fprintf(f, "\"%s\": %.6g, \"%s_min\": %.6g, \"%s_max\": %.6g", name, s->med, name, s->min,
		name, s->max);
}

static void row_figures_json(FILE *f, const struct row *r)
{
	stat_json(f, "mean", &r->mean);
	fprintf(f, ", ");
	stat_json(f, "p50", &r->p50);
	fprintf(f, ", ");
	stat_json(f, "p99", &r->p99);
	fprintf(f, ", ");
	stat_json(f, "p999", &r->p999);
}

static void theory_json(FILE *f, const char *name, int k, double rho, int last)
{
	fprintf(f,
		"    \"%s\": {\"k\": %d, \"mean\": %.6g, \"p50\": %.6g, \"p99\": %.6g, "
		"\"p999\": %.6g}%s\n",
		name, k, k ? mmk_resp_mean(k, rho, 1) : mm1_resp_mean(rho, 1),
		k ? mmk_resp_quantile(k, rho, 1, 0.5) : mm1_resp_quantile(rho, 1, 0.5),
		k ? mmk_resp_quantile(k, rho, 1, 0.99) : mm1_resp_quantile(rho, 1, 0.99),
		k ? mmk_resp_quantile(k, rho, 1, 0.999) : mm1_resp_quantile(rho, 1, 0.999),
		last ? "" : ",");
}

struct check {
	const char *model, *theory, *figure;
	double sim, want, err;
};

struct validation {
	int k;
	long long requests;
	struct sim_result central, late, random;
	struct check c[9];
	int n, pass;
	double wall_s;
};

static const struct row *find_row(const struct row *rows, int n, int policy, int mode, int routers)
{
	for (int i = 0; i < n; i++)
		if (rows[i].policy == policy && rows[i].routers == routers &&
		    (rows[i].mode == mode || policy == POL_CENTRAL))
			return &rows[i];
	return NULL;
}

static int write_json(const char *path, const struct opts *o, const char *cmd,
		      const struct row *rows, int n_rows, const struct validation *val,
		      double wall_s)
{
	FILE *f = fopen(path, "w");
	const struct sim_cfg *c = &o->base;
	__u32 groups = ((__u32)c->nodes + c->group_size - 1) / c->group_size;
	int kmin = c->nodes / (int)groups;

	if (!f) {
		fprintf(stderr, "cpn-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\n  \"benchmark\": \"cpn-sim\",\n  \"command\": ");
	json_str(f, cmd);
	if (o->invoked_by) {
		fprintf(f, ",\n  \"invoked_by\": ");
		json_str(f, o->invoked_by);
	}
	fprintf(f, ",\n  \"machine\": ");
	machine_json(f);
	fprintf(f, ",\n  \"quick\": %s,\n  \"wall_s\": %.3f,\n", o->quick ? "true" : "false",
		wall_s);
	fprintf(f, "  \"units\": \"response time in units of the mean service time\",\n");
	fprintf(f,
		"  \"params\": {\"nodes\": %d, \"groups\": %u, \"group_size\": %d, "
		"\"scan_group_size\": %d, \"rho\": %g, \"mean_us\": %g, \"report_ms\": %g, "
		"\"stale_ms\": %u, \"liveness_ms\": %g, \"liveness_stale_ms\": %u, "
		"\"token_rule\": \"%s\", \"token_below\": %d, \"hot_routers\": %g, "
		"\"hot_share\": %g, \"speeds\": [",
		c->nodes, groups, c->group_size,
		c->group_size > CPN_SVC_SCAN_MAX ? CPN_SVC_SCAN_MAX : c->group_size, c->rho,
		c->mean_us, c->report_us / 1000, c->stale_ms, c->live_us / 1000, c->live_stale_ms,
		c->token_below == 0   ? "adapt"
		: c->token_below == 1 ? "idle"
				      : "below",
		c->token_below, c->hot_share > 0 ? c->hot_frac : 0, c->hot_share);
	for (int i = 0; i < c->n_speeds; i++)
		fprintf(f, "%s%g", i ? ", " : "", c->speeds[i]);
	fprintf(f,
		"], \"path_us\": %g, \"reply_us\": %g, \"token_us\": %g, "
		"\"token_store\": %d, \"token_tries\": %d, \"token_ttl_svc\": %d, "
		"\"token_ttl_min_us\": %d, \"late_queue\": %d, \"requests\": %lld, "
		"\"warmup\": %lld, \"repeats\": %d, \"seed\": %llu},\n",
		c->path_us, c->reply_us, c->token_us, CPN_TOKENS, CPN_TOKEN_TRIES,
		CPN_TOKEN_TTL_SVC, CPN_TOKEN_TTL_MIN_US, CPN_LATE_QUEUE_DEFAULT, c->requests,
		c->warmup, o->repeats, (unsigned long long)c->seed);
	fprintf(f, "  \"theory\": {\n");
	theory_json(f, "mm1", 0, c->rho, 0);
	theory_json(f, "mmk_group", kmin, c->rho, 0);
	theory_json(f, "mmk_all", c->nodes, c->rho, 1);
	fprintf(f, "  },\n  \"results\": [");
	for (int i = 0, first = 1; o->matrix && i < n_rows; i++) {
		const struct row *r = &rows[i], *base;

		fprintf(f, "%s\n    {\"policy\": \"%s\", \"routers\": %d, \"mode\": \"%s\", ",
			first ? "" : ",", pol_name(r->policy), r->routers,
			r->policy == POL_CENTRAL ? "none" : mode_names[r->mode]);
		first = 0;
		fprintf(f, "\"load_aware\": %s, \"measured_in_mode\": \"%s\", ",
			pol_load_aware(r->policy) ? "true" : "false",
			r->policy == POL_CENTRAL ? "none" : mode_names[r->measured_mode]);
		row_figures_json(f, r);
		fprintf(f,
			", \"requests\": %lld, \"fallback\": %lld, \"busy\": %lld, "
			"\"max_queue\": %u, \"wall_s\": %.3f, \"rho\": %g, \"hot_routers\": %g, "
			"\"hot_share\": %g, \"groups\": %u,\n     \"msgs_per_req\": %.6g, "
			"\"heartbeats_per_req\": %.6g, \"probes_per_req\": %.6g, "
			"\"token_msgs_per_req\": %.6g, \"tokens_per_req\": %.6g, "
			"\"by_token\": %.6g, \"waited\": %.6g, \"stale_views\": %lld, "
			"\"msgs_counted_from_s\": %g,\n     \"late_bound\": %u, \"held\": %.6g, "
			"\"max_held\": %u, \"early\": %lld, \"refused\": %.6g",
			r->n, r->fallback, r->busy, r->max_q, r->wall_s, c->rho,
			c->hot_share > 0 ? c->hot_frac : 0, c->hot_share, r->groups, extra_msgs(r),
			per_req(r, r->msg_hb), per_req(r, r->msg_probe), per_req(r, r->msg_token),
			per_req(r, r->tokens), per_req(r, r->by_token), per_req(r, r->waited),
			r->stale_views, r->counted_from_s, pol_late(r->policy), per_req(r, r->held),
			r->max_held, r->early,
			r->arrivals_all ? (double)r->busy / (double)r->arrivals_all : 0);
		base = find_row(rows, n_rows, CPN_POL_RANDOM, r->mode, r->routers);
		if (base) {
			fprintf(f, ",\n     \"baseline_random\": {");
			row_figures_json(f, base);
			fprintf(f, "}");
		}
		base = find_row(rows, n_rows, POL_CENTRAL, 0, o->routers[0]);
		if (base) {
			fprintf(f, ",\n     \"baseline_central\": {");
			row_figures_json(f, base);
			fprintf(f, "}");
		}
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]");
	if (val) {
		fprintf(f,
			",\n  \"validation\": {\"k\": %d, \"routers\": 1, \"rho\": %g, "
			"\"report_ms\": 0, \"requests\": %lld, \"tolerance\": %g, "
			"\"pass\": %s, \"wall_s\": %.3f, \"checks\": [",
			val->k, c->rho, val->requests, o->tolerance, val->pass ? "true" : "false",
			val->wall_s);
		for (int i = 0; i < val->n; i++)
			fprintf(
			    f,
			    "%s\n    {\"model\": \"%s\", \"theory\": \"%s\", \"figure\": \"%s\", "
			    "\"sim\": %.6g, \"theory_value\": %.6g, \"rel_err\": %.6g}",
			    i ? "," : "", val->c[i].model, val->c[i].theory, val->c[i].figure,
			    val->c[i].sim, val->c[i].want, val->c[i].err);
		fprintf(f,
			"\n  ],\n    \"p999\": {\"central\": %.6g, \"late1\": %.6g, \"mmk\": %.6g, "
			"\"random\": %.6g, \"mm1\": %.6g}}",
			val->central.p999, val->late.p999,
			mmk_resp_quantile(val->k, c->rho, 1, 0.999), val->random.p999,
			mm1_resp_quantile(c->rho, 1, 0.999));
	}
	fprintf(f, "\n}\n");
	if (fclose(f)) {
		fprintf(stderr, "cpn-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* gnuplot input: one block per (mode, policy), modes outermost in --modes
 * order, policies in --policies order (central left out), separated by two
 * blank lines; each block starts with the policy as a title line
 * (columnheader). columns: routers p50 p99 p99_min p99_max p999
 */
static int write_table(const char *path, const struct opts *o, const struct row *rows, int n_rows)
{
	FILE *f = fopen(path, "w");
	int blocks = 0;

	if (!f) {
		fprintf(stderr, "cpn-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "# cpn-sim: response time / mean service time; columns:\n"
		   "# routers p50 p99 p99_min p99_max p999\n");
	for (int m = 0; m < o->n_modes; m++)
		for (int p = 0; p < o->n_policies; p++) {
			int pol = o->policies[p];

			if (pol == POL_CENTRAL)
				continue;
			fprintf(f, "%s# mode %s\n\"%s\" x x x x x\n", blocks++ ? "\n\n" : "",
				mode_names[o->modes[m]], pol_name(pol));
			for (int i = 0; i < n_rows; i++) {
				const struct row *r = &rows[i];

				if (r->policy == pol && r->mode == o->modes[m])
					fprintf(f, "%d %.6g %.6g %.6g %.6g %.6g\n", r->routers,
						r->p50.med, r->p99.med, r->p99.min, r->p99.max,
						r->p999.med);
			}
		}
	if (fclose(f)) {
		fprintf(stderr, "cpn-sim: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- validation ------------------------------------------------------- */

static void add_check(struct validation *v, const char *model, const char *theory,
		      const char *figure, double sim, double want)
{
	struct check *c = &v->c[v->n++];

	c->model = model;
	c->theory = theory;
	c->figure = figure;
	c->sim = sim;
	c->want = want;
	c->err = fabs(sim - want) / want;
}

static void run_validation(const struct opts *o, struct validation *v)
{
	struct sim_cfg c = o->base;
	double rho = c.rho, t0 = ((double)cpn_now_ns() * 1e-9);

	memset(v, 0, sizeof(*v));
	v->k = 8;
	v->requests = o->val_requests;
	c.nodes = 8;
	c.group_size = 8;
	c.routers = 1;
	c.report_us = 0;
	c.path_us = 0;
	c.reply_us = 0;
	c.token_us = 0;
	c.hot_share = 0;
	c.speeds[0] = 1;
	c.n_speeds = 1;
	c.mode = MODE_REPORTS;
	c.requests = o->val_requests;
	c.warmup = o->val_requests / 10;

	c.policy = POL_CENTRAL;
	sim_run(&c, &v->central);
	add_check(v, "central", "M/M/k", "mean", v->central.mean, mmk_resp_mean(8, rho, 1));
	add_check(v, "central", "M/M/k", "p50", v->central.p50, mmk_resp_quantile(8, rho, 1, 0.5));
	add_check(v, "central", "M/M/k", "p99", v->central.p99, mmk_resp_quantile(8, rho, 1, 0.99));
	/* Late binding with n = 1 and exact slots is one FCFS queue feeding
	 * the k nodes, made of the router's own decisions.
	 */
	c.policy = POL_LATE;
	sim_run(&c, &v->late);
	add_check(v, "late1", "M/M/k", "mean", v->late.mean, mmk_resp_mean(8, rho, 1));
	add_check(v, "late1", "M/M/k", "p50", v->late.p50, mmk_resp_quantile(8, rho, 1, 0.5));
	add_check(v, "late1", "M/M/k", "p99", v->late.p99, mmk_resp_quantile(8, rho, 1, 0.99));
	c.policy = CPN_POL_RANDOM;
	sim_run(&c, &v->random);
	add_check(v, "random", "M/M/1", "mean", v->random.mean, mm1_resp_mean(rho, 1));
	add_check(v, "random", "M/M/1", "p50", v->random.p50, mm1_resp_quantile(rho, 1, 0.5));
	add_check(v, "random", "M/M/1", "p99", v->random.p99, mm1_resp_quantile(rho, 1, 0.99));
	v->pass = 1;
	for (int i = 0; i < v->n; i++)
		if (!(v->c[i].err <= o->tolerance))
			v->pass = 0;
	v->wall_s = ((double)cpn_now_ns() * 1e-9) - t0;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct opts o;
	struct row *rows = NULL;
	struct validation val;
	char cmd[4096];
	int n_rows = 0;
	double t0 = ((double)cpn_now_ns() * 1e-9);

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	command_line(cmd, sizeof(cmd), argc, argv);

	if (o.matrix) {
		rows = xcalloc((size_t)o.n_routers * N_MODES * N_POL, sizeof(*rows));
		for (int p = 0; p < o.n_policies; p++) {
			int pol = o.policies[p];

			if (pol != POL_CENTRAL)
				continue;
			/* One central queue per group: no routers, no views. */
			struct sim_cfg c = o.base;

			c.policy = pol;
			c.routers = 1;
			c.mode = MODE_REPORTS;
			run_repeats(c, o.repeats, &rows[n_rows]);
			rows[n_rows].routers = o.routers[0];
			fprintf(stderr, "cpn-sim: %-12s p50 %7.3f p99 %7.3f p99.9 %7.3f (%.1f s)\n",
				"central", rows[n_rows].p50.med, rows[n_rows].p99.med,
				rows[n_rows].p999.med, rows[n_rows].wall_s);
			n_rows++;
		}
		for (int ri = 0; ri < o.n_routers; ri++)
			for (int mi = 0; mi < o.n_modes; mi++)
				for (int p = 0; p < o.n_policies; p++) {
					struct sim_cfg c = o.base;
					struct row *r = &rows[n_rows];

					c.policy = o.policies[p];
					c.routers = o.routers[ri];
					c.mode = o.modes[mi];
					if (c.policy == POL_CENTRAL)
						continue;
					if (!pol_per_mode(c.policy) && mi > 0) {
						/* The choice never reads the load: the
						 * run is the same in every mode.
						 */
						*r = *find_row(rows, n_rows, c.policy, o.modes[0],
							       c.routers);
						r->mode = c.mode;
						n_rows++;
						continue;
					}
					run_repeats(c, o.repeats, r);
					n_rows++;
					fprintf(stderr,
						"cpn-sim: %-12s R=%-4d %-11s p50 %7.3f p99 %8.3f "
						"p99.9 %8.3f maxq %5u msg/req %6.3f token %4.2f "
						"(%.1f s)\n",
						pol_name(c.policy), c.routers, mode_names[c.mode],
						r->p50.med, r->p99.med, r->p999.med, r->max_q,
						extra_msgs(r), per_req(r, r->by_token), r->wall_s);
					if (pol_late(c.policy))
						fprintf(stderr,
							"cpn-sim: %-12s held at the router %.3f "
							"of the requests, at most %u; early %lld, "
							"refused %lld\n",
							"", per_req(r, r->held), r->max_held,
							r->early, r->busy);
				}
	}
	if (o.validate) {
		run_validation(&o, &val);
		for (int i = 0; i < val.n; i++)
			fprintf(stderr,
				"cpn-sim: validate %-7s vs %-5s %-4s sim %8.4f theory %8.4f "
				"err %5.2f%%\n",
				val.c[i].model, val.c[i].theory, val.c[i].figure, val.c[i].sim,
				val.c[i].want, 100 * val.c[i].err);
		fprintf(stderr, "cpn-sim: validation %s (tolerance %.1f%%, %.1f s)\n",
			val.pass ? "passed" : "FAILED", 100 * o.tolerance, val.wall_s);
	}
	if (o.json_out && write_json(o.json_out, &o, cmd, rows, n_rows, o.validate ? &val : NULL,
				     ((double)cpn_now_ns() * 1e-9) - t0))
		return 1;
	if (o.table_out && o.matrix && write_table(o.table_out, &o, rows, n_rows))
		return 1;
	free(rows);
	return o.validate && !val.pass ? 1 : 0;
}
