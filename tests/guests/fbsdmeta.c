/* fbsdmeta: a test guest that looks enough like a FreeBSD amd64 kernel
 * (linked at KERNBASE + 2 MiB, ELFOSABI_FREEBSD, a "FreeBSD" .note.tag, a
 * symbol table, a PT_DYNAMIC) to be loaded as bhyveload loads one, and
 * that checks, field by field, what it was handed:
 *
 *   - the entry state of userboot's amd64 path: 64-bit mode, CS 0x08,
 *     DS/ES/SS 0x10, the 3-entry GDT, CR0 PE|NE|PG, CR4 PAE, EFER LME|LMA,
 *     page tables mapping KERNBASE + x to x and low memory 1:1;
 *   - the stack: 0(%rsp) 0, 4(%rsp) modulep, 8(%rsp) kernend (32 bits);
 *   - the MODINFO records at modulep: the kernel's name, type, address,
 *     size, ELF header (as loaded), SSYM/ESYM (its own symbol table, where
 *     "btext" has btext's address), HOWTO (recomputed from the kernel's
 *     arguments and the kenv, as the loader does), ENVP, KERNEND (equal to
 *     the stack's), SMAP; and every further file: a raw file's bytes
 *     (their size and sum are printed for the test to compare) and an
 *     ELF module's sections, placed inside it with its symbol table;
 *   - CPUID leaf 0x40000010 (TSC and APIC bus kHz) and the invariant TSC.
 *
 * It reports on COM1 and exits through the debug-exit port (0 = PASS).
 * Lines: "FBSDMETA: <what> ...", then "PASS" or "FAIL: <why>". */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KERNBASE 0xffffffff80000000ULL
#define MODINFO_END 0
#define MODINFO_NAME 1
#define MODINFO_TYPE 2
#define MODINFO_ADDR 3
#define MODINFO_SIZE 4
#define MODINFO_ARGS 6
#define MODINFO_METADATA 0x8000
#define MD_ELFHDR 2
#define MD_SSYM 3
#define MD_ESYM 4
#define MD_DYNAMIC 5
#define MD_ENVP 6
#define MD_HOWTO 7
#define MD_KERNEND 8
#define MD_SHDR 9
#define MD_SMAP 0x1001

/* The ABI note FreeBSD's crt and kernel carry. */
__attribute__((used, section(".note.tag"), aligned(4))) static const struct {
	uint32_t namesz, descsz, type;
	char name[8];
	uint32_t desc;
} abitag = { 8, 4, 1, "FreeBSD", 1500000 };

/* An empty dynamic section (DT_NULL), for MODINFOMD_DYNAMIC. */
__attribute__((used, section(".fbsd_dyn"), aligned(8))) static const uint64_t dynamic[2] = { 0, 0 };

/* ---- console and exit ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_(char ch)
{
	if (ch == '\n')
		putc_('\r');
	for (int i = 0; i < 100000 && !(inb(0x3f8 + 5) & 0x20); i++)
		;
	outb(0x3f8, (uint8_t)ch);
}

static void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}

static void putu(uint64_t v, unsigned base)
{
	char b[24];
	int n = 0;
	do {
		b[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		putc_(b[--n]);
}

/* %s %x (64-bit) %u (64-bit) %c */
static void pr(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			putc_(*p);
			continue;
		}
		switch (*++p) {
		case 's': puts_(va_arg(ap, const char *)); break;
		case 'x': puts_("0x"); putu(va_arg(ap, uint64_t), 16); break;
		case 'u': putu(va_arg(ap, uint64_t), 10); break;
		case 'c': putc_((char)va_arg(ap, int)); break;
		default: putc_(*p); break;
		}
	}
	va_end(ap);
}

static unsigned failures;
#define CHECK(cond, ...)                                  \
	do {                                              \
		if (!(cond)) {                            \
			pr("FAIL: " __VA_ARGS__);         \
			pr(" (%s)\n", #cond);             \
			failures++;                       \
		}                                         \
	} while (0)

static __attribute__((noreturn)) void finish(void)
{
	puts_(failures ? "FBSDMETA: done with failures\n" : "PASS\n");
	__asm__ volatile("outl %0, %1" ::"a"((uint32_t)(failures ? 1 : 0)), "Nd"((uint16_t)0xf4));
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* ---- small helpers ---- */

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static bool seq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static bool meq(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

static bool starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

/* Physical memory below 4 GiB, through the loader's 1:1 mapping. */
static inline const void *phys(uint64_t pa) { return (const void *)(uintptr_t)pa; }
static inline uint32_t rd32(const void *p) { return *(const volatile uint32_t *)p; }
static inline uint64_t rd64(const void *p) { return *(const volatile uint64_t *)p; }

static void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* ---- the entry state ---- */

extern char btext[];
extern char _end[];

struct entry_regs {
	uint64_t rsp, cr0, cr3, cr4, efer, rflags;
	uint16_t cs, ds, es, ss, fs, gs, tr;
	uint16_t gdt_limit;
	uint64_t gdt_base;
};

/* Translate va through the page tables at cr3 (4-level; 1 GiB and 2 MiB
 * pages too). ~0 when not mapped. */
static uint64_t translate(uint64_t cr3, uint64_t va)
{
	uint64_t t = cr3 & ~0xfffULL;
	for (int level = 3; level >= 0; level--) {
		unsigned idx = (va >> (12 + 9 * level)) & 511;
		uint64_t e = rd64(phys(t + 8 * idx));
		if (!(e & 1))
			return ~0ULL;
		if (level == 0 || ((e & 0x80) && level <= 2)) {
			uint64_t mask = (1ULL << (12 + 9 * level)) - 1;
			return (e & 0x000ffffffffff000ULL & ~mask) | (va & mask);
		}
		t = e & 0x000ffffffffff000ULL;
	}
	return ~0ULL;
}

static void check_entry(const struct entry_regs *r)
{
	pr("FBSDMETA: entry rip=%x rsp=%x cs=%x ds=%x ss=%x cr0=%x cr3=%x cr4=%x efer=%x\n",
	   (uint64_t)btext, r->rsp, (uint64_t)r->cs, (uint64_t)r->ds, (uint64_t)r->ss, r->cr0,
	   r->cr3, r->cr4, r->efer);
	pr("FBSDMETA: gdt base=%x limit=%x\n", r->gdt_base, (uint64_t)r->gdt_limit);
	CHECK(r->cs == 0x08, "CS %x", (uint64_t)r->cs);
	CHECK(r->ds == 0x10 && r->es == 0x10 && r->ss == 0x10, "data selectors");
	CHECK((r->cr0 & 0x80000021) == 0x80000021, "CR0 %x lacks PE|NE|PG", r->cr0);
	CHECK(r->cr4 & 0x20, "CR4 %x lacks PAE", r->cr4);
	CHECK((r->efer & 0x500) == 0x500, "EFER %x lacks LME|LMA", r->efer);
	CHECK((r->rflags & 0x200) == 0, "interrupts enabled at entry");
	CHECK(r->gdt_limit == 23, "GDT limit %x", (uint64_t)r->gdt_limit);
	const uint64_t *gdt = phys(r->gdt_base);
	CHECK(gdt[0] == 0 && gdt[1] == 0x0020980000000000ULL && gdt[2] == 0x0000900000000000ULL,
	      "GDT entries %x %x", gdt[1], gdt[2]);
	/* KERNBASE + 2 MiB is 2 MiB; btext is where it was loaded; low memory 1:1 */
	CHECK(translate(r->cr3, KERNBASE + 0x200000) == 0x200000, "KERNBASE+2M maps to %x",
	      translate(r->cr3, KERNBASE + 0x200000));
	CHECK(translate(r->cr3, (uint64_t)btext) == (uint64_t)btext - KERNBASE, "btext maps to %x",
	      translate(r->cr3, (uint64_t)btext));
	CHECK(translate(r->cr3, 0x1000) == 0x1000, "0x1000 maps to %x", translate(r->cr3, 0x1000));
	CHECK(translate(r->cr3, 0x3ff000) == 0x3ff000, "identity map");
	pr("FBSDMETA: paging KERNBASE+2M->%x btext->%x identity ok\n",
	   translate(r->cr3, KERNBASE + 0x200000), translate(r->cr3, (uint64_t)btext));
}

/* ---- the metadata ---- */

struct md_rec {
	uint32_t type, size;
	const uint8_t *data;
};

/* The next record at *at (a KERNBASE address); false at MODINFO_END. */
static bool next_rec(uint64_t *at, struct md_rec *m)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)*at;
	m->type = rd32(p);
	m->size = rd32(p + 4);
	m->data = p + 8;
	if (m->type == MODINFO_END)
		return false;
	*at += 8 + ((m->size + 7) & ~7u);
	return true;
}

struct file {
	const char *name, *type, *args;
	uint64_t addr, size;
	uint64_t ssym, esym, envp, kernend, dynamic, smap_n;
	const uint8_t *elfhdr, *shdr, *smap;
	uint32_t shdr_size, howto;
	bool has_howto;
};

#define MAX_FILES 8

static int env_find(const char *env, const char *name, const char **val)
{
	size_t nl = slen(name);
	for (const char *p = env; *p; p += slen(p) + 1)
		if (starts(p, name) && p[nl] == '=') {
			*val = p + nl + 1;
			return 1;
		}
	return 0;
}

/* The loader's bi_getboothowto(), for the check. */
static uint32_t expect_howto(const char *args, const char *env)
{
	static const char flags[] = "aCdDmghprsv";
	static const uint32_t masks[] = { 0x1, 0x2000, 0x40, 0x20000000, 0x10000, 0x8000,
					  0x1000, 0x100000, 0x20, 0x2, 0x800 };
	static const char *const vars[] = { "boot_askname", "boot_cdrom", "boot_ddb",
					    "boot_multicons", "boot_mute", "boot_gdb",
					    "boot_serial", "boot_pause", "boot_dfltroot",
					    "boot_single", "boot_verbose" };
	uint32_t h = 0;
	bool active = false;
	for (const char *p = args; p && *p; p++) {
		if (!active) {
			active = *p == '-';
			continue;
		}
		int k = -1;
		for (int i = 0; flags[i]; i++)
			if (flags[i] == *p)
				k = i;
		if (k < 0)
			active = false;
		else
			h |= masks[k];
	}
	const char *v;
	for (unsigned i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (env_find(env, vars[i], &v))
			h |= masks[i];
	if (env_find(env, "console", &v) && starts(v, "comconsole"))
		h |= 0x1000;
	return h;
}

/* The symbol name in a (size, symtab, size, strtab) block at ssym. */
static uint64_t sym_lookup(uint64_t ssym, const char *name)
{
	const uint8_t *p = phys(ssym);
	uint64_t symsz = rd64(p);
	const uint8_t *syms = p + 8;
	const uint8_t *q = syms + ((symsz + 7) & ~7ULL);
	uint64_t strsz = rd64(q);
	const char *strs = (const char *)(q + 8);
	for (uint64_t off = 0; off + 24 <= symsz; off += 24) {
		uint32_t st_name = rd32(syms + off);
		if (st_name < strsz && seq(strs + st_name, name))
			return rd64(syms + off + 8);
	}
	return 0;
}

static void check_kernel(const struct file *k, uint32_t modulep, uint32_t kernend, const char *env)
{
	pr("FBSDMETA: kernel name=%s type=%s addr=%x size=%x args=%s\n", k->name, k->type, k->addr,
	   k->size, k->args ? k->args : "(none)");
	CHECK(seq(k->type, "elf kernel"), "kernel type %s", k->type);
	CHECK(k->addr == 0x200000, "kernel not at 2 MiB: %x", k->addr);
	/* the ELF header: the one loaded with the first segment */
	CHECK(k->elfhdr && meq(k->elfhdr, phys(0x200000), 64), "ELF header record");
	if (k->elfhdr)
		CHECK(k->elfhdr[7] == 9 && rd64(k->elfhdr + 24) == (uint64_t)btext,
		      "ELF header OSABI %u entry %x", (uint64_t)k->elfhdr[7], rd64(k->elfhdr + 24));
	CHECK(k->shdr && k->elfhdr &&
		      k->shdr_size == (uint32_t)*(const uint16_t *)(k->elfhdr + 60) * 64,
	      "SHDR record size %u", (uint64_t)k->shdr_size);
	CHECK(k->dynamic == (uint64_t)dynamic, "DYNAMIC %x, not %x", k->dynamic, (uint64_t)dynamic);
	/* symbols: right after the image, its own table */
	uint64_t image_end = ((uint64_t)_end - KERNBASE + 7) & ~7ULL;
	pr("FBSDMETA: symbols ssym=%x esym=%x image_end=%x\n", k->ssym, k->esym, image_end);
	CHECK(k->ssym == image_end, "SSYM %x not at the image end %x", k->ssym, image_end);
	CHECK(k->esym > k->ssym && k->addr + k->size == k->esym, "ESYM %x and SIZE", k->esym);
	if (k->ssym && k->esym > k->ssym) {
		uint64_t v = sym_lookup(k->ssym, "btext");
		pr("FBSDMETA: symbol btext=%x\n", v);
		CHECK(v == (uint64_t)btext, "symbol btext %x", v);
	}
	/* modulep, kernend */
	pr("FBSDMETA: modulep=%x kernend=%x envp=%x howto=%x\n", (uint64_t)modulep,
	   (uint64_t)kernend, k->envp, (uint64_t)k->howto);
	CHECK((modulep & 0xfff) == 0 && (kernend & 0xfff) == 0, "modulep/kernend not page-aligned");
	CHECK(k->kernend == kernend, "KERNEND %x != stack's %x", k->kernend, (uint64_t)kernend);
	CHECK(k->envp && k->envp < modulep && (k->envp & 0xfff) == 0, "ENVP %x", k->envp);
	CHECK(k->has_howto, "no HOWTO");
	uint32_t want = expect_howto(k->args, env);
	CHECK(k->howto == want, "HOWTO %x, expected %x", (uint64_t)k->howto, (uint64_t)want);
}

static void check_smap(const struct file *k, uint64_t lo, uint64_t hi)
{
	bool covered = false;
	for (uint64_t i = 0; i < k->smap_n; i++) {
		const uint8_t *e = k->smap + 20 * i;
		uint64_t base = rd64(e), len = rd64(e + 8);
		uint32_t type = rd32(e + 16);
		pr("FBSDMETA: smap %x %x %u\n", base, len, (uint64_t)type);
		if (type == 1 && base <= lo && hi <= base + len)
			covered = true;
	}
	CHECK(k->smap_n > 0, "no SMAP");
	CHECK(covered, "the kernel, files and metadata %x-%x are not in one RAM range", lo, hi);
}

static void check_module(const struct file *f, uint64_t kernend)
{
	pr("FBSDMETA: file name=%s type=%s addr=%x size=%x args=%s\n", f->name, f->type, f->addr,
	   f->size, f->args ? f->args : "(none)");
	CHECK((f->addr & 0xfff) == 0 && f->addr + f->size <= kernend, "file %s placement", f->name);
	const uint8_t *p = phys(f->addr);
	if (!seq(f->type, "elf obj module")) {
		uint64_t sum = 0;
		for (uint64_t i = 0; i < f->size; i++)
			sum += p[i];
		pr("FBSDMETA: raw %s bytes=%u sum=%u head=", f->name, f->size, sum);
		for (uint64_t i = 0; i < f->size && i < 16 && p[i] >= ' ' && p[i] < 127; i++)
			putc_((char)p[i]);
		putc_('\n');
		return;
	}
	CHECK(f->elfhdr && meq(f->elfhdr, "\177ELF", 4) && f->elfhdr[16] == 1, "module ELF header");
	if (!f->elfhdr || !f->shdr)
		return;
	unsigned shnum = *(const uint16_t *)(f->elfhdr + 60), shstrndx = *(const uint16_t *)(f->elfhdr + 62);
	CHECK(f->shdr_size == shnum * 64u, "module SHDR size");
	const uint8_t *sh = f->shdr;
	uint64_t shstr = rd64(sh + 64 * shstrndx + 16);
	CHECK(shstr >= f->addr && shstr < f->addr + f->size, "section names not loaded");
	uint64_t marker_sec = 0, symtab = 0, symsz = 0, strtab = 0;
	unsigned marker_idx = 0;
	for (unsigned i = 0; i < shnum; i++) {
		const uint8_t *s = sh + 64 * i;
		uint32_t type = rd32(s + 4);
		uint64_t flags = rd64(s + 8), addr = rd64(s + 16), size = rd64(s + 32);
		const char *name = (const char *)phys(shstr + rd32(s));
		if (addr)
			CHECK(addr >= f->addr && addr + size <= f->addr + f->size, "section %s at %x outside",
			      name, addr);
		if ((flags & 2) && size && (type == 1 || type == 8))
			CHECK(addr != 0, "allocated section %s not placed", name);
		if (seq(name, ".rodata.fbsdmod") || seq(name, ".data.fbsdmod")) {
			marker_sec = addr;
			marker_idx = i;
		}
		if (type == 2) {
			symtab = addr;
			symsz = size;
			strtab = rd64(sh + 64 * rd32(s + 40) + 16);
		}
	}
	CHECK(marker_sec != 0, "the module's marker section is missing");
	CHECK(symtab && strtab, "the module's symbol table is not loaded");
	uint64_t marker = 0;
	for (uint64_t off = 0; symtab && off + 24 <= symsz; off += 24) {
		const uint8_t *sym = phys(symtab + off);
		if (seq((const char *)phys(strtab + rd32(sym)), "fbsdmod_marker") &&
		    *(const uint16_t *)(sym + 6) == marker_idx)
			marker = marker_sec + rd64(sym + 8);
	}
	CHECK(marker && seq((const char *)phys(marker), "FBSDMOD-MARKER"), "module marker at %x",
	      marker);
	pr("FBSDMETA: module %s sections=%u marker at %x: %s\n", f->name, (uint64_t)shnum, marker,
	   marker ? (const char *)phys(marker) : "?");
}

static void check_cpuid(void)
{
	uint32_t r[4];
	cpuid(0x40000000, r);
	uint32_t hvmax = r[0];
	cpuid(0x40000010, r);
	pr("FBSDMETA: cpuid 40000000.eax=%x 40000010 tsc_khz=%u apic_khz=%u\n", (uint64_t)hvmax,
	   (uint64_t)r[0], (uint64_t)r[1]);
	CHECK(hvmax >= 0x40000010, "leaf 0x40000000 EAX %x", (uint64_t)hvmax);
	CHECK(r[0] > 0 && r[1] == 1000000, "leaf 0x40000010 %x %x", (uint64_t)r[0], (uint64_t)r[1]);
	cpuid(0x80000007, r);
	pr("FBSDMETA: cpuid 80000007.edx=%x invariant_tsc=%u\n", (uint64_t)r[3],
	   (uint64_t)((r[3] >> 8) & 1));
	CHECK(r[3] & 0x100, "no invariant TSC");
}

void fbsd_main(const struct entry_regs *regs);
void fbsd_main(const struct entry_regs *regs)
{
	puts_("FBSDMETA: hello from KERNBASE\n");
	check_entry(regs);
	const uint32_t *stk = phys(regs->rsp);
	uint32_t ret = stk[0], modulep = stk[1], kernend = stk[2];
	pr("FBSDMETA: stack ret=%x modulep=%x kernend=%x\n", (uint64_t)ret, (uint64_t)modulep,
	   (uint64_t)kernend);
	CHECK(ret == 0, "return address %x", (uint64_t)ret);
	CHECK(modulep && kernend > modulep, "modulep/kernend");

	struct file files[MAX_FILES];
	unsigned n = 0;
	uint64_t at = KERNBASE + modulep;
	struct md_rec m;
	for (unsigned guard = 0; guard < 4096 && next_rec(&at, &m); guard++) {
		if (m.type == MODINFO_NAME) {
			CHECK(n < MAX_FILES, "too many files");
			if (n == MAX_FILES)
				break;
			struct file *f = &files[n++];
			for (unsigned i = 0; i < sizeof(*f); i++)
				((char *)f)[i] = 0;
			f->name = (const char *)m.data;
			continue;
		}
		CHECK(n > 0, "record %x before MODINFO_NAME", (uint64_t)m.type);
		if (n == 0)
			break;
		struct file *f = &files[n - 1];
		switch (m.type) {
		case MODINFO_TYPE: f->type = (const char *)m.data; break;
		case MODINFO_ARGS: f->args = (const char *)m.data; break;
		case MODINFO_ADDR: f->addr = rd64(m.data); break;
		case MODINFO_SIZE: f->size = rd64(m.data); break;
		case MODINFO_METADATA | MD_ELFHDR: f->elfhdr = m.data; break;
		case MODINFO_METADATA | MD_SHDR: f->shdr = m.data; f->shdr_size = m.size; break;
		case MODINFO_METADATA | MD_SSYM: f->ssym = rd64(m.data); break;
		case MODINFO_METADATA | MD_ESYM: f->esym = rd64(m.data); break;
		case MODINFO_METADATA | MD_DYNAMIC: f->dynamic = rd64(m.data); break;
		case MODINFO_METADATA | MD_ENVP: f->envp = rd64(m.data); break;
		case MODINFO_METADATA | MD_KERNEND: f->kernend = rd64(m.data); break;
		case MODINFO_METADATA | MD_HOWTO: f->howto = rd32(m.data); f->has_howto = true; break;
		case MODINFO_METADATA | MD_SMAP: f->smap = m.data; f->smap_n = m.size / 20;
			CHECK(m.size % 20 == 0, "SMAP size %u", (uint64_t)m.size); break;
		default:
			/* No EFI: no MODINFOMD_FW_HANDLE, no EFI memory map. */
			CHECK(m.type != (MODINFO_METADATA | 0x000c) &&
				      m.type != (MODINFO_METADATA | 0x1004),
			      "an EFI record %x", (uint64_t)m.type);
			pr("FBSDMETA: record %x size %u\n", (uint64_t)m.type, (uint64_t)m.size);
			break;
		}
	}
	uint64_t md_end = at + 8 - KERNBASE;
	pr("FBSDMETA: files=%u metadata=%x-%x\n", (uint64_t)n, (uint64_t)modulep, md_end);
	CHECK(md_end <= kernend, "metadata runs past kernend");
	CHECK(n >= 1, "no files");
	if (n >= 1) {
		const struct file *k = &files[0];
		const char *env = k->envp ? (const char *)phys(k->envp) : "";
		for (const char *p = env; *p; p += slen(p) + 1)
			pr("FBSDMETA: kenv %s\n", p);
		const char *kn;
		CHECK(env_find(env, "kernelname", &kn) && seq(kn, k->name), "kernelname");
		check_kernel(k, modulep, kernend, env);
		for (unsigned i = 1; i < n; i++)
			check_module(&files[i], kernend);
		check_smap(k, k->addr, kernend);
	}
	check_cpuid();
	finish();
}

/* btext: as locore.S, save what the loader handed over, then a stack of
 * our own. */
__asm__(".section .text.btext,\"ax\"\n"
	".globl btext\n"
	"btext:\n"
	"  cli\n"
	"  movq %rsp, %r8\n"
	"  pushfq\n"
	"  popq %r9\n"
	"  leaq entry_regs(%rip), %rdi\n"
	"  movq %r8, 0(%rdi)\n"
	"  movq %cr0, %rax; movq %rax, 8(%rdi)\n"
	"  movq %cr3, %rax; movq %rax, 16(%rdi)\n"
	"  movq %cr4, %rax; movq %rax, 24(%rdi)\n"
	"  movl $0xc0000080, %ecx; rdmsr; shlq $32, %rdx; orq %rdx, %rax; movq %rax, 32(%rdi)\n"
	"  movq %r9, 40(%rdi)\n"
	"  movw %cs, 48(%rdi)\n"
	"  movw %ds, 50(%rdi)\n"
	"  movw %es, 52(%rdi)\n"
	"  movw %ss, 54(%rdi)\n"
	"  movw %fs, 56(%rdi)\n"
	"  movw %gs, 58(%rdi)\n"
	"  str 60(%rdi)\n"
	"  sgdt 62(%rdi)\n"
	"  leaq fbsd_boot_stack+16384(%rip), %rsp\n"
	"  call fbsd_main\n"
	"1: hlt\n"
	"  jmp 1b\n"
	".text\n");

struct entry_regs entry_regs __attribute__((used));
_Static_assert(offsetof(struct entry_regs, cs) == 48, "layout");
_Static_assert(offsetof(struct entry_regs, gdt_limit) == 62, "layout");
_Static_assert(offsetof(struct entry_regs, gdt_base) == 64, "layout");
uint8_t fbsd_boot_stack[16384] __attribute__((used, aligned(16)));
