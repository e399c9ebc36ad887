/* src/ctl: VM names, the entry-state format, the register table, the
 * control protocol's framing and request handling (against a fake VM),
 * and the runtime directory's life cycle (create, lock, busy, stale,
 * remove) in a temporary KHYVE_RUNDIR. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/entry.h"
#include "ctl/proto.h"
#include "ctl/vmdir.h"
#include "mem/guest_mem.h"
#include "unit.h"

static void test_names(void)
{
	char err[256];
	CHECK_EQ(ctl_check_name("vm0", err, sizeof(err)), 0);
	CHECK_EQ(ctl_check_name("a.b-c_d+1", err, sizeof(err)), 0);
	CHECK_EQ(ctl_check_name("1234567890123456789012345678901", err, sizeof(err)), 0);
	CHECK_EQ(ctl_check_name("12345678901234567890123456789012", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "31"));
	const char *bad[] = { "", ".", "..", ".x", "a/b", "/", "a b", "a\tb", "a\nb", "locks", "\x7f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(ctl_check_name(bad[i], err, sizeof(err)), -EINVAL);
	/* A hostile name is never printed raw. */
	ctl_check_name("a\nb", err, sizeof(err));
	CHECK(!strchr(err, '\n'));
}

static void test_entry_round_trip(void)
{
	struct boot_entry be = {
		.mode = BOOT_CPU_LONG64, .rip = 0xffffffff81000000ULL, .rsp = 0x8ff0, .rflags = 0x2,
		.rax = 1, .rbx = 2, .rsi = 0x7000, .cr0 = 0x80000011, .cr3 = 0x1000, .cr4 = 0x20,
		.efer = 0x500, .gdt_base = 0x500, .gdt_limit = 0x2f, .code_sel = 0x10, .data_sel = 0x18,
		.tss_sel = 0x20, .format_name = "bzImage\nx",
	};
	struct ctl_entry e, back;
	ctl_entry_init(&e, 512ULL << 20, &be, "console=ttyS0 root=/dev/vda\r");
	CHECK_EQ(ctl_entry_add_load(&e, "kernel", 0x1000000, 0x123456, "/boot/vmlinuz"), 0);
	CHECK_EQ(ctl_entry_add_load(&e, "initrd with space", 0x2000000, 0x1000, "initrd.img"), 0);
	char text[8192], err[256];
	size_t n = ctl_entry_format(&e, text, sizeof(text));
	CHECK(n < sizeof(text));
	CHECK(!strncmp(text, "khyve-entry 1\n", 14));
	CHECK_EQ(ctl_entry_parse(text, n, &back, err, sizeof(err)), 0);
	CHECK_EQ(back.mem_size, 512ULL << 20);
	CHECK_EQ(back.entry.mode, BOOT_CPU_LONG64);
	CHECK_EQ(back.entry.rip, be.rip);
	CHECK_EQ(back.entry.rsp, be.rsp);
	CHECK_EQ(back.entry.rsi, be.rsi);
	CHECK_EQ(back.entry.cr0, be.cr0);
	CHECK_EQ(back.entry.efer, be.efer);
	CHECK_EQ(back.entry.gdt_limit, be.gdt_limit);
	CHECK_EQ(back.entry.tss_sel, be.tss_sel);
	CHECK(!strcmp(back.format, "bzImage x"));
	CHECK(back.entry.format_name == back.format);
	CHECK(!strcmp(back.cmdline, "console=ttyS0 root=/dev/vda "));
	CHECK_EQ(back.nloads, 2);
	CHECK(!strcmp(back.loads[0].kind, "kernel") && back.loads[0].addr == 0x1000000 &&
	      back.loads[0].size == 0x123456 && !strcmp(back.loads[0].name, "/boot/vmlinuz"));
	CHECK(!strcmp(back.loads[1].kind, "initrd_with_spa"));
	/* Needed length without a buffer. */
	CHECK_EQ(ctl_entry_format(&e, NULL, 0), n);
}

static int parse(const char *text)
{
	struct ctl_entry e;
	char err[256];
	return ctl_entry_parse(text, strlen(text), &e, err, sizeof(err));
}

static void test_entry_rejects(void)
{
	CHECK_EQ(parse("khyve-entry 1\nmem=4194304\nmode=prot32\nrip=0x100000\n"), 0);
	CHECK_EQ(parse(""), -EINVAL);
	CHECK_EQ(parse("khyve-entry 2\nmem=4194304\nmode=prot32\nrip=1\n"), -EINVAL);
	CHECK_EQ(parse("khyve-entry 1\nmode=prot32\nrip=1\n"), -EINVAL);            /* no mem */
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=real\nrip=1\n"), -EINVAL);        /* mode */
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=1\nrip=2\n"), -EINVAL); /* twice */
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=1\nrdx=2\n"), -EINVAL); /* unknown */
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=-1\n"), -EINVAL);
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=0x1g\n"), -EINVAL);
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=1\ncode_sel=0x10000\n"), -EINVAL);
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=1\nload=kernel 1\n"), -EINVAL);
	CHECK_EQ(parse("khyve-entry 1\nmem=1\nmode=prot32\nrip=1\nnoequals\n"), -EINVAL);
	/* Comments and blank lines are fine; rflags defaults to 0x2. */
	struct ctl_entry e;
	char err[256];
	const char *t = "khyve-entry 1\n# loader\n\nmem=4194304\nmode=prot32\nrip=0x100000";
	CHECK_EQ(ctl_entry_parse(t, strlen(t), &e, err, sizeof(err)), 0);
	CHECK_EQ(e.entry.rflags, 2);
	/* A line too long. */
	size_t big = 5000;
	char *b = malloc(big + 64);
	strcpy(b, "khyve-entry 1\ncmdline=");
	memset(b + strlen(b), 'x', big);
	b[22 + big] = '\0';
	CHECK_EQ(ctl_entry_parse(b, strlen(b), &e, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "longer"));
	free(b);
}

static void test_entry_state(void)
{
	struct ctl_entry e;
	char err[256];
	const char *t = "khyve-entry 1\nmem=4194304\nmode=long64\nrip=0x100000\nrsp=0x8000\n"
			"cr0=0x80000011\ncode_sel=0x10\ndata_sel=0x18\ngdt_base=0x500\ngdt_limit=0x2f\n";
	CHECK_EQ(ctl_entry_parse(t, strlen(t), &e, err, sizeof(err)), 0);
	struct vcpu_state st;
	ctl_entry_to_state(&e, &st);
	CHECK_EQ(ctl_reg_get(&st, CTL_REG_RIP), 0x100000);
	CHECK_EQ(ctl_reg_get(&st, CTL_REG_SEG(CTL_SEG_CS, 0)), 0x10);
	CHECK_EQ(ctl_reg_get(&st, CTL_REG_SEG(CTL_SEG_CS, 3)), 0xa09b); /* L, G, P, S, code */
	CHECK_EQ(ctl_reg_get(&st, CTL_REG_SEG(CTL_SEG_SS, 0)), 0x18);
	/* Back: what an entry holds goes through; anything else is named. */
	const char *what = NULL;
	CHECK_EQ(ctl_reg_set(&st, CTL_REG_RAX, 5), 0);
	CHECK_EQ(ctl_entry_from_state(&e, &st, &what), 0);
	CHECK_EQ(e.entry.rax, 5);
	CHECK_EQ(ctl_reg_set(&st, CTL_REG_RCX, 5), 0);
	CHECK_EQ(ctl_entry_from_state(&e, &st, &what), -EINVAL);
	CHECK(what && !strcmp(what, "rcx"));
}

static void test_regs(void)
{
	CHECK_EQ(ctl_reg_by_name("rip"), CTL_REG_RIP);
	CHECK_EQ(ctl_reg_by_name("ldtr.access"), CTL_REG_SEG(CTL_SEG_LDTR, 3));
	CHECK_EQ(ctl_reg_by_name("idtr.limit"), CTL_REG_COUNT - 1);
	CHECK_EQ(ctl_reg_by_name("nope"), -1);
	struct vcpu_state st;
	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < CTL_REG_COUNT; i++) {
		uint64_t v = (i >= CTL_REG_SEG_FIRST) ? 0x1234 : 0x1122334455667788ULL + i;
		if (i >= CTL_REG_SEG_FIRST && (i - CTL_REG_SEG_FIRST) % 4 == 3 && i < CTL_REG_DT_FIRST)
			v = 0xe09b;
		CHECK_EQ(ctl_reg_set(&st, i, v), 0);
		CHECK_EQ(ctl_reg_get(&st, i), v);
	}
	CHECK_EQ(ctl_reg_set(&st, CTL_REG_SEG(CTL_SEG_CS, 0), 0x10000), -EINVAL);
	CHECK_EQ(ctl_reg_set(&st, CTL_REG_SEG(CTL_SEG_CS, 3), 0x20000), -EINVAL);
	CHECK_EQ(ctl_reg_set(&st, CTL_REG_COUNT, 0), -EINVAL);
}

/* ---- the protocol against a fake VM ---- */

static struct vcpu_state fake_cpu[2];
static bool fake_suspended;
static int fake_ended;

static void f_info(void *o, struct ctl_buf *out)
{
	(void)o;
	ctl_buf_printf(out, "state=%s\ncpus=2\n", fake_suspended ? "suspended" : "running");
}
static int f_get(void *o, unsigned c, struct vcpu_state *st, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	*st = fake_cpu[c];
	return 0;
}
static int f_set(void *o, unsigned c, const struct vcpu_state *st, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	fake_cpu[c] = *st;
	return 0;
}
static int f_stats(void *o, unsigned c, struct ctl_buf *out, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	ctl_buf_printf(out, "exits=%u\n", c + 10);
	return 0;
}
static int f_suspend(void *o, bool s, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	fake_suspended = s;
	return 0;
}

static const struct ctl_target fake = {
	.ncpus = 2, .info = f_info, .get_state = f_get, .set_state = f_set, .stats = f_stats,
	.suspend = f_suspend,
};

/* One request through ctl_handle: the reply's code and body. */
static int roundtrip(uint16_t op, const void *body, size_t len, char *text, size_t textlen)
{
	struct ctl_buf req = { 0 }, reply = { 0 };
	ctl_frame(&req, op, body, len);
	int end_op;
	bool keep = ctl_handle(&fake, req.data, req.len, &reply, &end_op);
	CHECK(keep);
	CHECK_EQ(ctl_frame_size(reply.data, reply.len), reply.len);
	int code = reply.data[6] | reply.data[7] << 8;
	size_t n = reply.len - CTL_HEADER;
	snprintf(text, textlen, "%.*s", (int)n, (const char *)reply.data + CTL_HEADER);
	if (end_op)
		fake_ended = end_op;
	ctl_buf_free(&req);
	ctl_buf_free(&reply);
	return code;
}

static void test_protocol(void)
{
	char text[8192];
	uint8_t cpu1[4] = { 1, 0, 0, 0 }, cpu7[4] = { 7, 0, 0, 0 };
	CHECK_EQ(roundtrip(CTL_OP_INFO, NULL, 0, text, sizeof(text)), 0);
	CHECK(strstr(text, "state=running\n"));
	CHECK_EQ(roundtrip(CTL_OP_SUSPEND, NULL, 0, text, sizeof(text)), 0);
	CHECK(fake_suspended);
	fake_cpu[1].regs.rip = 0xabc;
	CHECK_EQ(roundtrip(CTL_OP_GET_REGS, cpu1, 4, text, sizeof(text)), 0);
	CHECK(strstr(text, "rip=0xabc\n"));
	CHECK(strstr(text, "idtr.limit=0x0\n"));
	CHECK_EQ(roundtrip(CTL_OP_GET_REGS, cpu7, 4, text, sizeof(text)), EINVAL);
	CHECK(strstr(text, "no vCPU 7"));
	/* SET_REGS: rdi = 42, cs.access = 0xa09b on vCPU 1. */
	uint8_t set[8 + 24] = { 1, 0, 0, 0, 2, 0, 0, 0 };
	set[8] = CTL_REG_RDI;
	set[12] = 42;
	set[20] = (uint8_t)CTL_REG_SEG(CTL_SEG_CS, 3);
	set[24] = 0x9b;
	set[25] = 0xa0;
	CHECK_EQ(roundtrip(CTL_OP_SET_REGS, set, sizeof(set), text, sizeof(text)), 0);
	CHECK_EQ(fake_cpu[1].regs.rdi, 42);
	CHECK_EQ(fake_cpu[1].sregs.cs.l, 1);
	/* A count that does not match, an unknown register: nothing set. */
	set[4] = 3;
	CHECK_EQ(roundtrip(CTL_OP_SET_REGS, set, sizeof(set), text, sizeof(text)), EINVAL);
	set[4] = 2;
	set[8] = 200;
	set[12] = 7;
	CHECK_EQ(roundtrip(CTL_OP_SET_REGS, set, sizeof(set), text, sizeof(text)), EINVAL);
	CHECK_EQ(fake_cpu[1].regs.rdi, 42);
	CHECK_EQ(roundtrip(CTL_OP_GET_STATS, cpu1, 4, text, sizeof(text)), 0);
	CHECK(!strcmp(text, "exits=11\n"));
	CHECK_EQ(roundtrip(99, NULL, 0, text, sizeof(text)), EOPNOTSUPP);
	CHECK_EQ(roundtrip(CTL_OP_POWEROFF, "x", 1, text, sizeof(text)), EINVAL);
	CHECK_EQ(fake_ended, 0);
	CHECK_EQ(roundtrip(CTL_OP_DESTROY, NULL, 0, text, sizeof(text)), 0);
	CHECK_EQ(fake_ended, CTL_OP_DESTROY);

	/* Framing: partial, too short, too long, another version. */
	uint8_t f[12] = { 8, 0, 0, 0, 1, 0, 1, 0 };
	CHECK_EQ(ctl_frame_size(f, 3), 0);
	CHECK_EQ(ctl_frame_size(f, 8), 0);
	CHECK_EQ(ctl_frame_size(f, 12), 12);
	uint8_t shortf[4] = { 3, 0, 0, 0 };
	CHECK_EQ(ctl_frame_size(shortf, 4), -EPROTO);
	uint8_t longf[4] = { 0, 0, 0x20, 0 };
	CHECK_EQ(ctl_frame_size(longf, 4), -EMSGSIZE);
	uint8_t v2[8] = { 4, 0, 0, 0, 2, 0, 1, 0 };
	struct ctl_buf reply = { 0 };
	int end_op;
	CHECK(!ctl_handle(&fake, v2, 8, &reply, &end_op));
	CHECK_EQ(reply.data[6], EPROTO);
	ctl_buf_free(&reply);
}

/* ---- the directory ---- */

static void test_vmdir(void)
{
	char dir[] = "/tmp/khyve-test-ctl-XXXXXX", err[512];
	CHECK(mkdtemp(dir));
	char rundir[600];
	snprintf(rundir, sizeof(rundir), "%s/run", dir);
	setenv("KHYVE_RUNDIR", rundir, 1);

	struct ctl_vm vm, other;
	struct ctl_vm_status st;
	CHECK_EQ(ctl_vm_open("v0", 0, CTL_ROLE_CTL, &vm, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no such VM"));
	CHECK_EQ(ctl_vm_open("v0", CTL_OPEN_CREATE, CTL_ROLE_LOADER, &vm, err, sizeof(err)), 0);
	CHECK(vm.fresh);
	struct stat sb;
	CHECK(stat(vm.dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	/* Busy, with the holder's pid and role. */
	CHECK_EQ(ctl_vm_open("v0", CTL_OPEN_CREATE, CTL_ROLE_KHYVE, &other, err, sizeof(err)), -EBUSY);
	char want[64];
	snprintf(want, sizeof(want), "loader (pid %d)", (int)getpid());
	CHECK(strstr(err, want));
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), 0);
	CHECK_EQ(st.state, CTL_VM_BUSY);
	/* Memory and entry: prepared once let go. */
	struct guest_mem gm;
	CHECK_EQ(ctl_vm_mem_create(&vm, 8 << 20, &gm, err, sizeof(err)), 0);
	CHECK_EQ(guest_mem_write_u32(&gm, 0x1000, 0xfeedf00d), 0);
	CHECK_EQ(guest_mem_write_u32(&gm, (8 << 20) - 4, 1), 0);
	CHECK_EQ(guest_mem_write_u32(&gm, 8 << 20, 1), -EFAULT);
	guest_mem_destroy(&gm);
	struct boot_entry be = { .mode = BOOT_CPU_PROT32, .rip = 0x100000, .format_name = "test" };
	struct ctl_entry e, back;
	ctl_entry_init(&e, 8 << 20, &be, NULL);
	CHECK_EQ(ctl_vm_write_entry(&vm, &e, err, sizeof(err)), 0);
	ctl_vm_close(&vm);
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), 0);
	CHECK_EQ(st.state, CTL_VM_PREPARED);
	CHECK_EQ(st.mem, 8 << 20);
	/* khyve's view: the file mapped privately; a write stays private. */
	CHECK_EQ(ctl_vm_open("v0", 0, CTL_ROLE_KHYVE, &vm, err, sizeof(err)), 0);
	CHECK(!vm.fresh && !vm.was_stale);
	CHECK_EQ(ctl_vm_read_entry(&vm, &back, err, sizeof(err)), 0);
	CHECK_EQ(back.entry.rip, 0x100000);
	int fd;
	uint64_t size;
	CHECK_EQ(ctl_vm_mem_open(&vm, &fd, &size, err, sizeof(err)), 0);
	CHECK_EQ(size, 8 << 20);
	CHECK_EQ(guest_mem_create_from_fd(&gm, size, fd, false), 0);
	close(fd);
	uint32_t v;
	CHECK_EQ(guest_mem_read_u32(&gm, 0x1000, &v), 0);
	CHECK_EQ(v, 0xfeedf00d);
	CHECK_EQ(guest_mem_write_u32(&gm, 0x1000, 0), 0);
	guest_mem_destroy(&gm);
	CHECK_EQ(ctl_vm_mem_open(&vm, &fd, &size, err, sizeof(err)), 0);
	CHECK_EQ(guest_mem_create_from_fd(&gm, size, fd, false), 0);
	close(fd);
	CHECK_EQ(guest_mem_read_u32(&gm, 0x1000, &v), 0);
	CHECK_EQ(v, 0xfeedf00d);
	guest_mem_destroy(&gm);
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), 0);
	CHECK_EQ(st.state, CTL_VM_RUNNING);

	/* A holder that dies with the lock (a child that takes it and is
	 * killed): stale, with its pid; khyvectl looking keeps it stale. */
	ctl_vm_close(&vm);
	pid_t child = fork();
	if (child == 0) {
		struct ctl_vm c;
		if (ctl_vm_open("v0", 0, CTL_ROLE_KHYVE, &c, err, sizeof(err)))
			_exit(1);
		_exit(0); /* without ctl_vm_close: as kill -9 would */
	}
	int ws;
	waitpid(child, &ws, 0);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), 0);
	CHECK_EQ(st.state, CTL_VM_STALE);
	CHECK_EQ(st.pid, child);
	CHECK_EQ(ctl_vm_open("v0", 0, CTL_ROLE_CTL, &vm, err, sizeof(err)), 0);
	CHECK(vm.was_stale);
	ctl_vm_close(&vm);
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), 0);
	CHECK_EQ(st.state, CTL_VM_STALE);
	/* Removed: nothing left. */
	CHECK_EQ(ctl_vm_open("v0", 0, CTL_ROLE_CTL, &vm, err, sizeof(err)), 0);
	CHECK_EQ(ctl_vm_remove(&vm, err, sizeof(err)), 0);
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), -ENOENT);
	/* A failed create leaves nothing either. */
	CHECK_EQ(ctl_vm_open("v1", CTL_OPEN_CREATE, CTL_ROLE_LOADER, &vm, err, sizeof(err)), 0);
	ctl_vm_abandon(&vm);
	CHECK_EQ(ctl_vm_status("v1", &st, err, sizeof(err)), -ENOENT);
	CHECK(rmdir(rundir) == 0);
	CHECK(rmdir(dir) == 0);
}

/* A runtime directory that is not the user's own and private is refused
 * by everything that would use it, and left as it is. */
static void test_rundir_checks(void)
{
	char dir[] = "/tmp/khyve-test-rundir-XXXXXX", err[512], path[600], rundir[600];
	CHECK(mkdtemp(dir));
	snprintf(rundir, sizeof(rundir), "%s/run", dir);
	setenv("KHYVE_RUNDIR", rundir, 1);
	struct ctl_vm vm;
	struct ctl_vm_status st;
	/* Missing: made private on create; "no such VM" otherwise. */
	CHECK_EQ(ctl_rundir_ready(false, path, sizeof(path), err, sizeof(err)), -ENOENT);
	CHECK_EQ(ctl_rundir_ready(true, path, sizeof(path), err, sizeof(err)), 0);
	struct stat sb;
	CHECK(stat(rundir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	/* Open to others. */
	CHECK(chmod(rundir, 0755) == 0);
	CHECK_EQ(ctl_rundir_ready(false, path, sizeof(path), err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "mode 0755") && strstr(err, "refusing"));
	CHECK_EQ(ctl_vm_open("v0", CTL_OPEN_CREATE, CTL_ROLE_KHYVE, &vm, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "v0: ") && strstr(err, "mode 0755"));
	CHECK_EQ(ctl_vm_status("v0", &st, err, sizeof(err)), -EPERM);
	CHECK_EQ(ctl_socket_connect("v0", err, sizeof(err)), -EPERM);
	CHECK(rmdir(rundir) == 0); /* nothing was made in it */
	/* A symlink to a private directory of ours: refused all the same. */
	char real[700];
	snprintf(real, sizeof(real), "%s/real", dir);
	CHECK(mkdir(real, 0700) == 0);
	CHECK(symlink(real, rundir) == 0);
	CHECK_EQ(ctl_rundir_ready(true, path, sizeof(path), err, sizeof(err)), -ENOTDIR);
	CHECK(strstr(err, "symlink"));
	CHECK(unlink(rundir) == 0);
	/* A file. */
	int fd = open(rundir, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(ctl_rundir_ready(true, path, sizeof(path), err, sizeof(err)), -ENOTDIR);
	CHECK(strstr(err, "a file"));
	CHECK(unlink(rundir) == 0);
	/* Someone else's (only root can make one to try). */
	if (geteuid() == 0) {
		CHECK(mkdir(rundir, 0700) == 0 && chown(rundir, 1, 1) == 0);
		CHECK_EQ(ctl_rundir_ready(false, path, sizeof(path), err, sizeof(err)), -EPERM);
		CHECK(strstr(err, "belongs to uid 1, not to uid 0"));
		CHECK(rmdir(rundir) == 0);
	}
	CHECK(rmdir(real) == 0);
	CHECK(rmdir(dir) == 0);
}

int main(void)
{
	test_names();
	test_entry_round_trip();
	test_entry_rejects();
	test_entry_state();
	test_regs();
	test_protocol();
	test_vmdir();
	test_rundir_checks();
	return UNIT_RESULT();
}
