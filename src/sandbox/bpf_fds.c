#include "sandbox/bpf_fds.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Argument 0's low word: x86-64 is little-endian. */
#define ARG0_LO ((uint32_t)offsetof(struct seccomp_data, args[0]))

static bool is_sentinel(uint32_t k)
{
	return k == SB_SITE_VM_MASK || k == SB_SITE_VM_VALUE || k == SB_SITE_VCPU_MASK ||
	       k == SB_SITE_VCPU_VALUE;
}

/* Whether the instruction sets the accumulator afresh or ends the
 * program: what may follow a site's jump. */
static bool reloads_or_returns(const struct sock_filter *f)
{
	return BPF_CLASS(f->code) == BPF_RET ||
	       (BPF_CLASS(f->code) == BPF_LD && BPF_MODE(f->code) == BPF_ABS);
}

/* 1 with the site's kind in *vcpu when prog[i] starts one, else 0. */
static int site_at(const struct sock_filter *prog, size_t len, size_t i, bool *vcpu)
{
	if (i + 2 >= len || prog[i].code != (BPF_LD | BPF_W | BPF_ABS) || prog[i].k != ARG0_LO ||
	    prog[i + 1].code != (BPF_ALU | BPF_AND | BPF_K) ||
	    prog[i + 2].code != (BPF_JMP | BPF_JEQ | BPF_K))
		return 0;
	if (prog[i + 1].k == SB_SITE_VM_MASK && prog[i + 2].k == SB_SITE_VM_VALUE)
		*vcpu = false;
	else if (prog[i + 1].k == SB_SITE_VCPU_MASK && prog[i + 2].k == SB_SITE_VCPU_VALUE)
		*vcpu = true;
	else
		return 0;
	return 1;
}

int sandbox_bpf_patch(struct sock_filter *prog, size_t len, const struct sandbox_fds *fds)
{
	/* Where jumps land (BPF jumps only forward). */
	bool *landed = calloc(len + 1, 1);
	if (!landed)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < len && !r; i++) {
		if (BPF_CLASS(prog[i].code) != BPF_JMP)
			continue;
		size_t a, b;
		if (BPF_OP(prog[i].code) == BPF_JA) {
			a = b = i + 1 + prog[i].k;
		} else {
			a = i + 1 + prog[i].jt;
			b = i + 1 + prog[i].jf;
		}
		if (a >= len || b >= len)
			r = -EINVAL;
		else
			landed[a] = landed[b] = true;
	}

	int sites = 0;
	for (size_t i = 0; i < len && !r; i++) {
		bool vcpu;
		if (site_at(prog, len, i, &vcpu)) {
			const struct sock_filter *j = &prog[i + 2];
			if (landed[i + 1] || landed[i + 2] || !reloads_or_returns(&prog[i + 3 + j->jt]) ||
			    !reloads_or_returns(&prog[i + 3 + j->jf]))
				r = -EINVAL;
			sites++;
			i += 2;
		} else if (is_sentinel(prog[i].k)) {
			r = -EINVAL;
		}
	}
	free(landed);
	if (r || !fds)
		return r ? r : sites;

	for (size_t i = 0; i < len; i++) {
		bool vcpu;
		if (!site_at(prog, len, i, &vcpu))
			continue;
		struct sock_filter *j = &prog[i + 2];
		uint8_t match = j->jt, nomatch = j->jf;
		prog[i + 1] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_SUB | BPF_K,
							    vcpu ? fds->vcpu_first : fds->vm);
		*j = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, vcpu ? fds->nvcpu : 1,
						  nomatch, match);
		i += 2;
	}
	return sites;
}
