// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The worker library's public face (cpn/worker.h): options from text, a
 * node (worker_node.h) around the application's handler, its life.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpn/worker.h"
#include "worker_node.h"
#include "cpn_util.h"

struct cpn_worker_config {
	struct wk_node_cfg node;
	char *metrics;
	int have_listen;
	char err[256];
};

struct cpn_worker {
	struct wk_node n;
	struct wk_handler h;
	struct wk_node_cfg c;
	char *metrics;
	int started, stopped;
};

/* ---- configuration ------------------------------------------------------------ */

struct cpn_worker_config *cpn_worker_config_new(void)
{
	struct cpn_worker_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->node.max_batch = 8;
	c->node.max_delay_us = 500;
	c->node.capacity = 1;
	c->node.queue_len = 4096;
	c->node.load_interval_ms = 50;
	c->node.freshness_ms = CPN_FRESH_WINDOW_MS;
	c->node.token_rule = WK_TOKEN_ADAPT;
	c->node.frag = (struct wk_frag_cfg){
	    .max_message = 4u << 20,
	    .timeout_ms = 2000,
	    .client_budget = 8u << 20,
	    .budget = 64u << 20,
	};
	return c;
}

void cpn_worker_config_free(struct cpn_worker_config *c)
{
	if (!c)
		return;
	free(c->metrics);
	free(c);
}

const char *cpn_worker_config_error(const struct cpn_worker_config *c)
{
	return c ? c->err : "no configuration";
}

static int cfg_err(struct cpn_worker_config *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_err(struct cpn_worker_config *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return rc;
}

static int set_int(struct cpn_worker_config *c, const char *name, const char *v, uint64_t lo,
		   uint64_t hi, uint64_t *out)
{
	if (cpn_parse_u64(v, lo, hi, out))
		return cfg_err(c, -EINVAL, "%s wants an integer in %llu..%llu, not '%s'", name,
			       (unsigned long long)lo, (unsigned long long)hi, v);
	return 0;
}

/* Bytes: a whole number, perhaps with K, M or G (powers of 1024). */
static int set_size(struct cpn_worker_config *c, const char *name, const char *v, uint64_t lo,
		    uint64_t hi, uint64_t *out)
{
	if (!cpn_parse_size(v, lo, hi, out))
		return 0;
	return cfg_err(c, -EINVAL,
		       "%s wants bytes in %llu..%llu (K, M, G: powers of 1024), not '%s'", name,
		       (unsigned long long)lo, (unsigned long long)hi, v);
}

static int set_routers(struct cpn_worker_config *c, const char *v)
{
	struct wk_addr r[WK_MAX_ROUTERS];
	int n = c->node.n_routers, rc = 0;
	char *copy = strdup(v), *save = NULL, *tok;

	if (!copy)
		return cfg_err(c, -ENOMEM, "out of memory");
	memcpy(r, c->node.routers, sizeof(r));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= WK_MAX_ROUTERS) {
			rc = cfg_err(c, -EINVAL, "router: at most %d routers", WK_MAX_ROUTERS);
			break;
		}
		if (wk_addr_parse(tok, &r[n++])) {
			rc = cfg_err(c, -EINVAL,
				     "router: bad address '%s' (IP:PORT or [IPV6]:PORT)", tok);
			break;
		}
	}
	if (!rc && n == c->node.n_routers)
		rc = cfg_err(c, -EINVAL, "router: no address in '%s'", v);
	free(copy);
	if (rc)
		return rc;
	memcpy(c->node.routers, r, sizeof(r));
	c->node.n_routers = n;
	return 0;
}

static int set_tokens(struct cpn_worker_config *c, const char *v)
{
	uint64_t u;

	if (!strcmp(v, "adapt"))
		c->node.token_rule = WK_TOKEN_ADAPT;
	else if (!strcmp(v, "idle"))
		c->node.token_rule = 1;
	else if (!strcmp(v, "off"))
		c->node.token_rule = WK_TOKEN_OFF;
	else if (!strncmp(v, "below:", 6) && !cpn_parse_u64(v + 6, 1, 65535, &u))
		c->node.token_rule = (int)u;
	else
		return cfg_err(c, -EINVAL,
			       "tokens is adapt, idle, below:T (1..65535) or off, not '%s'", v);
	return 0;
}

int cpn_worker_config_set(struct cpn_worker_config *c, const char *name, const char *value)
{
	char key[32];
	uint64_t u;
	int rc;

	if (!c)
		return -EINVAL;
	c->err[0] = 0;
	if (!name || !value)
		return cfg_err(c, -EINVAL, "a name and a value, please");
	if (strlen(name) >= sizeof(key))
		return cfg_err(c, -ENOENT, "no option '%s'", name);
	for (size_t i = 0; (key[i] = name[i] == '_' ? '-' : name[i]); i++)
		;
#define INT(k, lo, hi, field, type)                                                                \
	if (!strcmp(key, k)) {                                                                     \
		if ((rc = set_int(c, k, value, lo, hi, &u)))                                       \
			return rc;                                                                 \
		c->node.field = (type)u;                                                           \
		return 0;                                                                          \
	}
#define SIZE(k, lo, hi, field, type)                                                               \
	if (!strcmp(key, k)) {                                                                     \
		if ((rc = set_size(c, k, value, lo, hi, &u)))                                      \
			return rc;                                                                 \
		c->node.field = (type)u;                                                           \
		return 0;                                                                          \
	}
	INT("node-id", 1, 65535, node_id, uint16_t);
	INT("max-batch", 1, WK_MAX_BATCH, max_batch, int);
	INT("max-delay-us", 0, WK_MAX_DELAY_US, max_delay_us, unsigned);
	INT("capacity", 1, WK_MAX_SLOTS, capacity, int);
	INT("advertise-capacity", 0, 65535, advertise_capacity, int);
	INT("queue", 1, 65535, queue_len, int);
	INT("load-interval-ms", 1, 60000, load_interval_ms, unsigned);
	INT("liveness-ms", 0, 600000, liveness_ms, unsigned);
	INT("delay-us", 0, WK_MAX_DELAY_US, delay_us, unsigned);
	INT("frag-timeout-ms", 1, 600000, frag.timeout_ms, unsigned);
	INT("freshness-ms", 1, 600000, freshness_ms, unsigned);
	SIZE("max-message", 1, CPN_FRAG_MAX_TOTAL, frag.max_message, uint32_t);
	SIZE("frag-client-budget", 1, 1ull << 40, frag.client_budget, uint64_t);
	SIZE("frag-budget", 1, 1ull << 40, frag.budget, uint64_t);
#undef INT
#undef SIZE
	if (!strcmp(key, "listen")) {
		struct wk_addr a;

		if (wk_addr_parse(value, &a))
			return cfg_err(c, -EINVAL, "listen: bad address '%s'", value);
		c->node.listen = a;
		c->have_listen = 1;
		return 0;
	}
	if (!strcmp(key, "router") || !strcmp(key, "routers"))
		return set_routers(c, value);
	if (!strcmp(key, "key")) {
		__u64 k[2];

		if (cpn_key_parse(value, k))
			return cfg_err(c, -EINVAL, "key wants 32 hex digits");
		if (c->node.have_join_key && (k[0] != c->node.key[0] || k[1] != c->node.key[1]))
			return cfg_err(c, -EINVAL,
				       "key differs from join-key: a node that joins signs with "
				       "the join key");
		c->node.key[0] = k[0];
		c->node.key[1] = k[1];
		c->node.have_key = 1;
		return 0;
	}
	if (!strcmp(key, "join-key")) {
		__u64 k[2];

		if (cpn_key_parse(value, k))
			return cfg_err(c, -EINVAL, "join-key wants 32 hex digits");
		if (c->node.have_key && !c->node.have_join_key &&
		    (k[0] != c->node.key[0] || k[1] != c->node.key[1]))
			return cfg_err(c, -EINVAL,
				       "join-key differs from key: a node that joins signs with "
				       "the join key");
		/* The join key is the node's key too: a joined node is known
		 * by it (auto_join gives it the join key).
		 */
		c->node.key[0] = k[0];
		c->node.key[1] = k[1];
		c->node.have_key = 1;
		c->node.have_join_key = 1;
		return 0;
	}
	if (!strcmp(key, "payload-key")) {
		/* TENANT:HEX64; again for a tenant: its key replaced. */
		const char *colon = strchr(value, ':');
		uint8_t k[CPN_SEAL_KEY_LEN];
		char t[16];
		int i;

		if (!colon || (size_t)(colon - value) >= sizeof(t))
			return cfg_err(c, -EINVAL, "payload-key wants TENANT:HEX64, not '%s'",
				       value);
		memcpy(t, value, (size_t)(colon - value));
		t[colon - value] = 0;
		if (cpn_parse_u64(t, 0, UINT32_MAX, &u))
			return cfg_err(c, -EINVAL, "payload-key: bad tenant '%s'", t);
		if (cpn_seal_key_parse(colon + 1, k))
			return cfg_err(c, -EINVAL, "payload-key: tenant %s wants 64 hex digits", t);
		for (i = 0; i < c->node.n_pkeys && c->node.pkeys[i].tenant != u; i++)
			;
		if (i == WK_MAX_PKEYS)
			return cfg_err(c, -EINVAL, "payload-key: at most %d tenants", WK_MAX_PKEYS);
		c->node.pkeys[i].tenant = (uint32_t)u;
		memcpy(c->node.pkeys[i].key, k, sizeof(k));
		if (i == c->node.n_pkeys)
			c->node.n_pkeys++;
		return 0;
	}
	if (!strcmp(key, "hop-key")) {
		__u64 k[2];

		if (cpn_key_parse(value, k))
			return cfg_err(c, -EINVAL, "hop-key wants 32 hex digits");
		c->node.hop_key[0] = k[0];
		c->node.hop_key[1] = k[1];
		c->node.have_hop_key = 1;
		return 0;
	}
	if (!strcmp(key, "tokens"))
		return set_tokens(c, value);
	if (!strcmp(key, "metrics")) {
		struct wk_addr a;
		char *m;

		if (wk_addr_parse(value, &a))
			return cfg_err(c, -EINVAL, "metrics: bad address '%s'", value);
		if (!(m = strdup(value)))
			return cfg_err(c, -ENOMEM, "out of memory");
		free(c->metrics);
		c->metrics = m;
		return 0;
	}
	return cfg_err(c, -ENOENT, "no option '%s'", name);
}

int cpn_worker_config_check(struct cpn_worker_config *c)
{
	if (!c)
		return -EINVAL;
	c->err[0] = 0;
	if (!c->have_listen || !c->node.node_id || !c->node.n_routers)
		return cfg_err(c, -EINVAL, "listen, node-id and router are required");
	for (int i = 0; i < c->node.n_routers; i++) {
		int v4 = c->node.listen.ss.ss_family == AF_INET;

		if (!wk_addr_reachable(&c->node.listen, &c->node.routers[i]))
			return cfg_err(c, -EINVAL,
				       "router: an IPv%c router needs an IPv%c listen%s",
				       v4 ? '6' : '4', v4 ? '6' : '4', v4 ? "" : " (or [::])");
	}
	return 0;
}

/* ---- the node ------------------------------------------------------------------ */

int cpn_worker_open(struct cpn_worker **out, struct cpn_worker_config *c,
		    const struct cpn_worker_handler *h, char *err, size_t errlen)
{
	struct cpn_worker *w;
	int rc;

	*out = NULL;
	if (errlen)
		*err = 0;
	if (!c || !h || !h->slot_open || !h->run) {
		snprintf(err, errlen,
			 "a configuration and a handler with slot_open and run, please");
		return -EINVAL;
	}
	if (cpn_worker_config_check(c)) {
		snprintf(err, errlen, "%s", c->err);
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->c = c->node;
	if (c->metrics && !(w->metrics = strdup(c->metrics))) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->c.metrics = w->metrics;
	w->h = (struct wk_handler){
	    .kernel = h->kernel ? h->kernel : "app",
	    .backend = h->backend ? h->backend : "none",
	    .device = h->device ? h->device : "none",
	    .ctx = h->user,
	    .payload_ok = h->payload_ok,
	    .slot_open = h->slot_open,
	    .warm = h->warm,
	    .run = h->run,
	    .slot_close = h->slot_close,
	    .queue_extra = h->queue_extra,
	    .svc_hint_ns = h->svc_hint_ns,
	};
	rc = wk_node_open(&w->n, &w->c, &w->h, err, errlen);
	if (rc) {
		wk_node_close(&w->n);
		free(w->metrics);
		free(w);
		return rc < 0 ? rc : -EIO;
	}
	*out = w;
	return 0;
}

int cpn_worker_start(struct cpn_worker *w, char *err, size_t errlen)
{
	int rc;

	if (w->started)
		return 0;
	w->started = 1;
	rc = wk_node_start(&w->n, err, errlen);
	return rc < 0 ? rc : rc ? -EIO : 0;
}

void cpn_worker_drain(struct cpn_worker *w)
{
	wk_node_drain(&w->n);
}

void cpn_worker_abandon(struct cpn_worker *w)
{
	wk_node_abandon(&w->n);
}

const char *cpn_worker_error(struct cpn_worker *w)
{
	return wk_node_failed(&w->n);
}

int cpn_worker_wait(struct cpn_worker *w, int timeout_ms)
{
	uint64_t end = cpn_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;

	for (;;) {
		if (wk_node_failed(&w->n))
			return -EIO;
		if (wk_node_done(&w->n))
			return 1;
		if (timeout_ms >= 0 && cpn_now_ns() >= end)
			return 0;
		usleep(5000);
	}
}

void cpn_worker_stop(struct cpn_worker *w)
{
	if (!w || w->stopped)
		return;
	w->stopped = 1;
	wk_node_stop(&w->n, w->started);
}

void cpn_worker_close(struct cpn_worker *w)
{
	if (!w)
		return;
	cpn_worker_stop(w);
	wk_node_close(&w->n);
	free(w->metrics);
	free(w);
}

int cpn_worker_describe(struct cpn_worker *w, char *buf, size_t len)
{
	const struct wk_node_cfg *c = &w->c;
	char l[INET6_ADDRSTRLEN + 8];

	wk_addr_str(&c->listen, l, sizeof(l));
	return snprintf(buf, len,
			"node %u on %s: kernel %s, backend %s (%s), %d slot(s) x batch %d "
			"(max delay %u us), queue %d, %d router(s)%s%s%s%s",
			c->node_id, l, w->h.kernel, w->h.backend, w->h.device, c->capacity,
			c->max_batch, c->max_delay_us, c->queue_len, c->n_routers,
			c->have_key ? ", signed" : "", c->delay_us ? ", replies held back" : "",
			c->have_join_key ? ", joins" : "", c->have_hop_key ? ", routed only" : "");
}

/* ---- cpn_worker_run: the signals -------------------------------------------------- */

/* A repeat of the signal within this long of the first is the same request
 * (a wrapper such as timeout(1), or a terminal's Ctrl-C, may deliver it to
 * the process and to its group); a later one stops without finishing.
 */
#define SIGNAL_REPEAT_NS 1000000000ull

/* SIGTERM and SIGINT are caught by a handler, not blocked and waited for:
 * libraries start threads of their own (OpenBLAS does, an interpreter may),
 * with the signals unblocked, and a process-directed signal may land on any
 * of them. The handler only writes the signal's number to a pipe.
 */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int e = errno;
	unsigned char b = (unsigned char)sig;

	if (write(sig_pipe[1], &b, 1) < 0) {
		/* full pipe: signals enough are pending already */
	}
	errno = e;
}

struct sig_saved {
	struct sigaction term, intr, pipe;
};

static int signals_catch(struct sig_saved *old)
{
	struct sigaction sa, ign;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ign = sa;
	ign.sa_handler = SIG_IGN;
	if (sigaction(SIGTERM, &sa, &old->term) || sigaction(SIGINT, &sa, &old->intr) ||
	    sigaction(SIGPIPE, &ign, &old->pipe))
		return -errno;
	return 0;
}

static void signals_release(const struct sig_saved *old)
{
	sigaction(SIGTERM, &old->term, NULL);
	sigaction(SIGINT, &old->intr, NULL);
	sigaction(SIGPIPE, &old->pipe, NULL);
	for (int i = 0; i < 2; i++) {
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
		sig_pipe[i] = -1;
	}
}

int cpn_worker_run(struct cpn_worker *w, const char *prog)
{
	struct pollfd p = {.events = POLLIN};
	struct sig_saved old;
	uint64_t first = 0;
	char err[256] = "";
	const char *why;
	int rc = 0;

	if (!prog)
		prog = "cpn-worker";
	memset(&old, 0, sizeof(old));
	if (sig_pipe[0] >= 0) {
		fprintf(stderr, "%s: cpn_worker_run: already running\n", prog);
		return -EBUSY;
	}
	rc = signals_catch(&old);
	if (rc) {
		fprintf(stderr, "%s: cannot catch signals: %s\n", prog, strerror(-rc));
		signals_release(&old);
		return rc;
	}
	rc = cpn_worker_start(w, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		signals_release(&old);
		return rc;
	}
	p.fd = sig_pipe[0];
	for (;;) {
		unsigned char sigs[16];
		ssize_t got = 0;

		/* Bounded wait: a thread's failure and the end of the drain
		 * are looked at every 100 ms.
		 */
		if (poll(&p, 1, 100) > 0)
			got = read(sig_pipe[0], sigs, sizeof(sigs));
		for (ssize_t k = 0; k < got; k++) {
			if (!first) {
				first = cpn_now_ns();
				fprintf(stderr, "%s: %s: draining\n", prog, strsignal(sigs[k]));
				wk_node_drain(&w->n);
			} else if (!wk_node_abandoned(&w->n) &&
				   cpn_now_ns() - first >= SIGNAL_REPEAT_NS) {
				fprintf(stderr,
					"%s: %s again: stopping without finishing the queue\n",
					prog, strsignal(sigs[k]));
				wk_node_abandon(&w->n);
				rc = 1;
			}
		}
		why = wk_node_failed(&w->n);
		if (why && !wk_node_abandoned(&w->n)) {
			fprintf(stderr, "%s: %s\n", prog, why);
			wk_node_abandon(&w->n);
			rc = 1;
		}
		if (wk_node_done(&w->n))
			break;
	}
	cpn_worker_stop(w);
	signals_release(&old);
	return rc;
}
