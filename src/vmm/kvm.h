/* The host's KVM, checked through its API only (never /proc/cpuinfo: on
 * nested and software KVM hosts the CPU flags are absent while /dev/kvm
 * works). */
#pragma once
#include <stddef.h>

struct kvm_cpuid2;

/* Open /dev/kvm (or $KHYVE_KVM_DEVICE) and check the API version and the
 * capabilities khyve needs. Returns the fd, or -errno with a reason. */
int kvm_open(char *err, size_t errlen);
/* KVM_CHECK_EXTENSION on the system fd; 0 when absent. */
int kvm_capability(int kvm_fd, long cap);
/* KVM_GET_SUPPORTED_CPUID, allocated; NULL with errno on failure. */
struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd);
