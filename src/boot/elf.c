/* ELF32/ELF64 kernel images: header and program header validation, note
 * lookup, and loading PT_LOAD segments into guest memory. Every offset and
 * size comes from the file, so every sum is checked for overflow. */
#include "boot/elf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool elf_detect(const uint8_t *head, size_t len)
{
	return len >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F';
}

void elf_free(struct elf_image *elf)
{
	free(elf->ph);
	elf->ph = NULL;
	elf->phnum = 0;
}

/* True when [off, off+len) lies within a file of the given size. */
static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end;
	return !__builtin_add_overflow(off, len, &end) && end <= size;
}

int elf_parse(struct boot_ctx *c, const struct kfile *f, struct elf_image *elf)
{
	const uint8_t *h = c->head;
	size_t hl = c->headlen;
	const char *path = f->path;
	memset(elf, 0, sizeof(*elf));

	if (hl < 16 || !elf_detect(h, hl))
		return boot_fail(c, ENOEXEC, "%s: not an ELF file", path);
	if (h[4] != 1 && h[4] != 2)
		return boot_fail(c, ENOEXEC, "%s: unknown ELF class %u", path, h[4]);
	elf->bits = h[4] == 1 ? 32 : 64;
	if (h[5] != 1)
		return boot_fail(c, ENOEXEC, "%s: not a little-endian ELF file (EI_DATA %u)", path,
				 h[5]);
	size_t ehsize = elf->bits == 32 ? 52 : 64;
	if (hl < ehsize)
		return boot_fail(c, ENOEXEC, "%s: the ELF header is truncated (%zu of %zu bytes)",
				 path, hl, ehsize);
	elf->type = get_le16(h + 16);
	elf->machine = get_le16(h + 18);
	if (elf->type != 2 && elf->type != 3)
		return boot_fail(c, ENOEXEC, "%s: ELF type %u is not an executable", path, elf->type);
	if (elf->machine != ELF_EM_386 && elf->machine != ELF_EM_X86_64)
		return boot_fail(c, ENOEXEC, "%s: ELF machine %u is not x86", path, elf->machine);

	uint64_t phoff;
	unsigned phentsize, phnum, want_phent;
	if (elf->bits == 32) {
		elf->entry = get_le32(h + 24);
		phoff = get_le32(h + 28);
		elf->shoff = get_le32(h + 32);
		phentsize = get_le16(h + 42);
		phnum = get_le16(h + 44);
		elf->shentsize = get_le16(h + 46);
		elf->shnum = get_le16(h + 48);
		want_phent = 32;
	} else {
		elf->entry = get_le64(h + 24);
		phoff = get_le64(h + 32);
		elf->shoff = get_le64(h + 40);
		phentsize = get_le16(h + 54);
		phnum = get_le16(h + 56);
		elf->shentsize = get_le16(h + 58);
		elf->shnum = get_le16(h + 60);
		want_phent = 56;
	}
	if (phnum == 0)
		return boot_fail(c, ENOEXEC, "%s: the ELF file has no program headers", path);
	if (phnum > ELF_MAX_PHNUM)
		return boot_fail(c, ENOEXEC, "%s: too many ELF program headers (%u; at most %u)",
				 path, phnum, ELF_MAX_PHNUM);
	if (phentsize != want_phent)
		return boot_fail(c, ENOEXEC, "%s: ELF e_phentsize is %u, expected %u", path,
				 phentsize, want_phent);
	elf->ehsize = (unsigned)ehsize;
	elf->phoff = phoff;
	elf->phentsize = phentsize;
	if (!in_file(phoff, (uint64_t)phnum * phentsize, f->size))
		return boot_fail(c, ENOEXEC,
				 "%s: the ELF program header table (%u entries at 0x%llx) extends past "
				 "the end of the file",
				 path, phnum, (unsigned long long)phoff);

	size_t tlen = (size_t)phnum * phentsize;
	uint8_t *tab = malloc(tlen);
	elf->ph = calloc(phnum, sizeof(*elf->ph));
	if (!tab || !elf->ph) {
		free(tab);
		elf_free(elf);
		return boot_fail(c, ENOMEM, "%s: out of memory", path);
	}
	int r = kfile_read(c, f, phoff, tab, tlen);
	if (r) {
		free(tab);
		elf_free(elf);
		return r;
	}
	elf->phnum = phnum;
	r = 0;
	for (unsigned i = 0; i < phnum && !r; i++) {
		const uint8_t *p = tab + (size_t)i * phentsize;
		struct elf_phdr *ph = &elf->ph[i];
		if (elf->bits == 32) {
			ph->type = get_le32(p);
			ph->offset = get_le32(p + 4);
			ph->vaddr = get_le32(p + 8);
			ph->paddr = get_le32(p + 12);
			ph->filesz = get_le32(p + 16);
			ph->memsz = get_le32(p + 20);
			ph->flags = get_le32(p + 24);
			ph->align = get_le32(p + 28);
		} else {
			ph->type = get_le32(p);
			ph->flags = get_le32(p + 4);
			ph->offset = get_le64(p + 8);
			ph->vaddr = get_le64(p + 16);
			ph->paddr = get_le64(p + 24);
			ph->filesz = get_le64(p + 32);
			ph->memsz = get_le64(p + 40);
			ph->align = get_le64(p + 48);
		}
		if (ph->type != ELF_PT_LOAD && ph->type != ELF_PT_NOTE)
			continue;
		uint64_t end;
		if (!in_file(ph->offset, ph->filesz, f->size))
			r = boot_fail(c, ENOEXEC,
				      "%s: ELF program header %u extends past the end of the file "
				      "(0x%llx bytes at 0x%llx; the file has 0x%llx)",
				      path, i, (unsigned long long)ph->filesz,
				      (unsigned long long)ph->offset, (unsigned long long)f->size);
		else if (ph->type != ELF_PT_LOAD)
			continue;
		else if (ph->filesz > ph->memsz)
			r = boot_fail(c, ENOEXEC,
				      "%s: ELF program header %u has p_filesz 0x%llx larger than "
				      "p_memsz 0x%llx",
				      path, i, (unsigned long long)ph->filesz,
				      (unsigned long long)ph->memsz);
		else if (__builtin_add_overflow(ph->paddr, ph->memsz, &end) ||
			 __builtin_add_overflow(ph->vaddr, ph->memsz, &end))
			r = boot_fail(c, ENOEXEC,
				      "%s: ELF program header %u wraps around the address space", path,
				      i);
	}
	free(tab);
	if (r)
		elf_free(elf);
	return r;
}

static bool name_is(const uint8_t *p, uint32_t namesz, const char *name)
{
	size_t n = strlen(name);
	/* namesz counts the NUL; tolerate a missing one */
	if (namesz == n + 1)
		return memcmp(p, name, n) == 0 && p[n] == 0;
	return namesz == n && memcmp(p, name, n) == 0;
}

/* Walks the notes in buf[0, len). Returns 1 found, 0 absent, -1 malformed. */
static int scan_notes(const uint8_t *buf, uint64_t len, uint64_t align, const char *name,
		      uint32_t type, uint8_t *desc, size_t desc_max, size_t *desc_len)
{
	if (align != 8)
		align = 4;
	uint64_t off = 0;
	while (off < len) {
		if (len - off < 12)
			return -1;
		uint32_t namesz = get_le32(buf + off), descsz = get_le32(buf + off + 4);
		uint32_t ntype = get_le32(buf + off + 8);
		uint64_t name_off = off + 12;
		uint64_t name_span = align_up(namesz, align); /* namesz < 2^32: no overflow */
		if (name_span > len - name_off)
			return -1;
		uint64_t desc_off = name_off + name_span;
		uint64_t desc_span = align_up(descsz, align);
		if (descsz > len - desc_off)
			return -1;
		if (ntype == type && name_is(buf + name_off, namesz, name)) {
			size_t n = descsz < desc_max ? descsz : desc_max;
			memcpy(desc, buf + desc_off, n);
			*desc_len = descsz;
			return 1;
		}
		if (desc_span >= len - desc_off)
			break; /* the last note (padding may be absent) */
		off = desc_off + desc_span;
	}
	return 0;
}

static int note_region(struct boot_ctx *c, const struct kfile *f, uint64_t off, uint64_t size,
		       uint64_t align, const char *what, unsigned idx, const char *name,
		       uint32_t type, uint8_t *desc, size_t desc_max, size_t *desc_len)
{
	if (size == 0)
		return 0;
	if (!in_file(off, size, f->size))
		return boot_fail(c, ENOEXEC, "%s: ELF %s %u extends past the end of the file",
				 f->path, what, idx);
	if (size > ELF_MAX_NOTE_SIZE)
		return boot_fail(c, ENOEXEC, "%s: ELF note %s %u is too large (%llu bytes)",
				 f->path, what, idx, (unsigned long long)size);
	uint8_t *buf = malloc((size_t)size);
	if (!buf)
		return boot_fail(c, ENOMEM, "%s: out of memory", f->path);
	int r = kfile_read(c, f, off, buf, (size_t)size);
	if (r == 0) {
		r = scan_notes(buf, size, align, name, type, desc, desc_max, desc_len);
		if (r < 0)
			r = boot_fail(c, ENOEXEC, "%s: malformed note in ELF %s %u", f->path, what,
				      idx);
	}
	free(buf);
	return r;
}

int elf_find_note(struct boot_ctx *c, const struct kfile *f, const struct elf_image *elf,
		  const char *name, uint32_t type, uint8_t *desc, size_t desc_max,
		  size_t *desc_len)
{
	bool had_pt_note = false;
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type != ELF_PT_NOTE)
			continue;
		had_pt_note = true;
		int r = note_region(c, f, ph->offset, ph->filesz, ph->align, "program header", i,
				    name, type, desc, desc_max, desc_len);
		if (r)
			return r;
	}
	/* A linker always puts SHT_NOTE sections into a PT_NOTE; look at the
	 * sections only when there is none (sections are optional at run time). */
	if (had_pt_note || elf->shnum == 0 || elf->shoff == 0)
		return 0;
	unsigned want = elf->bits == 32 ? 40 : 64;
	if (elf->shentsize != want)
		return boot_fail(c, ENOEXEC, "%s: ELF e_shentsize is %u, expected %u", f->path,
				 elf->shentsize, want);
	uint64_t tlen = (uint64_t)elf->shnum * want;
	if (!in_file(elf->shoff, tlen, f->size))
		return boot_fail(c, ENOEXEC,
				 "%s: the ELF section header table (%u entries at 0x%llx) extends past "
				 "the end of the file",
				 f->path, elf->shnum, (unsigned long long)elf->shoff);
	uint8_t *tab = malloc((size_t)tlen);
	if (!tab)
		return boot_fail(c, ENOMEM, "%s: out of memory", f->path);
	int r = kfile_read(c, f, elf->shoff, tab, (size_t)tlen);
	for (unsigned i = 0; !r && i < elf->shnum; i++) {
		const uint8_t *s = tab + (size_t)i * want;
		uint32_t stype = get_le32(s + 4);
		if (stype != ELF_SHT_NOTE)
			continue;
		uint64_t off, size, align;
		if (elf->bits == 32) {
			off = get_le32(s + 16);
			size = get_le32(s + 20);
			align = get_le32(s + 32);
		} else {
			off = get_le64(s + 24);
			size = get_le64(s + 32);
			align = get_le64(s + 48);
		}
		r = note_region(c, f, off, size, align, "section", i, name, type, desc, desc_max,
				desc_len);
	}
	free(tab);
	return r;
}

/* The longest run of padding allowed between the headers and notes of a
 * segment that holds only those (notes are 4- or 8-byte aligned). */
#define META_GAP_MAX 64u

/* File ranges that hold no code or data: the ELF header, the program
 * header table, and each PT_NOTE; sorted by start. */
struct meta_piece {
	uint64_t start, end;
	bool note;
};

static int piece_cmp(const void *a, const void *b)
{
	const struct meta_piece *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static struct meta_piece *meta_pieces(const struct elf_image *elf, unsigned *n)
{
	struct meta_piece *p = calloc(elf->phnum + 2, sizeof(*p));
	if (!p)
		return NULL;
	unsigned k = 0;
	p[k++] = (struct meta_piece){ 0, elf->ehsize, false };
	p[k++] = (struct meta_piece){ elf->phoff,
				      elf->phoff + (uint64_t)elf->phnum * elf->phentsize, false };
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type == ELF_PT_NOTE && ph->filesz) /* in the file: elf_parse */
			p[k++] = (struct meta_piece){ ph->offset, ph->offset + ph->filesz, true };
	}
	qsort(p, k, sizeof(*p), piece_cmp);
	*n = k;
	return p;
}

/* [at, at+len) of the file is zero padding: short and all zero bytes. */
static int zero_gap(struct boot_ctx *c, const struct kfile *f, uint64_t at, uint64_t len)
{
	if (len > META_GAP_MAX)
		return 0;
	uint8_t buf[META_GAP_MAX];
	int r = kfile_read(c, f, at, buf, (size_t)len);
	if (r)
		return r;
	for (uint64_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

/* Whether a PT_LOAD holds only the ELF header, the program header table
 * and notes: its file bytes are covered by those (and by zero padding
 * between them), it has no bss and is neither executable nor writable.
 * Returns 1 and names what it holds in *holds, 0 when it holds anything
 * else, or a negative errno when the file cannot be read. */
static int meta_only(struct boot_ctx *c, const struct kfile *f, const struct meta_piece *p,
		     unsigned n, const struct elf_phdr *ph, const char **holds)
{
	if (ph->filesz == 0 || ph->filesz != ph->memsz || (ph->flags & (ELF_PF_X | ELF_PF_W)))
		return 0;
	const uint64_t end = ph->offset + ph->filesz; /* checked by elf_parse */
	bool headers = false, notes = false;
	uint64_t at = ph->offset;
	for (unsigned i = 0; i < n && at < end; i++) {
		if (p[i].end <= at)
			continue;
		if (p[i].start > at) {
			uint64_t to = min_u64(p[i].start, end);
			int r = zero_gap(c, f, at, to - at);
			if (r <= 0)
				return r;
			at = to;
			if (at == end)
				break;
		}
		if (p[i].note)
			notes = true;
		else
			headers = true;
		at = p[i].end;
	}
	if (at < end) {
		int r = zero_gap(c, f, at, end - at);
		if (r <= 0)
			return r;
	}
	if (!headers && !notes)
		return 0;
	*holds = headers && notes ? "the ELF headers and notes"
		 : headers	  ? "the ELF and program headers"
				  : "notes";
	return 1;
}

int elf_load(struct boot_ctx *c, const struct kfile *f, struct elf_image *elf, uint64_t *end)
{
	char what[48], where[160];
	unsigned nload = 0, npieces = 0;
	uint64_t hi = 0;
	struct meta_piece *pieces = NULL; /* made when first needed */
	int r = 0;
	for (unsigned i = 0; i < elf->phnum && !r; i++) {
		struct elf_phdr *ph = &elf->ph[i];
		ph->skipped = false;
		if (ph->type != ELF_PT_LOAD || ph->memsz == 0)
			continue;
		snprintf(what, sizeof(what), "ELF segment %u", i);
		const char *off_ram = boot_not_ram(c, ph->paddr, ph->memsz, where, sizeof(where));
		if (off_ram) {
			const char *holds = NULL;
			if (!pieces && !(pieces = meta_pieces(elf, &npieces))) {
				r = boot_fail(c, ENOMEM, "%s: out of memory", f->path);
				break;
			}
			int m = meta_only(c, f, pieces, npieces, ph, &holds);
			if (m < 0) {
				r = m;
				break;
			}
			if (m) {
				ph->skipped = true;
				boot_inform(c,
					    "ELF segment %u at 0x%llx-0x%llx skipped: it holds only "
					    "%s and lies %s",
					    i, (unsigned long long)ph->paddr,
					    (unsigned long long)(ph->paddr + ph->memsz - 1), holds,
					    off_ram);
				continue;
			}
		}
		r = boot_claim_image(c, what, ph->paddr, ph->memsz);
		if (r)
			break;
		nload++;
		hi = max_u64(hi, ph->paddr + ph->memsz);
	}
	free(pieces);
	if (r)
		return r;
	if (nload == 0)
		return boot_fail(c, ENOEXEC, "%s: the ELF file has no loadable segments", f->path);
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type != ELF_PT_LOAD || ph->memsz == 0 || ph->skipped)
			continue;
		r = kfile_load(c, f, ph->offset, ph->filesz, ph->paddr, ph->memsz);
		if (r)
			return r;
		boot_inform(c, "ELF segment %u at 0x%llx-0x%llx (%llu bytes from file offset 0x%llx)",
			    i, (unsigned long long)ph->paddr,
			    (unsigned long long)(ph->paddr + ph->memsz - 1),
			    (unsigned long long)ph->filesz, (unsigned long long)ph->offset);
	}
	*end = hi;
	return 0;
}

bool elf_paddr_loaded(const struct elf_image *elf, uint64_t gpa)
{
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type == ELF_PT_LOAD && !ph->skipped && gpa >= ph->paddr &&
		    gpa - ph->paddr < ph->memsz)
			return true;
	}
	return false;
}

uint64_t elf_vaddr_to_paddr(const struct elf_image *elf, uint64_t vaddr)
{
	for (unsigned i = 0; i < elf->phnum; i++) {
		const struct elf_phdr *ph = &elf->ph[i];
		if (ph->type == ELF_PT_LOAD && !ph->skipped && vaddr >= ph->vaddr &&
		    vaddr - ph->vaddr < ph->memsz)
			return ph->paddr + (vaddr - ph->vaddr);
	}
	return vaddr;
}
