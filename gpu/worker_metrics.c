// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker's Prometheus endpoint: GET /metrics, text format 0.0.4, served
 * by libmicrohttpd's own thread. Every series carries node, kernel and
 * backend ("none" for echo and synthetic, which use no backend).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "worker.h"
#include "cpn_http.h"
#include "cpn_prom.h"

/* One series of the worker: the labels node, kernel, backend, then the
 * NULL-terminated pairs that follow.
 */
static void put(FILE *f, struct worker *w, enum cpn_metric m, const char *suffix, double v, ...)
{
	struct cpn_prom_labels l;
	va_list ap;
	const char *k;

	cpn_prom_labels_reset(&l);
	cpn_prom_labelu(&l, "node", w->o.node_id);
	cpn_prom_label(&l, "kernel", wk_kernel_name(w->o.kernel));
	cpn_prom_label(&l, "backend", w->backend_name);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)))
		cpn_prom_label(&l, k, va_arg(ap, const char *));
	va_end(ap);
	cpn_prom_double(f, m, suffix, &l, v);
}

/* A family with one series. */
static void one(FILE *f, struct worker *w, enum cpn_metric m, double v)
{
	cpn_prom_family(f, m);
	put(f, w, m, NULL, v, NULL);
}

int wk_metrics_render(struct worker *w, FILE *out)
{
	const struct wk_stats *st = &w->st;
	double cum;
	char le[40];

	cpn_prom_family(out, CPN_M_W_INFO);
	put(out, w, CPN_M_W_INFO, NULL, 1, "device", w->device, NULL);
	one(out, w, CPN_M_W_QUEUE, WK_LOAD(&w->queued));
	one(out, w, CPN_M_W_INFLIGHT, WK_LOAD(&w->inflight));
	one(out, w, CPN_M_W_CAPACITY, w->report_capacity);
	one(out, w, CPN_M_W_MAX_BATCH, w->o.max_batch);
	one(out, w, CPN_M_W_QUEUE_LIMIT, w->o.queue_len);
	one(out, w, CPN_M_W_REQUESTS, (double)WK_LOAD(&st->requests));

	cpn_prom_family(out, CPN_M_W_REPLIES);
	put(out, w, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_OK]), "status", "ok",
	    NULL);
	put(out, w, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_BAD_REQUEST]),
	    "status", "bad_request", NULL);
	put(out, w, CPN_M_W_REPLIES, NULL, (double)WK_LOAD(&st->replies[CPN_ST_KERNEL_ERROR]),
	    "status", "kernel_error", NULL);

	cpn_prom_family(out, CPN_M_W_BUSY);
	put(out, w, CPN_M_W_BUSY, NULL, (double)WK_LOAD(&st->busy_overload), "reason", "overload",
	    NULL);
	put(out, w, CPN_M_W_BUSY, NULL, (double)WK_LOAD(&st->busy_draining), "reason", "draining",
	    NULL);

	one(out, w, CPN_M_W_PROBES, (double)WK_LOAD(&st->probes));
	one(out, w, CPN_M_W_LOADS, (double)WK_LOAD(&st->loads));
	cpn_prom_family(out, CPN_M_W_IGNORED);
	put(out, w, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->ignored_malformed), "reason",
	    "malformed", NULL);
	put(out, w, CPN_M_W_IGNORED, NULL, (double)WK_LOAD(&st->ignored_type), "reason", "type",
	    NULL);
	one(out, w, CPN_M_W_SEND_ERRORS, (double)WK_LOAD(&st->send_errors));

	cpn_prom_family(out, CPN_M_W_BATCH);
	cum = 0;
	for (int b = 0; b < w->n_batch_bounds; b++) {
		cum += (double)WK_LOAD(&st->batch_hist[b]);
		snprintf(le, sizeof(le), "%d", w->batch_bounds[b]);
		put(out, w, CPN_M_W_BATCH, "_bucket", cum, "le", le, NULL);
	}
	put(out, w, CPN_M_W_BATCH, "_bucket", (double)WK_LOAD(&st->batch_count), "le", "+Inf",
	    NULL);
	put(out, w, CPN_M_W_BATCH, "_sum", (double)WK_LOAD(&st->batch_sum), NULL);
	put(out, w, CPN_M_W_BATCH, "_count", (double)WK_LOAD(&st->batch_count), NULL);

	cpn_prom_family(out, CPN_M_W_DURATION);
	cum = 0;
	for (int b = 0; b < WK_LAT_BUCKETS; b++) {
		cum += (double)WK_LOAD(&st->lat_hist[b]);
		cpn_prom_fmt_double(le, sizeof(le), wk_lat_bounds_us[b] / 1e6);
		put(out, w, CPN_M_W_DURATION, "_bucket", cum, "le", le, NULL);
	}
	put(out, w, CPN_M_W_DURATION, "_bucket", (double)WK_LOAD(&st->lat_count), "le", "+Inf",
	    NULL);
	put(out, w, CPN_M_W_DURATION, "_sum", (double)WK_LOAD(&st->lat_sum_us) / 1e6, NULL);
	put(out, w, CPN_M_W_DURATION, "_count", (double)WK_LOAD(&st->lat_count), NULL);

	one(out, w, CPN_M_W_SVC, WK_LOAD(&w->svc_us) / 1e6);
	one(out, w, CPN_M_W_UTIL, WK_LOAD(&w->util) / 255.0);
	one(out, w, CPN_M_W_DRAINING, WK_LOAD(&w->draining));
	if (fflush(out) || ferror(out))
		return -EIO;
	return 0;
}

/* ---- HTTP ------------------------------------------------------------- */

static int render(void *arg, FILE *out)
{
	return wk_metrics_render(arg, out);
}

int wk_metrics_start(struct worker *w, char *err, size_t errlen)
{
	if (!w->o.metrics)
		return 0;
	w->http = cpn_http_start(w->o.metrics, render, w, err, errlen);
	return w->http ? 0 : -EINVAL;
}

void wk_metrics_stop(struct worker *w)
{
	cpn_http_stop(w->http);
	w->http = NULL;
}
