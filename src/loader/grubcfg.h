/* The default entry of a GRUB 2 configuration (grub.cfg), read the way
 * grub2-bhyve's users rely on: menuentry and submenu blocks, `set
 * default=` (an index, "N>M" into a submenu, a title, "Submenu>Title" or
 * an --id), the entry's linux and initrd lines, and $variables.
 *
 * What is not GRUB's full script: conditions are not evaluated. An if
 * block counts as false, so its else branch is what runs (Debian's
 * grub.cfg: `if [ "${next_entry}" ]; then ... else set default="0" fi`).
 * Where an entry's only linux/initrd lines sit in a branch not taken (an
 * `if [ x$grub_platform = xxen ]`-style choice), the first such lines are
 * used. functions, for and while blocks are skipped. Variables never set
 * expand to nothing; a "(hd0,msdos1)" or "($root)" device prefix on a
 * path is dropped, as the path is read from the file system that holds
 * grub.cfg. "saved" as the default means the first entry. */
#pragma once
#include <stddef.h>

#define GRUB_PATH_MAX 512
#define GRUB_ARGS_MAX 2048
#define GRUB_INITRD_MAX 8
#define GRUB_TITLE_MAX 256

struct grub_boot {
	char title[GRUB_TITLE_MAX]; /* "Submenu>Entry" for an entry in a submenu */
	char kernel[GRUB_PATH_MAX];
	char args[GRUB_ARGS_MAX];
	unsigned ninitrd;
	char initrd[GRUB_INITRD_MAX][GRUB_PATH_MAX];
	unsigned nentries; /* entries seen in the file, submenus' included */
};

/* 0, or -ENOENT (no entry with a linux line) / -EINVAL with a reason. */
int grub_default_entry(const char *text, size_t len, struct grub_boot *out, char *err,
		       size_t errlen);
