#include "ctl/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ctl_reg_names[CTL_REG_COUNT] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
	"r12", "r13", "r14", "r15", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer",
	"dr0", "dr1", "dr2", "dr3", "dr6", "dr7",
#define SEG(n) n, n ".base", n ".limit", n ".access"
	SEG("cs"), SEG("ds"), SEG("es"), SEG("fs"), SEG("gs"), SEG("ss"), SEG("tr"), SEG("ldtr"),
#undef SEG
	"gdtr.base", "gdtr.limit", "idtr.base", "idtr.limit",
};

int ctl_reg_by_name(const char *name)
{
	for (int i = 0; i < CTL_REG_COUNT; i++)
		if (!strcmp(name, ctl_reg_names[i]))
			return i;
	return -1;
}

static struct kvm_segment *seg_of(struct vcpu_state *st, unsigned s)
{
	struct kvm_segment *segs[] = { &st->sregs.cs, &st->sregs.ds, &st->sregs.es, &st->sregs.fs,
				       &st->sregs.gs, &st->sregs.ss, &st->sregs.tr, &st->sregs.ldt };
	return segs[s];
}

static uint64_t *gpr_of(struct vcpu_state *st, unsigned reg)
{
	struct kvm_regs *r = &st->regs;
	uint64_t *gprs[] = {
		(uint64_t *)&r->rax, (uint64_t *)&r->rbx, (uint64_t *)&r->rcx, (uint64_t *)&r->rdx,
		(uint64_t *)&r->rsi, (uint64_t *)&r->rdi, (uint64_t *)&r->rbp, (uint64_t *)&r->rsp,
		(uint64_t *)&r->r8, (uint64_t *)&r->r9, (uint64_t *)&r->r10, (uint64_t *)&r->r11,
		(uint64_t *)&r->r12, (uint64_t *)&r->r13, (uint64_t *)&r->r14, (uint64_t *)&r->r15,
		(uint64_t *)&r->rip, (uint64_t *)&r->rflags,
	};
	return gprs[reg];
}

/* Access rights as bhyve (and VMX) encode them. */
static uint32_t seg_access(const struct kvm_segment *s)
{
	return (uint32_t)(s->type & 0xf) | (uint32_t)(s->s & 1) << 4 | (uint32_t)(s->dpl & 3) << 5 |
	       (uint32_t)(s->present & 1) << 7 | (uint32_t)(s->avl & 1) << 12 |
	       (uint32_t)(s->l & 1) << 13 | (uint32_t)(s->db & 1) << 14 | (uint32_t)(s->g & 1) << 15 |
	       (uint32_t)(s->unusable & 1) << 16;
}

static void set_seg_access(struct kvm_segment *s, uint32_t a)
{
	s->type = a & 0xf;
	s->s = (a >> 4) & 1;
	s->dpl = (a >> 5) & 3;
	s->present = (a >> 7) & 1;
	s->avl = (a >> 12) & 1;
	s->l = (a >> 13) & 1;
	s->db = (a >> 14) & 1;
	s->g = (a >> 15) & 1;
	s->unusable = (a >> 16) & 1;
}

uint64_t ctl_reg_get(const struct vcpu_state *cst, unsigned reg)
{
	struct vcpu_state *st = (struct vcpu_state *)cst; /* read only below */
	if (reg <= CTL_REG_RFLAGS)
		return *gpr_of(st, reg);
	switch (reg) {
	case CTL_REG_CR0: return st->sregs.cr0;
	case CTL_REG_CR2: return st->sregs.cr2;
	case CTL_REG_CR3: return st->sregs.cr3;
	case CTL_REG_CR4: return st->sregs.cr4;
	case CTL_REG_CR8: return st->sregs.cr8;
	case CTL_REG_EFER: return st->sregs.efer;
	case CTL_REG_DR0: case CTL_REG_DR1: case CTL_REG_DR2: case CTL_REG_DR3:
		return st->dregs.db[reg - CTL_REG_DR0];
	case CTL_REG_DR6: return st->dregs.dr6;
	case CTL_REG_DR7: return st->dregs.dr7;
	}
	if (reg >= CTL_REG_SEG_FIRST && reg < CTL_REG_DT_FIRST) {
		const struct kvm_segment *s = seg_of(st, (reg - CTL_REG_SEG_FIRST) / 4);
		switch ((reg - CTL_REG_SEG_FIRST) % 4) {
		case 0: return s->selector;
		case 1: return s->base;
		case 2: return s->limit;
		default: return seg_access(s);
		}
	}
	switch (reg - CTL_REG_DT_FIRST) {
	case 0: return st->sregs.gdt.base;
	case 1: return st->sregs.gdt.limit;
	case 2: return st->sregs.idt.base;
	case 3: return st->sregs.idt.limit;
	}
	return 0;
}

int ctl_reg_set(struct vcpu_state *st, unsigned reg, uint64_t v)
{
	if (reg >= CTL_REG_COUNT)
		return -EINVAL;
	if (reg <= CTL_REG_RFLAGS) {
		*gpr_of(st, reg) = v;
		return 0;
	}
	switch (reg) {
	case CTL_REG_CR0: st->sregs.cr0 = v; return 0;
	case CTL_REG_CR2: st->sregs.cr2 = v; return 0;
	case CTL_REG_CR3: st->sregs.cr3 = v; return 0;
	case CTL_REG_CR4: st->sregs.cr4 = v; return 0;
	case CTL_REG_CR8: st->sregs.cr8 = v; return 0;
	case CTL_REG_EFER: st->sregs.efer = v; return 0;
	case CTL_REG_DR0: case CTL_REG_DR1: case CTL_REG_DR2: case CTL_REG_DR3:
		st->dregs.db[reg - CTL_REG_DR0] = v;
		return 0;
	case CTL_REG_DR6: st->dregs.dr6 = v; return 0;
	case CTL_REG_DR7: st->dregs.dr7 = v; return 0;
	}
	if (reg >= CTL_REG_SEG_FIRST && reg < CTL_REG_DT_FIRST) {
		struct kvm_segment *s = seg_of(st, (reg - CTL_REG_SEG_FIRST) / 4);
		switch ((reg - CTL_REG_SEG_FIRST) % 4) {
		case 0:
			if (v > 0xffff)
				return -EINVAL;
			s->selector = (uint16_t)v;
			return 0;
		case 1: s->base = v; return 0;
		case 2:
			if (v > 0xffffffffULL)
				return -EINVAL;
			s->limit = (uint32_t)v;
			return 0;
		default:
			if (v > 0x1ffff)
				return -EINVAL;
			set_seg_access(s, (uint32_t)v);
			return 0;
		}
	}
	switch (reg - CTL_REG_DT_FIRST) {
	case 0: st->sregs.gdt.base = v; return 0;
	case 2: st->sregs.idt.base = v; return 0;
	default:
		if (v > 0xffff)
			return -EINVAL;
		if (reg - CTL_REG_DT_FIRST == 1)
			st->sregs.gdt.limit = (uint16_t)v;
		else
			st->sregs.idt.limit = (uint16_t)v;
		return 0;
	}
}

/* ---- buffers and frames ---- */

void ctl_buf_put(struct ctl_buf *b, const void *p, size_t len)
{
	if (b->failed || !len)
		return;
	if (b->len + len > CTL_FRAME_MAX + 4) {
		b->failed = true;
		return;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		ctl_buf_put(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ctl_buf_put(b, big, (size_t)n);
	free(big);
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void ctl_frame(struct ctl_buf *b, uint16_t code, const void *body, size_t len)
{
	uint8_t h[CTL_HEADER];
	put_le(h, 4 + len, 4);
	put_le(h + 4, CTL_PROTO_VERSION, 2);
	put_le(h + 6, code, 2);
	ctl_buf_put(b, h, sizeof(h));
	ctl_buf_put(b, body, len);
}

long ctl_frame_size(const uint8_t *buf, size_t len)
{
	if (len < 4)
		return 0;
	uint64_t n = get_le(buf, 4);
	if (n < 4)
		return -EPROTO;
	if (n > CTL_FRAME_MAX)
		return -EMSGSIZE;
	if (len < 4 + n)
		return 0;
	return (long)(4 + n);
}

/* ---- requests ---- */

static void reply_error(struct ctl_buf *reply, int e, const char *why)
{
	ctl_frame(reply, (uint16_t)(e < 0 ? -e : e), why, strlen(why));
}

static bool cpu_arg(const struct ctl_target *t, const uint8_t *body, size_t len, unsigned *cpu,
		    struct ctl_buf *reply)
{
	if (len != 4) {
		reply_error(reply, EINVAL, "the request wants a vCPU number (4 bytes)");
		return false;
	}
	*cpu = (unsigned)get_le(body, 4);
	if (*cpu >= t->ncpus) {
		char why[80];
		snprintf(why, sizeof(why), "no vCPU %u (the VM has %u)", *cpu, t->ncpus);
		reply_error(reply, EINVAL, why);
		return false;
	}
	return true;
}

bool ctl_handle(const struct ctl_target *t, const uint8_t *frame, size_t len,
		struct ctl_buf *reply, int *end_op)
{
	*end_op = 0;
	long n = ctl_frame_size(frame, len);
	if (n <= 0 || (size_t)n != len || len < CTL_HEADER) {
		reply_error(reply, EPROTO, "not a frame of the control protocol");
		return false;
	}
	unsigned version = (unsigned)get_le(frame + 4, 2);
	unsigned op = (unsigned)get_le(frame + 6, 2);
	const uint8_t *body = frame + CTL_HEADER;
	size_t blen = len - CTL_HEADER;
	if (version != CTL_PROTO_VERSION) {
		char why[80];
		snprintf(why, sizeof(why), "protocol version %u; this khyve speaks %d", version,
			 CTL_PROTO_VERSION);
		reply_error(reply, EPROTO, why);
		return false;
	}
	char err[256] = "";
	struct ctl_buf out = { 0 };
	unsigned cpu;
	int r = 0;
	switch (op) {
	case CTL_OP_INFO:
		if (blen) {
			reply_error(reply, EINVAL, "INFO takes no body");
			return true;
		}
		t->info(t->opaque, &out);
		break;
	case CTL_OP_GET_REGS: {
		if (!cpu_arg(t, body, blen, &cpu, reply))
			return true;
		struct vcpu_state st;
		memset(&st, 0, sizeof(st));
		if ((r = t->get_state(t->opaque, cpu, &st, err, sizeof(err))))
			break;
		for (unsigned i = 0; i < CTL_REG_COUNT; i++)
			ctl_buf_printf(&out, "%s=0x%llx\n", ctl_reg_names[i],
				       (unsigned long long)ctl_reg_get(&st, i));
		break;
	}
	case CTL_OP_SET_REGS: {
		if (blen < 8) {
			reply_error(reply, EINVAL, "SET_REGS wants a vCPU and a count");
			return true;
		}
		cpu = (unsigned)get_le(body, 4);
		uint64_t count = get_le(body + 4, 4);
		if (count == 0 || count > CTL_SET_MAX || blen != 8 + count * 12) {
			reply_error(reply, EINVAL, "SET_REGS: the count does not match the body");
			return true;
		}
		uint8_t cpubuf[4];
		put_le(cpubuf, cpu, 4);
		if (!cpu_arg(t, cpubuf, 4, &cpu, reply))
			return true;
		/* Every register is checked before anything is read or set. */
		for (uint64_t i = 0; i < count; i++) {
			uint64_t reg = get_le(body + 8 + i * 12, 4);
			if (reg >= CTL_REG_COUNT) {
				snprintf(err, sizeof(err), "no register number %llu", (unsigned long long)reg);
				reply_error(reply, EINVAL, err);
				return true;
			}
		}
		struct vcpu_state st;
		memset(&st, 0, sizeof(st));
		if ((r = t->get_state(t->opaque, cpu, &st, err, sizeof(err))))
			break;
		for (uint64_t i = 0; i < count && !r; i++) {
			unsigned reg = (unsigned)get_le(body + 8 + i * 12, 4);
			uint64_t v = get_le(body + 8 + i * 12 + 4, 8);
			if ((r = ctl_reg_set(&st, reg, v)))
				snprintf(err, sizeof(err), "0x%llx does not fit in %s", (unsigned long long)v,
					 ctl_reg_names[reg]);
		}
		if (!r)
			r = t->set_state(t->opaque, cpu, &st, err, sizeof(err));
		break;
	}
	case CTL_OP_GET_STATS:
		if (!cpu_arg(t, body, blen, &cpu, reply))
			return true;
		r = t->stats(t->opaque, cpu, &out, err, sizeof(err));
		break;
	case CTL_OP_SUSPEND:
	case CTL_OP_RESUME:
		if (blen) {
			reply_error(reply, EINVAL, "SUSPEND and RESUME take no body");
			return true;
		}
		r = t->suspend(t->opaque, op == CTL_OP_SUSPEND, err, sizeof(err));
		break;
	case CTL_OP_WAKEUP:
		if (blen) {
			reply_error(reply, EINVAL, "WAKEUP takes no body");
			return true;
		}
		if (!t->wakeup) {
			reply_error(reply, EOPNOTSUPP, "this VM cannot be woken");
			return true;
		}
		r = t->wakeup(t->opaque, err, sizeof(err));
		break;
	case CTL_OP_RESET:
	case CTL_OP_POWEROFF:
	case CTL_OP_DESTROY:
		if (blen) {
			reply_error(reply, EINVAL, "RESET, POWEROFF and DESTROY take no body");
			return true;
		}
		*end_op = (int)op;
		break;
	default:
		snprintf(err, sizeof(err), "unknown operation %u", op);
		reply_error(reply, EOPNOTSUPP, err);
		return true;
	}
	if (!r && out.failed) {
		r = -ENOMEM;
		snprintf(err, sizeof(err), "the reply does not fit");
	}
	if (r) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-r));
		reply_error(reply, r, err);
		*end_op = 0;
	} else {
		ctl_frame(reply, 0, out.data, out.len);
	}
	ctl_buf_free(&out);
	return true;
}
