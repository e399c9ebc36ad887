/* vhost-net: the kernel's virtio-net data path (/dev/vhost-net) on a tap.
 * khyve hands it the guest's memory table and the two rings; it then
 * reads the transmit ring and fills the receive ring itself, woken by the
 * queues' kick eventfds (ioeventfd) and signalling their call eventfds.
 *
 * The device's path can be overridden with KHYVE_VHOST_NET_DEVICE (tests
 * use a missing path to see the fallback). Every failure comes with a
 * one-line reason for the user; the caller then uses its own path. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct vhost_net;

struct vhost_net_ring {
	unsigned num;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t base;              /* next avail index to read */
	int kick_fd, call_fd;
};

/* Open the device and take ownership (VHOST_SET_OWNER); *features gets
 * what it offers (VHOST_GET_FEATURES). */
int vhost_net_open(struct vhost_net **out, uint64_t *features, char *why, size_t whylen);
/* Give it the rings (rx then tx) and start on tapfd. features: what the
 * guest took that vhost must know (ring layout, header size). */
int vhost_net_start(struct vhost_net *vn, uint64_t features, const struct guest_mem *mem,
		    const struct vhost_net_ring ring[2], int tapfd, char *why, size_t whylen);
/* Signal ring's completions on fd from now on (VHOST_SET_VRING_CALL):
 * the queue's irqfd, or an eventfd the caller reads. Callable while
 * started, from any thread. */
int vhost_net_set_call(struct vhost_net *vn, unsigned ring, int fd);
/* Detach the tap from both rings; when this returns the kernel no longer
 * touches guest memory. Safe when not started. */
void vhost_net_stop(struct vhost_net *vn);
void vhost_net_close(struct vhost_net *vn);
