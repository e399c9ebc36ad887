/* Fuzz target for virtio-9p's 9P2000.L engine: the message decoder
 * (src/backend/p9_proto.c) and the file server (src/backend/p9_fs.c)
 * working on a real directory, as a hostile guest drives them.
 *
 * The share is a temporary directory holding a file, a directory and
 * symlinks that point out of it (to /etc, to "../..", to the file beside
 * the share); beside it lies "secret", holding a random marker. Each
 * input starts a fresh session (reset, Tversion, Tattach of fid 0 at the
 * root) and is then a sequence of frames:
 *   flags[1] len[2] message[len]
 * flags bit 0 keeps the message's own size word (else it is set to len, so
 * that most messages get past the size check); bits 1-7 choose the room
 * for the reply (0: msize; else 11 + 8 * n bytes).
 *
 * Checked after every message (and input):
 *   - the reply fits the room given and its size word says its length;
 *     it is an Rlerror or the R-message of the request's type, with the
 *     request's tag;
 *   - nothing leaves the share: no reply carries the secret's marker;
 *     and after each input, the secret is unchanged and nothing has
 *     appeared beside the share;
 *   - the fid table stays within its bound.
 * Every 20000 inputs the share is rebuilt, so that what inputs made does
 * not pile up.
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_p9 -jobs=1 -workers=1 -max_len=2048 \
 *       -runs=10000000 /tmp/new-inputs tests/fuzz/corpus/p9
 * fuzz_p9_replay replays the corpus with any compiler (meson test
 * fuzz_p9_corpus). */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/p9_fs.h"
#include "backend/p9_proto.h"

#define MAX_FIDS 64
#define MSIZE (64u << 10)

static char top[64], share[96], secret[96];
static char marker[33];
static struct stat secret_st;
static struct p9_server *srv;
static uint8_t resp[MSIZE];
static unsigned long inputs;

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void make_share(void)
{
	nftw(share, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	char p[160];
	if (mkdir(share, 0755))
		abort();
	snprintf(p, sizeof(p), "%s/file", share);
	put(p, "hello from the share\n");
	snprintf(p, sizeof(p), "%s/dir", share);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/dir/inner", share);
	put(p, "inner\n");
	snprintf(p, sizeof(p), "%s/etc", share);
	symlink("/etc", p);
	snprintf(p, sizeof(p), "%s/up", share);
	symlink("../..", p);
	snprintf(p, sizeof(p), "%s/dir/sec", share);
	symlink("../../secret", p);
	snprintf(p, sizeof(p), "%s/loop", share);
	symlink("loop", p);
}

static void cleanup(void)
{
	p9_server_free(srv);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/khyve-fuzz-p9-XXXXXX");
	if (!mkdtemp(top))
		abort();
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(secret, sizeof(secret), "%s/secret", top);
	uint8_t r[16];
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		abort();
	for (int i = 0; i < 16; i++)
		snprintf(marker + 2 * i, 3, "%02x", r[i]);
	put(secret, marker);
	if (stat(secret, &secret_st))
		abort();
	make_share();
	if (p9_server_new(share, false, MSIZE, MAX_FIDS, &srv))
		abort();
	atexit(cleanup);
}

/* A search by hand: libFuzzer watches memmem and would learn the marker. */
static bool has_marker(const uint8_t *p, size_t n)
{
	size_t m = sizeof(marker) - 1;
	for (size_t i = 0; i + m <= n; i++) {
		size_t k = 0;
		while (k < m && p[i + k] == (uint8_t)marker[k])
			k++;
		if (k == m)
			return true;
	}
	return false;
}

static void check_outside(void)
{
	struct stat st;
	if (stat(secret, &st) || st.st_ino != secret_st.st_ino || st.st_size != secret_st.st_size ||
	    st.st_mtim.tv_nsec != secret_st.st_mtim.tv_nsec || st.st_nlink != 1)
		abort();
	DIR *d = opendir(top);
	if (!d)
		abort();
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "share") &&
		    strcmp(e->d_name, "secret"))
			abort();
	closedir(d);
}

static void one(const uint8_t *msg, size_t len, size_t cap)
{
	uint8_t type = len >= 5 ? msg[4] : 0;
	uint16_t tag = len >= 7 ? (uint16_t)(msg[5] | msg[6] << 8) : P9_NOTAG;
	size_t n = p9_server_handle(srv, msg, len, resp, cap);
	if (n > cap || n > p9_server_msize(srv) || (n && n < P9_HDR_SIZE))
		abort();
	if (!n) {
		if (cap >= 11)
			abort(); /* an Rlerror always fits 11 bytes */
		return;
	}
	uint32_t size = resp[0] | resp[1] << 8 | resp[2] << 16 | (uint32_t)resp[3] << 24;
	if (size != n)
		abort();
	uint16_t rtag = (uint16_t)(resp[5] | resp[6] << 8);
	if (resp[4] == P9_RLERROR) {
		if (n != 11)
			abort();
	} else if (resp[4] != (uint8_t)(type + 1) || rtag != tag) {
		abort();
	}
	if (has_marker(resp, n))
		abort();
	if (p9_server_fids(srv) > MAX_FIDS)
		abort();
}

static size_t build(uint8_t *m, uint8_t type, uint16_t tag, const uint8_t *body, size_t blen)
{
	size_t n = 7 + blen;
	m[0] = (uint8_t)n;
	m[1] = (uint8_t)(n >> 8);
	m[2] = m[3] = 0;
	m[4] = type;
	m[5] = (uint8_t)tag;
	m[6] = (uint8_t)(tag >> 8);
	memcpy(m + 7, body, blen);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	if (++inputs % 20000 == 0) {
		p9_server_reset(srv);
		make_share();
	}
	p9_server_reset(srv);
	uint8_t m[MSIZE];
	/* Tversion msize=MSIZE "9P2000.L"; Tattach fid 0, afid NOFID */
	static const uint8_t ver[] = { 0, 0, 1, 0, 8, 0, '9', 'P', '2', '0', '0', '0', '.', 'L' };
	static const uint8_t att[] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 'r', 'o', 'o', 't',
				       0, 0, 0, 0, 0, 0 };
	one(m, build(m, P9_TVERSION, P9_NOTAG, ver, sizeof(ver)), MSIZE);
	one(m, build(m, P9_TATTACH, 1, att, sizeof(att)), MSIZE);
	size_t pos = 0;
	while (pos + 3 <= size) {
		uint8_t flags = data[pos];
		size_t len = data[pos + 1] | (size_t)data[pos + 2] << 8;
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memcpy(m, data + pos, len);
		pos += len;
		if (!(flags & 1) && len >= 4) {
			m[0] = (uint8_t)len;
			m[1] = (uint8_t)(len >> 8);
			m[2] = m[3] = 0;
		}
		size_t cap = (flags >> 1) ? 11 + 8u * (flags >> 1) : MSIZE;
		one(m, len, cap);
	}
	/* Once per input: whatever got out would still be there. */
	check_outside();
	return 0;
}
