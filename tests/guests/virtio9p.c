/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A hostile 9P client for virtio-9p (1af4:1049). The host shares a
 * directory holding "file" (text), "out" (a symlink to ../secret), "up" (a
 * symlink to ..) and "dir"; "secret" lies beside the share. The guest
 * reads the mount tag, then sends, each answered and checked:
 *   version, attach; walks out by "..", through "up", to "out" and an open
 *   of it; names with '/' and overlong names; creates over "out"; a link
 *   of "out"; a rename to ".."; size words larger and smaller than the
 *   bytes sent, unknown types, trailing garbage, 17 walk names, a read of
 *   4 GiB into a 16-byte buffer, a reply buffer of 3 bytes, a write at
 *   offset 2^63; finally a normal read of "file".
 * Output:
 *   P9: tag=<tag>
 *   P9: <case> <R-type or "err"> [errno or detail]
 *   PASS
 * A case fails when khyve answers anything but what is expected; what the
 * host checks afterwards (the secret and the share's listing) is the
 * integration test's part.
 *
 * Options (the command line), for a share served by khyve run as a user
 * (tests/integration/test_unprivileged.py):
 *   make=1  after the hostile cases: create "made" (mode 0640) and write,
 *           read back and fsync it; mkdir "gdir" and create "gdir/inner";
 *           the host checks that they are the user's.
 *   ro=1    a read-only share, instead of the hostile cases (which write):
 *           create, mkdir, an open for writing, a truncating open, setattr,
 *           unlinkat and rename each get EROFS; "file" still reads.
 *   private=1  "private" lies in the share, unreadable for khyve's user on
 *           the host: its open gets EACCES and a chmod of it EPERM (or
 *           EROFS on a ro share): the host's permissions hold.
 *   P9: <case> ok | err <errno>
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define MSIZE 8192

static uint8_t qmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t out[MSIZE] __attribute__((aligned(16)));
static uint8_t in[MSIZE] __attribute__((aligned(16)));
static struct virtq q;
static unsigned n;

static void put(uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        out[n++] = (uint8_t)(v >> (8 * i));
}
static void str(const char *s)
{
    unsigned l = (unsigned)strlen(s);
    put(l, 2);
    memcpy(out + n, s, l);
    n += l;
}
static void begin(uint8_t type, uint16_t tag)
{
    n = 0;
    put(0, 4);
    put(type, 1);
    put(tag, 2);
}
static uint32_t le(const uint8_t *p, unsigned bytes)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* Send out[0..len) (size word: size) with inlen bytes of reply room;
 * returns the used length. */
static uint32_t xfer(uint32_t size, unsigned len, unsigned inlen)
{
    for (unsigned i = 0; i < 4; i++)
        out[i] = (uint8_t)(size >> (8 * i));
    memset(in, 0xee, sizeof(in));
    struct vbuf b[2] = { { out, len, false }, { in, inlen, true } };
    if (virtq_add(&q, b, 2, NULL) < 0)
        test_fail("queue full");
    virtq_kick(&q);
    uint32_t used = 0;
    if (virtq_wait_used(&q, &used, 5000) < 0)
        test_fail("no reply after 5 s (status 0x%x)", virtio_status(q.dev));
    if (used > inlen)
        test_fail("used length %u is over the %u bytes given", used, inlen);
    return used;
}

/* Send the message built; the reply's type, or 0 for an Rlerror (then
 * *err is its errno). */
static uint8_t rpc(unsigned *err)
{
    uint32_t used = xfer(n, n, MSIZE);
    if (used < 7 || le(in, 4) != used)
        test_fail("reply of %u bytes with size word %u", used, le(in, 4));
    if (le(in + 5, 2) != le(out + 5, 2))
        test_fail("reply tag %u for request tag %u", le(in + 5, 2), le(out + 5, 2));
    if (in[4] == 7) {
        *err = le(in + 7, 4);
        return 0;
    }
    if (in[4] != out[4] + 1)
        test_fail("reply type %u to request type %u", in[4], out[4]);
    return in[4];
}

static void expect_err(const char *name, unsigned want)
{
    unsigned err = 0;
    uint8_t t = rpc(&err);
    printf("P9: %s %s %u\n", name, t ? "ok" : "err", err);
    if (t || (want && err != want))
        test_fail("%s: expected errno %u, got %s %u", name, want, t ? "a reply" : "errno", err);
}

static void walk(uint32_t fid, uint32_t newfid, const char *const *names, unsigned count)
{
    begin(110, 1);
    put(fid, 4);
    put(newfid, 4);
    put(count, 2);
    for (unsigned i = 0; i < count; i++)
        str(names[i]);
}

/* A walk that must not reach its end: an error or fewer qids. */
static void walk_short(const char *name, const char *const *names, unsigned count)
{
    walk(0, 50, names, count);
    unsigned err = 0;
    uint8_t t = rpc(&err);
    unsigned nq = t ? le(in + 7, 2) : 0;
    printf("P9: %s %s %u\n", name, t ? "walked" : "err", t ? nq : err);
    if (t && nq >= count)
        test_fail("%s: the whole walk succeeded", name);
}

/* Walk from the root fid to fid newfid; the Rwalk must reach the end. */
static void walk_to(uint32_t newfid, const char *const *names, unsigned count)
{
    unsigned err = 0;
    walk(0, newfid, names, count);
    if (rpc(&err) != 111 || le(in + 7, 2) != count)
        test_fail("walk to fid %u: %u", newfid, err);
}

static void clunk(uint32_t fid)
{
    unsigned err = 0;
    begin(120, 1);
    put(fid, 4);
    if (rpc(&err) != 121)
        test_fail("clunk %u: %u", fid, err);
}

static void lcreate(uint32_t fid, const char *name, uint32_t flags, uint32_t mode)
{
    begin(14, 1);
    put(fid, 4);
    str(name);
    put(flags, 4);
    put(mode, 4);
    put(0, 4);
}

static void mkdir_msg(const char *name)
{
    begin(72, 1);
    put(0, 4);
    str(name);
    put(0755, 4);
    put(0, 4);
}

static void lopen(uint32_t fid, uint32_t flags)
{
    begin(12, 1);
    put(fid, 4);
    put(flags, 4);
}

static void chmod_msg(uint32_t fid, uint32_t mode)
{
    begin(26, 1);
    put(fid, 4);
    put(1, 4); /* P9_SETATTR_MODE */
    put(mode, 4);
    for (unsigned i = 0; i < 2; i++)
        put(0, 4);
    for (unsigned i = 0; i < 5; i++)
        put(0, 8);
}

/* A reply that must be of type want; says "P9: name ok". */
static void expect_ok(const char *name, uint8_t want)
{
    unsigned err = 0;
    if (rpc(&err) != want)
        test_fail("%s: errno %u", name, err);
    printf("P9: %s ok\n", name);
}

static void write_file(uint32_t fid, const char *text)
{
    unsigned l = (unsigned)strlen(text);
    begin(118, 1);
    put(fid, 4);
    put(0, 8);
    put(l, 4);
    memcpy(out + n, text, l);
    n += l;
    unsigned err = 0;
    if (rpc(&err) != 119 || le(in + 7, 4) != l)
        test_fail("write %u bytes: errno %u", l, err);
}

static void read_file(uint32_t fid, const char *want)
{
    unsigned err = 0;
    begin(116, 1);
    put(fid, 4);
    put(0, 8);
    put(200, 4);
    if (rpc(&err) != 117)
        test_fail("read: errno %u", err);
    unsigned cnt = le(in + 7, 4);
    if (cnt != strlen(want) || memcmp(in + 11, want, cnt))
        test_fail("read %u bytes, not the %u written", cnt, (unsigned)strlen(want));
}

/* Files made by the guest: the host checks their owner. */
static void make_files(void)
{
    static const char *const dot[] = { "." };
    walk_to(10, dot, 1);
    lcreate(10, "made", 2 | 0100, 0640); /* O_RDWR | O_CREAT */
    expect_ok("create-made", 15);
    write_file(10, "made by the guest\n");
    read_file(10, "made by the guest\n");
    begin(50, 1);
    put(10, 4);
    put(0, 4);
    expect_ok("fsync-made", 51);
    clunk(10);
    mkdir_msg("gdir");
    expect_ok("mkdir-gdir", 73);
    static const char *const gdir[] = { "gdir" };
    walk_to(11, gdir, 1);
    lcreate(11, "inner", 1 | 0100, 0644);
    expect_ok("create-inner", 15);
    write_file(11, "inner\n");
    clunk(11);
}

/* Every write a ro share must refuse, and the read it must allow. */
static void ro_cases(void)
{
    static const char *const dot[] = { "." };
    static const char *const file[] = { "file" };
    walk_to(10, dot, 1);
    lcreate(10, "made", 2 | 0100, 0644);
    expect_err("ro-create", 30);
    mkdir_msg("gdir");
    expect_err("ro-mkdir", 30);
    walk_to(11, file, 1);
    lopen(11, 2); /* O_RDWR */
    expect_err("ro-open-rdwr", 30);
    lopen(11, 01000); /* O_RDONLY | O_TRUNC */
    expect_err("ro-open-trunc", 30);
    chmod_msg(11, 0666);
    expect_err("ro-chmod", 30);
    begin(76, 1);
    put(0, 4);
    str("file");
    put(0, 4);
    expect_err("ro-unlink", 30);
    begin(74, 1);
    put(0, 4);
    str("file");
    put(0, 4);
    str("moved");
    expect_err("ro-rename", 30);
    lopen(11, 0);
    expect_ok("ro-open-read", 13);
    read_file(11, "hello from the host\n");
    printf("P9: ro-read ok\n");
    clunk(11);
    clunk(10);
}

static void private_cases(bool ro)
{
    static const char *const priv[] = { "private" };
    walk_to(12, priv, 1);
    lopen(12, 0);
    expect_err("private-open", 13); /* EACCES */
    chmod_msg(12, 0644);
    expect_err("private-chmod", ro ? 30 : 1);
    clunk(12);
}

int main(void)
{
    int bdf = pci_find_device(0x1af4, 0x1049, 0);
    if (bdf < 0)
        test_fail("no virtio-9p device");
    struct virtio_dev d;
    if (!virtio_open(&d, (uint16_t)bdf))
        test_fail("not a modern virtio device");
    if (!(virtio_device_features(&d) & 1))
        test_fail("no VIRTIO_9P_MOUNT_TAG");
    if (!virtio_negotiate(&d, 1))
        test_fail("FEATURES_OK refused");
    char tag[64];
    unsigned tl = virtio_cfg_read16(&d, 0);
    if (tl == 0 || tl >= sizeof(tag))
        test_fail("tag length %u", tl);
    for (unsigned i = 0; i < tl; i++)
        tag[i] = (char)virtio_cfg_read8(&d, 2 + i);
    tag[tl] = 0;
    printf("P9: tag=%s\n", tag);
    virtio_setup_irq(&d, VIRTIO_IRQ_POLL, 0x40);
    if (!virtq_setup(&d, &q, 0, 64, qmem, 0))
        test_fail("queue 0 missing");
    virtio_driver_ok(&d);

    unsigned err;
    begin(100, 0xffff);
    put(MSIZE, 4);
    str("9P2000.L");
    if (rpc(&err) != 101 || le(in + 7, 4) != MSIZE)
        test_fail("Tversion");
    begin(104, 1);
    put(0, 4);
    put(0xffffffff, 4);
    str("root");
    str("");
    put(0, 4);
    if (rpc(&err) != 105)
        test_fail("Tattach: %u", err);
    printf("P9: session ok\n");
    bool ro = cmdline_get_u64("ro", 0, 0) != 0;
    if (cmdline_get_u64("private", 0, 0))
        private_cases(ro);
    if (ro) {
        ro_cases();
        virtio_reset(&d);
        return 0;
    }

    static const char *const dots[] = { "..", "..", "..", "secret" };
    walk_short("walk-dotdot", dots, 4);
    static const char *const up[] = { "up", "secret" };
    walk_short("walk-through-symlink", up, 2);
    static const char *const outp[] = { "out" };
    walk(0, 2, outp, 1);
    if (rpc(&err) != 111)
        test_fail("walk to the symlink: %u", err);
    begin(12, 1);
    put(2, 4);
    put(0, 4);
    expect_err("open-symlink", 40); /* ELOOP */
    static const char *const slash[] = { "../secret" };
    walk(0, 51, slash, 1);
    expect_err("walk-slash", 22);
    static const char *const many[17] = { "dir", "dir", "dir", "dir", "dir", "dir", "dir", "dir",
                                          "dir", "dir", "dir", "dir", "dir", "dir", "dir", "dir",
                                          "dir" };
    walk(0, 52, many, 17);
    expect_err("walk-17-names", 22);
    char longname[300];
    memset(longname, 'a', 299);
    longname[299] = 0;
    static const char *ln[1];
    ln[0] = longname;
    walk(0, 53, ln, 1);
    expect_err("walk-long-name", 36); /* ENAMETOOLONG */
    /* create over the symlink that points out */
    static const char *const none[1] = { "." };
    walk(0, 3, none, 1);
    if (rpc(&err) != 111)
        test_fail("clone: %u", err);
    begin(14, 1);
    put(3, 4);
    str("out");
    put(1 | 0100, 4); /* O_WRONLY | O_CREAT */
    put(0644, 4);
    put(0, 4);
    expect_err("create-over-symlink", 40);
    /* hard-link the symlink (its target would come along) */
    begin(70, 1);
    put(0, 4);
    put(2, 4);
    str("stolen");
    expect_err("link-symlink", 1); /* EPERM */
    begin(74, 1);
    put(0, 4);
    str("file");
    put(0, 4);
    str("..");
    expect_err("rename-to-dotdot", 22);
    begin(72, 1);
    put(0, 4);
    str("a/b");
    put(0755, 4);
    put(0, 4);
    expect_err("mkdir-slash", 22);
    /* framing */
    begin(120, 1);
    put(0, 4);
    if (xfer(100000, n, MSIZE) != 11 || in[4] != 7)
        test_fail("size word past the end: no Rlerror");
    printf("P9: size-too-big err %u\n", le(in + 7, 4));
    begin(120, 1);
    put(0, 4);
    put(0, 4);
    expect_err("trailing-bytes", 71); /* EPROTO */
    begin(200, 1);
    expect_err("unknown-type", 95); /* EOPNOTSUPP */
    begin(120, 1);
    if (xfer(3, n, MSIZE) != 11 || in[4] != 7)
        test_fail("size word 3: no Rlerror");
    printf("P9: size-too-small err %u\n", le(in + 7, 4));
    begin(120, 1);
    put(0, 4);
    if (xfer(n, n, 3) != 0)
        test_fail("a 3-byte reply buffer was written");
    printf("P9: tiny-reply-buffer used 0\n");
    /* the file: open, a 4 GiB read into 16 bytes, a write far away */
    static const char *const file[] = { "file" };
    walk(0, 4, file, 1);
    if (rpc(&err) != 111)
        test_fail("walk to file: %u", err);
    begin(12, 1);
    put(4, 4);
    put(2, 4); /* O_RDWR */
    if (rpc(&err) != 13)
        test_fail("open file: %u", err);
    begin(116, 1);
    put(4, 4);
    put(0, 8);
    put(0xffffffff, 4);
    uint32_t used = xfer(n, n, 16);
    if (used != 16 || in[4] != 117 || le(in + 7, 4) != 5)
        test_fail("read into 16 bytes: used %u type %u count %u", used, in[4], le(in + 7, 4));
    printf("P9: read-4g-into-16 ok %u\n", le(in + 7, 4));
    begin(118, 1);
    put(4, 4);
    put(1ull << 63, 8);
    put(1, 4);
    put('x', 1);
    expect_err("write-2^63", 22);
    begin(116, 1);
    put(4, 4);
    put(0, 8);
    put(100, 4);
    if (rpc(&err) != 117)
        test_fail("read file: %u", err);
    unsigned cnt = le(in + 7, 4);
    in[11 + cnt] = 0;
    printf("P9: file says %s", (char *)in + 11);
    if (cmdline_get_u64("make", 0, 0))
        make_files();
    virtio_reset(&d);
    return 0;
}
