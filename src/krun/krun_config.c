#include "krun/krun_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int number(const char *s, unsigned *out)
{
	if (!*s || strlen(s) > 10)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 0xffffffffUL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* "FS:TAG" with a known FS and a tag of 1-36 bytes (virtio-fs's limit). */
static int share(char *v, struct krun_share *s)
{
	char *colon = strchr(v, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (strcmp(v, "virtiofs") && strcmp(v, "9p"))
		return -1;
	size_t tl = strlen(colon + 1);
	if (tl == 0 || tl > 36)
		return -1;
	s->fs = v;
	s->tag = colon + 1;
	return 0;
}

int krun_config_parse(struct krun_config *c, const void *data, size_t len, char *err,
		      size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->buf = malloc(len + 1);
	if (!c->buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(c->buf, data, len);
	c->buf[len] = '\0';
	if (len && c->buf[len - 1] != '\0') {
		snprintf(err, errlen, "the last record is not terminated");
		goto fail;
	}
	bool have_uid = false, have_gid = false, have_root = false, want_path = false;
	for (size_t off = 0; off < len;) {
		char *rec = c->buf + off;
		size_t rl = strlen(rec);
		off += rl + 1;
		if (rl == 0) {
			snprintf(err, errlen, "an empty record at byte %zu", off - 1);
			goto fail;
		}
		char tag = rec[0];
		char *v = rec + 1;
		if (want_path && tag != 'p') {
			snprintf(err, errlen, "a share without its path");
			goto fail;
		}
		switch (tag) {
		case 'a':
			if (c->argc == KRUN_MAX_ARGS)
				goto too_many;
			c->argv[c->argc++] = v;
			break;
		case 'e':
			if (c->envc == KRUN_MAX_ENV)
				goto too_many;
			if (!strchr(v, '=') || v[0] == '=') {
				snprintf(err, errlen, "environment entry without a name: '%.40s'", v);
				goto fail;
			}
			c->envp[c->envc++] = v;
			break;
		case 'c':
		case 'h':
		case 'p':
			if (v[0] != '/') {
				snprintf(err, errlen, "'%c': not an absolute path: '%.60s'", tag, v);
				goto fail;
			}
			if (tag == 'c')
				c->cwd = v;
			else if (tag == 'h')
				c->home = v;
			else if (!want_path) {
				snprintf(err, errlen, "a path without its share");
				goto fail;
			} else {
				c->rw[c->nrw++].path = v;
				want_path = false;
			}
			break;
		case 'u':
		case 'g':
		case 'G':
		case 'R':
		case 'C': {
			unsigned n;
			if (number(v, &n)) {
				snprintf(err, errlen, "'%c': not a number: '%.20s'", tag, v);
				goto fail;
			}
			if (tag == 'u') {
				c->uid = n;
				have_uid = true;
			} else if (tag == 'g') {
				c->gid = n;
				have_gid = true;
			} else if (tag == 'G') {
				if (c->ngroups == KRUN_MAX_GROUPS)
					goto too_many;
				c->groups[c->ngroups++] = n;
			} else if (tag == 'R') {
				c->rows = n;
			} else {
				c->cols = n;
			}
			break;
		}
		case 't':
		case 'n':
			if (strcmp(v, "0") && strcmp(v, "1")) {
				snprintf(err, errlen, "'%c': expected 0 or 1", tag);
				goto fail;
			}
			if (tag == 't')
				c->tty = v[0] == '1';
			else
				c->net = v[0] == '1';
			break;
		case 'o':
			if (share(v, &c->root)) {
				snprintf(err, errlen, "bad root share '%.60s' (FS:TAG)", v);
				goto fail;
			}
			have_root = true;
			break;
		case 'r':
			if (c->nrw == KRUN_MAX_SHARES)
				goto too_many;
			if (share(v, &c->rw[c->nrw])) {
				snprintf(err, errlen, "bad share '%.60s' (FS:TAG)", v);
				goto fail;
			}
			want_path = true;
			break;
		default:
			snprintf(err, errlen, "unknown record tag 0x%02x", (unsigned char)tag);
			goto fail;
		}
	}
	if (want_path) {
		snprintf(err, errlen, "a share without its path");
		goto fail;
	}
	if (!c->argc || !c->cwd || !have_uid || !have_gid || !have_root) {
		snprintf(err, errlen, "incomplete: needs a command, cwd, uid, gid and the root share");
		goto fail;
	}
	return 0;
too_many:
	snprintf(err, errlen, "too many records of one kind");
fail:
	krun_config_free(c);
	return -1;
}

void krun_config_free(struct krun_config *c)
{
	free(c->buf);
	c->buf = NULL;
}
