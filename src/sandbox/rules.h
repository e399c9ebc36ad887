/* What a role's allowlist is made of (one file per role in this folder,
 * each a table of these). One line per system call, with the arguments it
 * must have where they can be checked (a pointer cannot be: seccomp sees
 * only the six argument registers).
 *
 *   SB_ALLOW(read)                         any arguments
 *   SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGUSR1))  every condition must hold
 *   SB_IOCTL(SB_FD_VCPUS, KVM_RUN)         this request, on these fds only
 *
 * Rules for one call are alternatives: any rule that matches allows it.
 * The lists are compiled at build time (gen_filters.c, compile.c): khyve
 * itself holds only the BPF programs made of them, and a rule bound to a
 * descriptor (SB_FD_VM, SB_FD_VCPUS) gets the VM's at start (bpf_fds.h). */
#pragma once
#include <seccomp.h>
#include <stddef.h>

/* Descriptors a rule can be bound to, known once the VM is made. */
enum sandbox_fd {
	SB_FD_ANY,   /* no condition on the descriptor */
	SB_FD_VM,    /* the KVM VM */
	SB_FD_VCPUS, /* any of the VM's vCPUs */
};

struct sandbox_rule {
	int nr;
	enum sandbox_fd fd; /* argument 0 is this descriptor */
	unsigned nargs;
	struct scmp_arg_cmp args[3];
};

struct sandbox_rules {
	const char *name; /* the role's name in reports and docs */
	const struct sandbox_rule *rules;
	size_t n;
};

/* Compared as 32-bit values: the kernel sees an int (a descriptor, an
 * ioctl request passed as int) with its upper half undefined. */
#define SB_ARG_EQ(i, v) SB_ARG_MASK(i, 0xffffffffULL, v)
/* (arg & mask) == v; spelled out, as SCMP_CMP is no constant for tables */
#define SB_ARG_MASK(i, mask, v)                                                                   \
	{ .arg = (i), .op = SCMP_CMP_MASKED_EQ, .datum_a = (scmp_datum_t)(mask),                 \
	  .datum_b = (scmp_datum_t)(v) }

#define SB_NARGS(...) (sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp))
#define SB_ALLOW(sys) { .nr = SCMP_SYS(sys) }
#define SB_ALLOW_IF(sys, ...) { .nr = SCMP_SYS(sys), .nargs = SB_NARGS(__VA_ARGS__), .args = { __VA_ARGS__ } }
#define SB_IOCTL(fdk, req) { .nr = SCMP_SYS(ioctl), .fd = (fdk), .nargs = 1, .args = { SB_ARG_EQ(1, (req)) } }
/* mmap and mprotect, never executable */
#define SB_NO_EXEC(sys) SB_ALLOW_IF(sys, SB_ARG_MASK(2, PROT_EXEC, 0))

#define SB_RULES(role, table) { .name = (role), .rules = (table), .n = sizeof(table) / sizeof((table)[0]) }

/* Every role's list (one file each), and what every thread needs. */
extern const struct sandbox_rules sandbox_common_rules;   /* common.c */
extern const struct sandbox_rules sandbox_vcpu_rules;     /* vcpu.c */
extern const struct sandbox_rules sandbox_evloop_rules;   /* evloop.c */
extern const struct sandbox_rules sandbox_starter_rules;  /* starter.c */
extern const struct sandbox_rules sandbox_blk_io_rules;   /* blk_io.c */
extern const struct sandbox_rules sandbox_net_io_rules;   /* net_io.c */
extern const struct sandbox_rules sandbox_fs_io_rules;    /* fs_io.c */
extern const struct sandbox_rules sandbox_p9_io_rules;    /* p9_io.c */
/* Only in builds with sanitizers (sanitizer.c): what their runtimes add. */
extern const struct sandbox_rules sandbox_sanitizer_rules;
extern const struct sandbox_rules sandbox_sanitizer_exit_rules;
