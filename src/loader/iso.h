/* Install images: an ISO 9660 image (as a Linux distribution ships it)
 * read through libarchive, and the default entry of its boot
 * configuration, as vmrun(8) boots it when a disk has no boot record.
 *
 * Where the boot configuration is looked for, in this order (the first
 * one that names a bootable entry wins):
 *   isolinux/syslinux: /isolinux/isolinux.cfg, /boot/isolinux/isolinux.cfg,
 *     /isolinux.cfg, /syslinux/syslinux.cfg, /boot/syslinux/syslinux.cfg,
 *     /syslinux.cfg; with INCLUDE (and MENU INCLUDE) followed, 8 deep;
 *   GRUB 2: /boot/grub/grub.cfg, /EFI/BOOT/grub.cfg (loader/grubcfg.h).
 *
 * The syslinux entry chosen: the LABEL marked MENU DEFAULT, else the
 * LABEL that DEFAULT names, else a DEFAULT that names no LABEL (and no
 * .c32 module) is itself "kernel args", else the first LABEL with a
 * kernel. KERNEL and LINUX name the kernel (an entry whose kernel is a
 * .c32/.com/.bin module is not one), INITRD and APPEND's initrd= name
 * the initrds (comma-separated), APPEND the rest of the command line
 * ("APPEND -" is none). Keywords are case-insensitive; a relative path
 * is relative to the configuration file's directory.
 *
 * Every path handed out is absolute, normalized (no ".", "..", or empty
 * components; ".." that would climb above the root is refused) and
 * bounded. Files are matched case-insensitively, as isolinux does on a
 * plain ISO 9660 image. Everything returns 0 or a negative errno with a
 * one-line reason in err. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define ISO_PATH_MAX 512
#define ISO_CMDLINE_MAX 2048
#define ISO_INITRD_MAX 8
#define ISO_LABEL_MAX 128
/* Bounds on what is read out of an image: a configuration file, all the
 * configuration text of one search (includes summed), and a kernel or
 * initrd. */
#define ISO_CFG_MAX (256u << 10)
#define ISO_CFG_TOTAL_MAX (1u << 20)
#define ISO_FILE_MAX (1ull << 30)
#define ISO_INCLUDE_DEPTH 8

struct iso_boot {
	char config[ISO_PATH_MAX]; /* the file the entry came from */
	char label[ISO_LABEL_MAX];  /* the LABEL, or GRUB's title */
	char kernel[ISO_PATH_MAX];
	unsigned ninitrd;
	char initrd[ISO_INITRD_MAX][ISO_PATH_MAX];
	char cmdline[ISO_CMDLINE_MAX];
};

/* The configuration reader: given the text of a configuration file and
 * the file's absolute path, fills b. read_include (may be NULL) reads an
 * INCLUDEd file by absolute path into a heap buffer (NUL-terminated, freed
 * by the caller), returning 0 or -errno. */
typedef int (*iso_read_fn)(void *opaque, const char *path, char **buf, size_t *len);
int iso_syslinux_entry(const char *text, size_t len, const char *cfgpath,
		       iso_read_fn read_include, void *opaque, struct iso_boot *b, char *err,
		       size_t errlen);
/* GRUB 2's default entry (through loader/grubcfg.c), paths made absolute
 * and checked as above. */
int iso_grub_entry(const char *text, size_t len, const char *cfgpath, struct iso_boot *b,
		   char *err, size_t errlen);
/* Normalizes path (relative ones against dir, which is absolute) into out:
 * -EINVAL for one that climbs above the root, contains a NUL-free control
 * character, or does not fit. */
int iso_path_join(const char *dir, const char *path, char *out, size_t outlen);

/* An image, opened through libarchive (an image file, or bytes in memory
 * that must outlive it). */
struct iso;
int iso_open(const char *path, struct iso **out, char *err, size_t errlen);
int iso_open_memory(const void *data, size_t len, struct iso **out, char *err, size_t errlen);
void iso_close(struct iso *iso);
/* A regular file of the image (absolute path) into a NUL-terminated heap
 * buffer: -ENOENT when absent, -EFBIG when larger than max. */
int iso_read(struct iso *iso, const char *path, size_t max, char **buf, size_t *len, char *err,
	     size_t errlen);
/* A regular file of the image written to fd (at most max bytes; -EFBIG
 * otherwise, with fd truncated back to empty). */
int iso_extract(struct iso *iso, const char *path, uint64_t max, int fd, uint64_t *size,
		char *err, size_t errlen);
/* The default entry of the image's boot configuration (see above):
 * -ENOENT when no configuration names one. The kernel and initrds are
 * checked to be regular files of the image. */
int iso_find_boot(struct iso *iso, struct iso_boot *b, char *err, size_t errlen);
