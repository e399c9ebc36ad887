/* virtio-9p's 9P2000.L engine (src/backend/p9_proto.c, p9_fs.c) on a real
 * temporary directory: msize negotiation, the file operations a Linux
 * client uses and what the host sees of them, a read-only share, the fid
 * bound, malformed messages, and escape attempts (.., absolute and
 * relative symlinks out, symlink loops, walking through a symlink,
 * creating over one, hard-linking one). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/p9_fs.h"
#include "backend/p9_proto.h"
#include "unit.h"

static char top[64], share[96];
static uint8_t reply[P9_MSIZE_MAX];
static size_t rlen;

struct msg {
	uint8_t b[16384];
	size_t n;
};

static void put(struct msg *m, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		m->b[m->n++] = (uint8_t)(v >> (8 * i));
}
static void u8(struct msg *m, uint8_t v) { put(m, v, 1); }
static void u16(struct msg *m, uint16_t v) { put(m, v, 2); }
static void u32(struct msg *m, uint32_t v) { put(m, v, 4); }
static void u64(struct msg *m, uint64_t v) { put(m, v, 8); }
static void str(struct msg *m, const char *s)
{
	size_t n = strlen(s);
	u16(m, (uint16_t)n);
	memcpy(m->b + m->n, s, n);
	m->n += n;
}
static void begin(struct msg *m, uint8_t type)
{
	m->n = 0;
	u32(m, 0);
	u8(m, type);
	u16(m, 7);
}

static uint64_t get(size_t off, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)reply[off + i] << (8 * i);
	return v;
}

/* Send m; 0 when the reply is the matching R-message, else the errno of
 * the Rlerror (or -1 for anything else). */
static int rpc_cap(struct p9_server *s, struct msg *m, size_t cap)
{
	for (unsigned i = 0; i < 4; i++)
		m->b[i] = (uint8_t)(m->n >> (8 * i));
	rlen = p9_server_handle(s, m->b, m->n, reply, cap);
	if (rlen < 7 || get(0, 4) != rlen)
		return -1;
	if (reply[4] == P9_RLERROR)
		return (int)get(7, 4);
	return reply[4] == m->b[4] + 1 && reply[5] == m->b[5] && reply[6] == m->b[6] ? 0 : -1;
}
static int rpc(struct p9_server *s, struct msg *m) { return rpc_cap(s, m, sizeof(reply)); }

static int version(struct p9_server *s, uint32_t msize, const char *v)
{
	struct msg m;
	begin(&m, P9_TVERSION);
	u32(&m, msize);
	str(&m, v);
	return rpc(s, &m);
}

static int attach(struct p9_server *s, uint32_t fid)
{
	struct msg m;
	begin(&m, P9_TATTACH);
	u32(&m, fid);
	u32(&m, P9_NOFID);
	str(&m, "root");
	str(&m, "");
	u32(&m, 0);
	return rpc(s, &m);
}

/* Walk fid to newfid through the names (NULL-terminated). Returns the
 * errno, or 0 when every name was walked; *nq: qids in the reply. */
static int walk_n(struct p9_server *s, uint32_t fid, uint32_t newfid, unsigned *nq,
		  const char *const *names)
{
	struct msg m;
	begin(&m, P9_TWALK);
	u32(&m, fid);
	u32(&m, newfid);
	unsigned n = 0;
	while (names[n])
		n++;
	u16(&m, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		str(&m, names[i]);
	int e = rpc(s, &m);
	if (e)
		return e;
	*nq = (unsigned)get(7, 2);
	return *nq == n ? 0 : ENOENT;
}
#define WALK(s, f, nf, nq, ...) walk_n(s, f, nf, nq, (const char *const[]){ __VA_ARGS__, NULL })

static uint64_t last_qid_path(unsigned nq) { return get(9 + 13 * (nq - 1) + 5, 8); }

static int lopen(struct p9_server *s, uint32_t fid, uint32_t flags)
{
	struct msg m;
	begin(&m, P9_TLOPEN);
	u32(&m, fid);
	u32(&m, flags);
	return rpc(s, &m);
}

static int lcreate(struct p9_server *s, uint32_t fid, const char *name, uint32_t flags)
{
	struct msg m;
	begin(&m, P9_TLCREATE);
	u32(&m, fid);
	str(&m, name);
	u32(&m, flags);
	u32(&m, 0644);
	u32(&m, 0);
	return rpc(s, &m);
}

static int write_at(struct p9_server *s, uint32_t fid, uint64_t off, const char *data)
{
	struct msg m;
	begin(&m, P9_TWRITE);
	u32(&m, fid);
	u64(&m, off);
	u32(&m, (uint32_t)strlen(data));
	memcpy(m.b + m.n, data, strlen(data));
	m.n += strlen(data);
	return rpc(s, &m);
}

/* Read into out (NUL-terminated). */
static int read_at(struct p9_server *s, uint32_t fid, uint64_t off, char *out, size_t len)
{
	struct msg m;
	begin(&m, P9_TREAD);
	u32(&m, fid);
	u64(&m, off);
	u32(&m, (uint32_t)len - 1);
	int e = rpc(s, &m);
	out[0] = '\0';
	if (!e) {
		size_t n = get(7, 4);
		memcpy(out, reply + 11, n);
		out[n] = '\0';
	}
	return e;
}

static int simple(struct p9_server *s, uint8_t type, uint32_t fid)
{
	struct msg m;
	begin(&m, type);
	u32(&m, fid);
	if (type == P9_TGETATTR)
		u64(&m, 0x7ff);
	return rpc(s, &m);
}

static int mkdir9(struct p9_server *s, uint32_t dfid, const char *name)
{
	struct msg m;
	begin(&m, P9_TMKDIR);
	u32(&m, dfid);
	str(&m, name);
	u32(&m, 0755);
	u32(&m, 0);
	return rpc(s, &m);
}

static int renameat9(struct p9_server *s, uint32_t a, const char *an, uint32_t b, const char *bn)
{
	struct msg m;
	begin(&m, P9_TRENAMEAT);
	u32(&m, a);
	str(&m, an);
	u32(&m, b);
	str(&m, bn);
	return rpc(s, &m);
}

static int unlinkat9(struct p9_server *s, uint32_t dfid, const char *name, uint32_t flags)
{
	struct msg m;
	begin(&m, P9_TUNLINKAT);
	u32(&m, dfid);
	str(&m, name);
	u32(&m, flags);
	return rpc(s, &m);
}

static int symlink9(struct p9_server *s, uint32_t dfid, const char *name, const char *target)
{
	struct msg m;
	begin(&m, P9_TSYMLINK);
	u32(&m, dfid);
	str(&m, name);
	str(&m, target);
	u32(&m, 0);
	return rpc(s, &m);
}

static void host_path(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", share, rel);
}

static void host_write(const char *rel, const char *text)
{
	char p[256];
	host_path(p, sizeof(p), rel);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static bool host_exists(const char *rel)
{
	char p[256];
	struct stat st;
	host_path(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static void host_read(const char *rel, char *out, size_t len)
{
	char p[256];
	host_path(p, sizeof(p), rel);
	out[0] = '\0';
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	size_t n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void make_tree(void)
{
	snprintf(top, sizeof(top), "/tmp/khyve-test-p9-XXXXXX");
	if (!mkdtemp(top))
		abort();
	snprintf(share, sizeof(share), "%s/share", top);
	mkdir(share, 0755);
	char p[256];
	snprintf(p, sizeof(p), "%s/secret", top);
	FILE *f = fopen(p, "w");
	fputs("outside\n", f);
	fclose(f);
	host_write("hello.txt", "hello from the share\n");
	host_path(p, sizeof(p), "dir");
	mkdir(p, 0755);
	host_write("dir/inner", "inner\n");
	host_path(p, sizeof(p), "abs");
	symlink("/etc", p);
	host_path(p, sizeof(p), "rel");
	symlink("../secret", p);
	host_path(p, sizeof(p), "dir/up");
	symlink("../..", p);
	host_path(p, sizeof(p), "loop");
	symlink("loop", p);
}

static struct p9_server *session(bool ro, unsigned max_fids)
{
	struct p9_server *s;
	CHECK_EQ(p9_server_new(share, ro, P9_MSIZE_MAX, max_fids, &s), 0);
	CHECK_EQ(version(s, 1u << 20, "9P2000.L"), 0);
	CHECK_EQ(attach(s, 0), 0);
	return s;
}

static void test_version(void)
{
	struct p9_server *s;
	CHECK_EQ(p9_server_new(share, false, 64 << 10, 0, &s), 0);
	/* msize: the smaller of the client's and the cap */
	CHECK_EQ(version(s, 1u << 20, "9P2000.L"), 0);
	CHECK_EQ(get(7, 4), 64u << 10);
	CHECK(!memcmp(reply + 13, "9P2000.L", 8));
	CHECK_EQ(version(s, 8192, "9P2000.L"), 0);
	CHECK_EQ(get(7, 4), 8192);
	CHECK_EQ(p9_server_msize(s), 8192);
	/* a reply never exceeds the agreed msize, whatever room is given */
	CHECK_EQ(attach(s, 0), 0);
	CHECK_EQ(version(s, 100, "9P2000.L"), EINVAL);
	CHECK_EQ(version(s, 8192, "9P2000"), 0);
	CHECK(!memcmp(reply + 13, "unknown", 7));
	/* Tversion ends the session: fid 0 is gone */
	CHECK_EQ(p9_server_fids(s), 0);
	p9_server_free(s);
}

static void test_file_ops(void)
{
	struct p9_server *s = session(false, 0);
	char buf[256];
	unsigned nq;
	/* read a host file */
	CHECK_EQ(WALK(s, 0, 1, &nq, "hello.txt"), 0);
	CHECK_EQ(lopen(s, 1, O_RDONLY), 0);
	CHECK_EQ(read_at(s, 1, 0, buf, sizeof(buf)), 0);
	CHECK(!strcmp(buf, "hello from the share\n"));
	CHECK_EQ(read_at(s, 1, 6, buf, 5), 0);
	CHECK(!strcmp(buf, "from"));
	CHECK_EQ(simple(s, P9_TGETATTR, 1), 0);
	CHECK_EQ(get(7, 8), 0x7ff);
	CHECK_EQ(get(7 + 8 + 13 + 4 + 4 + 4 + 8 + 8, 8), 21); /* size */
	CHECK_EQ(simple(s, P9_TCLUNK, 1), 0);
	CHECK_EQ(simple(s, P9_TCLUNK, 1), EBADF);

	/* create and write: the host sees it */
	CHECK_EQ(WALK(s, 0, 2, &nq, "dir"), 0);
	CHECK_EQ(lcreate(s, 2, "new.txt", O_RDWR), 0);
	CHECK_EQ(write_at(s, 2, 0, "written by the guest"), 0);
	CHECK_EQ(get(7, 4), 20);
	host_read("dir/new.txt", buf, sizeof(buf));
	CHECK(!strcmp(buf, "written by the guest"));
	CHECK_EQ(read_at(s, 2, 11, buf, sizeof(buf)), 0);
	CHECK(!strcmp(buf, "the guest"));
	/* setattr: truncate */
	struct msg m;
	begin(&m, P9_TSETATTR);
	u32(&m, 2);
	u32(&m, 0x8 | 0x1);
	u32(&m, 0600);
	u32(&m, 0);
	u32(&m, 0);
	u64(&m, 7);
	for (int i = 0; i < 4; i++)
		u64(&m, 0);
	CHECK_EQ(rpc(s, &m), 0);
	host_read("dir/new.txt", buf, sizeof(buf));
	CHECK(!strcmp(buf, "written"));
	struct stat st;
	char p[256];
	host_path(p, sizeof(p), "dir/new.txt");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
	begin(&m, P9_TFSYNC);
	u32(&m, 2);
	u32(&m, 0);
	CHECK_EQ(rpc(s, &m), 0);
	CHECK_EQ(simple(s, P9_TCLUNK, 2), 0);
	/* O_EXCL on an existing name */
	CHECK_EQ(WALK(s, 0, 2, &nq, "dir"), 0);
	CHECK_EQ(lcreate(s, 2, "new.txt", O_RDWR | O_CREAT | O_EXCL), EEXIST);
	CHECK_EQ(simple(s, P9_TCLUNK, 2), 0);

	/* mkdir, renameat, unlinkat */
	CHECK_EQ(mkdir9(s, 0, "made"), 0);
	CHECK(host_exists("made"));
	CHECK_EQ(WALK(s, 0, 3, &nq, "dir"), 0);
	CHECK_EQ(renameat9(s, 3, "new.txt", 0, "moved.txt"), 0);
	CHECK(!host_exists("dir/new.txt") && host_exists("moved.txt"));
	CHECK_EQ(unlinkat9(s, 0, "moved.txt", 0), 0);
	CHECK(!host_exists("moved.txt"));
	CHECK_EQ(unlinkat9(s, 0, "made", 0), EISDIR);
	CHECK_EQ(unlinkat9(s, 0, "made", 0x200), 0);
	CHECK(!host_exists("made"));
	/* symlink and readlink: the target is text, stored as given */
	CHECK_EQ(symlink9(s, 0, "sl", "dir/inner"), 0);
	CHECK_EQ(WALK(s, 0, 4, &nq, "sl"), 0);
	CHECK_EQ(simple(s, P9_TREADLINK, 4), 0);
	CHECK(get(7, 2) == 9 && !memcmp(reply + 9, "dir/inner", 9));
	/* hard link of a file; Trename by fid */
	CHECK_EQ(WALK(s, 0, 5, &nq, "hello.txt"), 0);
	begin(&m, P9_TLINK);
	u32(&m, 3);
	u32(&m, 5);
	str(&m, "hl");
	CHECK_EQ(rpc(s, &m), 0);
	host_read("dir/hl", buf, sizeof(buf));
	CHECK(!strcmp(buf, "hello from the share\n"));
	CHECK_EQ(WALK(s, 3, 6, &nq, "hl"), 0);
	begin(&m, P9_TRENAME);
	u32(&m, 6);
	u32(&m, 0);
	str(&m, "hl2");
	CHECK_EQ(rpc(s, &m), 0);
	CHECK(!host_exists("dir/hl") && host_exists("hl2"));
	CHECK_EQ(simple(s, P9_TREMOVE, 6), 0);
	CHECK(!host_exists("hl2"));
	CHECK_EQ(simple(s, P9_TCLUNK, 6), EBADF); /* Tremove clunked it */

	/* readdir lists what is there */
	CHECK_EQ(WALK(s, 0, 7, &nq, "dir"), 0);
	CHECK_EQ(lopen(s, 7, O_RDONLY), 0);
	begin(&m, P9_TREADDIR);
	u32(&m, 7);
	u64(&m, 0);
	u32(&m, 8192);
	CHECK_EQ(rpc(s, &m), 0);
	bool inner = false, up = false;
	for (size_t off = 11; off < 11 + get(7, 4);) {
		size_t nl = get(off + 22, 2);
		if (nl == 5 && !memcmp(reply + off + 24, "inner", 5))
			inner = true;
		if (nl == 2 && !memcmp(reply + off + 24, "up", 2))
			up = reply[off + 21] == DT_LNK && reply[off] == P9_QTSYMLINK;
		off += 24 + nl;
	}
	CHECK(inner && up);
	/* statfs, getlock/lock on an open file */
	CHECK_EQ(simple(s, P9_TSTATFS, 0), 0);
	CHECK_EQ(WALK(s, 0, 8, &nq, "hello.txt"), 0);
	CHECK_EQ(lopen(s, 8, O_RDWR), 0);
	begin(&m, P9_TLOCK);
	u32(&m, 8);
	u8(&m, 1);
	u32(&m, 0);
	u64(&m, 0);
	u64(&m, 0);
	u32(&m, 42);
	str(&m, "guest");
	CHECK_EQ(rpc(s, &m), 0);
	CHECK_EQ(reply[7], 0); /* SUCCESS */
	/* xattr walk: the list of a file's names (empty or not) */
	begin(&m, P9_TXATTRWALK);
	u32(&m, 8);
	u32(&m, 9);
	str(&m, "");
	CHECK_EQ(rpc(s, &m), 0);
	CHECK_EQ(simple(s, P9_TCLUNK, 9), 0);
	p9_server_free(s);
	host_write("hello.txt", "hello from the share\n");
	char pp[256];
	host_path(pp, sizeof(pp), "sl");
	unlink(pp);
	host_path(pp, sizeof(pp), "dir/hl");
	unlink(pp);
}

static void test_escapes(void)
{
	struct p9_server *s = session(false, 0);
	unsigned nq;
	struct stat rst;
	CHECK(stat(share, &rst) == 0);
	/* ".." from the root stays at the root */
	CHECK_EQ(WALK(s, 0, 1, &nq, ".."), 0);
	CHECK_EQ(last_qid_path(nq), rst.st_ino);
	CHECK_EQ(WALK(s, 0, 10, &nq, "..", "..", "..", "..", "etc"), ENOENT);
	CHECK_EQ(WALK(s, 0, 11, &nq, "dir", "..", "..", ".."), 0);
	CHECK_EQ(last_qid_path(nq), rst.st_ino);
	/* a walk never follows a symlink: not through it, not at its end */
	CHECK_EQ(WALK(s, 0, 2, &nq, "abs", "passwd"), ENOENT); /* partial walk: 1 qid */
	CHECK_EQ(nq, 1);
	CHECK_EQ(WALK(s, 0, 2, &nq, "abs"), 0);
	CHECK_EQ(reply[9], P9_QTSYMLINK);
	CHECK_EQ(lopen(s, 2, O_RDONLY), ELOOP);
	CHECK_EQ(WALK(s, 0, 3, &nq, "dir", "up", "secret"), ENOENT);
	CHECK_EQ(WALK(s, 0, 3, &nq, "rel"), 0);
	CHECK_EQ(lopen(s, 3, O_RDONLY), ELOOP);
	CHECK_EQ(WALK(s, 0, 4, &nq, "loop", "x"), ENOENT);
	/* getattr of a symlink is the link's own */
	CHECK_EQ(simple(s, P9_TGETATTR, 2), 0);
	CHECK(S_ISLNK(get(7 + 8 + 13, 4)));
	/* names with '/' or NUL never decode */
	CHECK_EQ(WALK(s, 0, 4, &nq, "../secret"), EINVAL);
	CHECK_EQ(WALK(s, 0, 4, &nq, "/etc"), EINVAL);
	/* creating over a symlink that points out fails, and nothing outside
	 * is made */
	CHECK_EQ(symlink9(s, 0, "dangling", "../made-outside"), 0);
	CHECK_EQ(WALK(s, 0, 5, &nq, "dir"), 0);
	CHECK_EQ(simple(s, P9_TCLUNK, 5), 0);
	CHECK_EQ(WALK(s, 0, 5, &nq, "."), 0);
	CHECK_EQ(lcreate(s, 5, "dangling", O_WRONLY), ELOOP);
	char p[256];
	struct stat st;
	snprintf(p, sizeof(p), "%s/made-outside", top);
	CHECK(lstat(p, &st) < 0);
	CHECK_EQ(mkdir9(s, 0, ".."), EINVAL);
	CHECK_EQ(unlinkat9(s, 0, "..", 0x200), EINVAL);
	CHECK_EQ(renameat9(s, 0, "hello.txt", 0, ".."), EINVAL);
	/* a hard link of a symlink (through its magic link) is refused */
	struct msg m;
	begin(&m, P9_TLINK);
	u32(&m, 0);
	u32(&m, 3);
	str(&m, "hardsecret");
	CHECK_EQ(rpc(s, &m), EPERM);
	/* devices cannot be made; FIFOs are names only and never opened */
	begin(&m, P9_TMKNOD);
	u32(&m, 0);
	str(&m, "null");
	u32(&m, S_IFCHR | 0666);
	u32(&m, 1);
	u32(&m, 3);
	u32(&m, 0);
	CHECK_EQ(rpc(s, &m), EPERM);
	begin(&m, P9_TMKNOD);
	u32(&m, 0);
	str(&m, "fifo");
	u32(&m, S_IFIFO | 0644);
	u32(&m, 0);
	u32(&m, 0);
	u32(&m, 0);
	CHECK_EQ(rpc(s, &m), 0);
	CHECK_EQ(WALK(s, 0, 6, &nq, "fifo"), 0);
	CHECK_EQ(lopen(s, 6, O_RDONLY), EOPNOTSUPP);
	/* the root cannot be removed or renamed */
	CHECK_EQ(WALK(s, 0, 7, &nq, "."), 0);
	CHECK_EQ(simple(s, P9_TREMOVE, 7), EBUSY);
	p9_server_free(s);
	host_path(p, sizeof(p), "dangling");
	unlink(p);
	host_path(p, sizeof(p), "fifo");
	unlink(p);
	snprintf(p, sizeof(p), "%s/secret", top);
	char buf[64];
	FILE *f = fopen(p, "r");
	CHECK(f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "outside\n"));
	if (f)
		fclose(f);
}

static void test_readonly(void)
{
	struct p9_server *s = session(true, 0);
	unsigned nq;
	char buf[64];
	CHECK_EQ(WALK(s, 0, 1, &nq, "hello.txt"), 0);
	CHECK_EQ(lopen(s, 1, O_RDWR), EROFS);
	CHECK_EQ(lopen(s, 1, O_RDONLY | O_TRUNC), EROFS);
	CHECK_EQ(lopen(s, 1, O_RDONLY), 0);
	CHECK_EQ(read_at(s, 1, 0, buf, sizeof(buf)), 0);
	CHECK(!strcmp(buf, "hello from the share\n"));
	CHECK_EQ(write_at(s, 1, 0, "x"), EROFS);
	CHECK_EQ(WALK(s, 0, 2, &nq, "dir"), 0);
	CHECK_EQ(lcreate(s, 2, "x", O_WRONLY), EROFS);
	CHECK_EQ(mkdir9(s, 0, "x"), EROFS);
	CHECK_EQ(unlinkat9(s, 0, "hello.txt", 0), EROFS);
	CHECK_EQ(renameat9(s, 0, "hello.txt", 0, "y"), EROFS);
	CHECK_EQ(symlink9(s, 0, "y", "z"), EROFS);
	struct msg m;
	begin(&m, P9_TSETATTR);
	u32(&m, 1);
	u32(&m, 0x8);
	u32(&m, 0);
	u32(&m, 0);
	u32(&m, 0);
	u64(&m, 0);
	for (int i = 0; i < 4; i++)
		u64(&m, 0);
	CHECK_EQ(rpc(s, &m), EROFS);
	CHECK(host_exists("hello.txt") && !host_exists("x") && !host_exists("y"));
	p9_server_free(s);
}

static void test_bounds(void)
{
	/* at most max_fids fids */
	struct p9_server *s = session(false, 4);
	unsigned nq;
	for (uint32_t f = 1; f < 4; f++)
		CHECK_EQ(WALK(s, 0, f, &nq, "dir"), 0);
	CHECK_EQ(WALK(s, 0, 4, &nq, "dir"), EMFILE);
	CHECK_EQ(p9_server_fids(s), 4);
	CHECK_EQ(WALK(s, 0, 3, &nq, "dir"), EEXIST); /* newfid in use */
	p9_server_reset(s);
	CHECK_EQ(p9_server_fids(s), 0);
	CHECK_EQ(attach(s, 0), 0);

	/* malformed messages: an Rlerror with the tag, never a crash */
	struct msg m;
	begin(&m, P9_TWALK);
	u32(&m, 0);
	u32(&m, 1);
	u16(&m, 17); /* more names than 9P allows */
	CHECK_EQ(rpc(s, &m), EINVAL);
	begin(&m, P9_TWALK);
	u32(&m, 0);
	u32(&m, 1);
	u16(&m, 1);
	u16(&m, 200); /* a string longer than the message */
	CHECK_EQ(rpc(s, &m), EPROTO);
	begin(&m, P9_TGETATTR);
	u32(&m, 0); /* the request mask is missing */
	CHECK_EQ(rpc(s, &m), EPROTO);
	begin(&m, P9_TCLUNK);
	u32(&m, 0);
	u32(&m, 0); /* trailing bytes */
	CHECK_EQ(rpc(s, &m), EPROTO);
	begin(&m, 200); /* no such type */
	CHECK_EQ(rpc(s, &m), EOPNOTSUPP);
	CHECK_EQ(get(5, 2), 7); /* the tag is kept */
	/* a size word larger than the bytes sent */
	begin(&m, P9_TCLUNK);
	u32(&m, 0);
	m.b[0] = 100;
	rlen = p9_server_handle(s, m.b, m.n, reply, sizeof(reply));
	CHECK(rlen == 11 && reply[4] == P9_RLERROR && get(7, 4) == EPROTO);
	/* too short for a header */
	rlen = p9_server_handle(s, m.b, 3, reply, sizeof(reply));
	CHECK(rlen == 11 && get(5, 2) == P9_NOTAG);
	/* no room for an Rlerror: nothing written */
	CHECK_EQ(p9_server_handle(s, m.b, 3, reply, 10), 0);
	/* a read never gives more than the room for the reply */
	CHECK_EQ(WALK(s, 0, 1, &nq, "hello.txt"), 0);
	CHECK_EQ(lopen(s, 1, O_RDONLY), 0);
	begin(&m, P9_TREAD);
	u32(&m, 1);
	u64(&m, 0);
	u32(&m, 1000);
	CHECK_EQ(rpc_cap(s, &m, 16), 0);
	CHECK(rlen == 16 && get(7, 4) == 5 && !memcmp(reply + 11, "hello", 5));
	/* nor an offset past what a file can have */
	begin(&m, P9_TREAD);
	u32(&m, 1);
	u64(&m, UINT64_MAX);
	u32(&m, 10);
	CHECK_EQ(rpc(s, &m), EINVAL);
	/* a Twrite whose count runs past the message */
	begin(&m, P9_TWRITE);
	u32(&m, 1);
	u64(&m, 0);
	u32(&m, 1000);
	CHECK_EQ(rpc(s, &m), EPROTO);
	p9_server_free(s);
}

int main(void)
{
	make_tree();
	test_version();
	test_file_ops();
	test_escapes();
	test_readonly();
	test_bounds();
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return UNIT_RESULT();
}
