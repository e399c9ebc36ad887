/* host0: confinement and device paths (loader/dev.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/dev.h"
#include "unit.h"

static char dir[256];

static void mk(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static void ln(const char *target, const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	CHECK_EQ(symlink(target, p), 0);
}

static int rd(struct ldevs *d, const char *spec, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int r = ldev_read(d, spec, "host0", 4096, &buf, &len, err, errlen);
	if (!r)
		free(buf);
	return r;
}

int main(void)
{
	char err[512], dev[LDEV_NAME_MAX], path[256];
	snprintf(dir, sizeof(dir), "/tmp/test_loader_dev.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/boot", dir);
	mkdir(sub, 0755);
	mk("boot/kernel", "K");
	mk("outside-not", "x");
	ln("kernel", "boot/rel");          /* relative, inside: fine */
	ln("/etc/hostname", "boot/abs");   /* absolute: out */
	ln("../..", "boot/up");            /* relative, out */
	ln("/proc/self/root", "boot/magic");

	struct ldevs d;
	ldevs_init(&d);
	CHECK_EQ(ldevs_set_host(&d, "relative", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "absolute") != NULL);
	CHECK(ldevs_set_host(&d, "/nonexistent/dir", err, sizeof(err)) < 0);
	CHECK_EQ(ldevs_set_host(&d, dir, err, sizeof(err)), 0);

	CHECK_EQ(rd(&d, "host0:/boot/kernel", err, sizeof(err)), 0);
	CHECK_EQ(rd(&d, "/boot/kernel", err, sizeof(err)), 0);
	CHECK_EQ(rd(&d, "host0:boot/kernel", err, sizeof(err)), 0);
	CHECK_EQ(rd(&d, "host0:/boot/rel", err, sizeof(err)), 0);
	CHECK_EQ(rd(&d, "host0:/boot/../boot/kernel", err, sizeof(err)), 0);
	const char *const out[] = { "host0:/../etc/hostname", "host0:/boot/../../etc/hostname",
				    "host0:/boot/abs", "host0:/boot/up/etc/hostname",
				    "host0:/boot/magic/etc/hostname", "host0:../x" };
	for (unsigned i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		int r = rd(&d, out[i], err, sizeof(err));
		CHECK(r == -EXDEV || r == -ELOOP);
		CHECK(strstr(err, "leaves the host directory") != NULL);
	}
	CHECK_EQ(rd(&d, "host0:/boot", err, sizeof(err)), -EISDIR);
	CHECK_EQ(rd(&d, "host0:/none", err, sizeof(err)), -ENOENT);
	CHECK(ldev_exists(&d, "host0:/boot/kernel", NULL));
	CHECK(!ldev_exists(&d, "host0:/boot/abs", NULL));

	/* Device names. */
	CHECK_EQ(ldev_split("disk0p1:/boot/x", NULL, dev, sizeof(dev), path, sizeof(path), err,
			    sizeof(err)), 0);
	CHECK(!strcmp(dev, "disk0p1") && !strcmp(path, "/boot/x"));
	CHECK_EQ(ldev_split("/x", "disk1:", dev, sizeof(dev), path, sizeof(path), err, sizeof(err)),
		 0);
	CHECK(!strcmp(dev, "disk1") && !strcmp(path, "/x"));
	CHECK_EQ(ldev_split("host0:", NULL, dev, sizeof(dev), path, sizeof(path), err, sizeof(err)),
		 0);
	CHECK(!strcmp(path, "/"));
	CHECK_EQ(ldev_split("/x", NULL, dev, sizeof(dev), path, sizeof(path), err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(ldev_split(":x", NULL, dev, sizeof(dev), path, sizeof(path), err, sizeof(err)),
		 -EINVAL);
	CHECK(rd(&d, "disk0:/x", err, sizeof(err)) == -ENODEV);
	CHECK(rd(&d, "disk0p0:/x", err, sizeof(err)) == -ENODEV);

	/* A disk that is neither ext nor partitioned. */
	char junk[300];
	snprintf(junk, sizeof(junk), "%s/junk.img", dir);
	int fd = open(junk, O_CREAT | O_WRONLY, 0600);
	CHECK(ftruncate(fd, 1 << 20) == 0);
	close(fd);
	CHECK_EQ(ldevs_add_disk(&d, junk, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "neither") != NULL);
	ldevs_free(&d);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ(system(cmd), 0);
	return UNIT_RESULT();
}
