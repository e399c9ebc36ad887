/* The sandbox's filters are made at build time (gen_filters.c, with
 * libseccomp) but some rules name descriptors known only at run time: the
 * VM's (SB_FD_VM) and its vCPUs' (SB_FD_VCPUS). How they get in:
 *
 * - vmm/vm.c gives the vCPUs contiguous descriptors [first, first + n),
 *   so "any vCPU" is one range, whatever n is (up to KVM's limit).
 * - The generator writes each such condition as a masked compare of
 *   argument 0 with constants of its own (below), which libseccomp
 *   compiles to three instructions, a site:
 *       ld  [args[0] low word]; and #MASK; jeq #VALUE, match, nomatch
 * - At start the runtime rewrites every site into a 32-bit range check,
 *   in place (same length, so no jump moves):
 *       ld  [args[0] low word]; sub #first; jge #count, nomatch, match
 *   (unsigned: fd - first < count), with the VM as a range of one.
 *   Compared as 32-bit values, as every other descriptor rule: the
 *   kernel's ioctl takes an unsigned int.
 *
 * The rewrite is sound only if a site runs as a whole and its accumulator
 * is used by its own jump alone. So a site counts only when: its three
 * instructions are exactly those; no jump lands on its second or third;
 * both of its jump's targets reload the accumulator or return. Any other
 * instruction holding one of the constants makes the program refused, so
 * does a count of sites other than the generator found: the build fails
 * (the generator runs the same check), or khyve refuses to start. Per
 * call this costs what an equality did: one check per rule, not one per
 * vCPU. */
#pragma once
#include <linux/filter.h>
#include <stddef.h>

/* Masks and values nothing else in a filter uses (the generator checks);
 * each kind has its own mask, so that libseccomp never reuses one site's
 * masked accumulator for another. */
#define SB_SITE_VM_MASK 0x7e5c0ff6u
#define SB_SITE_VM_VALUE 0x7e5c0a02u
#define SB_SITE_VCPU_MASK 0x6d4b0ff6u
#define SB_SITE_VCPU_VALUE 0x6d4b0c04u

struct sandbox_fds {
	unsigned vm;                /* the VM's descriptor */
	unsigned vcpu_first, nvcpu; /* the vCPUs': [vcpu_first, vcpu_first + nvcpu) */
};

/* Finds the program's sites; with fds, rewrites them as above. Returns
 * the number of sites, or -EINVAL (nothing rewritten) when a constant of
 * the sites' is anywhere else or a site breaks one of the rules above. */
int sandbox_bpf_patch(struct sock_filter *prog, size_t len, const struct sandbox_fds *fds);
