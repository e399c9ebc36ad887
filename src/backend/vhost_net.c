/* vhost-net setup (vhost_net.h), the ioctl sequence QEMU's and kvmtool's
 * vhost-net back ends use: SET_OWNER once; per start SET_FEATURES,
 * SET_MEM_TABLE, then for each ring NUM, BASE, ADDR, KICK, CALL and
 * finally NET_SET_BACKEND with the tap. Stop sets the backend to -1,
 * which waits for the kernel's worker to finish with the ring.
 *
 * Guest RAM: the kernel keeps the memory table's host addresses and the
 * ring pointers from start to stop; virtio-net stops it at every reset,
 * and guest RAM is never remapped while the VM lives (guest_mem.h). */
#include "backend/vhost_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "mem/guest_mem.h"

struct vhost_net {
	int fd;
	bool started;
};

int vhost_net_open(struct vhost_net **out, uint64_t *features, char *why, size_t whylen)
{
	const char *path = getenv("KHYVE_VHOST_NET_DEVICE");
	if (!path || !*path)
		path = "/dev/vhost-net";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		snprintf(why, whylen, "%s: %s%s", path, strerror(errno),
			 errno == ENOENT ? " (modprobe vhost_net)" : "");
		return r;
	}
	if (ioctl(fd, VHOST_SET_OWNER, NULL) < 0 || ioctl(fd, VHOST_GET_FEATURES, features) < 0) {
		int r = -errno;
		snprintf(why, whylen, "%s: VHOST_SET_OWNER/GET_FEATURES: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	struct vhost_net *vn = calloc(1, sizeof(*vn));
	if (!vn) {
		close(fd);
		return -ENOMEM;
	}
	vn->fd = fd;
	*out = vn;
	return 0;
}

static int fail(char *why, size_t whylen, const char *what)
{
	int r = -errno;
	snprintf(why, whylen, "vhost-net: %s: %s", what, strerror(errno));
	return r;
}

int vhost_net_start(struct vhost_net *vn, uint64_t features, const struct guest_mem *mem,
		    const struct vhost_net_ring ring[2], int tapfd, char *why, size_t whylen)
{
	if (ioctl(vn->fd, VHOST_SET_FEATURES, &features) < 0)
		return fail(why, whylen, "VHOST_SET_FEATURES");
	struct guest_mem_region reg[2];
	int nreg = guest_mem_regions(mem, reg);
	struct vhost_memory *m = calloc(1, sizeof(*m) + 2 * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	m->nregions = (uint32_t)nreg;
	for (int i = 0; i < nreg; i++)
		m->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = reg[i].gpa,
			.memory_size = reg[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)reg[i].host,
		};
	int r = ioctl(vn->fd, VHOST_SET_MEM_TABLE, m);
	free(m);
	if (r < 0)
		return fail(why, whylen, "VHOST_SET_MEM_TABLE");
	for (unsigned i = 0; i < 2; i++) {
		const struct vhost_net_ring *q = &ring[i];
		/* The rings must be RAM: the kernel reads them through the
		 * memory table, and khyve checks them as its own path would. */
		uint64_t dlen = 16ull * q->num, alen = 6 + 2ull * q->num, ulen = 6 + 8ull * q->num;
		void *d = guest_mem_ptr(mem, q->desc, dlen), *a = guest_mem_ptr(mem, q->avail, alen),
		     *u = guest_mem_ptr(mem, q->used, ulen);
		if (!d || !a || !u) {
			snprintf(why, whylen, "vhost-net: queue %u's rings are not in guest RAM", i);
			return -EINVAL;
		}
		struct vhost_vring_state num = { i, q->num }, base = { i, q->base };
		struct vhost_vring_addr addr = {
			.index = i,
			.desc_user_addr = (uint64_t)(uintptr_t)d,
			.avail_user_addr = (uint64_t)(uintptr_t)a,
			.used_user_addr = (uint64_t)(uintptr_t)u,
		};
		struct vhost_vring_file kick = { i, q->kick_fd }, call = { i, q->call_fd };
		if (ioctl(vn->fd, VHOST_SET_VRING_NUM, &num) < 0)
			return fail(why, whylen, "VHOST_SET_VRING_NUM");
		if (ioctl(vn->fd, VHOST_SET_VRING_BASE, &base) < 0)
			return fail(why, whylen, "VHOST_SET_VRING_BASE");
		if (ioctl(vn->fd, VHOST_SET_VRING_ADDR, &addr) < 0)
			return fail(why, whylen, "VHOST_SET_VRING_ADDR");
		if (ioctl(vn->fd, VHOST_SET_VRING_KICK, &kick) < 0)
			return fail(why, whylen, "VHOST_SET_VRING_KICK");
		if (ioctl(vn->fd, VHOST_SET_VRING_CALL, &call) < 0)
			return fail(why, whylen, "VHOST_SET_VRING_CALL");
	}
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file be = { i, tapfd };
		if (ioctl(vn->fd, VHOST_NET_SET_BACKEND, &be) < 0) {
			r = fail(why, whylen, "VHOST_NET_SET_BACKEND");
			vn->started = true;
			vhost_net_stop(vn);
			return r;
		}
	}
	vn->started = true;
	return 0;
}

int vhost_net_set_call(struct vhost_net *vn, unsigned ring, int fd)
{
	struct vhost_vring_file call = { ring, fd };
	return ioctl(vn->fd, VHOST_SET_VRING_CALL, &call) < 0 ? -errno : 0;
}

void vhost_net_stop(struct vhost_net *vn)
{
	if (!vn || !vn->started)
		return;
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file be = { i, -1 };
		ioctl(vn->fd, VHOST_NET_SET_BACKEND, &be);
		struct vhost_vring_state st = { i, 0 };
		ioctl(vn->fd, VHOST_GET_VRING_BASE, &st); /* stops the ring */
	}
	vn->started = false;
}

void vhost_net_close(struct vhost_net *vn)
{
	if (!vn)
		return;
	vhost_net_stop(vn);
	close(vn->fd);
	free(vn);
}
