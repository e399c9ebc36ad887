/* libFuzzer target for the GDB stub's packet handling: the bytes a
 * debugger (or anything else that connects to the -G port) sends go
 * through the RSP framing and every packet handler of gdb_server.c,
 * against a fake two-vCPU target with 1 MiB of guest memory and 4-level
 * page tables, so that memory, register, breakpoint, vCont and monitor
 * packets all reach real code. The first input byte picks what the fake
 * host's KVM supports (int3, debug-register breakpoints, data breakpoints:
 * so int3, debug-register and traced breakpoints are all reached) and
 * whether vCPU 0 is in long mode.
 *
 * Build and run (clang):
 *   CC=clang meson setup build-fuzz -Dsanitize=true
 *   ninja -C build-fuzz tests/fuzz/fuzz_gdb
 *   mkdir -p /tmp/gdb-corpus
 *   build-fuzz/tests/fuzz/fuzz_gdb -max_total_time=300 /tmp/gdb-corpus tests/fuzz/corpus/gdb
 * (new inputs go to the first directory; crashes to ./crash-*).
 * With gcc, fuzz_gdb_replay runs the corpus once (a unit test). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/gdb_server.h"
#include "util/log.h"

#define MEM_SIZE (1u << 20)

struct fake {
	uint8_t *mem;
	struct x86_state st[2];
	unsigned caps;
	bool running;
};

static void f_send(void *o, const void *buf, size_t len)
{
	(void)o;
	/* Touch every byte so ASan sees the whole reply. */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= ((const uint8_t *)buf)[i];
	(void)sink;
}

static int f_get(void *o, unsigned cpu, struct x86_state *st)
{
	struct fake *f = o;
	if (cpu >= 2)
		abort();
	*st = f->st[cpu];
	return 0;
}

static int f_set(void *o, unsigned cpu, const struct x86_state *st, unsigned parts)
{
	struct fake *f = o;
	(void)parts;
	if (cpu >= 2)
		abort();
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
	(void)run;
	(void)dbg;
	f->running = true;
	return 0;
}

static int f_pause(void *o, unsigned *cpu, struct gdb_debug_event *ev)
{
	struct fake *f = o;
	f->running = false;
	*cpu = 1;
	*ev = (struct gdb_debug_event){ .exception = 1, .dr6 = 0xffff0ff1 };
	return 1;
}

static unsigned f_caps(void *o)
{
	return ((struct fake *)o)->caps;
}

static void f_kill(void *o)
{
	(void)o;
}

static void f_map(void *o, char *buf, size_t len)
{
	(void)o;
	snprintf(buf, len, "0-fffff RAM\n");
}

static void put64(uint8_t *mem, uint64_t at, uint64_t v)
{
	memcpy(mem + at, &v, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fake f;
	if (!f.mem) {
		f.mem = malloc(MEM_SIZE);
		log_set_level(LOG_ERROR);
	}
	if (size == 0)
		return 0;
	memset(f.mem, 0x90, MEM_SIZE);
	memset(f.st, 0, sizeof(f.st));
	/* bit 0: int3 intercepted; bit 3: debug-register breakpoints do not
	 * fire (traced); bit 4: data breakpoints fire. */
	f.caps = (data[0] & 1 ? GDB_CAP_INT3 : 0) | (data[0] & 8 ? 0 : GDB_CAP_HW_BREAK) |
		 (data[0] & 16 ? GDB_CAP_HW_WATCH : 0);
	f.running = false;
	if (data[0] & 2) {
		/* vCPU 0 in long mode: 0xffffffff80000000 -> 0x2000, 2 MiB pages below. */
		put64(f.mem, 0x10000, 0x11000 | 3);
		put64(f.mem, 0x10000 + 511 * 8, 0x12000 | 3);
		put64(f.mem, 0x11000, 0x13000 | 3);
		put64(f.mem, 0x13000, 0x83);
		put64(f.mem, 0x12000 + 510 * 8, 0x14000 | 3);
		put64(f.mem, 0x14000, 0x15000 | 3);
		put64(f.mem, 0x15000, 0x2000 | 3);
		f.st[0].sregs.cr0 = 0x80000011;
		f.st[0].sregs.cr4 = 0x20;
		f.st[0].sregs.efer = 0x500;
		f.st[0].sregs.cr3 = 0x10000;
	}
	struct gdb_target t = {
		.opaque = &f, .ncpus = 2, .send = f_send, .get_state = f_get, .set_state = f_set,
		.read_phys = f_read, .write_phys = f_write, .resume = f_resume, .pause = f_pause,
		.capabilities = f_caps, .kill = f_kill, .memory_map = f_map,
	};
	struct gdb_server *s = gdb_server_new(&t, 5);
	if (!s)
		abort();
	/* Feed in pieces, as a socket would; between pieces, the target may
	 * stop by itself. */
	size_t off = 1;
	while (off < size && !gdb_server_finished(s)) {
		size_t n = 1 + (data[off] % 64);
		if (n > size - off)
			n = size - off;
		gdb_server_input(s, data + off, n);
		off += n;
		if (gdb_server_running(s) && (off & 3) == 0) {
			struct gdb_debug_event ev = { .exception = (off & 4) ? 3u : 1u,
						      .dr6 = 0xffff4ff0 | (off & 15), .pc = off };
			gdb_server_classify(s, (unsigned)(off & 1), &ev);
			gdb_server_stopped(s, (unsigned)(off & 1), &ev);
		}
	}
	if (!gdb_server_finished(s))
		gdb_server_detach(s, (data[0] & 4) != 0);
	gdb_server_free(s);
	return 0;
}
