/* The GDB remote protocol, served for an x86 target reached through a
 * struct gdb_target (the VM in gdb_stub.c; a fake in the unit tests and
 * the fuzzer). It keeps the breakpoints: software ones as int3 patched
 * into guest memory where the target's KVM intercepts int3, else (and
 * for Z1-Z4) in the four debug registers; where the host's KVM does not
 * fire debug-register breakpoints (or data breakpoints), breakpoints (and
 * write watchpoints) are checked after every instruction by tracing the
 * running vCPUs.
 *
 * Threads: everything is called on one thread (the event loop), except
 * gdb_server_classify, which vCPU threads call while the target runs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "debug/x86_regs.h"

/* STEP: one instruction with interrupts held off (gdb's step); TRACE:
 * continue one instruction at a time with interrupts allowed, so that the
 * server can check breakpoints and watchpoints the host's debug
 * registers cannot serve. */
enum gdb_run { GDB_RUN_STOP, GDB_RUN_CONTINUE, GDB_RUN_STEP, GDB_RUN_TRACE };

/* What every vCPU's KVM_SET_GUEST_DEBUG should say (single-step is
 * added for the vCPUs that step). */
struct gdb_guest_debug {
	bool enable; /* false: no debugging at all (detached) */
	bool sw_bp;  /* intercept #BP: int3 breakpoints are in memory */
	bool hw_bp;  /* load dr[0..3] and dr7 */
	uint64_t dr[4];
	uint64_t dr7;
};

/* A KVM_EXIT_DEBUG. */
struct gdb_debug_event {
	uint32_t exception; /* 1 (#DB) or 3 (#BP) */
	uint64_t dr6;
	uint64_t pc; /* linear address */
};

/* STOP: ours, stop everything; REINJECT: the guest's own exception, give
 * it back; CONTINUE: a traced step that hit nothing, go on. */
enum gdb_verdict { GDB_VERDICT_STOP, GDB_VERDICT_REINJECT, GDB_VERDICT_CONTINUE };

/* What the host's KVM can do for a debugger (probed): intercept int3
 * (KVM_GUESTDBG_USE_SW_BP), fire instruction breakpoints and data
 * breakpoints in debug registers (KVM_GUESTDBG_USE_HW_BP). */
#define GDB_CAP_INT3 1u
#define GDB_CAP_HW_BREAK 2u
#define GDB_CAP_HW_WATCH 4u

/* How Z0 (software breakpoints) are served. */
enum gdb_sw_mode { GDB_SW_AUTO, GDB_SW_INT3, GDB_SW_DEBUGREG, GDB_SW_TRACE };

struct gdb_target {
	void *opaque;
	unsigned ncpus;
	/* Bytes to the debugger. */
	void (*send)(void *opaque, const void *buf, size_t len);
	/* A stopped vCPU's registers; 0 or -errno. */
	int (*get_state)(void *opaque, unsigned cpu, struct x86_state *st);
	/* parts: X86_PART_* that changed. */
	int (*set_state)(void *opaque, unsigned cpu, const struct x86_state *st, unsigned parts);
	/* Guest-physical memory; 0 or -errno (nothing done). */
	int (*read_phys)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*write_phys)(void *opaque, uint64_t gpa, const void *buf, size_t len);
	/* Set every vCPU's debug state to dbg (single-stepping those whose
	 * run[i] is GDB_RUN_STEP) and let those not GDB_RUN_STOP go.
	 * Returns at once; a stop comes back through gdb_server_stopped. */
	int (*resume)(void *opaque, const enum gdb_run *run, const struct gdb_guest_debug *dbg);
	/* Stop every vCPU and wait for it. Returns 1 and fills cpu and ev if a
	 * vCPU had meanwhile stopped for a debug event of ours, else 0. */
	int (*pause)(void *opaque, unsigned *cpu, struct gdb_debug_event *ev);
	/* GDB_CAP_* of this host. */
	unsigned (*capabilities)(void *opaque);
	/* End the VM ('k'). */
	void (*kill)(void *opaque);
	/* Optional, for qThreadExtraInfo and monitor commands. */
	void (*describe_cpu)(void *opaque, unsigned cpu, char *buf, size_t len);
	int (*read_msr)(void *opaque, unsigned cpu, uint32_t index, uint64_t *value);
	void (*memory_map)(void *opaque, char *buf, size_t len);
};

struct gdb_server;

/* A new connection; the target is stopped (every vCPU paused), having
 * stopped with signal signo (5 when held at start, 2 when interrupted). */
struct gdb_server *gdb_server_new(const struct gdb_target *t, int signo);
void gdb_server_free(struct gdb_server *s);

/* Bytes from the debugger. */
void gdb_server_input(struct gdb_server *s, const uint8_t *buf, size_t len);
/* The target stopped by itself (a debug event the server asked for):
 * every vCPU is paused. */
void gdb_server_stopped(struct gdb_server *s, unsigned cpu, const struct gdb_debug_event *ev);
/* On a vCPU's thread: is this debug event ours (stop) or the guest's? */
enum gdb_verdict gdb_server_classify(struct gdb_server *s, unsigned cpu,
				     const struct gdb_debug_event *ev);
/* Take every breakpoint out and turn debugging off; with resume, let the
 * guest go on (the debugger went away). */
void gdb_server_detach(struct gdb_server *s, bool resume);
/* The VM ended: tell the debugger ("W" status). */
void gdb_server_exited(struct gdb_server *s, int status);
bool gdb_server_running(const struct gdb_server *s);
/* After 'D', 'k' or a protocol the server gave up on: close the link. */
bool gdb_server_finished(const struct gdb_server *s);
/* The Z0 mode: set by the stub from the command line, by "monitor swbreak". */
void gdb_server_set_sw_mode(struct gdb_server *s, enum gdb_sw_mode mode);
