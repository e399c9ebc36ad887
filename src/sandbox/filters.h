/* The sandbox's BPF programs, one per thread role, made at build time by
 * gen_filters from the allowlists in this folder (filters.c, generated).
 * Their descriptor checks still hold the sites bpf_fds.h describes:
 * sandbox.c rewrites a copy of each at start. */
#pragma once
#include <linux/filter.h>

#include "util/thread_role.h"

struct sandbox_filter {
	const char *name; /* the role's name in reports and docs */
	const struct sock_filter *prog;
	unsigned short len;
	unsigned short sites; /* descriptor checks the generator found */
};

extern const struct sandbox_filter sandbox_filters[THREAD_ROLES];
/* "libseccomp X.Y.Z", and whether the sanitizer runtimes' rules are in. */
extern const char sandbox_filters_made_by[];
extern const int sandbox_filters_sanitizer;
