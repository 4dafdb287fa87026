// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Prometheus endpoint every cpn program serves: GET/HEAD /metrics with
 * libmicrohttpd, the body rendered by the caller at every scrape (from the
 * server's own thread). 404 elsewhere, 405 for other methods, 500 when the
 * render fails.
 *
 * Abuse: one internal thread multiplexes every connection with epoll (poll
 * where epoll is missing), so a slow client never holds the thread; a
 * connection idle for CPN_HTTP_IDLE_S is closed; one source address holds at
 * most CPN_HTTP_MAX_PER_IP connections and the server CPN_HTTP_MAX_CONNS, the
 * rest are closed as soon as accepted. Scrapes are served one at a time by
 * that thread, so render() is never called concurrently.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "cpn_addr.h"
#include "cpn_http.h"

#define CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_ret;
#else
typedef int mhd_ret;
#endif

struct cpn_http {
	struct MHD_Daemon *d;
	int (*render)(void *arg, FILE *out);
	void *arg;
};

/* Queue a response: body is static (crfc NULL) or malloc'ed (crfc free). */
static mhd_ret respond(struct MHD_Connection *c, unsigned status, const char *type, char *body,
		       size_t len, MHD_ContentReaderFreeCallback crfc, const char *allow)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer_with_free_callback(len, body, crfc);
	mhd_ret ret;

	if (!r) {
		if (crfc)
			crfc(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_ret respond_text(struct MHD_Connection *c, unsigned status, const char *msg,
			    const char *allow)
{
	return respond(c, status, "text/plain; charset=utf-8", (char *)msg, strlen(msg), NULL,
		       allow);
}

static void free_body(void *p)
{
	free(p);
}

static mhd_ret handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
		      const char *version, const char *upload_data, size_t *upload_data_size,
		      void **con_cls)
{
	struct cpn_http *srv = cls;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(url, "/metrics"))
		return respond_text(c, MHD_HTTP_NOT_FOUND, "404 not found: try /metrics\n", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n",
				    "GET, HEAD");

	f = open_memstream(&buf, &len);
	if (!f)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n", NULL);
	err = srv->render(srv->arg, f);
	if (fclose(f) && !err)
		err = -EIO;
	if (err) {
		free(buf);
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "500 cannot read the router's maps\n", NULL);
	}
	return respond(c, MHD_HTTP_OK, CONTENT_TYPE_TEXT, buf, len, free_body, NULL);
}

struct cpn_http *cpn_http_start(const char *addr_port, int (*render)(void *arg, FILE *out),
				void *arg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct cpn_http *srv;
	socklen_t sl;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	unsigned short port;

	if (!addr_port || !render || cpn_sockaddr_parse(addr_port, 1, &ss, &sl)) {
		snprintf(err, errlen, "metrics: bad address '%s' (want ADDR:PORT or [ADDR6]:PORT)",
			 addr_port ? addr_port : "(null)");
		return NULL;
	}
	if (ss.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
#if MHD_VERSION >= 0x00095300
	flags |= MHD_USE_AUTO; /* epoll or poll: no FD_SETSIZE limit */
#endif
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	srv->render = render;
	srv->arg = arg;
	errno = 0;
	srv->d = MHD_start_daemon(flags, port, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR,
				  (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)CPN_HTTP_IDLE_S, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)CPN_HTTP_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned)CPN_HTTP_MAX_PER_IP, MHD_OPTION_END);
	if (!srv->d) {
		int e = errno;

		snprintf(err, errlen, "metrics: cannot serve on %s%s%s", addr_port, e ? ": " : "",
			 e ? strerror(e) : "");
		free(srv);
		return NULL;
	}
	return srv;
}

void cpn_http_stop(struct cpn_http *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->d);
	free(srv);
}
