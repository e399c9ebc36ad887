/* virtio-net's receive filter and the control-queue requests that set it
 * (virtio 1.2, 5.1.6.5): what a guest may write through the control queue,
 * parsed and applied without touching the device, so that the parser can
 * be fuzzed on its own (tests/fuzz/fuzz_net_ctrl.c).
 *
 * No locking here: the device holds its lock around both calls. */
#ifndef KHYVE_VIRTIO_NET_CTRL_H
#define KHYVE_VIRTIO_NET_CTRL_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

#define NET_MAC_TABLE 64 /* filter entries; more means "accept all" */

#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23

#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0

#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1

struct net_filter {
	uint8_t mac[6]; /* the device's own address (config space 0-5) */
	bool promisc, allmulti, uni_overflow, multi_overflow;
	unsigned nuni, nmulti;
	uint8_t uni[NET_MAC_TABLE][6], multi[NET_MAC_TABLE][6];
};

/* As after a device reset: promiscuous (as QEMU, until the driver says
 * otherwise), no tables, the given address. */
void net_filter_reset(struct net_filter *f, const uint8_t mac[6]);

/* Whether the guest asked for frames to dst (5.1.6.5.1/2). */
bool net_filter_wants(const struct net_filter *f, const uint8_t dst[6]);

/* What a request asked of the device besides the filter. */
struct net_ctrl_done {
	bool announce_acked; /* a valid ANNOUNCE_ACK */
	uint16_t pairs;      /* a valid MQ_VQ_PAIRS_SET: 1..max_pairs; else 0 */
};

/* One control request c (its readable part: class, command, data) under
 * the negotiated features; max_pairs is the device's max_virtqueue_pairs.
 * Returns the ack (VIRTIO_NET_OK or _ERR); the filter changes, and *done
 * says anything, only on OK. */
uint8_t net_ctrl_apply(struct net_filter *f, uint64_t features, uint16_t max_pairs,
		       const struct vq_chain *c, struct net_ctrl_done *done);

#endif
