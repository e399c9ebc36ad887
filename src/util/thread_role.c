#include "util/thread_role.h"

#include <stddef.h>

static const struct thread_role_policy *policy;

void thread_role_set_policy(const struct thread_role_policy *p) { policy = p; }

void thread_role_enter(enum thread_role role)
{
	if (policy && policy->enter)
		policy->enter(role);
}

int thread_role_setup_call(int (*fn)(void *arg), void *arg)
{
	if (policy && policy->setup_call)
		return policy->setup_call(fn, arg);
	return fn(arg);
}
