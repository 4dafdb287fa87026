// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpnctl daemon: the controller's long-running part. The data plane needs
 * none of it to keep steering (its state is in pinned maps); the daemon
 * adds what only a process with a clock and a socket can:
 *
 *   - liveness: logs every node that goes stale or comes back;
 *   - probes: a PROBE to each node whose path latency went unmeasured for
 *     --probe-ms (no replies through the router), so path_us stays fresh;
 *     the router learns from the PROBE_ACK in XDP;
 *   - elastic join: a LOAD from an unknown node reaches the control port
 *     socket (XDP passes it up); from an auto_join prefix, signed with the
 *     join key when there is one, it admits the node into the auto_join
 *     services; a joined node silent for retire_ms is retired;
 *   - SIGHUP: re-apply --config;
 *   - Prometheus /metrics;
 *   - with --etcd, many routers (docs/OPERATIONS.md, "Many routers"): a
 *     thread of its own follows /cpn/<cluster>/ in etcd, reconciles the
 *     router to its config and to the nodes other routers admitted, keeps
 *     this router's admissions and status there under a lease, and when
 *     etcd is away retries with bounded backoff while the router keeps
 *     what it runs.
 *
 * Every change goes through the same locked load-change-commit as the CLI,
 * so a daemon that is killed and restarted picks up from the maps and the
 * desired state and loses nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "cpn/proto.h"
#include "cpn/sched.h"
#include "cpn/siphash.h"
#include "cpnctl_cmd.h"
#include "ops.h"
#include "cpn_etcd.h"
#include "cpn_http.h"

#define TICK_MS	  50
#define RX_RCVBUF (1 << 20) /* the control socket's receive buffer */

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_flag = 1;
	else
		stop_flag = 1;
}

struct fleet;

struct daemon {
	const struct cpnctl_daemon_opts *o;
	struct fleet *fleet;   /* --etcd; NULL without */
	__u16 sock_port;       /* the control port the socket is bound to */
	struct cpn_http *srv;  /* /metrics */
	char metrics_addr[64]; /* where srv serves */
	struct cpn_ctl ctl;
	pthread_mutex_t lock; /* guards cfg against the metrics thread */
	struct cpn_cfg cfg;   /* the desired state as last loaded */
	int sock;	      /* UDP, the control port, v4 and v6 */
	int daemon_lock;      /* held while this daemon runs: one per router */
	bool was_live[CPN_MAX_NODES];
	bool known[CPN_MAX_NODES];
	__u64 samples[CPN_MAX_NODES];  /* path samples seen at the last check */
	__u64 measured[CPN_MAX_NODES]; /* when they last grew (or a probe went out) */
	__u64 joined_at[CPN_MAX_NODES];
	__u64 refusal_logged[CPN_MAX_NODES]; /* when a refused join was last logged */
	__u64 retired_seen[CPN_MAX_NODES];   /* replies + BUSY of a retired node */
	__u64 retired_quiet[CPN_MAX_NODES];  /* since when that has not grown */
	__u64 start_ns;
	__u64 last_gc;
	struct timespec state_mtime;  /* of the state file when last loaded */
	struct join_guard *guard;     /* rate limits, seen join tags, log limits */
	struct cpn_daemon_counters c; /* on /metrics */
	char warned[2048];	      /* the security warnings last logged */
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line, written at once: two threads log. */
static void logf_(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cpnctl daemon: %s\n", line);
}

/* Joined nodes that this router admitted (it registers them in etcd and
 * retires them), against those other routers did: see the fleet below.
 */
static bool fleet_mine(struct daemon *d, __u16 id);
static void fleet_set_mine(struct daemon *d, __u16 id, bool mine);

static int render(void *arg, FILE *out)
{
	struct daemon *d = arg;
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = cpn_metrics_render(&d->ctl.maps, &d->cfg, out);
	pthread_mutex_unlock(&d->lock);
	if (!rc)
		cpn_metrics_render_daemon(&d->c, out);
	return rc;
}

struct warn_buf {
	char text[2048];
	size_t len;
};

static void warn_collect(void *arg, const char *msg)
{
	struct warn_buf *b = arg;
	int n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", msg);

	if (n > 0)
		b->len =
		    b->len + (size_t)n < sizeof(b->text) ? b->len + (size_t)n : sizeof(b->text) - 1;
}

static void warn_log(void *arg, const char *msg)
{
	(void)arg;
	logf_("warning: %s", msg);
}

/* The desired state's security gaps, logged when they change (and at start). */
static void security_warnings(struct daemon *d)
{
	struct warn_buf b = {.len = 0};
	int routers = d->o->etcd ? 2 : 1;

	b.text[0] = 0;
	cpnctl_security_warnings(&d->cfg, routers, warn_collect, &b);
	if (!strcmp(b.text, d->warned))
		return;
	cpnctl_security_warnings(&d->cfg, routers, warn_log, NULL);
	snprintf(d->warned, sizeof(d->warned), "%s", b.text);
}

/* Reload the desired state (after a change by us, the CLI or SIGHUP). */
static int reload(struct daemon *d)
{
	struct cpn_cfg cfg;
	struct cpn_err err;
	struct stat st;

	if (!stat(d->ctl.state_path, &st))
		d->state_mtime = st.st_mtim;

	if (cpn_ctl_lock(&d->ctl, &err) || cpn_ctl_load(&d->ctl, &cfg, &err)) {
		cpn_ctl_unlock(&d->ctl);
		logf_("%s", err.msg);
		return -1;
	}
	cpn_ctl_unlock(&d->ctl);
	pthread_mutex_lock(&d->lock);
	cpn_cfg_free(&d->cfg);
	d->cfg = cfg;
	pthread_mutex_unlock(&d->lock);
	security_warnings(d);
	return 0;
}

static int open_socket(__u16 port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), off = 0, on = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* Room for a burst while a join's transaction runs. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){RX_RCVBUF}, sizeof(int)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){RX_RCVBUF}, sizeof(int));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A socket address as a node's address and port. */
static void from_sockaddr(const struct sockaddr_in6 *sa, struct cfg_node *n)
{
	static const __u8 v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(n->addr, 0, sizeof(n->addr));
	if (!memcmp(sa->sin6_addr.s6_addr, v4mapped, 12)) {
		memcpy(n->addr, sa->sin6_addr.s6_addr + 12, 4);
		n->family = CPN_AF_INET;
	} else {
		memcpy(n->addr, sa->sin6_addr.s6_addr, 16);
		n->family = CPN_AF_INET6;
	}
	n->port = sa->sin6_port;
}

static void to_sockaddr(const struct cpn_node_cfg *nc, struct sockaddr_in6 *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = nc->port;
	if (nc->family == CPN_AF_INET) {
		sa->sin6_addr.s6_addr[10] = 0xff;
		sa->sin6_addr.s6_addr[11] = 0xff;
		memcpy(sa->sin6_addr.s6_addr + 12, nc->addr, 4);
	} else {
		memcpy(sa->sin6_addr.s6_addr, nc->addr, 16);
	}
}

static int render(void *arg, FILE *out);

/* The control port or the metrics address moved (a new config, from etcd
 * or a file): follow them (--metrics stays).
 */
static void rebind(struct daemon *d)
{
	int fd;

	if (!d->o->metrics && strcmp(d->cfg.metrics, d->metrics_addr)) {
		char err[256];
		struct cpn_http *srv = NULL;

		if (d->srv)
			cpn_http_stop(d->srv);
		d->srv = NULL;
		if (d->cfg.metrics[0])
			srv = cpn_http_start(d->cfg.metrics, render, d, err, sizeof(err));
		if (d->cfg.metrics[0] && !srv)
			logf_("cannot serve /metrics at %s: %s", d->cfg.metrics, err);
		else
			logf_("metrics now at %s", d->cfg.metrics[0] ? d->cfg.metrics : "(off)");
		d->srv = srv;
		snprintf(d->metrics_addr, sizeof(d->metrics_addr), "%s", d->cfg.metrics);
	}
	if (d->cfg.control_port == d->sock_port)
		return;
	fd = open_socket(d->cfg.control_port);
	if (fd < 0) {
		logf_("cannot bind the new control port %u: %s; LOADs still read on %u",
		      d->cfg.control_port, strerror(errno), d->sock_port);
	} else {
		close(d->sock);
		d->sock = fd;
		logf_("control port now %u", d->cfg.control_port);
	}
	d->sock_port = d->cfg.control_port; /* said once */
}

/* ---- elastic join ------------------------------------------------------ */

/* A join costs a transaction on the desired state; LOADs of unknown nodes
 * cost a hash or two each. Both are bounded: joins a second per source
 * address (a token bucket) and in total, datagrams read per turn of the
 * loop, log lines a second per kind.
 */
#define JOIN_RATE_SRC	5 /* joins a second from one address */
#define JOIN_BURST_SRC	10
#define JOIN_RATE_ALL	200 /* joins a second in total */
#define JOIN_BURST_ALL	200
#define JOIN_SRC_SLOTS	1024  /* source addresses remembered */
#define JOIN_SEEN_SLOTS 16384 /* join tags remembered while they could be replayed */
#define JOIN_PROBES	8
#define RX_BATCH	64   /* datagrams a recvmmsg */
#define RX_PER_TURN	1024 /* datagrams a turn of the loop, then timers and signals */
#define RX_BUF		2048
#define JOIN_PER_TURN	64 /* joins in one transaction */
#define EVENT_BURST	4  /* lines a second of a kind of node event */
/* What a join's checks read of its datagram. */
#define JOIN_LEN     (CPN_HDR_LEN + CPN_TAG_LEN + 8)
#define LOG_EVERY_NS 1000000000ULL  /* one line a second per kind */
#define LOG_ID_NS    10000000000ULL /* and one per node id and reason in 10 s */

struct bucket {
	__u64 last_ns;
	__u64 milli; /* tokens x 1000 */
};

struct src_bucket {
	__u8 addr[16];
	bool used;
	struct bucket b;
};

struct seen_tag {
	__u64 tag;
	__u64 until_ms; /* CLOCK_TAI ms after which it could no longer be accepted */
};

struct log_kind {
	__u64 last_ns;
	__u64 suppressed;
};

/* A join that passed the screen, waiting for the turn's transaction. */
struct join_req {
	struct cfg_node n;
	struct sockaddr_in6 from;
	__u8 buf[JOIN_LEN] __attribute__((aligned(8))); /* its first bytes */
	size_t len;
	__u64 now_ms;
	int why; /* the refusal under the lock, or -1 */
	char text[160];
	bool marked; /* admitted, and made this router's own (fleet) */
};

/* A kind of node event (joined, retired, deleted): EVENT_BURST lines a second. */
struct event_log {
	const char *what;
	__u64 last_ns;
	unsigned n;
	__u64 more;
};

struct join_guard {
	__u64 hkey[2]; /* random: where a source lands in the table */
	struct src_bucket src[JOIN_SRC_SLOTS];
	struct bucket all;
	struct seen_tag seen[JOIN_SEEN_SLOTS];
	struct log_kind log[CPN_JR_MAX];
	__u8 refusal_kind[CPN_MAX_NODES]; /* reason last logged for the id, + 1 */
	struct join_req pend[JOIN_PER_TURN];
	int n_pend;
	struct event_log ev_join, ev_fail, ev_retire, ev_delete, ev_live;
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_in6 from[RX_BATCH];
	__u8 buf[RX_BATCH][RX_BUF];
};

static void count(__u64 *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* The freshness window of joins, in ms. */
static __u32 fresh_window_ms(const struct cpn_cfg *cfg)
{
	return cfg->freshness_ms ? cfg->freshness_ms : CPN_FRESH_WINDOW_MS;
}

static bool bucket_take(struct bucket *b, __u64 now, __u32 rate, __u32 burst)
{
	__u64 cap = (__u64)burst * 1000ULL, el = now - b->last_ns;

	if (!b->last_ns || el >= 1000000000ULL * burst)
		b->milli = cap;
	else
		b->milli += el * rate / 1000000ULL;
	if (b->milli > cap)
		b->milli = cap;
	b->last_ns = now;
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

/* A token of the source address's bucket: its slot, or one that a full
 * bucket would be anyway, or the stalest of its probes.
 */
static bool src_take(struct join_guard *g, const __u8 addr[16], __u64 now)
{
	__u64 w[2];
	struct src_bucket *pick = NULL;
	__u32 h;

	memcpy(w, addr, 16);
	h = (__u32)cpn_siphash24(g->hkey, w, 2);
	for (int i = 0; i < JOIN_PROBES; i++) {
		struct src_bucket *s = &g->src[(h + (__u32)i) % JOIN_SRC_SLOTS];

		if (s->used && !memcmp(s->addr, addr, 16)) {
			pick = s;
			break;
		}
		if (!pick || !s->used || (pick->used && s->b.last_ns < pick->b.last_ns))
			pick = s;
	}
	if (!pick->used || memcmp(pick->addr, addr, 16)) {
		memset(pick, 0, sizeof(*pick));
		memcpy(pick->addr, addr, 16);
		pick->used = true;
	}
	return bucket_take(&pick->b, now, JOIN_RATE_SRC, JOIN_BURST_SRC);
}

/* Remember a verified join tag until it could no longer be accepted: 0,
 * CPN_JR_REPLAY when it was seen, CPN_JR_SEEN_FULL when there is no room
 * (refused: what cannot be remembered could be replayed).
 */
static int seen_add(struct join_guard *g, __u64 tag, __u64 now_ms, __u32 window_ms)
{
	struct seen_tag *free_slot = NULL;
	__u32 h = (__u32)(tag ^ (tag >> 32));

	for (int i = 0; i < JOIN_PROBES; i++) {
		struct seen_tag *s = &g->seen[(h + (__u32)i) % JOIN_SEEN_SLOTS];
		bool live = s->until_ms > now_ms;

		if (live && s->tag == tag)
			return CPN_JR_REPLAY;
		if (!live && !free_slot)
			free_slot = s;
	}
	if (!free_slot)
		return CPN_JR_SEEN_FULL;
	free_slot->tag = tag;
	/* A stamp up to a window ahead stays acceptable a window after it. */
	free_slot->until_ms = now_ms + 2ULL * window_ms + 1;
	return 0;
}

/* Whether a LOAD from an unknown node may join under `cfg`: 0, or why not
 * (an enum cpn_join_refusal), with words for the log in *text. The rate
 * limits and the seen tags are the caller's.
 */
static int join_check(const struct cpn_cfg *cfg, const struct cfg_node *n,
		      const struct sockaddr_in6 *from, const struct cpn_hdr *h, const __u8 *buf,
		      size_t len, __u64 now_ms, char *text, size_t tlen)
{
	__u32 window = fresh_window_ms(cfg);
	__u64 tag, jtag;
	__s32 skew;

	if (!cpn_cfg_join_allowed(cfg, n))
		return snprintf(text, tlen, "address not in an auto_join prefix"), CPN_JR_PREFIX;
	if (!cfg->auto_join.has_key)
		return 0;
	if (!(h->flags & htons(CPN_F_AUTH)) || len < CPN_HDR_LEN + CPN_TAG_LEN)
		return snprintf(text, tlen, "not signed with the auto_join key"), CPN_JR_UNSIGNED;
	memcpy(&tag, buf + CPN_HDR_LEN, sizeof(tag));
	if (tag != cpn_tag_node(cfg->auto_join.key, h))
		return snprintf(text, tlen, "wrong tag for the auto_join key"), CPN_JR_BAD_TAG;
	if (!(h->flags & htons(CPN_F_FRESH)))
		return snprintf(text, tlen, "no FRESH stamp (a join must be fresh)"),
		       CPN_JR_NOT_FRESH;
	if (len < CPN_HDR_LEN + CPN_TAG_LEN + 8)
		return snprintf(text, tlen, "no join tag"), CPN_JR_NO_JOIN_TAG;
	memcpy(&jtag, buf + CPN_HDR_LEN + CPN_TAG_LEN, sizeof(jtag));
	if (jtag != cpn_tag_join(cfg->auto_join.key, h, from->sin6_addr.s6_addr, from->sin6_port))
		return snprintf(text, tlen, "join tag not for this address and port (a replay?)"),
		       CPN_JR_BAD_JOIN_TAG;
	skew = (__s32)(ntohl(h->stamp) - (__u32)now_ms);
	if (!cpn_stamp_ok(ntohl(h->stamp), (__u32)now_ms, window))
		return snprintf(text, tlen, "stamp %d ms from this router's clock (window %u ms)",
				(int)skew, window),
		       CPN_JR_STALE;
	return 0;
}

static int id_check(const struct cpn_cfg *cfg, __u16 id, char *text, size_t tlen)
{
	if (!cpn_cfg_node(cfg, id))
		return 0;
	snprintf(text, tlen, "node id %u is another node's", id);
	return CPN_JR_ID_TAKEN;
}

/* A refusal, counted; logged at most once a second per reason (with how
 * many were not) and once per 10 s per node id and reason.
 */
static void refuse(struct daemon *d, int why, __u16 id, const struct sockaddr_in6 *from,
		   const char *text)
{
	struct join_guard *g = d->guard;
	struct log_kind *k = &g->log[why];
	__u64 now = cpn_now_ns();
	char a[INET6_ADDRSTRLEN] = "?", more[80] = "";

	count(&d->c.refused[why]);
	if (why == CPN_JR_MALFORMED)
		text = "not a LOAD of a node";
	if (id < CPN_MAX_NODES && g->refusal_kind[id] == why + 1 && d->refusal_logged[id] &&
	    now - d->refusal_logged[id] < LOG_ID_NS)
		return;
	if (k->last_ns && now - k->last_ns < LOG_EVERY_NS) {
		k->suppressed++;
		count(&d->c.log_suppressed);
		return;
	}
	k->last_ns = now;
	if (from) {
		struct cfg_node n;

		from_sockaddr(from, &n);
		cpn_addr_str(n.addr, n.family, a, sizeof(a));
	}
	if (id < CPN_MAX_NODES) {
		d->refusal_logged[id] = now;
		g->refusal_kind[id] = (__u8)(why + 1);
	}
	if (k->suppressed)
		snprintf(more, sizeof(more), " (and %llu more like it in the last second)",
			 (unsigned long long)k->suppressed);
	if (why == CPN_JR_MALFORMED)
		logf_("datagram from %s on the control port: %s: ignored%s", a, text, more);
	else
		logf_("LOAD from unknown node %u at %s: %s: join refused%s", id, a, text, more);
	k->suppressed = 0;
}

/* The joins that passed the screen, as one edit of the desired state: each
 * checked again against the state loaded under the lock (but for the seen
 * tags, already taken), and against the joins before it in the batch.
 */
struct joins_edit {
	struct daemon *d;
	struct join_req *j;
	int n;
};

static int edit_join(struct cpn_cfg *cfg, struct daemon *d, struct join_req *j)
{
	int rc, why = join_check(cfg, &j->n, &j->from, (const struct cpn_hdr *)j->buf, j->buf,
				 j->len, j->now_ms, j->text, sizeof(j->text));

	if (!why)
		why = id_check(cfg, j->n.id, j->text, sizeof(j->text));
	if (why) {
		j->why = why;
		return 0;
	}
	if (cfg->auto_join.has_key) {
		j->n.has_key = true;
		j->n.key[0] = cfg->auto_join.key[0];
		j->n.key[1] = cfg->auto_join.key[1];
	}
	j->n.weight = cfg->auto_join.weight ? cfg->auto_join.weight : CPN_DEFAULT_WEIGHT;
	rc = cpn_cfg_add_joined(cfg, &j->n);
	if (rc == CPN_CFG_JOIN_FULL) {
		j->why = CPN_JR_FULL;
		snprintf(j->text, sizeof(j->text),
			 "no auto_join service of its family has room (%d nodes at most)",
			 CPN_MAX_SVC_NODES);
		return 0;
	}
	if (rc)
		return -1;
	/* Marked inside the transaction: the fleet's reconcile, which keeps
	 * only this router's own joined nodes, cannot come between.
	 */
	fleet_set_mine(d, j->n.id, true);
	j->marked = true;
	return 0;
}

static int edit_joins(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	struct joins_edit *e = arg;
	int added = 0;

	for (int i = 0; i < e->n; i++) {
		if (edit_join(cfg, e->d, &e->j[i]))
			return snprintf(err->msg, sizeof(err->msg), "out of memory"), CPN_EXIT_FAIL;
		added += e->j[i].marked;
	}
	if (!added) /* all refused: nothing to commit */
		return snprintf(err->msg, sizeof(err->msg), "refused"), CPN_EXIT_USAGE;
	return 0;
}

/* Node events of a kind (joins, retirements, deletions, liveness) are logged one by
 * one EVENT_BURST a second; the rest are counted and said in one line
 * (event_flush, called every turn) once the second is over.
 */
static void event_flush(struct event_log *e, __u64 now)
{
	if (!e->more || now - e->last_ns < LOG_EVERY_NS)
		return;
	logf_("and %llu more %s within a second (not logged one by one)",
	      (unsigned long long)e->more, e->what);
	e->more = 0;
}

static bool event_ok(struct event_log *e, __u64 now)
{
	event_flush(e, now);
	if (!e->last_ns || now - e->last_ns >= LOG_EVERY_NS) {
		e->last_ns = now;
		e->n = 0;
	}
	if (e->n < EVENT_BURST) {
		e->n++;
		return true;
	}
	e->more++;
	return false;
}

/* The joins of this turn that passed the screen: one transaction. */
static void join_flush(struct daemon *d)
{
	struct join_guard *g = d->guard;
	struct joins_edit e = {.d = d, .j = g->pend, .n = g->n_pend};
	struct cpn_err err;
	int rc;

	if (!g->n_pend)
		return;
	g->n_pend = 0;
	rc = cpn_op_change_ctl(&d->ctl, edit_joins, &e, &err);
	for (int i = 0; i < e.n; i++) {
		struct join_req *j = &e.j[i];
		__u64 now = cpn_now_ns();
		char a[INET6_ADDRSTRLEN];

		cpn_addr_str(j->n.addr, j->n.family, a, sizeof(a));
		if (rc == CPN_EXIT_OK && j->marked) {
			count(&d->c.joins);
			d->joined_at[j->n.id] = now;
			if (event_ok(&g->ev_join, now))
				logf_("node %u at %s:%u joined services of auto_join", j->n.id, a,
				      ntohs(j->n.port));
			continue;
		}
		if (j->marked)
			fleet_set_mine(d, j->n.id, false);
		if (j->why > 0)
			refuse(d, j->why, j->n.id, &j->from, j->text);
		else if (rc == CPN_EXIT_FAIL && event_ok(&g->ev_fail, now))
			logf_("join of node %u at %s failed: %s", j->n.id, a, err.msg);
	}
	reload(d);
}

/* A datagram on the control port: a LOAD of an unknown node, screened
 * against the state in memory; one that passes waits in the turn's batch
 * of joins (flushed when full).
 */
static void join(struct daemon *d, const struct sockaddr_in6 *from, const __u8 *buf, size_t len)
{
	const struct cpn_hdr *h = (const struct cpn_hdr *)buf;
	struct join_guard *g = d->guard;
	struct join_req *j = &g->pend[g->n_pend];
	__u64 now = cpn_now_ns(), tag;
	int why;

	count(&d->c.datagrams);
	if (cpn_hdr_check(h, (__u32)len) != CPN_HDR_OK || h->type != CPN_T_LOAD ||
	    !ntohs(h->node_id) || ntohs(h->node_id) >= CPN_MAX_NODES) {
		refuse(d, CPN_JR_MALFORMED, CPN_MAX_NODES, from, NULL);
		return;
	}
	memset(j, 0, sizeof(*j));
	j->why = -1;
	j->from = *from;
	j->len = len < JOIN_LEN ? len : JOIN_LEN; /* the checks read no further */
	memcpy(j->buf, buf, j->len);
	j->n.id = ntohs(h->node_id);
	from_sockaddr(from, &j->n);
	j->now_ms = cpn_tai_ms64();
	h = (const struct cpn_hdr *)j->buf;
	/* Screened against the state in memory first, cheapest first: a
	 * refused LOAD costs neither the lock nor a parse, however often it
	 * comes, and changes nothing. Only a join that verifies takes tokens
	 * of the rate limits (its source's, then the daemon's): forged LOADs,
	 * even from a joining node's own address, cannot use them up.
	 */
	why = join_check(&d->cfg, &j->n, from, h, j->buf, j->len, j->now_ms, j->text,
			 sizeof(j->text));
	if (!why && d->cfg.auto_join.has_key) {
		memcpy(&tag, j->buf + CPN_HDR_LEN + CPN_TAG_LEN, sizeof(tag));
		why = seen_add(g, tag, j->now_ms, fresh_window_ms(&d->cfg));
		snprintf(j->text, sizeof(j->text), "%s",
			 why == CPN_JR_REPLAY ? "join tag seen before (a replay)"
					      : "too many joins within the window to remember");
	}
	if (!why)
		why = id_check(&d->cfg, j->n.id, j->text, sizeof(j->text));
	if (!why && !src_take(g, from->sin6_addr.s6_addr, now)) {
		why = CPN_JR_RATE_SOURCE;
		snprintf(j->text, sizeof(j->text), "over %d joins a second from this address",
			 JOIN_RATE_SRC);
	}
	if (!why && !bucket_take(&g->all, now, JOIN_RATE_ALL, JOIN_BURST_ALL)) {
		why = CPN_JR_RATE_TOTAL;
		snprintf(j->text, sizeof(j->text), "over %d joins a second in total",
			 JOIN_RATE_ALL);
	}
	if (why) {
		refuse(d, why, j->n.id, from, j->text);
		return;
	}
	if (++g->n_pend == JOIN_PER_TURN)
		join_flush(d);
}

/* Read what came to the control port: at most RX_PER_TURN datagrams, in
 * batches, so that a flood delays neither timers nor signals; the joins
 * among them go in transactions of up to JOIN_PER_TURN.
 */
static void receive(struct daemon *d)
{
	struct join_guard *g = d->guard;
	int total = 0;

	while (total < RX_PER_TURN && !stop_flag && !hup_flag) {
		int n;

		for (int i = 0; i < RX_BATCH; i++) {
			g->iov[i].iov_base = g->buf[i];
			g->iov[i].iov_len = RX_BUF;
			memset(&g->msgs[i].msg_hdr, 0, sizeof(g->msgs[i].msg_hdr));
			g->msgs[i].msg_hdr.msg_name = &g->from[i];
			g->msgs[i].msg_hdr.msg_namelen = sizeof(g->from[i]);
			g->msgs[i].msg_hdr.msg_iov = &g->iov[i];
			g->msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(d->sock, g->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if ((g->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ||
			    g->msgs[i].msg_hdr.msg_namelen != sizeof(g->from[i]) ||
			    g->from[i].sin6_family != AF_INET6) {
				count(&d->c.datagrams);
				refuse(d, CPN_JR_MALFORMED, CPN_MAX_NODES, NULL, NULL);
				continue;
			}
			join(d, &g->from[i], g->buf[i], g->msgs[i].msg_len);
		}
		total += n;
		if (n < RX_BATCH)
			break;
	}
	join_flush(d);
}

static struct join_guard *guard_new(void)
{
	struct join_guard *g = calloc(1, sizeof(*g));

	if (g && getrandom(g->hkey, sizeof(g->hkey), 0) != sizeof(g->hkey)) {
		free(g);
		return NULL;
	}
	if (g) {
		g->ev_join.what = "nodes joined services of auto_join";
		g->ev_fail.what = "joins failed";
		g->ev_retire.what = "joined nodes retired, silent for retire_ms";
		g->ev_delete.what = "retired nodes deleted, quiet for 10 s";
		g->ev_live.what = "nodes went live or stale";
	}
	return g;
}

/* How long joined node `id` has been silent at `now`: since its last report,
 * or since it joined (the daemon started) if that is later. A report that
 * the data plane learned after `now` was read is no silence at all (the
 * unsigned difference would wrap and retire a node that is reporting).
 */
static __u64 silence_ns(const struct daemon *d, __u16 id, __u64 now)
{
	__u64 last = d->ctl.maps.state[id].last_report_ns;
	__u64 since = d->joined_at[id] ? d->joined_at[id] : d->start_ns;
	__u64 ref = last > since ? last : since;

	return now > ref ? now - ref : 0;
}

/* Joined nodes silent for retire_ms leave: an edit of the desired state. */
struct retire_req {
	struct daemon *d;
	__u64 now, limit;
};

static int edit_retire(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	struct retire_req *r = arg;

	(void)err;
	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *n = &cfg->nodes[i];
		__u16 id = n->id;

		if (!n->joined || !fleet_mine(r->d, id) || silence_ns(r->d, id, r->now) <= r->limit)
			continue;
		cpn_cfg_del_node(cfg, id);
		fleet_set_mine(r->d, id, false);
		r->d->joined_at[id] = 0;
		if (event_ok(&r->d->guard->ev_retire, cpn_now_ns()))
			logf_("joined node %u silent for %u ms: retired", id,
			      (unsigned)(r->limit / 1000000ULL));
		i--;
	}
	return 0;
}

static void retire(struct daemon *d, __u64 now)
{
	struct retire_req r = {d, now, 0};
	struct cpn_err err;
	bool changed = false;

	if (!d->cfg.has_auto_join)
		return;
	r.limit = (__u64)(d->cfg.auto_join.retire_ms ? d->cfg.auto_join.retire_ms
						     : CPN_DEFAULT_RETIRE_MS) *
		  1000000ULL;
	for (int i = 0; i < d->cfg.n_nodes; i++) {
		const struct cfg_node *n = &d->cfg.nodes[i];

		if (n->joined && fleet_mine(d, n->id) && silence_ns(d, n->id, now) > r.limit)
			changed = true;
	}
	if (!changed)
		return;
	if (cpn_op_change_ctl(&d->ctl, edit_retire, &r, &err))
		logf_("retire: %s", err.msg);
	reload(d);
}

/* Retired nodes (removed from the configuration, replies still forwarded)
 * are deleted once nothing has come from them for RETIRED_QUIET_MS.
 */
#define RETIRED_QUIET_MS 10000

static void gc_retired(struct daemon *d, __u64 now)
{
	if (now - d->last_gc < 1000000000ULL)
		return;
	d->last_gc = now;
	for (__u16 id = 1; id < CPN_MAX_NODES; id++) {
		struct cpn_node_stats ns;
		struct cpn_node_cfg nc;
		struct cpn_err err;
		__u64 seen;

		if (cpn_maps_get_node(&d->ctl.maps, id, &nc) ||
		    !(nc.flags & CPN_NODE_CFG_RETIRED)) {
			d->retired_quiet[id] = 0;
			continue;
		}
		if (cpn_maps_node_stats(&d->ctl.maps, id, &ns))
			continue;
		seen = ns.replies + ns.busy + ns.reports;
		if (!d->retired_quiet[id] || seen != d->retired_seen[id]) {
			d->retired_seen[id] = seen;
			d->retired_quiet[id] = now;
			continue;
		}
		if (now - d->retired_quiet[id] < RETIRED_QUIET_MS * 1000000ULL)
			continue;
		/* Under the lock: a command may be bringing the id back. */
		if (cpn_ctl_lock(&d->ctl, &err))
			continue;
		if (!cpn_maps_get_node(&d->ctl.maps, id, &nc) &&
		    (nc.flags & CPN_NODE_CFG_RETIRED)) {
			cpn_maps_del_node(&d->ctl.maps, id);
			if (event_ok(&d->guard->ev_delete, now))
				logf_("retired node %u quiet for %u s: deleted", id,
				      RETIRED_QUIET_MS / 1000);
		}
		cpn_ctl_unlock(&d->ctl);
		d->retired_quiet[id] = 0;
	}
}

/* ---- liveness and probes ------------------------------------------------ */

static void watch(struct daemon *d, __u64 now)
{
	for (int i = 0; i < d->cfg.n_nodes; i++) {
		const struct cfg_node *n = &d->cfg.nodes[i];
		const struct cpn_node *st = &d->ctl.maps.state[n->id];
		bool live = cpn_node_live(st, now, cpn_cfg_node_stale_ms(&d->cfg, n->id));

		if (d->known[n->id] && live != d->was_live[n->id] &&
		    event_ok(&d->guard->ev_live, now)) {
			if (live)
				logf_("node %u is live", n->id);
			else if (!cpn_node_up(st))
				logf_("node %u is administratively %s", n->id,
				      (st->admin & CPN_ADMIN_UP) ? "draining" : "down");
			else if (st->report_flags & CPN_REP_DRAINING)
				logf_("node %u reports DRAINING", n->id);
			else
				logf_("node %u went stale: no report for %llu ms", n->id,
				      st->last_report_ns
					  ? (unsigned long long)((now - st->last_report_ns) /
								 1000000ULL)
					  : 0ULL);
		}
		d->known[n->id] = true;
		d->was_live[n->id] = live;
	}
}

/* A PROBE carries the router's cookie in request_id: the hop key (the
 * effective one, from the config map: the fleet's, or the one drawn at
 * `up`) over the node id and router_ts. The data plane learns only the
 * PROBE_ACKs that echo it, within a second.
 */
static void probe(struct daemon *d, __u64 now)
{
	__u64 idle = (__u64)d->o->probe_ms * 1000000ULL;
	struct cpn_config gc;
	bool have_key = false;

	for (int i = 0; i < d->cfg.n_nodes; i++) {
		const struct cfg_node *n = &d->cfg.nodes[i];
		struct cpn_node_stats ns;
		struct cpn_node_cfg nc;
		struct sockaddr_in6 to;
		struct cpn_msg m;
		struct cpn_hdr h;
		__u64 samples = 0;

		if (n->drain || cpn_maps_node_stats(&d->ctl.maps, n->id, &ns) ||
		    cpn_maps_get_node(&d->ctl.maps, n->id, &nc))
			continue;
		for (int b = 0; b < CPN_HIST_BUCKETS; b++)
			samples += ns.lat_hist[b];
		if (samples != d->samples[n->id]) {
			d->samples[n->id] = samples;
			d->measured[n->id] = now;
			continue;
		}
		if (now - d->measured[n->id] < idle)
			continue;
		if (!have_key && cpn_maps_get_config(&d->ctl.maps, &gc))
			continue; /* no cookie, no probe: its ack would not be learned */
		have_key = true;
		cpn_msg_init(&m, CPN_T_PROBE);
		m.node_id = n->id;
		m.router_ts = (__u32)(now / 1000);
		cpn_hdr_encode(&m, &h);
		{
			__u64 cookie = cpn_probe_cookie(gc.hop_key, h.node_id, h.router_ts);

			memcpy(&h.request_id, &cookie, sizeof(cookie));
		}
		to_sockaddr(&nc, &to);
		sendto(d->sock, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to));
		d->measured[n->id] = now;
	}
}

/* ---- many routers: configuration and membership in etcd ------------------
 *
 * A thread of its own follows /cpn/<cluster>/ (the layout is in ops.h):
 *
 *   - connect: list the prefix (only when the revision it knows is gone or
 *     was never had), take a lease (or keep the one it has), and watch from
 *     the revision after the one it knows: nothing is missed across a cut;
 *   - every change of config, layout or nodes/ reconciles the router, in
 *     the transaction of `cpnctl apply` (cpn_op_apply_cfg_ctl): the config
 *     that last validated, plus the nodes other routers registered that its
 *     auto_join covers, plus this router's own joined nodes; a config that
 *     does not validate is refused whole, logged and reported in
 *     routers/<name>, and the router keeps the last good one;
 *   - the joined nodes this router admitted (`mine`, set by the main
 *     thread inside its join and retire transactions) are put under
 *     nodes/<id> with its lease, and deleted when it retires them;
 *   - routers/<name> says which revision it runs, after every reconcile;
 *   - when etcd cannot be reached (a call fails, the watch is cut) it
 *     retries with backoff from 100 ms to 2 s; the router keeps serving
 *     what it runs meanwhile.
 */
#define FLEET_POLL_MS	     50
#define FLEET_BACKOFF_MIN_MS 100
#define FLEET_BACKOFF_MAX_MS 2000
#define FLEET_RETRY_MS	     500   /* a registration or a failed reconcile, again */
#define FLEET_DOWN_LOG_MS    10000 /* while etcd is away, say so this often */

struct rnode { /* nodes/<id> as etcd has it */
	bool present, valid;
	struct cpn_fleet_node v;
	int64_t mod_rev, lease;
	int64_t logged_rev; /* an unreadable value, logged at this revision */
};

struct fleet {
	struct daemon *d;
	char prefix[128];
	char me[CPN_FLEET_NAME_MAX];
	pthread_t thread;
	bool started;
	int stop; /* __atomic */
	/* Shared with the main thread. */
	pthread_mutex_t lock;
	bool mine[CPN_MAX_NODES];
	/* The thread's own. */
	struct cpn_ctl ctl;
	struct cpn_etcd *e;
	struct cpn_etcd_watch *w;
	bool up, ever_up, ever_listed;
	__u64 down_since, down_logged;
	bool down_said; /* said away since it was last said back */
	int64_t rev;	/* what it knows is up to this revision; 0: list first */
	int64_t lease, ttl;
	__u64 next_keepalive;
	char *config; /* the value of config, as etcd has it; NULL: none */
	size_t config_len;
	int64_t config_rev;
	char layout[32]; /* "" when there is none */
	int64_t layout_rev;
	struct rnode node[CPN_MAX_NODES];
	__u64 tried[CPN_MAX_NODES];
	bool listed[CPN_MAX_NODES]; /* nodes from etcd in what was applied last */
	/* What was made of the config. */
	struct cpn_cfg good; /* the last that validated */
	bool have_good;
	int64_t good_rev, parsed_rev, applied_rev, refused_rev;
	char refused[400];
	char *last_want; /* YAML of what was applied last */
	char last_fail[512];
	bool dirty, status_dirty, no_config_logged;
	__u64 next_reconcile;
};

static __u64 mono_ms(void)
{
	return cpn_now_ns() / 1000000ULL;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fleet_mine(struct daemon *d, __u16 id)
{
	struct fleet *f = d->fleet;
	bool m;

	if (!f) /* one router alone: every joined node is its own */
		return true;
	pthread_mutex_lock(&f->lock);
	m = id < CPN_MAX_NODES && f->mine[id];
	pthread_mutex_unlock(&f->lock);
	return m;
}

static void fleet_set_mine(struct daemon *d, __u16 id, bool mine)
{
	struct fleet *f = d->fleet;

	if (!f || id >= CPN_MAX_NODES)
		return;
	pthread_mutex_lock(&f->lock);
	f->mine[id] = mine;
	pthread_mutex_unlock(&f->lock);
}

static bool keep_mine(const struct cfg_node *n, void *arg)
{
	return fleet_mine(((struct fleet *)arg)->d, n->id);
}

static bool stopping(struct fleet *f)
{
	return __atomic_load_n(&f->stop, __ATOMIC_RELAXED) || stop_flag;
}

/* Take one key of the prefix (listed, or from the watch) into the model. */
static void fleet_take(struct fleet *f, const struct cpn_etcd_kv *kv, bool deleted)
{
	size_t plen = strlen(f->prefix);
	const char *k = kv->key;
	char why[128];
	__u32 id;

	if (kv->key_len != strlen(kv->key) || strncmp(k, f->prefix, plen))
		return;
	k += plen;
	if (!strcmp(k, "config")) {
		free(f->config);
		f->config = NULL;
		f->config_len = 0;
		f->config_rev = 0;
		if (deleted) {
			logf_("%sconfig deleted from etcd: the router keeps configuration revision "
			      "%lld",
			      f->prefix, (long long)f->applied_rev);
		} else {
			f->config = malloc(kv->value_len + 1);
			if (f->config) {
				memcpy(f->config, kv->value, kv->value_len + 1);
				f->config_len = kv->value_len;
				f->config_rev = kv->mod_revision;
			}
		}
		f->dirty = true;
	} else if (!strcmp(k, "layout")) {
		snprintf(f->layout, sizeof(f->layout), "%s", deleted ? "" : kv->value);
		if (!deleted && kv->value_len >= sizeof(f->layout))
			snprintf(f->layout, sizeof(f->layout), "(too long)");
		for (char *c = f->layout; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				*c = '?';
		f->layout_rev = kv->mod_revision;
		f->parsed_rev = 0; /* read the config again under it */
		f->dirty = true;
	} else if (!strncmp(k, "nodes/", 6)) {
		struct rnode *r;

		if (cpn_parse_u32(k + 6, 1, CPN_MAX_NODES - 1, &id)) {
			if (!deleted)
				logf_("%s in etcd: not a node id (1..%d): ignored", kv->key,
				      CPN_MAX_NODES - 1);
			return;
		}
		r = &f->node[id];
		if (deleted) {
			r->present = r->valid = false;
		} else {
			r->present = true;
			r->mod_rev = kv->mod_revision;
			r->lease = kv->lease;
			r->valid = !cpn_fleet_node_parse((__u16)id, kv->value, kv->value_len, &r->v,
							 why, sizeof(why));
			if (!r->valid && r->logged_rev != kv->mod_revision) {
				r->logged_rev = kv->mod_revision;
				logf_("%s in etcd (revision %lld) refused: %s", kv->key,
				      (long long)kv->mod_revision, why);
			}
		}
		f->dirty = true;
	}
	/* routers/ and anything else: status, not configuration */
}

/* The whole prefix, as of one revision. */
static int fleet_list(struct fleet *f, char *msg, size_t len)
{
	struct cpn_etcd_kvs kvs;
	int rc = cpn_etcd_get(f->e, f->prefix, true, &kvs, msg, len);

	if (rc)
		return rc;
	free(f->config);
	f->config = NULL;
	f->config_len = 0;
	f->config_rev = 0;
	f->layout[0] = 0;
	f->layout_rev = 0;
	for (int id = 0; id < CPN_MAX_NODES; id++)
		f->node[id].present = f->node[id].valid = false;
	for (size_t i = 0; i < kvs.n; i++)
		fleet_take(f, &kvs.kv[i], false);
	f->rev = kvs.revision;
	f->dirty = true;
	cpn_etcd_kvs_free(&kvs);
	if (!f->ever_listed) {
		/* Joined nodes another router holds are not this router's own. */
		f->ever_listed = true;
		for (int id = 1; id < CPN_MAX_NODES; id++) {
			struct rnode *r = &f->node[id];

			if (r->present && r->valid && strcmp(r->v.router, f->me))
				fleet_set_mine(f->d, (__u16)id, false);
		}
	}
	return 0;
}

/* Keep the lease alive, or take a new one when it is gone. */
static int fleet_lease(struct fleet *f, char *msg, size_t len)
{
	int64_t ttl = 0;
	int rc;

	if (f->lease) {
		rc = cpn_etcd_lease_keepalive(f->e, f->lease, &ttl, msg, len);
		if (rc != CPN_ETCD_ENOLEASE) {
			if (!rc)
				f->next_keepalive = mono_ms() + (__u64)f->ttl * 1000 / 3;
			return rc;
		}
		logf_("lease %llx ran out: a new one; this router's keys are written again",
		      (unsigned long long)f->lease);
		f->lease = 0;
	}
	rc = cpn_etcd_lease_grant(f->e, f->d->o->lease_ttl_s, &f->lease, &f->ttl, msg, len);
	if (rc)
		return rc;
	f->next_keepalive = mono_ms() + (__u64)f->ttl * 1000 / 3;
	f->status_dirty = true;
	return 0;
}

static void fleet_disconnect(struct fleet *f)
{
	cpn_etcd_watch_stop(f->w);
	f->w = NULL;
	f->up = false;
}

static int fleet_connect(struct fleet *f, char *msg, size_t len)
{
	int rc = 0;

	if (!f->rev)
		rc = fleet_list(f, msg, len);
	if (!rc)
		rc = fleet_lease(f, msg, len);
	if (!rc)
		rc = cpn_etcd_watch_start(f->e, f->prefix, true, f->rev + 1, &f->w, msg, len);
	if (!rc)
		f->up = true;
	return rc;
}

static void fleet_refuse(struct fleet *f, int64_t rev, const char *why)
{
	char keeps[64];

	if (f->have_good)
		snprintf(keeps, sizeof(keeps), "revision %lld", (long long)f->good_rev);
	else
		snprintf(keeps, sizeof(keeps), "the configuration it has");
	logf_("configuration revision %lld in etcd refused, the router keeps %s: %s",
	      (long long)rev, keeps, why);
	f->refused_rev = rev;
	snprintf(f->refused, sizeof(f->refused), "%s", why);
	f->status_dirty = true;
}

/* The config from etcd, read (once per revision) and validated whole. */
static void fleet_parse(struct fleet *f)
{
	struct cpn_cfg cfg;
	struct cpn_err err;
	char name[200];

	if (f->config_rev == f->parsed_rev)
		return;
	f->parsed_rev = f->config_rev;
	snprintf(name, sizeof(name), "etcd:%sconfig@%lld", f->prefix, (long long)f->config_rev);
	if (f->layout[0] && strcmp(f->layout, CPN_FLEET_LAYOUT)) {
		snprintf(err.msg, sizeof(err.msg),
			 "%slayout is '%s'; this cpnctl reads layout %s: upgrade it", f->prefix,
			 f->layout, CPN_FLEET_LAYOUT);
		/* the revision at which config and layout stopped making sense */
		fleet_refuse(f, f->layout_rev > f->config_rev ? f->layout_rev : f->config_rev,
			     err.msg);
		return;
	}
	if (cpn_cfg_parse(name, f->config, f->config_len, &cfg, &err)) {
		fleet_refuse(f, f->config_rev, err.msg);
		return;
	}
	if (f->have_good)
		cpn_cfg_free(&f->good);
	f->good = cfg;
	f->have_good = true;
	f->good_rev = f->config_rev;
	if (f->refused_rev)
		f->status_dirty = true;
	f->refused_rev = 0;
	f->refused[0] = 0;
}

/* What the router should run: the good config, the nodes other routers
 * registered that its auto_join covers (this router's own come from its
 * desired state: keep_mine), each as the router's own join would make it.
 */
static int fleet_want(struct fleet *f, struct cpn_cfg *want, bool *listed)
{
	const struct cfg_auto_join *aj = &f->good.auto_join;

	if (cpn_cfg_copy(want, &f->good))
		return -1;
	for (int id = 1; id < CPN_MAX_NODES; id++) {
		const struct rnode *r = &f->node[id];
		struct cfg_node n;

		listed[id] = false;
		if (!r->present || !r->valid || !strcmp(r->v.router, f->me) ||
		    fleet_mine(f->d, (__u16)id) || cpn_cfg_node(want, (__u16)id) ||
		    !cpn_cfg_join_allowed(want, &r->v.n))
			continue;
		n = r->v.n;
		n.weight = aj->weight ? aj->weight : CPN_DEFAULT_WEIGHT;
		n.has_key = aj->has_key;
		n.key[0] = aj->key[0];
		n.key[1] = aj->key[1];
		if (cpn_cfg_add_joined(want, &n) == -1) {
			cpn_cfg_free(want);
			return -1;
		}
		listed[id] = true;
	}
	return 0;
}

static char *cfg_text(const struct cpn_cfg *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return NULL;
	if (cpn_cfg_write(m, cfg)) {
		fclose(m);
		free(text);
		return NULL;
	}
	fclose(m);
	return text;
}

static void fleet_fail(struct fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reconcile that failed: logged when the reason changes, tried again. */
static void fleet_fail(struct fleet *f, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, f->last_fail))
		logf_("%s", msg);
	snprintf(f->last_fail, sizeof(f->last_fail), "%s", msg);
	f->dirty = true;
	f->next_reconcile = mono_ms() + FLEET_RETRY_MS;
}

static void fleet_reconcile(struct fleet *f)
{
	bool listed[CPN_MAX_NODES];
	struct cpn_ctl_fleet rec = {0};
	struct cpn_cfg want;
	struct cpn_err err;
	char *text;
	int rc;

	f->dirty = false;
	if (!f->config) {
		if (!f->no_config_logged)
			logf_("no configuration at %sconfig in etcd: the router keeps the one it "
			      "has",
			      f->prefix);
		f->no_config_logged = true;
		return;
	}
	f->no_config_logged = false;
	fleet_parse(f);
	if (!f->have_good)
		return;
	if (fleet_want(f, &want, listed)) {
		fleet_fail(f, "reconcile: out of memory");
		return;
	}
	text = cfg_text(&want);
	if (text && f->last_want && !strcmp(text, f->last_want) && f->applied_rev == f->good_rev) {
		free(text); /* what runs already */
		cpn_cfg_free(&want);
		return;
	}
	rc = cpn_op_apply_cfg_ctl(&f->ctl, &want, keep_mine, f, &err);
	cpn_cfg_free(&want);
	if (rc) {
		free(text);
		if (rc == CPN_EXIT_USAGE && f->refused_rev != f->good_rev) {
			/* valid alone, not with the nodes: e.g. a service full */
			fleet_refuse(f, f->good_rev, err.msg);
			return;
		}
		/* Said in routers/<name> too, so that status shows why it is behind. */
		if (f->refused_rev != f->good_rev ||
		    strncmp(f->refused, err.msg, sizeof(f->refused) - 1)) {
			f->refused_rev = f->good_rev;
			snprintf(f->refused, sizeof(f->refused), "%.399s", err.msg);
			f->status_dirty = true;
		}
		fleet_fail(f, "configuration revision %lld not applied (tried again): %s",
			   (long long)f->good_rev, err.msg);
		return;
	}
	f->last_fail[0] = 0;
	if (f->refused_rev && f->refused_rev <= f->good_rev) {
		f->refused_rev = 0;
		f->refused[0] = 0;
	}
	for (int id = 1; id < CPN_MAX_NODES; id++) {
		const struct rnode *r = &f->node[id];
		char a[64];

		if (listed[id] == f->listed[id])
			continue;
		if (listed[id]) {
			cpn_addr_str(r->v.n.addr, r->v.n.family, a, sizeof(a));
			logf_("node %d at %s:%u, admitted by router %s: joined from etcd", id, a,
			      ntohs(r->v.n.port), r->v.router);
		} else {
			logf_("node %d: gone from etcd, out of the configuration", id);
		}
		f->listed[id] = listed[id];
	}
	if (f->applied_rev != f->good_rev)
		logf_("running configuration revision %lld from etcd", (long long)f->good_rev);
	f->applied_rev = f->good_rev;
	free(f->last_want);
	f->last_want = text;
	f->status_dirty = true;
	snprintf(rec.etcd, sizeof(rec.etcd), "%s", cpn_etcd_endpoint(f->e));
	snprintf(rec.cluster, sizeof(rec.cluster), "%s", f->d->o->cluster);
	snprintf(rec.router, sizeof(rec.router), "%s", f->me);
	rec.revision = f->applied_rev;
	rec.time_ms = wall_ms();
	if (cpn_ctl_fleet_save(&f->ctl, &rec, &err))
		logf_("%s", err.msg);
}

/* This router's own joined nodes into nodes/, under its lease; those it no
 * longer has out. 0, or the etcd error that cut the connection.
 */
static int fleet_sync_nodes(struct fleet *f, char *msg, size_t len)
{
	struct cpn_cfg state;
	bool loaded = false;
	__u64 now = mono_ms();
	int rc = 0;

	for (int id = 1; id < CPN_MAX_NODES && !rc; id++) {
		struct rnode *r = &f->node[id];
		bool mine = fleet_mine(f->d, (__u16)id);
		bool ours = r->present && r->valid && !strcmp(r->v.router, f->me);
		char key[200];
		struct cpn_etcd_txn_res res;

		bool current = ours && r->lease == f->lease;

		if (mine && (current || (r->present && !ours)))
			continue; /* registered, or another router holds it */
		if (!mine && !ours)
			continue;
		if (now - f->tried[id] < FLEET_RETRY_MS)
			continue;
		f->tried[id] = now;
		snprintf(key, sizeof(key), "%snodes/%d", f->prefix, id);
		if (mine) {
			struct cpn_etcd_cmp cmp = {.key = key};
			struct cpn_fleet_node v = {0};
			const struct cfg_node *n;
			char *json;

			if (!loaded) {
				struct cpn_err err;

				if (cpn_ctl_lock(&f->ctl, &err))
					return 0;
				loaded = !cpn_ctl_load(&f->ctl, &state, &err);
				cpn_ctl_unlock(&f->ctl);
				if (!loaded)
					return 0;
			}
			n = cpn_cfg_node(&state, (__u16)id);
			if (!n || !n->joined)
				continue; /* retired meanwhile */
			v.n = *n;
			snprintf(v.router, sizeof(v.router), "%s", f->me);
			v.time_ms = wall_ms();
			json = cpn_fleet_node_json(&v);
			if (!json)
				continue;
			/* Created, or taken over from this router's earlier lease. */
			cmp.target = r->present ? CPN_ETCD_CMP_MOD : CPN_ETCD_CMP_CREATE;
			cmp.num = r->present ? r->mod_rev : 0;
			struct cpn_etcd_op put = {.type = CPN_ETCD_OP_PUT,
						  .key = key,
						  .value = json,
						  .value_len = strlen(json),
						  .lease = f->lease};

			rc = cpn_etcd_txn(f->e, &cmp, 1, &put, 1, NULL, 0, &res, msg, len);
			free(json);
			if (rc == CPN_ETCD_EUNREACH)
				break;
			if (rc) {
				logf_("cannot register node %d in etcd: %s", id, msg);
				rc = 0;
				continue;
			}
			if (res.succeeded) {
				r->present = r->valid = true;
				r->v = v;
				r->mod_rev = res.revision;
				r->lease = f->lease;
				f->status_dirty = true;
				logf_("node %d registered in etcd (%snodes/%d)", id, f->prefix, id);
			}
			cpn_etcd_txn_res_free(&res);
		} else {
			struct cpn_etcd_cmp cmp = {
			    .key = key, .target = CPN_ETCD_CMP_MOD, .num = r->mod_rev};
			struct cpn_etcd_op del = {.type = CPN_ETCD_OP_DELETE, .key = key};

			rc = cpn_etcd_txn(f->e, &cmp, 1, &del, 1, NULL, 0, &res, msg, len);
			if (rc == CPN_ETCD_EUNREACH)
				break;
			if (rc) {
				logf_("cannot delete node %d from etcd: %s", id, msg);
				rc = 0;
				continue;
			}
			if (res.succeeded) {
				r->present = r->valid = false;
				f->status_dirty = true;
				logf_("node %d deleted from etcd: no longer joined here", id);
			}
			cpn_etcd_txn_res_free(&res);
		}
	}
	if (loaded)
		cpn_cfg_free(&state);
	return rc;
}

/* routers/<name>: the revision this router runs, under its lease. */
static int fleet_status(struct fleet *f, char *msg, size_t len)
{
	struct cpn_fleet_router *st = calloc(1, sizeof(*st));
	char key[200], *json;
	int rc;

	if (!st)
		return 0;
	snprintf(st->name, sizeof(st->name), "%s", f->me);
	st->revision = f->applied_rev;
	st->time_ms = wall_ms();
	if (f->refused_rev > f->applied_rev) {
		st->refused_revision = f->refused_rev;
		snprintf(st->error, sizeof(st->error), "%s", f->refused);
	}
	for (int id = 1; id < CPN_MAX_NODES; id++) {
		const struct rnode *r = &f->node[id];

		if (r->present && r->valid && !strcmp(r->v.router, f->me) && r->lease == f->lease)
			st->joined[st->n_joined++] = (__u16)id;
	}
	json = cpn_fleet_router_json(st);
	free(st);
	if (!json)
		return 0;
	snprintf(key, sizeof(key), "%srouters/%s", f->prefix, f->me);
	rc = cpn_etcd_put(f->e, key, json, strlen(json), f->lease, NULL, msg, len);
	free(json);
	if (!rc)
		f->status_dirty = false;
	return rc == CPN_ETCD_EUNREACH ? rc : 0;
}

/* What a connected follower does between two looks at the watch. */
static int fleet_tick(struct fleet *f, char *msg, size_t len)
{
	__u64 now = mono_ms();
	int rc = 0;

	if (now >= f->next_keepalive)
		rc = fleet_lease(f, msg, len);
	if (!rc && f->dirty && now >= f->next_reconcile)
		fleet_reconcile(f);
	if (!rc)
		rc = fleet_sync_nodes(f, msg, len);
	if (!rc && f->status_dirty)
		rc = fleet_status(f, msg, len);
	return rc;
}

static int fleet_watch(struct fleet *f, char *msg, size_t len)
{
	struct cpn_etcd_events ev = {0};
	int rc = cpn_etcd_watch_poll(f->w, FLEET_POLL_MS, &ev, msg, len);

	for (size_t i = 0; i < ev.n; i++)
		fleet_take(f, &ev.ev[i].kv, ev.ev[i].type == CPN_ETCD_EV_DELETE);
	if (ev.revision > f->rev)
		f->rev = ev.revision;
	cpn_etcd_events_free(&ev);
	return rc;
}

static void fleet_down(struct fleet *f, int rc, const char *msg)
{
	__u64 now = mono_ms();

	if (!f->down_since) {
		f->down_since = now;
		f->down_logged = now;
		f->down_said = true;
		logf_("etcd %s: %s; the router keeps running configuration revision %lld, "
		      "retrying",
		      rc == CPN_ETCD_EUNREACH ? "unreachable" : "failed", msg,
		      (long long)f->applied_rev);
	} else if (now - f->down_logged >= FLEET_DOWN_LOG_MS) {
		f->down_logged = now;
		f->down_said = true;
		logf_("etcd still unavailable after %llu s: %s",
		      (unsigned long long)((now - f->down_since) / 1000), msg);
	}
}

/* A connection is back for good once it has lasted FLEET_STABLE_MS: until
 * then a new failure belongs to the same outage (said once, and every
 * FLEET_DOWN_LOG_MS; backoff still growing), so an endpoint that accepts and
 * drops every watch neither floods the log nor is hammered. That etcd is
 * back is said after each time that it is away was.
 */
#define FLEET_STABLE_MS 1000

static void *fleet_main(void *arg)
{
	struct fleet *f = arg;
	__u64 next_try = 0, backoff = 0, up_since = 0;
	char msg[512];
	int rc;

	while (!stopping(f)) {
		__u64 now = mono_ms();

		if (!f->up) {
			if (now < next_try) {
				usleep(20000);
				continue;
			}
			rc = fleet_connect(f, msg, sizeof(msg));
			if (rc) {
				backoff = backoff ? backoff * 2 : FLEET_BACKOFF_MIN_MS;
				if (backoff > FLEET_BACKOFF_MAX_MS)
					backoff = FLEET_BACKOFF_MAX_MS;
				next_try = now + backoff;
				fleet_down(f, rc, msg);
				continue;
			}
			up_since = now;
			if (f->down_since && f->down_said)
				logf_("etcd at %s reachable again after %llu ms: catching up from "
				      "revision %lld",
				      cpn_etcd_endpoint(f->e),
				      (unsigned long long)(now - f->down_since), (long long)f->rev);
			else if (!f->ever_up)
				logf_("following %s at etcd %s from revision %lld as router %s",
				      f->prefix, cpn_etcd_endpoint(f->e), (long long)f->rev, f->me);
			f->down_said = false;
			f->ever_up = true;
		}
		if (f->down_since && now - up_since >= FLEET_STABLE_MS) {
			f->down_since = 0; /* the outage is over */
			backoff = 0;
		}
		rc = fleet_tick(f, msg, sizeof(msg));
		if (!rc)
			rc = fleet_watch(f, msg, sizeof(msg));
		if (!rc)
			continue;
		fleet_disconnect(f);
		if (rc == CPN_ETCD_ECOMPACTED) { /* list again, at once */
			logf_("%s", msg);
			f->rev = 0;
			continue;
		}
		if (!f->down_since) /* a new outage */
			backoff = 0;
		backoff = backoff ? backoff * 2 : FLEET_BACKOFF_MIN_MS;
		if (backoff > FLEET_BACKOFF_MAX_MS)
			backoff = FLEET_BACKOFF_MAX_MS;
		next_try = mono_ms() + backoff;
		fleet_down(f, rc, msg);
	}
	fleet_disconnect(f);
	return NULL;
}

/* Start following etcd: a usage error (a bad URL, name) is said at once. */
static int fleet_start(struct daemon *d)
{
	const struct cpnctl_daemon_opts *o = d->o;
	struct fleet *f = calloc(1, sizeof(*f));
	sigset_t all, old;
	struct cpn_err err;
	char msg[512];
	int e;

	if (!f)
		return cpnctl_fail("out of memory");
	f->d = d;
	pthread_mutex_init(&f->lock, NULL);
	cpn_fleet_prefix(f->prefix, sizeof(f->prefix), o->cluster);
	if (o->router_name) {
		snprintf(f->me, sizeof(f->me), "%s", o->router_name);
	} else if (gethostname(f->me, sizeof(f->me) - 1) || !cpn_fleet_name_ok(f->me)) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		return cpnctl_usage(cpnctl_usage_daemon,
				    "the host name is no router name: give --router-name NAME");
	}
	f->e = cpn_etcd_open(o->etcd, CPN_FLEET_ETCD_TIMEOUT_MS, msg, sizeof(msg));
	if (!f->e) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		return cpnctl_usage(cpnctl_usage_daemon, "--etcd: %s", msg);
	}
	if (cpn_ctl_open(&f->ctl, o->pin_dir, o->state_dir, &err)) {
		cpn_etcd_close(f->e);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return cpnctl_fail("%s", err.msg);
	}
	/* Until etcd says another router holds one, the joined nodes of the
	 * desired state are this router's own: it admitted them.
	 */
	for (int i = 0; i < d->cfg.n_nodes; i++)
		if (d->cfg.nodes[i].joined)
			f->mine[d->cfg.nodes[i].id] = true;
	d->fleet = f;
	/* Signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&f->thread, NULL, fleet_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		d->fleet = NULL;
		cpn_ctl_close(&f->ctl);
		cpn_etcd_close(f->e);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return cpnctl_fail("cannot start the etcd thread: %s", strerror(e));
	}
	f->started = true;
	return 0;
}

static void fleet_stop(struct daemon *d)
{
	struct fleet *f = d->fleet;

	if (!f)
		return;
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
	if (f->started)
		pthread_join(f->thread, NULL);
	/* The lease is left to run out: a daemon started again within it takes
	 * its keys over; otherwise they go when it ends.
	 */
	d->fleet = NULL;
	cpn_ctl_close(&f->ctl);
	cpn_etcd_close(f->e);
	free(f->config);
	free(f->last_want);
	if (f->have_good)
		cpn_cfg_free(&f->good);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- the loop ---------------------------------------------------------- */

int cpnctl_daemon(const struct cpnctl_daemon_opts *o)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct daemon *d = calloc(1, sizeof(*d));
	struct cpn_dirs dirs = {o->pin_dir, o->state_dir};
	struct cpn_err err;
	const char *metrics;
	int rc = CPN_EXIT_OK;

	if (!d)
		return cpnctl_fail("out of memory");
	d->o = o;
	d->sock = -1;
	d->daemon_lock = -1;
	pthread_mutex_init(&d->lock, NULL);
	cpn_cfg_init(&d->cfg);
	d->guard = guard_new();
	if (!d->guard) {
		rc = cpnctl_fail("out of memory or no random numbers");
		goto out_free;
	}
	if (o->config && (rc = cpn_op_apply_file(&dirs, o->config, &err))) {
		cpnctl_fail("%s", err.msg);
		goto out_free;
	}
	if (cpn_ctl_open(&d->ctl, o->pin_dir, o->state_dir, &err)) {
		rc = cpnctl_fail("%s", err.msg);
		goto out_free;
	}
	{
		char path[600];

		snprintf(path, sizeof(path), "%s.daemon", d->ctl.state_path);
		d->daemon_lock = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
		if (d->daemon_lock < 0 || flock(d->daemon_lock, LOCK_EX | LOCK_NB)) {
			rc = cpnctl_fail("another cpnctl daemon is running for %s (lock %s): stop "
					 "it first",
					 o->pin_dir, path);
			goto out_close;
		}
	}
	if (reload(d)) {
		rc = CPN_EXIT_FAIL;
		goto out_close;
	}
	d->start_ns = cpn_now_ns();
	d->sock = open_socket(d->cfg.control_port);
	if (d->sock < 0) {
		rc = cpnctl_fail("cannot bind the control port %u: %s", d->cfg.control_port,
				 strerror(errno));
		goto out_close;
	}
	d->sock_port = d->cfg.control_port;
	metrics = o->metrics ? o->metrics : d->cfg.metrics;
	if (metrics && *metrics) {
		d->srv = cpn_http_start(metrics, render, d, err.msg, sizeof(err.msg));
		if (!d->srv) {
			rc = cpnctl_fail("%s", err.msg);
			goto out_close;
		}
	}
	snprintf(d->metrics_addr, sizeof(d->metrics_addr), "%s", d->cfg.metrics);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	logf_("watching %s (control port %u, metrics %s)", o->pin_dir, d->cfg.control_port,
	      metrics ? metrics : "off");
	if (o->etcd && (rc = fleet_start(d)))
		goto out_close;

	while (!stop_flag) {
		struct pollfd pfd = {.fd = d->sock, .events = POLLIN};
		__u64 now;

		if (poll(&pfd, 1, TICK_MS) > 0 && (pfd.revents & POLLIN))
			receive(d);
		if (hup_flag) {
			hup_flag = 0;
			if (o->config) {
				logf_("SIGHUP: applying %s", o->config);
				if (cpn_op_apply_file(&dirs, o->config, &err))
					logf_("SIGHUP: %s refused, the running state is unchanged: "
					      "%s",
					      o->config, err.msg);
			} else {
				logf_("SIGHUP: reloading the desired state");
			}
			reload(d);
		}
		now = cpn_now_ns();
		/* Pick up changes made by the CLI meanwhile. */
		{
			struct stat st;

			if (!stat(d->ctl.state_path, &st) &&
			    (st.st_mtim.tv_sec != d->state_mtime.tv_sec ||
			     st.st_mtim.tv_nsec != d->state_mtime.tv_nsec))
				reload(d);
		}
		rebind(d);
		watch(d, now);
		probe(d, now);
		retire(d, now);
		gc_retired(d, now);
		event_flush(&d->guard->ev_join, now);
		event_flush(&d->guard->ev_fail, now);
		event_flush(&d->guard->ev_retire, now);
		event_flush(&d->guard->ev_delete, now);
		event_flush(&d->guard->ev_live, now);
	}
	logf_("stopping; the data plane keeps running");
out_close:
	fleet_stop(d);
	if (d->srv)
		cpn_http_stop(d->srv);
	if (d->sock >= 0)
		close(d->sock);
	cpn_ctl_close(&d->ctl);
	if (d->daemon_lock >= 0)
		close(d->daemon_lock);
out_free:
	free(d->guard);
	cpn_cfg_free(&d->cfg);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return rc;
}
