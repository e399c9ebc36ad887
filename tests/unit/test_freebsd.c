/* boot/freebsd.c: FreeBSD kernels as bhyveload loads them. The pure parts
 * (MODINFO records, howto, the kenv block) byte for byte; then the fbsdmeta
 * test guest, fbsdmod.ko and a raw file loaded through boot_load_kernel(),
 * the metadata read back from guest memory as the kernel would; then which
 * FreeBSD images go by PVH; then refusals.
 *
 * usage: test_freebsd FBSDMETA FBSDMOD.KO (meson passes the built guests) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/freebsd.h"
#include "mem/guest_mem.h"
#include "unit.h"

static struct guest_mem gm;
static char err[512];

static uint32_t g32(uint64_t gpa)
{
	uint32_t v = 0;
	CHECK_EQ(guest_mem_read(&gm, gpa, &v, 4), 0);
	return v;
}
static uint64_t g64(uint64_t gpa)
{
	uint64_t v = 0;
	CHECK_EQ(guest_mem_read(&gm, gpa, &v, 8), 0);
	return v;
}

static char tmpl[16][64];
static int ntmp;
static const char *tmp_file(const void *data, size_t len)
{
	char *p = tmpl[ntmp++];
	snprintf(p, 64, "/tmp/khyve-fbsd-XXXXXX");
	int fd = mkstemp(p);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, data, len), len);
	close(fd);
	return p;
}

static void test_modinfo(void)
{
	uint8_t hdr[4] = { 1, 2, 3, 4 };
	struct fbsd_md md[] = { { MODINFOMD_HOWTO, 4, hdr } };
	struct fbsd_file f[] = {
		{ "/boot/kernel/kernel", "elf kernel", "-s", 0x200000, 0x1234, md, 1 },
		{ "/boot/m", "md_image", NULL, 0x300000, 5, NULL, 0 },
	};
	uint8_t buf[512];
	memset(buf, 0xee, sizeof(buf));
	size_t n = freebsd_modinfo(f, 2, NULL);
	CHECK_EQ(freebsd_modinfo(f, 2, buf), n);
	/* NAME: 20 bytes + NUL padded to 24; TYPE 11 -> 16; ARGS 3 -> 8;
	 * ADDR 8; SIZE 8; HOWTO 4 -> 8; then the second file; END. */
	size_t want = (8 + 24) + (8 + 16) + (8 + 8) + (8 + 8) + (8 + 8) + (8 + 8) +
		      (8 + 8) + (8 + 16) + (8 + 8) + (8 + 8) + 8;
	CHECK_EQ(n, want);
	uint32_t w[2];
	memcpy(w, buf, 8);
	CHECK_EQ(w[0], MODINFO_NAME);
	CHECK_EQ(w[1], 20);
	CHECK(!strcmp((char *)buf + 8, "/boot/kernel/kernel"));
	CHECK_EQ(buf[8 + 20], 0); /* padding is zero */
	memcpy(w, buf + 32, 8);
	CHECK_EQ(w[0], MODINFO_TYPE);
	CHECK_EQ(w[1], 11);
	memcpy(w, buf + 56, 8);
	CHECK_EQ(w[0], MODINFO_ARGS);
	memcpy(w, buf + 72, 8);
	CHECK_EQ(w[0], MODINFO_ADDR);
	CHECK_EQ(w[1], 8);
	uint64_t v;
	memcpy(&v, buf + 80, 8);
	CHECK_EQ(v, 0x200000);
	memcpy(w, buf + 104, 8);
	CHECK_EQ(w[0], MODINFO_METADATA | MODINFOMD_HOWTO);
	CHECK_EQ(w[1], 4);
	CHECK(!memcmp(buf + 112, hdr, 4) && buf[116] == 0);
	memcpy(w, buf + n - 8, 8);
	CHECK_EQ(w[0], MODINFO_END);
	CHECK_EQ(w[1], 0);
	CHECK_EQ(buf[n], 0xee); /* nothing written past the end */
}

static void test_howto(void)
{
	const char *none[] = { "x=1" };
	CHECK_EQ(freebsd_howto(NULL, none, 1), 0);
	CHECK_EQ(freebsd_howto("-s", NULL, 0), RB_SINGLE);
	CHECK_EQ(freebsd_howto("-sv -h", NULL, 0), RB_SINGLE | RB_VERBOSE | RB_SERIAL);
	/* an unknown letter ends the flags; a word without '-' is none */
	CHECK_EQ(freebsd_howto("-sx v", NULL, 0), RB_SINGLE);
	CHECK_EQ(freebsd_howto("single", NULL, 0), 0);
	const char *env[] = { "boot_single=YES", "boot_verbose=", "boot_serial=1",
			      "boot_ddb=1", "boot_gdb=1", "boot_mute=1", "boot_askname=1" };
	CHECK_EQ(freebsd_howto(NULL, env, 7), RB_SINGLE | RB_VERBOSE | RB_SERIAL | RB_KDB |
						   RB_GDB | RB_MUTE | RB_ASKNAME);
	const char *c1[] = { "console=comconsole" };
	CHECK_EQ(freebsd_howto(NULL, c1, 1), RB_SERIAL);
	const char *c2[] = { "console=comconsole vidconsole" };
	CHECK_EQ(freebsd_howto(NULL, c2, 1), RB_SERIAL | RB_MULTIPLE);
	const char *c3[] = { "boot_serial=1", "console=vidconsole,comconsole" };
	CHECK_EQ(freebsd_howto(NULL, c3, 2), RB_MULTIPLE); /* vidconsole first: primary */
	const char *c4[] = { "console=nullconsole" };
	CHECK_EQ(freebsd_howto(NULL, c4, 1), RB_MUTE);
}

static void test_env(void)
{
	const char *env[] = { "a=1", "hint.uart.1.flags=0x80", "a=2", "b=", "ab=3" };
	uint8_t buf[128];
	size_t n = freebsd_env_block(env, 5, buf, NULL);
	static const char want[] = "a=2\0hint.uart.1.flags=0x80\0b=\0ab=3\0";
	CHECK_EQ(n, sizeof(want));
	CHECK(!memcmp(buf, want, sizeof(want)));
	unsigned bad = 99;
	const char *e2[] = { "ok=1", "novalue" };
	CHECK_EQ(freebsd_env_block(e2, 2, NULL, &bad), 0);
	CHECK_EQ(bad, 1);
	const char *e3[] = { "=x" };
	CHECK_EQ(freebsd_env_block(e3, 1, NULL, &bad), 0);
	CHECK_EQ(freebsd_env_block(NULL, 0, buf, NULL), 1); /* just the end */
	CHECK_EQ(buf[0], 0);
}

/* One file's records, read back from guest memory. */
struct rd_file {
	char name[128], type[64], args[64];
	uint64_t addr, size, ssym, esym, envp, kernend, howto;
	uint32_t elfhdr_at, shdr_size, smap_size, nmd;
	uint64_t shdr_gpa, smap_gpa, elfhdr_gpa;
};

static unsigned read_metadata(uint64_t modulep, uint64_t kernend, struct rd_file *f, unsigned max)
{
	unsigned n = 0;
	uint64_t at = modulep;
	for (int guard = 0; guard < 1000; guard++) {
		uint32_t type = g32(at), size = g32(at + 4);
		uint64_t data = at + 8;
		if (type == MODINFO_END)
			break;
		CHECK(data + size <= kernend);
		if (type == MODINFO_NAME) {
			CHECK(n < max);
			if (n == max)
				break;
			memset(&f[n], 0, sizeof(f[n]));
			CHECK(size < sizeof(f[n].name));
			guest_mem_read(&gm, data, f[n].name, size < 128 ? size : 127);
			n++;
		} else {
			CHECK(n > 0);
			struct rd_file *r = &f[n - 1];
			switch (type) {
			case MODINFO_TYPE: guest_mem_read(&gm, data, r->type, size < 64 ? size : 63); break;
			case MODINFO_ARGS: guest_mem_read(&gm, data, r->args, size < 64 ? size : 63); break;
			case MODINFO_ADDR: r->addr = g64(data); break;
			case MODINFO_SIZE: r->size = g64(data); break;
			default:
				CHECK(type & MODINFO_METADATA);
				r->nmd++;
				switch (type & ~MODINFO_METADATA) {
				case MODINFOMD_ELFHDR: r->elfhdr_gpa = data; CHECK_EQ(size, 64); break;
				case MODINFOMD_SHDR: r->shdr_gpa = data; r->shdr_size = size; break;
				case MODINFOMD_SSYM: r->ssym = g64(data); break;
				case MODINFOMD_ESYM: r->esym = g64(data); break;
				case MODINFOMD_ENVP: r->envp = g64(data); break;
				case MODINFOMD_KERNEND: r->kernend = g64(data); break;
				case MODINFOMD_HOWTO: r->howto = g32(data); CHECK_EQ(size, 4); break;
				case MODINFOMD_SMAP: r->smap_gpa = data; r->smap_size = size; break;
				}
			}
		}
		at = data + ((size + 7) & ~7u);
	}
	return n;
}

static void test_load_guest(const char *kernel, const char *ko)
{
	static const char md[] = "FBSDMETA-MD-IMAGE\nsome bytes\n";
	const char *mdpath = tmp_file(md, sizeof(md) - 1);
	char mdargs[128];
	snprintf(mdargs, sizeof(mdargs), "-t md_image");
	struct boot_module mods[] = { { ko, "arg=1" }, { mdpath, mdargs } };
	const char *env[] = { "hint.uart.1.flags=0x80", "boot_verbose=YES" };
	const char *names[] = { NULL, "/boot/mfsroot" };
	struct boot_request req = {
		.kernel_path = kernel, .cmdline = "-s", .modules = mods, .nr_modules = 2,
		.env = env, .nr_env = 2, .module_names = names,
	};
	struct boot_entry e;
	int r = boot_load_kernel(&gm, &req, &e, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "load: %s\n", err);
		return;
	}
	CHECK(!strcmp(e.format_name, "FreeBSD ELF"));
	CHECK_EQ(e.mode, BOOT_CPU_LONG64);
	CHECK_EQ(e.rip >> 32, 0xffffffff);
	CHECK_EQ(e.code_sel, 0x08);
	CHECK_EQ(e.data_sel, 0x10);
	CHECK_EQ(e.tss_sel, 0);
	CHECK_EQ(e.gdt_limit, 23);
	CHECK_EQ(e.cr0, 0x80000021);
	CHECK_EQ(e.cr4, 0x20);
	CHECK_EQ(e.efer, 0x500);
	CHECK_EQ(g64(e.gdt_base + 8), 0x0020980000000000ULL);
	CHECK_EQ(g64(e.gdt_base + 16), 0x0000900000000000ULL);
	/* KERNBASE's PML4 and PDPT entries lead to the 1:1 tables */
	uint64_t pdpt = g64(e.cr3 + 8 * 511) & ~0xfffULL;
	CHECK_EQ(pdpt, g64(e.cr3) & ~0xfffULL);
	CHECK_EQ(g64(pdpt + 8 * 510) & ~0xfffULL, g64(pdpt) & ~0xfffULL);
	CHECK_EQ(g64((g64(pdpt + 8 * 510) & ~0xfffULL) + 8) & ~0xfffULL, 0x200000); /* 2 MiB page 1 */

	uint32_t ret = g32(e.rsp), modulep = g32(e.rsp + 4), kernend = g32(e.rsp + 8);
	CHECK_EQ(ret, 0);
	CHECK_EQ(modulep & 0xfff, 0);
	CHECK_EQ(kernend & 0xfff, 0);
	struct rd_file f[4];
	unsigned n = read_metadata(modulep, kernend, f, 4);
	CHECK_EQ(n, 3);
	if (n != 3)
		return;
	/* the kernel */
	CHECK(!strcmp(f[0].name, "/boot/kernel/kernel"));
	CHECK(!strcmp(f[0].type, "elf kernel"));
	CHECK(!strcmp(f[0].args, "-s"));
	CHECK_EQ(f[0].addr, 0x200000);
	CHECK_EQ(f[0].addr + f[0].size, f[0].esym);
	CHECK(f[0].ssym > f[0].addr && f[0].esym > f[0].ssym);
	CHECK_EQ(f[0].kernend, kernend);
	CHECK_EQ(f[0].howto, RB_SINGLE | RB_VERBOSE | RB_SERIAL);
	CHECK(f[0].elfhdr_gpa && f[0].shdr_gpa && f[0].smap_gpa);
	CHECK_EQ(f[0].nmd, 9); /* SMAP KERNEND ENVP HOWTO ELFHDR DYNAMIC ESYM SSYM SHDR */
	uint8_t eh[64], loaded[64];
	guest_mem_read(&gm, f[0].elfhdr_gpa, eh, 64);
	guest_mem_read(&gm, 0x200000, loaded, 64);
	CHECK(!memcmp(eh, loaded, 64));
	CHECK_EQ(eh[7], 9);
	/* the symbol block: its size, then the symbols */
	uint64_t symsz = g64(f[0].ssym);
	CHECK(symsz > 0 && symsz % 24 == 0);
	uint64_t strsz = g64(f[0].ssym + 8 + ((symsz + 7) & ~7ULL));
	CHECK_EQ(f[0].ssym + 8 + ((symsz + 7) & ~7ULL) + 8 + ((strsz + 7) & ~7ULL), f[0].esym);
	/* the kenv */
	char envb[256] = { 0 };
	guest_mem_read(&gm, f[0].envp, envb, sizeof(envb) - 1);
	static const char want_env[] = "kernelname=/boot/kernel/kernel\0boot_serial=1\0"
				       "hint.uart.1.flags=0x80\0boot_verbose=YES\0";
	CHECK(!memcmp(envb, want_env, sizeof(want_env)));
	CHECK(f[0].envp < modulep);
	/* the SMAP is the e820 map */
	struct e820_entry map[E820_MAX_ENTRIES];
	int nmap = guest_mem_e820(&gm, map);
	CHECK_EQ(f[0].smap_size, (uint32_t)nmap * 20);
	for (int i = 0; i < nmap && f[0].smap_size == (uint32_t)nmap * 20; i++) {
		CHECK_EQ(g64(f[0].smap_gpa + 20 * i), map[i].addr);
		CHECK_EQ(g64(f[0].smap_gpa + 20 * i + 8), map[i].size);
		CHECK_EQ(g32(f[0].smap_gpa + 20 * i + 16), map[i].type);
	}
	/* the module: page after the kernel, ELF header and section headers */
	CHECK(!strcmp(f[1].name, "/boot/kernel/fbsdmod.ko"));
	CHECK(!strcmp(f[1].type, "elf obj module"));
	CHECK(!strcmp(f[1].args, "arg=1"));
	CHECK_EQ(f[1].addr, (f[0].addr + f[0].size + 0xfff) & ~0xfffULL);
	CHECK_EQ(f[1].nmd, 2);
	guest_mem_read(&gm, f[1].elfhdr_gpa, eh, 64);
	CHECK(!memcmp(eh, "\177ELF", 4) && eh[16] == 1);
	unsigned shnum = (unsigned)(eh[60] | eh[61] << 8);
	CHECK_EQ(f[1].shdr_size, shnum * 64);
	unsigned placed = 0;
	for (unsigned i = 0; i < shnum; i++) {
		uint64_t a = g64(f[1].shdr_gpa + 64 * i + 16), sz = g64(f[1].shdr_gpa + 64 * i + 32);
		if (!a)
			continue;
		placed++;
		CHECK(a >= f[1].addr && a + sz <= f[1].addr + f[1].size);
	}
	CHECK(placed >= 4); /* text, data, bss, marker, symtab, strtab, names, relocations */
	/* the raw file, named as asked */
	CHECK(!strcmp(f[2].name, "/boot/mfsroot"));
	CHECK(!strcmp(f[2].type, "md_image"));
	CHECK_EQ(f[2].args[0], 0);
	CHECK_EQ(f[2].size, sizeof(md) - 1);
	CHECK_EQ(f[2].addr & 0xfff, 0);
	CHECK_EQ(f[2].nmd, 0);
	char got[sizeof(md)] = { 0 };
	guest_mem_read(&gm, f[2].addr, got, sizeof(md) - 1);
	CHECK(!strcmp(got, md));
	CHECK(f[2].addr + f[2].size <= f[0].envp);
}

/* A small ELF64 kernel at KERNBASE + 2 MiB: OSABI osabi, and a Xen PVH
 * note when pvh. */
static size_t make_kernel(uint8_t *img, uint8_t osabi, bool pvh)
{
	memset(img, 0, 0x2000);
	memcpy(img, "\177ELF\2\1\1", 7);
	img[7] = osabi;
	img[16] = 2;  /* ET_EXEC */
	img[18] = 62; /* x86-64 */
	img[20] = 1;
	uint64_t entry = 0xffffffff80200010ULL, v;
	memcpy(img + 24, &entry, 8);
	v = 64;
	memcpy(img + 32, &v, 8); /* phoff */
	img[52] = 64;
	img[54] = 56;
	img[56] = pvh ? 2 : 1;
	uint8_t *ph = img + 64;
	uint32_t t = 1, fl = 5;
	memcpy(ph, &t, 4);
	memcpy(ph + 4, &fl, 4);
	uint64_t vals[6] = { 0x1000, 0xffffffff80200000ULL, 0x200000, 0x100, 0x100, 0x1000 };
	memcpy(ph + 8, vals, 48);
	if (pvh) {
		ph += 56;
		t = 4;
		memcpy(ph, &t, 4);
		uint8_t *n = img + 0x1800;
		uint32_t hdr[3] = { 4, 4, 18 };
		memcpy(n, hdr, 12);
		memcpy(n + 12, "Xen", 4);
		uint32_t e32 = 0x200010;
		memcpy(n + 16, &e32, 4);
		uint64_t nv[6] = { 0x1800, 0, 0, 20, 20, 4 };
		memcpy(ph + 8, nv, 48);
	}
	img[0x1010] = 0xf4; /* hlt */
	return 0x2000;
}

static int load_fmt(const char *path, enum boot_format fmt, unsigned nmods, unsigned nenv,
		    struct boot_entry *e)
{
	static const char md[] = "x";
	static const char *mdp;
	if (!mdp)
		mdp = tmp_file(md, 1);
	struct boot_module mods[] = { { mdp, "-t md_image" } };
	const char *env[] = { "a=b" };
	struct boot_request req = { .format = fmt, .kernel_path = path, .modules = mods,
				    .nr_modules = nmods, .env = env, .nr_env = nenv };
	return boot_load_kernel(&gm, &req, e, err, sizeof(err));
}

static void test_dispatch(void)
{
	static uint8_t img[0x2000];
	struct boot_entry e;
	/* FreeBSD with a PVH note: PVH, unless modules or a kenv ask for more */
	const char *fbsd_pvh = tmp_file(img, make_kernel(img, 9, true));
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_AUTO, 0, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "PVH ELF"));
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_AUTO, 1, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "FreeBSD ELF"));
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_AUTO, 0, 1, &e), 0);
	CHECK(!strcmp(e.format_name, "FreeBSD ELF"));
	CHECK_EQ(e.rip, 0xffffffff80200010ULL);
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_FREEBSD, 0, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "FreeBSD ELF"));
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_PVH, 0, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "PVH ELF"));
	/* forced PVH: a kenv would be dropped (PVH takes the command line) */
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_PVH, 0, 1, &e), -EINVAL);
	CHECK(strstr(err, "only for FreeBSD kernels loaded as bhyveload loads them; this one is loaded as a PVH ELF") != NULL);
	/* its PVH entry would take a module for the loader's metadata */
	CHECK_EQ(load_fmt(fbsd_pvh, BOOT_FORMAT_PVH, 1, 0, &e), -EINVAL);
	CHECK(strstr(err, "first module") != NULL);
	/* FreeBSD without a PVH note */
	const char *fbsd = tmp_file(img, make_kernel(img, 9, false));
	CHECK_EQ(load_fmt(fbsd, BOOT_FORMAT_AUTO, 0, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "FreeBSD ELF"));
	/* Not FreeBSD (OSABI 0, no ABI note): the other loaders as before */
	const char *sysv_pvh = tmp_file(img, make_kernel(img, 0, true));
	CHECK_EQ(load_fmt(sysv_pvh, BOOT_FORMAT_AUTO, 1, 0, &e), 0);
	CHECK(!strcmp(e.format_name, "PVH ELF"));
	/* ...which have no use for a kenv */
	CHECK_EQ(load_fmt(sysv_pvh, BOOT_FORMAT_AUTO, 0, 1, &e), -EINVAL);
	CHECK(strstr(err, "only for FreeBSD kernels loaded as bhyveload loads them; this one is loaded as a PVH ELF") != NULL);
	const char *sysv = tmp_file(img, make_kernel(img, 0, false));
	CHECK(load_fmt(sysv, BOOT_FORMAT_AUTO, 0, 0, &e) < 0);
	CHECK_EQ(load_fmt(sysv, BOOT_FORMAT_FREEBSD, 0, 0, &e), 0); /* forced */
}

static void test_refusals(const char *kernel, const char *ko)
{
	struct boot_entry e;
	const char *bad_env[] = { "novalue" };
	struct boot_request req = { .kernel_path = kernel, .env = bad_env, .nr_env = 1 };
	CHECK_EQ(boot_load_kernel(&gm, &req, &e, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "'novalue' is not name=value") != NULL);

	static const char raw[] = "not an elf";
	struct boot_module m1[] = { { tmp_file(raw, sizeof(raw)), NULL } };
	struct boot_request r1 = { .kernel_path = kernel, .modules = m1, .nr_modules = 1 };
	CHECK(boot_load_kernel(&gm, &r1, &e, err, sizeof(err)) < 0);
	CHECK(strstr(err, "-t TYPE") != NULL);

	struct boot_module m2[] = { { kernel, NULL } };
	struct boot_request r2 = { .kernel_path = kernel, .modules = m2, .nr_modules = 1 };
	CHECK(boot_load_kernel(&gm, &r2, &e, err, sizeof(err)) < 0);
	CHECK(strstr(err, "a second kernel") != NULL);

	struct boot_module m4[] = { { ko, "-t " } };
	struct boot_request r4 = { .kernel_path = kernel, .modules = m4, .nr_modules = 1 };
	CHECK(boot_load_kernel(&gm, &r4, &e, err, sizeof(err)) < 0);
	CHECK(strstr(err, "needs a file type") != NULL);

	/* A kernel that does not fit: 8 MiB of guest RAM, a 16 MiB module. */
	struct guest_mem small;
	CHECK_EQ(guest_mem_create(&small, 8ULL << 20), 0);
	static uint8_t big[16 << 20];
	struct boot_module m5[] = { { tmp_file(big, sizeof(big)), "-t md_image" } };
	struct boot_request r5 = { .kernel_path = kernel, .modules = m5, .nr_modules = 1 };
	CHECK(boot_load_kernel(&small, &r5, &e, err, sizeof(err)) < 0);
	CHECK(err[0] != 0);
	guest_mem_destroy(&small);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FBSDMETA FBSDMOD.KO\n", argv[0]);
		return 2;
	}
	CHECK_EQ(guest_mem_create(&gm, 64ULL << 20), 0);
	test_modinfo();
	test_howto();
	test_env();
	test_load_guest(argv[1], argv[2]);
	test_dispatch();
	test_refusals(argv[1], argv[2]);
	guest_mem_destroy(&gm);
	for (int i = 0; i < ntmp; i++)
		unlink(tmpl[i]);
	return UNIT_RESULT();
}
