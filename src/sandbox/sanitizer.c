/* Only in builds with sanitizers (meson -Dsanitize=true, KHYVE_SANITIZE):
 * what the ASan, UBSan and LSan runtimes do on top of khyve's own calls.
 * sandbox_sanitizer_rules go to every role; sandbox_sanitizer_exit_rules
 * to the main thread only, whose exit runs LeakSanitizer's check (a
 * tracer made with clone that ptrace-stops every thread and reads
 * /proc/self). The optimized build has none of these. On x86-64 the
 * runtimes make the old calls (open, getdents, stat), not the *at ones.
 * LeakSanitizer's tracer starts with every signal blocked: a call missing
 * here kills it silently and leaves khyve stopped, not reported. */
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(sigaltstack),
	SB_ALLOW(rt_sigaction),
	SB_ALLOW(readlink),
	SB_ALLOW(openat),
	SB_ALLOW(open),
	SB_ALLOW(getdents),
	SB_ALLOW(stat),
	SB_ALLOW(lstat),
	SB_ALLOW(access),
	SB_ALLOW(lseek),
	SB_ALLOW(sched_yield),
	SB_ALLOW(read),
	SB_ALLOW(pread64),
	SB_ALLOW(getdents64),
	SB_ALLOW(fstat),
	SB_ALLOW(newfstatat),
	SB_ALLOW(prctl),
	SB_ALLOW(getrlimit),
	SB_ALLOW(prlimit64),
	SB_ALLOW(tgkill),
	SB_ALLOW(kill),
	SB_ALLOW(getppid),
	SB_ALLOW(uname),
	SB_ALLOW(sched_getaffinity), /* a new thread's stack bounds (pthread_getattr_np) */
};

static const struct sandbox_rule exit_rules[] = {
	SB_ALLOW_IF(clone, SB_ARG_MASK(0, CLONE_VM | CLONE_THREAD, CLONE_VM)),
	SB_ALLOW(ptrace),
	SB_ALLOW(wait4),
	SB_ALLOW(waitid),
	SB_ALLOW(sched_getaffinity),
};

const struct sandbox_rules sandbox_sanitizer_rules = SB_RULES("sanitizer", rules);
const struct sandbox_rules sandbox_sanitizer_exit_rules = SB_RULES("sanitizer-exit", exit_rules);
