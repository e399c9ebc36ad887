/* boot_load_kernel(): open the kernel, decide its format, and hand it to
 * the format's loader; plus the file, range and module helpers the
 * loaders share. */
#include "boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/elf.h"
#include "boot/loaders.h"

int boot_fail(struct boot_ctx *c, int errnum, const char *fmt, ...)
{
	if (c->err && c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

int kfile_open(struct boot_ctx *c, struct kfile *f, const char *path)
{
	f->path = path;
	f->fd = -1;
	f->size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return boot_fail(c, e, "%s: %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return boot_fail(c, e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return boot_fail(c, S_ISDIR(st.st_mode) ? EISDIR : EINVAL,
				 "%s: not a regular file", path);
	}
	f->fd = fd;
	f->size = (uint64_t)st.st_size;
	return 0;
}

void kfile_close(struct kfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int kfile_pread_all(struct boot_ctx *c, const struct kfile *f, uint64_t off, uint8_t *p,
			   uint64_t len)
{
	while (len) {
		size_t chunk = len > (64u << 20) ? (64u << 20) : (size_t)len;
		ssize_t n = pread(f->fd, p, chunk, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return boot_fail(c, e, "%s: %s", f->path, strerror(e));
		}
		if (n == 0)
			return boot_fail(c, EIO,
					 "%s: unexpected end of file at offset 0x%llx (did the file "
					 "change while loading?)",
					 f->path, (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int kfile_read(struct boot_ctx *c, const struct kfile *f, uint64_t off, void *buf, size_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(off, (uint64_t)len, &end) || end > f->size)
		return boot_fail(c, EINVAL, "%s: read of %zu bytes at 0x%llx is past the end of the file",
				 f->path, len, (unsigned long long)off);
	return kfile_pread_all(c, f, off, buf, len);
}

int kfile_load(struct boot_ctx *c, const struct kfile *f, uint64_t off, uint64_t filesz,
	       uint64_t gpa, uint64_t memsz)
{
	uint64_t fend;
	if (filesz > memsz || __builtin_add_overflow(off, filesz, &fend) || fend > f->size)
		return boot_fail(c, EINVAL, "%s: %llu bytes at 0x%llx are past the end of the file",
				 f->path, (unsigned long long)filesz, (unsigned long long)off);
	if (memsz == 0)
		return 0;
	uint8_t *p = guest_mem_ptr(c->gm, gpa, memsz);
	if (!p)
		return boot_fail(c, EFAULT, "%s: 0x%llx-0x%llx is not in guest RAM", f->path,
				 (unsigned long long)gpa, (unsigned long long)(gpa + memsz - 1));
	int r = kfile_pread_all(c, f, off, p, filesz);
	if (r)
		return r;
	memset(p + filesz, 0, (size_t)(memsz - filesz));
	return 0;
}

int boot_load_modules(struct boot_ctx *c, uint64_t start, struct boot_loaded_module *out)
{
	const struct boot_request *req = c->req;
	uint64_t limit = min_u64(c->gm->low_size, BOOT_4G);
	uint64_t next = align_up(max_u64(start, BOOT_1M), BOOT_PAGE);
	for (unsigned i = 0; i < req->nr_modules; i++) {
		const struct boot_module *m = &req->modules[i];
		if (!m->path)
			return boot_fail(c, EINVAL, "module %u has no file name", i + 1);
		struct kfile f;
		int r = kfile_open(c, &f, m->path);
		if (r)
			return r;
		if (next > limit || f.size > limit - next) {
			boot_fail(c, ENOMEM,
				  "%s: module of %llu KiB does not fit in guest RAM (%llu MiB) above "
				  "the kernel and the modules before it (0x%llx)",
				  m->path, (unsigned long long)((f.size + 1023) >> 10),
				  (unsigned long long)(c->gm->size >> 20), (unsigned long long)next);
			kfile_close(&f);
			return -ENOMEM;
		}
		char what[48];
		snprintf(what, sizeof(what), "module %u", i + 1);
		r = boot_claim_image(c, what, next, f.size);
		if (!r)
			r = kfile_load(c, &f, 0, f.size, next, f.size);
		kfile_close(&f);
		if (r)
			return r;
		if (f.size)
			boot_inform(c, "module %u (%s) at 0x%llx-0x%llx", i + 1, m->path,
				    (unsigned long long)next, (unsigned long long)(next + f.size - 1));
		out[i].gpa = next;
		out[i].size = f.size;
		next = align_up(next + f.size, BOOT_PAGE);
	}
	return 0;
}

static const char *format_word(enum boot_format f)
{
	switch (f) {
	case BOOT_FORMAT_LINUX: return "bzImage";
	case BOOT_FORMAT_PVH: return "PVH kernel";
	case BOOT_FORMAT_MULTIBOOT: return "Multiboot image";
	case BOOT_FORMAT_FREEBSD: return "FreeBSD kernel";
	default: return "kernel";
	}
}

static int mb_not_found(struct boot_ctx *c, const struct mb_header *mh)
{
	if (mh->bad_checksum)
		return boot_fail(c, ENOEXEC,
				 "%s: not a Multiboot image: the header at 0x%x has a bad checksum",
				 c->kernel.path, mh->offset);
	return boot_fail(c, ENOEXEC,
			 "%s: not a Multiboot image: no Multiboot header in the first %u bytes",
			 c->kernel.path, BOOT_HEAD_LEN);
}

static int load(struct boot_ctx *c)
{
	const struct boot_request *req = c->req;
	const char *path = c->kernel.path;
	int r = kfile_open(c, &c->kernel, path);
	if (r)
		return r;
	c->headlen = (size_t)min_u64(c->kernel.size, BOOT_HEAD_LEN);
	if (c->headlen == 0)
		return boot_fail(c, ENOEXEC, "%s: the file is empty", path);
	r = kfile_read(c, &c->kernel, 0, c->head, c->headlen);
	if (r)
		return r;

	bool is_elf = elf_detect(c->head, c->headlen);
	bool is_bz = linux_detect(c->head, c->headlen);
	struct mb_header mh;
	multiboot_find(c->head, c->headlen, &mh);
	bool kludge = mh.found && (mh.flags & MB_FLAG_AOUT_KLUDGE);
	enum boot_format fmt = req->format;

	if (fmt == BOOT_FORMAT_LINUX || (fmt == BOOT_FORMAT_AUTO && is_bz && !is_elf)) {
		if (!is_bz)
			return boot_fail(c, ENOEXEC, "%s: not a bzImage (no \"HdrS\" signature at 0x202%s)",
					 path, is_elf ? "; it is an ELF file" : "");
		return linux_load(c);
	}
	if (fmt == BOOT_FORMAT_MULTIBOOT && !mh.found)
		return mb_not_found(c, &mh);
	if (!is_elf) {
		if (fmt == BOOT_FORMAT_PVH)
			return boot_fail(c, ENOEXEC, "%s: not a PVH kernel: not an ELF file", path);
		if (fmt == BOOT_FORMAT_FREEBSD)
			return boot_fail(c, ENOEXEC, "%s: not a FreeBSD kernel: not an ELF file", path);
		if (kludge)
			return multiboot_load(c, &mh, NULL);
		if (mh.found)
			return boot_fail(c, ENOEXEC,
					 "%s: the Multiboot header at 0x%x has no address fields "
					 "(flag 16) and the file is not ELF",
					 path, mh.offset);
		return boot_fail(c, ENOEXEC, "%s: not a bzImage, ELF/PVH or Multiboot image", path);
	}

	/* An ELF file. With the a.out kludge Multiboot ignores the ELF
	 * headers (as GRUB does), so a broken ELF does not matter then. */
	struct elf_image elf;
	r = elf_parse(c, &c->kernel, &elf);
	if (r) {
		if (kludge && fmt != BOOT_FORMAT_PVH && fmt != BOOT_FORMAT_FREEBSD)
			return multiboot_load(c, &mh, NULL);
		return r;
	}
	uint8_t desc[8];
	size_t desc_len = 0;
	int has_pvh = 0;
	if (fmt != BOOT_FORMAT_MULTIBOOT && fmt != BOOT_FORMAT_FREEBSD) {
		has_pvh = elf_find_note(c, &c->kernel, &elf, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, desc,
					sizeof(desc), &desc_len);
		if (has_pvh < 0) {
			elf_free(&elf);
			return has_pvh;
		}
	}
	/* FreeBSD kernels: by PVH when they have the note and nothing PVH
	 * cannot carry (modules, a kenv) was asked for; else as bhyveload
	 * loads them. */
	if (fmt == BOOT_FORMAT_AUTO || fmt == BOOT_FORMAT_FREEBSD) {
		int fbsd = fmt == BOOT_FORMAT_FREEBSD ? 1 : freebsd_detect(c, &elf);
		if (fbsd < 0) {
			elf_free(&elf);
			return fbsd;
		}
		if (fbsd && (fmt == BOOT_FORMAT_FREEBSD || !has_pvh || req->nr_modules ||
			     req->nr_env)) {
			r = freebsd_load(c, &elf);
			elf_free(&elf);
			return r;
		}
	}
	if (fmt == BOOT_FORMAT_AUTO) {
		if (has_pvh && (elf.bits == 64 || !mh.found))
			fmt = BOOT_FORMAT_PVH;
		else if (mh.found)
			fmt = BOOT_FORMAT_MULTIBOOT;
		else {
			elf_free(&elf);
			return boot_fail(c, ENOEXEC,
					 "%s: not a bzImage, ELF/PVH or Multiboot image (an ELF%d file "
					 "with neither a PVH entry note nor a Multiboot header)",
					 path, elf.bits);
		}
	}
	if (fmt == BOOT_FORMAT_PVH) {
		if (!has_pvh) {
			elf_free(&elf);
			return boot_fail(c, ENOEXEC,
					 "%s: not a PVH kernel: no XEN_ELFNOTE_PHYS32_ENTRY note", path);
		}
		if (desc_len != 4 && desc_len != 8) {
			elf_free(&elf);
			return boot_fail(c, ENOEXEC,
					 "%s: the PVH entry note has a %zu-byte value (expected 4 or 8)",
					 path, desc_len);
		}
		/* FreeBSD's PVH entry reads its first module as the loader's
		 * metadata (MODINFOMD_MODULEP): a plain module would be taken
		 * for it. */
		if (req->nr_modules && freebsd_detect(c, &elf) == 1) {
			elf_free(&elf);
			return boot_fail(c, EINVAL,
					 "%s: a FreeBSD kernel's PVH entry takes its first module "
					 "for the loader's metadata; modules are loaded as "
					 "bhyveload loads them (format auto or freebsd)",
					 path);
		}
		uint64_t e = desc_len == 8 ? get_le64(desc) : get_le32(desc);
		if (e >= BOOT_4G) {
			elf_free(&elf);
			return boot_fail(c, ENOEXEC, "%s: the PVH entry 0x%llx is above 4 GiB", path,
					 (unsigned long long)e);
		}
		r = pvh_load(c, &elf, (uint32_t)e);
	} else {
		r = multiboot_load(c, &mh, kludge ? NULL : &elf);
	}
	elf_free(&elf);
	return r;
}

int boot_load_kernel(const struct guest_mem *gm, const struct boot_request *req,
		     struct boot_entry *entry, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	struct boot_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->gm = gm;
	c->req = req;
	c->entry = entry;
	c->err = err;
	c->errlen = errlen;
	c->kernel.fd = -1;
	memset(entry, 0, sizeof(*entry));
	boot_layout_init(c);

	int r;
	if (!req->kernel_path || !*req->kernel_path)
		r = boot_fail(c, EINVAL, "no kernel file given");
	else if (req->nr_modules > BOOT_MAX_MODULES)
		r = boot_fail(c, E2BIG, "%s: too many modules (%u; at most %u)", req->kernel_path,
			      req->nr_modules, BOOT_MAX_MODULES);
	else if (req->nr_modules && !req->modules)
		r = boot_fail(c, EINVAL, "%s: %u modules but no module list", req->kernel_path,
			      req->nr_modules);
	else if ((unsigned)req->format > BOOT_FORMAT_FREEBSD)
		r = boot_fail(c, EINVAL, "%s: unknown kernel format %d", req->kernel_path,
			      (int)req->format);
	else {
		c->kernel.path = req->kernel_path;
		r = load(c);
		/* A kenv only means something to a FreeBSD kernel loaded as
		 * bhyveload loads it (freebsd.c): say so rather than drop it. */
		if (!r && req->nr_env && strcmp(entry->format_name, "FreeBSD ELF"))
			r = boot_fail(c, EINVAL,
				      "%s: a kernel environment (kenv) is only for FreeBSD kernels "
				      "loaded as bhyveload loads them; this one is loaded as a %s",
				      req->kernel_path, entry->format_name);
	}
	kfile_close(&c->kernel);
	if (!r) {
		boot_inform_data(c);
		boot_inform(c, "%s entry at 0x%llx in %s", entry->format_name,
			    (unsigned long long)entry->rip,
			    entry->mode == BOOT_CPU_LONG64 ? "64-bit long mode"
							   : "32-bit protected mode");
	}
	boot_layout_free(c);
	if (r) {
		memset(entry, 0, sizeof(*entry));
		if (err && errlen && !err[0])
			snprintf(err, errlen, "%s: cannot load the %s", req->kernel_path ? req->kernel_path : "kernel",
				 format_word(req->format));
	}
	free(c);
	return r;
}
