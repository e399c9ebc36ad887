/* vhost-user front end (vhost_user.h). The message layouts are the
 * protocol's: a 12-byte header (request, flags, payload size), then the
 * payload; descriptors travel as SCM_RIGHTS beside it.
 *
 * Guest RAM: the back end maps the memory table's descriptors and keeps
 * the ring addresses from a start to the stop (GET_VRING_BASE answered)
 * that every device reset does; guest RAM is never remapped while the VM
 * lives (guest_mem.h). */
#include "backend/vhost_user.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mem/guest_mem.h"

#define VU_MAX_PAYLOAD 512 /* the largest we send: a memory table of 8 regions is 264 */
#define VU_MAX_QUEUES 8
#define VU_VRING_NOFD 0x100

struct vhost_user {
	int fd;
	int timeout_ms;
	uint64_t features;  /* offered by the back end */
	uint64_t protocol;  /* negotiated protocol features */
	bool started;
	unsigned nrings;
	char path[108];
};

/* ---- bytes ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static const char *request_name(uint32_t r)
{
	static const char *const names[] = {
		[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
		[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
		[VHOST_USER_SET_OWNER] = "SET_OWNER",
		[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
		[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
		[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
		[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	};
	return r < sizeof(names) / sizeof(names[0]) && names[r] ? names[r] : "request";
}

/* ---- the reply parser ---- */

int vhost_user_parse_reply(const uint8_t *buf, size_t len, uint32_t request,
			   struct vhost_user_reply *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	if (len < VHOST_USER_HDR_SIZE) {
		snprintf(why, whylen, "a reply of %zu bytes, shorter than a header", len);
		return -EPROTO;
	}
	uint32_t req = get32(buf), flags = get32(buf + 4), size = get32(buf + 8);
	if (req != request) {
		snprintf(why, whylen, "answered request %u to %s", req, request_name(request));
		return -EPROTO;
	}
	if ((flags & 0x3) != VHOST_USER_VERSION || !(flags & VHOST_USER_FLAG_REPLY)) {
		snprintf(why, whylen, "a reply to %s with flags %#x (not a version 1 reply)",
			 request_name(request), flags);
		return -EPROTO;
	}
	if (size != len - VHOST_USER_HDR_SIZE) {
		snprintf(why, whylen, "a reply to %s claims %u payload bytes but has %zu",
			 request_name(request), size, len - VHOST_USER_HDR_SIZE);
		return -EPROTO;
	}
	const uint8_t *p = buf + VHOST_USER_HDR_SIZE;
	out->request = req;
	if (request == VHOST_USER_GET_VRING_BASE) {
		if (size != 8) {
			snprintf(why, whylen, "a GET_VRING_BASE reply of %u bytes (expected 8)", size);
			return -EPROTO;
		}
		out->kind = VU_REPLY_STATE;
		out->index = get32(p);
		out->num = get32(p + 4);
		return 0;
	}
	if (size != 8) {
		snprintf(why, whylen, "a %s reply of %u bytes (expected 8)", request_name(request),
			 size);
		return -EPROTO;
	}
	out->kind = VU_REPLY_U64;
	out->u64 = get64(p);
	return 0;
}

/* ---- the socket ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_msg(struct vhost_user *vu, uint32_t request, uint32_t flags, const uint8_t *payload,
		    uint32_t size, const int *fds, unsigned nfds, char *why, size_t whylen)
{
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	put32(hdr, request);
	put32(hdr + 4, VHOST_USER_VERSION | flags);
	put32(hdr + 8, size);
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, size } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	size_t total = sizeof(hdr) + size;
	ssize_t w;
	do
		w = sendmsg(vu->fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		int e = errno;
		snprintf(why, whylen, "%s: sending %s: %s", vu->path, request_name(request),
			 e == EPIPE || e == ECONNRESET ? "the back end is gone" : strerror(e));
		return -e;
	}
	if ((size_t)w != total) {
		/* A UNIX stream socket takes a small message whole, or nothing. */
		snprintf(why, whylen, "%s: sending %s: short write", vu->path, request_name(request));
		return -EIO;
	}
	return 0;
}

/* Read exactly len bytes by the deadline; received descriptors (a back
 * end has no reason to send any here) are closed. */
static int read_full(struct vhost_user *vu, uint8_t *buf, size_t len, int64_t deadline,
		     const char *what, char *why, size_t whylen)
{
	size_t got = 0;
	while (got < len) {
		int left = (int)(deadline - now_ms());
		if (left <= 0) {
			snprintf(why, whylen,
				 "%s: no answer to %s within %d ms: not a vhost-user back end?",
				 vu->path, what, vu->timeout_ms);
			return -ETIMEDOUT;
		}
		struct pollfd pfd = { vu->fd, POLLIN, 0 };
		int pr = poll(&pfd, 1, left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			snprintf(why, whylen, "%s: poll: %s", vu->path, strerror(errno));
			return -errno;
		}
		if (pr == 0)
			continue;
		struct iovec iov = { buf + got, len - got };
		union {
			char b[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_REGIONS)];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				     .msg_controllen = sizeof(u.b) };
		ssize_t r = recvmsg(vu->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		for (struct cmsghdr *c = r >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
		/* A back end that exits as it starts (virtiofsd that may not
		 * drop its groups, as a user) hangs up here: its own output
		 * has the reason, which khyve cannot know. */
		if (r == 0 || (r < 0 && errno == ECONNRESET)) {
			snprintf(why, whylen,
				 "%s: the back end hung up before answering %s (did it fail to start? "
				 "its own messages say why)", vu->path, what);
			return -ECONNRESET;
		}
		if (r < 0) {
			snprintf(why, whylen, "%s: reading the answer to %s: %s", vu->path, what,
				 strerror(errno));
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

static int read_reply(struct vhost_user *vu, uint32_t request, struct vhost_user_reply *out,
		      char *why, size_t whylen)
{
	uint8_t buf[VHOST_USER_HDR_SIZE + 64];
	int64_t deadline = now_ms() + vu->timeout_ms;
	const char *what = request_name(request);
	int r = read_full(vu, buf, VHOST_USER_HDR_SIZE, deadline, what, why, whylen);
	if (r)
		return r;
	uint32_t size = get32(buf + 8);
	if (size > sizeof(buf) - VHOST_USER_HDR_SIZE) {
		snprintf(why, whylen, "%s: a reply to %s claims %u payload bytes: not a vhost-user back end?",
			 vu->path, what, size);
		return -EPROTO;
	}
	if ((r = read_full(vu, buf + VHOST_USER_HDR_SIZE, size, deadline, what, why, whylen)))
		return r;
	char inner[160];
	if ((r = vhost_user_parse_reply(buf, VHOST_USER_HDR_SIZE + size, request, out, inner,
					sizeof(inner)))) {
		snprintf(why, whylen, "%s: %s: not a vhost-user back end?", vu->path, inner);
		return r;
	}
	return 0;
}

static int get_u64(struct vhost_user *vu, uint32_t request, uint64_t *val, char *why, size_t whylen)
{
	int r = send_msg(vu, request, 0, NULL, 0, NULL, 0, why, whylen);
	struct vhost_user_reply rep;
	if (!r && !(r = read_reply(vu, request, &rep, why, whylen)))
		*val = rep.u64;
	return r;
}

/* A request without an answer of its own; with REPLY_ACK the back end
 * confirms it (0) or refuses it. */
static int set_msg(struct vhost_user *vu, uint32_t request, const uint8_t *payload, uint32_t size,
		   const int *fds, unsigned nfds, char *why, size_t whylen)
{
	bool ack = vu->protocol & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
	int r = send_msg(vu, request, ack ? VHOST_USER_FLAG_NEED_REPLY : 0, payload, size, fds, nfds,
			 why, whylen);
	if (r || !ack)
		return r;
	struct vhost_user_reply rep;
	if ((r = read_reply(vu, request, &rep, why, whylen)))
		return r;
	if (rep.u64) {
		snprintf(why, whylen, "%s: the back end refused %s", vu->path, request_name(request));
		return -EIO;
	}
	return 0;
}

static int set_u64(struct vhost_user *vu, uint32_t request, uint64_t v, char *why, size_t whylen)
{
	uint8_t p[8];
	put64(p, v);
	return set_msg(vu, request, p, 8, NULL, 0, why, whylen);
}

static int set_state(struct vhost_user *vu, uint32_t request, uint32_t index, uint32_t num,
		     char *why, size_t whylen)
{
	uint8_t p[8];
	put32(p, index);
	put32(p + 4, num);
	return set_msg(vu, request, p, 8, NULL, 0, why, whylen);
}

static int set_fd(struct vhost_user *vu, uint32_t request, unsigned index, int fd, char *why,
		  size_t whylen)
{
	uint8_t p[8];
	put64(p, index | (fd < 0 ? VU_VRING_NOFD : 0));
	return set_msg(vu, request, p, 8, &fd, fd < 0 ? 0 : 1, why, whylen);
}

/* ---- the session ---- */

/* The negotiation on a connected socket (owned by vu). */
static int negotiate(struct vhost_user *vu, unsigned min_queues, char *why, size_t whylen)
{
	int r;
	if ((r = get_u64(vu, VHOST_USER_GET_FEATURES, &vu->features, why, whylen)))
		return r;
	if (vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t pf;
		if ((r = get_u64(vu, VHOST_USER_GET_PROTOCOL_FEATURES, &pf, why, whylen)))
			return r;
		pf &= 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK | 1ULL << VHOST_USER_PROTOCOL_F_MQ;
		/* Acks start with the next request: this one goes without. */
		if ((r = set_u64(vu, VHOST_USER_SET_PROTOCOL_FEATURES, pf, why, whylen)))
			return r;
		vu->protocol = pf;
	}
	if ((r = set_msg(vu, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, why, whylen)))
		return r;
	if (vu->protocol & (1ULL << VHOST_USER_PROTOCOL_F_MQ)) {
		uint64_t nq;
		if ((r = get_u64(vu, VHOST_USER_GET_QUEUE_NUM, &nq, why, whylen)))
			return r;
		if (nq < min_queues) {
			snprintf(why, whylen, "%s: the back end has %llu queues, the device needs %u",
				 vu->path, (unsigned long long)nq, min_queues);
			return -EINVAL;
		}
	}
	return 0;
}

int vhost_user_attach(struct vhost_user **out, int fd, const char *name, unsigned min_queues,
		      int timeout_ms, uint64_t *features, char *why, size_t whylen)
{
	struct vhost_user *vu = calloc(1, sizeof(*vu));
	if (!vu) {
		close(fd);
		return -ENOMEM;
	}
	vu->fd = fd;
	snprintf(vu->path, sizeof(vu->path), "%s", name);
	vu->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	int r = negotiate(vu, min_queues, why, whylen);
	if (r) {
		vhost_user_close(vu);
		return r;
	}
	*features = vu->features;
	*out = vu;
	return 0;
}

int vhost_user_connect(struct vhost_user **out, const char *path, unsigned min_queues,
		       int timeout_ms, uint64_t *features, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: the socket path is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int r = -errno;
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		snprintf(why, whylen, "%s: %s%s", path, strerror(errno),
			 errno == ENOENT || errno == ECONNREFUSED ? " (is virtiofsd running?)" : "");
		close(fd);
		return r;
	}
	return vhost_user_attach(out, fd, path, min_queues, timeout_ms, features, why, whylen);
}

int vhost_user_fd(const struct vhost_user *vu) { return vu->fd; }

bool vhost_user_started(const struct vhost_user *vu) { return vu && vu->started; }

int vhost_user_start(struct vhost_user *vu, uint64_t features, const struct guest_mem *mem,
		     const struct vhost_user_ring *ring, unsigned n, char *why, size_t whylen)
{
	if (n > VU_MAX_QUEUES)
		return -EINVAL;
	if (vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))
		features |= 1ULL << VHOST_USER_F_PROTOCOL_FEATURES;
	int r;
	if ((r = set_u64(vu, VHOST_USER_SET_FEATURES, features, why, whylen)))
		return r;
	struct guest_mem_region reg[2];
	int nreg = guest_mem_regions(mem, reg);
	uint8_t table[8 + 32 * 2];
	int fds[2];
	put32(table, (uint32_t)nreg);
	put32(table + 4, 0);
	for (int i = 0; i < nreg; i++) {
		if (reg[i].fd < 0) {
			snprintf(why, whylen, "guest RAM is not shareable (no memory descriptor)");
			return -EINVAL;
		}
		uint8_t *e = table + 8 + 32 * i;
		put64(e, reg[i].gpa);
		put64(e + 8, reg[i].size);
		put64(e + 16, (uint64_t)(uintptr_t)reg[i].host);
		put64(e + 24, reg[i].fd_offset);
		fds[i] = reg[i].fd;
	}
	if ((r = set_msg(vu, VHOST_USER_SET_MEM_TABLE, table, (uint32_t)(8 + 32 * nreg), fds,
			 (unsigned)nreg, why, whylen)))
		return r;
	vu->started = true; /* from here a stop must take the rings back */
	vu->nrings = n;
	for (unsigned i = 0; i < n; i++) {
		const struct vhost_user_ring *q = &ring[i];
		uint64_t dlen = 16ull * q->num, alen = 6 + 2ull * q->num, ulen = 6 + 8ull * q->num;
		void *d = guest_mem_ptr(mem, q->desc, dlen), *a = guest_mem_ptr(mem, q->avail, alen),
		     *u = guest_mem_ptr(mem, q->used, ulen);
		if (!d || !a || !u) {
			snprintf(why, whylen, "queue %u's rings are not in guest RAM", i);
			return -EINVAL;
		}
		uint8_t addr[40];
		put32(addr, i);
		put32(addr + 4, 0);
		put64(addr + 8, (uint64_t)(uintptr_t)d);
		put64(addr + 16, (uint64_t)(uintptr_t)u);
		put64(addr + 24, (uint64_t)(uintptr_t)a);
		put64(addr + 32, 0);
		if ((r = set_state(vu, VHOST_USER_SET_VRING_NUM, i, q->num, why, whylen)) ||
		    (r = set_state(vu, VHOST_USER_SET_VRING_BASE, i, q->base, why, whylen)) ||
		    (r = set_msg(vu, VHOST_USER_SET_VRING_ADDR, addr, sizeof(addr), NULL, 0, why,
				 whylen)) ||
		    (r = set_fd(vu, VHOST_USER_SET_VRING_CALL, i, q->call_fd, why, whylen)) ||
		    (q->err_fd >= 0 &&
		     (r = set_fd(vu, VHOST_USER_SET_VRING_ERR, i, q->err_fd, why, whylen))) ||
		    (r = set_fd(vu, VHOST_USER_SET_VRING_KICK, i, q->kick_fd, why, whylen)))
			return r;
	}
	if (vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))
		for (unsigned i = 0; i < n; i++)
			if ((r = set_state(vu, VHOST_USER_SET_VRING_ENABLE, i, 1, why, whylen)))
				return r;
	return 0;
}

int vhost_user_set_call(struct vhost_user *vu, unsigned index, int fd, char *why, size_t whylen)
{
	if (!vu->started || index >= vu->nrings)
		return -EINVAL;
	return set_fd(vu, VHOST_USER_SET_VRING_CALL, index, fd, why, whylen);
}

int vhost_user_stop(struct vhost_user *vu, uint16_t *base, char *why, size_t whylen)
{
	if (!vu || !vu->started)
		return 0;
	int r = 0;
	vu->started = false;
	for (unsigned i = 0; i < vu->nrings && !r; i++) {
		if (vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES))
			r = set_state(vu, VHOST_USER_SET_VRING_ENABLE, i, 0, why, whylen);
		uint8_t p[8];
		put32(p, i);
		put32(p + 4, 0);
		struct vhost_user_reply rep;
		if (!r)
			r = send_msg(vu, VHOST_USER_GET_VRING_BASE, 0, p, 8, NULL, 0, why, whylen);
		if (!r)
			r = read_reply(vu, VHOST_USER_GET_VRING_BASE, &rep, why, whylen);
		if (!r && (rep.index != i || rep.num > 0xFFFF)) {
			snprintf(why, whylen, "%s: GET_VRING_BASE for queue %u answered queue %u, base %u",
				 vu->path, i, rep.index, rep.num);
			r = -EPROTO;
		}
		if (!r && base)
			base[i] = (uint16_t)rep.num;
	}
	return r;
}

void vhost_user_close(struct vhost_user *vu)
{
	if (!vu)
		return;
	close(vu->fd);
	free(vu);
}
