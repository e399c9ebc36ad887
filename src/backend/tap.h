/* A Linux tap interface by name, for virtio-net: frames carry a 12-byte
 * virtio-net header (IFF_VNET_HDR) so checksum and segmentation offloads
 * pass through, and khyve brings the link up when it opens it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_mrg_rxbuf / _v1 */

#define TAP_MAX_QUEUES 16

struct tap {
	int fd; /* non-blocking; queue 0 */
	/* With queues (IFF_MULTI_QUEUE): one descriptor per queue, qfd[0]
	 * being fd. 0 or 1: fd alone. */
	unsigned nqueues;
	int qfd[TAP_MAX_QUEUES];
	char name[16];
	/* Found once at open: the link-state calls run on the device thread,
	 * under a sandbox that lets it make no sockets for if_nametoindex. */
	unsigned ifindex;
	bool vnet_hdr;   /* frames carry TAP_VNET_HDR_LEN bytes of header */
	bool brought_up; /* the link was down and khyve set it up */
};

/* Attach to the existing tap interface name. A missing interface, or one
 * that is not a tap, is an error with a one-line reason. */
int tap_open(const char *name, struct tap **out, char *err, size_t errlen);
/* The same with nqueues queues (1..TAP_MAX_QUEUES): more than one needs a
 * tap made multi_queue, and is refused with a reason on any other. All
 * queues are attached when this returns. */
int tap_open_queues(const char *name, unsigned nqueues, struct tap **out, char *err,
		    size_t errlen);
/* Queue q's descriptor. */
int tap_queue_fd(const struct tap *t, unsigned q);
/* Attach or detach queue q (TUNSETQUEUE): the kernel steers frames only to
 * attached queues, and a detached one neither sends nor receives. */
int tap_queue_attach(struct tap *t, unsigned q, bool on);
/* Which offloads the guest takes on receive (TUNSETOFFLOAD). */
int tap_set_offload(struct tap *t, bool csum, bool tso4, bool tso6, bool ecn);
void tap_close(struct tap *t);

/* The link state the guest should see: the interface is administratively
 * up and has carrier (IFF_UP and IFF_LOWER_UP). Watching it: a netlink
 * socket (RTMGRP_LINK) to put on an event loop; tap_link_read() drains it
 * and returns 1 with *up set when the tap's state was reported, 0 when
 * nothing about it came, -errno on failure. tap_link_now() asks once. */
int tap_link_watch(void);
int tap_link_read(int fd, const struct tap *t, bool *up);
int tap_link_now(const struct tap *t, bool *up);
