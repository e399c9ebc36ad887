/* User-mode networking through libslirp: a private 10.0.2.0/24 with the
 * host at 10.0.2.2, DNS at 10.0.2.3 and DHCP from 10.0.2.15, with no tap
 * and no privilege. Frames are plain Ethernet (no virtio-net header).
 *
 * libslirp is single-threaded: every call into it (input, its sockets,
 * its timers) happens on the event loop thread, and the frames it sends
 * to the guest come out through rx on that thread too. Its sockets are
 * watched through one nested epoll descriptor on the loop and its poll
 * timeout through a loop timer, so nothing spins. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct slirp_be;

#define SLIRP_BE_MAX_HOSTFWD 16
#define SLIRP_BE_FRAME_MAX 1518 /* MTU 1500 + Ethernet header + VLAN tag */

/* Check one bhyve/QEMU hostfwd rule: [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT. */
int slirp_be_check_hostfwd(const char *rule, char *err, size_t errlen);

/* A frame for the guest (called on the loop thread). */
typedef void (*slirp_be_rx_fn)(void *opaque, const uint8_t *frame, size_t len);

/* After a round that sent frames through rx: one interrupt for them all. */
typedef void (*slirp_be_rx_done_fn)(void *opaque);

/* restricted: the guest reaches only slirp's own services and forwarded ports. */
int slirp_be_open(struct evloop *loop, const char *const *hostfwd, unsigned nhostfwd,
		  bool restricted, slirp_be_rx_fn rx, slirp_be_rx_done_fn done, void *opaque,
		  struct slirp_be **out, char *err, size_t errlen);
/* A frame from the guest. Loop thread only. Frames shorter than an
 * Ethernet header or longer than SLIRP_BE_FRAME_MAX are refused (-EINVAL). */
int slirp_be_input(struct slirp_be *s, const uint8_t *frame, size_t len);
/* After a batch of slirp_be_input: let libslirp's new or busier sockets
 * be watched (one fill per batch, not per frame). Loop thread only. */
void slirp_be_flush(struct slirp_be *s);
void slirp_be_close(struct slirp_be *s);
