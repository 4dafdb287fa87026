// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-worker's Prometheus endpoint: GET /metrics, text format 0.0.4, served
 * by libmicrohttpd's own thread. Every series carries node, kernel and
 * backend ("none" for echo and synthetic, which use no backend).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "cpn_http.h"

/* A label value, escaped as the format wants (\\, \" and \n). */
static void escape(char *dst, size_t len, const char *v)
{
	size_t n = 0;

	for (; *v && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			dst[n++] = '\\';
			dst[n++] = *v;
		} else if (*v == '\n') {
			dst[n++] = '\\';
			dst[n++] = 'n';
		} else {
			dst[n++] = *v;
		}
	}
	dst[n] = 0;
}

struct ctx {
	FILE *f;
	struct worker *w;
};

static void family(struct ctx *c, const char *name, const char *type, const char *help)
{
	fprintf(c->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{node,kernel,backend[,extra]}: extra is `k="v"` or NULL. */
static void head(struct ctx *c, const char *name, const char *extra)
{
	fprintf(c->f, "%s{node=\"%u\",kernel=\"%s\",backend=\"%s\"", name, c->w->o.node_id,
		wk_kernel_name(c->w->o.kernel), c->w->backend_name);
	if (extra)
		fprintf(c->f, ",%s", extra);
	fputc('}', c->f);
}

static void su(struct ctx *c, const char *name, const char *extra, uint64_t v)
{
	head(c, name, extra);
	fprintf(c->f, " %llu\n", (unsigned long long)v);
}

static void sf(struct ctx *c, const char *name, const char *extra, double v)
{
	char b[40];

	snprintf(b, sizeof(b), "%.15g", v);
	if (strtod(b, NULL) != v)
		snprintf(b, sizeof(b), "%.17g", v);
	head(c, name, extra);
	fprintf(c->f, " %s\n", b);
}

static void gauge_u(struct ctx *c, const char *name, const char *help, uint64_t v)
{
	family(c, name, "gauge", help);
	su(c, name, NULL, v);
}

static void counter_u(struct ctx *c, const char *name, const char *help, uint64_t v)
{
	family(c, name, "counter", help);
	su(c, name, NULL, v);
}

int wk_metrics_render(struct worker *w, FILE *out)
{
	struct ctx c = {.f = out, .w = w};
	const struct wk_stats *st = &w->st;
	char le[48], dev[2 * sizeof(w->device)], info[sizeof(dev) + 16];
	uint64_t cum;

	escape(dev, sizeof(dev), w->device);
	snprintf(info, sizeof(info), "device=\"%s\"", dev);
	family(&c, "cpn_worker_info", "gauge", "The worker's device; the value is always 1.");
	su(&c, "cpn_worker_info", info, 1);

	gauge_u(&c, "cpn_worker_queue_depth", "Requests waiting in the queue.",
		WK_LOAD(&w->queued));
	gauge_u(&c, "cpn_worker_inflight", "Requests in batches that are executing.",
		WK_LOAD(&w->inflight));
	gauge_u(&c, "cpn_worker_capacity",
		"Capacity reported to routers: the number of batch slots.", w->report_capacity);
	gauge_u(&c, "cpn_worker_max_batch", "Largest batch a slot executes.",
		(uint64_t)w->o.max_batch);
	gauge_u(&c, "cpn_worker_queue_limit", "Bound of the request queue.",
		(uint64_t)w->o.queue_len);
	counter_u(&c, "cpn_worker_requests_total", "REQUEST datagrams received.",
		  WK_LOAD(&st->requests));

	family(&c, "cpn_worker_replies_total", "counter", "REPLY datagrams sent, by status.");
	su(&c, "cpn_worker_replies_total", "status=\"ok\"", WK_LOAD(&st->replies[CPN_ST_OK]));
	su(&c, "cpn_worker_replies_total", "status=\"bad_request\"",
	   WK_LOAD(&st->replies[CPN_ST_BAD_REQUEST]));
	su(&c, "cpn_worker_replies_total", "status=\"kernel_error\"",
	   WK_LOAD(&st->replies[CPN_ST_KERNEL_ERROR]));

	family(&c, "cpn_worker_busy_total", "counter",
	       "Requests refused with BUSY, by reason (queue full, draining).");
	su(&c, "cpn_worker_busy_total", "reason=\"overload\"", WK_LOAD(&st->busy_overload));
	su(&c, "cpn_worker_busy_total", "reason=\"draining\"", WK_LOAD(&st->busy_draining));

	counter_u(&c, "cpn_worker_probes_total", "PROBEs answered with PROBE_ACK.",
		  WK_LOAD(&st->probes));
	counter_u(&c, "cpn_worker_loads_total", "LOAD heartbeats sent (one per router).",
		  WK_LOAD(&st->loads));
	family(&c, "cpn_worker_ignored_total", "counter",
	       "Datagrams not handled: not a valid cpn header, or a type a worker does not take.");
	su(&c, "cpn_worker_ignored_total", "reason=\"malformed\"", WK_LOAD(&st->ignored_malformed));
	su(&c, "cpn_worker_ignored_total", "reason=\"type\"", WK_LOAD(&st->ignored_type));
	counter_u(&c, "cpn_worker_send_errors_total", "Datagrams that could not be sent.",
		  WK_LOAD(&st->send_errors));

	family(&c, "cpn_worker_batch_size", "histogram", "Requests per executed batch.");
	cum = 0;
	for (int b = 0; b < w->n_batch_bounds; b++) {
		cum += WK_LOAD(&st->batch_hist[b]);
		snprintf(le, sizeof(le), "le=\"%d\"", w->batch_bounds[b]);
		su(&c, "cpn_worker_batch_size_bucket", le, cum);
	}
	su(&c, "cpn_worker_batch_size_bucket", "le=\"+Inf\"", WK_LOAD(&st->batch_count));
	su(&c, "cpn_worker_batch_size_sum", NULL, WK_LOAD(&st->batch_sum));
	su(&c, "cpn_worker_batch_size_count", NULL, WK_LOAD(&st->batch_count));

	family(&c, "cpn_worker_request_duration_seconds", "histogram",
	       "Time a request spent inside the node, receive to reply (worker_us).");
	cum = 0;
	for (int b = 0; b < WK_LAT_BUCKETS; b++) {
		char v[24];

		cum += WK_LOAD(&st->lat_hist[b]);
		snprintf(v, sizeof(v), "%.15g", wk_lat_bounds_us[b] / 1e6);
		snprintf(le, sizeof(le), "le=\"%s\"", v);
		su(&c, "cpn_worker_request_duration_seconds_bucket", le, cum);
	}
	su(&c, "cpn_worker_request_duration_seconds_bucket", "le=\"+Inf\"",
	   WK_LOAD(&st->lat_count));
	sf(&c, "cpn_worker_request_duration_seconds_sum", NULL, WK_LOAD(&st->lat_sum_us) / 1e6);
	su(&c, "cpn_worker_request_duration_seconds_count", NULL, WK_LOAD(&st->lat_count));

	family(&c, "cpn_worker_service_time_seconds", "gauge",
	       "Mean service time per request: EWMA of batch time / batch size (LOAD worker_us).");
	sf(&c, "cpn_worker_service_time_seconds", NULL, WK_LOAD(&w->svc_us) / 1e6);
	family(&c, "cpn_worker_utilization_ratio", "gauge",
	       "Busy fraction of the batch slots over the last heartbeat interval.");
	sf(&c, "cpn_worker_utilization_ratio", NULL, WK_LOAD(&w->util) / 255.0);
	gauge_u(&c, "cpn_worker_draining", "1 once SIGTERM or SIGINT arrived.",
		(uint64_t)WK_LOAD(&w->draining));
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
