/* Install images (loader/iso.h): the isolinux/syslinux reader, GRUB's
 * default entry made absolute, path checks, and whole ISO 9660 images made
 * here with libarchive's writer and read back through iso_open_memory. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/iso.h"
#include "unit.h"

static struct iso_boot b;
static char err[512];

static int sl(const char *text, const char *cfg)
{
	err[0] = 0;
	return iso_syslinux_entry(text, strlen(text), cfg, NULL, NULL, &b, err, sizeof(err));
}

static void test_paths(void)
{
	char out[ISO_PATH_MAX];
	CHECK_EQ(iso_path_join("/isolinux", "vmlinuz", out, sizeof(out)), 0);
	CHECK(!strcmp(out, "/isolinux/vmlinuz"));
	CHECK_EQ(iso_path_join("/isolinux", "/install/./vmlinuz", out, sizeof(out)), 0);
	CHECK(!strcmp(out, "/install/vmlinuz"));
	CHECK_EQ(iso_path_join("/a/b", "../c//d/", out, sizeof(out)), 0);
	CHECK(!strcmp(out, "/a/c/d"));
	CHECK_EQ(iso_path_join("/", ".", out, sizeof(out)), 0);
	CHECK(!strcmp(out, "/"));
	/* Climbing above the root, control characters, too long: refused. */
	CHECK_EQ(iso_path_join("/isolinux", "../../etc/passwd", out, sizeof(out)), -EINVAL);
	CHECK_EQ(iso_path_join("/", "/..", out, sizeof(out)), -EINVAL);
	CHECK_EQ(iso_path_join("/", "a\nb", out, sizeof(out)), -EINVAL);
	char longp[ISO_PATH_MAX + 10];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	CHECK_EQ(iso_path_join("/", longp, out, sizeof(out)), -EINVAL);
	CHECK_EQ(iso_path_join("/", "x", out, 1), -EINVAL);
}

static void test_syslinux(void)
{
	/* DEFAULT names a label; KERNEL relative to the file's directory;
	 * initrd= out of APPEND into the initrds. */
	CHECK_EQ(sl("default install\nlabel rescue\n kernel vmlinuz\n append rescue\n"
		    "label install\n kernel vmlinuz\n append initrd=initrd.gz,extra.img quiet  ro\n",
		    "/isolinux/isolinux.cfg"),
		 0);
	CHECK(!strcmp(b.label, "install"));
	CHECK(!strcmp(b.kernel, "/isolinux/vmlinuz"));
	CHECK_EQ(b.ninitrd, 2);
	CHECK(!strcmp(b.initrd[0], "/isolinux/initrd.gz"));
	CHECK(!strcmp(b.initrd[1], "/isolinux/extra.img"));
	CHECK(!strcmp(b.cmdline, "quiet ro"));
	CHECK(!strcmp(b.config, "/isolinux/isolinux.cfg"));

	/* MENU DEFAULT wins over DEFAULT; keywords in any case; LINUX and
	 * INITRD lines; tabs and CRLF. */
	CHECK_EQ(sl("DEFAULT a\r\nLABEL a\r\n\tLINUX /a/k\r\nLABEL b\r\n\tMenu Default\r\n"
		    "\tLinux /b/k\r\n\tInitrd /b/i\r\n\tAppend x=1\r\n",
		    "/syslinux.cfg"),
		 0);
	CHECK(!strcmp(b.label, "b"));
	CHECK(!strcmp(b.kernel, "/b/k"));
	CHECK_EQ(b.ninitrd, 1);
	CHECK(!strcmp(b.initrd[0], "/b/i"));
	CHECK(!strcmp(b.cmdline, "x=1"));

	/* A DEFAULT that names a .c32 module (the menu) is the UI: the first
	 * bootable label then; a label whose kernel is a module or that is
	 * LOCALBOOT/COM32 is skipped. "APPEND -" is nothing. */
	CHECK_EQ(sl("default vesamenu.c32\nlabel hd\n localboot 0\nlabel mem\n kernel memtest.bin\n"
		    "label hdt\n com32 hdt.c32\nlabel live\n kernel /live/vmlinuz\n append -\n",
		    "/isolinux/isolinux.cfg"),
		 0);
	CHECK(!strcmp(b.label, "live"));
	CHECK(!strcmp(b.cmdline, ""));

	/* DEFAULT naming no label is "kernel args"; a global APPEND applies
	 * to it, and to labels without their own. */
	CHECK_EQ(sl("append root=/dev/ram0\ndefault linux\n", "/isolinux/isolinux.cfg"), 0);
	CHECK(!strcmp(b.kernel, "/isolinux/linux"));
	CHECK(!strcmp(b.cmdline, "root=/dev/ram0"));
	CHECK_EQ(sl("default /k/vmlinuz console=ttyS0 initrd=/k/i\n", "/isolinux/isolinux.cfg"), 0);
	CHECK(!strcmp(b.kernel, "/k/vmlinuz"));
	CHECK(!strcmp(b.cmdline, "console=ttyS0"));
	CHECK_EQ(b.ninitrd, 1);
	CHECK_EQ(sl("append g=1\nlabel x\n kernel k\n", "/isolinux/isolinux.cfg"), 0);
	CHECK(!strcmp(b.cmdline, "g=1"));

	/* TEXT HELP ... ENDTEXT is prose; comments are comments. */
	CHECK_EQ(sl("label a\n text help\n kernel /wrong\n endtext\n # kernel /wrong2\n kernel /right\n",
		    "/isolinux.cfg"),
		 0);
	CHECK(!strcmp(b.kernel, "/right"));

	/* Nothing to boot, or paths that climb out: errors that say why. */
	CHECK_EQ(sl("label hd\n localboot 0\n", "/isolinux/isolinux.cfg"), -ENOENT);
	CHECK(strstr(err, "no Linux kernel") != NULL);
	CHECK_EQ(sl("", "/isolinux/isolinux.cfg"), -ENOENT);
	CHECK_EQ(sl("label a\n kernel ../../../k\n", "/isolinux/isolinux.cfg"), -EINVAL);
	CHECK(strstr(err, "not a usable path") != NULL);
	CHECK_EQ(sl("label a\n kernel k\n append initrd=../../../i\n", "/isolinux/isolinux.cfg"),
		 -EINVAL);
	CHECK_EQ(sl("label a\n kernel k\n append initrd=1,2,3,4,5,6,7,8,9\n", "/isolinux.cfg"),
		 -E2BIG);
	/* A line longer than the command line is cut, not overflowed. */
	size_t n = 3 * ISO_CMDLINE_MAX;
	char *big = malloc(n + 64);
	strcpy(big, "label a\n kernel k\n append ");
	size_t o = strlen(big);
	memset(big + o, 'x', n);
	big[o + n] = 0;
	CHECK_EQ(sl(big, "/isolinux.cfg"), 0);
	CHECK(strlen(b.cmdline) < ISO_CMDLINE_MAX);
	free(big);
}

/* INCLUDE through the callback: files by absolute path. */
static const char *inc_files[][2] = {
	{ "/isolinux/menu.cfg", "include /isolinux/txt.cfg\nlabel other\n kernel o\n" },
	{ "/isolinux/txt.cfg", "label install\n menu default\n kernel /install/vmlinuz\n" },
	{ "/isolinux/loop.cfg", "include loop.cfg\n" },
};

static int inc_calls;
static int read_inc(void *opaque, const char *path, char **buf, size_t *len)
{
	(void)opaque;
	inc_calls++;
	for (size_t i = 0; i < sizeof(inc_files) / sizeof(inc_files[0]); i++)
		if (!strcmp(path, inc_files[i][0])) {
			*buf = strdup(inc_files[i][1]);
			*len = strlen(*buf);
			return 0;
		}
	return -ENOENT;
}

static void test_include(void)
{
	const char *top = "ui vesamenu.c32\ninclude menu.cfg\ninclude missing.cfg\n";
	CHECK_EQ(iso_syslinux_entry(top, strlen(top), "/isolinux/isolinux.cfg", read_inc, NULL, &b,
				    err, sizeof(err)),
		 0);
	CHECK(!strcmp(b.label, "install"));
	CHECK(!strcmp(b.kernel, "/install/vmlinuz"));
	/* An include loop ends at the depth limit, with a reason. */
	inc_calls = 0;
	const char *loop = "include loop.cfg\nlabel a\n kernel k\n";
	CHECK_EQ(iso_syslinux_entry(loop, strlen(loop), "/isolinux/isolinux.cfg", read_inc, NULL,
				    &b, err, sizeof(err)),
		 -ELOOP);
	CHECK(strstr(err, "deep") != NULL);
	CHECK_EQ(inc_calls, ISO_INCLUDE_DEPTH);
}

static void test_grub(void)
{
	const char *g = "set default=1\nmenuentry 'a' {\n linux /a/k\n}\n"
			"menuentry 'Install' {\n linux /install/vmlinuz priority=low quiet\n"
			" initrd /install/initrd.gz /install/fw.cpio\n}\n";
	CHECK_EQ(iso_grub_entry(g, strlen(g), "/boot/grub/grub.cfg", &b, err, sizeof(err)), 0);
	CHECK(!strcmp(b.label, "Install"));
	CHECK(!strcmp(b.kernel, "/install/vmlinuz"));
	CHECK(!strcmp(b.cmdline, "priority=low quiet"));
	CHECK_EQ(b.ninitrd, 2);
	CHECK(!strcmp(b.initrd[1], "/install/fw.cpio"));
	const char *bad = "menuentry 'x' {\n linux /../../k\n}\n";
	CHECK_EQ(iso_grub_entry(bad, strlen(bad), "/boot/grub/grub.cfg", &b, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(iso_grub_entry("", 0, "/boot/grub/grub.cfg", &b, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/boot/grub/grub.cfg") != NULL);
}

/* An ISO 9660 image in memory, from (path, contents) pairs. */
struct file {
	const char *path, *data;
	size_t len; /* 0: strlen(data) */
};

static void *make_iso(const struct file *files, size_t n, size_t *len)
{
	size_t cap = 4 << 20;
	char *buf = malloc(cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_iso9660(a);
	archive_write_set_bytes_in_last_block(a, 1);
	size_t used = 0;
	if (archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK) {
		fprintf(stderr, "archive_write_open_memory: %s\n", archive_error_string(a));
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		size_t l = files[i].len ? files[i].len : strlen(files[i].data);
		archive_entry_set_pathname(e, files[i].path);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)l);
		CHECK_EQ(archive_write_header(a, e), ARCHIVE_OK);
		CHECK_EQ(archive_write_data(a, files[i].data, l), (la_ssize_t)l);
		archive_entry_free(e);
	}
	CHECK_EQ(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*len = used;
	return buf;
}

static void test_image(void)
{
	static char kernel[100000];
	for (size_t i = 0; i < sizeof(kernel); i++)
		kernel[i] = (char)(i * 7 + 1);
	const struct file files[] = {
		{ "isolinux/isolinux.cfg", "default vesamenu.c32\ninclude menu.cfg\n", 0 },
		{ "isolinux/menu.cfg",
		  "label install\n menu default\n kernel /install.amd/vmlinuz\n"
		  " append vga=788 initrd=/install.amd/initrd.gz --- quiet\n",
		  0 },
		{ "isolinux/vesamenu.c32", "module", 0 },
		{ "install.amd/vmlinuz", kernel, sizeof(kernel) },
		{ "install.amd/initrd.gz", "INITRD", 0 },
		{ "boot/grub/grub.cfg", "menuentry 'x' {\n linux /other\n}\n", 0 },
	};
	size_t len;
	void *img = make_iso(files, sizeof(files) / sizeof(files[0]), &len);
	struct iso *iso;
	CHECK_EQ(iso_open_memory(img, len, &iso, err, sizeof(err)), 0);
	CHECK_EQ(iso_find_boot(iso, &b, err, sizeof(err)), 0);
	/* Lookups leave nothing allocated behind (libarchive's one-time
	 * set-up happened in the first). */
	size_t before = unit_heap_bytes();
	for (int i = 0; i < 3; i++)
		CHECK_EQ(iso_find_boot(iso, &b, err, sizeof(err)), 0);
	if (unit_heap_bytes() > before + 1024)
		fprintf(stderr, "heap grew by %zu\n", unit_heap_bytes() - before);
	CHECK(unit_heap_bytes() <= before + 1024);
	CHECK(!strcmp(b.config, "/isolinux/isolinux.cfg")); /* isolinux before GRUB */
	CHECK(!strcmp(b.kernel, "/install.amd/vmlinuz"));
	CHECK(!strcmp(b.cmdline, "vga=788 --- quiet"));
	CHECK_EQ(b.ninitrd, 1);

	char *text;
	size_t tlen;
	CHECK_EQ(iso_read(iso, "/install.amd/initrd.gz", 100, &text, &tlen, err, sizeof(err)), 0);
	CHECK(tlen == 6 && !strcmp(text, "INITRD"));
	free(text);
	/* Names are matched case-insensitively (plain ISO 9660 is upper case). */
	CHECK_EQ(iso_read(iso, "/ISOLINUX/MENU.CFG", 4096, &text, &tlen, err, sizeof(err)), 0);
	free(text);
	/* Bounded: a file larger than max is refused, not truncated. */
	CHECK_EQ(iso_read(iso, "/install.amd/vmlinuz", 1000, &text, &tlen, err, sizeof(err)),
		 -EFBIG);
	CHECK_EQ(iso_read(iso, "/nope", 1000, &text, &tlen, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nope") != NULL);
	/* A directory is not a file. */
	CHECK_EQ(iso_read(iso, "/isolinux", 1000, &text, &tlen, err, sizeof(err)), -EINVAL);

	/* Extraction: the same bytes, or nothing at all past max. */
	FILE *f = tmpfile();
	uint64_t size = 0;
	CHECK_EQ(iso_extract(iso, "/install.amd/vmlinuz", ISO_FILE_MAX, fileno(f), &size, err,
			     sizeof(err)),
		 0);
	CHECK_EQ(size, sizeof(kernel));
	static char back[sizeof(kernel)];
	CHECK_EQ(pread(fileno(f), back, sizeof(back), 0), (ssize_t)sizeof(back));
	CHECK(!memcmp(back, kernel, sizeof(kernel)));
	CHECK_EQ(ftruncate(fileno(f), 0), 0);
	CHECK_EQ(lseek(fileno(f), 0, SEEK_SET), 0);
	CHECK_EQ(iso_extract(iso, "/install.amd/vmlinuz", 4096, fileno(f), &size, err, sizeof(err)),
		 -EFBIG);
	CHECK_EQ(lseek(fileno(f), 0, SEEK_END), 0);
	fclose(f);
	iso_close(iso);
	free(img);

	/* GRUB when there is no isolinux; a configuration naming a kernel
	 * that is not there is an error that says so. */
	const struct file g[] = {
		{ "boot/grub/grub.cfg", "menuentry 'x' {\n linux /k console=ttyS0\n}\n", 0 },
		{ "k", "kernel", 0 },
	};
	img = make_iso(g, 2, &len);
	CHECK_EQ(iso_open_memory(img, len, &iso, err, sizeof(err)), 0);
	CHECK_EQ(iso_find_boot(iso, &b, err, sizeof(err)), 0);
	CHECK(!strcmp(b.config, "/boot/grub/grub.cfg"));
	CHECK(!strcmp(b.cmdline, "console=ttyS0"));
	iso_close(iso);
	free(img);
	const struct file m[] = { { "isolinux/isolinux.cfg", "label a\n kernel /gone\n", 0 } };
	img = make_iso(m, 1, &len);
	CHECK_EQ(iso_open_memory(img, len, &iso, err, sizeof(err)), 0);
	CHECK_EQ(iso_find_boot(iso, &b, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/gone") != NULL);
	iso_close(iso);
	free(img);
	const struct file none[] = { { "README", "hello", 0 } };
	img = make_iso(none, 1, &len);
	CHECK_EQ(iso_open_memory(img, len, &iso, err, sizeof(err)), 0);
	CHECK_EQ(iso_find_boot(iso, &b, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no isolinux") != NULL);
	iso_close(iso);
	free(img);

	/* Not an image at all. */
	static const char junk[4096] = "not an ISO";
	CHECK_EQ(iso_open_memory(junk, sizeof(junk), &iso, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "ISO 9660") != NULL);
	CHECK(iso_open("/nonexistent.iso", &iso, err, sizeof(err)) < 0);
}

int main(void)
{
	test_paths();
	test_syslinux();
	test_include();
	test_grub();
	test_image();
	return UNIT_RESULT();
}
