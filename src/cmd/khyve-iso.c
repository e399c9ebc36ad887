/* khyve-iso: the default boot entry of an install image (an ISO 9660
 * image's isolinux/syslinux or GRUB configuration; loader/iso.h), and its
 * kernel and initrds copied out. vmrun(8) uses it to boot an install
 * image through khyveload's prompt; see khyve-iso(8).
 *
 * Output, one "key value" per line:
 *   config /isolinux/isolinux.cfg
 *   label install
 *   kernel /install/vmlinuz
 *   initrd /install/initrd.gz        (one line per initrd)
 *   cmdline vga=788 --- quiet        (possibly empty)
 * With -x DIR the kernel is written to DIR/kernel and the initrds to
 * DIR/initrd1, DIR/initrd2, ... (new files; DIR must exist). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/iso.h"

#define EXIT_USAGE 4

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "khyve-iso: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return EXIT_USAGE;
}

static int extract(struct iso *iso, int dirfd, const char *dir, const char *path,
		   const char *name)
{
	char err[1024];
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return usage_error("-x %s: %s: %s", dir, name, strerror(errno));
	int r = iso_extract(iso, path, ISO_FILE_MAX, fd, NULL, err, sizeof(err));
	if (close(fd) && !r)
		return usage_error("-x %s: %s: %s", dir, name, strerror(errno));
	if (r) {
		unlinkat(dirfd, name, 0);
		return usage_error("%s", err);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int opt;
	while ((opt = getopt(argc, argv, ":hx:")) != -1) {
		switch (opt) {
		case 'x':
			dir = optarg;
			break;
		case 'h':
			printf("usage: khyve-iso [-x dir] image.iso\n");
			return 0;
		case ':':
			return usage_error("-%c needs an argument", optopt);
		default:
			return usage_error("unknown option -%c (usage: khyve-iso [-x dir] image.iso)",
					   optopt);
		}
	}
	if (optind + 1 != argc)
		return usage_error("usage: khyve-iso [-x dir] image.iso");
	const char *image = argv[optind];
	char err[1024];
	struct iso *iso;
	if (iso_open(image, &iso, err, sizeof(err)))
		return usage_error("%s", err);
	static struct iso_boot b;
	int status = 0;
	if (iso_find_boot(iso, &b, err, sizeof(err))) {
		status = usage_error("%s", err);
		goto out;
	}
	if (dir) {
		int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0) {
			status = usage_error("-x %s: %s", dir, strerror(errno));
			goto out;
		}
		status = extract(iso, dirfd, dir, b.kernel, "kernel");
		unsigned done = 0;
		for (; !status && done < b.ninitrd; done++) {
			char name[32];
			snprintf(name, sizeof(name), "initrd%u", done + 1);
			status = extract(iso, dirfd, dir, b.initrd[done], name);
		}
		/* On failure, nothing this run wrote stays (extract() removed
		 * the file it failed on). */
		for (unsigned i = 0; status && i + 1 < done; i++) {
			char name[32];
			snprintf(name, sizeof(name), "initrd%u", i + 1);
			unlinkat(dirfd, name, 0);
		}
		if (status && done)
			unlinkat(dirfd, "kernel", 0);
		close(dirfd);
		if (status)
			goto out;
	}
	printf("config %s\nlabel %s\nkernel %s\n", b.config, b.label, b.kernel);
	for (unsigned i = 0; i < b.ninitrd; i++)
		printf("initrd %s\n", b.initrd[i]);
	printf("cmdline %s\n", b.cmdline);
	if (fflush(stdout))
		status = usage_error("writing the entry: %s", strerror(errno));
out:
	iso_close(iso);
	return status;
}
