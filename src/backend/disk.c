#include "backend/disk.h"

#include "ctl/vmdir.h"
#include "util/exitclean.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The notes of one image: <rundir>/locks/<image id>/<pid>. */
static bool note_dir(const struct stat *st, bool create, char *buf, size_t len)
{
	char dir[400], why[512];
	/* Never through a runtime directory that is not the user's own. */
	if (ctl_rundir_ready(create, dir, sizeof(dir), why, sizeof(why)))
		return false;
	if (S_ISBLK(st->st_mode))
		snprintf(buf, len, "%s/locks/blk-%llx", dir, (unsigned long long)st->st_rdev);
	else
		snprintf(buf, len, "%s/locks/%llx-%llu", dir, (unsigned long long)st->st_dev,
			 (unsigned long long)st->st_ino);
	return true;
}

static bool alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

struct note {
	char vm[101];
	int pid;
	bool ro;
};

static bool read_note(const char *path, struct note *n)
{
	char line[256];
	memset(n, 0, sizeof(*n));
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "vm=", 3))
			snprintf(n->vm, sizeof(n->vm), "%.100s", line + 3);
		else if (!strncmp(line, "pid=", 4))
			n->pid = atoi(line + 4);
		else if (!strcmp(line, "mode=ro"))
			n->ro = true;
	}
	fclose(f);
	return n->pid > 0;
}

/* Calls fn for every note of a live holder; removes the others. */
static void scan_notes(const char *dir, void (*fn)(const struct note *, void *), void *arg)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *e;
	while ((e = readdir(dh))) {
		if (e->d_name[0] == '.')
			continue;
		char path[800];
		struct note n;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (read_note(path, &n) && alive(n.pid)) {
			if (fn && n.pid != getpid())
				fn(&n, arg);
		} else if (!strchr(e->d_name, '.'))
			unlink(path); /* a holder that is gone */
	}
	closedir(dh);
}

/* Best effort: the holder's name is a courtesy, the lock is the guard.
 * The note, its directory and locks/ go again when khyve ends
 * (disk_close, or util/exitclean.h on any exit but kill -9). */
static void write_note(struct disk *d, const struct stat *st, const char *vm_name)
{
	char dir[512], path[600], tmp[640];
	if (!note_dir(st, true, dir, sizeof(dir)))
		return;
	snprintf(path, sizeof(path), "%s/%d", dir, (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = NULL;
	/* Another khyve removes the directory when its last note goes: make
	 * it again when it vanished between our mkdir and our file. */
	for (int tries = 0; !f && tries < 5; tries++) {
		if (ctl_mkdirs(dir))
			return;
		if (tries == 0)
			scan_notes(dir, NULL, NULL); /* forget holders that are gone */
		f = fopen(tmp, "we");
		if (!f && errno != ENOENT)
			return;
	}
	if (!f)
		return;
	fprintf(f, "vm=%s\npid=%d\nmode=%s\npath=%s\n", vm_name ? vm_name : "", (int)getpid(),
		d->ro ? "ro" : "rw", d->path);
	if (fclose(f) == 0 && rename(tmp, path) == 0) {
		snprintf(d->note, sizeof(d->note), "%s", path);
		char *slash = strrchr(dir, '/');
		d->note_guard[0] = exitclean_add(path, EXITCLEAN_UNLINK);
		d->note_guard[1] = exitclean_add(dir, EXITCLEAN_RMDIR);
		*slash = '\0'; /* <rundir>/locks */
		d->note_guard[2] = exitclean_add(dir, EXITCLEAN_RMDIR);
	} else {
		unlink(tmp);
	}
}

/* The note and, when they are empty, its directory and locks/. */
static void remove_note(struct disk *d)
{
	if (!d->note[0])
		return;
	unlink(d->note);
	char dir[sizeof(d->note)];
	snprintf(dir, sizeof(dir), "%s", d->note);
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
		if (rmdir(dir) < 0)
			break;
	}
	for (int i = 0; i < 3; i++)
		exitclean_forget(d->note_guard[i]);
	d->note[0] = '\0';
}

struct holders {
	char *buf;
	size_t len;
	unsigned n;
};

static void add_holder(const struct note *n, void *arg)
{
	struct holders *h = arg;
	if (h->n == 3)
		return; /* readers: name a few */
	size_t used = strlen(h->buf);
	if (h->n)
		snprintf(h->buf + used, h->len - used, ", ");
	used = strlen(h->buf);
	snprintf(h->buf + used, h->len - used, "VM '%s' (khyve pid %d%s)", n->vm, n->pid,
		 n->ro ? ", read-only" : "");
	h->n++;
}

static void holder(const struct stat *st, char *buf, size_t len)
{
	char dir[512];
	buf[0] = '\0';
	struct holders h = { buf, len, 0 };
	if (note_dir(st, false, dir, sizeof(dir)))
		scan_notes(dir, add_holder, &h);
	if (!h.n)
		snprintf(buf, len, "another program");
}

static bool power_of_2(uint32_t v) { return v && !(v & (v - 1)); }

int disk_open(const struct disk_options *o, const char *vm_name, struct disk **out, char *err,
	      size_t errlen)
{
	uint32_t ls = o->logical_sector ? o->logical_sector : 512;
	uint32_t ps = o->physical_sector ? o->physical_sector : ls;
	if (!power_of_2(ls) || ls < 512 || ls > 65536 || !power_of_2(ps) || ps < ls || ps > 65536) {
		snprintf(err, errlen, "sectorsize=%u/%u: sizes must be powers of two from 512, physical >= logical",
			 ls, ps);
		return -EINVAL;
	}
	struct disk *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->fd = -1;
	d->note_guard[0] = d->note_guard[1] = d->note_guard[2] = -1;
	d->path = strdup(o->path);
	d->ro = o->ro;
	d->nocache = o->nocache;
	d->logical_sector = ls;
	d->physical_sector = ps;
	int flags = (o->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o->nocache ? O_DIRECT : 0) |
		    (o->sync ? O_SYNC : 0);
	int r;
	d->fd = open(o->path, flags);
	if (d->fd < 0 && errno == EINVAL && (flags & O_DIRECT) &&
	    access(o->path, o->ro ? R_OK : R_OK | W_OK) == 0) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: nocache: its file system does not take O_DIRECT "
			 "(ramfs, or tmpfs before Linux 6.6); drop nocache or move the image",
			 o->path);
		goto fail;
	}
	if (d->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		goto fail;
	}
	struct stat st;
	if (fstat(d->fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		d->block_device = true;
		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot get its size: %s", o->path, strerror(errno));
			goto fail;
		}
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or a block device", o->path);
		goto fail;
	}
	d->size -= d->size % ls;
	struct flock fl = { .l_type = o->ro ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(d->fd, F_OFD_SETLK, &fl) < 0) {
		r = -errno;
		if (errno == EAGAIN || errno == EACCES) {
			char who[200];
			holder(&st, who, sizeof(who));
			snprintf(err, errlen, "%s: in use by %s; it cannot be opened %s until that ends",
				 o->path, who, o->ro ? "even read-only" : "read-write");
			r = -EBUSY;
		} else {
			snprintf(err, errlen, "%s: cannot lock it: %s", o->path, strerror(errno));
		}
		goto fail;
	}
	write_note(d, &st, vm_name);
	*out = d;
	return 0;
fail:
	disk_close(d);
	return r;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	remove_note(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d);
}
