// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cpn-pktgen: cpn's packet generator for forwarding-rate benchmarks
 * (bench/bench-fwdrate.sh).
 *
 * Transmits valid cpn REQUEST frames (IPv4, UDP, the 48-byte header built by
 * selftests/bpf/cpn_test.c's cpn_pkt_build, full checksums) from AF_XDP sockets
 * on one interface: one socket and one thread per TX queue, each thread
 * pinned to a CPU. Every queue cycles through its own --flows frames, each
 * with its own source port and request id. The sockets bind in copy mode
 * (XDP_COPY): veth has no zero-copy AF_XDP, and in copy mode the kernel
 * turns every descriptor into an skb and hands it to the device's transmit
 * (for a veth: straight into the peer's receive path, on the sending CPU).
 *
 * With --sink-map (the pinned per-CPU counters of tools/cpn-pktgen/cpn_sink.bpf.c at the
 * receiver), it measures: after --warmup seconds, --windows windows of
 * --seconds each; per window the frames sent (descriptors the kernel
 * completed, those the device dropped included) and received at the sink,
 * as rates over the monotonic time between two readings. It also counts the
 * CPU time the whole path took in the window: this process's threads (a
 * veth runs its peer's NAPI, and with it the router and the sink, in the
 * softirq of the sending thread) plus the ksoftirqd threads of the CPUs it
 * sends on (softirq work deferred there). Frames per CPU-second is the rate
 * one core would carry if nothing else ran on it.
 *
 *   cpn-pktgen --dev IF --dst-mac MAC [--src IP] [--dst IP:PORT] [--service N]
 *              [--tenant N] [--flows N] [--sport BASE] [--payload N]
 *              [--queues N] [--cpus LIST] [--sink-map PATH] [--warmup S]
 *              [--windows N] [--seconds S] [--max-packets N] [--json]
 *
 * Bounded: it stops after warmup + windows x seconds, or when a queue has
 * sent --max-packets, or on SIGINT/SIGTERM, whichever comes first.
 *
 *   cpn-pktgen load --node N --from IP:PORT --to IP:PORT [--capacity C] [--svc-us US]
 *
 * sends one LOAD heartbeat of node N (queue empty, C requests at once, US µs
 * a request) from the node's address to a router's control port over a UDP
 * socket, so that the router counts the node as live for its stale_ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#include "cpn_addr.h"
#include "cpn/maps.h"
#include "cpn_pkt.h"
#include "pktgen_sink.h"
#include "cpn_util.h"

#define MAX_QUEUES  16
#define MAX_WINDOWS 64
#define FRAME_SIZE  2048u /* one umem chunk per frame */
#define NUM_FRAMES  4096u /* umem chunks per queue */
#define RING_SIZE   2048u /* TX and completion rings */
#define BATCH	    64u	  /* descriptors per reserve */
#define MAX_FLOWS   NUM_FRAMES
#define MAX_PAYLOAD 1400u /* keeps a frame within a 1500-byte MTU */

struct txq {
	int qid, cpu;
	void *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp;
	__u32 frame_len;
	__u64 max_packets;
	pthread_t thread;
	_Atomic __u64 sent; /* descriptors the kernel completed */
	int err;	    /* errno of a failed sendto, 0 if none */
} __attribute__((aligned(64)));

struct opts {
	const char *dev, *src, *dst, *sink_map;
	__u8 dst_mac[6];
	int have_mac;
	__u16 dport, service, sport;
	__u32 tenant, flows, payload, queues, windows;
	int cpus[MAX_QUEUES];
	int ncpus;
	double warmup, seconds;
	__u64 max_packets;
	int json;
};

struct window {
	double secs, cpu_s;
	__u64 sent, rcvd, req, tagged;
};

/* CPU time of the path: this process plus the ksoftirqd of each CPU used. */
struct cpu_meter {
	int nsoft;
	char soft[MAX_QUEUES][48]; /* /proc/PID/schedstat of ksoftirqd/N */
};

static atomic_int stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cpn-pktgen --dev IF --dst-mac MAC [options]\n"
		"  --src IP          client address (default 10.0.0.1)\n"
		"  --dst IP:PORT     service VIP and port (default 10.0.0.100:7470)\n"
		"  --service N       service id (default 1)\n"
		"  --tenant N        tenant id (default 42)\n"
		"  --flows N         frames per queue, each its own source port (default 1024, "
		"max %u)\n"
		"  --sport BASE      first source port (default 10000); queue q starts at "
		"BASE + q * flows\n"
		"  --payload N       bytes after the cpn header (default 0, max %u)\n"
		"  --queues N        TX queues, one thread each (default 1, max %d)\n"
		"  --cpus LIST       CPU of each thread, e.g. 0,1 (default 0,1,...)\n"
		"  --sink-map PATH   pinned cpn_sink_counts of the receiver: measure\n"
		"  --warmup S        seconds before the first window (default 1)\n"
		"  --windows N       measurement windows (default 5, max %d)\n"
		"  --seconds S       seconds per window (default 5)\n"
		"  --max-packets N   stop a queue after N frames (default 10000000000)\n"
		"  --json            one JSON object on stdout\n"
		"       cpn-pktgen load --node N --from IP:PORT --to IP:PORT [--capacity C] "
		"[--svc-us US]\n"
		"  one LOAD heartbeat of node N to a router's control port\n",
		MAX_FLOWS, MAX_PAYLOAD, MAX_QUEUES, MAX_WINDOWS);
	exit(2);
}

static int dev_mac(const char *dev, __u8 mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (rc)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

static int parse_cpus(const char *s, struct opts *o)
{
	char buf[256], *save = NULL, *tok;
	uint64_t v;

	snprintf(buf, sizeof(buf), "%s", s);
	o->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->ncpus == MAX_QUEUES || cpn_parse_u64(tok, 0, CPU_SETSIZE - 1, &v))
			return -1;
		o->cpus[o->ncpus++] = (int)v;
	}
	return o->ncpus ? 0 : -1;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"dev", 1, 0, 'd'},	    {"dst-mac", 1, 0, 'm'},
	    {"src", 1, 0, 's'},	    {"dst", 1, 0, 'D'},
	    {"service", 1, 0, 'S'}, {"tenant", 1, 0, 'T'},
	    {"flows", 1, 0, 'f'},   {"sport", 1, 0, 'p'},
	    {"payload", 1, 0, 'P'}, {"queues", 1, 0, 'q'},
	    {"cpus", 1, 0, 'c'},    {"sink-map", 1, 0, 'k'},
	    {"warmup", 1, 0, 'w'},  {"windows", 1, 0, 'n'},
	    {"seconds", 1, 0, 't'}, {"max-packets", 1, 0, 'M'},
	    {"json", 0, 0, 'j'},    {"help", 0, 0, 'h'},
	    {0, 0, 0, 0},
	};
	static char dst[64];
	uint64_t v;
	char *colon;
	int c;

	memset(o, 0, sizeof(*o));
	o->src = CPN_PKT_CLIENT4;
	o->dst = CPN_PKT_VIP4;
	o->dport = CPN_PKT_PORT;
	o->service = CPN_PKT_SVC;
	o->tenant = CPN_PKT_TENANT;
	o->flows = 1024;
	o->sport = 10000;
	o->queues = 1;
	o->warmup = 1;
	o->windows = 5;
	o->seconds = 5;
	o->max_packets = 10000000000ULL;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dev = optarg;
			break;
		case 'm':
			if (cpn_mac_parse(optarg, o->dst_mac))
				usage();
			o->have_mac = 1;
			break;
		case 's':
			o->src = optarg;
			break;
		case 'D':
			snprintf(dst, sizeof(dst), "%s", optarg);
			colon = strrchr(dst, ':');
			if (!colon || cpn_parse_u64(colon + 1, 1, 65535, &v))
				usage();
			*colon = 0;
			o->dst = dst;
			o->dport = (__u16)v;
			break;
		case 'S':
			if (cpn_parse_u64(optarg, 0, 65535, &v))
				usage();
			o->service = (__u16)v;
			break;
		case 'T':
			if (cpn_parse_u64(optarg, 0, UINT32_MAX, &v))
				usage();
			o->tenant = (__u32)v;
			break;
		case 'f':
			if (cpn_parse_u64(optarg, 1, MAX_FLOWS, &v))
				usage();
			o->flows = (__u32)v;
			break;
		case 'p':
			if (cpn_parse_u64(optarg, 1, 65535, &v))
				usage();
			o->sport = (__u16)v;
			break;
		case 'P':
			if (cpn_parse_u64(optarg, 0, MAX_PAYLOAD, &v))
				usage();
			o->payload = (__u32)v;
			break;
		case 'q':
			if (cpn_parse_u64(optarg, 1, MAX_QUEUES, &v))
				usage();
			o->queues = (__u32)v;
			break;
		case 'c':
			if (parse_cpus(optarg, o))
				usage();
			break;
		case 'k':
			o->sink_map = optarg;
			break;
		case 'w':
			if (cpn_parse_double(optarg, 0, 600, &o->warmup))
				usage();
			break;
		case 'n':
			if (cpn_parse_u64(optarg, 1, MAX_WINDOWS, &v))
				usage();
			o->windows = (__u32)v;
			break;
		case 't':
			if (cpn_parse_double(optarg, 0.1, 600, &o->seconds))
				usage();
			break;
		case 'M':
			if (cpn_parse_u64(optarg, 1, UINT64_MAX, &v))
				usage();
			o->max_packets = v;
			break;
		case 'j':
			o->json = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !o->dev || !o->have_mac)
		usage();
	if (o->ncpus && (__u32)o->ncpus != o->queues) {
		fprintf(stderr, "cpn-pktgen: --cpus lists %d CPUs for %u queues\n", o->ncpus,
			o->queues);
		exit(2);
	}
	if ((__u32)o->sport + o->queues * o->flows - 1 > 65535) {
		fprintf(stderr, "cpn-pktgen: --sport + queues x flows passes port 65535\n");
		exit(2);
	}
}

/* Fill queue q's umem: NUM_FRAMES chunks, chunk i holding flow i % flows. */
static int build_frames(const struct opts *o, struct txq *q, const __u8 src_mac[6])
{
	static const __u8 zeros[MAX_PAYLOAD];
	__u8 buf[CPN_PKT_MAX];
	struct cpn_pkt s;
	size_t n = 0;

	for (__u32 i = 0; i < NUM_FRAMES; i++) {
		__u32 flow = i % o->flows;

		cpn_pkt_default(&s, CPN_AF_INET);
		s.src = o->src;
		s.dst = o->dst;
		s.sport = (__u16)(o->sport + (__u32)q->qid * o->flows + flow);
		s.dport = o->dport;
		s.msg.service_id = o->service;
		s.msg.tenant_id = o->tenant;
		s.msg.request_id = ((__u64)q->qid << 32) | (flow + 1);
		s.payload = zeros;
		s.payload_len = o->payload;
		n = cpn_pkt_build(&s, buf, sizeof(buf));
		if (!n || n > FRAME_SIZE || !cpn_pkt_csum_ok(buf, n)) {
			fprintf(stderr, "cpn-pktgen: cannot build a REQUEST from %s to %s\n",
				o->src, o->dst);
			return -1;
		}
		memcpy(buf, o->dst_mac, 6);
		memcpy(buf + 6, src_mac, 6);
		memcpy((__u8 *)q->area + (size_t)i * FRAME_SIZE, buf, n);
	}
	q->frame_len = (__u32)n;
	return 0;
}

static int open_queue(const struct opts *o, struct txq *q)
{
	struct xsk_umem_config ucfg = {
	    .fill_size = RING_SIZE,
	    .comp_size = RING_SIZE,
	    .frame_size = FRAME_SIZE,
	    .frame_headroom = 0,
	};
	struct xsk_socket_config scfg = {
	    .rx_size = 0,
	    .tx_size = RING_SIZE,
	    .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
	    .bind_flags = XDP_COPY,
	};
	size_t size = (size_t)NUM_FRAMES * FRAME_SIZE;
	int err;

	q->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->area == MAP_FAILED) {
		q->area = NULL;
		return -errno;
	}
	err = xsk_umem__create(&q->umem, q->area, size, &q->fill, &q->comp, &ucfg);
	if (err)
		return err;
	/* A queue that an AF_XDP socket just left stays busy until the
	 * kernel's deferred release of its umem has run: retry for 2 s.
	 */
	for (int try = 0; try < 40; try++) {
		err = xsk_socket__create(&q->xsk, o->dev, (__u32)q->qid, q->umem, NULL, &q->tx,
					 &scfg);
		if (err != -EBUSY)
			break;
		usleep(50000);
	}
	return err;
}

static void close_queue(struct txq *q)
{
	if (q->xsk)
		xsk_socket__delete(q->xsk);
	if (q->umem)
		xsk_umem__delete(q->umem);
	if (q->area)
		munmap(q->area, (size_t)NUM_FRAMES * FRAME_SIZE);
}

/* One queue's loop: reclaim completions, queue up to BATCH descriptors while
 * fewer than RING_SIZE are outstanding, kick the kernel.
 */
static void *tx_loop(void *arg)
{
	struct txq *q = arg;
	int fd = xsk_socket__fd(q->xsk);
	__u32 next = 0, outstanding = 0, idx;
	__u64 sent = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed) && sent < q->max_packets) {
		__u32 done = xsk_ring_cons__peek(&q->comp, RING_SIZE, &idx);
		__u32 want, got;

		if (done) {
			xsk_ring_cons__release(&q->comp, done);
			outstanding -= done;
			sent += done;
			atomic_store_explicit(&q->sent, sent, memory_order_relaxed);
		}
		want = RING_SIZE - outstanding;
		if (want > BATCH)
			want = BATCH;
		if (sent + outstanding + want > q->max_packets)
			want = (__u32)(q->max_packets - sent - outstanding);
		got = want ? xsk_ring_prod__reserve(&q->tx, want, &idx) : 0;
		for (__u32 i = 0; i < got; i++) {
			struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + i);

			d->addr = (__u64)next * FRAME_SIZE;
			d->len = q->frame_len;
			d->options = 0;
			next = (next + 1) % NUM_FRAMES;
		}
		if (got) {
			xsk_ring_prod__submit(&q->tx, got);
			outstanding += got;
		}
		if (!outstanding)
			continue;
		/* Copy mode transmits in the sendto() call. EAGAIN: the device
		 * queue is stopped (retry); EBUSY: the device dropped a frame
		 * (it is completed all the same and counts as sent).
		 */
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != EBUSY && errno != ENOBUFS && errno != EINTR) {
			q->err = errno;
			atomic_store(&stop, 1);
			break;
		}
	}
	return NULL;
}

static void cpu_meter_init(struct cpu_meter *m, const struct txq *qs, __u32 nq)
{
	m->nsoft = 0;
	for (__u32 i = 0; i < nq; i++) {
		char want[32], comm[64], path[64];
		int dup = 0;

		for (__u32 j = 0; j < i; j++)
			dup |= qs[j].cpu == qs[i].cpu;
		if (dup)
			continue;
		snprintf(want, sizeof(want), "ksoftirqd/%d\n", qs[i].cpu);
		/* Kernel threads are started early: their pids are small. */
		for (int pid = 2; pid < 4096 && m->nsoft < MAX_QUEUES; pid++) {
			FILE *f;
			int hit;

			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			f = fopen(path, "r");
			if (!f)
				continue;
			hit = fgets(comm, sizeof(comm), f) && !strcmp(comm, want);
			fclose(f);
			if (hit) {
				snprintf(m->soft[m->nsoft++], sizeof(m->soft[0]),
					 "/proc/%d/schedstat", pid);
				break;
			}
		}
	}
}

/* Seconds of CPU: this process's threads and the ksoftirqd threads. */
static double cpu_meter_read(const struct cpu_meter *m)
{
	struct timespec ts;
	double t = 0;

	if (!clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts))
		t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	for (int i = 0; i < m->nsoft; i++) {
		unsigned long long ns = 0;
		FILE *f = fopen(m->soft[i], "r");

		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			t += (double)ns / 1e9;
		fclose(f);
	}
	return t;
}

struct sink {
	int fd;
	int ncpu;
	struct cpn_sink_counts *vals; /* one per possible CPU */
};

static int sink_read(struct sink *s, __u64 out[CPN_SINK_SLOTS])
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(s->fd, &zero, s->vals))
		return -errno;
	for (int k = 0; k < CPN_SINK_SLOTS; k++) {
		out[k] = 0;
		for (int c = 0; c < s->ncpu; c++)
			out[k] += s->vals[c].slot[k];
	}
	return 0;
}

static __u64 total_sent(struct txq *qs, __u32 n)
{
	__u64 t = 0;

	for (__u32 i = 0; i < n; i++)
		t += atomic_load_explicit(&qs[i].sent, memory_order_relaxed);
	return t;
}

/* Sleep until `until` (monotonic seconds) in steps, so that a signal or a
 * queue's error ends the wait early. Returns 0 when the time was reached.
 */
static int sleep_until(double until)
{
	while (!atomic_load(&stop)) {
		double left = until - ((double)cpn_now_ns() / 1e9);
		struct timespec ts;

		if (left <= 0)
			return 0;
		if (left > 0.05)
			left = 0.05;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* One reading of the sink's counters and of the frames sent, taken close
 * together: the sent count is read before and after the sink's (one map
 * lookup) and their mean kept; a reading that this thread was preempted in
 * the middle of (the two sent counts apart by more than 1/2000 of the
 * frames of a window) is taken again, the tightest of 8 kept.
 */
static int take_reading(struct sink *s, struct txq *qs, __u32 nq, double slack,
			__u64 counts[CPN_SINK_SLOTS], __u64 *sent, double *t,
			const struct cpu_meter *m, double *cpu)
{
	__u64 best = UINT64_MAX, c[CPN_SINK_SLOTS];

	for (int i = 0; i < 8 && best > slack; i++) {
		__u64 a = total_sent(qs, nq), b;
		double ta = ((double)cpn_now_ns() / 1e9);

		if (sink_read(s, c))
			return -1;
		b = total_sent(qs, nq);
		if (b - a < best) {
			best = b - a;
			memcpy(counts, c, sizeof(c));
			*sent = a + (b - a) / 2;
			*t = (ta + ((double)cpn_now_ns() / 1e9)) / 2;
		}
	}
	*cpu = cpu_meter_read(m);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, __u32 n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(const struct opts *o, const struct txq *qs, const struct window *w, __u32 nw,
		   __u64 sent_all, double run_s)
{
	double tx[MAX_WINDOWS], rx[MAX_WINDOWS], drop[MAX_WINDOWS];
	double tx_m = 0, rx_m = 0, drop_m = 0, rx_lo = 0, rx_hi = 0;

	for (__u32 i = 0; i < nw; i++) {
		tx[i] = (double)w[i].sent / w[i].secs / 1e6;
		rx[i] = (double)w[i].rcvd / w[i].secs / 1e6;
		drop[i] = w[i].sent ? 100.0 * (1.0 - (double)w[i].rcvd / (double)w[i].sent) : 0;
	}
	if (nw) {
		tx_m = median(tx, nw);
		rx_m = median(rx, nw);
		drop_m = median(drop, nw);
		rx_lo = rx[0];
		rx_hi = rx[nw - 1]; /* sorted by median() */
	}
	if (!o->json) {
		printf("cpn-pktgen: %s, %u queue(s), %u-byte frames, %u flows per queue, "
		       "%.1f s\n",
		       o->dev, o->queues, qs[0].frame_len, o->flows, run_s);
		printf("  sent %llu frames\n", (unsigned long long)sent_all);
		if (nw)
			printf("  median of %u windows: sent %.3f Mpps, received %.3f Mpps "
			       "(min %.3f, max %.3f), drop %.2f %%\n",
			       nw, tx_m, rx_m, rx_lo, rx_hi, drop_m);
		return;
	}
	printf("{\"generator\":\"cpn-pktgen\",\"mode\":\"af_xdp_copy\",\"dev\":\"%s\","
	       "\"queues\":%u,\"cpus\":[",
	       o->dev, o->queues);
	for (__u32 i = 0; i < o->queues; i++)
		printf("%s%d", i ? "," : "", qs[i].cpu);
	printf("],\"frame_len\":%u,\"flows_per_queue\":%u,\"warmup_s\":%g,\"window_s\":%g,"
	       "\"sent_total\":%llu,\"run_s\":%.3f,\"windows\":[",
	       qs[0].frame_len, o->flows, o->warmup, o->seconds, (unsigned long long)sent_all,
	       run_s);
	for (__u32 i = 0; i < nw; i++)
		printf("%s{\"seconds\":%.6f,\"cpu_s\":%.4f,\"sent\":%llu,\"received\":%llu,"
		       "\"requests\":%llu,\"tagged\":%llu,\"sent_mpps\":%.4f,\"rx_mpps\":%.4f,"
		       "\"rx_mpps_per_cpu\":%.4f,\"drop_pct\":%.3f}",
		       i ? "," : "", w[i].secs, w[i].cpu_s, (unsigned long long)w[i].sent,
		       (unsigned long long)w[i].rcvd, (unsigned long long)w[i].req,
		       (unsigned long long)w[i].tagged, (double)w[i].sent / w[i].secs / 1e6,
		       (double)w[i].rcvd / w[i].secs / 1e6,
		       w[i].cpu_s > 0 ? (double)w[i].rcvd / w[i].cpu_s / 1e6 : 0.0,
		       w[i].sent ? 100.0 * (1.0 - (double)w[i].rcvd / (double)w[i].sent) : 0.0);
	printf("],\"median\":{\"sent_mpps\":%.4f,\"rx_mpps\":%.4f,\"drop_pct\":%.3f},"
	       "\"rx_mpps_min\":%.4f,\"rx_mpps_max\":%.4f}\n",
	       tx_m, rx_m, drop_m, rx_lo, rx_hi);
}

static int split_addr(const char *s, char *ip, size_t cap, __u16 *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t v;

	if (!colon || (size_t)(colon - s) >= cap || cpn_parse_u64(colon + 1, 1, 65535, &v))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	*port = (__u16)v;
	return 0;
}

static int load_main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"node", 1, 0, 'n'},     {"from", 1, 0, 'f'},   {"to", 1, 0, 't'},
	    {"capacity", 1, 0, 'c'}, {"svc-us", 1, 0, 's'}, {0, 0, 0, 0},
	};
	struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
	char ip_from[64] = "", ip_to[64] = "";
	__u16 p_from = 0, p_to = 0;
	uint64_t v, node = 0, cap = 64, svc = 100;
	struct cpn_msg m;
	struct cpn_hdr h;
	int c, fd, one = 1;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if ((c == 'n' || c == 'c') && cpn_parse_u64(optarg, 1, 65535, &v))
			goto usage;
		if (c == 's' && cpn_parse_u64(optarg, 1, UINT32_MAX, &v))
			goto usage;
		if (c == 'n')
			node = v;
		else if (c == 'c')
			cap = v;
		else if (c == 's')
			svc = v;
		else if (c == 'f' && split_addr(optarg, ip_from, sizeof(ip_from), &p_from))
			goto usage;
		else if (c == 't' && split_addr(optarg, ip_to, sizeof(ip_to), &p_to))
			goto usage;
		else if (c == '?')
			goto usage;
	}
	if (optind != argc || !node || !p_from || !p_to ||
	    inet_pton(AF_INET, ip_from, &from.sin_addr) != 1 ||
	    inet_pton(AF_INET, ip_to, &to.sin_addr) != 1)
		goto usage;
	from.sin_port = htons(p_from);
	to.sin_port = htons(p_to);
	cpn_msg_init(&m, CPN_T_LOAD);
	m.node_id = (__u16)node;
	m.capacity = (__u16)cap;
	m.worker_us = (__u32)svc;
	cpn_hdr_encode(&m, &h);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&from, sizeof(from)) ||
	    sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(h)) {
		fprintf(stderr, "cpn-pktgen load: %s -> %s: %s\n", ip_from, ip_to, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
usage:
	fprintf(stderr, "usage: cpn-pktgen load --node N --from IP:PORT --to IP:PORT "
			"[--capacity C] [--svc-us US]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct txq qs[MAX_QUEUES];
	struct window w[MAX_WINDOWS];
	struct sink sink = {.fd = -1};
	__u64 c0[CPN_SINK_SLOTS], c1[CPN_SINK_SLOTS], s0, s1;
	__u8 src_mac[6];
	struct opts o;
	__u32 nw = 0, started = 0;
	double t_start, t0, t1, u0, u1, end, slack;
	struct cpu_meter meter;
	int rc = 1, err;

	if (argc > 1 && !strcmp(argv[1], "load"))
		return load_main(argc - 1, argv + 1);
	parse_args(argc, argv, &o);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (dev_mac(o.dev, src_mac)) {
		fprintf(stderr, "cpn-pktgen: no interface %s here: %s\n", o.dev, strerror(errno));
		return 1;
	}
	if (o.sink_map) {
		sink.fd = bpf_obj_get(o.sink_map);
		sink.ncpu = libbpf_num_possible_cpus();
		if (sink.fd < 0 || sink.ncpu <= 0) {
			fprintf(stderr, "cpn-pktgen: cannot open the sink's counters %s: %s\n",
				o.sink_map, strerror(errno));
			return 1;
		}
		sink.vals = calloc((size_t)sink.ncpu, sizeof(*sink.vals));
		if (!sink.vals || sink_read(&sink, c0)) {
			fprintf(stderr, "cpn-pktgen: cannot read %s\n", o.sink_map);
			goto out;
		}
	}
	for (__u32 i = 0; i < o.queues; i++) {
		struct txq *q = &qs[i];

		q->qid = (int)i;
		q->cpu = o.ncpus ? o.cpus[i] : (int)i;
		q->max_packets = o.max_packets;
		err = open_queue(&o, q);
		if (err) {
			fprintf(stderr, "cpn-pktgen: AF_XDP socket on %s queue %u: %s\n", o.dev, i,
				strerror(-err));
			goto out;
		}
		if (build_frames(&o, q, src_mac))
			goto out;
	}
	cpu_meter_init(&meter, qs, o.queues);
	t_start = ((double)cpn_now_ns() / 1e9);
	for (; started < o.queues; started++) {
		pthread_attr_t attr;
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(qs[started].cpu, &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		err = pthread_create(&qs[started].thread, &attr, tx_loop, &qs[started]);
		pthread_attr_destroy(&attr);
		if (err) {
			fprintf(stderr, "cpn-pktgen: thread on CPU %d: %s\n", qs[started].cpu,
				strerror(err));
			atomic_store(&stop, 1);
			goto join;
		}
	}
	end = t_start + o.warmup + o.windows * o.seconds;
	if (sleep_until(t_start + o.warmup))
		goto stop;
	/* 1/2000 of what the warm-up sent in a window's time. */
	slack = (double)total_sent(qs, o.queues) / (o.warmup > 0 ? o.warmup : 1) * o.seconds / 2000;
	if (sink.fd >= 0) {
		if (take_reading(&sink, qs, o.queues, slack, c0, &s0, &t0, &meter, &u0))
			goto stop;
		for (; nw < o.windows; nw++) {
			if (sleep_until(t0 + o.seconds))
				break;
			if (take_reading(&sink, qs, o.queues, slack, c1, &s1, &t1, &meter, &u1))
				break;
			w[nw] =
			    (struct window){.secs = t1 - t0,
					    .cpu_s = u1 - u0,
					    .sent = s1 - s0,
					    .rcvd = c1[CPN_SINK_PKTS] - c0[CPN_SINK_PKTS],
					    .req = c1[CPN_SINK_REQ] - c0[CPN_SINK_REQ],
					    .tagged = c1[CPN_SINK_TAGGED] - c0[CPN_SINK_TAGGED]};
			if (!o.json)
				fprintf(stderr,
					"window %u: %.3f s, sent %.3f Mpps, received %.3f Mpps, "
					"%.2f s of CPU\n",
					nw + 1, w[nw].secs, (double)w[nw].sent / w[nw].secs / 1e6,
					(double)w[nw].rcvd / w[nw].secs / 1e6, w[nw].cpu_s);
			memcpy(c0, c1, sizeof(c0));
			s0 = s1;
			t0 = t1;
			u0 = u1;
		}
	} else {
		sleep_until(end);
	}
stop:
	atomic_store(&stop, 1);
join:
	for (__u32 i = 0; i < started; i++)
		pthread_join(qs[i].thread, NULL);
	rc = 0;
	for (__u32 i = 0; i < o.queues; i++) {
		if (qs[i].err) {
			fprintf(stderr, "cpn-pktgen: queue %u: sendto: %s\n", i,
				strerror(qs[i].err));
			rc = 1;
		}
	}
	if (started < o.queues || (sink.fd >= 0 && nw < o.windows) || !total_sent(qs, o.queues)) {
		fprintf(stderr, "cpn-pktgen: stopped early (%u of %u windows, %llu frames sent)\n",
			nw, o.windows, (unsigned long long)total_sent(qs, o.queues));
		rc = 1;
	}
	report(&o, qs, w, nw, total_sent(qs, o.queues), ((double)cpn_now_ns() / 1e9) - t_start);
out:
	for (__u32 i = 0; i < o.queues; i++)
		close_queue(&qs[i]);
	if (sink.fd >= 0)
		close(sink.fd);
	free(sink.vals);
	return rc;
}
