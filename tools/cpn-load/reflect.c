// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-load reflect: the smallest cpn responder there is, so that cpn-load's
 * own ceiling can be measured on loopback with no router and no worker.
 *
 * Each thread owns a socket bound to the listening address (SO_REUSEPORT
 * when there are several, so that the kernel spreads flows over them) and
 * loops: recvmmsg (blocking for the first datagram, then whatever else is
 * queued) -> turn every REQUEST into a REPLY in place (node_id, payload
 * echoed) -> one sendmmsg back to the senders. The reply is sent from the
 * receive buffers through two iovecs (header, payload), so nothing is copied
 * and nothing is allocated per datagram.
 *
 * Test knobs: --drop-every N answers nothing to every Nth request,
 * --busy-every N answers BUSY (OVERLOAD) to every Nth, --require-key drops a
 * request whose tenant tag does not verify (counts per thread; with one
 * thread, exactly every Nth).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn-load.h"

#define RX_BUF 65536 /* a whole datagram: the payload is echoed */

struct reflect_opts {
	struct load_addr listen;
	int threads;
	uint16_t node_id;
	uint64_t drop_every, busy_every;
	bool have_key;
	__u64 key[2];
	double duration;
};

struct reflect_thread {
	pthread_t tid;
	const struct reflect_opts *o;
	int fd;
	uint64_t rx, replied, busy, dropped, bad_auth, bad, requests;
	int err;
};

static atomic_bool reflect_stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&reflect_stop, true);
}

static void reflect_usage(FILE *f)
{
	fprintf(f,
		"usage: cpn-load reflect --listen IP:PORT [--threads N] [--node-id N]\n"
		"                        [--drop-every N] [--busy-every N] [--require-key HEX32]\n"
		"                        [--duration SECONDS]\n"
		"\n"
		"A minimal cpn echo responder: every REQUEST is answered with a REPLY from\n"
		"node --node-id (default 1) carrying the request's payload. Runs until\n"
		"SIGINT/SIGTERM or --duration, then prints its counters on stderr.\n"
		"  --listen IP:PORT       port 0 picks a free one; the address is printed as\n"
		"                         'cpn-load reflect: listening on IP:PORT' on stderr\n"
		"  --threads N            sockets and threads (SO_REUSEPORT), default 1\n"
		"  --drop-every N         answer nothing to every Nth request (per thread)\n"
		"  --busy-every N         answer BUSY (status 5, OVERLOAD) to every Nth\n"
		"  --require-key HEX32    drop requests without AUTH or with a wrong tenant tag\n");
}

static int reflect_socket(const struct reflect_opts *o, const struct load_addr *bind_to)
{
	int one = 1, buf = 8 << 20, fd;
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};

	fd = socket(bind_to->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (o->threads > 1 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	/* FORCE (root) goes past rmem_max; the plain one is the fallback. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	/* Wake up now and then to see whether it is time to stop. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		goto fail;
	if (bind(fd, (const struct sockaddr *)&bind_to->sa, bind_to->len))
		goto fail;
	return fd;
fail:;
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}

/* Decide what to do with one datagram; fills the reply's iovecs. false: no answer. */
static bool reflect_one(struct reflect_thread *t, uint8_t *buf, uint32_t len, struct iovec iov[2])
{
	const struct reflect_opts *o = t->o;
	struct cpn_hdr *h = (struct cpn_hdr *)buf;

	if (cpn_hdr_check(h, len) != CPN_HDR_OK || h->type != CPN_T_REQUEST) {
		t->bad++;
		return false;
	}
	uint32_t hl = cpn_hdr_total_len(h);

	if (o->have_key) {
		uint64_t tag;

		if (!(h->flags & cpn_htons(CPN_F_AUTH))) {
			t->bad_auth++;
			return false;
		}
		memcpy(&tag, buf + CPN_HDR_LEN, sizeof(tag));
		if (tag != cpn_tag_request_any(o->key, h)) {
			t->bad_auth++;
			return false;
		}
	}
	t->requests++;
	if (o->drop_every && t->requests % o->drop_every == 0) {
		t->dropped++;
		return false;
	}
	bool busy = o->busy_every && t->requests % o->busy_every == 0;

	h->type = busy ? CPN_T_BUSY : CPN_T_REPLY;
	h->flags &= ~cpn_htons(CPN_F_AUTH); /* no node key: the reply is not signed */
	h->node_id = cpn_htons(o->node_id);
	h->queue_depth = 0;
	h->inflight = 0;
	h->capacity = cpn_htons(1);
	h->util = 0;
	h->status = busy ? CPN_BUSY_OVERLOAD : CPN_ST_OK;
	h->worker_us = 0;
	h->stamp = 0;
	iov[0].iov_base = buf;
	iov[0].iov_len = CPN_HDR_LEN;
	iov[1].iov_base = buf + hl;
	iov[1].iov_len = busy ? 0 : len - hl;
	if (busy)
		t->busy++;
	else
		t->replied++;
	return true;
}

static void *reflect_loop(void *arg)
{
	struct reflect_thread *t = arg;
	struct mmsghdr rmsg[LOAD_BATCH], smsg[LOAD_BATCH];
	struct iovec riov[LOAD_BATCH], siov[LOAD_BATCH][2];
	struct sockaddr_storage from[LOAD_BATCH];
	uint8_t *bufs = malloc((size_t)LOAD_BATCH * RX_BUF);

	if (!bufs) {
		t->err = ENOMEM;
		return NULL;
	}
	memset(rmsg, 0, sizeof(rmsg));
	memset(smsg, 0, sizeof(smsg));
	for (int i = 0; i < LOAD_BATCH; i++) {
		riov[i].iov_base = bufs + (size_t)i * RX_BUF;
		riov[i].iov_len = RX_BUF;
		rmsg[i].msg_hdr.msg_iov = &riov[i];
		rmsg[i].msg_hdr.msg_iovlen = 1;
		rmsg[i].msg_hdr.msg_name = &from[i];
	}
	while (!atomic_load_explicit(&reflect_stop, memory_order_relaxed)) {
		for (int i = 0; i < LOAD_BATCH; i++)
			rmsg[i].msg_hdr.msg_namelen = sizeof(from[i]);
		int n = recvmmsg(t->fd, rmsg, LOAD_BATCH, MSG_WAITFORONE, NULL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			t->err = errno;
			break;
		}
		t->rx += (uint64_t)n;
		int m = 0;

		for (int i = 0; i < n; i++) {
			if (!reflect_one(t, riov[i].iov_base, rmsg[i].msg_len, siov[m]))
				continue;
			smsg[m].msg_hdr.msg_name = &from[i];
			smsg[m].msg_hdr.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
			smsg[m].msg_hdr.msg_iov = siov[m];
			smsg[m].msg_hdr.msg_iovlen = 2;
			m++;
		}
		for (int off = 0; off < m;) {
			int s = sendmmsg(t->fd, smsg + off, (unsigned)(m - off), 0);

			if (s < 0) {
				if (errno == EINTR)
					continue;
				/* A client gone (ICMP) or no buffer: that reply is lost. */
				off++;
				continue;
			}
			off += s;
		}
	}
	free(bufs);
	return NULL;
}

int load_reflect_main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"node-id", required_argument, NULL, 'n'},
	    {"drop-every", required_argument, NULL, 'D'},
	    {"busy-every", required_argument, NULL, 'B'},
	    {"require-key", required_argument, NULL, 'k'},
	    {"duration", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct reflect_opts o = {.threads = 1, .node_id = 1};
	bool have_listen = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (load_addr_parse(optarg, &o.listen))
				goto bad;
			have_listen = true;
			break;
		case 't':
			if (cpn_parse_u64(optarg, 1, 64, &v))
				goto bad;
			o.threads = (int)v;
			break;
		case 'n':
			if (cpn_parse_u64(optarg, 0, 65535, &v))
				goto bad;
			o.node_id = (uint16_t)v;
			break;
		case 'D':
			if (cpn_parse_u64(optarg, 1, UINT32_MAX, &o.drop_every))
				goto bad;
			break;
		case 'B':
			if (cpn_parse_u64(optarg, 1, UINT32_MAX, &o.busy_every))
				goto bad;
			break;
		case 'k':
			if (cpn_key_parse(optarg, o.key))
				goto bad;
			o.have_key = true;
			break;
		case 'd':
			if (cpn_parse_double(optarg, 0.001, 1e6, &o.duration))
				goto bad;
			break;
		case 'h':
			reflect_usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || !have_listen)
		goto bad;

	struct reflect_thread *th = calloc((size_t)o.threads, sizeof(*th));
	struct load_addr bound = o.listen;
	char abuf[INET6_ADDRSTRLEN + 16];

	if (!th) {
		fprintf(stderr, "cpn-load reflect: out of memory\n");
		return 1;
	}
	for (int i = 0; i < o.threads; i++) {
		th[i].o = &o;
		th[i].fd = reflect_socket(&o, &bound);
		if (th[i].fd < 0) {
			fprintf(stderr, "cpn-load reflect: %s: %s\n",
				load_addr_str((struct sockaddr *)&bound.sa, abuf, sizeof(abuf)),
				strerror(errno));
			return 1;
		}
		/* Port 0: the others join the port the first one got. */
		if (i == 0) {
			bound.len = sizeof(bound.sa);
			getsockname(th[0].fd, (struct sockaddr *)&bound.sa, &bound.len);
		}
	}

	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "cpn-load reflect: listening on %s (threads %d)\n",
		load_addr_str((struct sockaddr *)&bound.sa, abuf, sizeof(abuf)), o.threads);
	fflush(stderr);

	for (int i = 0; i < o.threads; i++) {
		if (pthread_create(&th[i].tid, NULL, reflect_loop, &th[i])) {
			fprintf(stderr, "cpn-load reflect: cannot start a thread\n");
			return 1;
		}
	}
	if (o.duration > 0) {
		uint64_t end = cpn_now_ns() + (uint64_t)(o.duration * 1e9);

		while (!atomic_load(&reflect_stop) && cpn_now_ns() < end)
			usleep(10000);
		atomic_store(&reflect_stop, true);
	}

	struct reflect_thread sum = {0};
	int err = 0;

	for (int i = 0; i < o.threads; i++) {
		pthread_join(th[i].tid, NULL);
		close(th[i].fd);
		sum.rx += th[i].rx;
		sum.requests += th[i].requests;
		sum.replied += th[i].replied;
		sum.busy += th[i].busy;
		sum.dropped += th[i].dropped;
		sum.bad_auth += th[i].bad_auth;
		sum.bad += th[i].bad;
		if (th[i].err)
			err = th[i].err;
	}
	free(th);
	fprintf(stderr,
		"cpn-load reflect: received %llu requests %llu replied %llu busy %llu "
		"dropped %llu bad_auth %llu malformed %llu\n",
		(unsigned long long)sum.rx, (unsigned long long)sum.requests,
		(unsigned long long)sum.replied, (unsigned long long)sum.busy,
		(unsigned long long)sum.dropped, (unsigned long long)sum.bad_auth,
		(unsigned long long)sum.bad);
	if (err) {
		fprintf(stderr, "cpn-load reflect: receive failed: %s\n", strerror(err));
		return 1;
	}
	return 0;
bad:
	reflect_usage(stderr);
	return 2;
}
