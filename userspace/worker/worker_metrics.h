/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A node's Prometheus endpoint: GET /metrics, text format 0.0.4, served by
 * libmicrohttpd's own thread. Every series carries node, kernel and backend
 * (the handler's names).
 */
#ifndef CPN_WORKER_METRICS_H
#define CPN_WORKER_METRICS_H

#include <stddef.h>
#include <stdio.h>

struct wk_node;

/* Serves n->c.metrics when set. */
int wk_metrics_start(struct wk_node *n, char *err, size_t errlen);
void wk_metrics_stop(struct wk_node *n);
int wk_metrics_render(struct wk_node *n, FILE *out);

#endif /* CPN_WORKER_METRICS_H */
