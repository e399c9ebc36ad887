/* grub.cfg: the default entry (loader/grubcfg.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loader/grubcfg.h"
#include "unit.h"

static struct grub_boot g;
static char err[256];

static int parse(const char *text)
{
	memset(err, 0, sizeof(err));
	return grub_default_entry(text, strlen(text), &g, err, sizeof(err));
}

static const char debian[] =
	"if [ -s $prefix/grubenv ]; then\n  set have_grubenv=true\n  load_env\nfi\n"
	"if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n"
	"   set default=\"0\"\nfi\n"
	"function load_video {\n  insmod all_video\n}\n"
	"menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option "
	"'gnulinux-simple-abc' {\n\tload_video\n\tset root='hd0,msdos1'\n"
	"\tif [ x$feature_platform_search_hint = xy ]; then\n\t  search --set=root --hint=x abc\n"
	"\telse\n\t  search --set=root abc\n\tfi\n"
	"\techo\t'Loading Linux 6.1.0-13-amd64 ...'\n"
	"\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro  quiet\n"
	"\tinitrd\t/boot/initrd.img-6.1.0-13-amd64\n}\n"
	"submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-abc' {\n"
	"\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64' --id 'k13' {\n"
	"\t\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=abc ro\n"
	"\t\tinitrd\t/boot/initrd.img-6.1.0-13-amd64\n\t}\n"
	"\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-12-amd64 (recovery mode)' {\n"
	"\t\tlinux\t/boot/vmlinuz-6.1.0-12-amd64 root=UUID=abc ro single\n"
	"\t\tinitrd\t/boot/intel-ucode.img /boot/initrd.img-6.1.0-12-amd64\n\t}\n}\n";

static char *with_default(const char *def)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf), "set default=%s\n%s", def, strstr(debian, "function"));
	return buf;
}

int main(void)
{
	CHECK_EQ(parse(debian), 0);
	CHECK(!strcmp(g.title, "Debian GNU/Linux"));
	CHECK(!strcmp(g.kernel, "/boot/vmlinuz-6.1.0-13-amd64"));
	CHECK(!strcmp(g.args, "root=UUID=abc ro quiet"));
	CHECK_EQ(g.ninitrd, 1);
	CHECK(!strcmp(g.initrd[0], "/boot/initrd.img-6.1.0-13-amd64"));
	CHECK_EQ(g.nentries, 4);

	/* An index path into the submenu, two initrds. */
	CHECK_EQ(parse(with_default("\"1>1\"")), 0);
	CHECK(strstr(g.title, "recovery mode") && !strcmp(g.args, "root=UUID=abc ro single"));
	CHECK_EQ(g.ninitrd, 2);
	CHECK(!strcmp(g.initrd[0], "/boot/intel-ucode.img"));
	/* By title path, by id path, a submenu alone (its first entry). */
	CHECK_EQ(parse(with_default("'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with "
				    "Linux 6.1.0-12-amd64 (recovery mode)'")), 0);
	CHECK(strstr(g.args, "single") != NULL);
	CHECK_EQ(parse(with_default("gnulinux-advanced-abc>k13")), 0);
	CHECK(!strcmp(g.args, "root=UUID=abc ro"));
	CHECK_EQ(parse(with_default("1")), 0);
	CHECK(!strcmp(g.args, "root=UUID=abc ro"));
	/* saved, nothing that matches: the first entry. */
	CHECK_EQ(parse(with_default("saved")), 0);
	CHECK(!strcmp(g.title, "Debian GNU/Linux"));
	CHECK_EQ(parse(with_default("17")), 0);
	CHECK(!strcmp(g.title, "Debian GNU/Linux"));

	/* Variables, a device prefix, quotes, escapes, continuation. */
	CHECK_EQ(parse("set v=5\nset root=(hd0,gpt2)\nmenuentry \"x $v\" {\n"
		       " linux ($root)/vmlinuz-$v a=\"b c\" d='$v' e=\\$v \\\n  f=${v}x\n"
		       " initrd (hd0,1)/initrd-${v}\n}\n"),
		 0);
	CHECK(!strcmp(g.title, "x 5"));
	CHECK(!strcmp(g.kernel, "/vmlinuz-5"));
	CHECK(!strcmp(g.args, "a=b c d=$v e=$v f=5x"));
	CHECK(!strcmp(g.initrd[0], "/initrd-5"));

	/* One line with ';' and a then-branch-only linux line (fallback). */
	CHECK_EQ(parse("menuentry a { if true; then linux /k1 one; else echo; fi; initrd /i; }\n"), 0);
	CHECK(!strcmp(g.kernel, "/k1") && !strcmp(g.args, "one"));
	/* An else branch wins over the then branch. */
	CHECK_EQ(parse("menuentry a {\nif x; then\nlinux /k1\nelse\nlinux /k2\nfi\n}\n"), 0);
	CHECK(!strcmp(g.kernel, "/k2"));

	/* No entries, an entry without linux. */
	CHECK_EQ(parse("set default=0\n"), -ENOENT);
	CHECK_EQ(parse("menuentry a {\n echo hi\n}\n"), -ENOENT);
	CHECK(strstr(err, "no linux line") != NULL);
	/* Unbalanced and deep: no crash, a result or an error. */
	char *deep = malloc(300000);
	size_t n = 0;
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(deep + n, "submenu x {\n");
	deep[n] = 0;
	parse(deep);
	n = 0;
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(deep + n, "if a; then\n");
	deep[n] = 0;
	parse(deep);
	free(deep);
	CHECK_EQ(parse("}}}} fi fi else menuentry { linux"), -ENOENT);
	CHECK_EQ(parse("menuentry 'unterminated {\n linux /k\n}\n"), -ENOENT);
	return UNIT_RESULT();
}
