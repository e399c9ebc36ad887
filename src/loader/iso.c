/* Install images through libarchive (loader/iso.h). libarchive reads an
 * image as a stream of entries, so every lookup walks it from the start:
 * cheap for the handful of files a boot needs, and it keeps no state
 * between lookups that a hostile image could make inconsistent. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "loader/iso.h"

struct iso {
	char *path;        /* an image file, or */
	const void *data;  /* bytes in memory */
	size_t len;
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static struct archive *iso_begin(struct iso *iso, char *err, size_t errlen)
{
	struct archive *a = archive_read_new();
	if (!a) {
		fail(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	/* ISO 9660 only (with Rock Ridge and Joliet names): no other format
	 * and no decompression filter gets to parse the bytes. */
	archive_read_support_format_iso9660(a);
	int r = iso->path ? archive_read_open_filename(a, iso->path, 64 << 10)
			  : archive_read_open_memory(a, iso->data, iso->len);
	if (r != ARCHIVE_OK) {
		fail(err, errlen, -EINVAL, "%s: not an ISO 9660 image (%s)",
		     iso->path ? iso->path : "image",
		     archive_error_string(a) ? archive_error_string(a) : "cannot be read");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Walks to the entry whose normalized path matches path (case-insensitive,
 * as isolinux reads a plain ISO 9660 image): 0 with the entry current, or
 * -ENOENT / -EINVAL. */
static int iso_seek(struct archive *a, const char *image, const char *path,
		    struct archive_entry **ent, char *err, size_t errlen)
{
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			return fail(err, errlen, -ENOENT, "%s: no %s in the image", image, path);
		if (r < ARCHIVE_WARN)
			return fail(err, errlen, -EINVAL, "%s: %s", image,
				    archive_error_string(a) ? archive_error_string(a)
							    : "not an ISO 9660 image");
		const char *name = archive_entry_pathname(e);
		char norm[ISO_PATH_MAX];
		/* A name that is not a usable path is nobody's file. */
		if (!name || iso_path_join("/", name, norm, sizeof(norm)))
			continue;
		if (strcasecmp(norm, path))
			continue;
		*ent = e;
		return 0;
	}
}

static int iso_check(struct iso *iso, char *err, size_t errlen)
{
	struct archive *a = iso_begin(iso, err, errlen);
	if (!a)
		return -EINVAL;
	struct archive_entry *e;
	int r = archive_read_next_header(a, &e);
	int ret = 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF)
		ret = fail(err, errlen, -EINVAL, "%s: not an ISO 9660 image (%s)",
			   iso->path ? iso->path : "image",
			   archive_error_string(a) ? archive_error_string(a) : "unreadable");
	archive_read_free(a);
	return ret;
}

int iso_open(const char *path, struct iso **out, char *err, size_t errlen)
{
	if (access(path, R_OK))
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	struct iso *iso = calloc(1, sizeof(*iso));
	if (!iso || !(iso->path = strdup(path))) {
		free(iso);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	int r = iso_check(iso, err, errlen);
	if (r) {
		iso_close(iso);
		return r;
	}
	*out = iso;
	return 0;
}

int iso_open_memory(const void *data, size_t len, struct iso **out, char *err, size_t errlen)
{
	struct iso *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return fail(err, errlen, -ENOMEM, "out of memory");
	iso->data = data;
	iso->len = len;
	int r = iso_check(iso, err, errlen);
	if (r) {
		iso_close(iso);
		return r;
	}
	*out = iso;
	return 0;
}

void iso_close(struct iso *iso)
{
	if (!iso)
		return;
	free(iso->path);
	free(iso);
}

/* Opens the walk at path's entry, checking it is a regular file no larger
 * than max (as far as the header says; the reads check again). */
static struct archive *iso_at(struct iso *iso, const char *path, uint64_t max, char *err,
			      size_t errlen, int *ret)
{
	const char *image = iso->path ? iso->path : "image";
	struct archive *a = iso_begin(iso, err, errlen);
	if (!a) {
		*ret = -EINVAL;
		return NULL;
	}
	struct archive_entry *e;
	*ret = iso_seek(a, image, path, &e, err, errlen);
	if (!*ret && archive_entry_filetype(e) != AE_IFREG)
		*ret = fail(err, errlen, -EINVAL, "%s: %s is not a regular file", image, path);
	if (!*ret && archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > max)
		*ret = fail(err, errlen, -EFBIG, "%s: %s is larger than %llu bytes", image, path,
			    (unsigned long long)max);
	if (*ret) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int iso_read(struct iso *iso, const char *path, size_t max, char **buf, size_t *len, char *err,
	     size_t errlen)
{
	int r;
	struct archive *a = iso_at(iso, path, max, err, errlen, &r);
	if (!a)
		return r;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	r = 0;
	while (b) {
		if (n == cap) {
			if (cap > max) {
				r = fail(err, errlen, -EFBIG, "%s is larger than %zu bytes", path, max);
				break;
			}
			char *nb = realloc(b, 2 * cap + 1);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
		la_ssize_t got = archive_read_data(a, b + n, cap - n);
		if (got < 0) {
			r = fail(err, errlen, -EIO, "%s: %s", path, archive_error_string(a));
			break;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > max) {
			r = fail(err, errlen, -EFBIG, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	archive_read_free(a);
	if (!b)
		return fail(err, errlen, -ENOMEM, "out of memory");
	if (r) {
		free(b);
		return r;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

int iso_extract(struct iso *iso, const char *path, uint64_t max, int fd, uint64_t *size,
		char *err, size_t errlen)
{
	int r;
	struct archive *a = iso_at(iso, path, max, err, errlen, &r);
	if (!a)
		return r;
	static char chunk[64 << 10];
	uint64_t n = 0;
	for (;;) {
		la_ssize_t got = archive_read_data(a, chunk, sizeof(chunk));
		if (got < 0) {
			r = fail(err, errlen, -EIO, "%s: %s", path, archive_error_string(a));
			break;
		}
		if (got == 0)
			break;
		n += (uint64_t)got;
		if (n > max) {
			r = fail(err, errlen, -EFBIG, "%s is larger than %llu bytes", path,
				 (unsigned long long)max);
			break;
		}
		for (la_ssize_t off = 0; off < got;) {
			ssize_t w = write(fd, chunk + off, (size_t)(got - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				r = fail(err, errlen, -errno, "writing %s: %s", path, strerror(errno));
				break;
			}
			off += w;
		}
		if (r)
			break;
	}
	archive_read_free(a);
	if (r) {
		if (ftruncate(fd, 0))
			(void)0; /* the error reported is the first one */
		return r;
	}
	if (size)
		*size = n;
	return 0;
}

/* INCLUDE reads, bounded in total for one configuration. */
struct inc_ctx {
	struct iso *iso;
	size_t total;
};

static int read_include(void *opaque, const char *path, char **buf, size_t *len)
{
	struct inc_ctx *c = opaque;
	char err[256];
	int r = iso_read(c->iso, path, ISO_CFG_MAX, buf, len, err, sizeof(err));
	if (r)
		return r;
	c->total += *len;
	if (c->total > ISO_CFG_TOTAL_MAX) {
		free(*buf);
		*buf = NULL;
		return -EFBIG;
	}
	return 0;
}

static bool iso_is_file(struct iso *iso, const char *path)
{
	char err[256];
	int r;
	struct archive *a = iso_at(iso, path, ISO_FILE_MAX, err, sizeof(err), &r);
	if (a)
		archive_read_free(a);
	return a != NULL;
}

int iso_find_boot(struct iso *iso, struct iso_boot *b, char *err, size_t errlen)
{
	static const char *const syslinux[] = {
		"/isolinux/isolinux.cfg", "/boot/isolinux/isolinux.cfg", "/isolinux.cfg",
		"/syslinux/syslinux.cfg", "/boot/syslinux/syslinux.cfg", "/syslinux.cfg",
	};
	static const char *const grub[] = { "/boot/grub/grub.cfg", "/EFI/BOOT/grub.cfg" };
	const char *image = iso->path ? iso->path : "image";
	char why[512] = "";
	for (unsigned i = 0; i < 8; i++) {
		bool is_grub = i >= 6;
		const char *cfg = is_grub ? grub[i - 6] : syslinux[i];
		char *text = NULL;
		size_t len = 0;
		char e[512];
		int r = iso_read(iso, cfg, ISO_CFG_MAX, &text, &len, e, sizeof(e));
		if (r == -ENOENT)
			continue;
		if (!r) {
			struct inc_ctx c = { .iso = iso, .total = len };
			r = is_grub ? iso_grub_entry(text, len, cfg, b, e, sizeof(e))
				    : iso_syslinux_entry(text, len, cfg, read_include, &c, b, e,
							 sizeof(e));
			free(text);
		}
		if (!r && !iso_is_file(iso, b->kernel)) {
			snprintf(e, sizeof(e), "%s names kernel %.300s, which is not in the image", cfg,
				 b->kernel);
			r = -ENOENT;
		}
		for (unsigned k = 0; !r && k < b->ninitrd; k++)
			if (!iso_is_file(iso, b->initrd[k])) {
				snprintf(e, sizeof(e), "%s names initrd %.300s, which is not in the image",
					 cfg, b->initrd[k]);
				r = -ENOENT;
			}
		if (!r)
			return 0;
		if (!why[0])
			snprintf(why, sizeof(why), "%s", e);
	}
	memset(b, 0, sizeof(*b));
	if (why[0])
		return fail(err, errlen, -ENOENT, "%s: %s", image, why);
	return fail(err, errlen, -ENOENT,
		    "%s: no isolinux/syslinux or GRUB configuration (isolinux/isolinux.cfg, "
		    "boot/grub/grub.cfg, ...)",
		    image);
}
