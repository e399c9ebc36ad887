/* The seccomp sandbox (khyve(8), SANDBOX): once set-up is done, each
 * thread may make only the system calls its role needs (one allowlist
 * file per role in this folder). A forbidden call traps: the SIGSYS
 * handler names the thread and the call, restores the terminal and ends
 * khyve with status 4.
 *
 * Threads made after the sandbox is on inherit their maker's filter, and
 * filters only ever narrow: so device threads are made by one thread, the
 * starter, whose list holds every device role's, and each narrows itself
 * to its own role as it begins (util/thread_role.h). */
#pragma once
#include <stddef.h>

struct vm;

/* Test hook: KHYVE_SANDBOX_TEST_FORBIDDEN=ROLE (a role's name, e.g.
 * blk_io) makes the first thread of that role make a forbidden call
 * (personality) right after its filter is in place. */
#define SANDBOX_TEST_ENV "KHYVE_SANDBOX_TEST_FORBIDDEN"

/* Turn the sandbox on for this VM: the SIGSYS report, the starter thread
 * (already under its filter), and the policy that puts every thread that
 * declares its role under that role's filter. Call once the VM and its
 * devices are made, before the vCPUs start. -errno with err set. */
int sandbox_start(struct vm *vm, char *err, size_t errlen);
