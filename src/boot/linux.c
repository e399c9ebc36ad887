/* Linux bzImage, entered through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): the protected-mode kernel at 1 MiB,
 * boot_params (the "zero page") at BOOT_INFO_GPA, the command line at
 * BOOT_CMDLINE_GPA (both below 1 MiB, where the kernel never reaches), the
 * initrds concatenated high in low RAM, and the vCPU
 * in long mode at load address + 0x200 with %rsi = &boot_params. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/loaders.h"

/* Offsets in the image and in boot_params (the setup header sits at the
 * same offsets in both). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_HEADER 0x1f1
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SETUP_HEADER_LIMIT 0x290 /* edd_mbr_sig_buffer follows */

#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_HEADER 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_SETUP_DATA 0x250
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260

#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

#define KERNEL_LOAD_ADDR BOOT_1M
#define ENTRY64_OFFSET 0x200

bool linux_detect(const uint8_t *head, size_t len)
{
	return len >= HDR_HEADER + 4 && get_le32(head + HDR_HEADER) == HDRS_MAGIC;
}

static uint64_t mib(uint64_t v)
{
	return (v + (1u << 20) - 1) >> 20;
}

/* Opens every initrd, then places their concatenation (each padded to 4
 * bytes) as high as the kernel allows and reads them in. */
static int load_initrds(struct boot_ctx *c, uint64_t kernel_end, uint64_t initrd_max,
			uint64_t *gpa_out, uint64_t *size_out)
{
	const struct boot_request *req = c->req;
	unsigned n = req->nr_modules;
	struct kfile *files = calloc(n, sizeof(*files));
	if (!files)
		return boot_fail(c, ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++)
		files[i].fd = -1;
	int r = 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < n && !r; i++) {
		if (!req->modules[i].path) {
			r = boot_fail(c, EINVAL, "initrd %u has no file name", i + 1);
			break;
		}
		r = kfile_open(c, &files[i], req->modules[i].path);
		if (!r && (files[i].size > BOOT_4G || (total += align_up(files[i].size, 4)) > BOOT_4G))
			r = boot_fail(c, EFBIG, "%s: the initrd is too large (more than 4 GiB in all)",
				      files[i].path);
	}
	if (!r) {
		/* initrd_max is the highest address the initrd may occupy */
		uint64_t limit = min_u64(min_u64(initrd_max + 1, c->gm->low_size), BOOT_4G);
		uint64_t floor = align_up(kernel_end, BOOT_PAGE);
		uint64_t start = total <= limit ? align_down(limit - total, BOOT_PAGE) : 0;
		if (total > limit || start < floor) {
			r = boot_fail(c, ENOMEM,
				      "%s: the initrd (%llu MiB) does not fit in guest RAM (%llu MiB) "
				      "between the kernel (which needs up to 0x%llx) and 0x%llx",
				      files[0].path, (unsigned long long)mib(total),
				      (unsigned long long)(c->gm->size >> 20),
				      (unsigned long long)floor, (unsigned long long)limit);
		} else {
			uint64_t at = start;
			r = boot_claim_image(c, "the initrd", start, total);
			for (unsigned i = 0; i < n && !r; i++) {
				uint64_t padded = align_up(files[i].size, 4);
				r = kfile_load(c, &files[i], 0, files[i].size, at, padded);
				at += padded;
			}
			*gpa_out = start;
			*size_out = total;
			if (!r && total)
				boot_inform(c, "initrd at 0x%llx-0x%llx (%u file%s)",
					    (unsigned long long)start,
					    (unsigned long long)(start + total - 1), n, n == 1 ? "" : "s");
		}
	}
	for (unsigned i = 0; i < n; i++)
		kfile_close(&files[i]);
	free(files);
	return r;
}

int linux_load(struct boot_ctx *c)
{
	const char *path = c->kernel.path;
	const uint8_t *h = c->head;
	const uint64_t fsize = c->kernel.size;
	const struct guest_mem *gm = c->gm;

	if (!linux_detect(h, c->headlen))
		return boot_fail(c, ENOEXEC, "%s: not a bzImage (no \"HdrS\" signature at 0x202)",
				 path);
	unsigned setup_sects = h[HDR_SETUP_SECTS];
	uint64_t setup_size = ((uint64_t)(setup_sects ? setup_sects : 4) + 1) * 512;
	if (fsize <= setup_size)
		return boot_fail(c, ENOEXEC,
				 "%s: setup_sects says %u sectors but the file is only %llu bytes",
				 path, setup_sects, (unsigned long long)fsize);
	/* setup_size >= 2560 > every header field read below, and headlen is
	 * min(file size, 8192) > setup_size or 8192: the header is in head[]. */
	uint16_t version = get_le16(h + HDR_VERSION);
	if (version < 0x206)
		return boot_fail(c, ENOEXEC,
				 "%s: boot protocol %u.%02u is too old (need 2.06 for the 64-bit entry)",
				 path, version >> 8, version & 0xff);
	if (get_le16(h + HDR_BOOT_FLAG) != 0xAA55)
		return boot_fail(c, ENOEXEC, "%s: bzImage without the boot flag 0xAA55 at 0x1fe",
				 path);
	if (!(h[HDR_LOADFLAGS] & LOADED_HIGH))
		return boot_fail(c, ENOEXEC,
				 "%s: not a bzImage: LOADED_HIGH is not set in loadflags (a zImage?)",
				 path);
	if (version >= 0x20c && !(get_le16(h + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return boot_fail(c, ENOEXEC,
				 "%s: the kernel has no 64-bit entry point (XLF_KERNEL_64 is not set in "
				 "xloadflags; a 32-bit kernel?)",
				 path);
	uint64_t payload = fsize - setup_size;
	uint64_t syssize = (uint64_t)get_le32(h + HDR_SYSSIZE) * 16;
	if (syssize > align_up(payload, 16))
		return boot_fail(c, ENOEXEC,
				 "%s: syssize says the kernel is %llu bytes but the file holds only %llu "
				 "after the %llu-byte setup",
				 path, (unsigned long long)syssize, (unsigned long long)payload,
				 (unsigned long long)setup_size);

	/* Command line. */
	const char *cmdline = c->req->cmdline ? c->req->cmdline : "";
	size_t cmdlen = strlen(cmdline);
	uint32_t cmdline_size = get_le32(h + HDR_CMDLINE_SIZE);
	if (cmdlen > cmdline_size)
		return boot_fail(c, E2BIG,
				 "%s: the command line is %zu bytes but this kernel takes at most %u "
				 "(cmdline_size)",
				 path, cmdlen, cmdline_size);
	if (cmdlen >= BOOT_CMDLINE_MAX)
		return boot_fail(c, E2BIG,
				 "%s: the command line is %zu bytes; the loader has room for %llu",
				 path, cmdlen, (unsigned long long)BOOT_CMDLINE_MAX - 1);

	/* Where the kernel decompresses (arch/x86/boot/compressed/head_64.S): a
	 * relocatable kernel at the load address rounded up to
	 * kernel_alignment but not below LOAD_PHYSICAL_ADDR (= pref_address,
	 * 2.10+), any other one at pref_address. It needs init_size bytes
	 * from there. */
	uint64_t load = KERNEL_LOAD_ADDR, runtime = load;
	uint64_t pref = load;
	if (version >= 0x20a) {
		pref = get_le64(h + HDR_PREF_ADDRESS);
		if (pref < KERNEL_LOAD_ADDR || pref >= BOOT_4G)
			return boot_fail(c, ENOEXEC,
					 "%s: pref_address 0x%llx is not between 1 MiB and 4 GiB", path,
					 (unsigned long long)pref);
	}
	bool relocatable = version >= 0x205 && h[HDR_RELOCATABLE];
	if (relocatable) {
		uint32_t kalign = get_le32(h + HDR_KERNEL_ALIGNMENT);
		if (kalign == 0 || (kalign & (kalign - 1)) || kalign > (1u << 30))
			return boot_fail(c, ENOEXEC, "%s: kernel_alignment 0x%x is not a power of two "
					 "up to 1 GiB", path, kalign);
		runtime = max_u64(align_up(load, kalign), pref);
	} else {
		runtime = pref;
	}
	uint64_t init_size = version >= 0x20a ? get_le32(h + HDR_INIT_SIZE) : 0;
	uint64_t kernel_end = max_u64(load + payload, runtime + init_size); /* all < 2^34 */
	if (kernel_end > gm->low_size)
		return boot_fail(c, ENOMEM,
				 "%s: the kernel needs RAM up to 0x%llx (%llu MiB; init_size 0x%llx at "
				 "0x%llx) but the guest has only %llu MiB",
				 path, (unsigned long long)kernel_end, (unsigned long long)mib(kernel_end),
				 (unsigned long long)init_size, (unsigned long long)runtime,
				 (unsigned long long)(gm->size >> 20));

	/* The kernel may use all of [load, kernel_end) while it decompresses. */
	int r = boot_claim_image(c, "the kernel", load, kernel_end - load);
	if (!r)
		r = kfile_load(c, &c->kernel, setup_size, payload, load, payload);
	if (r)
		return r;
	boot_inform(c, "kernel at 0x%llx-0x%llx (%llu bytes; it runs at 0x%llx and needs RAM up "
		    "to 0x%llx)",
		    (unsigned long long)load, (unsigned long long)(load + payload - 1),
		    (unsigned long long)payload, (unsigned long long)runtime,
		    (unsigned long long)kernel_end);

	uint64_t initrd_gpa = 0, initrd_size = 0;
	if (c->req->nr_modules) {
		uint64_t initrd_max = version >= 0x203 ? get_le32(h + HDR_INITRD_ADDR_MAX) : 0x37ffffff;
		r = load_initrds(c, kernel_end, initrd_max, &initrd_gpa, &initrd_size);
		if (r)
			return r;
	}

	/* boot_params and the command line */
	uint64_t bp_gpa, cmdline_gpa;
	r = boot_place_cpu_data(c, true);
	if (!r)
		r = boot_alloc(c, "boot_params", BOOT_INFO_SIZE, BOOT_PAGE, BOOT_INFO_GPA, &bp_gpa);
	if (!r)
		r = boot_alloc(c, "the command line", cmdlen + 1, 16, BOOT_CMDLINE_GPA, &cmdline_gpa);
	if (r)
		return r;
	uint8_t *bp = calloc(1, BOOT_INFO_SIZE);
	if (!bp)
		return boot_fail(c, ENOMEM, "out of memory");
	size_t hdr_end = (size_t)HDR_JUMP + 2 + h[HDR_JUMP + 1];
	if (hdr_end > BP_SETUP_HEADER_LIMIT)
		hdr_end = BP_SETUP_HEADER_LIMIT;
	memcpy(bp + BP_SETUP_HEADER, h + BP_SETUP_HEADER, hdr_end - BP_SETUP_HEADER);
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put_le16(bp + HDR_HEAP_END_PTR, 0xfe00);
	put_le32(bp + HDR_CMD_LINE_PTR, (uint32_t)cmdline_gpa);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, 0);
	put_le32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put_le32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	put_le64(bp + HDR_SETUP_DATA, 0); /* a pointer from the file means nothing here */
	put_le64(bp + BP_ACPI_RSDP_ADDR, c->req->rsdp_gpa);
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(gm, map);
	if (n > BP_E820_MAX)
		n = BP_E820_MAX;
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;
		put_le64(e, map[i].addr);
		put_le64(e + 8, map[i].size);
		put_le32(e + 16, map[i].type);
	}
	r = guest_mem_write(gm, bp_gpa, bp, BOOT_INFO_SIZE);
	free(bp);
	if (!r)
		r = guest_mem_write(gm, cmdline_gpa, cmdline, cmdlen + 1);
	if (r)
		return boot_fail(c, EFAULT, "%s: cannot write boot_params", path);

	r = boot_enter_long64(c, load + ENTRY64_OFFSET);
	if (r)
		return r;
	c->entry->rsi = bp_gpa;
	c->entry->format_name = "bzImage";
	return 0;
}
