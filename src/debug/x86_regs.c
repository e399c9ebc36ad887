#include "debug/x86_regs.h"

#include <string.h>

static const char *const names[X86_NREGS] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	"rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
	"st0", "st1", "st2", "st3", "st4", "st5", "st6", "st7",
	"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop",
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
	"mxcsr", "fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer",
};

size_t x86_reg_size(unsigned n)
{
	if (n < X86_REG_RIP)
		return 8;
	if (n == X86_REG_RIP)
		return 8;
	if (n < X86_REG_ST0)
		return 4;
	if (n < X86_REG_FCTRL)
		return 10;
	if (n < X86_REG_XMM0)
		return 4;
	if (n < X86_REG_MXCSR)
		return 16;
	if (n == X86_REG_MXCSR)
		return 4;
	if (n < X86_NREGS)
		return 8;
	return 0;
}

const char *x86_reg_name(unsigned n)
{
	return n < X86_NREGS ? names[n] : NULL;
}

size_t x86_regs_total_size(void)
{
	size_t total = 0;
	for (unsigned n = 0; n < X86_NREGS; n++)
		total += x86_reg_size(n);
	return total;
}

static __u64 *gpr(struct kvm_regs *r, unsigned n)
{
	__u64 *const map[16] = {
		&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rbp, &r->rsp,
		&r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
	};
	return map[n];
}

static struct kvm_segment *seg(struct kvm_sregs *s, unsigned n)
{
	struct kvm_segment *const map[6] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs };
	return map[n - X86_REG_CS];
}

static __u64 *sys(struct kvm_sregs *s, unsigned n)
{
	switch (n) {
	case X86_REG_FS_BASE: return &s->fs.base;
	case X86_REG_GS_BASE: return &s->gs.base;
	case X86_REG_CR0: return &s->cr0;
	case X86_REG_CR2: return &s->cr2;
	case X86_REG_CR3: return &s->cr3;
	case X86_REG_CR4: return &s->cr4;
	case X86_REG_CR8: return &s->cr8;
	default: return &s->efer;
	}
}

static void put(uint8_t *out, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *in, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)in[i] << (8 * i);
	return v;
}

/* The i387 tag of an 80-bit value: 0 valid, 1 zero, 2 special. */
static unsigned fp_tag(const uint8_t *raw)
{
	bool integer = raw[7] & 0x80;
	unsigned exponent = (unsigned)(raw[9] & 0x7f) << 8 | raw[8];
	bool fraction = (raw[7] & 0x7f) || raw[6] || raw[5] || raw[4] || raw[3] || raw[2] ||
			raw[1] || raw[0];
	if (exponent == 0x7fff)
		return 2;
	if (exponent == 0)
		return !fraction && !integer ? 1 : 2;
	return integer ? 0 : 2;
}

/* FXSAVE keeps one "not empty" bit per physical register; gdb wants the
 * full two-bit tags. */
static uint32_t full_tag(const struct kvm_fpu *f)
{
	unsigned top = (f->fsw >> 11) & 7;
	uint32_t tag = 0;
	for (unsigned phys = 0; phys < 8; phys++) {
		unsigned t = 3;
		if (f->ftwx & (1u << phys))
			t = fp_tag(f->fpr[(phys + 8 - top) % 8]);
		tag |= t << (2 * phys);
	}
	return tag;
}

void x86_reg_get(const struct x86_state *cst, unsigned n, uint8_t *out)
{
	struct x86_state *st = (struct x86_state *)cst; /* the maps take non-const */
	size_t size = x86_reg_size(n);
	const struct kvm_fpu *f = &st->fpu;
	if (n < 16)
		put(out, *gpr(&st->regs, n), 8);
	else if (n == X86_REG_RIP)
		put(out, st->regs.rip, 8);
	else if (n == X86_REG_EFLAGS)
		put(out, st->regs.rflags, 4);
	else if (n < X86_REG_ST0)
		put(out, seg(&st->sregs, n)->selector, 4);
	else if (n < X86_REG_FCTRL)
		memcpy(out, f->fpr[n - X86_REG_ST0], 10);
	else if (n < X86_REG_XMM0) {
		uint64_t v;
		switch (n - X86_REG_FCTRL) {
		case 0: v = f->fcw; break;
		case 1: v = f->fsw; break;
		case 2: v = full_tag(f); break;
		case 3: v = (f->last_ip >> 32) & 0xffff; break;
		case 4: v = f->last_ip & 0xffffffffu; break;
		case 5: v = (f->last_dp >> 32) & 0xffff; break;
		case 6: v = f->last_dp & 0xffffffffu; break;
		default: v = f->last_opcode & 0x7ff; break;
		}
		put(out, v, 4);
	} else if (n < X86_REG_MXCSR)
		memcpy(out, f->xmm[n - X86_REG_XMM0], 16);
	else if (n == X86_REG_MXCSR)
		put(out, f->mxcsr, 4);
	else if (n < X86_NREGS)
		put(out, *sys(&st->sregs, n), 8);
	else
		memset(out, 0, size);
}

unsigned x86_reg_set(struct x86_state *st, unsigned n, const uint8_t *in)
{
	struct kvm_fpu *f = &st->fpu;
	if (n < 16) {
		*gpr(&st->regs, n) = get(in, 8);
		return X86_PART_REGS;
	}
	if (n == X86_REG_RIP) {
		st->regs.rip = get(in, 8);
		return X86_PART_REGS;
	}
	if (n == X86_REG_EFLAGS) {
		st->regs.rflags = (st->regs.rflags & ~0xffffffffull) | get(in, 4) | 2;
		return X86_PART_REGS;
	}
	if (n < X86_REG_ST0) {
		struct kvm_segment *s = seg(&st->sregs, n);
		s->selector = (uint16_t)get(in, 4);
		/* Real mode: the base follows the selector. */
		if (!(st->sregs.cr0 & 1))
			s->base = (uint64_t)s->selector << 4;
		return X86_PART_SREGS;
	}
	if (n < X86_REG_FCTRL) {
		memcpy(f->fpr[n - X86_REG_ST0], in, 10);
		return X86_PART_FPU;
	}
	if (n < X86_REG_XMM0) {
		uint32_t v = (uint32_t)get(in, 4);
		switch (n - X86_REG_FCTRL) {
		case 0: f->fcw = (uint16_t)v; break;
		case 1: f->fsw = (uint16_t)v; break;
		case 2: {
			uint8_t abridged = 0;
			for (unsigned phys = 0; phys < 8; phys++)
				if (((v >> (2 * phys)) & 3) != 3)
					abridged |= (uint8_t)(1u << phys);
			f->ftwx = abridged;
			break;
		}
		case 3: f->last_ip = (f->last_ip & 0xffffffffull) | (uint64_t)(v & 0xffff) << 32; break;
		case 4: f->last_ip = (f->last_ip & ~0xffffffffull) | v; break;
		case 5: f->last_dp = (f->last_dp & 0xffffffffull) | (uint64_t)(v & 0xffff) << 32; break;
		case 6: f->last_dp = (f->last_dp & ~0xffffffffull) | v; break;
		default: f->last_opcode = (uint16_t)(v & 0x7ff); break;
		}
		return X86_PART_FPU;
	}
	if (n < X86_REG_MXCSR) {
		memcpy(f->xmm[n - X86_REG_XMM0], in, 16);
		return X86_PART_FPU;
	}
	if (n == X86_REG_MXCSR) {
		f->mxcsr = (uint32_t)get(in, 4);
		return X86_PART_FPU;
	}
	if (n < X86_NREGS) {
		*sys(&st->sregs, n) = get(in, 8);
		return X86_PART_SREGS;
	}
	return 0;
}

#define FLAG(name, bit) "<field name=\"" name "\" start=\"" #bit "\" end=\"" #bit "\"/>"
#define REG(name, bits, type) "<reg name=\"" name "\" bitsize=\"" #bits "\" type=\"" type "\"/>"
#define FREG(name) "<reg name=\"" name "\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
#define XMM(n) REG("xmm" #n, 128, "vec128")

static const char target_xml[] =
	"<?xml version=\"1.0\"?>"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
	"<target version=\"1.0\">"
	"<architecture>i386:x86-64</architecture>"
	"<feature name=\"org.gnu.gdb.i386.core\">"
	"<flags id=\"i386_eflags\" size=\"4\">"
	FLAG("CF", 0) FLAG("", 1) FLAG("PF", 2) FLAG("AF", 4) FLAG("ZF", 6) FLAG("SF", 7)
	FLAG("TF", 8) FLAG("IF", 9) FLAG("DF", 10) FLAG("OF", 11) FLAG("NT", 14) FLAG("RF", 16)
	FLAG("VM", 17) FLAG("AC", 18) FLAG("VIF", 19) FLAG("VIP", 20) FLAG("ID", 21)
	"</flags>"
	REG("rax", 64, "int64") REG("rbx", 64, "int64") REG("rcx", 64, "int64")
	REG("rdx", 64, "int64") REG("rsi", 64, "int64") REG("rdi", 64, "int64")
	REG("rbp", 64, "data_ptr") REG("rsp", 64, "data_ptr")
	REG("r8", 64, "int64") REG("r9", 64, "int64") REG("r10", 64, "int64")
	REG("r11", 64, "int64") REG("r12", 64, "int64") REG("r13", 64, "int64")
	REG("r14", 64, "int64") REG("r15", 64, "int64")
	REG("rip", 64, "code_ptr") REG("eflags", 32, "i386_eflags")
	REG("cs", 32, "int32") REG("ss", 32, "int32") REG("ds", 32, "int32")
	REG("es", 32, "int32") REG("fs", 32, "int32") REG("gs", 32, "int32")
	REG("st0", 80, "i387_ext") REG("st1", 80, "i387_ext") REG("st2", 80, "i387_ext")
	REG("st3", 80, "i387_ext") REG("st4", 80, "i387_ext") REG("st5", 80, "i387_ext")
	REG("st6", 80, "i387_ext") REG("st7", 80, "i387_ext")
	FREG("fctrl") FREG("fstat") FREG("ftag") FREG("fiseg") FREG("fioff") FREG("foseg")
	FREG("fooff") FREG("fop")
	"</feature>"
	"<feature name=\"org.gnu.gdb.i386.sse\">"
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
	"<union id=\"vec128\">"
	"<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
	"<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
	"<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
	"<field name=\"uint128\" type=\"uint128\"/>"
	"</union>"
	"<flags id=\"i386_mxcsr\" size=\"4\">"
	FLAG("IE", 0) FLAG("DE", 1) FLAG("ZE", 2) FLAG("OE", 3) FLAG("UE", 4) FLAG("PE", 5)
	FLAG("DAZ", 6) FLAG("IM", 7) FLAG("DM", 8) FLAG("ZM", 9) FLAG("OM", 10) FLAG("UM", 11)
	FLAG("PM", 12) FLAG("FZ", 15)
	"</flags>"
	XMM(0) XMM(1) XMM(2) XMM(3) XMM(4) XMM(5) XMM(6) XMM(7)
	XMM(8) XMM(9) XMM(10) XMM(11) XMM(12) XMM(13) XMM(14) XMM(15)
	"<reg name=\"mxcsr\" bitsize=\"32\" type=\"i386_mxcsr\" group=\"vector\"/>"
	"</feature>"
	"<feature name=\"org.gnu.gdb.i386.segments\">"
	REG("fs_base", 64, "int") REG("gs_base", 64, "int")
	"</feature>"
	"<feature name=\"org.khyve.gdb.i386.sys\">"
	"<flags id=\"x86_cr0\" size=\"8\">"
	FLAG("PE", 0) FLAG("MP", 1) FLAG("EM", 2) FLAG("TS", 3) FLAG("ET", 4) FLAG("NE", 5)
	FLAG("WP", 16) FLAG("AM", 18) FLAG("NW", 29) FLAG("CD", 30) FLAG("PG", 31)
	"</flags>"
	"<flags id=\"x86_cr4\" size=\"8\">"
	FLAG("VME", 0) FLAG("PVI", 1) FLAG("TSD", 2) FLAG("DE", 3) FLAG("PSE", 4) FLAG("PAE", 5)
	FLAG("MCE", 6) FLAG("PGE", 7) FLAG("PCE", 8) FLAG("OSFXSR", 9) FLAG("OSXMMEXCPT", 10)
	FLAG("UMIP", 11) FLAG("LA57", 12) FLAG("VMXE", 13) FLAG("SMXE", 14) FLAG("FSGSBASE", 16)
	FLAG("PCIDE", 17) FLAG("OSXSAVE", 18) FLAG("SMEP", 20) FLAG("SMAP", 21) FLAG("PKE", 22)
	"</flags>"
	"<flags id=\"x86_efer\" size=\"8\">"
	FLAG("SCE", 0) FLAG("LME", 8) FLAG("LMA", 10) FLAG("NXE", 11) FLAG("SVME", 12)
	FLAG("FFXSR", 14)
	"</flags>"
	REG("cr0", 64, "x86_cr0") REG("cr2", 64, "data_ptr") REG("cr3", 64, "int64")
	REG("cr4", 64, "x86_cr4") REG("cr8", 64, "int64") REG("efer", 64, "x86_efer")
	"</feature>"
	"</target>";

const char *x86_target_xml(void)
{
	return target_xml;
}
