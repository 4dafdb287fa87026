// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The worker library's public face (cpn/worker.h) without traffic: options
 * from text (defaults, ranges, sizes, lists; a bad value changes nothing),
 * the check of what fits together, open's refusals and a node opened,
 * started, drained and closed on loopback with a handler's slots opened and
 * closed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "cpn/client.h"
#include "cpn/worker.h"

#define PKEY  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define PKEY2 "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define MARK  "plaintext-marker"

static int opened, closed;

static void *slot_open(void *user, int slot, int max_batch, char *err, size_t errlen)
{
	(void)user, (void)max_batch, (void)err, (void)errlen;
	opened++;
	return (void *)(intptr_t)(slot + 1);
}

static void slot_close(void *slot)
{
	(void)slot;
	closed++;
}

static void *slot_fail(void *user, int slot, int max_batch, char *err, size_t errlen)
{
	(void)user, (void)slot, (void)max_batch;
	snprintf(err, errlen, "no device");
	return NULL;
}

static void run(void *slot, const struct cpn_worker_request *req, int n,
		struct cpn_worker_reply *rep)
{
	(void)slot, (void)req, (void)n, (void)rep;
}

/* An echo that also says what the handler saw: "seen:" and the payload. */
static uint8_t echo_buf[3][1 << 21];
static int saw_marker;

static void run_echo(void *slot, const struct cpn_worker_request *req, int n,
		     struct cpn_worker_reply *rep)
{
	uint8_t *b = echo_buf[(intptr_t)slot - 1];
	size_t at = 0;

	for (int i = 0; i < n; i++) {
		if (req[i].len >= sizeof(MARK) - 1 &&
		    !memcmp(req[i].payload, MARK, sizeof(MARK) - 1))
			__atomic_fetch_add(&saw_marker, 1, __ATOMIC_RELAXED);
		if (at + 5 + req[i].len > sizeof(echo_buf[0]))
			continue;
		memcpy(b + at, "seen:", 5);
		memcpy(b + at + 5, req[i].payload, req[i].len);
		rep[i] = (struct cpn_worker_reply){.payload = b + at, .len = req[i].len + 5};
		at += 5 + req[i].len;
	}
}

static void test_options(void **state)
{
	struct cpn_worker_config *c = cpn_worker_config_new();

	(void)state;
	assert_non_null(c);
	assert_int_equal(cpn_worker_config_check(c), -EINVAL);
	assert_non_null(strstr(cpn_worker_config_error(c), "required"));
	assert_int_equal(cpn_worker_config_set(c, "listen", "127.0.0.1:1"), 0);
	assert_int_equal(cpn_worker_config_set(c, "listen", "127.0.0.1:0"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "node_id", "7"), 0);
	assert_int_equal(cpn_worker_config_set(c, "router", "127.0.0.1:9,127.0.0.1:10"), 0);
	assert_int_equal(cpn_worker_config_check(c), 0);
	assert_int_equal(cpn_worker_config_set(c, "max-batch", "0"), -EINVAL);
	assert_string_equal(cpn_worker_config_error(c),
			    "max-batch wants an integer in 1..4096, not '0'");
	assert_int_equal(cpn_worker_config_set(c, "max-message", "65M"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "max-message", "1x"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "max-message", "2M"), 0);
	assert_int_equal(cpn_worker_config_set(c, "frag-budget", "1G"), 0);
	assert_int_equal(cpn_worker_config_set(c, "key", "0011"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "key", "00112233445566778899aabbccddeeff"), 0);
	assert_int_equal(cpn_worker_config_set(c, "tokens", "below:3"), 0);
	assert_int_equal(cpn_worker_config_set(c, "tokens", "some"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "nope", "1"), -ENOENT);
	/* Keys of the security options. */
	assert_int_equal(cpn_worker_config_set(c, "hop-key", "00"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "hop-key", "00112233445566778899aabbccddeeff"),
			 0);
	assert_int_equal(cpn_worker_config_set(c, "freshness-ms", "0"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "freshness-ms", "500"), 0);
	assert_int_equal(cpn_worker_config_set(c, "join-key", "ffeeddccbbaa99887766554433221100"),
			 -EINVAL);
	assert_non_null(strstr(cpn_worker_config_error(c), "join-key differs from key"));
	assert_int_equal(cpn_worker_config_set(c, "payload-key", "7:00"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "payload-key", PKEY), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "payload-key", "x:" PKEY), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "payload-key", "7:" PKEY), 0);
	assert_int_equal(cpn_worker_config_set(c, "payload-key", "7:" PKEY2), 0);
	/* A list with one bad address adds none of it. */
	assert_int_equal(cpn_worker_config_set(c, "router", "127.0.0.1:11,nowhere"), -EINVAL);
	assert_int_equal(cpn_worker_config_set(c, "router", "[::1]:9"), 0);
	assert_int_equal(cpn_worker_config_check(c), -EINVAL);
	assert_non_null(strstr(cpn_worker_config_error(c), "IPv6 router"));
	cpn_worker_config_free(c);
}

/* A free UDP port on 127.0.0.1, as "127.0.0.1:PORT". */
static void free_port(char *buf, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	snprintf(buf, len, "127.0.0.1:%u", ntohs(a.sin_port));
}

static struct cpn_worker_config *config(const char *listen)
{
	struct cpn_worker_config *c = cpn_worker_config_new();

	assert_int_equal(cpn_worker_config_set(c, "listen", listen), 0);
	assert_int_equal(cpn_worker_config_set(c, "node-id", "3"), 0);
	assert_int_equal(cpn_worker_config_set(c, "router", "127.0.0.1:9"), 0);
	assert_int_equal(cpn_worker_config_set(c, "capacity", "3"), 0);
	return c;
}

static void test_open(void **state)
{
	struct cpn_worker_handler h = {
	    .slot_open = slot_open, .run = run, .slot_close = slot_close};
	struct cpn_worker_handler bad = {.slot_open = slot_fail, .run = run};
	char addr[64], want[128];
	struct cpn_worker_config *c;
	struct cpn_worker_config *far = config("192.0.2.1:7000");
	struct cpn_worker *w = NULL;
	char err[256], line[256];

	(void)state;
	free_port(addr, sizeof(addr));
	c = config(addr);
	assert_int_equal(cpn_worker_open(&w, c, &(struct cpn_worker_handler){0}, err, sizeof(err)),
			 -EINVAL);
	assert_null(w);
	assert_int_equal(cpn_worker_open(&w, far, &h, err, sizeof(err)), -EADDRNOTAVAIL);
	assert_non_null(strstr(err, "bind 192.0.2.1:7000"));
	assert_int_equal(cpn_worker_open(&w, c, &bad, err, sizeof(err)), -EIO);
	assert_string_equal(err, "no device");
	opened = closed = 0;
	assert_int_equal(cpn_worker_open(&w, c, &h, err, sizeof(err)), 0);
	assert_int_equal(opened, 3);
	cpn_worker_describe(w, line, sizeof(line));
	snprintf(want, sizeof(want), "node 3 on %s: kernel app, backend none (none), 3 slot(s)",
		 addr);
	assert_non_null(strstr(line, want));
	assert_int_equal(cpn_worker_start(w, err, sizeof(err)), 0);
	assert_int_equal(cpn_worker_wait(w, 0), 0);
	cpn_worker_drain(w);
	assert_int_equal(cpn_worker_wait(w, 5000), 1);
	assert_null(cpn_worker_error(w));
	cpn_worker_close(w);
	assert_int_equal(closed, 3);
	cpn_worker_close(NULL);
	cpn_worker_config_free(c);
	cpn_worker_config_free(far);
}

/* Sealed payloads end to end between the client and the worker library on
 * loopback: the handler sees plaintext, the reply opens at the client; a
 * client with another key, or of a tenant the node has no key for, gets
 * BAD_REQUEST and the handler nothing; large messages sealed whole.
 */
static void test_sealed(void **state)
{
	struct cpn_worker_handler h = {.slot_open = slot_open, .run = run_echo};
	struct cpn_worker_config *c;
	struct cpn_worker *w = NULL;
	struct cpn_client *cl, *other, *stranger;
	struct cpn_completion last;
	char addr[64], err[256];
	uint8_t out[1 << 20];
	size_t len = 0;
	static uint8_t big[600000];

	(void)state;
	free_port(addr, sizeof(addr));
	c = config(addr);
	assert_int_equal(cpn_worker_config_set(c, "payload-key", "42:" PKEY), 0);
	assert_int_equal(cpn_worker_open(&w, c, &h, err, sizeof(err)), 0);
	assert_int_equal(cpn_worker_start(w, err, sizeof(err)), 0);
	cl = cpn_client_open(addr, 1, 42, NULL);
	other = cpn_client_open(addr, 1, 42, NULL);
	stranger = cpn_client_open(addr, 1, 43, NULL);
	assert_non_null(cl);
	assert_non_null(other);
	assert_non_null(stranger);
	assert_int_equal(cpn_client_set_payload_key(cl, "00"), CPN_E_INVAL);
	assert_int_equal(cpn_client_set_payload_key(cl, PKEY), 0);
	assert_int_equal(cpn_client_set_payload_key(other, PKEY2), 0);
	assert_int_equal(cpn_client_set_payload_key(stranger, PKEY), 0);

	saw_marker = 0;
	assert_int_equal(cpn_client_call(cl, MARK, sizeof(MARK) - 1, out, sizeof(out), &len, 2000),
			 0);
	assert_int_equal(len, 5 + sizeof(MARK) - 1);
	assert_memory_equal(out, "seen:" MARK, len);
	assert_int_equal(saw_marker, 1);
	/* Another key: the node cannot open it; its handler never sees it. */
	assert_int_equal(
	    cpn_client_call(other, MARK, sizeof(MARK) - 1, out, sizeof(out), &len, 2000),
	    CPN_E_REMOTE);
	cpn_client_last(other, &last);
	assert_int_equal(last.remote, 1); /* BAD_REQUEST */
	assert_int_equal(
	    cpn_client_call(stranger, MARK, sizeof(MARK) - 1, out, sizeof(out), &len, 2000),
	    CPN_E_REMOTE);
	assert_int_equal(saw_marker, 1);
	/* Large both ways: sealed whole, then fragmented. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(cpn_client_call(cl, big, sizeof(big), out, sizeof(out), &len, 5000), 0);
	assert_int_equal(len, 5 + sizeof(big));
	assert_memory_equal(out + 5, big, sizeof(big));
	cpn_client_close(cl);
	cpn_client_close(other);
	cpn_client_close(stranger);
	cpn_worker_drain(w);
	assert_int_equal(cpn_worker_wait(w, 5000), 1);
	cpn_worker_close(w);
	cpn_worker_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_open),
	    cmocka_unit_test(test_sealed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
