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
 *   - Prometheus /metrics.
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
#include <sys/socket.h>

#include "cpn/proto.h"
#include "cpn/sched.h"
#include "cpn/siphash.h"
#include "cpnctl_cmd.h"
#include "ops.h"
#include "cpn_http.h"

#define TICK_MS 50

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_flag = 1;
	else
		stop_flag = 1;
}

struct daemon {
	const struct cpnctl_daemon_opts *o;
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
	struct timespec state_mtime; /* of the state file when last loaded */
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logf_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "cpnctl daemon: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static int render(void *arg, FILE *out)
{
	struct daemon *d = arg;
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = cpn_metrics_render(&d->ctl.maps, &d->cfg, out);
	pthread_mutex_unlock(&d->lock);
	return rc;
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

/* ---- elastic join ------------------------------------------------------ */

/* Why a LOAD from an unknown node may not join under `cfg`; NULL if it may. */
static const char *join_refusal(const struct cpn_cfg *cfg, const struct cfg_node *n,
				const struct cpn_hdr *h, const __u8 *buf, size_t len)
{
	__u64 tag;

	if (!cpn_cfg_join_allowed(cfg, n))
		return "address not in an auto_join prefix";
	if (!cfg->auto_join.has_key)
		return NULL;
	if (!(h->flags & htons(CPN_F_AUTH)) || len < CPN_HDR_LEN + CPN_TAG_LEN)
		return "not signed with the auto_join key";
	memcpy(&tag, buf + CPN_HDR_LEN, sizeof(tag));
	if (tag != cpn_tag_node(cfg->auto_join.key, h))
		return "wrong tag for the auto_join key";
	return NULL;
}

/* A refused node keeps sending heartbeats: say so once per 10 s per id. */
static void log_refusal(struct daemon *d, __u16 id, const char *a, const char *why)
{
	__u64 now = cpn_now_ns();

	if (d->refusal_logged[id] && now - d->refusal_logged[id] < 10000000000ULL)
		return;
	d->refusal_logged[id] = now;
	logf_("LOAD from unknown node %u at %s: %s: join refused", id, a, why);
}

/* A join, as an edit of the desired state: checked again against the state
 * loaded under the lock.
 */
struct join_req {
	struct daemon *d;
	struct cfg_node n;
	const struct cpn_hdr *h;
	const __u8 *buf;
	size_t len;
	const char *addr;
};

static int edit_join(struct cpn_cfg *cfg, void *arg, struct cpn_err *err)
{
	struct join_req *j = arg;
	const char *why = join_refusal(cfg, &j->n, j->h, j->buf, j->len);

	if (why) {
		log_refusal(j->d, j->n.id, j->addr, why);
		return snprintf(err->msg, sizeof(err->msg), "refused"), CPN_EXIT_USAGE;
	}
	if (cfg->auto_join.has_key) {
		j->n.has_key = true;
		j->n.key[0] = cfg->auto_join.key[0];
		j->n.key[1] = cfg->auto_join.key[1];
	}
	if (cpn_cfg_node(cfg, j->n.id)) {
		logf_("LOAD from %s claims node id %u, which is another node's: ignored", j->addr,
		      j->n.id);
		return snprintf(err->msg, sizeof(err->msg), "id taken"), CPN_EXIT_USAGE;
	}
	j->n.weight = cfg->auto_join.weight ? cfg->auto_join.weight : CPN_DEFAULT_WEIGHT;
	if (cpn_cfg_add_joined(cfg, &j->n))
		return snprintf(err->msg, sizeof(err->msg), "out of memory"), CPN_EXIT_FAIL;
	return 0;
}

static void join(struct daemon *d, const struct sockaddr_in6 *from, const __u8 *buf, size_t len)
{
	const struct cpn_hdr *h = (const struct cpn_hdr *)buf;
	struct join_req j = {.d = d, .h = h, .buf = buf, .len = len};
	struct cpn_err err;
	const char *why;
	char a[64];
	int rc;

	if (cpn_hdr_check(h, (__u32)len) != CPN_HDR_OK || h->type != CPN_T_LOAD)
		return;
	j.n.id = ntohs(h->node_id);
	from_sockaddr(from, &j.n);
	cpn_addr_str(j.n.addr, j.n.family, a, sizeof(a));
	j.addr = a;
	if (!j.n.id || j.n.id >= CPN_MAX_NODES)
		return;
	/* Screened against the state in memory first: a refused node costs
	 * neither the lock nor a parse, however often it calls.
	 */
	why = join_refusal(&d->cfg, &j.n, h, buf, len);
	if (why) {
		log_refusal(d, j.n.id, a, why);
		return;
	}
	rc = cpn_op_change_ctl(&d->ctl, edit_join, &j, &err);
	if (rc == CPN_EXIT_OK) {
		d->joined_at[j.n.id] = cpn_now_ns();
		logf_("node %u at %s:%u joined services of auto_join", j.n.id, a, ntohs(j.n.port));
	} else if (rc == CPN_EXIT_FAIL) {
		logf_("join of node %u at %s failed: %s", j.n.id, a, err.msg);
	}
	reload(d);
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

		if (!n->joined || silence_ns(r->d, id, r->now) <= r->limit)
			continue;
		cpn_cfg_del_node(cfg, id);
		r->d->joined_at[id] = 0;
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

		if (n->joined && silence_ns(d, n->id, now) > r.limit)
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

		if (d->known[n->id] && live != d->was_live[n->id]) {
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

static void probe(struct daemon *d, __u64 now)
{
	__u64 idle = (__u64)d->o->probe_ms * 1000000ULL;

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
		cpn_msg_init(&m, CPN_T_PROBE);
		m.node_id = n->id;
		m.router_ts = (__u32)(now / 1000);
		cpn_hdr_encode(&m, &h);
		to_sockaddr(&nc, &to);
		sendto(d->sock, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to));
		d->measured[n->id] = now;
	}
}

/* ---- the loop ---------------------------------------------------------- */

int cpnctl_daemon(const struct cpnctl_daemon_opts *o)
{
	struct cpn_http *srv = NULL;
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
	metrics = o->metrics ? o->metrics : d->cfg.metrics;
	if (metrics && *metrics) {
		srv = cpn_http_start(metrics, render, d, err.msg, sizeof(err.msg));
		if (!srv) {
			rc = cpnctl_fail("%s", err.msg);
			goto out_close;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	logf_("watching %s (control port %u, metrics %s)", o->pin_dir, d->cfg.control_port,
	      metrics ? metrics : "off");

	while (!stop_flag) {
		struct pollfd pfd = {.fd = d->sock, .events = POLLIN};
		__u64 now;

		if (poll(&pfd, 1, TICK_MS) > 0 && (pfd.revents & POLLIN)) {
			__u8 buf[2048];
			struct sockaddr_in6 from;
			socklen_t fl = sizeof(from);
			ssize_t n;

			while ((n = recvfrom(d->sock, buf, sizeof(buf), 0, (struct sockaddr *)&from,
					     &fl)) > 0) {
				join(d, &from, buf, (size_t)n);
				fl = sizeof(from);
			}
		}
		if (hup_flag) {
			hup_flag = 0;
			if (o->config) {
				logf_("SIGHUP: applying %s", o->config);
				if (cpn_op_apply_file(&dirs, o->config, &err))
					logf_("SIGHUP: %s refused, the running state is unchanged: "
					      "%s",
					      o->config, err.msg);
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
		watch(d, now);
		probe(d, now);
		retire(d, now);
		gc_retired(d, now);
	}
	logf_("stopping; the data plane keeps running");
out_close:
	if (srv)
		cpn_http_stop(srv);
	if (d->sock >= 0)
		close(d->sock);
	cpn_ctl_close(&d->ctl);
	if (d->daemon_lock >= 0)
		close(d->daemon_lock);
out_free:
	cpn_cfg_free(&d->cfg);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return rc;
}
