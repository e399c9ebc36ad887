/* The GDB stub's pure parts: packet framing, register marshalling and the
 * protocol engine (gdb_server.c) against a fake two-vCPU target. */
#include <stdlib.h>
#include <string.h>

#include "debug/gdb_server.h"
#include "debug/rsp.h"
#include "debug/x86_regs.h"
#include "unit.h"

/* ---- framing ---- */

static enum rsp_event feed_str(struct rsp_parser *p, const char *s)
{
	enum rsp_event last = RSP_NONE;
	for (; *s; s++) {
		enum rsp_event e = rsp_feed(p, (uint8_t)*s);
		if (e != RSP_NONE)
			last = e;
	}
	return last;
}

static void test_rsp(void)
{
	static struct rsp_parser p;
	rsp_init(&p);
	CHECK_EQ(feed_str(&p, "$qC#b4"), RSP_PACKET);
	CHECK(p.len == 2 && !memcmp(p.buf, "qC", 2));
	CHECK_EQ(feed_str(&p, "$qC#b5"), RSP_BAD_CHECKSUM);
	CHECK_EQ(feed_str(&p, "$qC#zz"), RSP_BAD_CHECKSUM);
	CHECK_EQ(rsp_feed(&p, '+'), RSP_ACK);
	CHECK_EQ(rsp_feed(&p, '-'), RSP_NAK);
	CHECK_EQ(rsp_feed(&p, 3), RSP_INTERRUPT);
	CHECK_EQ(feed_str(&p, "noise$g#67"), RSP_PACKET);
	CHECK(p.len == 1 && p.buf[0] == 'g');
	/* A restart inside a packet drops the first part. */
	CHECK_EQ(feed_str(&p, "$garbage$g#67"), RSP_PACKET);
	CHECK(p.len == 1);
	/* Too long: consumed, reported, buffer never overrun. */
	rsp_feed(&p, '$');
	uint8_t sum = 0;
	for (int i = 0; i < RSP_MAX_PAYLOAD + 100; i++) {
		rsp_feed(&p, 'a');
		sum = (uint8_t)(sum + 'a');
	}
	char tail[4];
	snprintf(tail, sizeof(tail), "#%02x", sum);
	CHECK_EQ(feed_str(&p, tail), RSP_TOO_LONG);
	CHECK_EQ(feed_str(&p, "$#00"), RSP_PACKET);
	CHECK_EQ(p.len, 0);

	uint8_t out[64];
	size_t n = rsp_frame("OK", 2, false, out, sizeof(out));
	CHECK(n == 6 && !memcmp(out, "$OK#9a", 6));
	n = rsp_frame("a}b#", 4, true, out, sizeof(out));
	CHECK(n == 10 && !memcmp(out, "$a}]b}\x03#", 8));
	CHECK_EQ(rsp_frame("OK", 2, false, out, 5), 0);

	uint8_t esc[] = { 'a', '}', 0x5d, 'b', '}' };
	CHECK_EQ(rsp_unescape(esc, 4), 3);
	CHECK(esc[1] == 0x7d);
	CHECK_EQ(rsp_unescape(esc, 5), -1);

	const char *s = "1f,2";
	uint64_t v;
	CHECK(rsp_parse_hex(&s, &v) && v == 0x1f && *s == ',');
	s = "12345678901234567";
	CHECK(!rsp_parse_hex(&s, &v));
	s = "";
	CHECK(!rsp_parse_hex(&s, &v));
	uint8_t b[2];
	CHECK(rsp_hex_decode("abCD", 2, b) && b[0] == 0xab && b[1] == 0xcd);
	CHECK(!rsp_hex_decode("a", 1, b));
	CHECK(!rsp_hex_decode("zz", 1, b));
}

/* ---- registers ---- */

static void test_regs(void)
{
	CHECK_EQ(X86_NREGS, 65);
	CHECK_EQ(x86_regs_total_size(), 600);
	CHECK_EQ(x86_reg_size(X86_REG_RIP), 8);
	CHECK_EQ(x86_reg_size(X86_REG_EFLAGS), 4);
	CHECK_EQ(x86_reg_size(X86_REG_ST0), 10);
	CHECK_EQ(x86_reg_size(X86_REG_XMM0 + 15), 16);
	CHECK_EQ(x86_reg_size(X86_REG_EFER), 8);
	CHECK_EQ(x86_reg_size(X86_NREGS), 0);
	CHECK(!strcmp(x86_reg_name(X86_REG_FS_BASE), "fs_base"));
	CHECK(!strcmp(x86_reg_name(X86_REG_CR3), "cr3"));

	struct x86_state st;
	memset(&st, 0, sizeof(st));
	st.regs.rbx = 0x1122334455667788ull;
	st.regs.rflags = 0x246;
	st.sregs.cs.selector = 0x10;
	st.sregs.gs.base = 0xffff888000000000ull;
	st.sregs.cr3 = 0x1000;
	st.fpu.fcw = 0x37f;
	st.fpu.fsw = 3u << 11; /* TOP = 3 */
	st.fpu.ftwx = 1u << 3; /* physical register 3 (= st0) in use */
	st.fpu.fpr[0][7] = 0x80; /* 1.0: integer bit, exponent 0x3fff */
	st.fpu.fpr[0][8] = 0xff;
	st.fpu.fpr[0][9] = 0x3f;
	uint8_t b[16];
	x86_reg_get(&st, 1, b);
	CHECK(b[0] == 0x88 && b[7] == 0x11);
	x86_reg_get(&st, X86_REG_EFLAGS, b);
	CHECK(b[0] == 0x46 && b[1] == 0x02);
	x86_reg_get(&st, X86_REG_CS, b);
	CHECK(b[0] == 0x10 && b[1] == 0);
	x86_reg_get(&st, X86_REG_GS_BASE, b);
	CHECK(b[7] == 0xff && b[5] == 0x88);
	x86_reg_get(&st, X86_REG_FCTRL + 2, b); /* ftag: reg 3 valid, others empty */
	CHECK_EQ(b[0] | b[1] << 8, 0xff3f);

	uint8_t in[16] = { 0x34, 0x12 };
	CHECK_EQ(x86_reg_set(&st, 0, in), X86_PART_REGS);
	CHECK_EQ(st.regs.rax, 0x1234);
	CHECK_EQ(x86_reg_set(&st, X86_REG_CR0 + 0, in), X86_PART_SREGS);
	CHECK_EQ(st.sregs.cr0, 0x1234);
	/* Real mode (CR0.PE clear): a selector sets the base. */
	uint8_t sel[4] = { 0x00, 0x10 };
	st.sregs.cr0 = 0;
	x86_reg_set(&st, X86_REG_CS + 3, sel); /* es */
	CHECK(st.sregs.es.selector == 0x1000 && st.sregs.es.base == 0x10000);
	uint8_t tag[4] = { 0xff, 0x3f };
	CHECK_EQ(x86_reg_set(&st, X86_REG_FCTRL + 2, tag), X86_PART_FPU);
	CHECK_EQ(st.fpu.ftwx, 0x80); /* physical 7 not empty */
	uint8_t x[16] = { 1, 2, 3 };
	x86_reg_set(&st, X86_REG_XMM0 + 2, x);
	CHECK(st.fpu.xmm[2][2] == 3);

	const char *xml = x86_target_xml();
	CHECK(strstr(xml, "<architecture>i386:x86-64</architecture>"));
	CHECK(strstr(xml, "org.gnu.gdb.i386.segments"));
	/* As many <reg> elements as registers. */
	unsigned regs = 0;
	for (const char *p = xml; (p = strstr(p, "<reg ")); p++)
		regs++;
	CHECK_EQ(regs, X86_NREGS);
}

/* ---- the protocol engine against a fake target ---- */

#define MEM_SIZE (1u << 20)

struct fake {
	uint8_t *mem;
	struct x86_state st[2];
	char out[70000];
	size_t out_len;
	enum gdb_run run[2];
	struct gdb_guest_debug dbg;
	int resumes, pauses, kills;
	unsigned caps;
	int pause_event; /* pause reports vCPU 1 with a breakpoint */
	struct gdb_server *s;
};

static void f_send(void *o, const void *buf, size_t len)
{
	struct fake *f = o;
	if (f->out_len + len <= sizeof(f->out)) {
		memcpy(f->out + f->out_len, buf, len);
		f->out_len += len;
	}
}

static int f_get(void *o, unsigned cpu, struct x86_state *st)
{
	struct fake *f = o;
	*st = f->st[cpu];
	return 0;
}

static int f_set(void *o, unsigned cpu, const struct x86_state *st, unsigned parts)
{
	struct fake *f = o;
	(void)parts;
	f->st[cpu] = *st;
	return 0;
}

static int f_read(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct fake *f = o;
	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -14;
	memcpy(buf, f->mem + gpa, len);
	return 0;
}

static int f_write(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct fake *f = o;
	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -14;
	memcpy(f->mem + gpa, buf, len);
	return 0;
}

static int f_resume(void *o, const enum gdb_run *run, const struct gdb_guest_debug *dbg)
{
	struct fake *f = o;
	f->run[0] = run[0];
	f->run[1] = run[1];
	f->dbg = *dbg;
	f->resumes++;
	return 0;
}

static int f_pause(void *o, unsigned *cpu, struct gdb_debug_event *ev)
{
	struct fake *f = o;
	f->pauses++;
	if (f->pause_event) {
		*cpu = 1;
		*ev = (struct gdb_debug_event){ .exception = 3, .pc = 0x2000 };
		return 1;
	}
	return 0;
}

static unsigned f_caps(void *o)
{
	return ((struct fake *)o)->caps;
}

static void f_kill(void *o)
{
	((struct fake *)o)->kills++;
}

#define DR_HOST GDB_CAP_HW_BREAK                     /* like this project's KVM */
#define INT3_HOST (GDB_CAP_INT3 | GDB_CAP_HW_BREAK | GDB_CAP_HW_WATCH)
#define BARE_HOST 0u                                 /* nothing fires: tracing */

static struct fake *fake_new(unsigned caps)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->mem = calloc(1, MEM_SIZE);
	f->caps = caps;
	for (int i = 0; i < 2; i++) {
		f->st[i].regs.rip = 0x1000 + (uint64_t)i * 0x100;
		f->st[i].regs.rflags = 2;
		f->st[i].sregs.cr0 = 0x11; /* protected mode, no paging */
	}
	for (unsigned i = 0; i < 256; i++)
		f->mem[0x2000 + i] = (uint8_t)i;
	struct gdb_target t = {
		.opaque = f, .ncpus = 2, .send = f_send, .get_state = f_get, .set_state = f_set,
		.read_phys = f_read, .write_phys = f_write, .resume = f_resume, .pause = f_pause,
		.capabilities = f_caps, .kill = f_kill,
	};
	f->s = gdb_server_new(&t, 5);
	return f;
}

static void fake_free(struct fake *f)
{
	gdb_server_free(f->s);
	free(f->mem);
	free(f);
}

/* Send a packet; return the payload of the last reply (checked). */
static const char *ask(struct fake *f, const char *payload)
{
	static char reply[70000];
	uint8_t frame[70000];
	size_t n = rsp_frame(payload, strlen(payload), false, frame, sizeof(frame));
	f->out_len = 0;
	gdb_server_input(f->s, frame, n);
	f->out[f->out_len] = 0;
	char *start = strrchr(f->out, '$');
	reply[0] = 0;
	if (!start)
		return reply;
	char *hash = strrchr(start, '#');
	if (!hash || hash[1] == 0)
		return reply;
	uint8_t sum = 0;
	for (char *p = start + 1; p < hash; p++)
		sum = (uint8_t)(sum + (uint8_t)*p);
	char cs[3];
	snprintf(cs, sizeof(cs), "%02x", sum);
	CHECK(!strncmp(hash + 1, cs, 2));
	memcpy(reply, start + 1, (size_t)(hash - start - 1));
	reply[hash - start - 1] = 0;
	return reply;
}

#define ASK_EQ(f, q, want)                                                          \
	do {                                                                        \
		const char *_r = ask(f, q);                                         \
		if (strcmp(_r, want)) {                                             \
			fprintf(stderr, "%s:%d: %s -> '%.80s', want '%s'\n", __FILE__, \
				__LINE__, q, _r, want);                             \
			unit_failures++;                                            \
		}                                                                   \
	} while (0)

static void test_server_basics(void)
{
	struct fake *f = fake_new(DR_HOST);
	const char *r = ask(f, "qSupported:multiprocess+;swbreak+;hwbreak+");
	CHECK(strstr(r, "PacketSize=4000") && strstr(r, "qXfer:features:read+") &&
	      strstr(r, "swbreak+") && strstr(r, "hwbreak+"));
	CHECK(f->out[0] == '+'); /* acknowledged */
	ASK_EQ(f, "?", "T05thread:1;");
	ASK_EQ(f, "qC", "QC1");
	ASK_EQ(f, "qfThreadInfo", "m1,2");
	ASK_EQ(f, "qsThreadInfo", "l");
	ASK_EQ(f, "qAttached", "1");
	ASK_EQ(f, "Hg2", "OK");
	ASK_EQ(f, "p10", "0011000000000000"); /* vCPU 1's rip */
	ASK_EQ(f, "Hg0", "OK");
	ASK_EQ(f, "Hg3", "E01");
	ASK_EQ(f, "T2", "OK");
	ASK_EQ(f, "T3", "E01");
	ASK_EQ(f, "Hg1", "OK");
	r = ask(f, "g");
	CHECK_EQ(strlen(r), 1200);
	CHECK(!strncmp(r + 16 * 16, "0010000000000000", 16));
	ASK_EQ(f, "P0=efbeadde00000000", "OK");
	CHECK_EQ(f->st[0].regs.rax, 0xdeadbeef);
	ASK_EQ(f, "P41=00", "E01");
	ASK_EQ(f, "p41", "E00");
	char g[1300];
	snprintf(g, sizeof(g), "G%s", ask(f, "g"));
	memcpy(g + 1 + 2 * 8, "0100000000000000", 16); /* rbx = 1 */
	ASK_EQ(f, g, "OK");
	CHECK_EQ(f->st[0].regs.rbx, 1);
	CHECK_EQ(f->st[0].regs.rax, 0xdeadbeef);

	/* memory, no paging: addresses are physical */
	ASK_EQ(f, "m2000,4", "00010203");
	ASK_EQ(f, "M2000,2:aabb", "OK");
	ASK_EQ(f, "m2000,3", "aabb02");
	static const char x[] = "X2004,3:}\x03}]z";
	ASK_EQ(f, x, "OK");
	ASK_EQ(f, "m2004,3", "237d7a");
	ASK_EQ(f, "mfffff,4", "00"); /* the part that exists */
	ASK_EQ(f, "m200000,4", "E14");
	ASK_EQ(f, "M2000,2:aa", "E01");

	r = ask(f, "qXfer:features:read:target.xml:0,20");
	CHECK(r[0] == 'm' && !strncmp(r + 1, "<?xml", 5));
	ASK_EQ(f, "qXfer:features:read:target.xml:ffffff,20", "l");
	ASK_EQ(f, "qXfer:features:read:foo.xml:0,20", "E00");
	r = ask(f, "qRcmd,68656c70"); /* help */
	CHECK(strlen(r) > 20 && !strncmp(r, "6b68797665", 10)); /* "khyve" */
	ASK_EQ(f, "vMustReplyEmpty", "");
	ASK_EQ(f, "vCont?", "vCont;c;C;s;S;t");
	ASK_EQ(f, "QStartNoAckMode", "OK");
	f->out_len = 0;
	ask(f, "qC");
	CHECK(f->out[0] == '$'); /* no more '+' */
	fake_free(f);
}

static void test_server_resume_and_stops(void)
{
	struct fake *f = fake_new(DR_HOST);
	ask(f, "qSupported:swbreak+;hwbreak+");
	ask(f, "vCont;s:2;c");
	CHECK(f->run[0] == GDB_RUN_CONTINUE && f->run[1] == GDB_RUN_STEP);
	CHECK(gdb_server_running(f->s));
	/* A step of vCPU 1 is ours; a stray #DB on vCPU 0 is not. */
	struct gdb_debug_event step = { .exception = 1, .dr6 = 0xffff4ff0 };
	CHECK_EQ(gdb_server_classify(f->s, 1, &step), GDB_VERDICT_STOP);
	CHECK_EQ(gdb_server_classify(f->s, 0, &step), GDB_VERDICT_REINJECT);
	struct gdb_debug_event bp = { .exception = 3, .pc = 0x1234 };
	CHECK_EQ(gdb_server_classify(f->s, 0, &bp), GDB_VERDICT_REINJECT);
	f->out_len = 0;
	gdb_server_stopped(f->s, 1, &step);
	CHECK(!gdb_server_running(f->s));
	CHECK(strstr(f->out, "$T05thread:2;#"));
	ASK_EQ(f, "qC", "QC2");

	/* vCont with one thread only: the other stays stopped */
	ask(f, "vCont;c:1");
	CHECK(f->run[0] == GDB_RUN_CONTINUE && f->run[1] == GDB_RUN_STOP);
	/* packets other than ^C are ignored while running */
	f->out_len = 0;
	uint8_t frame[16];
	size_t n = rsp_frame("g", 1, false, frame, sizeof(frame));
	gdb_server_input(f->s, frame, n);
	CHECK(f->out_len == 1 && f->out[0] == '+');
	/* ^C */
	uint8_t ctrl_c = 3;
	f->out_len = 0;
	gdb_server_input(f->s, &ctrl_c, 1);
	CHECK_EQ(f->pauses, 1);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T02thread:1;#"));
	/* ^C racing with a breakpoint: the breakpoint is reported */
	ask(f, "c");
	CHECK(f->run[0] == GDB_RUN_CONTINUE && f->run[1] == GDB_RUN_CONTINUE);
	f->pause_event = 1;
	f->out_len = 0;
	gdb_server_input(f->s, &ctrl_c, 1);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T05thread:2;swbreak:;#"));
	/* legacy step with an address */
	ask(f, "Hc1");
	ask(f, "s3000");
	CHECK(f->run[0] == GDB_RUN_STEP && f->run[1] == GDB_RUN_STOP);
	CHECK_EQ(f->st[0].regs.rip, 0x3000);
	gdb_server_stopped(f->s, 0, &step);
	ASK_EQ(f, "vCont;x", "E01");
	ASK_EQ(f, "vCont;c:zz", "E01");
	ASK_EQ(f, "vCont;t", "OK");
	ASK_EQ(f, "C", "E01");
	/* k ends the VM */
	ask(f, "k");
	CHECK_EQ(f->kills, 1);
	CHECK(gdb_server_finished(f->s));
	fake_free(f);
}

static void test_server_breakpoints_in_debug_registers(void)
{
	struct fake *f = fake_new(GDB_CAP_HW_BREAK | GDB_CAP_HW_WATCH);
	ask(f, "qSupported:swbreak+;hwbreak+");
	ASK_EQ(f, "Z0,2010,1", "OK");
	ASK_EQ(f, "Z0,2010,1", "OK"); /* again: no second register */
	ASK_EQ(f, "Z1,2020,1", "OK");
	ASK_EQ(f, "Z2,3004,4", "OK");
	ASK_EQ(f, "Z0,2030,1", "OK");
	const char *r = ask(f, "Z0,2040,1");
	CHECK(!strncmp(r, "E.khyve: all 4 debug registers are in use", 41));
	ASK_EQ(f, "m2010,1", "10"); /* memory untouched */
	ask(f, "c");
	CHECK(f->dbg.enable && f->dbg.hw_bp && !f->dbg.sw_bp);
	CHECK(f->dbg.dr[0] == 0x2010 && f->dbg.dr[1] == 0x2020 && f->dbg.dr[2] == 0x3004 &&
	      f->dbg.dr[3] == 0x2030);
	/* G bits 1,3,5,7; dr2: write (01), 4 bytes (11) */
	CHECK_EQ(f->dbg.dr7, 0xaaull | (0x1ull << 24) | (0x3ull << 26));
	struct gdb_debug_event hit = { .exception = 1, .dr6 = 0xffff0ff0 | 4 };
	CHECK_EQ(gdb_server_classify(f->s, 0, &hit), GDB_VERDICT_STOP);
	f->out_len = 0;
	gdb_server_stopped(f->s, 0, &hit);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T05thread:1;watch:3004;#"));
	ASK_EQ(f, "z2,3004,4", "OK");
	ASK_EQ(f, "z0,2010,1", "OK");
	ASK_EQ(f, "z1,2020,1", "OK");
	/* A 6-byte watch at 2 mod 8 takes two registers: 2 + 4 bytes. */
	ASK_EQ(f, "Z4,5002,6", "OK");
	ask(f, "c");
	CHECK(f->dbg.dr[0] == 0x5002 && f->dbg.dr[1] == 0x5004);
	CHECK_EQ(f->dbg.dr7 & 0xfff0000ull, (0x7ull << 16) | (0xfull << 20));
	hit.dr6 = 2;
	f->out_len = 0;
	gdb_server_stopped(f->s, 0, &hit);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "awatch:5002;"));
	ASK_EQ(f, "Z2,0,0", "E16");
	ASK_EQ(f, "Z9,0,1", "E01");
	/* D: everything out, debugging off, the guest goes on */
	ASK_EQ(f, "D", "OK");
	CHECK(!f->dbg.enable && f->run[0] == GDB_RUN_CONTINUE && f->run[1] == GDB_RUN_CONTINUE);
	CHECK(gdb_server_finished(f->s));
	fake_free(f);
}

static void test_server_int3_breakpoints(void)
{
	struct fake *f = fake_new(INT3_HOST);
	ask(f, "qSupported:swbreak+");
	for (unsigned i = 0; i < 6; i++) { /* more than 4: int3 has no limit */
		char z[32];
		snprintf(z, sizeof(z), "Z0,%x,1", 0x2010 + i);
		ASK_EQ(f, z, "OK");
	}
	CHECK(f->mem[0x2010] == 0xcc && f->mem[0x2015] == 0xcc);
	ASK_EQ(f, "m200f,3", "0f1011"); /* reads show the original bytes */
	ASK_EQ(f, "M2010,1:77", "OK");  /* writes update them */
	CHECK(f->mem[0x2010] == 0xcc);
	ASK_EQ(f, "m2010,1", "77");
	ask(f, "c");
	CHECK(f->dbg.sw_bp && !f->dbg.hw_bp);
	struct gdb_debug_event bp = { .exception = 3, .pc = 0x2012 };
	CHECK_EQ(gdb_server_classify(f->s, 1, &bp), GDB_VERDICT_STOP);
	bp.pc = 0x2020;
	CHECK_EQ(gdb_server_classify(f->s, 1, &bp), GDB_VERDICT_REINJECT);
	bp.pc = 0x2012;
	f->out_len = 0;
	gdb_server_stopped(f->s, 1, &bp);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T05thread:2;swbreak:;#"));
	ASK_EQ(f, "z0,2011,1", "OK");
	CHECK(f->mem[0x2011] == 0x11);
	/* A byte the guest rewrote is left alone. */
	f->mem[0x2012] = 0x90;
	ASK_EQ(f, "z0,2012,1", "OK");
	CHECK(f->mem[0x2012] == 0x90);
	/* "monitor swbreak debugreg" switches new ones to debug registers. */
	ask(f, "qRcmd,7377627265616b206465627567726567");
	ASK_EQ(f, "Z0,2100,1", "OK");
	CHECK(f->mem[0x2100] == 0x00);
	/* Detaching restores the rest. */
	ASK_EQ(f, "D", "OK");
	CHECK(f->mem[0x2010] == 0x77 && f->mem[0x2013] == 0x13 && f->mem[0x2015] == 0x15);
	fake_free(f);
}

static void test_server_traced_breakpoints(void)
{
	struct fake *f = fake_new(BARE_HOST);
	ask(f, "qSupported:swbreak+;hwbreak+");
	for (unsigned i = 0; i < 6; i++) { /* no limit of 4 */
		char z[32];
		snprintf(z, sizeof(z), "Z0,%x,1", 0x2010 + i);
		ASK_EQ(f, z, "OK");
	}
	ASK_EQ(f, "Z1,2100,1", "OK");
	ASK_EQ(f, "Z2,2200,4", "OK");
	const char *r = ask(f, "Z3,2200,4");
	CHECK(!strncmp(r, "E.khyve: read and access watchpoints need data breakpoints", 58));
	CHECK(f->mem[0x2010] == 0x10); /* nothing written to memory */
	ask(f, "vCont;s:1;c");
	/* vCPU 0 steps as asked, vCPU 1 is traced; no debug registers */
	CHECK(f->run[0] == GDB_RUN_STEP && f->run[1] == GDB_RUN_TRACE);
	CHECK(!f->dbg.hw_bp && !f->dbg.sw_bp);
	struct gdb_debug_event step = { .exception = 1, .dr6 = 0xffff4ff0, .pc = 0x3000 };
	CHECK_EQ(gdb_server_classify(f->s, 1, &step), GDB_VERDICT_CONTINUE);
	step.pc = 0x2013;
	CHECK_EQ(gdb_server_classify(f->s, 1, &step), GDB_VERDICT_STOP);
	f->out_len = 0;
	gdb_server_stopped(f->s, 1, &step);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T05thread:2;swbreak:;#"));
	ask(f, "c");
	CHECK(f->run[0] == GDB_RUN_TRACE && f->run[1] == GDB_RUN_TRACE);
	step.pc = 0x2100;
	CHECK_EQ(gdb_server_classify(f->s, 0, &step), GDB_VERDICT_STOP);
	f->out_len = 0;
	gdb_server_stopped(f->s, 0, &step);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "hwbreak:;"));
	/* gdb writes the watched bytes while stopped: not a hit */
	ASK_EQ(f, "M2200,1:55", "OK");
	ask(f, "c");
	step.pc = 0x3000;
	CHECK_EQ(gdb_server_classify(f->s, 0, &step), GDB_VERDICT_CONTINUE);
	f->mem[0x2202] = 0x99; /* the guest writes */
	CHECK_EQ(gdb_server_classify(f->s, 1, &step), GDB_VERDICT_STOP);
	CHECK_EQ(gdb_server_classify(f->s, 0, &step), GDB_VERDICT_CONTINUE); /* seen once */
	f->out_len = 0;
	gdb_server_stopped(f->s, 1, &step);
	f->out[f->out_len] = 0;
	CHECK(strstr(f->out, "$T05thread:2;watch:2200;#"));
	/* without traced entries, continue is a plain continue */
	for (unsigned i = 0; i < 6; i++) {
		char z[32];
		snprintf(z, sizeof(z), "z0,%x,1", 0x2010 + i);
		ASK_EQ(f, z, "OK");
	}
	ASK_EQ(f, "z1,2100,1", "OK");
	ASK_EQ(f, "z2,2200,4", "OK");
	ask(f, "c");
	CHECK(f->run[0] == GDB_RUN_CONTINUE && f->run[1] == GDB_RUN_CONTINUE);
	CHECK_EQ(gdb_server_classify(f->s, 0, &step), GDB_VERDICT_REINJECT);
	fake_free(f);
}

static void test_server_long_mode_memory(void)
{
	struct fake *f = fake_new(DR_HOST);
	/* Map 0xffffffff80000000 (PML4 511, PDPT 510) to 0x2000 with 4 KiB pages. */
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	uint64_t e;
	e = pdpt | 3; memcpy(f->mem + pml4 + 511 * 8, &e, 8);
	e = pd | 3;   memcpy(f->mem + pdpt + 510 * 8, &e, 8);
	e = pt | 3;   memcpy(f->mem + pd, &e, 8);
	e = 0x2000 | 3; memcpy(f->mem + pt, &e, 8);
	f->st[0].sregs.cr0 = 0x80000011;
	f->st[0].sregs.cr4 = 0x20;
	f->st[0].sregs.efer = 0x500;
	f->st[0].sregs.cr3 = pml4;
	ASK_EQ(f, "mffffffff80000004,2", "0405");
	ASK_EQ(f, "Mffffffff80000004,1:ee", "OK");
	CHECK(f->mem[0x2004] == 0xee);
	/* Unmapped: physical (auto), an error (virtual). */
	ASK_EQ(f, "m2001,1", "01");
	ask(f, "qRcmd,6d656d6f7279207669727475616c"); /* memory virtual */
	ASK_EQ(f, "m2001,1", "E14");
	ASK_EQ(f, "m8000000000000000,1", "E14"); /* not canonical */
	ask(f, "qRcmd,6d656d6f727920706879736963616c"); /* memory physical */
	ASK_EQ(f, "m2001,1", "01");
	fake_free(f);
}

static void test_server_garbage(void)
{
	struct fake *f = fake_new(INT3_HOST);
	unsigned seed = 1;
	uint8_t buf[4096];
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		gdb_server_input(f->s, buf, sizeof(buf));
		if (gdb_server_finished(f->s)) {
			fake_free(f);
			f = fake_new(round & 1 ? INT3_HOST : BARE_HOST);
		}
	}
	fake_free(f);
}

int main(void)
{
	test_rsp();
	test_regs();
	test_server_basics();
	test_server_resume_and_stops();
	test_server_breakpoints_in_debug_registers();
	test_server_int3_breakpoints();
	test_server_traced_breakpoints();
	test_server_long_mode_memory();
	test_server_garbage();
	return UNIT_RESULT();
}
