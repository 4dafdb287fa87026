// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A node's /metrics (worker_metrics.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "worker_metrics.h"
#include "worker_node.h"
#include "cpn_http.h"
#include "cpn_prom.h"

/* One series of the worker: the labels node, kernel, backend, then the
 * NULL-terminated pairs that follow.
 */
static void put(FILE *f, struct wk_node *n, enum cpn_metric m, const char *suffix, double v, ...)
{
	struct cpn_prom_labels l;
	va_list ap;
	const char *k;

	cpn_prom_labels_reset(&l);
	cpn_prom_labelu(&l, "node", n->c.node_id);
	cpn_prom_label(&l, "kernel", n->h->kernel);
	cpn_prom_label(&l, "backend", n->h->backend);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)))
		cpn_prom_label(&l, k, va_arg(ap, const char *));
	va_end(ap);
	cpn_prom_double(f, m, suffix, &l, v);
}

/* A family with one series. */
static void one(FILE *f, struct wk_node *n, enum cpn_metric m, double v)
{
	cpn_prom_family(f, m);
	put(f, n, m, NULL, v, NULL);
}

int wk_metrics_render(struct wk_node *n, FILE *out)
{
	const struct wk_stats *st = &n->st;
	double cum;
	char le[40];

	cpn_prom_family(out, CPN_M_W_INFO);
	put(out, n, CPN_M_W_INFO, NULL, 1, "device", n->h->device, NULL);
	one(out, n, CPN_M_W_QUEUE, WK_LOAD(&n->q.queued));
	one(out, n, CPN_M_W_INFLIGHT, WK_LOAD(&n->q.inflight));
	one(out, n, CPN_M_W_CAPACITY, n->q.capacity);
	one(out, n, CPN_M_W_MAX_BATCH, n->c.max_batch);
	one(out, n, CPN_M_W_QUEUE_LIMIT, n->c.queue_len);
	one(out, n, CPN_M_W_REQUESTS, (double)WK_LOAD(&st->requests));

	cpn_prom_family(out, CPN_M_W_REPLIES);
	put(out, n, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_OK]), "status", "ok",
	    NULL);
	put(out, n, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_BAD_REQUEST]),
	    "status", "bad_request", NULL);
	put(out, n, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_KERNEL_ERROR]),
	    "status", "kernel_error", NULL);
	put(out, n, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_UNSUPPORTED]),
	    "status", "unsupported", NULL);
	put(out, n, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_TOO_LARGE]),
	    "status", "too_large", NULL);

	cpn_prom_family(out, CPN_M_W_BUSY);
	put(out, n, CPN_M_W_BUSY, NULL, (double)WK_LOAD(&st->busy_overload), "reason", "overload",
	    NULL);
	put(out, n, CPN_M_W_BUSY, NULL, (double)WK_LOAD(&st->busy_draining), "reason", "draining",
	    NULL);

	one(out, n, CPN_M_W_PROBES, (double)WK_LOAD(&st->probes));
	one(out, n, CPN_M_W_LOADS, (double)WK_LOAD(&st->loads));
	cpn_prom_family(out, CPN_M_W_IGNORED);
	put(out, n, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->ignored_malformed), "reason",
	    "malformed", NULL);
	put(out, n, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->ignored_type), "reason", "type",
	    NULL);
	put(out, n, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->dropped_unrouted), "reason",
	    "unrouted", NULL);
	put(out, n, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->dropped_stale), "reason", "stale",
	    NULL);
	put(out, n, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->dropped_replay), "reason", "replay",
	    NULL);
	one(out, n, CPN_M_W_SEND_ERRORS, (double)WK_LOAD(&st->send_errors));

	cpn_prom_family(out, CPN_M_W_BATCH);
	cum = 0;
	for (int b = 0; b < n->b.n_bounds; b++) {
		cum += (double)WK_LOAD(&st->batch_hist[b]);
		snprintf(le, sizeof(le), "%d", n->b.bounds[b]);
		put(out, n, CPN_M_W_BATCH, "_bucket", cum, "le", le, NULL);
	}
	put(out, n, CPN_M_W_BATCH, "_bucket", (double)WK_LOAD(&st->batch_count), "le", "+Inf",
	    NULL);
	put(out, n, CPN_M_W_BATCH, "_sum", (double)WK_LOAD(&st->batch_sum), NULL);
	put(out, n, CPN_M_W_BATCH, "_count", (double)WK_LOAD(&st->batch_count), NULL);

	cpn_prom_family(out, CPN_M_W_DURATION);
	cum = 0;
	for (int b = 0; b < WK_LAT_BUCKETS; b++) {
		cum += (double)WK_LOAD(&st->lat_hist[b]);
		cpn_prom_fmt_double(le, sizeof(le), wk_lat_bounds_us[b] / 1e6);
		put(out, n, CPN_M_W_DURATION, "_bucket", cum, "le", le, NULL);
	}
	put(out, n, CPN_M_W_DURATION, "_bucket", (double)WK_LOAD(&st->lat_count), "le", "+Inf",
	    NULL);
	put(out, n, CPN_M_W_DURATION, "_sum", (double)WK_LOAD(&st->lat_sum_us) / 1e6, NULL);
	put(out, n, CPN_M_W_DURATION, "_count", (double)WK_LOAD(&st->lat_count), NULL);

	one(out, n, CPN_M_W_SVC, WK_LOAD(&n->q.svc_us) / 1e6);
	one(out, n, CPN_M_W_UTIL, WK_LOAD(&n->q.util) / 255.0);
	one(out, n, CPN_M_W_DRAINING, WK_LOAD(&n->q.draining));

	one(out, n, CPN_M_W_FRAG_HELD, (double)(int64_t)WK_LOAD(&st->frag_held));
	cpn_prom_family(out, CPN_M_W_FRAG_LIMIT);
	put(out, n, CPN_M_W_FRAG_LIMIT, NULL, n->c.frag.max_message, "limit", "message", NULL);
	put(out, n, CPN_M_W_FRAG_LIMIT, NULL, (double)n->c.frag.client_budget, "limit", "client",
	    NULL);
	put(out, n, CPN_M_W_FRAG_LIMIT, NULL, (double)n->c.frag.budget, "limit", "total", NULL);
	cpn_prom_family(out, CPN_M_W_FRAG_MESSAGES);
	put(out, n, CPN_M_W_FRAG_MESSAGES, NULL, (double)WK_LOAD(&st->frag_msgs_in), "direction",
	    "request", NULL);
	put(out, n, CPN_M_W_FRAG_MESSAGES, NULL, (double)WK_LOAD(&st->frag_msgs_out), "direction",
	    "reply", NULL);
	cpn_prom_family(out, CPN_M_W_FRAG_TIMEOUTS);
	put(out, n, CPN_M_W_FRAG_TIMEOUTS, NULL, (double)WK_LOAD(&st->frag_timeouts_in),
	    "direction", "request", NULL);
	put(out, n, CPN_M_W_FRAG_TIMEOUTS, NULL, (double)WK_LOAD(&st->frag_timeouts_out),
	    "direction", "reply", NULL);
	cpn_prom_family(out, CPN_M_W_FRAG_DROPPED);
	put(out, n, CPN_M_W_FRAG_DROPPED, NULL, (double)WK_LOAD(&st->frag_dup), "reason",
	    "duplicate", NULL);
	put(out, n, CPN_M_W_FRAG_DROPPED, NULL, (double)WK_LOAD(&st->frag_malformed), "reason",
	    "malformed", NULL);
	put(out, n, CPN_M_W_FRAG_DROPPED, NULL, (double)WK_LOAD(&st->frag_unknown), "reason",
	    "unknown", NULL);
	cpn_prom_family(out, CPN_M_W_FRAG_REFUSED);
	put(out, n, CPN_M_W_FRAG_REFUSED, NULL, (double)WK_LOAD(&st->frag_too_large), "reason",
	    "too_large", NULL);
	put(out, n, CPN_M_W_FRAG_REFUSED, NULL, (double)WK_LOAD(&st->frag_over_client), "reason",
	    "client_budget", NULL);
	put(out, n, CPN_M_W_FRAG_REFUSED, NULL, (double)WK_LOAD(&st->frag_over_total), "reason",
	    "total_budget", NULL);
	if (fflush(out) || ferror(out))
		return -EIO;
	return 0;
}

/* ---- HTTP ------------------------------------------------------------- */

static int render(void *arg, FILE *out)
{
	return wk_metrics_render(arg, out);
}

int wk_metrics_start(struct wk_node *n, char *err, size_t errlen)
{
	if (!n->c.metrics)
		return 0;
	n->http = cpn_http_start(n->c.metrics, render, n, err, errlen);
	return n->http ? 0 : -EINVAL;
}

void wk_metrics_stop(struct wk_node *n)
{
	cpn_http_stop(n->http);
	n->http = NULL;
}
