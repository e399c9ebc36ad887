#include "ctl/entry.h"

#include "ctl/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 4096

void ctl_entry_init(struct ctl_entry *e, uint64_t mem_size, const struct boot_entry *entry,
		    const char *cmdline)
{
	memset(e, 0, sizeof(*e));
	e->mem_size = mem_size;
	e->entry = *entry;
	snprintf(e->format, sizeof(e->format), "%s", entry->format_name ? entry->format_name : "");
	/* No newlines in one-line fields. */
	for (char *p = e->format; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	snprintf(e->cmdline, sizeof(e->cmdline), "%s", cmdline ? cmdline : "");
	for (char *p = e->cmdline; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	e->entry.format_name = e->format;
}

int ctl_entry_add_load(struct ctl_entry *e, const char *kind, uint64_t addr, uint64_t size,
		       const char *name)
{
	if (e->nloads == CTL_ENTRY_MAX_LOADS)
		return -ENOSPC;
	struct ctl_entry_load *l = &e->loads[e->nloads++];
	snprintf(l->kind, sizeof(l->kind), "%s", kind && *kind ? kind : "data");
	for (char *p = l->kind; *p; p++)
		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			*p = '_';
	l->addr = addr;
	l->size = size;
	snprintf(l->name, sizeof(l->name), "%s", name ? name : "");
	for (char *p = l->name; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return 0;
}

/* The registers, by key: one table for writing and reading. */
struct reg_key {
	const char *key;
	size_t off;
	unsigned bytes;
};
#define R(k, f) { k, offsetof(struct boot_entry, f), sizeof(((struct boot_entry *)0)->f) }
static const struct reg_key reg_keys[] = {
	R("rip", rip), R("rsp", rsp), R("rflags", rflags), R("rax", rax), R("rbx", rbx),
	R("rsi", rsi), R("cr0", cr0), R("cr3", cr3), R("cr4", cr4), R("efer", efer),
	R("gdt_base", gdt_base), R("gdt_limit", gdt_limit), R("code_sel", code_sel),
	R("data_sel", data_sel), R("tss_sel", tss_sel),
};
#undef R
#define NREGS (sizeof(reg_keys) / sizeof(reg_keys[0]))

static uint64_t get_field(const struct boot_entry *b, const struct reg_key *k)
{
	const uint8_t *p = (const uint8_t *)b + k->off;
	if (k->bytes == 2) {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void set_field(struct boot_entry *b, const struct reg_key *k, uint64_t v)
{
	uint8_t *p = (uint8_t *)b + k->off;
	if (k->bytes == 2) {
		uint16_t w = (uint16_t)v;
		memcpy(p, &w, 2);
	} else {
		memcpy(p, &v, 8);
	}
}

/* Append to buf as snprintf would, keeping count of what is needed. */
struct out {
	char *buf;
	size_t len, used;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->used < o->len ? o->len - o->used : 0;
	int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

size_t ctl_entry_format(const struct ctl_entry *e, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	if (len)
		buf[0] = '\0';
	put(&o, "khyve-entry %d\n", CTL_ENTRY_VERSION);
	put(&o, "mem=%llu\n", (unsigned long long)e->mem_size);
	put(&o, "mode=%s\n", e->entry.mode == BOOT_CPU_LONG64 ? "long64" : "prot32");
	for (size_t i = 0; i < NREGS; i++)
		put(&o, "%s=0x%llx\n", reg_keys[i].key,
		    (unsigned long long)get_field(&e->entry, &reg_keys[i]));
	if (e->format[0])
		put(&o, "format=%s\n", e->format);
	if (e->cmdline[0])
		put(&o, "cmdline=%s\n", e->cmdline);
	for (unsigned i = 0; i < e->nloads && i < CTL_ENTRY_MAX_LOADS; i++)
		put(&o, "load=%s 0x%llx 0x%llx %s\n", e->loads[i].kind,
		    (unsigned long long)e->loads[i].addr, (unsigned long long)e->loads[i].size,
		    e->loads[i].name);
	return o.used;
}

static bool parse_num(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen, unsigned line,
						   const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "entry state, line %u: %s", line, msg);
	return -EINVAL;
}

int ctl_entry_parse(const char *text, size_t len, struct ctl_entry *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	e->entry.format_name = e->format;
	char *line = malloc(LINE_MAX_BYTES + 1);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Which keys were seen: the registers by index, then mem, mode,
	 * format, cmdline. */
	bool seen[NREGS + 4] = { false };
	const size_t K_MEM = NREGS, K_MODE = NREGS + 1, K_FORMAT = NREGS + 2, K_CMDLINE = NREGS + 3;
	size_t pos = 0;
	unsigned lineno = 0;
	int r = 0;
	bool header = false;
	while (pos < len && !r) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		size_t n = end - pos;
		lineno++;
		if (n > LINE_MAX_BYTES) {
			r = bad(err, errlen, lineno, "longer than %d bytes", LINE_MAX_BYTES);
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		if (memchr(line, '\0', n)) {
			r = bad(err, errlen, lineno, "a NUL byte");
			break;
		}
		if (!header) {
			if (strncmp(line, "khyve-entry ", 12)) {
				r = bad(err, errlen, lineno, "not a khyve entry state");
				break;
			}
			uint64_t v;
			if (!parse_num(line + 12, 0xffff, &v) || v != CTL_ENTRY_VERSION) {
				r = bad(err, errlen, lineno, "version '%.20s', not %d", line + 12,
					CTL_ENTRY_VERSION);
				break;
			}
			header = true;
			continue;
		}
		if (!line[0] || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			r = bad(err, errlen, lineno, "no '='");
			break;
		}
		*eq = '\0';
		const char *key = line, *val = eq + 1;
		if (!strcmp(key, "load")) {
			char kind[16], name[256] = "";
			uint64_t addr, size;
			char a[32], s[32];
			int consumed = 0;
			if (sscanf(val, "%15s %31s %31s %n", kind, a, s, &consumed) < 3 ||
			    !parse_num(a, UINT64_MAX, &addr) || !parse_num(s, UINT64_MAX, &size)) {
				r = bad(err, errlen, lineno, "load= wants KIND ADDR SIZE NAME");
				break;
			}
			snprintf(name, sizeof(name), "%s", val + consumed);
			if (ctl_entry_add_load(e, kind, addr, size, name)) {
				r = bad(err, errlen, lineno, "more than %d load= lines", CTL_ENTRY_MAX_LOADS);
				break;
			}
			continue;
		}
		size_t k;
		if (!strcmp(key, "mem"))
			k = K_MEM;
		else if (!strcmp(key, "mode"))
			k = K_MODE;
		else if (!strcmp(key, "format"))
			k = K_FORMAT;
		else if (!strcmp(key, "cmdline"))
			k = K_CMDLINE;
		else {
			for (k = 0; k < NREGS && strcmp(key, reg_keys[k].key); k++)
				;
			if (k == NREGS) {
				r = bad(err, errlen, lineno, "unknown key '%.40s'", key);
				break;
			}
		}
		if (seen[k]) {
			r = bad(err, errlen, lineno, "'%.40s' given twice", key);
			break;
		}
		seen[k] = true;
		uint64_t v;
		if (k == K_MEM) {
			if (!parse_num(val, UINT64_MAX, &v)) {
				r = bad(err, errlen, lineno, "mem: '%.40s' is not a number", val);
				break;
			}
			e->mem_size = v;
		} else if (k == K_MODE) {
			if (!strcmp(val, "long64"))
				e->entry.mode = BOOT_CPU_LONG64;
			else if (!strcmp(val, "prot32"))
				e->entry.mode = BOOT_CPU_PROT32;
			else {
				r = bad(err, errlen, lineno, "mode: '%.40s' is not long64 or prot32", val);
				break;
			}
		} else if (k == K_FORMAT) {
			snprintf(e->format, sizeof(e->format), "%s", val);
		} else if (k == K_CMDLINE) {
			snprintf(e->cmdline, sizeof(e->cmdline), "%s", val);
		} else {
			uint64_t max = reg_keys[k].bytes == 2 ? 0xffff : UINT64_MAX;
			if (!parse_num(val, max, &v)) {
				r = bad(err, errlen, lineno, "%s: '%.40s' is not a %u-bit number", key, val,
					reg_keys[k].bytes * 8);
				break;
			}
			set_field(&e->entry, &reg_keys[k], v);
		}
	}
	free(line);
	if (r)
		return r;
	if (!header)
		return bad(err, errlen, 1, "empty");
	if (!seen[K_MEM] || !seen[K_MODE] || !seen[0])
		return bad(err, errlen, lineno, "mem, mode and rip are required");
	if (!seen[2])
		e->entry.rflags = 0x2;
	return 0;
}

/* As vcpu_set_boot_entry (vmm/vcpu.c) sets them. */
static void flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .dpl = 0, .db = db, .s = 1, .l = code64, .g = 1 };
}

void ctl_entry_to_state(const struct ctl_entry *e, struct vcpu_state *st)
{
	const struct boot_entry *b = &e->entry;
	memset(st, 0, sizeof(*st));
	bool lm = b->mode == BOOT_CPU_LONG64;
	flat(&st->sregs.cs, b->code_sel, 0xb, lm, !lm);
	flat(&st->sregs.ds, b->data_sel, 0x3, false, true);
	st->sregs.es = st->sregs.fs = st->sregs.gs = st->sregs.ss = st->sregs.ds;
	if (b->tss_sel)
		st->sregs.tr = (struct kvm_segment){ .limit = 0x67, .selector = b->tss_sel, .type = 0xb,
						     .present = 1 };
	st->sregs.gdt.base = b->gdt_base;
	st->sregs.gdt.limit = b->gdt_limit;
	st->sregs.cr0 = b->cr0;
	st->sregs.cr3 = b->cr3;
	st->sregs.cr4 = b->cr4;
	st->sregs.efer = b->efer;
	st->regs.rip = b->rip;
	st->regs.rsp = b->rsp;
	st->regs.rflags = b->rflags ? b->rflags : 0x2;
	st->regs.rax = b->rax;
	st->regs.rbx = b->rbx;
	st->regs.rsi = b->rsi;
	st->dregs.dr6 = 0xffff0ff0;
	st->dregs.dr7 = 0x400;
}

int ctl_entry_from_state(struct ctl_entry *e, const struct vcpu_state *st, const char **what)
{
	struct boot_entry *b = &e->entry;
	b->mode = st->sregs.cs.l ? BOOT_CPU_LONG64 : BOOT_CPU_PROT32;
	b->code_sel = st->sregs.cs.selector;
	b->data_sel = st->sregs.ds.selector;
	b->tss_sel = st->sregs.tr.selector;
	b->gdt_base = st->sregs.gdt.base;
	b->gdt_limit = st->sregs.gdt.limit;
	b->cr0 = st->sregs.cr0;
	b->cr3 = st->sregs.cr3;
	b->cr4 = st->sregs.cr4;
	b->efer = st->sregs.efer;
	b->rip = st->regs.rip;
	b->rsp = st->regs.rsp;
	b->rflags = st->regs.rflags;
	b->rax = st->regs.rax;
	b->rbx = st->regs.rbx;
	b->rsi = st->regs.rsi;
	/* Whatever the entry cannot hold shows as a difference. */
	struct vcpu_state back;
	ctl_entry_to_state(e, &back);
	for (unsigned i = 0; i < CTL_REG_COUNT; i++)
		if (ctl_reg_get(&back, i) != ctl_reg_get(st, i)) {
			*what = ctl_reg_names[i];
			return -EINVAL;
		}
	return 0;
}
