/* Build time only: one role's allowlists (this folder, one file per role)
 * into a libseccomp filter (gen_filters.c exports it as BPF). */
#pragma once
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>

#include "sandbox/bpf_fds.h"
#include "util/thread_role.h"

/* Adds the role's rules (the common list's, its own, the device roles'
 * for the starter, the sanitizer runtimes' with sanitizer) to ctx.
 * fds NULL: descriptor checks as the sites bpf_fds.h describes, for the
 * runtime to rewrite. fds given: those descriptors themselves, an
 * equality per vCPU, as khyve compiled them at start before its
 * programs were made at build time: the reference the unit test holds
 * the rewritten programs to. 0 or -errno (and a line on stderr). */
int sandbox_compile(scmp_filter_ctx ctx, enum thread_role role, bool sanitizer,
		    const struct sandbox_fds *fds);
/* The same, exported as BPF by libseccomp: a program of *len
 * instructions (free it), or NULL (and a line on stderr). */
struct sock_filter *sandbox_compile_bpf(enum thread_role role, bool sanitizer,
					const struct sandbox_fds *fds, size_t *len);
const char *sandbox_role_name(enum thread_role role);
