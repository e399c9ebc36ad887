/* Fuzz target for install images' boot configuration (src/loader/isocfg.c):
 * isolinux/syslinux files, GRUB's grub.cfg made absolute, and path
 * normalization; all of it text from an ISO image a user downloaded.
 * INCLUDE reads the input itself again (so includes nest to the limit).
 * Nothing may crash, hang or read out of bounds; every error says why,
 * and every path handed out is absolute, without "." or ".." components.
 * (The ISO 9660 container itself is libarchive's to parse.)
 *
 * With clang: build/tests/fuzz/fuzz_iso tests/fuzz/corpus/iso
 * With any compiler, fuzz_iso_replay runs the corpus (a unit test). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/iso.h"

static const uint8_t *in;
static size_t in_len;

static int read_self(void *opaque, const char *path, char **buf, size_t *len)
{
	(void)opaque;
	(void)path;
	*buf = malloc(in_len + 1);
	if (!*buf)
		return -ENOMEM;
	memcpy(*buf, in, in_len);
	(*buf)[in_len] = 0;
	*len = in_len;
	return 0;
}

static void check_path(const char *p)
{
	if (p[0] != '/' || strstr(p, "/./") || strstr(p, "/../") || strstr(p, "//"))
		abort();
	size_t n = strlen(p);
	if (n >= ISO_PATH_MAX || (n > 1 && p[n - 1] == '/'))
		abort();
	if ((n >= 2 && !strcmp(p + n - 2, "/.")) || (n >= 3 && !strcmp(p + n - 3, "/..")))
		abort();
}

static void check(int r, const char *err, const struct iso_boot *b)
{
	if (r && !err[0])
		abort(); /* an error always says why */
	if (r)
		return;
	check_path(b->kernel);
	if (b->ninitrd > ISO_INITRD_MAX || strlen(b->cmdline) >= ISO_CMDLINE_MAX)
		abort();
	for (unsigned i = 0; i < b->ninitrd; i++)
		check_path(b->initrd[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iso_boot b;
	char err[512];
	in = data;
	in_len = size;

	err[0] = 0;
	int r = iso_syslinux_entry((const char *)data, size, "/isolinux/isolinux.cfg", read_self,
				   NULL, &b, err, sizeof(err));
	check(r, err, &b);
	err[0] = 0;
	r = iso_grub_entry((const char *)data, size, "/boot/grub/grub.cfg", &b, err, sizeof(err));
	check(r, err, &b);

	char path[ISO_PATH_MAX + 1], out[ISO_PATH_MAX];
	size_t n = size < ISO_PATH_MAX ? size : ISO_PATH_MAX;
	memcpy(path, data, n);
	path[n] = 0;
	if (!iso_path_join("/isolinux", path, out, sizeof(out)))
		check_path(out);
	return 0;
}
