/* loader.conf-style parsing (loader/loaderconf.c). */
#include <errno.h>
#include <string.h>

#include "loader/loaderconf.h"
#include "unit.h"

int main(void)
{
	static struct lconf c;
	static struct lconf_module m[LCONF_MAX_MODULES];
	char err[128];
	const char *t = "# comment\n\n  kernel=\"kernel.old\"   # trailing\nboot_verbose=YES\n"
			"hint.uart.1.flags=\"0x80\"\nvmm_load=\"YES\"\nfoo_load=\"YES\"\n"
			"foo_name=\"/boot/foo.bin\"\nfoo_type=\"md_image\"\nfoo_flags=\"-v\"\n"
			"bar_load=\"NO\"\nvmm_load=\"yes\"\nempty=\"\"\n";
	CHECK_EQ(lconf_parse(t, strlen(t), &c, err, sizeof(err)), 0);
	CHECK(!strcmp(lconf_get(&c, "kernel"), "kernel.old"));
	CHECK(!strcmp(lconf_get(&c, "hint.uart.1.flags"), "0x80"));
	CHECK(!strcmp(lconf_get(&c, "boot_verbose"), "YES"));
	CHECK(!strcmp(lconf_get(&c, "empty"), ""));
	CHECK(lconf_get(&c, "nothing") == NULL);
	unsigned n = lconf_modules(&c, m, LCONF_MAX_MODULES);
	CHECK_EQ(n, 2);
	/* foo first: vmm's deciding (last) _load line comes after it. */
	CHECK(!strcmp(m[0].base, "foo") && !strcmp(m[0].file, "/boot/foo.bin"));
	CHECK(!strcmp(m[0].type, "md_image") && !strcmp(m[0].flags, "-v"));
	CHECK(!strcmp(m[1].base, "vmm") && !strcmp(m[1].file, "vmm") && !m[1].type);
	CHECK(lconf_is_directive(&c, "kernel") && lconf_is_directive(&c, "foo_name") &&
	      lconf_is_directive(&c, "bar_load"));
	CHECK(!lconf_is_directive(&c, "hint.uart.1.flags") && !lconf_is_directive(&c, "x_name"));
	lconf_free(&c);

	CHECK_EQ(lconf_parse("novalue\n", 8, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "line 1") != NULL);
	CHECK_EQ(lconf_parse("a=\"open\n", 8, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(lconf_parse("a=b c\n", 6, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(lconf_parse("=b\n", 3, &c, err, sizeof(err)), -EINVAL);
	CHECK(lconf_yes("YES") && lconf_yes("on") && lconf_yes("1") && !lconf_yes("NO") &&
	      !lconf_yes(NULL));
	return UNIT_RESULT();
}
