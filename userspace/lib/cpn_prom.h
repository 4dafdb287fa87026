/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Prometheus' text exposition (format 0.0.4) for every cpn program: the one
 * list of cpn's metric families (CPN_METRICS: name, type, help), a writer
 * for families and series, and the counters that both data planes export
 * the same way (packets, per service, per node), so that cpnctl's daemon
 * (plane="xdp") and cpn-fwd (plane="dpdk") cannot drift apart.
 *
 * Names follow Prometheus' conventions: the cpn_ prefix, _total for
 * counters, base units (_seconds, _ratio). Label values are escaped as the
 * format wants (\\, \" and \n); floats are written so that Go's ParseFloat
 * reads them back equal.
 */
#ifndef CPN_USER_PROM_H
#define CPN_USER_PROM_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "cpn/maps.h"

/* Every family cpn exports: X(ID, name, type, help). */
#define CPN_METRICS(X)                                                                             \
	/* ---- the data planes (cpnctl daemon: plane="xdp", cpn-fwd: plane="dpdk") */             \
	X(PACKETS, "cpn_packets_total", "counter",                                                 \
	  "Packets by what the data plane did with them (action=\"rx\" counts every packet "       \
	  "seen).")                                                                                \
	X(DROPPED, "cpn_dropped_packets_total", "counter",                                         \
	  "Packets dropped by the data plane, by reason.")                                         \
	X(PASSED, "cpn_passed_packets_total", "counter",                                           \
	  "Packets passed to the kernel untouched by the data plane, by reason.")                  \
	X(SVC_REQUESTS, "cpn_service_requests_total", "counter",                                   \
	  "Requests of the service steered to a node.")                                            \
	X(SVC_REPLIES, "cpn_service_replies_total", "counter",                                     \
	  "Replies of the service forwarded to clients.")                                          \
	X(SVC_NODE_BUSY, "cpn_service_node_busy_total", "counter",                                 \
	  "BUSY answers of the service's nodes forwarded to clients.")                             \
	X(SVC_BUSY, "cpn_service_busy_total", "counter",                                           \
	  "Requests of the service refused by the router with BUSY (admission control), by "       \
	  "reason.")                                                                               \
	X(SVC_REFUSED, "cpn_service_refused_total", "counter",                                     \
	  "Requests of the service dropped by the router, by reason: tenant ACL, "                 \
	  "authentication, rate limit, hop limit, address family.")                                \
	X(SVC_NODES, "cpn_service_nodes", "gauge", "Candidate nodes of the service.")              \
	X(SVC_LIVE_NODES, "cpn_service_live_nodes", "gauge",                                       \
	  "Candidate nodes of the service that are live: administratively up, not draining, "      \
	  "reported within the service's stale_ms.")                                               \
	X(NODE_REQUESTS, "cpn_node_requests_total", "counter", "Requests steered to the node.")    \
	X(NODE_REPLIES, "cpn_node_replies_total", "counter",                                       \
	  "Replies from the node forwarded to clients.")                                           \
	X(NODE_BUSY, "cpn_node_busy_total", "counter",                                             \
	  "BUSY answers from the node forwarded to clients.")                                      \
	X(NODE_REPORTS, "cpn_node_reports_total", "counter",                                       \
	  "Load reports (LOAD, PROBE_ACK) of the node learned.")                                   \
	/* ---- the node table both planes share (no plane label) */                               \
	X(NODE_UP, "cpn_node_up", "gauge",                                                         \
	  "1 when the node is administratively up and not drained.")                               \
	X(NODE_LIVE, "cpn_node_live", "gauge",                                                     \
	  "1 when the node is live: up, not draining, reported within the smallest stale_ms of "   \
	  "the services that name it (500 ms if none).")                                           \
	X(NODE_QUEUE, "cpn_node_queue_depth", "gauge", "Queue depth the node last reported.")      \
	X(NODE_INFLIGHT, "cpn_node_inflight", "gauge",                                             \
	  "Requests in execution the node last reported.")                                         \
	X(NODE_CAPACITY, "cpn_node_capacity", "gauge",                                             \
	  "Concurrent capacity the node last reported.")                                           \
	X(NODE_OUTSTANDING, "cpn_node_outstanding", "gauge",                                       \
	  "Requests steered to the node since its last report.")                                   \
	X(NODE_UNANSWERED, "cpn_node_unanswered", "gauge",                                         \
	  "Requests steered to the node and not known to be answered.")                            \
	X(NODE_SUSPECT, "cpn_node_suspect", "gauge",                                               \
	  "1 while requests steered to the node have gone unanswered past its deadline: it is "    \
	  "not chosen (tried again while it still reports).")                                      \
	X(NODE_OVERCLAIM, "cpn_node_overclaim_ratio", "gauge",                                     \
	  "How much slower the node answers than its reported load and capacity predict (1: as "   \
	  "reported); above 1.25 its capacity is scaled down by it.")                              \
	X(NODE_UTIL, "cpn_node_utilization_ratio", "gauge",                                        \
	  "Utilization the node last reported, 0 to 1.")                                           \
	X(NODE_SVC, "cpn_node_service_time_seconds", "gauge",                                      \
	  "EWMA of the node's mean service time.")                                                 \
	X(NODE_PATH, "cpn_node_path_latency_ewma_seconds", "gauge",                                \
	  "EWMA of the path latency to the node: reply time minus time spent inside the node.")    \
	X(NODE_EST, "cpn_node_estimated_wait_seconds", "gauge",                                    \
	  "Estimated completion time of one more request at the node, as the policies compute "    \
	  "it: path latency plus queued work over capacity.")                                      \
	X(NODE_AGE, "cpn_node_report_age_seconds", "gauge",                                        \
	  "Time since the node's last report; absent while it has never reported.")                \
	X(NODE_PATH_HIST, "cpn_node_path_latency_seconds", "histogram",                            \
	  "Path latency samples of the node: reply time minus time spent inside the node, in "     \
	  "log2 buckets. The data plane records bucket counts only, so _sum is approximate: each " \
	  "sample counts as the middle of its bucket.")                                            \
	X(BUILD_INFO, "cpn_build_info", "gauge",                                                   \
	  "Build information of cpn; the value is always 1.")                                      \
	/* ---- the daemon's control port */                                                       \
	X(D_DATAGRAMS, "cpn_daemon_datagrams_total", "counter",                                    \
	  "Datagrams the daemon read on the control port.")                                        \
	X(D_JOINS, "cpn_daemon_joins_total", "counter", "Nodes admitted through auto_join.")       \
	X(D_JOIN_REFUSED, "cpn_daemon_join_refused_total", "counter",                              \
	  "LOADs of unknown nodes not admitted, by reason.")                                       \
	X(D_LOG_SUPPRESSED, "cpn_daemon_log_suppressed_total", "counter",                          \
	  "Log lines not written (at most one a second per kind).")                                \
	/* ---- cpn-worker (labels node, kernel, backend) */                                       \
	X(W_INFO, "cpn_worker_info", "gauge", "The worker's device; the value is always 1.")       \
	X(W_QUEUE, "cpn_worker_queue_depth", "gauge", "Requests waiting in the queue.")            \
	X(W_INFLIGHT, "cpn_worker_inflight", "gauge", "Requests in batches that are executing.")   \
	X(W_CAPACITY, "cpn_worker_capacity", "gauge",                                              \
	  "Capacity reported to routers: the number of batch slots.")                              \
	X(W_MAX_BATCH, "cpn_worker_max_batch", "gauge", "Largest batch a slot executes.")          \
	X(W_QUEUE_LIMIT, "cpn_worker_queue_limit", "gauge", "Bound of the request queue.")         \
	X(W_REQUESTS, "cpn_worker_requests_total", "counter", "REQUEST datagrams received.")       \
	X(W_REPLIES, "cpn_worker_replies_total", "counter", "REPLY datagrams sent, by status.")    \
	X(W_BUSY, "cpn_worker_busy_total", "counter",                                              \
	  "Requests refused with BUSY, by reason (queue full, draining).")                         \
	X(W_PROBES, "cpn_worker_probes_total", "counter", "PROBEs answered with PROBE_ACK.")       \
	X(W_LOADS, "cpn_worker_loads_total", "counter", "LOAD heartbeats sent (one per router).")  \
	X(W_IGNORED, "cpn_worker_ignored_total", "counter",                                        \
	  "Datagrams not handled: not a valid cpn header, or a type a worker does not take.")      \
	X(W_SEND_ERRORS, "cpn_worker_send_errors_total", "counter",                                \
	  "Datagrams that could not be sent.")                                                     \
	X(W_BATCH, "cpn_worker_batch_size", "histogram", "Requests per executed batch.")           \
	X(W_DURATION, "cpn_worker_request_duration_seconds", "histogram",                          \
	  "Time a request spent inside the node, receive to reply (worker_us).")                   \
	X(W_SVC, "cpn_worker_service_time_seconds", "gauge",                                       \
	  "Mean service time per request: EWMA of batch time / batch size (LOAD worker_us).")      \
	X(W_UTIL, "cpn_worker_utilization_ratio", "gauge",                                         \
	  "Busy fraction of the batch slots over the last heartbeat interval.")                    \
	X(W_DRAINING, "cpn_worker_draining", "gauge", "1 once SIGTERM or SIGINT arrived.")         \
	X(W_FRAG_HELD, "cpn_worker_frag_held_bytes", "gauge",                                      \
	  "Bytes of large messages the node holds: being reassembled, queued or executing, "       \
	  "being sent.")                                                                           \
	X(W_FRAG_LIMIT, "cpn_worker_frag_limit_bytes", "gauge",                                    \
	  "Limits of large messages: the largest message, the per-client and the total budget.")   \
	X(W_FRAG_MESSAGES, "cpn_worker_frag_messages_total", "counter",                            \
	  "Large messages completed: requests reassembled, replies sent.")                         \
	X(W_FRAG_TIMEOUTS, "cpn_worker_frag_timeouts_total", "counter",                            \
	  "Large messages dropped for their timeout: requests incomplete, replies not acked.")     \
	X(W_FRAG_DROPPED, "cpn_worker_frag_dropped_total", "counter",                              \
	  "Fragments dropped, by reason (duplicate, malformed, unknown message).")                 \
	X(W_FRAG_REFUSED, "cpn_worker_frag_refused_total", "counter",                              \
	  "Large messages refused, by reason (too large, over the client's or the total budget).") \
	X(F_BUSY, "cpn_fwd_busy_seconds_total", "counter",                                         \
	  "Time the forwarding lcores spent on rounds that had packets or held requests to move.") \
	X(LATE_HELD, "cpn_late_held", "gauge",                                                     \
	  "Requests of a dispatch: late service waiting at cpn-fwd for a free slot.")              \
	X(LATE_BOUND, "cpn_late_bound_total", "counter",                                           \
	  "Held requests bound to a node when one of its slots freed.")                            \
	X(LATE_TIMED_OUT, "cpn_late_timed_out_total", "counter",                                   \
	  "Held requests refused with BUSY after waiting longer than max_wait_us.")                \
	X(LATE_EARLY, "cpn_late_early_total", "counter",                                           \
	  "Late requests bound early: no live candidate, dispatch changed, or cpn-fwd stopping.")  \
	X(LATE_GONE, "cpn_late_gone_total", "counter",                                             \
	  "Held requests refused with BUSY because their service was removed.")                    \
	X(LATE_SLOTS, "cpn_late_slots", "gauge",                                                   \
	  "Slots of the node taken by late requests this cpn-fwd sent and has no answer for.")     \
	X(LATE_SLOTS_EXPIRED, "cpn_late_slots_expired_total", "counter",                           \
	  "Slots given back because their node left its requests unanswered past its deadline.")

enum cpn_metric {
#define CPN_METRIC_ENUM(id, name, type, help) CPN_M_##id,
	CPN_METRICS(CPN_METRIC_ENUM)
#undef CPN_METRIC_ENUM
	    CPN_M_MAX,
};

struct cpn_metric_family {
	const char *name, *type, *help;
};
extern const struct cpn_metric_family cpn_metric_families[CPN_M_MAX];

#define CPN_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define CPN_BUILD_VERSION     "0.1"

/* ---- writing -------------------------------------------------------------- */

/* A label set being built: `k="v",k="v"` without the braces. */
struct cpn_prom_labels {
	char s[512];
	size_t n;
};

void cpn_prom_labels_reset(struct cpn_prom_labels *l);
/* Append k="v", the value escaped. */
void cpn_prom_label(struct cpn_prom_labels *l, const char *k, const char *v);
void cpn_prom_labelu(struct cpn_prom_labels *l, const char *k, unsigned long long v);
/* out = base plus the NULL-terminated pairs k1, v1, k2, v2, ... */
void cpn_prom_with(struct cpn_prom_labels *out, const struct cpn_prom_labels *base, ...);

/* # HELP and # TYPE of a family of the list. */
void cpn_prom_family(FILE *f, enum cpn_metric m);
/* One series: name[suffix]{labels} value. suffix and labels may be NULL. */
void cpn_prom_u64(FILE *f, enum cpn_metric m, const char *suffix, const struct cpn_prom_labels *l,
		  unsigned long long v);
void cpn_prom_double(FILE *f, enum cpn_metric m, const char *suffix,
		     const struct cpn_prom_labels *l, double v);
/* A float as Go's ParseFloat reads it: the shortest of %.15g and %.17g that
 * reads back equal; +Inf, -Inf and NaN spelled the Prometheus way.
 */
void cpn_prom_fmt_double(char *buf, size_t len, double v);

/* ---- the counters both data planes export ------------------------------------ */

/* A service's labels (service when it has a name, service_id) and counters. */
struct cpn_prom_svc {
	struct cpn_prom_labels l;
	struct cpn_svc_stats ss;
};

/* A node's labels (node, addr) and counters. */
struct cpn_prom_node {
	struct cpn_prom_labels l;
	struct cpn_node_stats ns;
};

/* cpn_packets_total{action}, cpn_dropped_packets_total{reason} and
 * cpn_passed_packets_total{reason} from the data plane's counters.
 */
void cpn_prom_packets(FILE *f, const char *plane, const __u64 stats[CPN_STAT_MAX]);
/* cpn_service_*_total of each service (busy and refused by reason). */
void cpn_prom_services(FILE *f, const char *plane, const struct cpn_prom_svc *s, int n);
/* cpn_node_*_total of each node. */
void cpn_prom_nodes(FILE *f, const char *plane, const struct cpn_prom_node *nd, int n);

#endif /* CPN_USER_PROM_H */
