#include "backend/p9_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/p9_proto.h"

#define FID_BUCKETS 4096
#define XATTR_MAX (64u << 10)
#define XATTR_TOTAL_MAX (4u << 20)
#define RLERROR_LEN 11 /* size type tag ecode */

/* Every lookup: one component, no symlink followed, nothing above the
 * descriptor it starts from. */
#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* Linux's setattr valid bits (9P2000.L) */
#define ATTR_MODE 0x1
#define ATTR_UID 0x2
#define ATTR_GID 0x4
#define ATTR_SIZE 0x8
#define ATTR_ATIME 0x10
#define ATTR_MTIME 0x20
#define ATTR_ATIME_SET 0x80
#define ATTR_MTIME_SET 0x100
#define STATS_BASIC 0x7ffull

#define LOCK_SUCCESS 0
#define LOCK_BLOCKED 1
#define LOCK_ERROR 2
#define LOCK_TYPE_RDLCK 0
#define LOCK_TYPE_WRLCK 1
#define LOCK_TYPE_UNLCK 2

enum fid_kind { FID_PATH, FID_XATTR };

struct fid {
	struct fid *next;
	uint32_t id;
	uint8_t kind;
	int fd;      /* O_PATH (or, after lcreate, a dup of ofd) */
	int ofd;     /* opened by lopen/lcreate, else -1 */
	mode_t fmt;  /* S_IFMT bits when walked to */
	char *xbuf;  /* FID_XATTR: the value (or the name list) */
	size_t xlen;
};

struct p9_server {
	int rootfd, procfd;
	bool ro;
	mode_t umask;
	char *root_path;
	size_t root_len;
	dev_t root_dev;
	ino_t root_ino;
	uint32_t msize_max, msize;
	unsigned max_fids, nfids;
	size_t xattr_bytes;
	struct fid *bucket[FID_BUCKETS];
	struct p9_msg msg;
	uint8_t *dirbuf; /* getdents64 scratch */
	size_t dirbuf_len;
};

/* ---- helpers ---- */

static int openat2_fd(int dirfd, const char *path, uint64_t flags, uint64_t resolve, mode_t mode)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = resolve,
	};
	long r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	return r < 0 ? -errno : (int)r;
}

static int dup_fd(int fd)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return r < 0 ? -errno : r;
}

static void fdname(int fd, char *buf, size_t len) { snprintf(buf, len, "%d", fd); }

/* Open fd's file again, for I/O: only regular files and directories (a
 * symlink's magic link would lead wherever the link points). */
static int reopen(struct p9_server *s, int fd, int flags)
{
	char n[16];
	fdname(fd, n, sizeof(n));
	int r = openat(s->procfd, n, flags | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* A path component that names a new or existing entry of a directory. */
static bool bad_name(const char *n)
{
	return !n[0] || !strcmp(n, ".") || !strcmp(n, "..");
}

static uint64_t qid_path(const struct p9_server *s, const struct stat *st)
{
	uint64_t p = (uint64_t)st->st_ino;
	/* Files of other file systems mounted inside the share: mix the
	 * device into the high bits so that their inode numbers do not
	 * collide with the share's own. */
	if (st->st_dev != s->root_dev)
		p ^= ((uint64_t)st->st_dev * 0x9E3779B97F4A7C15ull) & 0xFFFF000000000000ull;
	return p;
}

static void qid_of(const struct p9_server *s, const struct stat *st, struct p9_qid *q)
{
	q->type = S_ISDIR(st->st_mode) ? P9_QTDIR : S_ISLNK(st->st_mode) ? P9_QTSYMLINK : P9_QTFILE;
	q->version = S_ISREG(st->st_mode) ? (uint32_t)(st->st_mtime ^ (st->st_size << 8)) : 0;
	q->path = qid_path(s, st);
}

static int stat_fd(int fd, struct stat *st) { return fstat(fd, st) ? errno : 0; }

/* fd's path relative to the share's root ("" for the root itself), from
 * /proc/self/fd. Only used to name a fid's parent (".." and Trename,
 * Tremove); whatever it says is resolved again under the root with
 * RESOLVE_BENEATH, so a stale name cannot lead outside. */
static int rel_path(struct p9_server *s, int fd, char *out, size_t len)
{
	char n[16], abs[PATH_MAX + 1];
	fdname(fd, n, sizeof(n));
	ssize_t r = readlinkat(s->procfd, n, abs, sizeof(abs) - 1);
	if (r < 0)
		return errno;
	abs[r] = '\0';
	const char *rel;
	if (s->root_len == 1) {
		rel = abs + 1;
	} else {
		if (strncmp(abs, s->root_path, s->root_len) ||
		    (abs[s->root_len] != '\0' && abs[s->root_len] != '/'))
			return ESTALE; /* moved out of the share by the host */
		rel = abs + s->root_len + (abs[s->root_len] == '/');
	}
	if (abs[0] != '/' || strlen(rel) >= len)
		return ESTALE;
	strcpy(out, rel);
	return 0;
}

/* The directory holding fd's file (*pfd, O_PATH) and the file's name in
 * it, checked to still be the same file. */
static int fid_parent(struct p9_server *s, int fd, int *pfd, char *base)
{
	char rel[PATH_MAX + 1];
	int e = rel_path(s, fd, rel, sizeof(rel));
	if (e)
		return e;
	if (!rel[0])
		return EBUSY; /* the root itself */
	char *slash = strrchr(rel, '/');
	const char *dir = ".", *name = rel;
	if (slash) {
		*slash = '\0';
		dir = rel;
		name = slash + 1;
	}
	if (strlen(name) > P9_NAME_MAX || bad_name(name))
		return ESTALE;
	int d = openat2_fd(s->rootfd, dir, O_PATH | O_DIRECTORY, BENEATH, 0);
	if (d < 0)
		return -d;
	struct stat a, b;
	if (fstat(fd, &a) || fstatat(d, name, &b, AT_SYMLINK_NOFOLLOW) || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(d);
		return ESTALE;
	}
	strcpy(base, name);
	*pfd = d;
	return 0;
}

/* ---- the fid table ---- */

static struct fid **slot_of(struct p9_server *s, uint32_t id)
{
	struct fid **pp = &s->bucket[(id * 2654435761u) % FID_BUCKETS];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static struct fid *fid_get(struct p9_server *s, uint32_t id) { return *slot_of(s, id); }

static struct fid *fid_path(struct p9_server *s, uint32_t id)
{
	struct fid *f = fid_get(s, id);
	return f && f->kind == FID_PATH ? f : NULL;
}

/* A new fid (fd taken over on success). */
static int fid_add(struct p9_server *s, uint32_t id, uint8_t kind, int fd, mode_t fmt,
		   struct fid **out)
{
	if (id == P9_NOFID)
		return EINVAL;
	struct fid **pp = slot_of(s, id);
	if (*pp)
		return EEXIST;
	if (s->nfids >= s->max_fids)
		return EMFILE;
	struct fid *f = calloc(1, sizeof(*f));
	if (!f)
		return ENOMEM;
	f->id = id;
	f->kind = kind;
	f->fd = fd;
	f->ofd = -1;
	f->fmt = fmt;
	*pp = f;
	s->nfids++;
	if (out)
		*out = f;
	return 0;
}

static void fid_close(struct p9_server *s, struct fid *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->ofd >= 0)
		close(f->ofd);
	s->xattr_bytes -= f->xlen;
	free(f->xbuf);
	free(f);
}

static int fid_del(struct p9_server *s, uint32_t id)
{
	struct fid **pp = slot_of(s, id);
	struct fid *f = *pp;
	if (!f)
		return EBADF;
	*pp = f->next;
	s->nfids--;
	fid_close(s, f);
	return 0;
}

static void fids_clear(struct p9_server *s)
{
	for (unsigned i = 0; i < FID_BUCKETS; i++) {
		while (s->bucket[i]) {
			struct fid *f = s->bucket[i];
			s->bucket[i] = f->next;
			fid_close(s, f);
		}
	}
	s->nfids = 0;
	s->xattr_bytes = 0;
}

/* ---- requests ---- */

static int do_version(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	if (m->count < P9_MSIZE_MIN)
		return EINVAL;
	/* A Tversion begins a new session: every fid is gone. */
	fids_clear(s);
	bool ok = !strncmp(m->name[0], "9P2000.L", 8) && (!m->name[0][8] || m->name[0][8] == '.');
	s->msize = m->count < s->msize_max ? m->count : s->msize_max;
	p9_enc_u32(e, s->msize);
	const char *v = ok ? "9P2000.L" : "unknown";
	p9_enc_str(e, v, strlen(v));
	return 0;
}

static int do_attach(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	int fd = dup_fd(s->rootfd);
	if (fd < 0)
		return -fd;
	struct stat st;
	int err = stat_fd(fd, &st);
	if (!err)
		err = fid_add(s, m->fid, FID_PATH, fd, S_IFDIR, NULL);
	if (err) {
		close(fd);
		return err;
	}
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_qid(e, &q);
	return 0;
}

/* One step of a walk from dir: a new O_PATH descriptor. */
static int walk_one(struct p9_server *s, int dir, const char *name)
{
	if (!strcmp(name, "."))
		return dup_fd(dir);
	if (strcmp(name, ".."))
		return openat2_fd(dir, name, O_PATH | O_NOFOLLOW, BENEATH, 0);
	struct stat st;
	if (fstat(dir, &st))
		return -errno;
	if (st.st_dev == s->root_dev && st.st_ino == s->root_ino)
		return dup_fd(s->rootfd); /* ".." of the root is the root */
	char rel[PATH_MAX + 1];
	int e = rel_path(s, dir, rel, sizeof(rel));
	if (e)
		return -e;
	char *slash = strrchr(rel, '/');
	if (!slash)
		return dup_fd(s->rootfd);
	*slash = '\0';
	return openat2_fd(s->rootfd, rel, O_PATH | O_DIRECTORY, BENEATH, 0);
}

static int do_walk(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (m->newfid != m->fid) {
		if (fid_get(s, m->newfid) || m->newfid == P9_NOFID)
			return EEXIST;
		if (s->nfids >= s->max_fids)
			return EMFILE;
	}
	int cur = f->fd, owned = -1, err = 0;
	unsigned n = 0;
	struct p9_qid q[P9_MAXWELEM];
	mode_t fmt = f->fmt;
	for (; n < m->nwname; n++) {
		int nfd = walk_one(s, cur, m->name[n]);
		if (nfd < 0) {
			err = -nfd;
			break;
		}
		struct stat st;
		if ((err = stat_fd(nfd, &st))) {
			close(nfd);
			break;
		}
		qid_of(s, &st, &q[n]);
		fmt = st.st_mode & S_IFMT;
		if (owned >= 0)
			close(owned);
		owned = cur = nfd;
	}
	if (m->nwname && n == 0)
		return err;
	if (n < m->nwname) {
		/* A partial walk: the qids so far, and no new fid. */
		close(owned);
	} else if (m->newfid == m->fid) {
		if (owned >= 0) {
			close(f->fd);
			if (f->ofd >= 0)
				close(f->ofd);
			f->fd = owned;
			f->ofd = -1;
			f->fmt = fmt;
		}
	} else {
		int fd = owned >= 0 ? owned : dup_fd(f->fd);
		if (fd < 0)
			return -fd;
		if ((err = fid_add(s, m->newfid, FID_PATH, fd, fmt, NULL))) {
			close(fd);
			return err;
		}
	}
	p9_enc_u16(e, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		p9_enc_qid(e, &q[i]);
	return 0;
}

/* Linux open flags from the client's (9P2000.L uses Linux's x86 values):
 * what a share may honour, nothing that creates, follows or bypasses. */
static int open_flags(uint32_t fl, int *out)
{
	if ((fl & O_ACCMODE) == O_ACCMODE)
		return EINVAL;
	*out = (int)(fl & (O_ACCMODE | O_TRUNC | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC |
			   O_LARGEFILE | O_DIRECTORY));
	return 0;
}

static bool writes(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

static int do_lopen(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (f->ofd >= 0)
		return EBUSY;
	struct stat st;
	int err = stat_fd(f->fd, &st), flags;
	if (err)
		return err;
	if ((err = open_flags(m->flags, &flags)))
		return err;
	if (S_ISLNK(st.st_mode))
		return ELOOP;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return EOPNOTSUPP; /* devices and FIFOs are the guest's own */
	if (S_ISDIR(st.st_mode)) {
		if ((flags & O_ACCMODE) != O_RDONLY)
			return EISDIR;
		flags = O_RDONLY | O_DIRECTORY;
	} else if (flags & O_DIRECTORY) {
		return ENOTDIR;
	}
	if (s->ro && writes(flags))
		return EROFS;
	int fd = reopen(s, f->fd, flags);
	if (fd < 0)
		return -fd;
	f->ofd = fd;
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_qid(e, &q);
	p9_enc_u32(e, 0); /* iounit: msize decides */
	return 0;
}

/* Give what the guest created the mode it asked for, where khyve's own
 * umask took bits away. */
static void fix_mode(struct p9_server *s, int fd, uint32_t mode)
{
	mode &= 07777;
	if (!(mode & s->umask))
		return;
	char n[16];
	fdname(fd, n, sizeof(n));
	if (fchmodat(s->procfd, n, mode, 0)) {
		/* best effort: the file exists either way */
	}
}

static int do_lcreate(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (f->ofd >= 0)
		return EBUSY;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (s->ro)
		return EROFS;
	int flags, err = open_flags(m->flags, &flags);
	if (err)
		return err;
	flags &= ~O_DIRECTORY;
	bool excl = m->flags & O_EXCL;
	int fd = openat2_fd(f->fd, m->name[0], flags | O_CREAT | O_EXCL | O_NOFOLLOW, BENEATH,
			    m->mode & 07777);
	bool made = fd >= 0;
	if (fd == -EEXIST && !excl)
		fd = openat2_fd(f->fd, m->name[0], flags | O_NOFOLLOW, BENEATH, 0);
	if (fd < 0)
		return -fd;
	struct stat st;
	int pfd = -1;
	if ((err = stat_fd(fd, &st)) || (!S_ISREG(st.st_mode) && (err = EEXIST)) ||
	    (pfd = dup_fd(fd)) < 0) {
		close(fd);
		return err ? err : -pfd;
	}
	if (made)
		fix_mode(s, fd, m->mode);
	close(f->fd);
	f->fd = pfd;
	f->ofd = fd;
	f->fmt = S_IFREG;
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_qid(e, &q);
	p9_enc_u32(e, 0);
	return 0;
}

/* The qid of dir/name, just made. */
static int qid_at(struct p9_server *s, int dir, const char *name, struct p9_enc *e)
{
	struct stat st;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno;
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_qid(e, &q);
	return 0;
}

static int do_symlink(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (!m->target[0])
		return ENOENT;
	if (s->ro)
		return EROFS;
	if (symlinkat(m->target, f->fd, m->name[0]))
		return errno;
	return qid_at(s, f->fd, m->name[0], e);
}

static int do_mknod(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (s->ro)
		return EROFS;
	/* FIFOs and sockets are names only; device nodes on the host are
	 * not the guest's to make. */
	mode_t fmt = m->mode & S_IFMT;
	if (fmt != S_IFIFO && fmt != S_IFSOCK)
		return EPERM;
	if (mknodat(f->fd, m->name[0], fmt | (m->mode & 07777), 0))
		return errno;
	return qid_at(s, f->fd, m->name[0], e);
}

static int do_mkdir(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (s->ro)
		return EROFS;
	if (mkdirat(f->fd, m->name[0], m->mode & 07777))
		return errno;
	int fd = openat2_fd(f->fd, m->name[0], O_PATH | O_DIRECTORY | O_NOFOLLOW, BENEATH, 0);
	if (fd < 0)
		return -fd;
	fix_mode(s, fd, m->mode);
	struct stat st;
	int err = stat_fd(fd, &st);
	close(fd);
	if (err)
		return err;
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_qid(e, &q);
	return 0;
}

static int do_readlink(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	char buf[P9_PATH_MAX + 1];
	ssize_t n = readlinkat(f->fd, "", buf, sizeof(buf));
	if (n < 0)
		return errno == ENOENT ? EINVAL : errno;
	if ((size_t)n > P9_PATH_MAX)
		return ENAMETOOLONG;
	p9_enc_str(e, buf, (size_t)n);
	return 0;
}

static int do_getattr(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	struct stat st;
	int err = stat_fd(f->fd, &st);
	if (err)
		return err;
	struct p9_qid q;
	qid_of(s, &st, &q);
	p9_enc_u64(e, STATS_BASIC);
	p9_enc_qid(e, &q);
	p9_enc_u32(e, st.st_mode);
	p9_enc_u32(e, st.st_uid);
	p9_enc_u32(e, st.st_gid);
	p9_enc_u64(e, st.st_nlink);
	p9_enc_u64(e, st.st_rdev);
	p9_enc_u64(e, (uint64_t)st.st_size);
	p9_enc_u64(e, (uint64_t)st.st_blksize);
	p9_enc_u64(e, (uint64_t)st.st_blocks);
	p9_enc_u64(e, (uint64_t)st.st_atim.tv_sec);
	p9_enc_u64(e, (uint64_t)st.st_atim.tv_nsec);
	p9_enc_u64(e, (uint64_t)st.st_mtim.tv_sec);
	p9_enc_u64(e, (uint64_t)st.st_mtim.tv_nsec);
	p9_enc_u64(e, (uint64_t)st.st_ctim.tv_sec);
	p9_enc_u64(e, (uint64_t)st.st_ctim.tv_nsec);
	for (int i = 0; i < 4; i++)
		p9_enc_u64(e, 0); /* btime, gen, data_version */
	return 0;
}

static bool bad_nsec(uint64_t ns) { return ns >= 1000000000u; }

static int do_setattr(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	uint32_t v = m->valid;
	if (!(v & (ATTR_MODE | ATTR_UID | ATTR_GID | ATTR_SIZE | ATTR_ATIME | ATTR_MTIME)))
		return 0; /* ctime only: nothing a host call sets */
	if (s->ro)
		return EROFS;
	struct stat st;
	int err = stat_fd(f->fd, &st);
	if (err)
		return err;
	bool link = S_ISLNK(st.st_mode);
	char n[16];
	fdname(f->fd, n, sizeof(n));
	/* A symlink's own mode and times are not the guest's business on
	 * Linux; reaching it through its magic link would follow it. */
	if ((v & ATTR_MODE) && !link && fchmodat(s->procfd, n, m->mode & 07777, 0))
		return errno;
	if (v & (ATTR_UID | ATTR_GID)) {
		uid_t uid = (v & ATTR_UID) ? (uid_t)m->uid : (uid_t)-1;
		gid_t gid = (v & ATTR_GID) ? (gid_t)m->gid : (gid_t)-1;
		if (fchownat(f->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return errno;
	}
	if (v & ATTR_SIZE) {
		if (!S_ISREG(st.st_mode))
			return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		if (m->length > INT64_MAX)
			return EFBIG;
		int fd = -1;
		if (f->ofd >= 0 && (fcntl(f->ofd, F_GETFL) & O_ACCMODE) != O_RDONLY)
			fd = f->ofd;
		int tmp = fd < 0 ? reopen(s, f->fd, O_WRONLY) : -1;
		if (fd < 0 && tmp < 0)
			return -tmp;
		int r = ftruncate(fd >= 0 ? fd : tmp, (off_t)m->length);
		err = r ? errno : 0;
		if (tmp >= 0)
			close(tmp);
		if (err)
			return err;
	}
	if ((v & (ATTR_ATIME | ATTR_MTIME)) && !link) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (v & ATTR_ATIME) {
			if (!(v & ATTR_ATIME_SET))
				ts[0].tv_nsec = UTIME_NOW;
			else if (bad_nsec(m->atime_nsec) || m->atime_sec > INT64_MAX)
				return EINVAL;
			else
				ts[0] = (struct timespec){ (time_t)m->atime_sec, (long)m->atime_nsec };
		}
		if (v & ATTR_MTIME) {
			if (!(v & ATTR_MTIME_SET))
				ts[1].tv_nsec = UTIME_NOW;
			else if (bad_nsec(m->mtime_nsec) || m->mtime_sec > INT64_MAX)
				return EINVAL;
			else
				ts[1] = (struct timespec){ (time_t)m->mtime_sec, (long)m->mtime_nsec };
		}
		if (utimensat(s->procfd, n, ts, 0))
			return errno;
	}
	return 0;
}

static int do_xattrwalk(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (fid_get(s, m->newfid) || m->newfid == P9_NOFID)
		return EEXIST;
	if (s->nfids >= s->max_fids)
		return EMFILE;
	struct stat st;
	int err = stat_fd(f->fd, &st);
	if (err)
		return err;
	bool list = !m->name[0][0];
	char *buf = NULL;
	ssize_t len = 0;
	/* Through an opened descriptor: regular files and directories only
	 * (see reopen); other files show no attributes. */
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		int fd = reopen(s, f->fd, O_RDONLY | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
		if (fd < 0)
			return -fd;
		len = list ? flistxattr(fd, NULL, 0) : fgetxattr(fd, m->name[0], NULL, 0);
		if (len > (ssize_t)XATTR_MAX)
			len = -1, errno = E2BIG;
		if (len > 0 && s->xattr_bytes + (size_t)len > XATTR_TOTAL_MAX)
			len = -1, errno = ENOSPC;
		if (len > 0) {
			buf = malloc((size_t)len);
			if (!buf)
				len = -1, errno = ENOMEM;
			else
				len = list ? flistxattr(fd, buf, (size_t)len)
					   : fgetxattr(fd, m->name[0], buf, (size_t)len);
		}
		err = len < 0 ? errno : 0;
		close(fd);
	} else if (!list) {
		err = ENODATA;
	}
	if (err) {
		free(buf);
		return err == ERANGE ? EAGAIN : err; /* grew meanwhile */
	}
	struct fid *x;
	if ((err = fid_add(s, m->newfid, FID_XATTR, -1, 0, &x))) {
		free(buf);
		return err;
	}
	x->xbuf = buf;
	x->xlen = (size_t)len;
	s->xattr_bytes += x->xlen;
	p9_enc_u64(e, (uint64_t)len);
	return 0;
}

static int do_readdir(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (f->ofd < 0 || !S_ISDIR(f->fmt))
		return f->ofd < 0 ? EBADF : ENOTDIR;
	if (m->offset > INT64_MAX)
		return EINVAL;
	uint8_t *cnt = p9_enc_reserve(e, 4);
	if (!cnt)
		return EMSGSIZE;
	size_t room = e->cap - e->len;
	if (room > m->count)
		room = m->count;
	/* Stateless: every call reads from the offset the client names (the
	 * d_off of the last entry it got), so nothing is kept per fid. */
	if (lseek(f->ofd, (off_t)m->offset, SEEK_SET) < 0)
		return errno;
	size_t want = room < s->dirbuf_len ? room : s->dirbuf_len;
	if (want < 4096)
		want = 4096 < s->dirbuf_len ? 4096 : s->dirbuf_len;
	long n = syscall(SYS_getdents64, f->ofd, s->dirbuf, want);
	if (n < 0)
		return errno;
	size_t used = 0;
	struct stat dst;
	dev_t dev = fstat(f->ofd, &dst) ? s->root_dev : dst.st_dev;
	for (long pos = 0; pos < n;) {
		/* struct linux_dirent64: ino[8] off[8] reclen[2] type[1] name */
		const uint8_t *d = s->dirbuf + pos;
		uint64_t ino, off;
		uint16_t reclen;
		memcpy(&ino, d, 8);
		memcpy(&off, d + 8, 8);
		memcpy(&reclen, d + 16, 2);
		if (reclen < 20 || pos + reclen > n)
			break;
		uint8_t type = d[18];
		const char *name = (const char *)d + 19;
		size_t nl = strnlen(name, reclen - 19u);
		size_t need = 13 + 8 + 1 + 2 + nl;
		if (used + need > room)
			break;
		struct stat fake = { .st_ino = ino, .st_dev = dev,
				     .st_mode = type == DT_DIR ? S_IFDIR : type == DT_LNK ? S_IFLNK : 0 };
		struct p9_qid q;
		qid_of(s, &fake, &q);
		p9_enc_qid(e, &q);
		p9_enc_u64(e, off);
		p9_enc_u8(e, type);
		p9_enc_str(e, name, nl);
		used += need;
		pos += reclen;
	}
	for (unsigned i = 0; i < 4; i++)
		cnt[i] = (uint8_t)(used >> (8 * i));
	return 0;
}

static int do_read(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_get(s, m->fid);
	if (!f)
		return EBADF;
	uint8_t *cnt = p9_enc_reserve(e, 4);
	if (!cnt)
		return EMSGSIZE;
	size_t room = e->cap - e->len;
	size_t want = m->count < room ? m->count : room;
	size_t got = 0;
	if (f->kind == FID_XATTR) {
		if (m->offset < f->xlen) {
			got = f->xlen - (size_t)m->offset;
			if (got > want)
				got = want;
			p9_enc_bytes(e, f->xbuf + m->offset, got);
		}
	} else {
		if (f->ofd < 0)
			return EBADF;
		if (m->offset > INT64_MAX)
			return EINVAL;
		uint8_t *dst = e->buf + e->len;
		ssize_t r = pread(f->ofd, dst, want, (off_t)m->offset);
		if (r < 0)
			return errno;
		got = (size_t)r;
		p9_enc_reserve(e, got);
	}
	for (unsigned i = 0; i < 4; i++)
		cnt[i] = (uint8_t)(got >> (8 * i));
	return 0;
}

static int do_write(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f || f->ofd < 0)
		return EBADF;
	if (s->ro)
		return EROFS;
	if (m->offset > INT64_MAX)
		return EINVAL;
	ssize_t r = pwrite(f->ofd, m->data, m->count, (off_t)m->offset);
	if (r < 0)
		return errno;
	p9_enc_u32(e, (uint32_t)r);
	return 0;
}

static int do_statfs(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	struct statfs sf;
	if (fstatfs(f->fd, &sf))
		return errno;
	uint64_t fsid;
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	p9_enc_u32(e, (uint32_t)sf.f_type);
	p9_enc_u32(e, (uint32_t)sf.f_bsize);
	p9_enc_u64(e, sf.f_blocks);
	p9_enc_u64(e, sf.f_bfree);
	p9_enc_u64(e, sf.f_bavail);
	p9_enc_u64(e, sf.f_files);
	p9_enc_u64(e, sf.f_ffree);
	p9_enc_u64(e, fsid);
	p9_enc_u32(e, (uint32_t)sf.f_namelen);
	return 0;
}

/* The open descriptor a lock request is about, with the lock it asks
 * for in *fl; or a positive errno. */
static int lock_target(struct p9_server *s, const struct p9_msg *m, struct flock *fl, int *fd)
{
	static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
	struct fid *f = fid_path(s, m->fid);
	if (!f || f->ofd < 0)
		return EBADF;
	if (m->lock_type > LOCK_TYPE_UNLCK || m->offset > INT64_MAX || m->length > INT64_MAX)
		return EINVAL;
	*fl = (struct flock){ .l_type = types[m->lock_type], .l_whence = SEEK_SET,
			      .l_start = (off_t)m->offset, .l_len = (off_t)m->length };
	*fd = f->ofd;
	return 0;
}

/* Locks are open-file-description locks on the fid's own descriptor, so
 * two guest processes do not share one POSIX lock owner (khyve). A lock
 * that would block answers BLOCKED: the client waits and asks again. */
static int do_lock(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct flock fl;
	int fd, err = lock_target(s, m, &fl, &fd);
	if (err)
		return err;
	uint8_t status = LOCK_SUCCESS;
	if (fcntl(fd, F_OFD_SETLK, &fl))
		status = (errno == EAGAIN || errno == EACCES) ? LOCK_BLOCKED : LOCK_ERROR;
	p9_enc_u8(e, status);
	return 0;
}

static int do_getlock(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	struct flock fl;
	int fd, err = lock_target(s, m, &fl, &fd);
	if (err)
		return err;
	if (fcntl(fd, F_OFD_GETLK, &fl))
		return errno;
	uint8_t type = fl.l_type == F_RDLCK ? LOCK_TYPE_RDLCK
		       : fl.l_type == F_WRLCK ? LOCK_TYPE_WRLCK : LOCK_TYPE_UNLCK;
	p9_enc_u8(e, type);
	p9_enc_u64(e, (uint64_t)fl.l_start);
	p9_enc_u64(e, (uint64_t)fl.l_len);
	p9_enc_u32(e, m->proc_id);
	p9_enc_str(e, m->target, strlen(m->target));
	return 0;
}

static int do_fsync(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (f->ofd >= 0 && (m->flags ? fdatasync(f->ofd) : fsync(f->ofd)))
		return errno;
	return 0;
}

static int do_link(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *d = fid_path(s, m->fid), *f = fid_path(s, m->newfid);
	if (!d || !f)
		return EBADF;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (s->ro)
		return EROFS;
	struct stat st;
	int err = stat_fd(f->fd, &st);
	if (err)
		return err;
	/* Through the magic link (no CAP_DAC_READ_SEARCH needed), so never a
	 * symlink, which it would follow. */
	if (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))
		return EPERM;
	char n[16];
	fdname(f->fd, n, sizeof(n));
	if (linkat(s->procfd, n, d->fd, m->name[0], AT_SYMLINK_FOLLOW))
		return errno;
	return 0;
}

static int do_rename(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *f = fid_path(s, m->fid), *d = fid_path(s, m->newfid);
	if (!f || !d)
		return EBADF;
	if (bad_name(m->name[0]))
		return EINVAL;
	if (s->ro)
		return EROFS;
	int pfd;
	char base[P9_NAME_MAX + 1];
	int err = fid_parent(s, f->fd, &pfd, base);
	if (err)
		return err;
	err = renameat(pfd, base, d->fd, m->name[0]) ? errno : 0;
	close(pfd);
	return err;
}

static int do_renameat(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *a = fid_path(s, m->fid), *b = fid_path(s, m->newdirfid);
	if (!a || !b)
		return EBADF;
	if (bad_name(m->name[0]) || bad_name(m->name2))
		return EINVAL;
	if (s->ro)
		return EROFS;
	return renameat(a->fd, m->name[0], b->fd, m->name2) ? errno : 0;
}

static int do_unlinkat(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return EBADF;
	if (bad_name(m->name[0]) || (m->flags & ~(uint32_t)AT_REMOVEDIR))
		return EINVAL;
	if (s->ro)
		return EROFS;
	return unlinkat(f->fd, m->name[0], (int)m->flags) ? errno : 0;
}

static int do_remove(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	(void)e;
	struct fid *f = fid_path(s, m->fid);
	if (!f)
		return fid_get(s, m->fid) ? (fid_del(s, m->fid), EINVAL) : EBADF;
	int err = 0, pfd;
	char base[P9_NAME_MAX + 1];
	if (s->ro)
		err = EROFS;
	else if (!(err = fid_parent(s, f->fd, &pfd, base))) {
		err = unlinkat(pfd, base, S_ISDIR(f->fmt) ? AT_REMOVEDIR : 0) ? errno : 0;
		close(pfd);
	}
	fid_del(s, m->fid); /* Tremove clunks, whatever happened */
	return err;
}

static int dispatch(struct p9_server *s, struct p9_msg *m, struct p9_enc *e)
{
	switch (m->type) {
	case P9_TVERSION: return do_version(s, m, e);
	case P9_TAUTH: return EOPNOTSUPP;
	case P9_TATTACH: return do_attach(s, m, e);
	case P9_TFLUSH: return 0; /* requests finish in order: nothing to flush */
	case P9_TWALK: return do_walk(s, m, e);
	case P9_TLOPEN: return do_lopen(s, m, e);
	case P9_TLCREATE: return do_lcreate(s, m, e);
	case P9_TSYMLINK: return do_symlink(s, m, e);
	case P9_TMKNOD: return do_mknod(s, m, e);
	case P9_TRENAME: return do_rename(s, m, e);
	case P9_TREADLINK: return do_readlink(s, m, e);
	case P9_TGETATTR: return do_getattr(s, m, e);
	case P9_TSETATTR: return do_setattr(s, m, e);
	case P9_TXATTRWALK: return do_xattrwalk(s, m, e);
	case P9_TXATTRCREATE: return s->ro ? EROFS : EOPNOTSUPP; /* xattrs are read-only */
	case P9_TREADDIR: return do_readdir(s, m, e);
	case P9_TFSYNC: return do_fsync(s, m, e);
	case P9_TLOCK: return do_lock(s, m, e);
	case P9_TGETLOCK: return do_getlock(s, m, e);
	case P9_TLINK: return do_link(s, m, e);
	case P9_TMKDIR: return do_mkdir(s, m, e);
	case P9_TRENAMEAT: return do_renameat(s, m, e);
	case P9_TUNLINKAT: return do_unlinkat(s, m, e);
	case P9_TREAD: return do_read(s, m, e);
	case P9_TWRITE: return do_write(s, m, e);
	case P9_TCLUNK: return fid_del(s, m->fid);
	case P9_TREMOVE: return do_remove(s, m, e);
	case P9_TSTATFS: return do_statfs(s, m, e);
	default: return EOPNOTSUPP;
	}
}

size_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t reqlen, uint8_t *resp,
			size_t cap)
{
	if (cap > s->msize)
		cap = s->msize;
	/* No room to answer even with an error: do nothing the client could
	 * never learn of. */
	if (cap < RLERROR_LEN)
		return 0;
	struct p9_msg *m = &s->msg;
	int err = p9_decode(req, reqlen, m);
	if (!err) {
		struct p9_enc e;
		p9_enc_begin(&e, resp, cap, (uint8_t)(m->type + 1), m->tag);
		err = dispatch(s, m, &e);
		if (!err) {
			size_t n = p9_enc_finish(&e);
			if (n)
				return n;
			err = EMSGSIZE;
		}
	}
	return p9_enc_error(resp, cap, m->tag, (uint32_t)err);
}

/* ---- life ---- */

int p9_server_new(const char *path, bool ro, uint32_t msize_max, unsigned max_fids,
		  struct p9_server **out)
{
	struct p9_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->rootfd = s->procfd = -1;
	int err;
	s->root_path = realpath(path, NULL);
	if (!s->root_path) {
		err = -errno;
		goto fail;
	}
	s->root_len = strlen(s->root_path);
	s->rootfd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		err = -errno;
		goto fail;
	}
	/* The kernel must have openat2 (5.6): without it nothing confines. */
	int probe = openat2_fd(s->rootfd, ".", O_PATH, BENEATH, 0);
	if (probe < 0) {
		err = probe;
		goto fail;
	}
	close(probe);
	s->procfd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->procfd < 0) {
		err = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(s->rootfd, &st)) {
		err = -errno;
		goto fail;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	s->ro = ro;
	mode_t um = umask(022);
	umask(um);
	s->umask = um;
	if (msize_max > P9_MSIZE_MAX)
		msize_max = P9_MSIZE_MAX;
	if (msize_max < P9_MSIZE_MIN)
		msize_max = P9_MSIZE_MIN;
	s->msize_max = s->msize = msize_max;
	s->max_fids = max_fids ? max_fids : P9_DEFAULT_MAX_FIDS;
	s->dirbuf_len = msize_max;
	s->dirbuf = malloc(s->dirbuf_len);
	if (!s->dirbuf) {
		err = -ENOMEM;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	p9_server_free(s);
	return err;
}

void p9_server_free(struct p9_server *s)
{
	if (!s)
		return;
	fids_clear(s);
	if (s->rootfd >= 0)
		close(s->rootfd);
	if (s->procfd >= 0)
		close(s->procfd);
	free(s->root_path);
	free(s->dirbuf);
	free(s);
}

uint32_t p9_server_msize(const struct p9_server *s) { return s->msize; }

void p9_server_reset(struct p9_server *s)
{
	fids_clear(s);
	s->msize = s->msize_max;
}

unsigned p9_server_fids(const struct p9_server *s) { return s->nfids; }
