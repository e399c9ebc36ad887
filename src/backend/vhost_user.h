/* vhost-user, the front end's side (the vhost-user protocol as QEMU's
 * docs/interop/vhost-user.rst describes it): khyve hands a back-end
 * process (virtiofsd) the guest's memory table (memfd descriptors sent
 * with SCM_RIGHTS) and a device's rings; the back end then reads the
 * rings itself, woken by the queues' kick eventfds (KVM ioeventfds), and
 * signals their call eventfds.
 *
 * Every reply from the back end is checked (request code, flags, size)
 * and every wait for one has a timeout: a socket that is not a vhost-user
 * back end gives a one-line reason, never a hang. Sends use MSG_NOSIGNAL:
 * a back end that died is an error return, not SIGPIPE.
 *
 * Not thread-safe: the device calls it under its own lock. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct vhost_user;

#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Requests (front end to back end). */
enum {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
};

#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3

#define VHOST_USER_HDR_SIZE 12
#define VHOST_USER_VERSION 0x1
#define VHOST_USER_FLAG_REPLY 0x4
#define VHOST_USER_FLAG_NEED_REPLY 0x8
#define VHOST_USER_MAX_REGIONS 8

/* A reply as the parser found it. */
struct vhost_user_reply {
	uint32_t request;
	enum { VU_REPLY_U64, VU_REPLY_STATE } kind;
	uint64_t u64;               /* GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, acks */
	uint32_t index, num;        /* GET_VRING_BASE */
};

/* Check len bytes the back end sent as the reply to request (header and
 * payload): 0 and *out filled, or -EPROTO with a one-line reason in why.
 * Pure: the fuzz target drives it. */
int vhost_user_parse_reply(const uint8_t *buf, size_t len, uint32_t request,
			   struct vhost_user_reply *out, char *why, size_t whylen);

struct vhost_user_ring {
	unsigned num;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t base;              /* next avail index to read */
	int kick_fd, call_fd, err_fd;
};

/* Connect to the back end's socket and negotiate: GET_FEATURES, the
 * protocol features (REPLY_ACK, MQ) when offered, SET_OWNER, and with MQ
 * a check that it has at least min_queues queues. *features gets what the
 * back end offers. timeout_ms bounds each wait for a reply. */
int vhost_user_connect(struct vhost_user **out, const char *path, unsigned min_queues,
		       int timeout_ms, uint64_t *features, char *why, size_t whylen);
/* The same on a connected socket fd (taken over, closed on failure);
 * name is for messages. */
int vhost_user_attach(struct vhost_user **out, int fd, const char *name, unsigned min_queues,
		      int timeout_ms, uint64_t *features, char *why, size_t whylen);
/* The socket (for watching it hang up: the back end died). */
int vhost_user_fd(const struct vhost_user *vu);
/* Start the back end on n rings (queue i = ring[i]): SET_FEATURES (the
 * guest's, plus PROTOCOL_FEATURES when negotiated), SET_MEM_TABLE with
 * the guest RAM's descriptors (the RAM must be shareable:
 * guest_mem_shared), then each ring's NUM, BASE, ADDR, KICK, CALL, ERR
 * and, with protocol features, ENABLE. */
int vhost_user_start(struct vhost_user *vu, uint64_t features, const struct guest_mem *mem,
		     const struct vhost_user_ring *ring, unsigned n, char *why, size_t whylen);
/* Point ring index's completions at fd (a started back end): the
 * vector's irqfd, or khyve's own eventfd while the vector is masked. */
int vhost_user_set_call(struct vhost_user *vu, unsigned index, int fd, char *why, size_t whylen);
/* Stop every ring (SET_VRING_ENABLE 0, GET_VRING_BASE, which the back end
 * answers once it no longer touches the ring); base[i] gets where ring i
 * stopped (base may be NULL). Returns 0 or -errno (the back end is gone
 * or misbehaves: it is then not to be trusted with RAM any more). */
int vhost_user_stop(struct vhost_user *vu, uint16_t *base, char *why, size_t whylen);
bool vhost_user_started(const struct vhost_user *vu);
void vhost_user_close(struct vhost_user *vu);
