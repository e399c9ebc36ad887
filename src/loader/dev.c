/* khyveload's devices: host0: through openat2, disks through libext2fs
 * (see dev.h). */
#include "loader/dev.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

void ldevs_init(struct ldevs *d)
{
	memset(d, 0, sizeof(*d));
	d->host_fd = -1;
}

void ldevs_free(struct ldevs *d)
{
	for (unsigned i = 0; i < d->ndisks; i++) {
		struct ldisk *k = &d->disks[i];
		for (unsigned p = 0; p <= PART_MAX; p++)
			if (k->fs[p])
				ext2fs_close_free((ext2_filsys *)&k->fs[p]);
		if (k->fd >= 0)
			close(k->fd);
		free(k->path);
	}
	if (d->host_fd >= 0)
		close(d->host_fd);
	free(d->host_path);
	ldevs_init(d);
}

int ldevs_set_host(struct ldevs *d, const char *dir, char *err, size_t errlen)
{
	if (dir[0] != '/') {
		snprintf(err, errlen, "%s: the host directory must be an absolute path", dir);
		return -EINVAL;
	}
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir,
			 e == ENOTDIR ? "not a directory" : strerror(e));
		return -e;
	}
	/* openat2 is what keeps paths inside: without it, refuse. */
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int t = (int)syscall(SYS_openat2, fd, ".", &how, sizeof(how));
	if (t < 0) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", dir,
			 e == ENOSYS ? "openat2 is missing (Linux 5.6 or later is needed to keep "
				       "host0: paths inside the directory)"
				     : strerror(e));
		return -e;
	}
	close(t);
	if (d->host_fd >= 0)
		close(d->host_fd);
	free(d->host_path);
	d->host_fd = fd;
	d->host_path = strdup(dir);
	return 0;
}

static int disk_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct ldisk *k = opaque;
	if (off > k->size || len > k->size - off)
		return -EIO;
	ssize_t n = pread(k->fd, buf, len, (off_t)off);
	return n == (ssize_t)len ? 0 : -EIO;
}

int ldevs_add_disk(struct ldevs *d, const char *path, char *err, size_t errlen)
{
	if (d->ndisks == LDEV_MAX_DISKS) {
		snprintf(err, errlen, "%s: at most %d disks", path, LDEV_MAX_DISKS);
		return -E2BIG;
	}
	struct ldisk *k = &d->disks[d->ndisks];
	memset(k, 0, sizeof(*k));
	k->fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (k->fd < 0 || fstat(k->fd, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (k->fd >= 0)
			close(k->fd);
		return -e;
	}
	int r = 0;
	if (S_ISREG(st.st_mode)) {
		k->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(k->fd, 0, SEEK_END);
		k->size = end > 0 ? (uint64_t)end : 0;
	} else {
		snprintf(err, errlen, "%s: not a regular file or a block device", path);
		r = -EINVAL;
	}
	/* The read lock khyve's disk backend respects: a VM writing the
	 * image holds the write lock. */
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	if (!r && fcntl(k->fd, F_OFD_SETLK, &fl) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path,
			 r == -EAGAIN || r == -EACCES ? "in use by a running VM" : strerror(-r));
	}
	if (!r) {
		k->whole_ext = part_is_ext(disk_read, k, 0, k->size);
		if (!k->whole_ext) {
			char why[160] = "";
			r = part_parse(disk_read, k, k->size, &k->parts, why, sizeof(why));
			if (r)
				snprintf(err, errlen, "%s: bad partition table: %s", path, why);
			else if (k->parts.kind == PART_NONE) {
				snprintf(err, errlen,
					 "%s: neither an ext2/3/4 file system nor a partitioned disk",
					 path);
				r = -EINVAL;
			}
		}
	}
	if (r || !(k->path = strdup(path))) {
		close(k->fd);
		if (!r) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
		}
		return r;
	}
	d->ndisks++;
	return 0;
}

/* "disk0", "disk0p2": the disk and the partition slot (0 whole, else
 * index into parts + 1), or -ENODEV. */
static int find_disk(struct ldevs *d, const char *dev, struct ldisk **k, unsigned *slot,
		     char *err, size_t errlen)
{
	unsigned n, p;
	char tail;
	int got = sscanf(dev, "disk%up%u%c", &n, &p, &tail);
	if (got == 1 && n < d->ndisks && snprintf(NULL, 0, "disk%u", n) == (int)strlen(dev)) {
		*k = &d->disks[n];
		*slot = 0;
		if (!(*k)->whole_ext) {
			snprintf(err, errlen, "%s: holds no file system (see lsdev for its partitions)",
				 dev);
			return -ENODEV;
		}
		return 0;
	}
	if (got == 2 && n < d->ndisks) {
		struct ldisk *dk = &d->disks[n];
		for (unsigned i = 0; i < dk->parts.n; i++)
			if (dk->parts.p[i].index == p) {
				*k = dk;
				*slot = i + 1;
				return 0;
			}
	}
	snprintf(err, errlen, "%s: no such device (see lsdev)", dev);
	return -ENODEV;
}

static int fs_get(struct ldisk *k, unsigned slot, bool rw, ext2_filsys *out, const char *dev,
		  char *err, size_t errlen)
{
	if (!rw && k->fs[slot]) {
		*out = k->fs[slot];
		return 0;
	}
	uint64_t off = slot ? k->parts.p[slot - 1].start : 0;
	char name[64], opts[64];
	/* The descriptor we hold and locked, not the path, which may have
	 * changed since. */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", k->fd);
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)off);
	ext2_filsys fs;
	errcode_t e = ext2fs_open2(name, opts, rw ? EXT2_FLAG_RW : 0, 0, 0, unix_io_manager, &fs);
	if (e) {
		snprintf(err, errlen, "%s: not an ext2/3/4 file system (%s)", dev, error_message(e));
		return -EINVAL;
	}
	if (!rw)
		k->fs[slot] = fs;
	*out = fs;
	return 0;
}

int ldev_split(const char *spec, const char *currdev, char *dev, size_t devlen, char *path,
	       size_t pathlen, char *err, size_t errlen)
{
	const char *colon = strchr(spec, ':');
	const char *slash = strchr(spec, '/');
	if (colon && (!slash || colon < slash)) {
		size_t n = (size_t)(colon - spec);
		if (!n || n >= devlen) {
			snprintf(err, errlen, "%s: bad device name", spec);
			return -EINVAL;
		}
		snprintf(dev, devlen, "%.*s", (int)n, spec);
		spec = colon + 1;
	} else {
		if (!currdev || !currdev[0]) {
			snprintf(err, errlen, "%s: no device given and no currdev set", spec);
			return -EINVAL;
		}
		/* currdev may be written "disk0p1:" as FreeBSD's is. */
		size_t n = strcspn(currdev, ":");
		snprintf(dev, devlen, "%.*s", (int)(n < devlen ? n : devlen - 1), currdev);
	}
	if (strlen(spec) >= pathlen) {
		snprintf(err, errlen, "%s: path too long", spec);
		return -ENAMETOOLONG;
	}
	snprintf(path, pathlen, "%s", spec[0] ? spec : "/");
	return 0;
}

/* host0: open path below the directory. */
static int host_open(struct ldevs *d, const char *path, int flags, int *fd, char *err,
		     size_t errlen)
{
	if (d->host_fd < 0) {
		snprintf(err, errlen, "host0: no host directory (give -h DIR)");
		return -ENODEV;
	}
	const char *rel = path;
	while (*rel == '/')
		rel++;
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int r = (int)syscall(SYS_openat2, d->host_fd, rel[0] ? rel : ".", &how, sizeof(how));
	if (r < 0) {
		int e = errno;
		if (e == EXDEV || e == ELOOP)
			snprintf(err, errlen, "host0:%s: leaves the host directory (.. or a symbolic "
					      "link out of it), refused", path);
		else
			snprintf(err, errlen, "host0:%s: %s", path, strerror(e));
		return -e;
	}
	*fd = r;
	return 0;
}

static int ext_lookup(ext2_filsys fs, const char *dev, const char *path, ext2_ino_t *ino,
		      struct ext2_inode *inode, char *err, size_t errlen)
{
	errcode_t e = ext2fs_namei_follow(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino);
	if (!e)
		e = ext2fs_read_inode(fs, *ino, inode);
	if (e) {
		snprintf(err, errlen, "%s:%s: %s", dev, path,
			 e == EXT2_ET_FILE_NOT_FOUND ? "No such file or directory" : error_message(e));
		return e == EXT2_ET_FILE_NOT_FOUND ? -ENOENT : -EIO;
	}
	return 0;
}

static int copy_to_memfd(ext2_filsys fs, ext2_ino_t ino, uint64_t size, const char *dev,
			 const char *path, int *out, char *err, size_t errlen)
{
	int fd = memfd_create("khyveload-file", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -errno;
	}
	ext2_file_t f;
	errcode_t e = ext2fs_file_open(fs, ino, 0, &f);
	if (e) {
		close(fd);
		snprintf(err, errlen, "%s:%s: %s", dev, path, error_message(e));
		return -EIO;
	}
	static char buf[1 << 16];
	uint64_t done = 0;
	int werr = 0;
	while (!e && !werr && done < size) {
		unsigned got = 0;
		e = ext2fs_file_read(f, buf, sizeof(buf), &got);
		if (!e && !got)
			break;
		if (!e && write(fd, buf, got) != (ssize_t)got)
			werr = errno ? errno : EIO;
		done += got;
	}
	ext2fs_file_close(f);
	if (e || werr || done != size) {
		close(fd);
		snprintf(err, errlen, "%s:%s: %s", dev, path,
			 e ? error_message(e) : werr ? strerror(werr) : "short read");
		return -EIO;
	}
	*out = fd;
	return 0;
}

/* Path on disk device dev (disk0:, disk0p1:, ...): its file system, inode
 * number and inode, read-only. 0 or -errno with a reason. */
static int disk_lookup(struct ldevs *d, const char *dev, const char *path, ext2_filsys *fs,
		       ext2_ino_t *ino, struct ext2_inode *inode, char *err, size_t errlen)
{
	struct ldisk *k;
	unsigned slot;
	int r;
	if ((r = find_disk(d, dev, &k, &slot, err, errlen)) ||
	    (r = fs_get(k, slot, false, fs, dev, err, errlen)))
		return r;
	return ext_lookup(*fs, dev, path, ino, inode, err, errlen);
}

int ldev_open(struct ldevs *d, const char *spec, const char *currdev, uint64_t max, int *fd,
	      uint64_t *size, char *err, size_t errlen)
{
	char dev[LDEV_NAME_MAX], path[1024];
	int r = ldev_split(spec, currdev, dev, sizeof(dev), path, sizeof(path), err, errlen);
	if (r)
		return r;
	if (!strcmp(dev, "host0")) {
		int f;
		if ((r = host_open(d, path, O_RDONLY, &f, err, errlen)))
			return r;
		struct stat st;
		if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(f);
			snprintf(err, errlen, "host0:%s: not a regular file", path);
			return -EISDIR;
		}
		if ((uint64_t)st.st_size > max) {
			close(f);
			snprintf(err, errlen, "host0:%s: too large (%lld bytes)", path,
				 (long long)st.st_size);
			return -EFBIG;
		}
		*fd = f;
		*size = (uint64_t)st.st_size;
		return 0;
	}
	ext2_filsys fs;
	ext2_ino_t ino;
	struct ext2_inode inode;
	if ((r = disk_lookup(d, dev, path, &fs, &ino, &inode, err, errlen)))
		return r;
	if (!LINUX_S_ISREG(inode.i_mode)) {
		snprintf(err, errlen, "%s:%s: not a regular file", dev, path);
		return -EISDIR;
	}
	uint64_t sz = EXT2_I_SIZE(&inode);
	if (sz > max) {
		snprintf(err, errlen, "%s:%s: too large (%llu bytes)", dev, path,
			 (unsigned long long)sz);
		return -EFBIG;
	}
	if ((r = copy_to_memfd(fs, ino, sz, dev, path, fd, err, errlen)))
		return r;
	*size = sz;
	return 0;
}

int ldev_read(struct ldevs *d, const char *spec, const char *currdev, size_t max, char **buf,
	      size_t *len, char *err, size_t errlen)
{
	int fd;
	uint64_t size;
	int r = ldev_open(d, spec, currdev, max, &fd, &size, err, errlen);
	if (r)
		return r;
	char *b = malloc(size + 1);
	if (!b) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ssize_t n = pread(fd, b, size, 0);
	close(fd);
	if (n != (ssize_t)size) {
		free(b);
		snprintf(err, errlen, "%s: short read", spec);
		return -EIO;
	}
	b[size] = 0;
	*buf = b;
	*len = size;
	return 0;
}

bool ldev_exists(struct ldevs *d, const char *spec, const char *currdev)
{
	char err[256];
	int fd;
	uint64_t size;
	char dev[LDEV_NAME_MAX], path[1024];
	if (ldev_split(spec, currdev, dev, sizeof(dev), path, sizeof(path), err, sizeof(err)))
		return false;
	if (strcmp(dev, "host0")) {
		struct ldisk *k;
		unsigned slot;
		ext2_filsys fs;
		ext2_ino_t ino;
		struct ext2_inode inode;
		return !find_disk(d, dev, &k, &slot, err, sizeof(err)) &&
		       !fs_get(k, slot, false, &fs, dev, err, sizeof(err)) &&
		       !ext_lookup(fs, dev, path, &ino, &inode, err, sizeof(err)) &&
		       LINUX_S_ISREG(inode.i_mode);
	}
	if (ldev_open(d, spec, currdev, UINT64_MAX, &fd, &size, err, sizeof(err)))
		return false;
	close(fd);
	return true;
}

struct ls_ctx {
	ext2_filsys fs;
	void (*fn)(void *opaque, const char *name, bool dir, uint64_t size);
	void *opaque;
};

static int ls_one(struct ext2_dir_entry *de, int offset, int blocksize, char *buf, void *priv)
{
	(void)offset;
	(void)blocksize;
	(void)buf;
	struct ls_ctx *c = priv;
	char name[256];
	int n = ext2fs_dirent_name_len(de);
	snprintf(name, sizeof(name), "%.*s", n, de->name);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	struct ext2_inode inode;
	if (ext2fs_read_inode(c->fs, de->inode, &inode))
		return 0;
	c->fn(c->opaque, name, LINUX_S_ISDIR(inode.i_mode), EXT2_I_SIZE(&inode));
	return 0;
}

int ldev_ls(struct ldevs *d, const char *spec, const char *currdev,
	    void (*fn)(void *opaque, const char *name, bool dir, uint64_t size), void *opaque,
	    char *err, size_t errlen)
{
	char dev[LDEV_NAME_MAX], path[1024];
	int r = ldev_split(spec, currdev, dev, sizeof(dev), path, sizeof(path), err, errlen);
	if (r)
		return r;
	if (!strcmp(dev, "host0")) {
		int fd;
		if ((r = host_open(d, path, O_RDONLY | O_DIRECTORY, &fd, err, errlen)))
			return r;
		DIR *dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			snprintf(err, errlen, "host0:%s: %s", path, strerror(errno));
			return -EIO;
		}
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			struct stat st;
			/* lstat: a link is listed as itself, not followed. */
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			fn(opaque, de->d_name, S_ISDIR(st.st_mode), (uint64_t)st.st_size);
		}
		closedir(dir);
		return 0;
	}
	ext2_filsys fs;
	ext2_ino_t ino;
	struct ext2_inode inode;
	if ((r = disk_lookup(d, dev, path, &fs, &ino, &inode, err, errlen)))
		return r;
	if (!LINUX_S_ISDIR(inode.i_mode)) {
		fn(opaque, path, false, EXT2_I_SIZE(&inode));
		return 0;
	}
	struct ls_ctx c = { fs, fn, opaque };
	errcode_t e = ext2fs_dir_iterate(fs, ino, 0, NULL, ls_one, &c);
	if (e) {
		snprintf(err, errlen, "%s:%s: %s", dev, path, error_message(e));
		return -EIO;
	}
	return 0;
}

static const char *fs_label(struct ldisk *k, unsigned slot, char *buf, size_t len)
{
	ext2_filsys fs;
	char err[256];
	if (fs_get(k, slot, false, &fs, "", err, sizeof(err)))
		return NULL;
	snprintf(buf, len, "ext%s%s%.*s%s",
		 ext2fs_has_feature_extents(fs->super) ? "4"
		 : ext2fs_has_feature_journal(fs->super) ? "3" : "2",
		 fs->super->s_volume_name[0] ? " label '" : "",
		 (int)sizeof(fs->super->s_volume_name), fs->super->s_volume_name,
		 fs->super->s_volume_name[0] ? "'" : "");
	return buf;
}

void ldevs_list(struct ldevs *d, bool verbose, void (*out)(void *opaque, const char *line),
		void *opaque)
{
	char line[1200], fsd[128];
	if (d->host_fd >= 0) {
		snprintf(line, sizeof(line), "host0:%s%s", verbose ? "    " : "",
			 verbose ? d->host_path : "");
		out(opaque, line);
	}
	for (unsigned i = 0; i < d->ndisks; i++) {
		struct ldisk *k = &d->disks[i];
		const char *kind = k->whole_ext ? "" : k->parts.kind == PART_GPT ? " GPT" : " MBR";
		if (verbose)
			snprintf(line, sizeof(line), "disk%u:    %s, %llu MiB%s%s%s", i, k->path,
				 (unsigned long long)(k->size >> 20), kind,
				 k->whole_ext ? ", " : "",
				 k->whole_ext ? (fs_label(k, 0, fsd, sizeof(fsd)) ?: "?") : "");
		else
			snprintf(line, sizeof(line), "disk%u:", i);
		out(opaque, line);
		for (unsigned p = 0; p < k->parts.n; p++) {
			const struct part *pp = &k->parts.p[p];
			const char *fs = verbose ? fs_label(k, p + 1, fsd, sizeof(fsd)) : NULL;
			if (verbose)
				snprintf(line, sizeof(line), "  disk%up%u:    type %s, %llu MiB at %llu, %s",
					 i, pp->index, pp->type, (unsigned long long)(pp->size >> 20),
					 (unsigned long long)pp->start, fs ? fs : "no ext2/3/4");
			else
				snprintf(line, sizeof(line), "  disk%up%u:", i, pp->index);
			out(opaque, line);
		}
	}
}

unsigned ldevs_fs_names(struct ldevs *d, char names[][LDEV_NAME_MAX], unsigned max)
{
	unsigned n = 0;
	char err[256];
	ext2_filsys fs;
	if (d->host_fd >= 0 && n < max)
		snprintf(names[n++], LDEV_NAME_MAX, "host0");
	for (unsigned i = 0; i < d->ndisks; i++) {
		struct ldisk *k = &d->disks[i];
		if (k->whole_ext && n < max && !fs_get(k, 0, false, &fs, "", err, sizeof(err)))
			snprintf(names[n++], LDEV_NAME_MAX, "disk%u", i);
		for (unsigned p = 0; p < k->parts.n && n < max; p++)
			if (!fs_get(k, p + 1, false, &fs, "", err, sizeof(err)))
				snprintf(names[n++], LDEV_NAME_MAX, "disk%up%u", i, k->parts.p[p].index);
	}
	return n;
}

int ldev_rewrite(struct ldevs *d, const char *spec, const void *data, size_t len, char *err,
		 size_t errlen)
{
	char dev[LDEV_NAME_MAX], path[1024];
	int r = ldev_split(spec, NULL, dev, sizeof(dev), path, sizeof(path), err, errlen);
	if (r)
		return r;
	struct ldisk *k;
	unsigned slot;
	if ((r = find_disk(d, dev, &k, &slot, err, errlen)))
		return r;
	/* Our read lock goes, the write lock is taken on a descriptor
	 * open for writing, and the read lock comes back at the end. */
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	fcntl(k->fd, F_OFD_SETLK, &fl);
	int wfd = open(k->path, O_RDWR | O_CLOEXEC);
	fl.l_type = F_WRLCK;
	if (wfd < 0 || fcntl(wfd, F_OFD_SETLK, &fl) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot write %s: %s", k->path, path,
			 e == EAGAIN || e == EACCES ? "in use by a running VM" : strerror(e));
		r = -e;
		goto unlock;
	}
	/* The read-only handle's cache would not see the new bytes. */
	if (k->fs[slot])
		ext2fs_close_free((ext2_filsys *)&k->fs[slot]);
	ext2_filsys fs;
	ext2_ino_t ino;
	struct ext2_inode inode;
	char name[64], opts[64];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", wfd);
	snprintf(opts, sizeof(opts), "offset=%llu",
		 (unsigned long long)(slot ? k->parts.p[slot - 1].start : 0));
	errcode_t e = ext2fs_open2(name, opts, EXT2_FLAG_RW, 0, 0, unix_io_manager, &fs);
	if (e) {
		snprintf(err, errlen, "%s: cannot open for writing: %s", dev, error_message(e));
		r = -EIO;
		goto unlock;
	}
	/* A journal still to replay: the guest did not shut down cleanly,
	 * and what the disk holds is not yet what it wrote. */
	if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
		snprintf(err, errlen, "%s: the journal needs recovery (the guest did not shut down "
				      "cleanly), not writing %s", dev, path);
		r = -EBUSY;
		goto close;
	}
	if ((r = ext_lookup(fs, dev, path, &ino, &inode, err, errlen)))
		goto close;
	if (!LINUX_S_ISREG(inode.i_mode) || EXT2_I_SIZE(&inode) != len) {
		snprintf(err, errlen, "%s:%s: changed size, not rewritten", dev, path);
		r = -EINVAL;
		goto close;
	}
	ext2_file_t f;
	unsigned wrote = 0;
	e = ext2fs_file_open(fs, ino, EXT2_FILE_WRITE, &f);
	if (!e) {
		e = ext2fs_file_write(f, data, (unsigned)len, &wrote);
		errcode_t e2 = ext2fs_file_close(f);
		if (!e)
			e = e2;
	}
	if (e || wrote != len) {
		snprintf(err, errlen, "%s:%s: %s", dev, path, e ? error_message(e) : "short write");
		r = -EIO;
	}
close:
	e = ext2fs_close_free(&fs);
	if (!r && e) {
		snprintf(err, errlen, "%s: %s", dev, error_message(e));
		r = -EIO;
	}
unlock:
	if (wfd >= 0)
		close(wfd);
	fl.l_type = F_RDLCK;
	fcntl(k->fd, F_OFD_SETLK, &fl);
	return r;
}
