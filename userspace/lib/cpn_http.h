/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The /metrics HTTP server shared by cpnctl's daemon, cpn-fwd and cpn-worker. */
#ifndef CPN_HTTP_H
#define CPN_HTTP_H

#include <stddef.h>
#include <stdio.h>

struct cpn_http;
/* Serve GET /metrics on "ADDR:PORT" or "[ADDR6]:PORT"; render(arg, out)
 * writes the exposition for each scrape. NULL with err on failure.
 */
struct cpn_http *cpn_http_start(const char *addr_port, int (*render)(void *arg, FILE *out),
				void *arg, char *err, size_t errlen);
void cpn_http_stop(struct cpn_http *srv);

#endif /* CPN_HTTP_H */
