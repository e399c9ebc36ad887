#include "mem/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int map_ram(struct guest_mem *gm, uint64_t size, int fd, bool shared)
{
	memset(gm, 0, sizeof(*gm));
	if (size < GUEST_MEM_MIN || (size & 0xFFF))
		return -EINVAL;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return -errno;
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
			return -EINVAL;
	}
	/* NORESERVE: only pages the guest touches cost the host anything. */
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE | MAP_NORESERVE) |
		    (fd < 0 ? MAP_ANONYMOUS : 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Core dumps and child processes (helpers, the teardown process) never
	 * need guest RAM. */
	madvise(p, size, MADV_DONTDUMP);
	madvise(p, size, MADV_DONTFORK);
	/* Huge pages where the host allows them (anonymous THP "always" or
	 * "madvise"; a memfd's when shmem_enabled is "advise"): one fault and
	 * one nested-page-table entry per 2 MiB instead of 512, which is most
	 * of what a booting guest's first touches of its RAM cost. QEMU asks
	 * the same for its RAM. */
	madvise(p, size, MADV_HUGEPAGE);
	gm->host = p;
	gm->size = size;
	gm->low_size = size < GUEST_LOWMEM_LIMIT ? size : GUEST_LOWMEM_LIMIT;
	gm->high_size = size - gm->low_size;
	return 0;
}

int guest_mem_create(struct guest_mem *gm, uint64_t size)
{
	return map_ram(gm, size, -1, false);
}

int guest_mem_create_from_fd(struct guest_mem *gm, uint64_t size, int fd, bool shared)
{
	if (fd < 0)
		return -EBADF;
	return map_ram(gm, size, fd, shared);
}

/* Copy the data parts of src (holes stay holes: untouched memfd pages
 * cost nothing) into the mapping. */
static int copy_in(struct guest_mem *gm, int src)
{
	off_t off = 0, end = (off_t)gm->size;
	while (off < end) {
		off_t data = lseek(src, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		if (data >= end)
			return 0;
		off_t hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (off_t o = data; o < hole;) {
			ssize_t r = pread(src, gm->host + o, (size_t)(hole - o), o);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			o += r;
		}
		off = hole;
	}
	return 0;
}

int guest_mem_create_shared(struct guest_mem *gm, uint64_t size, int src_fd)
{
	memset(gm, 0, sizeof(*gm));
	if (size < GUEST_MEM_MIN || (size & 0xFFF))
		return -EINVAL;
	int fd = memfd_create("khyve-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = map_ram(gm, size, fd, true))) {
		close(fd);
		return r;
	}
	gm->shared = true;
	gm->fd = fd;
	if (src_fd >= 0 && (r = copy_in(gm, src_fd))) {
		guest_mem_destroy(gm);
		return r;
	}
	return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	if (gm->shared)
		close(gm->fd);
	memset(gm, 0, sizeof(*gm));
}

int guest_mem_regions(const struct guest_mem *gm, struct guest_mem_region out[2])
{
	int n = 0, fd = gm->shared ? gm->fd : -1;
	out[n++] = (struct guest_mem_region){ 0, gm->low_size, gm->host, fd, 0 };
	if (gm->high_size)
		out[n++] = (struct guest_mem_region){ GUEST_HIGHMEM_BASE, gm->high_size,
						      gm->host + gm->low_size, fd, gm->low_size };
	return n;
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	uint64_t end = gpa + len;
	if (end <= gm->low_size)
		return gm->host + gpa;
	if (gpa >= GUEST_HIGHMEM_BASE && end - GUEST_HIGHMEM_BASE <= gm->high_size)
		return gm->host + gm->low_size + (gpa - GUEST_HIGHMEM_BASE);
	return NULL;
}

bool guest_mem_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(gm, gpa, len) != NULL;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	if (len == 0)
		return 0;
	const void *p = guest_mem_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	if (len == 0)
		return 0;
	void *p = guest_mem_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_fill(const struct guest_mem *gm, uint64_t gpa, int byte, size_t len)
{
	if (len == 0)
		return 0;
	void *p = guest_mem_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memset(p, byte, len);
	return 0;
}

int guest_mem_read_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t *out)
{
	uint8_t b[4];
	if (guest_mem_read(gm, gpa, b, 4)) {
		*out = 0;
		return -EFAULT;
	}
	*out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

int guest_mem_write_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t value)
{
	uint8_t b[4] = { (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
			 (uint8_t)(value >> 24) };
	return guest_mem_write(gm, gpa, b, 4);
}

int guest_mem_write_u64(const struct guest_mem *gm, uint64_t gpa, uint64_t value)
{
	int r = guest_mem_write_u32(gm, gpa, (uint32_t)value);
	return r ? r : guest_mem_write_u32(gm, gpa + 4, (uint32_t)(value >> 32));
}

int guest_mem_e820(const struct guest_mem *gm, struct e820_entry *out)
{
	int n = 0;
	out[n++] = (struct e820_entry){ 0, GUEST_EBDA_BASE, E820_RAM };
	out[n++] = (struct e820_entry){ GUEST_EBDA_BASE, 0xA0000 - GUEST_EBDA_BASE, E820_RESERVED };
	out[n++] = (struct e820_entry){ GUEST_BIOS_AREA_BASE,
					GUEST_BIOS_AREA_END - GUEST_BIOS_AREA_BASE, E820_RESERVED };
	if (gm->low_size > GUEST_BIOS_AREA_END)
		out[n++] = (struct e820_entry){ GUEST_BIOS_AREA_END,
						gm->low_size - GUEST_BIOS_AREA_END, E820_RAM };
	for (unsigned i = 0; i < gm->nr_reserved; i++)
		out[n++] = (struct e820_entry){ gm->reserved[i].addr, gm->reserved[i].size,
						E820_RESERVED };
	if (gm->high_size)
		out[n++] = (struct e820_entry){ GUEST_HIGHMEM_BASE, gm->high_size, E820_RAM };
	return n;
}

int guest_mem_reserve(struct guest_mem *gm, uint64_t addr, uint64_t size)
{
	if (size == 0 || addr < gm->low_size || addr + size < addr || addr + size > GUEST_HIGHMEM_BASE)
		return -EINVAL;
	if (gm->nr_reserved == sizeof(gm->reserved) / sizeof(gm->reserved[0]))
		return -ENOSPC;
	/* Kept sorted by address, as the e820 map is. */
	unsigned i = gm->nr_reserved++;
	for (; i > 0 && gm->reserved[i - 1].addr > addr; i--)
		gm->reserved[i] = gm->reserved[i - 1];
	gm->reserved[i].addr = addr;
	gm->reserved[i].size = size;
	return 0;
}

uint64_t guest_mem_resident_bytes(const struct guest_mem *gm)
{
	size_t pages = gm->size / 4096;
	unsigned char *vec = malloc(pages);
	if (!vec || mincore(gm->host, gm->size, vec) < 0) {
		free(vec);
		return 0;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n * 4096;
}
