// SPDX-License-Identifier: BSD-2-Clause
/*
 * UDP flows for bench/net-mq: one thread per flow, flow i pinned to CPU
 * i % ncpus, so that with a multiqueue virtio-net each flow leaves (XPS)
 * and is taken in (the queue's interrupt) on its own CPU. Linked
 * statically: it runs in the Linux kit's busybox initramfs.
 *
 *   mqflow tx DST PORT FLOWS WARM_MS RUN_MS
 *       flow i sends 1472-byte datagrams (1514-byte frames) to DST:PORT+i
 *       without pause; a blocking socket waits for the device, so the
 *       rate is what the ring drains.
 *   mqflow rx PEER PORT FLOWS WARM_MS RUN_MS
 *       flow i counts datagrams on PORT+i and, every 200 ms, sends one
 *       small datagram from that port to PEER:PORT+i: it teaches the
 *       host's neighbour table the guest's address and a multiqueue tap
 *       (tun's flow table, which ages out in 3 s) to put the flow's
 *       reverse direction on the queue this CPU transmits on.
 *   mqflow send DST PORT FLOWS
 *       the host end of rx: one thread, socket i bound to PORT+i and
 *       connected to DST:PORT+i, sending batches round robin until killed.
 *
 * tx and rx print "MQ: ready", then after WARM_MS "MQ: mark0 N0 N1 ..",
 * after RUN_MS more "MQ: mark1 N0 N1 .. ns=ELAPSED" (cumulative
 * per-flow counts), then stop. The host timestamps the mark lines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 8
#define PAYLOAD 1472
#define BATCH 32

struct flow {
	_Alignas(64) atomic_ullong count;
	int idx;
	int fd;
	struct sockaddr_in peer;
};

static struct flow flows[MAX_FLOWS];
static atomic_bool stop;
static int nflows;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int idx)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(idx % (n > 0 ? n : 1), &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("mqflow: sched_setaffinity");
}

static int udp_socket(int port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("mqflow: socket");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (port) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
			perror("mqflow: bind");
			exit(1);
		}
	}
	return fd;
}

static void *tx_thread(void *arg)
{
	struct flow *f = arg;
	static char buf[PAYLOAD];
	struct iovec iov = {buf, sizeof(buf)};
	struct mmsghdr m[BATCH];
	pin(f->idx);
	memset(m, 0, sizeof(m));
	for (int i = 0; i < BATCH; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int n = sendmmsg(f->fd, m, BATCH, 0);
		if (n > 0)
			atomic_fetch_add_explicit(&f->count, (unsigned)n, memory_order_relaxed);
	}
	return NULL;
}

static void *rx_thread(void *arg)
{
	struct flow *f = arg;
	static char bufs[MAX_FLOWS][BATCH][2048];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	pin(f->idx);
	memset(m, 0, sizeof(m));
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){bufs[f->idx][i], sizeof(bufs[f->idx][i])};
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	struct timeval tv = {0, 100000};
	setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint64_t next = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t t = now_ns();
		if (t >= next) {
			sendto(f->fd, "k", 1, 0, (struct sockaddr *)&f->peer, sizeof(f->peer));
			next = t + 200000000u;
		}
		int n = recvmmsg(f->fd, m, BATCH, MSG_WAITFORONE, NULL);
		if (n > 0)
			atomic_fetch_add_explicit(&f->count, (unsigned)n, memory_order_relaxed);
	}
	return NULL;
}

static void print_counts(const char *what, const char *tail)
{
	char line[256];
	int len = snprintf(line, sizeof(line), "MQ: %s", what);
	for (int i = 0; i < nflows; i++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %llu",
				(unsigned long long)atomic_load(&flows[i].count));
	printf("%s%s\n", line, tail);
	fflush(stdout);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

static struct sockaddr_in addr_of(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "mqflow: bad address %s\n", ip);
		exit(2);
	}
	return a;
}

static int sender(const char *dst, int port)
{
	static char buf[PAYLOAD];
	struct iovec iov = {buf, sizeof(buf)};
	struct mmsghdr m[BATCH];
	memset(m, 0, sizeof(m));
	for (int i = 0; i < BATCH; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	int fds[MAX_FLOWS];
	for (int i = 0; i < nflows; i++) {
		fds[i] = udp_socket(port + i);
		struct sockaddr_in a = addr_of(dst, port + i);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a))) {
			perror("mqflow: connect");
			return 1;
		}
	}
	for (;;)
		for (int i = 0; i < nflows; i++)
			sendmmsg(fds[i], m, BATCH, MSG_DONTWAIT); /* refusals and full queues: go on */
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: mqflow tx|rx ADDR PORT FLOWS WARM_MS RUN_MS | send ADDR PORT FLOWS\n");
		return 2;
	}
	const char *mode = argv[1], *ip = argv[2];
	int port = atoi(argv[3]);
	nflows = atoi(argv[4]);
	if (nflows < 1 || nflows > MAX_FLOWS || port <= 0 || port + nflows > 65535) {
		fprintf(stderr, "mqflow: bad port or flow count\n");
		return 2;
	}
	if (!strcmp(mode, "send"))
		return sender(ip, port);
	if (argc < 7 || (strcmp(mode, "tx") && strcmp(mode, "rx"))) {
		fprintf(stderr, "mqflow: unknown mode or missing times\n");
		return 2;
	}
	long warm = atol(argv[5]), run = atol(argv[6]);
	bool tx = !strcmp(mode, "tx");
	pthread_t th[MAX_FLOWS];
	for (int i = 0; i < nflows; i++) {
		flows[i].idx = i;
		flows[i].peer = addr_of(ip, port + i);
		flows[i].fd = udp_socket(tx ? 0 : port + i);
		if (tx && connect(flows[i].fd, (struct sockaddr *)&flows[i].peer, sizeof(flows[i].peer))) {
			perror("mqflow: connect");
			return 1;
		}
		if (pthread_create(&th[i], NULL, tx ? tx_thread : rx_thread, &flows[i])) {
			fprintf(stderr, "mqflow: pthread_create failed\n");
			return 1;
		}
	}
	printf("MQ: ready\n");
	fflush(stdout);
	sleep_ms(warm);
	uint64_t t0 = now_ns();
	print_counts("mark0", "");
	sleep_ms(run);
	char tail[48];
	snprintf(tail, sizeof(tail), " ns=%llu", (unsigned long long)(now_ns() - t0));
	print_counts("mark1", tail);
	atomic_store(&stop, true);
	for (int i = 0; i < nflows; i++)
		pthread_join(th[i], NULL);
	return 0;
}
