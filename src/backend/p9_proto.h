/* The 9P2000.L wire format: decoding the T-messages a guest sends and
 * encoding the R-messages khyve answers with.
 *
 * Decoding works on a host copy of the request (never on guest RAM: the
 * guest could change bytes between a check and their use) and copies
 * every string it keeps into the message struct, so nothing in a decoded
 * message points into the request or the guest. Every field is checked:
 * the size word against the bytes there are, each string's length
 * against what is left and against its limit, names for '/' and NUL,
 * counts against what follows. A message that fails any check decodes to
 * an error (a Linux errno) to answer with Rlerror, keeping its tag when
 * the header could be read. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define P9_HDR_SIZE 7     /* size[4] type[1] tag[2] */
#define P9_NOTAG 0xFFFF
#define P9_NOFID 0xFFFFFFFFu
#define P9_MAXWELEM 16    /* names in one Twalk */
#define P9_NAME_MAX 255   /* one path component */
#define P9_PATH_MAX 4096  /* a symlink target */
#define P9_CLIENT_ID_MAX 255
#define P9_IOHDR 24       /* Rread/Twrite overhead, rounded as Linux does */

enum p9_type {
	P9_TLERROR = 6, P9_RLERROR = 7,
	P9_TSTATFS = 8, P9_RSTATFS = 9,
	P9_TLOPEN = 12, P9_RLOPEN = 13,
	P9_TLCREATE = 14, P9_RLCREATE = 15,
	P9_TSYMLINK = 16, P9_RSYMLINK = 17,
	P9_TMKNOD = 18, P9_RMKNOD = 19,
	P9_TRENAME = 20, P9_RRENAME = 21,
	P9_TREADLINK = 22, P9_RREADLINK = 23,
	P9_TGETATTR = 24, P9_RGETATTR = 25,
	P9_TSETATTR = 26, P9_RSETATTR = 27,
	P9_TXATTRWALK = 30, P9_RXATTRWALK = 31,
	P9_TXATTRCREATE = 32, P9_RXATTRCREATE = 33,
	P9_TREADDIR = 40, P9_RREADDIR = 41,
	P9_TFSYNC = 50, P9_RFSYNC = 51,
	P9_TLOCK = 52, P9_RLOCK = 53,
	P9_TGETLOCK = 54, P9_RGETLOCK = 55,
	P9_TLINK = 70, P9_RLINK = 71,
	P9_TMKDIR = 72, P9_RMKDIR = 73,
	P9_TRENAMEAT = 74, P9_RRENAMEAT = 75,
	P9_TUNLINKAT = 76, P9_RUNLINKAT = 77,
	P9_TVERSION = 100, P9_RVERSION = 101,
	P9_TAUTH = 102, P9_RAUTH = 103,
	P9_TATTACH = 104, P9_RATTACH = 105,
	P9_TFLUSH = 108, P9_RFLUSH = 109,
	P9_TWALK = 110, P9_RWALK = 111,
	P9_TREAD = 116, P9_RREAD = 117,
	P9_TWRITE = 118, P9_RWRITE = 119,
	P9_TCLUNK = 120, P9_RCLUNK = 121,
	P9_TREMOVE = 122, P9_RREMOVE = 123,
};

#define P9_QTDIR 0x80
#define P9_QTSYMLINK 0x02
#define P9_QTFILE 0x00

struct p9_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

/* A decoded T-message. Strings are NUL-terminated copies. */
struct p9_msg {
	uint8_t type;
	uint16_t tag;
	uint32_t fid;      /* the fid the message is about (dfid for mkdir...) */
	uint32_t newfid;   /* walk, xattrwalk; link: the file's fid; rename: dfid */
	uint32_t flags;    /* lopen, lcreate, unlinkat, lock, xattrcreate */
	uint32_t mode;     /* lcreate, mkdir, mknod; setattr's mode */
	uint32_t gid;      /* lcreate, mkdir, symlink, mknod; setattr's gid */
	uint32_t uid;      /* setattr, attach (n_uname) */
	uint32_t valid;    /* setattr */
	uint32_t count;    /* read, write, readdir; version: msize */
	uint32_t major, minor;
	uint32_t proc_id;  /* lock, getlock */
	uint64_t offset;   /* read, write, readdir; lock: start */
	uint64_t length;   /* lock: length; getattr: request mask; setattr: size */
	uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec; /* setattr */
	uint8_t lock_type; /* lock, getlock */
	uint16_t oldtag;   /* flush */
	uint16_t nwname;   /* walk */
	uint32_t newdirfid; /* renameat */
	/* walk's names; name[0] doubles as the name of lcreate, symlink, mknod,
	 * rename, mkdir, link, unlinkat, xattrwalk, renameat (old), and
	 * version's and attach's strings */
	char name[P9_MAXWELEM][P9_NAME_MAX + 1];
	char name2[P9_NAME_MAX + 1];  /* renameat's new name; attach's aname */
	char target[P9_PATH_MAX + 1]; /* symlink's target; lock's client id */
	/* Twrite's data: a pointer into the request buffer given to
	 * p9_decode (not guest RAM), valid while that buffer is. */
	const uint8_t *data;
};

/* Decode the message in buf[0..len). Returns 0, or a positive Linux
 * errno to answer with (m->tag is set when the header was readable; else
 * it is P9_NOTAG). */
int p9_decode(const uint8_t *buf, size_t len, struct p9_msg *m);

/* An R-message being built in a caller's buffer. Writes past cap set
 * overflow and are dropped; p9_enc_finish fails then. */
struct p9_enc {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
};

void p9_enc_begin(struct p9_enc *e, uint8_t *buf, size_t cap, uint8_t type, uint16_t tag);
void p9_enc_u8(struct p9_enc *e, uint8_t v);
void p9_enc_u16(struct p9_enc *e, uint16_t v);
void p9_enc_u32(struct p9_enc *e, uint32_t v);
void p9_enc_u64(struct p9_enc *e, uint64_t v);
void p9_enc_str(struct p9_enc *e, const char *s, size_t n);
void p9_enc_qid(struct p9_enc *e, const struct p9_qid *q);
void p9_enc_bytes(struct p9_enc *e, const void *p, size_t n);
/* Reserve n bytes to be filled in place; NULL on overflow. */
uint8_t *p9_enc_reserve(struct p9_enc *e, size_t n);
/* Write the size word. Returns the message length, 0 on overflow. */
size_t p9_enc_finish(struct p9_enc *e);
/* An Rlerror for tag with errno err into buf (at least 11 bytes: 0
 * otherwise). Returns its length. */
size_t p9_enc_error(uint8_t *buf, size_t cap, uint16_t tag, uint32_t err);
