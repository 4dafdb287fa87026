// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ctl_flood: a bounded flood of a router's control port, for
 * test_daemon_flood.sh. IPv4.
 *
 *   ctl_flood --to ADDR:PORT --rate R --duration S --key HEX32
 *             [--node ID@ADDR:PORT]... [--join-from ADDR --join-addrs N
 *             --join-rate J --join-id0 ID]
 *
 * R datagrams a second in all (at most 1 000 000) for S seconds (at most
 * 60), paced every 0.2 ms, each a millisecond's share:
 *   - joins of new nodes, J a second of the R: a LOAD signed with --key
 *     (the auto_join key), FRESH, with the join tag for its source address
 *     and port; from N consecutive addresses from ADDR in turn (each a
 *     socket of its own); node ids ID, ID+1, ... below 1024, then ID again;
 *   - of the rest, in turn:
 *       heartbeats of each --node: its LOAD signed with --key, FRESH, with
 *         its join tag, from its own address and port (SO_REUSEADDR: the
 *         node itself sends from there too);
 *       garbage: random bytes of random length, a header of the wrong
 *         version, one cut short, a PROBE, a datagram over 2 KiB;
 *       signed LOADs with bad tags, FRESH, of random node ids (some the
 *         --node ids).
 * SIGTERM or SIGINT ends it early. At the end one line:
 *   sent=N rate=R min_rate=M joins=J heartbeats=H garbage=G bad_tags=B
 *   errors=E seconds=S
 * where min_rate is the lowest rate of any whole 250 ms window: the rate
 * was sustained, not reached on average after a stall.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cpn/maps.h"
#include "cpn/proto.h"
#include "cpn/siphash.h"
#include "cpn_util.h"

#define MAX_NODES     16
#define MAX_JOIN_SRCS 250
#define MAX_RATE      1000000.0
#define MAX_SECONDS   60.0
#define TICK_NS	      200000ULL	   /* pacing */
#define WINDOW_NS     250000000ULL /* min_rate's window */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct src {
	int fd;
	struct sockaddr_in sa; /* bound to */
	__u16 id;	       /* a --node's id; 0 for a join source */
};

static struct sockaddr_in to;
static __u64 key[2];
static __u64 rng = 0x9e3779b97f4a7c15ULL;

static __u64 rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ctl_flood --to ADDR:PORT --rate R --duration S --key HEX32\n"
		"                 [--node ID@ADDR:PORT]... [--join-from ADDR --join-addrs N\n"
		"                 --join-rate J --join-id0 ID]\n");
	exit(2);
}

static int parse_ap(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *c = strrchr(s, ':');
	__u32 port;

	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || cpn_parse_u32(c + 1, 0, 65535, &port))
		return -1;
	sa->sin_port = htons((__u16)port);
	return 0;
}

static int open_src(struct src *s)
{
	socklen_t len = sizeof(s->sa);
	int on = 1;

	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	if (bind(s->fd, (struct sockaddr *)&s->sa, sizeof(s->sa)) ||
	    getsockname(s->fd, (struct sockaddr *)&s->sa, &len))
		return -1;
	return 0;
}

/* A LOAD of node `id` signed with the key, FRESH, with the join tag for the
 * source `s` (a node's heartbeat, or a join: the same bytes). 64 bytes.
 */
static size_t load_for(const struct src *s, __u16 id, __u8 *buf)
{
	struct cpn_msg m;
	struct cpn_hdr *h = (struct cpn_hdr *)buf;
	__u8 a16[16] = {0};
	__u64 tag;

	cpn_msg_init(&m, CPN_T_LOAD);
	m.flags = CPN_F_AUTH | CPN_F_FRESH;
	m.node_id = id;
	m.capacity = 8;
	m.worker_us = 200;
	m.stamp = cpn_tai_ms();
	cpn_hdr_encode(&m, h);
	tag = cpn_tag_node(key, h);
	memcpy(buf + CPN_HDR_LEN, &tag, sizeof(tag));
	a16[10] = a16[11] = 0xff;
	memcpy(a16 + 12, &s->sa.sin_addr, 4);
	tag = cpn_tag_join(key, h, a16, s->sa.sin_port);
	memcpy(buf + CPN_HDR_LEN + CPN_TAG_LEN, &tag, sizeof(tag));
	return CPN_HDR_LEN + CPN_TAG_LEN + 8;
}

/* Garbage of five kinds, in turn. */
static size_t garbage(__u8 *buf, size_t cap, unsigned k)
{
	struct cpn_msg m;
	size_t len;

	switch (k % 5) {
	case 0: /* random bytes */
		len = rnd() % 200;
		for (size_t i = 0; i < len; i++)
			buf[i] = (__u8)rnd();
		return len;
	case 1: /* the wrong version */
		cpn_msg_init(&m, CPN_T_LOAD);
		m.version = CPN_VERSION + 1;
		m.node_id = (__u16)(rnd() % 1024);
		cpn_hdr_encode(&m, (struct cpn_hdr *)buf);
		return CPN_HDR_LEN;
	case 2: /* a header cut short */
		cpn_msg_init(&m, CPN_T_LOAD);
		cpn_hdr_encode(&m, (struct cpn_hdr *)buf);
		return 20;
	case 3: /* not a LOAD */
		cpn_msg_init(&m, CPN_T_PROBE);
		m.node_id = (__u16)(1 + rnd() % 1023);
		cpn_hdr_encode(&m, (struct cpn_hdr *)buf);
		return CPN_HDR_LEN;
	default: /* over what the daemon reads */
		len = cap;
		memset(buf, 0xa5, len);
		return len;
	}
}

/* A signed, FRESH LOAD whose tag is wrong. */
static size_t bad_tag(__u8 *buf, __u16 id)
{
	struct cpn_msg m;
	__u64 tag = rnd();

	cpn_msg_init(&m, CPN_T_LOAD);
	m.flags = CPN_F_AUTH | CPN_F_FRESH;
	m.node_id = id;
	m.capacity = 8;
	m.stamp = cpn_tai_ms();
	cpn_hdr_encode(&m, (struct cpn_hdr *)buf);
	memcpy(buf + CPN_HDR_LEN, &tag, sizeof(tag));
	memcpy(buf + CPN_HDR_LEN + CPN_TAG_LEN, &tag, sizeof(tag));
	return CPN_HDR_LEN + CPN_TAG_LEN + 8;
}

int main(int argc, char **argv)
{
	static struct src nodes[MAX_NODES], joins[MAX_JOIN_SRCS];
	static __u8 buf[3000];
	struct sigaction sa = {.sa_handler = on_signal};
	struct sockaddr_in join_from = {0};
	int n_nodes = 0, fd_any;
	__u32 join_addrs = 0, join_id0 = 0, join_id;
	double rate = 0, dur = 0, join_rate = 0;
	__u64 sent = 0, n_join = 0, n_hb = 0, n_garb = 0, n_bad = 0, errs = 0;
	__u64 t0, now, win_t0, win_sent = 0, min_rate = ~0ULL;
	unsigned turn = 0;
	bool have_key = false, have_to = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--to")) {
			if (parse_ap(v, &to))
				usage();
			have_to = true;
		} else if (!strcmp(a, "--rate")) {
			if (cpn_parse_double(v, 1, MAX_RATE, &rate))
				usage();
		} else if (!strcmp(a, "--duration")) {
			if (cpn_parse_double(v, 0.001, MAX_SECONDS, &dur))
				usage();
		} else if (!strcmp(a, "--key")) {
			if (cpn_key_parse(v, key))
				usage();
			have_key = true;
		} else if (!strcmp(a, "--node")) {
			const char *at = strchr(v, '@');
			char id[8];
			__u32 n;

			if (n_nodes == MAX_NODES || !at || (size_t)(at - v) >= sizeof(id))
				usage();
			memcpy(id, v, (size_t)(at - v));
			id[at - v] = 0;
			if (cpn_parse_u32(id, 1, CPN_MAX_NODES - 1, &n) ||
			    parse_ap(at + 1, &nodes[n_nodes].sa))
				usage();
			nodes[n_nodes++].id = (__u16)n;
		} else if (!strcmp(a, "--join-from")) {
			join_from.sin_family = AF_INET;
			if (inet_pton(AF_INET, v, &join_from.sin_addr) != 1)
				usage();
		} else if (!strcmp(a, "--join-addrs")) {
			if (cpn_parse_u32(v, 1, MAX_JOIN_SRCS, &join_addrs))
				usage();
		} else if (!strcmp(a, "--join-rate")) {
			if (cpn_parse_double(v, 0, MAX_RATE, &join_rate))
				usage();
		} else if (!strcmp(a, "--join-id0")) {
			if (cpn_parse_u32(v, 1, CPN_MAX_NODES - 1, &join_id0))
				usage();
		} else {
			usage();
		}
	}
	if (!have_to || !have_key || !rate || !dur)
		usage();
	if (join_rate > 0 && (!join_from.sin_family || !join_addrs || !join_id0)) {
		fprintf(stderr, "ctl_flood: --join-rate needs --join-from, --join-addrs, "
				"--join-id0\n");
		return 2;
	}
	if (join_rate > rate)
		join_rate = rate;
	for (int i = 0; i < n_nodes; i++)
		if (open_src(&nodes[i])) {
			fprintf(stderr, "ctl_flood: node %u's address: %s\n", nodes[i].id,
				strerror(errno));
			return 1;
		}
	for (__u32 i = 0; join_rate > 0 && i < join_addrs; i++) {
		joins[i].sa = join_from;
		joins[i].sa.sin_addr.s_addr = htonl(ntohl(join_from.sin_addr.s_addr) + i);
		if (open_src(&joins[i])) {
			fprintf(stderr, "ctl_flood: join address %u: %s\n", i, strerror(errno));
			return 1;
		}
	}
	fd_any = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd_any < 0)
		return perror("ctl_flood: socket"), 1;
	setsockopt(fd_any, SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rng ^= cpn_now_ns();

	join_id = join_id0;
	t0 = win_t0 = cpn_now_ns();
	now = t0;
	while (!stop && now - t0 < (__u64)(dur * 1e9)) {
		double el = (double)(now - t0) / 1e9;
		__u64 due = (__u64)(el * rate), jdue = (__u64)(el * join_rate);

		while (sent < due && !stop) {
			const struct src *s = NULL;
			int fd = fd_any;
			size_t len;

			if (n_join < jdue) {
				s = &joins[n_join % join_addrs];
				len = load_for(s, (__u16)join_id, buf);
				if (++join_id >= CPN_MAX_NODES)
					join_id = join_id0;
				n_join++;
			} else {
				unsigned k = turn++ % 3;

				if (k == 0 && !n_nodes)
					k = 1 + turn % 2;
				if (k == 0) {
					s = &nodes[(turn / 3) % (unsigned)n_nodes];
					len = load_for(s, s->id, buf);
					n_hb++;
				} else if (k == 1) {
					len = garbage(buf, sizeof(buf), turn / 3);
					n_garb++;
				} else {
					__u16 id = n_nodes && turn % 4 == 0
						       ? nodes[turn % (unsigned)n_nodes].id
						       : (__u16)(1 + rnd() % (CPN_MAX_NODES - 1));

					len = bad_tag(buf, id);
					n_bad++;
				}
			}
			if (s)
				fd = s->fd;
			if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
				errs++;
			sent++;
			win_sent++;
		}
		now = cpn_now_ns();
		if (now - win_t0 >= WINDOW_NS) {
			__u64 r = win_sent * 1000000000ULL / (now - win_t0);

			if (r < min_rate)
				min_rate = r;
			win_t0 = now;
			win_sent = 0;
		}
		if (sent >= (__u64)((double)(now - t0) / 1e9 * rate)) {
			struct timespec ts = {0, (long)TICK_NS};

			nanosleep(&ts, NULL);
			now = cpn_now_ns();
		}
	}
	now = cpn_now_ns();
	printf("sent=%llu rate=%.0f min_rate=%llu joins=%llu heartbeats=%llu garbage=%llu "
	       "bad_tags=%llu errors=%llu seconds=%.3f\n",
	       (unsigned long long)sent, (double)sent * 1e9 / (double)(now - t0),
	       (unsigned long long)(min_rate == ~0ULL ? 0 : min_rate), (unsigned long long)n_join,
	       (unsigned long long)n_hb, (unsigned long long)n_garb, (unsigned long long)n_bad,
	       (unsigned long long)errs, (double)(now - t0) / 1e9);
	return 0;
}
