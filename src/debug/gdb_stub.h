/* khyve's GDB stub: a TCP port on the event loop that gdb's
 * `target remote` connects to, serving the VM through gdb_server.c. One
 * debugger at a time; another connection is told so and closed. */
#pragma once
#include <stddef.h>

struct gdb_stub;
struct vm;

/* spec: "[w][address:]port" as bhyve's -G (address 127.0.0.1 unless
 * given); "w" holds every vCPU before its first instruction until a
 * debugger attaches. Call before vm_run. Returns 0 or -errno with a
 * reason in err. */
int gdb_stub_create(struct vm *vm, const char *spec, struct gdb_stub **out, char *err,
		    size_t errlen);
/* The VM ended with status: an attached debugger hears of it. */
void gdb_stub_vm_exited(struct gdb_stub *stub, int status);
void gdb_stub_destroy(struct gdb_stub *stub);
