#include "backend/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

/* The tap's flags as tun reports them in sysfs (IFF_MULTI_QUEUE among
 * them); -1 when they cannot be read. */
static long tun_flags(const char *name)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 16);
	return end == buf ? -1 : v;
}

static void not_multiqueue(const char *name, unsigned nqueues, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "%s: not a multiqueue tap; queues=%u needs one made with: ip tuntap add %s mode tap multi_queue",
		 name, nqueues, name);
}

int tap_open(const char *name, struct tap **out, char *err, size_t errlen)
{
	return tap_open_queues(name, 1, out, err, errlen);
}

int tap_open_queues(const char *name, unsigned nqueues, struct tap **out, char *err,
		    size_t errlen)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "'%s' is not a network interface name", name ? name : "");
		return -EINVAL;
	}
	if (nqueues < 1 || nqueues > TAP_MAX_QUEUES) {
		snprintf(err, errlen, "%s: %u queues: expected 1-%d", name, nqueues, TAP_MAX_QUEUES);
		return -EINVAL;
	}
	/* TUNSETIFF would create a missing interface: refuse instead. */
	unsigned ifindex = if_nametoindex(name);
	if (ifindex == 0) {
		snprintf(err, errlen, "%s: no such network interface (create it with: ip tuntap add %s mode tap%s)",
			 name, name, nqueues > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	/* tun refuses a queue of the other kind (EINVAL): ask sysfs first,
	 * to say which, and to take a multiqueue tap with one queue too. */
	long flags = tun_flags(name);
	bool mq = nqueues > 1 || (flags >= 0 && (flags & IFF_MULTI_QUEUE));
	if (nqueues > 1 && flags >= 0 && !(flags & IFF_MULTI_QUEUE)) {
		not_multiqueue(name, nqueues, err, errlen);
		return -EINVAL;
	}
	struct tap *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->ifindex = ifindex;
	t->nqueues = nqueues;
	for (unsigned q = 0; q < TAP_MAX_QUEUES; q++)
		t->qfd[q] = -1;
	int r;
	unsigned features = 0;
	for (unsigned q = 0; q < nqueues; q++) {
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: /dev/net/tun: %s%s", name, strerror(errno),
				 errno == EACCES ? " (attaching to a tap one owns needs /dev/net/tun to be mode "
						   "0666, as udev makes it)" : "");
			goto fail;
		}
		t->qfd[q] = fd;
		if (q == 0 && ioctl(fd, TUNGETFEATURES, &features) < 0)
			features = 0;
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | (features & IFF_VNET_HDR ? IFF_VNET_HDR : 0) |
					(mq ? IFF_MULTI_QUEUE : 0));
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			r = -errno;
			if (errno == EINVAL && nqueues > 1 && flags < 0)
				not_multiqueue(name, nqueues, err, errlen);
			else if (errno == EINVAL)
				snprintf(err, errlen, "%s: not a tap interface (or one set up for other flags)", name);
			else if (errno == EBUSY)
				snprintf(err, errlen, "%s: already in use by another program", name);
			else if (errno == E2BIG)
				snprintf(err, errlen, "%s: no room for %u more queues", name, nqueues - q);
			else
				snprintf(err, errlen, "%s: cannot attach to it: %s", name, strerror(errno));
			goto fail;
		}
	}
	t->fd = t->qfd[0];
	if (features & IFF_VNET_HDR) {
		int sz = TAP_VNET_HDR_LEN; /* the device's, for every queue */
		t->vnet_hdr = ioctl(t->fd, TUNSETVNETHDRSZ, &sz) == 0;
	}
	/* Bring the link up (Linux's counterpart of up_on_open). That alone
	 * needs CAP_NET_ADMIN: a user's own tap that is up already needs
	 * nothing, one that is down stays down (the guest sees no carrier
	 * until someone sets it up), which is said, not an error. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
			ifr.ifr_flags |= IFF_UP;
			t->brought_up = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
			if (!t->brought_up)
				log_warn("%s: the link is down and cannot be set up here (%s): the guest "
					 "sees no carrier until it is (ip link set %s up)",
					 name, strerror(errno), name);
		}
		close(s);
	}
	*out = t;
	return 0;
fail:
	for (unsigned q = 0; q < nqueues; q++)
		if (t->qfd[q] >= 0)
			close(t->qfd[q]);
	free(t);
	return r;
}

int tap_queue_fd(const struct tap *t, unsigned q)
{
	if (q == 0)
		return t->fd;
	return q < t->nqueues ? t->qfd[q] : -1;
}

int tap_queue_attach(struct tap *t, unsigned q, bool on)
{
	int fd = tap_queue_fd(t, q);
	if (fd < 0)
		return -EINVAL;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int tap_set_offload(struct tap *t, bool csum, bool tso4, bool tso6, bool ecn)
{
	if (!t->vnet_hdr)
		return csum || tso4 || tso6 ? -EOPNOTSUPP : 0;
	unsigned off = 0;
	if (csum) {
		off |= TUN_F_CSUM;
		if (tso4)
			off |= TUN_F_TSO4;
		if (tso6)
			off |= TUN_F_TSO6;
		if ((tso4 || tso6) && ecn)
			off |= TUN_F_TSO_ECN;
	}
	return ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)off) < 0 ? -errno : 0;
}

void tap_close(struct tap *t)
{
	if (!t)
		return;
	close(t->fd);
	for (unsigned q = 1; q < t->nqueues; q++)
		close(t->qfd[q]);
	free(t);
}

/* ---- link state ---- */

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* <linux/if.h>, which clashes with <net/if.h> */
#endif

/* Administratively up with carrier. IFF_LOWER_UP (carrier) is set at once;
 * IFF_RUNNING follows it only after the kernel's link-watch delay. */
static bool link_up_flags(unsigned flags) { return (flags & IFF_UP) && (flags & IFF_LOWER_UP); }

int tap_link_watch(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Messages about interface idx in buf: 1 and *up when one was there. */
static int parse_links(const char *buf, size_t len, unsigned idx, bool *up)
{
	int found = 0;
	for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, len);
	     h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
			continue;
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
			continue;
		const struct ifinfomsg *ifi = NLMSG_DATA(h);
		if (idx == 0 || (unsigned)ifi->ifi_index != idx)
			continue;
		*up = h->nlmsg_type == RTM_NEWLINK && link_up_flags(ifi->ifi_flags);
		found = 1;
	}
	return found;
}

int tap_link_read(int fd, const struct tap *t, bool *up)
{
	unsigned idx = t->ifindex;
	int found = 0;
	for (;;) {
		char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? found : -errno;
		found |= parse_links(buf, (size_t)n, idx, up);
	}
}

int tap_link_now(const struct tap *t, bool *up)
{
	unsigned idx = t->ifindex;
	if (!idx)
		return -ENODEV;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)idx },
	};
	int r = -EIO;
	if (send(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req)) {
		char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 && parse_links(buf, (size_t)n, idx, up))
			r = 0;
	} else {
		r = -errno;
	}
	close(fd);
	return r;
}
