// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * open_loop: requests at a fixed rate for a fixed time, one record each,
 * for test_faults.sh. Through libcpn's client (cpn/client.h, submit/poll).
 *
 *   open_loop --to VIP:PORT --service S --tenant T --rate R --duration-ms D
 *             [--timeout-ms MS] [--payload BYTES] --out FILE
 *
 * Request i is sent at start + i / R (a late tick sends what is due at
 * once, so that the count stays R x D), never retried and never sent again:
 * a BUSY is an answer, and a request without one within --timeout-ms (500)
 * is lost. At the end FILE holds one line per request, in send order:
 *
 *   SEND_NS OUTCOME NODE REASON ANSWER_NS
 *
 * SEND_NS: when it was submitted, CLOCK_MONOTONIC ns (the clock of
 * Python's time.monotonic_ns(), which the tests use to stamp their faults);
 * OUTCOME: reply (a REPLY, status 0), busy (BUSY), lost (no answer in time)
 * or error (a REPLY with another status, or a local failure); NODE: the node
 * that answered (0: none, a router's BUSY); REASON: the BUSY reason
 * (CPN_BUSY_*: 1 wait, 2 queue, 3 no_node, 4 draining, 5 overload), the
 * REPLY status of an error, else 0; ANSWER_NS: when the answer came
 * (CLOCK_MONOTONIC ns; 0 when lost). One summary line goes to stdout:
 *
 *   sent=N reply=N busy=N lost=N error=N late=N seconds=S
 *
 * where late counts answers that came after their request was given up.
 * Bad arguments: the reason, exit 2; a failure: the reason, exit 1.
 * SIGTERM or SIGINT ends the sending early (the records so far are written).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpn/client.h"
#include "cpn_util.h"

#define MAX_RATE     100000
#define MAX_DURATION 60000 /* ms */
#define MAX_PAYLOAD  1024
#define BATCH	     64 /* completions per poll */

enum outcome { O_NONE, O_REPLY, O_BUSY, O_LOST, O_ERROR };
static const char *const outcome_names[] = {"none", "reply", "busy", "lost", "error"};

struct rec {
	uint64_t send_ns, answer_ns;
	uint16_t node;
	uint8_t outcome, reason;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int usage(const char *why)
{
	fprintf(stderr,
		"open_loop: %s\n"
		"usage: open_loop --to VIP:PORT --service S --tenant T --rate R --duration-ms D\n"
		"                 [--timeout-ms MS] [--payload BYTES] --out FILE\n",
		why);
	return 2;
}

static void complete(struct rec *r, size_t n, const struct cpn_completion *c)
{
	struct rec *x;

	if (c->user >= n)
		return;
	x = &r[c->user];
	x->node = c->node_id;
	switch (c->status) {
	case 0:
		x->outcome = O_REPLY;
		break;
	case CPN_E_BUSY:
		x->outcome = O_BUSY;
		x->reason = c->remote;
		break;
	case CPN_E_TIMEOUT:
		x->outcome = O_LOST;
		x->node = 0;
		return;
	case CPN_E_REMOTE:
		x->outcome = O_ERROR;
		x->reason = c->remote;
		break;
	default:
		x->outcome = O_ERROR;
		x->reason = 0;
	}
	x->answer_ns = x->send_ns + c->latency_ns;
}

static int drain(struct cpn_client *cl, struct rec *r, size_t n, int wait_ms)
{
	struct cpn_completion c[BATCH];
	int got, total = 0;

	do {
		got = cpn_client_poll(cl, c, BATCH, wait_ms);
		if (got < 0)
			return got;
		for (int i = 0; i < got; i++)
			complete(r, n, &c[i]);
		total += got;
		wait_ms = 0;
	} while (got == BATCH);
	return total;
}

int main(int argc, char **argv)
{
	const char *to = NULL, *out = NULL;
	uint64_t service = 0, tenant = 0, rate = 0, duration = 0, timeout = 500, plen = 16;
	struct cpn_client_stats st;
	struct cpn_client *cl;
	uint8_t payload[MAX_PAYLOAD];
	size_t n, sent = 0, cnt[5] = {0};
	struct rec *r;
	uint64_t t0, now, end;
	FILE *f;
	int err = 0, rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!v)
			return usage("every option takes a value");
		if (!strcmp(a, "--to"))
			to = v;
		else if (!strcmp(a, "--out"))
			out = v;
		else if (!strcmp(a, "--service"))
			bad = cpn_parse_u64(v, 1, 65535, &service);
		else if (!strcmp(a, "--tenant"))
			bad = cpn_parse_u64(v, 0, UINT32_MAX, &tenant);
		else if (!strcmp(a, "--rate"))
			bad = cpn_parse_u64(v, 1, MAX_RATE, &rate);
		else if (!strcmp(a, "--duration-ms"))
			bad = cpn_parse_u64(v, 1, MAX_DURATION, &duration);
		else if (!strcmp(a, "--timeout-ms"))
			bad = cpn_parse_u64(v, 1, 60000, &timeout);
		else if (!strcmp(a, "--payload"))
			bad = cpn_parse_u64(v, 0, MAX_PAYLOAD, &plen);
		else
			return usage("unknown option");
		if (bad) {
			fprintf(stderr, "open_loop: %s: '%s' is out of range\n", a, v);
			return 2;
		}
		i++;
	}
	if (!to || !out || !service || !rate || !duration)
		return usage("--to, --service, --rate, --duration-ms and --out are required");

	n = (size_t)(rate * duration / 1000);
	if (!n)
		return usage("--rate x --duration-ms is less than one request");
	r = calloc(n, sizeof(*r));
	if (!r) {
		fprintf(stderr, "open_loop: out of memory for %zu records\n", n);
		return 1;
	}
	cl = cpn_client_open(to, (uint16_t)service, (uint32_t)tenant, &err);
	if (!cl) {
		fprintf(stderr, "open_loop: %s: %s\n", to, cpn_strerror(err));
		free(r);
		return 1;
	}
	/* Every request counted once: no retry of a BUSY, no resend. */
	if (cpn_client_setopt(cl, CPN_OPT_TIMEOUT_MS, timeout) ||
	    cpn_client_setopt(cl, CPN_OPT_BUSY_RETRY, 0) ||
	    cpn_client_setopt(cl, CPN_OPT_MAX_RETRIES, 0) ||
	    cpn_client_setopt(cl, CPN_OPT_DISCARD_REPLY, 1) ||
	    cpn_client_setopt(cl, CPN_OPT_MAX_INFLIGHT, 65535)) {
		fprintf(stderr, "open_loop: cannot set the client's options\n");
		cpn_client_close(cl);
		free(r);
		return 1;
	}
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	t0 = mono_ns();
	while (sent < n && !stop) {
		uint64_t due;
		struct pollfd p = {.fd = cpn_client_fd(cl), .events = POLLIN};

		now = mono_ns();
		while (sent < n && now >= t0 + (uint64_t)sent * 1000000000ULL / rate) {
			struct cpn_req q = {
			    .data = payload,
			    .len = plen,
			    .flags = CPN_REQ_NO_RETRY,
			    .user = sent,
			};

			r[sent].send_ns = now;
			rc = cpn_client_submit(cl, &q, NULL);
			if (rc) {
				/* Not sent: counted as a local error. */
				r[sent].outcome = O_ERROR;
			}
			sent++;
			now = mono_ns();
		}
		if (drain(cl, r, n, 0) < 0)
			break;
		due = t0 + (uint64_t)sent * 1000000000ULL / rate;
		now = mono_ns();
		if (sent < n && due > now) {
			struct timespec ts = cpn_ns_timespec(due - now);

			ppoll(&p, 1, &ts, NULL);
		}
	}
	/* Every request in flight is answered or given up within the timeout. */
	end = mono_ns() + (timeout + 200) * 1000000ULL;
	while (cpn_client_inflight(cl) && mono_ns() < end)
		if (drain(cl, r, n, 10) < 0)
			break;
	now = mono_ns();

	cpn_client_stats(cl, &st, sizeof(st));
	f = fopen(out, "w");
	if (!f) {
		fprintf(stderr, "open_loop: %s: %s\n", out, strerror(errno));
		cpn_client_close(cl);
		free(r);
		return 1;
	}
	fprintf(f, "# send_ns outcome node reason answer_ns (CLOCK_MONOTONIC)\n");
	for (size_t i = 0; i < sent; i++) {
		if (r[i].outcome == O_NONE)
			r[i].outcome = O_LOST; /* still in flight at the end */
		cnt[r[i].outcome]++;
		fprintf(f, "%llu %s %u %u %llu\n", (unsigned long long)r[i].send_ns,
			outcome_names[r[i].outcome], r[i].node, r[i].reason,
			(unsigned long long)r[i].answer_ns);
	}
	rc = fclose(f) ? 1 : 0;
	printf("sent=%zu reply=%zu busy=%zu lost=%zu error=%zu late=%llu seconds=%.3f\n", sent,
	       cnt[O_REPLY], cnt[O_BUSY], cnt[O_LOST], cnt[O_ERROR], (unsigned long long)st.late,
	       (double)(now - t0) / 1e9);
	cpn_client_close(cl);
	free(r);
	return rc;
}
