/* FreeBSD amd64 kernels, loaded as bhyveload loads them (see freebsd.h for
 * the layout and the entry state). Everything here comes from files the
 * user named: every offset, size, index and alignment read from an ELF
 * file is checked before use. */
#include "boot/freebsd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/elf.h"
#include "boot/loaders.h"

#define ELFOSABI_FREEBSD 9
#define NT_FREEBSD_ABI_TAG 1
#define ET_REL 1
#define ET_EXEC 2
#define PT_DYNAMIC 2
#define SHT_PROGBITS 1
#define SHT_SYMTAB 2
#define SHT_STRTAB 3
#define SHT_RELA 4
#define SHT_NOBITS 8
#define SHT_REL 9
#define SHT_X86_64_UNWIND 0x70000001u
#define SHF_ALLOC 0x2
#define EHDR_SIZE 64
#define SHDR_SIZE 64
/* More sections than any kernel or module has (a GENERIC kernel ~50, a
 * module with many linker sets a few hundred). */
#define MAX_SHNUM 16384u
/* Largest section alignment honoured (the loader rounds up to it). */
#define MAX_ALIGN 0x200000ULL
#define MAX_FILES (1 + BOOT_MAX_MODULES)
#define MAX_MD 12
#define SMAP_ENTRY 20 /* struct bios_smap: base, length, type; packed */

#define CR0_PE (1ULL << 0)
#define CR0_NE (1ULL << 5)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

/* ---- MODINFO records, howto, kenv: pure functions ---- */

static size_t put_rec(uint8_t *buf, size_t at, uint32_t type, const void *data, uint32_t size)
{
	if (buf) {
		put_le32(buf + at, type);
		put_le32(buf + at + 4, size);
		if (size)
			memcpy(buf + at + 8, data, size);
		size_t pad = (size_t)align_up(size, 8) - size;
		memset(buf + at + 8 + size, 0, pad);
	}
	return at + 8 + (size_t)align_up(size, 8);
}

static size_t put_str(uint8_t *buf, size_t at, uint32_t type, const char *s)
{
	return put_rec(buf, at, type, s, (uint32_t)strlen(s) + 1);
}

static size_t put_u64(uint8_t *buf, size_t at, uint32_t type, uint64_t v)
{
	uint8_t b[8];
	put_le64(b, v);
	return put_rec(buf, at, type, b, 8);
}

size_t freebsd_modinfo(const struct fbsd_file *files, unsigned n, uint8_t *buf)
{
	size_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct fbsd_file *f = &files[i];
		at = put_str(buf, at, MODINFO_NAME, f->name); /* must come first */
		at = put_str(buf, at, MODINFO_TYPE, f->type);
		if (f->args)
			at = put_str(buf, at, MODINFO_ARGS, f->args);
		at = put_u64(buf, at, MODINFO_ADDR, f->addr);
		at = put_u64(buf, at, MODINFO_SIZE, f->size);
		for (unsigned j = 0; j < f->nmd; j++)
			at = put_rec(buf, at, MODINFO_METADATA | f->md[j].type, f->md[j].data,
				     f->md[j].size);
	}
	return put_rec(buf, at, MODINFO_END, NULL, 0);
}

/* The value of name in env (the last setting), or NULL. */
static const char *env_get(const char *const *env, unsigned n, const char *name)
{
	size_t nl = strlen(name);
	const char *v = NULL;
	for (unsigned i = 0; i < n; i++)
		if (env[i] && !strncmp(env[i], name, nl) && env[i][nl] == '=')
			v = env[i] + nl + 1;
	return v;
}

uint32_t freebsd_howto(const char *kargs, const char *const *env, unsigned n)
{
	static const struct {
		char flag;
		uint32_t mask;
	} flags[] = {
		{ 'a', RB_ASKNAME }, { 'C', RB_CDROM },	 { 'd', RB_KDB },     { 'D', RB_MULTIPLE },
		{ 'm', RB_MUTE },    { 'g', RB_GDB },	 { 'h', RB_SERIAL },  { 'p', RB_PAUSE },
		{ 'r', RB_DFLTROOT }, { 's', RB_SINGLE }, { 'v', RB_VERBOSE },
	};
	static const struct {
		const char *name;
		uint32_t mask;
	} vars[] = {
		{ "boot_askname", RB_ASKNAME }, { "boot_cdrom", RB_CDROM },
		{ "boot_ddb", RB_KDB },		{ "boot_dfltroot", RB_DFLTROOT },
		{ "boot_gdb", RB_GDB },		{ "boot_multicons", RB_MULTIPLE },
		{ "boot_mute", RB_MUTE },	{ "boot_pause", RB_PAUSE },
		{ "boot_serial", RB_SERIAL },	{ "boot_single", RB_SINGLE },
		{ "boot_verbose", RB_VERBOSE },
	};
	uint32_t howto = 0;
	/* "-sv -h": a '-' starts flags, anything not a flag ends them. */
	bool active = false;
	for (const char *p = kargs; p && *p; p++) {
		if (!active) {
			active = *p == '-';
			continue;
		}
		bool known = false;
		for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (*p == flags[i].flag) {
				howto |= flags[i].mask;
				known = true;
			}
		if (!known)
			active = false;
	}
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (env_get(env, n, vars[i].name))
			howto |= vars[i].mask;
	/* console="comconsole vidconsole": the first named is the primary. */
	const char *cons = env_get(env, n, "console");
	bool vid = false, first_vid = false, first = true;
	for (const char *p = cons; p && *p;) {
		size_t len = strcspn(p, " ,");
		if (len) {
			if (len == 10 && !strncmp(p, "vidconsole", len)) {
				vid = true;
				first_vid |= first;
			} else if (len == 10 && !strncmp(p, "comconsole", len)) {
				howto |= RB_SERIAL;
			} else if (len == 11 && !strncmp(p, "nullconsole", len)) {
				howto |= RB_MUTE;
			}
			first = false;
		}
		p += len;
		p += strspn(p, " ,");
	}
	if (vid && (howto & RB_SERIAL))
		howto |= RB_MULTIPLE;
	if (first_vid)
		howto &= ~(uint32_t)RB_SERIAL;
	return howto;
}

size_t freebsd_env_block(const char *const *env, unsigned n, uint8_t *buf, unsigned *bad)
{
	size_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *eq = env[i] ? strchr(env[i], '=') : NULL;
		if (!eq || eq == env[i]) {
			if (bad)
				*bad = i;
			return 0;
		}
		size_t nl = (size_t)(eq - env[i]);
		/* Only the first setting of a name gives it a place... */
		bool seen = false;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = !strncmp(env[j], env[i], nl + 1);
		if (seen)
			continue;
		/* ...with the value of the last one. */
		const char *last = env[i];
		for (unsigned j = i + 1; j < n; j++)
			if (env[j] && !strncmp(env[j], env[i], nl + 1))
				last = env[j];
		size_t len = strlen(last) + 1;
		if (buf)
			memcpy(buf + at, last, len);
		at += len;
	}
	if (buf)
		buf[at] = 0;
	return at + 1;
}

/* ---- Loading ---- */

/* One file handed to the kernel, and the metadata it owns. */
struct loaded {
	struct fbsd_file f;
	struct fbsd_md md[MAX_MD];
	void *own[MAX_MD];
	unsigned nown;
	char *name, *args; /* owned */
};

struct fbsd_load {
	struct boot_ctx *c;
	struct loaded files[MAX_FILES];
	unsigned nfiles;
	uint64_t loadaddr; /* the end of what is loaded so far */
};

static void md_add(struct loaded *l, uint32_t type, const void *data, uint32_t size)
{
	/* Callers add at most MAX_MD records per file. */
	l->md[l->f.nmd++] = (struct fbsd_md){ type, size, data };
	l->f.md = l->md;
}

/* md_add() of a copy that the file owns; -ENOMEM. */
static int md_add_copy(struct fbsd_load *L, struct loaded *l, uint32_t type, const void *data,
		       uint32_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		return boot_fail(L->c, ENOMEM, "out of memory");
	memcpy(p, data, size);
	l->own[l->nown++] = p;
	md_add(l, type, p, size);
	return 0;
}

static void free_loaded(struct fbsd_load *L)
{
	for (unsigned i = 0; i < L->nfiles; i++) {
		struct loaded *l = &L->files[i];
		for (unsigned j = 0; j < l->nown; j++)
			free(l->own[j]);
		free(l->name);
		free(l->args);
	}
}

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* "prefix" + basename(path) */
static char *guest_name(const char *prefix, const char *path)
{
	const char *b = base_name(path);
	size_t n = strlen(prefix) + strlen(b) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s", prefix, b);
	return s;
}

/* Claims and writes len bytes of boot data the kernel keeps (the symbols,
 * the kenv, the metadata) at gpa. */
static int put_kept(struct boot_ctx *c, const char *what, uint64_t gpa, const void *data,
		    uint64_t len)
{
	if (gpa + len > FBSD_MAP_LIMIT)
		return boot_fail(c, ENOMEM,
				 "%s: %s at 0x%llx would end above the 2 GiB the kernel is "
				 "entered with mapped",
				 c->kernel.path, what, (unsigned long long)gpa);
	int r = boot_claim_image(c, what, gpa, len);
	if (r)
		return r;
	if (len && guest_mem_write(c->gm, gpa, data, (size_t)len))
		return boot_fail(c, EFAULT, "%s: cannot write %s at 0x%llx", c->kernel.path, what,
				 (unsigned long long)gpa);
	return 0;
}

/* An ELF64 section header, parsed. */
struct shdr {
	uint32_t name, type;
	uint64_t flags, addr, offset, size;
	uint32_t link, info;
	uint64_t align, entsize;
};

static void shdr_get(const uint8_t *p, struct shdr *s)
{
	s->name = get_le32(p);
	s->type = get_le32(p + 4);
	s->flags = get_le64(p + 8);
	s->addr = get_le64(p + 16);
	s->offset = get_le64(p + 24);
	s->size = get_le64(p + 32);
	s->link = get_le32(p + 40);
	s->info = get_le32(p + 44);
	s->align = get_le64(p + 48);
	s->entsize = get_le64(p + 56);
}

static bool in_file(const struct kfile *f, uint64_t off, uint64_t len)
{
	uint64_t end;
	return !__builtin_add_overflow(off, len, &end) && end <= f->size;
}

/* Reads the section header table of an ELF64 file whose header is eh:
 * *raw (shnum * 64 bytes, as in the file) and *sh (parsed). 0 with
 * *shnum 0 when there is none. */
static int read_shdrs(struct boot_ctx *c, const struct kfile *f, const uint8_t *eh,
		      uint8_t **raw, struct shdr **sh, unsigned *shnum)
{
	uint64_t shoff = get_le64(eh + 40);
	unsigned entsize = get_le16(eh + 58), n = get_le16(eh + 60);
	*raw = NULL;
	*sh = NULL;
	*shnum = 0;
	if (n == 0 || shoff == 0)
		return 0;
	if (entsize != SHDR_SIZE)
		return boot_fail(c, ENOEXEC, "%s: ELF e_shentsize is %u, expected %u", f->path,
				 entsize, SHDR_SIZE);
	if (n > MAX_SHNUM)
		return boot_fail(c, ENOEXEC, "%s: too many ELF sections (%u)", f->path, n);
	if (!in_file(f, shoff, (uint64_t)n * SHDR_SIZE))
		return boot_fail(c, ENOEXEC,
				 "%s: the ELF section header table extends past the end of the file",
				 f->path);
	*raw = malloc((size_t)n * SHDR_SIZE);
	*sh = calloc(n, sizeof(**sh));
	if (!*raw || !*sh) {
		free(*raw);
		free(*sh);
		*raw = NULL;
		*sh = NULL;
		return boot_fail(c, ENOMEM, "%s: out of memory", f->path);
	}
	int r = kfile_read(c, f, shoff, *raw, (size_t)n * SHDR_SIZE);
	if (r) {
		free(*raw);
		free(*sh);
		*raw = NULL;
		*sh = NULL;
		return r;
	}
	for (unsigned i = 0; i < n; i++)
		shdr_get(*raw + (size_t)i * SHDR_SIZE, &(*sh)[i]);
	*shnum = n;
	return 0;
}

/* The NUL-terminated name of section i (from the section name table shstr
 * of shstr_len bytes), or "" when it is out of bounds. */
static const char *sec_name(const char *shstr, uint64_t shstr_len, const struct shdr *s)
{
	if (!shstr || s->name >= shstr_len || !memchr(shstr + s->name, 0, shstr_len - s->name))
		return "";
	return shstr + s->name;
}

/* Reads section idx of f into a new buffer (its size in *len). */
static int read_section(struct boot_ctx *c, const struct kfile *f, const struct shdr *s,
			uint8_t **out)
{
	*out = NULL;
	if (s->type == SHT_NOBITS || !in_file(f, s->offset, s->size) || s->size > (256u << 20))
		return boot_fail(c, ENOEXEC, "%s: an ELF section lies outside the file", f->path);
	*out = malloc(s->size ? (size_t)s->size : 1);
	if (!*out)
		return boot_fail(c, ENOMEM, "%s: out of memory", f->path);
	int r = kfile_read(c, f, s->offset, *out, (size_t)s->size);
	if (r) {
		free(*out);
		*out = NULL;
	}
	return r;
}

int freebsd_detect(struct boot_ctx *c, const struct elf_image *elf)
{
	if (elf->bits != 64 || c->headlen < 16)
		return 0;
	if (c->head[7] == ELFOSABI_FREEBSD)
		return 1;
	/* .note.tag: name "FreeBSD", NT_FREEBSD_ABI_TAG, the __FreeBSD_version */
	uint8_t desc[4];
	size_t dl = 0;
	int r = elf_find_note(c, &c->kernel, elf, "FreeBSD", NT_FREEBSD_ABI_TAG, desc,
			      sizeof(desc), &dl);
	return r < 0 ? r : r > 0;
}

/* The kernel: its segments at p_vaddr + off, its symbols after them, and
 * the metadata load_elf.c gives it. */
static int load_kernel(struct fbsd_load *L, struct elf_image *elf)
{
	struct boot_ctx *c = L->c;
	const struct kfile *f = &c->kernel;
	const char *path = f->path;
	if (elf->bits != 64 || elf->machine != ELF_EM_X86_64 || elf->type != ET_EXEC)
		return boot_fail(c, ENOEXEC,
				 "%s: not a FreeBSD amd64 kernel (it must be an x86-64 ELF64 "
				 "executable)",
				 path);
	if ((elf->entry & ~(FBSD_PAGE - 1)) == 0)
		return boot_fail(c, ENOEXEC, "%s: the ELF entry 0x%llx is not a kernel's", path,
				 (unsigned long long)elf->entry);
	/* load_elf.c: "x86_64 relocates after locore" */
	const uint64_t off = 0 - (elf->entry & 0xffffffffff000000ULL);
	uint8_t eh[EHDR_SIZE];
	if (c->headlen < EHDR_SIZE)
		return boot_fail(c, ENOEXEC, "%s: the ELF header is truncated", path);
	memcpy(eh, c->head, EHDR_SIZE);

	uint64_t first = UINT64_MAX, last = 0;
	char what[48];
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type != ELF_PT_LOAD || ph->memsz == 0)
			continue;
		uint64_t dest = ph->vaddr + off, end;
		if (__builtin_add_overflow(dest, ph->memsz, &end) || end > FBSD_MAP_LIMIT)
			return boot_fail(c, ENOEXEC,
					 "%s: ELF segment %u (0x%llx) does not load below 2 GiB "
					 "physical at its address minus KERNBASE",
					 path, i, (unsigned long long)ph->vaddr);
		snprintf(what, sizeof(what), "kernel segment %u", i);
		int r = boot_claim_image(c, what, dest, ph->memsz);
		if (!r)
			r = kfile_load(c, f, ph->offset, ph->filesz, dest, ph->memsz);
		if (r)
			return r;
		boot_inform(c, "kernel segment %u at 0x%llx-0x%llx (virtual 0x%llx)", i,
			    (unsigned long long)dest, (unsigned long long)(end - 1),
			    (unsigned long long)ph->vaddr);
		first = min_u64(first, dest);
		last = max_u64(last, end);
	}
	if (last == 0)
		return boot_fail(c, ENOEXEC, "%s: the ELF file has no loadable segments", path);
	if (!(elf->entry + off >= first && elf->entry + off < last))
		return boot_fail(c, ENOEXEC, "%s: the entry 0x%llx is not inside the kernel", path,
				 (unsigned long long)elf->entry);
	last = align_up(last, 8);

	struct loaded *k = &L->files[L->nfiles++];
	memset(k, 0, sizeof(*k));
	k->name = dupstr(c->req->kernel_name ? c->req->kernel_name : "/boot/kernel/kernel");
	k->args = c->req->cmdline && *c->req->cmdline ? dupstr(c->req->cmdline) : NULL;
	if (!k->name || (c->req->cmdline && *c->req->cmdline && !k->args))
		return boot_fail(c, ENOMEM, "out of memory");
	k->f.name = k->name;
	k->f.type = FBSD_TYPE_KERNEL;
	k->f.args = k->args;

	/* Section headers, .ctors and the symbols. load_elf.c adds its
	 * records in this order; the list is built by prepending, so the
	 * kernel sees them reversed (the ELF header, added last, is first
	 * after the bootinfo64.c ones). */
	uint8_t *raw = NULL;
	struct shdr *sh = NULL;
	unsigned shnum = 0;
	int r = read_shdrs(c, f, eh, &raw, &sh, &shnum);
	if (r)
		return r;
	struct fbsd_md rev[MAX_MD];
	unsigned nrev = 0;
	void *own[MAX_MD];
	unsigned nown = 0;
	uint64_t ssym = 0, esym = 0;
	if (shnum) {
		own[nown++] = raw;
		rev[nrev++] = (struct fbsd_md){ MODINFOMD_SHDR, shnum * SHDR_SIZE, raw };
		unsigned shstrndx = get_le16(eh + 62);
		uint8_t *shstr = NULL;
		if (shstrndx < shnum && sh[shstrndx].type == SHT_STRTAB &&
		    read_section(c, f, &sh[shstrndx], &shstr) == 0) {
			for (unsigned i = 0; i < shnum; i++) {
				if (strcmp(sec_name((char *)shstr, sh[shstrndx].size, &sh[i]),
					   ".ctors"))
					continue;
				uint8_t *v = malloc(16);
				if (!v)
					break;
				put_le64(v, sh[i].addr);
				put_le64(v + 8, sh[i].size);
				own[nown++] = v;
				rev[nrev++] = (struct fbsd_md){ MODINFOMD_CTORS_ADDR, 8, v };
				rev[nrev++] = (struct fbsd_md){ MODINFOMD_CTORS_SIZE, 8, v + 8 };
				break;
			}
		}
		free(shstr);
		if (c->err && c->errlen)
			c->err[0] = '\0'; /* unreadable section names only cost .ctors */

		/* The symbol table not already inside a PT_LOAD, and its strings. */
		int symtab = -1, strtab = -1;
		for (unsigned i = 0; i < shnum; i++) {
			if (sh[i].type != SHT_SYMTAB || sh[i].size == 0 || sh[i].offset == 0)
				continue;
			bool loaded = false;
			for (unsigned j = 0; j < elf->phnum && !loaded; j++) {
				const struct elf_phdr *ph = &elf->ph[j];
				loaded = ph->type == ELF_PT_LOAD && sh[i].offset >= ph->offset &&
					 sh[i].offset + sh[i].size <= ph->offset + ph->filesz;
			}
			if (!loaded) {
				symtab = (int)i;
				strtab = (int)sh[i].link;
			}
		}
		if (symtab >= 0 && (unsigned)strtab < shnum && strtab > 0) {
			uint64_t at = last;
			ssym = at;
			for (int pass = 0; pass < 2 && !r; pass++) {
				const struct shdr *s = &sh[pass ? strtab : symtab];
				uint8_t *data = NULL;
				r = read_section(c, f, s, &data);
				if (r)
					break;
				uint64_t len = 8 + align_up(s->size, 8);
				uint8_t *blob = calloc(1, (size_t)len);
				if (!blob) {
					free(data);
					r = boot_fail(c, ENOMEM, "out of memory");
					break;
				}
				put_le64(blob, s->size);
				memcpy(blob + 8, data, (size_t)s->size);
				free(data);
				r = put_kept(c, pass ? "the kernel's symbol strings" : "the kernel's symbols",
					     at, blob, len);
				free(blob);
				at += len;
			}
			esym = at;
			last = at;
			if (!r) {
				uint8_t *v = malloc(16);
				if (!v) {
					r = boot_fail(c, ENOMEM, "out of memory");
				} else {
					put_le64(v, ssym);
					put_le64(v + 8, esym);
					own[nown++] = v;
					rev[nrev++] = (struct fbsd_md){ MODINFOMD_SSYM, 8, v };
					rev[nrev++] = (struct fbsd_md){ MODINFOMD_ESYM, 8, v + 8 };
					boot_inform(c, "kernel symbols at 0x%llx-0x%llx",
						    (unsigned long long)ssym,
						    (unsigned long long)(esym - 1));
				}
			}
		}
	}
	free(sh);
	for (unsigned i = 0; i < elf->phnum && !r; i++) {
		if (elf->ph[i].type != PT_DYNAMIC)
			continue;
		uint8_t *v = malloc(8);
		if (!v) {
			r = boot_fail(c, ENOMEM, "out of memory");
			break;
		}
		put_le64(v, elf->ph[i].vaddr); /* as load_elf.c: not relocated */
		own[nown++] = v;
		rev[nrev++] = (struct fbsd_md){ MODINFOMD_DYNAMIC, 8, v };
		break;
	}
	for (unsigned i = 0; i < nown; i++)
		k->own[k->nown++] = own[i];
	if (r)
		return r;
	/* The ELF header is added last by load_elf.c, so it comes first. */
	r = md_add_copy(L, k, MODINFOMD_ELFHDR, eh, EHDR_SIZE);
	for (; !r && nrev; nrev--)
		md_add(k, rev[nrev - 1].type, rev[nrev - 1].data, rev[nrev - 1].size);
	k->f.addr = first;
	k->f.size = last - first;
	L->loadaddr = last;
	return r;
}

/* An ELF relocatable module (.ko), laid out as load_elf_obj.c does: the
 * allocated sections, the symbol table, its strings, the section names,
 * and the relocations of allocated sections, each at its alignment. */
static int load_obj(struct fbsd_load *L, struct loaded *l, const struct kfile *f,
		    const uint8_t *eh)
{
	struct boot_ctx *c = L->c;
	uint8_t *raw = NULL;
	struct shdr *sh = NULL;
	unsigned n = 0;
	int r = read_shdrs(c, f, eh, &raw, &sh, &n);
	if (r)
		return r;
	if (n == 0) {
		r = boot_fail(c, ENOEXEC, "%s: the module has no section headers", f->path);
		goto out;
	}
	const uint64_t dest = align_up(L->loadaddr, FBSD_PAGE);
	uint64_t last = dest;
	int symtab = -1, nsym = 0;
	/* Where each section goes; 0 = not loaded. */
	uint64_t *addr = calloc(n, sizeof(*addr));
	if (!addr) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out;
	}
#define PLACE(i)                                                                            \
	do {                                                                                \
		uint64_t al = sh[i].align ? sh[i].align : 1;                                \
		if ((al & (al - 1)) || al > MAX_ALIGN || sh[i].size > FBSD_MAP_LIMIT) {    \
			r = boot_fail(c, ENOEXEC, "%s: ELF section %u has a bad alignment " \
				      "or size", f->path, (unsigned)(i));                  \
			goto out_addr;                                                      \
		}                                                                           \
		last = align_up(last, al);                                                  \
		addr[i] = last;                                                             \
		last += sh[i].size;                                                         \
		if (last > FBSD_MAP_LIMIT) {                                                \
			r = boot_fail(c, ENOMEM, "%s: the module does not fit below 2 GiB", \
				      f->path);                                             \
			goto out_addr;                                                      \
		}                                                                           \
	} while (0)
	for (unsigned i = 0; i < n; i++) {
		if (sh[i].size == 0)
			continue;
		if ((sh[i].type == SHT_PROGBITS || sh[i].type == SHT_NOBITS ||
		     sh[i].type == SHT_X86_64_UNWIND) &&
		    (sh[i].flags & SHF_ALLOC))
			PLACE(i);
	}
	for (unsigned i = 0; i < n; i++)
		if (sh[i].type == SHT_SYMTAB) {
			nsym++;
			symtab = (int)i;
		}
	if (nsym != 1) {
		r = boot_fail(c, ENOEXEC, "%s: the module has %s symbol table", f->path,
			      nsym ? "more than one" : "no");
		goto out_addr;
	}
	PLACE(symtab);
	unsigned strtab = sh[symtab].link;
	if (strtab == 0 || strtab >= n || sh[strtab].type != SHT_STRTAB) {
		r = boot_fail(c, ENOEXEC, "%s: the module has invalid symbol strings", f->path);
		goto out_addr;
	}
	PLACE(strtab);
	unsigned shstrndx = get_le16(eh + 62);
	if (shstrndx == 0 || shstrndx >= n || sh[shstrndx].type != SHT_STRTAB) {
		r = boot_fail(c, ENOEXEC, "%s: the module has no section names", f->path);
		goto out_addr;
	}
	PLACE(shstrndx);
	for (unsigned i = 0; i < n; i++)
		if ((sh[i].type == SHT_REL || sh[i].type == SHT_RELA) && sh[i].info < n &&
		    (sh[sh[i].info].flags & SHF_ALLOC))
			PLACE(i);
#undef PLACE
	r = boot_claim_image(c, l->name, dest, last - dest);
	if (r)
		goto out_addr;
	/* Zero the whole area (the bss), then read what has bytes. */
	uint8_t *img = calloc(1, (size_t)(last - dest) + 1);
	if (!img) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out_addr;
	}
	for (unsigned i = 0; i < n && !r; i++) {
		if (!addr[i])
			continue;
		sh[i].addr = addr[i];
		put_le64(raw + (size_t)i * SHDR_SIZE + 16, addr[i]); /* sh_addr */
		if (sh[i].type == SHT_NOBITS)
			continue;
		if (!in_file(f, sh[i].offset, sh[i].size))
			r = boot_fail(c, ENOEXEC, "%s: ELF section %u lies outside the file",
				      f->path, i);
		else
			r = kfile_read(c, f, sh[i].offset, img + (addr[i] - dest), (size_t)sh[i].size);
	}
	/* Every other section's sh_addr is 0, as the loader leaves it. */
	for (unsigned i = 0; i < n; i++)
		if (!addr[i])
			put_le64(raw + (size_t)i * SHDR_SIZE + 16, 0);
	if (!r && last > dest && guest_mem_write(c->gm, dest, img, (size_t)(last - dest)))
		r = boot_fail(c, EFAULT, "%s: cannot write the module at 0x%llx", f->path,
			      (unsigned long long)dest);
	free(img);
	if (r)
		goto out_addr;
	/* load_elf_obj.c adds SHDR, then the ELF header: the header first. */
	r = md_add_copy(L, l, MODINFOMD_ELFHDR, eh, EHDR_SIZE);
	if (!r) {
		l->own[l->nown++] = raw;
		md_add(l, MODINFOMD_SHDR, raw, n * SHDR_SIZE);
		raw = NULL;
	}
	l->f.addr = dest;
	l->f.size = last - dest;
	L->loadaddr = last;
	boot_inform(c, "module %s (%s) at 0x%llx-0x%llx", l->name, f->path,
		    (unsigned long long)dest, (unsigned long long)(last - 1));
out_addr:
	free(addr);
out:
	free(raw);
	free(sh);
	return r;
}

/* A raw file ("md_image", "mfs_root", ...): its bytes, page-aligned. */
static int load_raw(struct fbsd_load *L, struct loaded *l, const struct kfile *f)
{
	struct boot_ctx *c = L->c;
	uint64_t dest = align_up(L->loadaddr, FBSD_PAGE), end;
	if (__builtin_add_overflow(dest, f->size, &end) || end > FBSD_MAP_LIMIT)
		return boot_fail(c, ENOMEM, "%s: %llu KiB do not fit below 2 GiB after 0x%llx",
				 f->path, (unsigned long long)(f->size >> 10),
				 (unsigned long long)dest);
	int r = boot_claim_image(c, l->name, dest, f->size);
	if (!r)
		r = kfile_load(c, f, 0, f->size, dest, f->size);
	if (r)
		return r;
	l->f.addr = dest;
	l->f.size = f->size;
	L->loadaddr = end;
	if (f->size)
		boot_inform(c, "%s %s (%s) at 0x%llx-0x%llx", l->f.type, l->name, f->path,
			    (unsigned long long)dest, (unsigned long long)(end - 1));
	return 0;
}

static int load_file(struct fbsd_load *L, const struct boot_module *m)
{
	struct boot_ctx *c = L->c;
	if (!m->path)
		return boot_fail(c, EINVAL, "module %u has no file name", L->nfiles);
	struct loaded *l = &L->files[L->nfiles++];
	memset(l, 0, sizeof(*l));
	/* "-t TYPE rest": the type, and the rest are the file's arguments */
	const unsigned idx = L->nfiles - 2; /* the kernel is file 0 */
	const char *mname = c->req->module_names ? c->req->module_names[idx] : NULL;
	const char *type = NULL, *args = m->args;
	char tbuf[128];
	if (!type && args && !strncmp(args, "-t", 2) && (args[2] == ' ' || args[2] == '\t')) {
		const char *t = args + 2 + strspn(args + 2, " \t");
		size_t tl = strcspn(t, " \t");
		if (tl == 0 || tl >= sizeof(tbuf))
			return boot_fail(c, EINVAL, "%s: \"-t\" needs a file type (e.g. md_image)",
					 m->path);
		memcpy(tbuf, t, tl);
		tbuf[tl] = 0;
		type = tbuf;
		args = t + tl + strspn(t + tl, " \t");
	}
	struct kfile f;
	int r = kfile_open(c, &f, m->path);
	if (r)
		return r;
	uint8_t eh[EHDR_SIZE];
	bool is_obj = false;
	if (f.size >= EHDR_SIZE && (r = kfile_read(c, &f, 0, eh, EHDR_SIZE)) == 0 &&
	    elf_detect(eh, EHDR_SIZE)) {
		unsigned et = get_le16(eh + 16), em = get_le16(eh + 18);
		if (!type || !strcmp(type, FBSD_TYPE_OBJ)) {
			if (eh[4] != 2 || eh[5] != 1 || em != ELF_EM_X86_64)
				r = boot_fail(c, ENOEXEC, "%s: not an x86-64 ELF64 module", m->path);
			else if (et == ET_EXEC)
				r = boot_fail(c, ENOEXEC,
					      "%s: a second kernel, not a module (only one kernel "
					      "can be loaded)",
					      m->path);
			else if (et != ET_REL)
				r = boot_fail(c, ENOEXEC,
					      "%s: not a relocatable ELF object (amd64 kernel "
					      "modules are)",
					      m->path);
			is_obj = true;
		}
	}
	if (!r && !type && !is_obj)
		r = boot_fail(c, EINVAL,
			      "%s: not an ELF kernel module; say what it is with \"-t TYPE\" "
			      "(e.g. md_image)",
			      m->path);
	if (!r) {
		l->f.type = is_obj ? FBSD_TYPE_OBJ : NULL;
		l->name = mname ? strdup(mname)
				  : guest_name(is_obj ? "/boot/kernel/" : "/boot/", m->path);
		l->args = args && *args ? strdup(args) : NULL;
		if (!is_obj)
			l->own[l->nown++] = strdup(type);
		if (!l->name || (args && *args && !l->args) || (!is_obj && !l->own[0]))
			r = boot_fail(c, ENOMEM, "out of memory");
	}
	if (!r) {
		if (!is_obj)
			l->f.type = l->own[0];
		l->f.name = l->name;
		l->f.args = l->args;
		r = is_obj ? load_obj(L, l, &f, eh) : load_raw(L, l, &f);
	}
	kfile_close(&f);
	return r;
}

/* PML4 -> one PDPT: entries 0-3 map 0-4 GiB 1:1 (four PDs of 2 MiB
 * pages), entries 510 and 511 (KERNBASE and above) map 0-2 GiB again;
 * PML4 entries 0 and 511 both point to it. userboot maps every 1 GiB of
 * the address space to the first 1 GiB; this covers what the kernel
 * touches (its image at KERNBASE + 2 MiB, the metadata, low memory 1:1)
 * and more. */
static int write_page_tables(struct boot_ctx *c)
{
	uint8_t page[BOOT_PAGE];
	const uint64_t pml4 = c->pml4_gpa, pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
	int r = 0;
	memset(page, 0, sizeof(page));
	put_le64(page, pdpt | PTE_P | PTE_RW);
	put_le64(page + 8 * 511, pdpt | PTE_P | PTE_RW);
	r |= guest_mem_write(c->gm, pml4, page, sizeof(page));
	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < 4; i++)
		put_le64(page + 8 * i, (pd + i * BOOT_PAGE) | PTE_P | PTE_RW);
	put_le64(page + 8 * 510, pd | PTE_P | PTE_RW);
	put_le64(page + 8 * 511, (pd + BOOT_PAGE) | PTE_P | PTE_RW);
	r |= guest_mem_write(c->gm, pdpt, page, sizeof(page));
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned j = 0; j < 512; j++)
			put_le64(page + 8 * j, (((uint64_t)i << 30) | ((uint64_t)j << 21)) | PTE_P |
						       PTE_RW | PTE_PS);
		r |= guest_mem_write(c->gm, pd + i * BOOT_PAGE, page, sizeof(page));
	}
	if (r)
		return boot_fail(c, EFAULT, "cannot write the page tables at 0x%llx",
				 (unsigned long long)pml4);
	return 0;
}

/* The GDT vm_setup_freebsd_gdt() writes: null, 64-bit code, data. */
static int enter(struct boot_ctx *c, uint64_t rip, uint32_t modulep, uint32_t kernend)
{
	uint8_t gdt[24] = { 0 };
	put_le64(gdt + 8, 0x0020980000000000ULL);
	put_le64(gdt + 16, 0x0000900000000000ULL);
	if (guest_mem_write(c->gm, c->gdt_gpa, gdt, sizeof(gdt)))
		return boot_fail(c, EFAULT, "cannot write the GDT at 0x%llx",
				 (unsigned long long)c->gdt_gpa);
	int r = write_page_tables(c);
	if (r)
		return r;
	/* btext: 0(%rsp) a 32-bit return address (unused), 4(%rsp) modulep,
	 * 8(%rsp) kernend. */
	uint64_t rsp = (c->stack_top - 16) & ~15ULL;
	uint8_t st[12];
	put_le32(st, 0);
	put_le32(st + 4, modulep);
	put_le32(st + 8, kernend);
	if (guest_mem_write(c->gm, rsp, st, sizeof(st)))
		return boot_fail(c, EFAULT, "cannot write the stack at 0x%llx",
				 (unsigned long long)rsp);
	struct boot_entry *e = c->entry;
	e->mode = BOOT_CPU_LONG64;
	e->rip = rip;
	e->rsp = rsp;
	e->rflags = 0x2;
	e->cr0 = CR0_PE | CR0_NE | CR0_PG;
	e->cr3 = c->pml4_gpa;
	e->cr4 = CR4_PAE;
	e->efer = EFER_LME | EFER_LMA;
	e->gdt_base = c->gdt_gpa;
	e->gdt_limit = sizeof(gdt) - 1;
	e->code_sel = 0x08;
	e->data_sel = 0x10;
	e->tss_sel = 0; /* TR the null selector, as libvmmapi leaves it */
	e->format_name = "FreeBSD ELF";
	return 0;
}

int freebsd_load(struct boot_ctx *c, struct elf_image *elf)
{
	const struct boot_request *req = c->req;
	struct fbsd_load *L = calloc(1, sizeof(*L));
	if (!L)
		return boot_fail(c, ENOMEM, "out of memory");
	L->c = c;
	uint8_t *envb = NULL, *meta = NULL, *smap = NULL;
	const char **env = NULL;

	/* The GDT, stack and page tables first, at their usual places below
	 * 1 MiB: the kernel builds its own page tables from kernend up while
	 * it still runs on these. */
	int r = boot_place_cpu_data(c, true);
	if (!r)
		r = load_kernel(L, elf);
	for (unsigned i = 0; !r && i < req->nr_modules; i++)
		r = load_file(L, &req->modules[i]);
	if (r)
		goto out;

	/* The kenv: the caller's, and kernelname as the loader sets it. */
	env = calloc(req->nr_env + 2, sizeof(*env));
	char kname[512];
	if (!env) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(kname, sizeof(kname), "kernelname=%s", L->files[0].f.name);
	unsigned nenv = 0;
	if (!env_get(req->env, req->nr_env, "kernelname"))
		env[nenv++] = kname;
	/* bhyveload sets boot_serial=1: the console is COM1. */
	if (!env_get(req->env, req->nr_env, "boot_serial") &&
	    !env_get(req->env, req->nr_env, "console"))
		env[nenv++] = "boot_serial=1";
	for (unsigned i = 0; i < req->nr_env; i++)
		env[nenv++] = req->env[i];
	unsigned bad = 0;
	size_t envlen = freebsd_env_block(env, nenv, NULL, &bad);
	if (!envlen) {
		r = boot_fail(c, EINVAL, "kenv entry '%s' is not name=value", env[bad] ? env[bad] : "");
		goto out;
	}
	envb = malloc(envlen);
	if (!envb) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out;
	}
	freebsd_env_block(env, nenv, envb, NULL);
	uint64_t envp = align_up(L->loadaddr, FBSD_PAGE);
	r = put_kept(c, "the kenv", envp, envb, envlen);
	if (r)
		goto out;

	/* bootinfo64.c's records for the kernel: howto, envp, kernend,
	 * SMAP; the list is prepended, so they come first, SMAP leading. */
	struct loaded *k = &L->files[0];
	uint32_t howto = freebsd_howto(req->cmdline, env, nenv);
	struct e820_entry map[E820_MAX_ENTRIES];
	int nmap = guest_mem_e820(c->gm, map);
	smap = calloc((size_t)(nmap > 0 ? nmap : 1), SMAP_ENTRY);
	if (!smap) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < nmap; i++) {
		put_le64(smap + i * SMAP_ENTRY, map[i].addr);
		put_le64(smap + i * SMAP_ENTRY + 8, map[i].size);
		put_le32(smap + i * SMAP_ENTRY + 16, map[i].type);
	}
	/* Move the load_elf.c records behind the four new ones. */
	struct fbsd_md old[MAX_MD];
	unsigned nold = k->f.nmd;
	memcpy(old, k->md, nold * sizeof(old[0]));
	k->f.nmd = 0;
	uint8_t hv[4], ev[8], kv[8];
	put_le32(hv, howto);
	put_le64(ev, envp);
	put_le64(kv, 0); /* patched below, as bi_load64() does */
	md_add(k, MODINFOMD_SMAP, smap, (uint32_t)(nmap * SMAP_ENTRY));
	md_add(k, MODINFOMD_KERNEND, kv, 8);
	md_add(k, MODINFOMD_ENVP, ev, 8);
	md_add(k, MODINFOMD_HOWTO, hv, 4);
	for (unsigned i = 0; i < nold; i++)
		md_add(k, old[i].type, old[i].data, old[i].size);

	struct fbsd_file files[MAX_FILES];
	for (unsigned i = 0; i < L->nfiles; i++)
		files[i] = L->files[i].f;
	uint64_t modulep = align_up(envp + envlen, FBSD_PAGE);
	size_t mlen = freebsd_modinfo(files, L->nfiles, NULL);
	uint64_t kernend = align_up(modulep + mlen, FBSD_PAGE);
	put_le64(kv, kernend);
	meta = malloc(mlen);
	if (!meta) {
		r = boot_fail(c, ENOMEM, "out of memory");
		goto out;
	}
	freebsd_modinfo(files, L->nfiles, meta);
	r = put_kept(c, "the module metadata", modulep, meta, mlen);
	if (r)
		goto out;
	if (kernend > FBSD_MAP_LIMIT) {
		r = boot_fail(c, ENOMEM, "%s: the kernel, its files and metadata end above 2 GiB",
			      c->kernel.path);
		goto out;
	}
	boot_inform(c, "FreeBSD: kenv at 0x%llx (%zu bytes), modulep 0x%llx, kernend 0x%llx, "
		       "howto 0x%x",
		    (unsigned long long)envp, envlen, (unsigned long long)modulep,
		    (unsigned long long)kernend, howto);
	r = enter(c, elf->entry, (uint32_t)modulep, (uint32_t)kernend);
out:
	free(env);
	free(envb);
	free(meta);
	free(smap);
	free_loaded(L);
	free(L);
	return r;
}
