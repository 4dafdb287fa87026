/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The HTTP bridge: a handler of the worker library (cpn/worker.h) that
 * makes a local HTTP inference server (KServe v2, OpenAI-compatible,
 * vLLM, Triton ...) a cpn node. Each request's payload is POSTed to the
 * upstream URL and the response body is the reply's payload.
 *
 *   - Every batch slot has a curl multi handle and one easy handle per
 *     request of a batch: a batch's requests run at the upstream
 *     concurrently, and connections are kept for the slot's next batches.
 *     At most capacity x max-batch requests are at the upstream at once
 *     (with --max-batch 1, capacity is the number of concurrent upstream
 *     requests).
 *   - HTTP 2xx: status OK and the body. Anything else (another HTTP
 *     status, a connection failure, a timeout, a body larger than the
 *     node's --max-message): CPN_ST_KERNEL_ERROR, counted.
 *   - With an upstream metrics URL, a thread scrapes that Prometheus
 *     endpoint every scrape period and sums the gauge's series; the
 *     handler's queue_extra reports the sum, so that it is added to the
 *     queue depth of every load report. A failed scrape keeps the last value
 *     until three periods after the last good one, then 0.
 *   - No proxy: the proxy variables of the environment are not followed.
 */
#ifndef CPN_KERNEL_HTTP_H
#define CPN_KERNEL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cpn/worker.h"

#define KH_DEFAULT_TIMEOUT_MS	30000
#define KH_DEFAULT_SCRAPE_MS	200
#define KH_DEFAULT_GAUGE	"vllm:num_requests_waiting"
#define KH_DEFAULT_CONTENT_TYPE "application/json"
#define KH_DEFAULT_MAX_MESSAGE	(4u << 20)

/* The usage lines of the bridge's options, as cpn-worker prints them. */
#define KH_USAGE                                                                                   \
	"  http:       --upstream URL (http:// or https://; each request's payload is POSTed\n"    \
	"              there, the response body is the reply) [--upstream-timeout-ms MS\n"         \
	"              (default 30000)] [--upstream-content-type TYPE (default\n"                  \
	"              application/json)] [--upstream-metrics URL --upstream-gauge NAME\n"         \
	"              (default vllm:num_requests_waiting) --upstream-scrape-ms MS (default\n"     \
	"              200): the gauge, summed over its series, is added to the reported\n"        \
	"              queue depth]; at most capacity x max-batch requests at the upstream\n"      \
	"              at once\n"

/* What the command line sets. Strings are owned (kh_cfg_free). */
struct kh_cfg {
	char *upstream;	    /* required */
	char *metrics_url;  /* NULL: no scrape */
	char *gauge;	    /* KH_DEFAULT_GAUGE */
	char *content_type; /* KH_DEFAULT_CONTENT_TYPE */
	unsigned timeout_ms;
	unsigned scrape_ms;
	uint32_t max_message; /* the node's --max-message: a larger body is an error */
};

/* Defaults; 0, or -ENOMEM. */
int kh_cfg_init(struct kh_cfg *c);
void kh_cfg_free(struct kh_cfg *c);
/* Whether name (without the dashes) is an option of the bridge:
 * upstream, upstream-timeout-ms, upstream-metrics, upstream-gauge,
 * upstream-scrape-ms, upstream-content-type.
 */
int kh_cfg_known(const char *name);
/* Set one option from its text: those of kh_cfg_known, and max-message
 * (bytes, K, M, G suffixes, as the node takes it). 0, -EINVAL with err
 * saying why (the option first; c unchanged), -ENOENT for another name.
 */
int kh_cfg_set(struct kh_cfg *c, const char *name, const char *value, char *err, size_t errlen);
/* Whether the options are complete (an upstream): 0 or -EINVAL with err. */
int kh_cfg_check(const struct kh_cfg *c, char *err, size_t errlen);

/* ---- the bridge ---------------------------------------------------------- */

struct kh_bridge;

/* What the bridge counted since it opened. */
struct kh_stats {
	uint64_t requests;	 /* POSTed to the upstream */
	uint64_t ok;		 /* answered 2xx */
	uint64_t http_errors;	 /* answered another status */
	uint64_t conn_errors;	 /* could not connect, or the connection failed */
	uint64_t timeouts;	 /* no whole answer within the timeout */
	uint64_t too_large;	 /* a body above max_message */
	uint64_t other_errors;	 /* any other failure of libcurl */
	uint64_t inflight_peak;	 /* most requests at the upstream at once */
	uint64_t scrapes;	 /* good scrapes of the upstream's metrics */
	uint64_t scrape_errors;	 /* failed ones (no answer, not 2xx, no such gauge) */
	uint32_t upstream_queue; /* what queue_extra reports now */
};

/* Checks c, starts the scrape thread (with a metrics URL). c is copied.
 * 0 and *b, or a negative errno with err saying why.
 */
int kh_open(struct kh_bridge **b, const struct kh_cfg *c, char *err, size_t errlen);
/* Stops the scrape thread, frees b (after cpn_worker_close: no slot may be
 * running). NULL is fine.
 */
void kh_close(struct kh_bridge *b);
/* The handler to give cpn_worker_open; valid while b is. */
const struct cpn_worker_handler *kh_handler(struct kh_bridge *b);
void kh_stats(struct kh_bridge *b, struct kh_stats *st);
/* The counters in one line on f, after "prog: ". */
void kh_log_stats(struct kh_bridge *b, FILE *f, const char *prog);

/* ---- Prometheus text ------------------------------------------------------ */

/* Sum the values of every series of the metric `name` in a Prometheus text
 * exposition (or OpenMetrics text) of len bytes: comments and blank lines
 * skipped, labels read with their escapes, values as Prometheus writes them
 * (floats with exponents, NaN and +Inf/-Inf; NaN series are left out of the
 * sum), an optional timestamp. A line that cannot be read is skipped.
 * Returns how many series of that name were found (0: none, *sum = 0).
 */
int kh_prom_sum(const char *text, size_t len, const char *name, double *sum);
/* Whether s is a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
int kh_prom_name_ok(const char *s);

#endif /* CPN_KERNEL_HTTP_H */
