#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "IRQCHIP" },
	{ KVM_CAP_PIT2, "PIT2" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING" },
	{ KVM_CAP_IOEVENTFD, "IOEVENTFD" },
	{ KVM_CAP_IRQFD, "IRQFD" },
	{ KVM_CAP_MP_STATE, "MP_STATE" },
};

int kvm_capability(int kvm_fd, long cap)
{
	int r = ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

int kvm_open(char *err, size_t errlen)
{
	const char *path = getenv("KHYVE_KVM_DEVICE");
	if (!path || !*path)
		path = "/dev/kvm";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if ((e == EACCES || e == EPERM) && stat(path, &st) == 0) {
			/* The one thing to do about it: name the group. */
			char group[64];
			struct group *g = getgrgid(st.st_gid);
			if (g)
				snprintf(group, sizeof(group), "%s", g->gr_name);
			else
				snprintf(group, sizeof(group), "%u", (unsigned)st.st_gid);
			if ((st.st_mode & 060) == 060)
				snprintf(err, errlen, "%s: %s: join the group '%s' that owns it (usermod -aG %s "
					 "USER, then log in again)", path, strerror(e), group, group);
			else
				snprintf(err, errlen, "%s: %s: it is mode %04o (group '%s'), so only its owner "
					 "may use it; make it group read-write (mode 0660) and join the group '%s'",
					 path, strerror(e), (unsigned)(st.st_mode & 07777), group, group);
			return -e;
		}
		const char *hint = "";
		if (e == ENOENT)
			hint = " (is the kvm module loaded, and virtualization enabled in the firmware?)";
		snprintf(err, errlen, "%s: %s%s", path, strerror(e), hint);
		return -e;
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, expected %d", path, version,
			 KVM_API_VERSION);
		close(fd);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (!kvm_capability(fd, required_caps[i].cap)) {
			snprintf(err, errlen, "%s: KVM lacks the %s capability that khyve needs", path,
				 required_caps[i].name);
			close(fd);
			return -ENOTSUP;
		}
	}
	return fd;
}

struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int e = errno;
		free(c);
		if (e != E2BIG) {
			errno = e;
			return NULL;
		}
	}
	errno = E2BIG;
	return NULL;
}
