/* A virtio-net device's thread on a tap (virtio/net.c): epoll over the
 * tap, the queues' kicks and its own eventfds; frames to and from the tap
 * (read/readv, write/writev); the tap's link state over rtnetlink
 * (recvfrom, sendto; a fresh netlink socket to ask for it after lost
 * messages); vhost-net set up and stopped on this thread
 * (VHOST_* ioctls, on the vhost descriptor: the request numbers are the
 * check, the descriptor is not known here); with queues=, each pair's
 * thread attaches and detaches its own tap queue (TUNSETQUEUE) as the
 * guest enables pairs. */
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(epoll_wait),
	SB_ALLOW(io_uring_enter), /* a transmit batch to the tap */
	SB_ALLOW(epoll_pwait),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(read),
	SB_ALLOW(readv),
	SB_ALLOW(recvfrom),
	SB_ALLOW(sendto),
	SB_ALLOW_IF(socket, SB_ARG_EQ(0, AF_NETLINK)),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_FEATURES),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_MEM_TABLE),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_NUM),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_BASE),
	SB_IOCTL(SB_FD_ANY, VHOST_GET_VRING_BASE),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_ADDR),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_KICK),
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_CALL),
	SB_IOCTL(SB_FD_ANY, VHOST_NET_SET_BACKEND),
	SB_IOCTL(SB_FD_ANY, TUNSETQUEUE),
};

const struct sandbox_rules sandbox_net_io_rules = SB_RULES("net_io", rules);
