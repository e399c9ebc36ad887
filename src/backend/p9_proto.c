#include "backend/p9_proto.h"

#include <errno.h>
#include <string.h>

struct dec {
	const uint8_t *p;
	size_t len, off;
	int err; /* first error: a Linux errno */
};

static bool need(struct dec *d, size_t n)
{
	if (d->err)
		return false;
	if (n > d->len - d->off) {
		d->err = EPROTO;
		return false;
	}
	return true;
}

static uint64_t get_le(struct dec *d, unsigned n)
{
	if (!need(d, n))
		return 0;
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)d->p[d->off + i] << (8 * i);
	d->off += n;
	return v;
}

static uint8_t get8(struct dec *d) { return (uint8_t)get_le(d, 1); }
static uint16_t get16(struct dec *d) { return (uint16_t)get_le(d, 2); }
static uint32_t get32(struct dec *d) { return (uint32_t)get_le(d, 4); }
static uint64_t get64(struct dec *d) { return get_le(d, 8); }

enum str_kind {
	STR_ANY,  /* no NUL inside (version, uname, aname, client id, target) */
	STR_NAME, /* a path component: no NUL, no '/' */
};

/* string[s]: len[2] bytes. Copied NUL-terminated into out (room max+1). */
static void get_str(struct dec *d, char *out, size_t max, enum str_kind kind)
{
	out[0] = '\0';
	uint16_t n = get16(d);
	if (!need(d, n))
		return;
	if (n > max) {
		d->err = kind == STR_NAME ? ENAMETOOLONG : EINVAL;
		return;
	}
	const uint8_t *s = d->p + d->off;
	if (memchr(s, '\0', n) || (kind == STR_NAME && memchr(s, '/', n))) {
		d->err = EINVAL;
		return;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	d->off += n;
}

static void get_name(struct dec *d, char *out) { get_str(d, out, P9_NAME_MAX, STR_NAME); }

int p9_decode(const uint8_t *buf, size_t len, struct p9_msg *m)
{
	m->tag = P9_NOTAG;
	m->type = 0;
	m->data = NULL;
	if (len < P9_HDR_SIZE)
		return EPROTO;
	struct dec d = { .p = buf, .len = len };
	uint32_t size = get32(&d);
	m->type = get8(&d);
	m->tag = get16(&d);
	/* The size word covers the whole message: never more than was sent. */
	if (size < P9_HDR_SIZE || size > len)
		return EPROTO;
	d.len = size;

	switch (m->type) {
	case P9_TVERSION:
		m->count = get32(&d); /* msize */
		get_str(&d, m->name[0], P9_NAME_MAX, STR_ANY);
		break;
	case P9_TAUTH:
		m->fid = get32(&d); /* afid */
		get_str(&d, m->name[0], P9_NAME_MAX, STR_ANY);
		get_str(&d, m->name2, P9_NAME_MAX, STR_ANY);
		m->uid = get32(&d);
		break;
	case P9_TATTACH:
		m->fid = get32(&d);
		m->newfid = get32(&d); /* afid */
		get_str(&d, m->name[0], P9_NAME_MAX, STR_ANY); /* uname */
		get_str(&d, m->name2, P9_NAME_MAX, STR_ANY);   /* aname */
		m->uid = get32(&d);                            /* n_uname */
		break;
	case P9_TFLUSH:
		m->oldtag = get16(&d);
		break;
	case P9_TWALK:
		m->fid = get32(&d);
		m->newfid = get32(&d);
		m->nwname = get16(&d);
		if (!d.err && m->nwname > P9_MAXWELEM)
			d.err = EINVAL;
		for (unsigned i = 0; i < m->nwname && !d.err; i++) {
			get_name(&d, m->name[i]);
			if (!d.err && !m->name[i][0])
				d.err = EINVAL;
		}
		break;
	case P9_TLOPEN:
		m->fid = get32(&d);
		m->flags = get32(&d);
		break;
	case P9_TLCREATE:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		m->flags = get32(&d);
		m->mode = get32(&d);
		m->gid = get32(&d);
		break;
	case P9_TSYMLINK:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		get_str(&d, m->target, P9_PATH_MAX, STR_ANY);
		m->gid = get32(&d);
		break;
	case P9_TMKNOD:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		m->mode = get32(&d);
		m->major = get32(&d);
		m->minor = get32(&d);
		m->gid = get32(&d);
		break;
	case P9_TRENAME:
		m->fid = get32(&d);
		m->newfid = get32(&d); /* dfid */
		get_name(&d, m->name[0]);
		break;
	case P9_TREADLINK:
	case P9_TSTATFS:
	case P9_TCLUNK:
	case P9_TREMOVE:
		m->fid = get32(&d);
		break;
	case P9_TGETATTR:
		m->fid = get32(&d);
		m->length = get64(&d); /* request mask */
		break;
	case P9_TSETATTR:
		m->fid = get32(&d);
		m->valid = get32(&d);
		m->mode = get32(&d);
		m->uid = get32(&d);
		m->gid = get32(&d);
		m->length = get64(&d); /* size */
		m->atime_sec = get64(&d);
		m->atime_nsec = get64(&d);
		m->mtime_sec = get64(&d);
		m->mtime_nsec = get64(&d);
		break;
	case P9_TXATTRWALK:
		m->fid = get32(&d);
		m->newfid = get32(&d);
		get_str(&d, m->name[0], P9_NAME_MAX, STR_ANY); /* xattr names may hold '/' */
		break;
	case P9_TXATTRCREATE:
		m->fid = get32(&d);
		get_str(&d, m->name[0], P9_NAME_MAX, STR_ANY);
		m->length = get64(&d);
		m->flags = get32(&d);
		break;
	case P9_TREADDIR:
	case P9_TREAD:
		m->fid = get32(&d);
		m->offset = get64(&d);
		m->count = get32(&d);
		break;
	case P9_TWRITE:
		m->fid = get32(&d);
		m->offset = get64(&d);
		m->count = get32(&d);
		if (need(&d, m->count)) {
			m->data = d.p + d.off;
			d.off += m->count;
		}
		break;
	case P9_TFSYNC:
		m->fid = get32(&d);
		/* datasync[4] came later (Linux 4.x); older clients omit it */
		m->flags = d.len - d.off >= 4 ? get32(&d) : 0;
		break;
	case P9_TLOCK:
		m->fid = get32(&d);
		m->lock_type = get8(&d);
		m->flags = get32(&d);
		m->offset = get64(&d);
		m->length = get64(&d);
		m->proc_id = get32(&d);
		get_str(&d, m->target, P9_CLIENT_ID_MAX, STR_ANY);
		break;
	case P9_TGETLOCK:
		m->fid = get32(&d);
		m->lock_type = get8(&d);
		m->offset = get64(&d);
		m->length = get64(&d);
		m->proc_id = get32(&d);
		get_str(&d, m->target, P9_CLIENT_ID_MAX, STR_ANY);
		break;
	case P9_TLINK:
		m->fid = get32(&d);    /* dfid */
		m->newfid = get32(&d); /* the file */
		get_name(&d, m->name[0]);
		break;
	case P9_TMKDIR:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		m->mode = get32(&d);
		m->gid = get32(&d);
		break;
	case P9_TRENAMEAT:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		m->newdirfid = get32(&d);
		get_name(&d, m->name2);
		break;
	case P9_TUNLINKAT:
		m->fid = get32(&d);
		get_name(&d, m->name[0]);
		m->flags = get32(&d);
		break;
	default:
		return EOPNOTSUPP;
	}
	if (d.err)
		return d.err;
	/* Trailing bytes mean the client and khyve disagree on the format. */
	if (d.off != d.len)
		return EPROTO;
	return 0;
}

void p9_enc_begin(struct p9_enc *e, uint8_t *buf, size_t cap, uint8_t type, uint16_t tag)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->overflow = false;
	p9_enc_u32(e, 0);
	p9_enc_u8(e, type);
	p9_enc_u16(e, tag);
}

uint8_t *p9_enc_reserve(struct p9_enc *e, size_t n)
{
	if (e->overflow || n > e->cap - e->len) {
		e->overflow = true;
		return NULL;
	}
	uint8_t *p = e->buf + e->len;
	e->len += n;
	return p;
}

static void put_le(struct p9_enc *e, uint64_t v, unsigned n)
{
	uint8_t *p = p9_enc_reserve(e, n);
	if (p)
		for (unsigned i = 0; i < n; i++)
			p[i] = (uint8_t)(v >> (8 * i));
}

void p9_enc_u8(struct p9_enc *e, uint8_t v) { put_le(e, v, 1); }
void p9_enc_u16(struct p9_enc *e, uint16_t v) { put_le(e, v, 2); }
void p9_enc_u32(struct p9_enc *e, uint32_t v) { put_le(e, v, 4); }
void p9_enc_u64(struct p9_enc *e, uint64_t v) { put_le(e, v, 8); }

void p9_enc_bytes(struct p9_enc *e, const void *src, size_t n)
{
	uint8_t *p = p9_enc_reserve(e, n);
	if (p && n)
		memcpy(p, src, n);
}

void p9_enc_str(struct p9_enc *e, const char *s, size_t n)
{
	if (n > 0xFFFF) {
		e->overflow = true;
		return;
	}
	p9_enc_u16(e, (uint16_t)n);
	p9_enc_bytes(e, s, n);
}

void p9_enc_qid(struct p9_enc *e, const struct p9_qid *q)
{
	p9_enc_u8(e, q->type);
	p9_enc_u32(e, q->version);
	p9_enc_u64(e, q->path);
}

size_t p9_enc_finish(struct p9_enc *e)
{
	if (e->overflow || e->len > 0xFFFFFFFFu)
		return 0;
	uint32_t n = (uint32_t)e->len;
	for (unsigned i = 0; i < 4; i++)
		e->buf[i] = (uint8_t)(n >> (8 * i));
	return e->len;
}

size_t p9_enc_error(uint8_t *buf, size_t cap, uint16_t tag, uint32_t err)
{
	struct p9_enc e;
	p9_enc_begin(&e, buf, cap, P9_RLERROR, tag);
	p9_enc_u32(&e, err);
	return p9_enc_finish(&e);
}
