/* FreeBSD loader.conf(5)-style files: `name="value"` lines, '#' comments.
 * What khyveload takes from them (for a host0: tree, and nextboot.conf):
 *
 *   kernel="DIR"       the kernel is /boot/DIR/${bootfile} (default
 *                      "kernel"); a value with a '/' is the kernel's path
 *   bootfile="FILE"    the kernel file's name in that directory
 *   NAME_load="YES"    load module NAME: the file NAME_name (default
 *                      NAME; without a '/', /boot/DIR/NAME.ko or
 *                      /boot/modules/NAME.ko), of type NAME_type (default
 *                      a kernel module), with arguments NAME_flags
 *   everything else    an environment variable (the kenv)
 *
 * The parse is of text only; the caller looks for the files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define LCONF_MAX_VARS 256
#define LCONF_MAX_MODULES 64

struct lconf_var {
	char *name, *value;
};

struct lconf {
	unsigned nvars;
	struct lconf_var vars[LCONF_MAX_VARS]; /* in file order; later wins */
};

/* 0, or -EINVAL with "line N: ..." in err for a line that is no
 * assignment. Lines past LCONF_MAX_VARS: -E2BIG. */
int lconf_parse(const char *text, size_t len, struct lconf *c, char *err, size_t errlen);
void lconf_free(struct lconf *c);
/* The last value of name, or NULL. */
const char *lconf_get(const struct lconf *c, const char *name);
/* True for "YES"/"yes"/"1"/"true"/"on". */
bool lconf_yes(const char *value);

struct lconf_module {
	char base[256];    /* NAME of NAME_load */
	const char *file;  /* NAME_name or base */
	const char *type;  /* NAME_type or NULL */
	const char *flags; /* NAME_flags or NULL */
};
/* The modules to load, in file order of their _load lines; returns the
 * count (at most max). */
unsigned lconf_modules(const struct lconf *c, struct lconf_module *out, unsigned max);
/* True when name is one lconf_modules or the kernel choice consumes
 * (kernel, bootfile, *_load, *_name, *_type, *_flags of a module): the
 * rest go to the environment. */
bool lconf_is_directive(const struct lconf *c, const char *name);
