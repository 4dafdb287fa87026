/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The /metrics HTTP server shared by cpnctl's daemon, cpn-fwd and cpn-worker. */
#ifndef CPN_HTTP_H
#define CPN_HTTP_H

#include <stddef.h>
#include <stdio.h>

/* The limits against slow or many clients (docs/OPERATIONS.md, Metrics). */
#define CPN_HTTP_IDLE_S	    3	 /* a connection idle this long is closed */
#define CPN_HTTP_MAX_PER_IP 16	 /* connections from one source address */
#define CPN_HTTP_MAX_CONNS  1000 /* connections in all */

struct cpn_http;
/* Serve GET /metrics on "ADDR:PORT" or "[ADDR6]:PORT"; render(arg, out)
 * writes the exposition for each scrape. NULL with err on failure.
 */
struct cpn_http *cpn_http_start(const char *addr_port, int (*render)(void *arg, FILE *out),
				void *arg, char *err, size_t errlen);
void cpn_http_stop(struct cpn_http *srv);

#endif /* CPN_HTTP_H */
