// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of the HTTP bridge (gpu/kernel_http.c): its options, the
 * Prometheus text parser, and the handler and the scrape thread against an
 * upstream served here by libmicrohttpd on 127.0.0.1 (a thread per
 * connection, so that slow answers overlap):
 *
 *   POST /sum      the sum of the integers in the body, as text
 *   POST /ct       the Content-Type the request carried
 *   POST /slow     sleeps slow_ms, then "slow"; counts the peak of requests
 *                  inside at once
 *   POST /fail     HTTP 500
 *   POST /big      big_len bytes
 *   GET  /metrics  a Prometheus page with up_gauge (or HTTP 500 while
 *                  metrics_fail)
 *
 * Every wait is bounded. The environment names a proxy that cannot be
 * reached: the bridge must not use it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <cmocka.h>

#include "kernel_http.h"
#include "cpn/proto.h"
#include "cpn_util.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_ret;
#else
typedef int mhd_ret;
#endif

/* ---- the upstream ----------------------------------------------------------- */

static struct MHD_Daemon *mhd;
static unsigned short up_port;
static int slow_ms = 300;
static size_t big_len = 1000;
static int up_cur, up_peak, up_conns, up_gauge = 37, metrics_fail, metrics_absent;

struct upload {
	char *buf;
	size_t len;
};

static mhd_ret reply(struct MHD_Connection *c, unsigned code, const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	mhd_ret ret;

	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_ret handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
		      const char *version, const char *data, size_t *size, void **con_cls)
{
	struct upload *u = *con_cls;
	char out[512];

	(void)cls;
	(void)version;
	if (!u) {
		if (!(u = calloc(1, sizeof(*u))))
			return MHD_NO;
		*con_cls = u;
		return MHD_YES;
	}
	if (*size) {
		char *nb = realloc(u->buf, u->len + *size + 1);

		if (!nb)
			return MHD_NO;
		u->buf = nb;
		memcpy(u->buf + u->len, data, *size);
		u->len += *size;
		u->buf[u->len] = 0;
		*size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/metrics") && !strcmp(method, "GET")) {
		if (__atomic_load_n(&metrics_fail, __ATOMIC_RELAXED))
			return reply(c, 500, "no\n", 3);
		snprintf(out, sizeof(out),
			 "# HELP vllm:num_requests_waiting Requests waiting.\n"
			 "# TYPE vllm:num_requests_waiting gauge\n"
			 "%s{model_name=\"m\"} %d\n"
			 "vllm:num_requests_running{model_name=\"m\"} 5\n",
			 __atomic_load_n(&metrics_absent, __ATOMIC_RELAXED)
			     ? "other_gauge"
			     : "vllm:num_requests_waiting",
			 __atomic_load_n(&up_gauge, __ATOMIC_RELAXED));
		return reply(c, 200, out, strlen(out));
	}
	if (strcmp(method, "POST"))
		return reply(c, 405, "POST\n", 5);
	if (!strcmp(url, "/sum")) {
		long sum = 0;
		char *p = u->buf, *end;

		while (p && *p) {
			long v = strtol(p, &end, 10);

			if (end == p) {
				p++;
				continue;
			}
			sum += v;
			p = end;
		}
		snprintf(out, sizeof(out), "%ld", sum);
		return reply(c, 200, out, strlen(out));
	}
	if (!strcmp(url, "/ct")) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");

		snprintf(out, sizeof(out), "%s", ct ? ct : "(none)");
		return reply(c, 200, out, strlen(out));
	}
	if (!strcmp(url, "/slow")) {
		int now = __atomic_add_fetch(&up_cur, 1, __ATOMIC_SEQ_CST);
		int peak = __atomic_load_n(&up_peak, __ATOMIC_SEQ_CST);

		while (now > peak &&
		       !__atomic_compare_exchange_n(&up_peak, &peak, now, 0, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST))
			;
		usleep((useconds_t)slow_ms * 1000);
		__atomic_sub_fetch(&up_cur, 1, __ATOMIC_SEQ_CST);
		return reply(c, 200, "slow", 4);
	}
	if (!strcmp(url, "/fail"))
		return reply(c, 500, "boom", 4);
	if (!strcmp(url, "/big")) {
		char *b = malloc(big_len);
		mhd_ret ret;

		if (!b)
			return MHD_NO;
		memset(b, 'x', big_len);
		ret = reply(c, 200, b, big_len);
		free(b);
		return ret;
	}
	return reply(c, 404, "no\n", 3);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (u) {
		free(u->buf);
		free(u);
		*con_cls = NULL;
	}
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
		   enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		__atomic_add_fetch(&up_conns, 1, __ATOMIC_SEQ_CST);
}

static int up_start(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const union MHD_DaemonInfo *di;

	(void)state;
	mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
			       NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
			       (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			       MHD_OPTION_NOTIFY_CONNECTION, notify, NULL, MHD_OPTION_END);
	if (!mhd)
		return -1;
	di = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (!di || !di->port)
		return -1;
	up_port = di->port;
	return 0;
}

static int up_stop(void **state)
{
	(void)state;
	MHD_stop_daemon(mhd);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static void url(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "http://127.0.0.1:%u%s", up_port, path);
}

/* A bridge to path with extra options (name, value pairs, NULL-ended). */
static struct kh_bridge *bridge(const char *path, ...)
{
	struct kh_cfg c;
	struct kh_bridge *b = NULL;
	char u[128], err[256];
	const char *k;
	va_list ap;

	assert_int_equal(kh_cfg_init(&c), 0);
	url(u, sizeof(u), path);
	assert_int_equal(kh_cfg_set(&c, "upstream", u, err, sizeof(err)), 0);
	va_start(ap, path);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		if (kh_cfg_set(&c, k, v, err, sizeof(err)))
			fail_msg("%s %s: %s", k, v, err);
	}
	va_end(ap);
	if (kh_open(&b, &c, err, sizeof(err)))
		fail_msg("kh_open: %s", err);
	kh_cfg_free(&c);
	return b;
}

static void *open_slot(struct kh_bridge *b, int max_batch)
{
	const struct cpn_worker_handler *h = kh_handler(b);
	char err[256] = "";
	void *s = h->slot_open(h->user, 0, max_batch, err, sizeof(err));

	if (!s)
		fail_msg("slot_open: %s", err);
	return s;
}

/* run() as the library calls it: every reply KERNEL_ERROR first. */
static void run_batch(struct kh_bridge *b, void *s, const char *const *payloads, int n,
		      struct cpn_worker_reply *rep)
{
	struct cpn_worker_request req[16];

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		req[i] = (struct cpn_worker_request){.payload = payloads[i],
						     .len = (uint32_t)strlen(payloads[i]),
						     .service = 1,
						     .request_id = (uint64_t)i + 1};
		rep[i] = (struct cpn_worker_reply){.status = CPN_ST_KERNEL_ERROR};
	}
	kh_handler(b)->run(s, req, n, rep);
}

static void assert_body(const struct cpn_worker_reply *r, const char *want)
{
	assert_int_equal(r->status, CPN_ST_OK);
	assert_int_equal(r->len, strlen(want));
	assert_memory_equal(r->payload, want, r->len);
}

/* ---- options ------------------------------------------------------------------ */

static void test_options(void **state)
{
	static const char *const bad[][2] = {
	    {"upstream", "ftp://host/x"},
	    {"upstream", "127.0.0.1:8000/v1/completions"},
	    {"upstream", "http://"},
	    {"upstream", "http:///v1"},
	    {"upstream", "http://host/a b"},
	    {"upstream", "http://host:99999/"},
	    {"upstream", ""},
	    {"upstream-metrics", "file:///etc/passwd"},
	    {"upstream-timeout-ms", "0"},
	    {"upstream-timeout-ms", "-5"},
	    {"upstream-timeout-ms", "10s"},
	    {"upstream-timeout-ms", "3600001"},
	    {"upstream-scrape-ms", "9"},
	    {"upstream-scrape-ms", "x"},
	    {"upstream-gauge", ""},
	    {"upstream-gauge", "9lives"},
	    {"upstream-gauge", "vllm:num-requests"},
	    {"upstream-gauge", "a{b=\"c\"}"},
	    {"upstream-content-type", "json"},
	    {"upstream-content-type", "application/"},
	    {"upstream-content-type", "text/plain\r\nX-Evil: 1"},
	    {"upstream-content-type", ""},
	    {"max-message", "0"},
	    {"max-message", "65M"},
	    {"max-message", "4Q"},
	};
	struct kh_cfg c;
	char err[256];

	(void)state;
	assert_int_equal(kh_cfg_init(&c), 0);
	assert_int_equal(c.timeout_ms, 30000);
	assert_int_equal(c.scrape_ms, 200);
	assert_string_equal(c.gauge, "vllm:num_requests_waiting");
	assert_string_equal(c.content_type, "application/json");
	assert_null(c.upstream);
	assert_null(c.metrics_url);
	assert_int_equal(kh_cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--upstream"));

	assert_true(kh_cfg_known("upstream"));
	assert_true(kh_cfg_known("upstream-content-type"));
	assert_false(kh_cfg_known("max-message"));
	assert_false(kh_cfg_known("upstream-bogus"));

	assert_int_equal(
	    kh_cfg_set(&c, "upstream", "http://127.0.0.1:8000/v2/models/m/infer", err, sizeof(err)),
	    0);
	assert_int_equal(
	    kh_cfg_set(&c, "upstream", "https://[::1]:8443/v1/completions", err, sizeof(err)), 0);
	assert_string_equal(c.upstream, "https://[::1]:8443/v1/completions");
	assert_int_equal(
	    kh_cfg_set(&c, "upstream-metrics", "http://localhost:8000/metrics", err, sizeof(err)),
	    0);
	assert_int_equal(kh_cfg_set(&c, "upstream-timeout-ms", "1500", err, sizeof(err)), 0);
	assert_int_equal(kh_cfg_set(&c, "upstream-scrape-ms", "50", err, sizeof(err)), 0);
	assert_int_equal(kh_cfg_set(&c, "upstream-gauge", "tgi_queue_size", err, sizeof(err)), 0);
	assert_int_equal(
	    kh_cfg_set(&c, "upstream-content-type", "text/plain; charset=utf-8", err, sizeof(err)),
	    0);
	assert_int_equal(kh_cfg_set(&c, "max-message", "1M", err, sizeof(err)), 0);
	assert_int_equal(c.timeout_ms, 1500);
	assert_int_equal(c.scrape_ms, 50);
	assert_int_equal(c.max_message, 1u << 20);
	assert_string_equal(c.gauge, "tgi_queue_size");
	assert_string_equal(c.content_type, "text/plain; charset=utf-8");
	assert_int_equal(kh_cfg_check(&c, err, sizeof(err)), 0);

	/* Every bad value: -EINVAL naming the option, nothing changed. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (kh_cfg_set(&c, bad[i][0], bad[i][1], err, sizeof(err)) != -EINVAL)
			fail_msg("%s '%s' taken", bad[i][0], bad[i][1]);
		if (strncmp(err, bad[i][0], strlen(bad[i][0])))
			fail_msg("%s '%s': error '%s' does not name the option", bad[i][0],
				 bad[i][1], err);
	}
	assert_string_equal(c.upstream, "https://[::1]:8443/v1/completions");
	assert_string_equal(c.metrics_url, "http://localhost:8000/metrics");
	assert_int_equal(c.timeout_ms, 1500);
	assert_int_equal(c.scrape_ms, 50);
	assert_int_equal(c.max_message, 1u << 20);
	assert_string_equal(c.gauge, "tgi_queue_size");
	assert_string_equal(c.content_type, "text/plain; charset=utf-8");
	assert_int_equal(kh_cfg_set(&c, "upstream-nope", "1", err, sizeof(err)), -ENOENT);
	kh_cfg_free(&c);

	/* kh_open refuses a configuration without an upstream. */
	{
		struct kh_bridge *b = (struct kh_bridge *)&c;

		assert_int_equal(kh_cfg_init(&c), 0);
		assert_int_equal(kh_open(&b, &c, err, sizeof(err)), -EINVAL);
		assert_null(b);
		kh_cfg_free(&c);
	}
}

/* ---- Prometheus text ------------------------------------------------------------ */

static void test_prom(void **state)
{
	static const char page[] =
	    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
	    "# TYPE vllm:num_requests_waiting gauge\n"
	    "vllm:num_requests_waiting{model_name=\"m\"} 30\n"
	    "  vllm:num_requests_waiting{model_name=\"x\\\"} vllm:num_requests_waiting 99\","
	    "engine=\"0\",} 4e0 1712345678000\n"
	    "vllm:num_requests_waiting {model_name=\"a\\\\\",b=\"\\n\"}\t2.5E+0\r\n"
	    "vllm:num_requests_waiting{model_name=\"nan\"} NaN\n"
	    "vllm:num_requests_waiting_total{model_name=\"m\"} 1000\n"
	    "vllm:num_requests_waitin 1000\n"
	    "#vllm:num_requests_waiting 1000\n"
	    "\n"
	    "other{label=\"vllm:num_requests_waiting\"} 1000\n"
	    "{\"vllm:num_requests_waiting\",model_name=\"utf8\"} 0.5\n"
	    "vllm:num_requests_waiting{model_name=\"broken} 1000\n"
	    "vllm:num_requests_waiting{model_name=\"m\" 1000\n"
	    "vllm:num_requests_waiting{=\"m\"} 1000\n"
	    "vllm:num_requests_waiting 12abc\n"
	    "vllm:num_requests_waiting\n"
	    "# EOF\n";
	double sum = -1;

	(void)state;
	/* 30 + 4 + 2.5 + 0.5; the NaN series counted, not summed; the rest
	 * other metrics, comments or lines that cannot be read.
	 */
	assert_int_equal(kh_prom_sum(page, strlen(page), "vllm:num_requests_waiting", &sum), 5);
	assert_true(fabs(sum - 37.0) < 1e-9);
	assert_int_equal(kh_prom_sum(page, strlen(page), "other", &sum), 1);
	assert_true(sum == 1000);
	assert_int_equal(kh_prom_sum(page, strlen(page), "absent", &sum), 0);
	assert_true(sum == 0);

	/* No newline at the end; a length that stops mid-line. */
	assert_int_equal(kh_prom_sum("g 1\ng{a=\"b\"} +Inf", 17, "g", &sum), 2);
	assert_true(isinf(sum) && sum > 0);
	assert_int_equal(kh_prom_sum("g 7\ng 100", 7, "g", &sum), 2);
	assert_true(sum == 8);
	assert_int_equal(kh_prom_sum("g -Inf\ng 1.5e-3", 15, "g", &sum), 2);
	assert_true(isinf(sum) && sum < 0);

	assert_true(kh_prom_name_ok("vllm:num_requests_waiting"));
	assert_true(kh_prom_name_ok("_x9"));
	assert_false(kh_prom_name_ok("9x"));
	assert_false(kh_prom_name_ok("a-b"));
	assert_false(kh_prom_name_ok(""));
}

/* ---- the handler ------------------------------------------------------------------ */

static void test_post_and_reply(void **state)
{
	static const char *const p[] = {"1 2 3", "{\"inputs\": [{\"data\": [10, 20, 12]}]}", "",
					"-5 5"};
	struct cpn_worker_reply rep[4];
	struct kh_bridge *b = bridge("/sum", NULL);
	void *s = open_slot(b, 4);
	const struct cpn_worker_handler *h = kh_handler(b);
	struct kh_stats st;

	(void)state;
	assert_string_equal(h->kernel, "http");
	assert_null(h->queue_extra); /* no metrics URL */
	assert_non_null(strstr(h->device, "127.0.0.1"));
	run_batch(b, s, p, 4, rep);
	assert_body(&rep[0], "6");
	assert_body(&rep[1], "42");
	assert_body(&rep[2], "0");
	assert_body(&rep[3], "0");
	/* A batch smaller than max_batch, then the same slot again. */
	run_batch(b, s, p + 1, 1, rep);
	assert_body(&rep[0], "42");
	kh_stats(b, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.ok, 5);
	assert_int_equal(
	    st.http_errors + st.conn_errors + st.timeouts + st.too_large + st.other_errors, 0);
	h->slot_close(s);
	kh_close(b);
}

static void test_content_type(void **state)
{
	static const char *const p[] = {"x"};
	struct cpn_worker_reply rep[1];
	struct kh_bridge *b = bridge("/ct", NULL);
	void *s = open_slot(b, 1);

	(void)state;
	run_batch(b, s, p, 1, rep);
	assert_body(&rep[0], "application/json");
	kh_handler(b)->slot_close(s);
	kh_close(b);

	b = bridge("/ct", "upstream-content-type", "application/octet-stream", NULL);
	s = open_slot(b, 1);
	run_batch(b, s, p, 1, rep);
	assert_body(&rep[0], "application/octet-stream");
	kh_handler(b)->slot_close(s);
	kh_close(b);
}

/* What is logged and labelled names the upstream without its user,
 * password or query.
 */
static void test_device_hides_credentials(void **state)
{
	static const char *const p[] = {"2 3"};
	struct cpn_worker_reply rep[1];
	struct kh_bridge *b;
	struct kh_cfg c;
	char u[160], m[160], err[256];
	void *s;

	(void)state;
	snprintf(u, sizeof(u), "http://user:secret@127.0.0.1:%u/sum?key=secret", up_port);
	snprintf(m, sizeof(m), "http://user:secret@127.0.0.1:%u/metrics?key=secret", up_port);
	assert_int_equal(kh_cfg_init(&c), 0);
	assert_int_equal(kh_cfg_set(&c, "upstream", u, err, sizeof(err)), 0);
	assert_int_equal(kh_cfg_set(&c, "upstream-metrics", m, err, sizeof(err)), 0);
	assert_int_equal(kh_open(&b, &c, err, sizeof(err)), 0);
	kh_cfg_free(&c);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u", up_port);
	assert_string_equal(kh_handler(b)->device, u);
	s = open_slot(b, 1);
	run_batch(b, s, p, 1, rep);
	assert_body(&rep[0], "5");
	kh_handler(b)->slot_close(s);
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		assert_non_null(f);
		kh_log_stats(b, f, "t");
		fclose(f);
		assert_non_null(strstr(buf, "t: http bridge to http://127.0.0.1:"));
		assert_non_null(strstr(buf, "1 requests: 1 ok"));
		assert_null(strstr(buf, "secret"));
		free(buf);
	}
	kh_close(b);
}

static void test_errors(void **state)
{
	static const char *const p[] = {"1", "2"};
	struct cpn_worker_reply rep[2];
	struct kh_stats st;
	struct kh_bridge *b;
	void *s;
	char u[128];

	(void)state;
	/* HTTP 500: KERNEL_ERROR, no payload, counted. */
	b = bridge("/fail", NULL);
	s = open_slot(b, 2);
	run_batch(b, s, p, 2, rep);
	assert_int_equal(rep[0].status, CPN_ST_KERNEL_ERROR);
	assert_int_equal(rep[1].status, CPN_ST_KERNEL_ERROR);
	kh_stats(b, &st);
	assert_int_equal(st.http_errors, 2);
	assert_int_equal(st.ok, 0);
	kh_handler(b)->slot_close(s);
	kh_close(b);

	/* A timeout. */
	slow_ms = 600;
	b = bridge("/slow", "upstream-timeout-ms", "100", NULL);
	s = open_slot(b, 1);
	{
		uint64_t t0 = cpn_now_ns();

		run_batch(b, s, p, 1, rep);
		assert_true(cpn_now_ns() - t0 < 500000000ull);
	}
	assert_int_equal(rep[0].status, CPN_ST_KERNEL_ERROR);
	kh_stats(b, &st);
	assert_int_equal(st.timeouts, 1);
	kh_handler(b)->slot_close(s);
	kh_close(b);
	usleep(700 * 1000); /* the upstream's sleeper ends */

	/* A body above max-message; one of exactly max-message is fine. */
	big_len = 1001;
	b = bridge("/big", "max-message", "1000", NULL);
	s = open_slot(b, 1);
	run_batch(b, s, p, 1, rep);
	assert_int_equal(rep[0].status, CPN_ST_KERNEL_ERROR);
	big_len = 1000;
	run_batch(b, s, p, 1, rep);
	assert_int_equal(rep[0].status, CPN_ST_OK);
	assert_int_equal(rep[0].len, 1000);
	/* A large one, within the limit: more than one datagram. */
	kh_stats(b, &st);
	assert_int_equal(st.too_large, 1);
	assert_int_equal(st.ok, 1);
	kh_handler(b)->slot_close(s);
	kh_close(b);
	big_len = 300000;
	b = bridge("/big", NULL);
	s = open_slot(b, 1);
	run_batch(b, s, p, 1, rep);
	assert_int_equal(rep[0].status, CPN_ST_OK);
	assert_int_equal(rep[0].len, 300000);
	assert_int_equal(((const char *)rep[0].payload)[299999], 'x');
	kh_handler(b)->slot_close(s);
	kh_close(b);

	/* Nobody listens: a connection error. */
	{
		struct kh_cfg c;
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char err[256];

		/* A port that was free a moment ago and is closed now. */
		assert_true(fd >= 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
		close(fd);
		snprintf(u, sizeof(u), "http://127.0.0.1:%u/x", ntohs(sa.sin_port));
		assert_int_equal(kh_cfg_init(&c), 0);
		assert_int_equal(kh_cfg_set(&c, "upstream", u, err, sizeof(err)), 0);
		assert_int_equal(kh_open(&b, &c, err, sizeof(err)), 0);
		kh_cfg_free(&c);
	}
	s = open_slot(b, 2);
	run_batch(b, s, p, 2, rep);
	assert_int_equal(rep[0].status, CPN_ST_KERNEL_ERROR);
	assert_int_equal(rep[1].status, CPN_ST_KERNEL_ERROR);
	kh_stats(b, &st);
	assert_int_equal(st.conn_errors, 2);
	kh_handler(b)->slot_close(s);
	kh_close(b);
}

/* A batch's requests are at the upstream together, and its connections
 * are kept for the next batch.
 */
static void test_concurrency_and_reuse(void **state)
{
	static const char *const p[] = {"a", "b", "c", "d"};
	struct cpn_worker_reply rep[4];
	struct kh_bridge *b;
	struct kh_stats st;
	uint64_t t0, ms;
	void *s;
	int conns;

	(void)state;
	slow_ms = 300;
	__atomic_store_n(&up_peak, 0, __ATOMIC_SEQ_CST);
	b = bridge("/slow", NULL);
	s = open_slot(b, 4);
	conns = __atomic_load_n(&up_conns, __ATOMIC_SEQ_CST);
	t0 = cpn_now_ns();
	run_batch(b, s, p, 4, rep);
	ms = (cpn_now_ns() - t0) / 1000000;
	for (int i = 0; i < 4; i++)
		assert_body(&rep[i], "slow");
	assert_int_equal(__atomic_load_n(&up_peak, __ATOMIC_SEQ_CST), 4);
	/* One after another it would take 1200 ms. */
	assert_true(ms >= 290 && ms < 1100);
	run_batch(b, s, p, 4, rep);
	for (int i = 0; i < 4; i++)
		assert_body(&rep[i], "slow");
	/* Four connections for the two batches. */
	assert_int_equal(__atomic_load_n(&up_conns, __ATOMIC_SEQ_CST) - conns, 4);
	kh_stats(b, &st);
	assert_int_equal(st.inflight_peak, 4);
	assert_int_equal(st.ok, 8);
	kh_handler(b)->slot_close(s);
	kh_close(b);
}

/* ---- the scrape ------------------------------------------------------------------- */

/* Wait at most ms for queue_extra to be want. */
static int extra_becomes(struct kh_bridge *b, uint32_t want, int ms)
{
	const struct cpn_worker_handler *h = kh_handler(b);

	for (int i = 0; i < ms / 5; i++) {
		if (h->queue_extra(h->user) == want)
			return 1;
		usleep(5000);
	}
	return h->queue_extra(h->user) == want;
}

static void test_scrape(void **state)
{
	char m[128];
	struct kh_bridge *b;
	struct kh_stats st;
	uint64_t t0, ms;

	(void)state;
	url(m, sizeof(m), "/metrics");
	__atomic_store_n(&up_gauge, 37, __ATOMIC_SEQ_CST);
	__atomic_store_n(&metrics_fail, 0, __ATOMIC_SEQ_CST);
	b = bridge("/sum", "upstream-metrics", m, "upstream-scrape-ms", "50", NULL);
	assert_non_null(kh_handler(b)->queue_extra);
	assert_true(extra_becomes(b, 37, 2000));
	__atomic_store_n(&up_gauge, 0, __ATOMIC_SEQ_CST);
	assert_true(extra_becomes(b, 0, 2000));
	__atomic_store_n(&up_gauge, 12, __ATOMIC_SEQ_CST);
	assert_true(extra_becomes(b, 12, 2000));

	/* Failing scrapes: the last value for 3 periods (150 ms), then 0. */
	__atomic_store_n(&metrics_fail, 1, __ATOMIC_SEQ_CST);
	t0 = cpn_now_ns();
	assert_true(extra_becomes(b, 0, 2000));
	ms = (cpn_now_ns() - t0) / 1000000;
	assert_true(ms >= 50 && ms < 1000);
	kh_stats(b, &st);
	assert_true(st.scrapes >= 3);
	assert_true(st.scrape_errors >= 1);
	__atomic_store_n(&metrics_fail, 0, __ATOMIC_SEQ_CST);
	assert_true(extra_becomes(b, 12, 2000));

	/* A page without the gauge is a failed scrape too. */
	__atomic_store_n(&metrics_absent, 1, __ATOMIC_SEQ_CST);
	kh_stats(b, &st);
	assert_true(extra_becomes(b, 0, 2000));
	{
		struct kh_stats st2;

		kh_stats(b, &st2);
		assert_true(st2.scrape_errors > st.scrape_errors);
	}
	__atomic_store_n(&metrics_absent, 0, __ATOMIC_SEQ_CST);
	kh_close(b);

	/* Another gauge name, series summed. */
	b = bridge("/sum", "upstream-metrics", m, "upstream-scrape-ms", "20", "upstream-gauge",
		   "vllm:num_requests_running", NULL);
	assert_true(extra_becomes(b, 5, 2000));
	kh_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_prom),
	    cmocka_unit_test(test_post_and_reply),
	    cmocka_unit_test(test_content_type),
	    cmocka_unit_test(test_device_hides_credentials),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_concurrency_and_reuse),
	    cmocka_unit_test(test_scrape),
	};

	/* A proxy nobody could reach: the bridge must not follow it. */
	setenv("http_proxy", "http://192.0.2.1:9", 1);
	setenv("HTTP_PROXY", "http://192.0.2.1:9", 1);
	setenv("ALL_PROXY", "http://192.0.2.1:9", 1);
	return cmocka_run_group_tests(tests, up_start, up_stop);
}
