/* The control socket's protocol: what khyvectl says to a running khyve
 * through $KHYVE_RUNDIR/NAME/ctl (a Unix stream socket, mode 0600).
 *
 * Version 1. Every message, both ways, is one frame:
 *
 *   u32 length    bytes that follow this field: 4 + the body's length,
 *                 at most CTL_FRAME_MAX
 *   u16 version   CTL_PROTO_VERSION
 *   u16 code      request: the operation (CTL_OP_*); reply: 0 for
 *                 success, else a positive errno
 *   body
 *
 * Integers are little-endian. A client sends a request and reads the
 * reply before it sends the next; a connection may carry any number of
 * them. A frame khyve cannot read (a bad length, a version other than 1)
 * gets an error reply (EPROTO; EMSGSIZE for a length over the limit) and
 * the connection is closed.
 *
 * Request bodies:
 *   INFO, SUSPEND, RESUME, RESET, POWEROFF, DESTROY, WAKEUP: empty
 *   GET_REGS, GET_STATS: u32 cpu
 *   SET_REGS: u32 cpu, u32 count (1..CTL_SET_MAX), then count times
 *             { u32 register (CTL_REG_*), u64 value } (12 bytes each)
 *
 * Reply bodies: on error, one line of text saying why. On success, text:
 * "key=value" lines, each ending in '\n':
 *   INFO      proto, name, pid, state (running | suspended | sleeping),
 *             mem (bytes), cpus, and comN=WHERE for each serial port
 *             (pty:/dev/pts/N, tcp:ADDRESS:PORT, stdio, ...)
 *   GET_REGS  every register of ctl_reg_names, value in hex
 *   GET_STATS each KVM statistic of the vCPU: name=value, or
 *             name=v0,v1,... for a histogram
 *   others    empty
 *
 * Registers (GET_REGS/SET_REGS) may be read and written any time: a vCPU
 * that runs is stopped for the moment it takes, unless the VM is
 * suspended (SUSPEND), which keeps every vCPU stopped until RESUME.
 * RESET and POWEROFF end khyve as a guest reset (exit 0) or poweroff
 * (exit 1) would; DESTROY ends it as a poweroff and has it remove the
 * VM's directory as it exits. The reply is sent before khyve ends.
 * WAKEUP wakes a guest suspended to RAM (ACPI S3) as the power button
 * would; it fails (EALREADY) when the guest is not suspended. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

#define CTL_PROTO_VERSION 1
#define CTL_FRAME_MAX (1u << 20)
#define CTL_HEADER 8 /* length, version, code */
#define CTL_SET_MAX 64

enum ctl_op {
	CTL_OP_INFO = 1,
	CTL_OP_GET_REGS = 2,
	CTL_OP_SET_REGS = 3,
	CTL_OP_GET_STATS = 4,
	CTL_OP_SUSPEND = 5,
	CTL_OP_RESUME = 6,
	CTL_OP_RESET = 7,
	CTL_OP_POWEROFF = 8,
	CTL_OP_DESTROY = 9,
	CTL_OP_WAKEUP = 10,
};

/* Registers by number: the general ones, then control, debug, segment
 * (selector, base, limit, access rights as bhyve encodes them: type,
 * S<<4, DPL<<5, P<<7, AVL<<12, L<<13, D/B<<14, G<<15, unusable<<16) and
 * descriptor-table registers. */
enum ctl_reg {
	CTL_REG_RAX, CTL_REG_RBX, CTL_REG_RCX, CTL_REG_RDX, CTL_REG_RSI, CTL_REG_RDI,
	CTL_REG_RBP, CTL_REG_RSP, CTL_REG_R8, CTL_REG_R9, CTL_REG_R10, CTL_REG_R11,
	CTL_REG_R12, CTL_REG_R13, CTL_REG_R14, CTL_REG_R15, CTL_REG_RIP, CTL_REG_RFLAGS,
	CTL_REG_CR0, CTL_REG_CR2, CTL_REG_CR3, CTL_REG_CR4, CTL_REG_CR8, CTL_REG_EFER,
	CTL_REG_DR0, CTL_REG_DR1, CTL_REG_DR2, CTL_REG_DR3, CTL_REG_DR6, CTL_REG_DR7,
	/* Segments: CTL_REG_SEG(s, field), s in CTL_SEG_*, field 0-3 for
	 * selector, base, limit, access. */
	CTL_REG_SEG_FIRST,
	CTL_REG_DT_FIRST = CTL_REG_SEG_FIRST + 8 * 4, /* gdtr base, limit, idtr base, limit */
	CTL_REG_COUNT = CTL_REG_DT_FIRST + 4,
};
enum ctl_seg { CTL_SEG_CS, CTL_SEG_DS, CTL_SEG_ES, CTL_SEG_FS, CTL_SEG_GS, CTL_SEG_SS,
	       CTL_SEG_TR, CTL_SEG_LDTR };
#define CTL_REG_SEG(s, field) (CTL_REG_SEG_FIRST + (s) * 4 + (field))

/* "rax", ..., "cs", "cs.base", "cs.limit", "cs.access", ..., "gdtr.base",
 * "gdtr.limit", "idtr.base", "idtr.limit". */
extern const char *const ctl_reg_names[CTL_REG_COUNT];
/* The register of that name, or -1. */
int ctl_reg_by_name(const char *name);
uint64_t ctl_reg_get(const struct vcpu_state *st, unsigned reg);
/* -EINVAL when the value does not fit the register. */
int ctl_reg_set(struct vcpu_state *st, unsigned reg, uint64_t value);

/* A growing byte buffer for frames. */
struct ctl_buf {
	uint8_t *data;
	size_t len, cap;
	bool failed; /* out of memory (or over CTL_FRAME_MAX) */
};
void ctl_buf_put(struct ctl_buf *b, const void *p, size_t len);
__attribute__((format(printf, 2, 3))) void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...);
void ctl_buf_free(struct ctl_buf *b);

/* A whole frame into b: header and body. */
void ctl_frame(struct ctl_buf *b, uint16_t code, const void *body, size_t len);
/* How many bytes the frame at the start of buf takes: 0 when more are
 * needed, -EPROTO/-EMSGSIZE when it can never be a frame. */
long ctl_frame_size(const uint8_t *buf, size_t len);

/* What a request can do to the VM: the running khyve's (ctl/server.c), or
 * a fake (tests, fuzzing). Each returns 0 or -errno with a reason. */
struct ctl_target {
	void *opaque;
	unsigned ncpus;
	void (*info)(void *opaque, struct ctl_buf *out);
	int (*get_state)(void *opaque, unsigned cpu, struct vcpu_state *st, char *err, size_t errlen);
	int (*set_state)(void *opaque, unsigned cpu, const struct vcpu_state *st, char *err,
			 size_t errlen);
	int (*stats)(void *opaque, unsigned cpu, struct ctl_buf *out, char *err, size_t errlen);
	int (*suspend)(void *opaque, bool suspend, char *err, size_t errlen);
	/* Wake a guest suspended to RAM (ACPI S3); NULL: not offered. */
	int (*wakeup)(void *opaque, char *err, size_t errlen);
	/* op: CTL_OP_RESET, POWEROFF or DESTROY; called after the reply is
	 * sent. */
	void (*end)(void *opaque, int op);
};

/* Handle one whole frame (ctl_frame_size said how long): the reply frame
 * goes to reply. Returns true to keep the connection, false to close it
 * after the reply (a frame that breaks the protocol). *end_op is set to
 * the CTL_OP_* whose t->end the caller must call once the reply is out,
 * else 0. */
bool ctl_handle(const struct ctl_target *t, const uint8_t *frame, size_t len,
		struct ctl_buf *reply, int *end_op);
