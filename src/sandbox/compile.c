/* Build time only (gen_filters, and the unit test that checks its work):
 * a role's allowlists compiled with libseccomp, as khyve compiled them at
 * start before its programs were made at build time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox/compile.h"
#include "sandbox/rules.h"

/* One list per role, in enum thread_role's order. */
static const struct sandbox_rules *const role_rules[THREAD_ROLES] = {
	[THREAD_ROLE_VCPU] = &sandbox_vcpu_rules,
	[THREAD_ROLE_EVLOOP] = &sandbox_evloop_rules,
	[THREAD_ROLE_STARTER] = &sandbox_starter_rules,
	[THREAD_ROLE_BLK_IO] = &sandbox_blk_io_rules,
	[THREAD_ROLE_NET_IO] = &sandbox_net_io_rules,
	[THREAD_ROLE_FS_IO] = &sandbox_fs_io_rules,
	[THREAD_ROLE_P9_IO] = &sandbox_p9_io_rules,
};

/* The roles whose threads the starter makes: its list holds theirs. */
static const enum thread_role device_roles[] = { THREAD_ROLE_BLK_IO, THREAD_ROLE_NET_IO,
						 THREAD_ROLE_FS_IO, THREAD_ROLE_P9_IO };

static int add_rule(scmp_filter_ctx ctx, const struct sandbox_rule *r, const struct sandbox_fds *fds)
{
	struct scmp_arg_cmp args[4];
	unsigned n = r->nargs;
	memcpy(args, r->args, n * sizeof(args[0]));
	int rc;
	switch (r->fd) {
	case SB_FD_ANY:
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n, args);
		break;
	case SB_FD_VM:
		args[n] = fds ? (struct scmp_arg_cmp)SB_ARG_EQ(0, fds->vm)
			      : (struct scmp_arg_cmp)SB_ARG_MASK(0, SB_SITE_VM_MASK, SB_SITE_VM_VALUE);
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n + 1, args);
		break;
	case SB_FD_VCPUS:
		if (!fds) {
			args[n] = (struct scmp_arg_cmp)SB_ARG_MASK(0, SB_SITE_VCPU_MASK,
								   SB_SITE_VCPU_VALUE);
			rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n + 1, args);
			break;
		}
		rc = 0;
		for (unsigned i = 0; i < fds->nvcpu && (!rc || rc == -EEXIST); i++) {
			args[n] = (struct scmp_arg_cmp)SB_ARG_EQ(0, fds->vcpu_first + i);
			rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n + 1, args);
		}
		break;
	default:
		return -EINVAL;
	}
	/* The same rule twice (two lists sharing one) is no error. */
	return rc == -EEXIST ? 0 : rc;
}

static int add_rules(scmp_filter_ctx ctx, const struct sandbox_rules *list,
		     const struct sandbox_fds *fds)
{
	for (size_t i = 0; i < list->n; i++) {
		int r = add_rule(ctx, &list->rules[i], fds);
		if (r) {
			fprintf(stderr, "sandbox_compile: %s: rule %zu (system call %d): %s\n", list->name,
				i, list->rules[i].nr, strerror(-r));
			return r;
		}
	}
	return 0;
}

int sandbox_compile(scmp_filter_ctx ctx, enum thread_role role, bool sanitizer,
		    const struct sandbox_fds *fds)
{
	/* glibc tries clone3 first and falls back to clone, whose flags a
	 * filter can check: nobody may use clone3. */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!r)
		r = add_rules(ctx, &sandbox_common_rules, fds);
	if (!r)
		r = add_rules(ctx, role_rules[role], fds);
	if (!r && role == THREAD_ROLE_STARTER)
		for (size_t i = 0; i < sizeof(device_roles) / sizeof(device_roles[0]) && !r; i++)
			r = add_rules(ctx, role_rules[device_roles[i]], fds);
	if (!r && sanitizer)
		r = add_rules(ctx, &sandbox_sanitizer_rules, fds);
	if (!r && sanitizer && role == THREAD_ROLE_EVLOOP)
		r = add_rules(ctx, &sandbox_sanitizer_exit_rules, fds);
	/* The vCPUs' KVM_RUN is the call made most: looked at first. */
	if (!r)
		r = seccomp_syscall_priority(ctx, SCMP_SYS(ioctl), 255);
	return r;
}

struct sock_filter *sandbox_compile_bpf(enum thread_role role, bool sanitizer,
				       const struct sandbox_fds *fds, size_t *len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return NULL;
	struct sock_filter *prog = NULL;
	int fd = memfd_create("filter", 0);
	int r = fd < 0 ? -errno : sandbox_compile(ctx, role, sanitizer, fds);
	if (!r)
		r = seccomp_export_bpf(ctx, fd);
	off_t size = r ? -1 : lseek(fd, 0, SEEK_END);
	if (size > 0 && size % sizeof(*prog) == 0 && (prog = malloc((size_t)size)) &&
	    pread(fd, prog, (size_t)size, 0) == size) {
		*len = (size_t)size / sizeof(*prog);
	} else {
		fprintf(stderr, "sandbox_compile: %s: %s\n", sandbox_role_name(role),
			r ? strerror(-r) : "cannot read the exported program");
		free(prog);
		prog = NULL;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return prog;
}

const char *sandbox_role_name(enum thread_role role) { return role_rules[role]->name; }
