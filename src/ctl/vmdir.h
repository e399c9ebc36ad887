/* Named VMs: the runtime directory, as /dev/vmm/NAME is for bhyve.
 *
 * A VM named NAME is the directory $KHYVE_RUNDIR/NAME/ (default /run/khyve,
 * or $XDG_RUNTIME_DIR/khyve when not root, else /tmp/khyve-UID; the runtime
 * directory must be the user's own with mode 0700, ctl_rundir_ready), mode
 * 0700:
 *
 *   lock   flock(2)ed by whoever uses the VM: the running khyve, a loader
 *          while it loads, khyvectl while it creates or destroys. The
 *          holder writes "pid=N\nrole=khyve\n..." into it (vmdir.c) and
 *          empties it when it lets go, so a lock that is free while the
 *          file still names a pid was left by a process that died (kill
 *          -9): the VM is stale.
 *   mem    the guest's RAM as a loader left it (a sparse file of the
 *          guest's memory size: low RAM, then RAM from 4 GiB, as
 *          mem/guest_mem.h lays it out). The loader maps it shared and
 *          writes; khyve maps it private (copy on write), so a run never
 *          changes it and the VM can be run again as prepared.
 *   entry  the entry state the loader set (ctl/entry.h: registers, memory
 *          size, what was loaded where; a versioned text format).
 *   ctl    khyve's control socket (mode 0600) while it runs (ctl/proto.h).
 *
 * A directory without mem and entry is a VM that exists but holds nothing
 * to boot (khyvectl --create, or khyve --kernel, which boots from fresh
 * anonymous memory and leaves the loader's files alone).
 *
 * A loader (khyveload; tests/tools/prepare_vm does the same) prepares a VM:
 *
 *   struct ctl_vm vm;
 *   ctl_vm_open(name, CTL_OPEN_CREATE, CTL_ROLE_LOADER, &vm, err, len);
 *   struct guest_mem gm;
 *   ctl_vm_mem_create(&vm, size, &gm, err, len);     (fresh, zeroed memory)
 *   boot_load_kernel(&gm, &req, &entry, ...) or its own loading, writing
 *       only through guest_mem (below 0xE0000-0xFFFFF and the EBDA, which
 *       khyve fills with its ACPI and MP tables when it starts);
 *   ctl_entry_init(&e, size, &entry, cmdline); ctl_entry_add_load(...);
 *   ctl_vm_write_entry(&vm, &e, err, len);
 *   guest_mem_destroy(&gm); ctl_vm_close(&vm);
 *
 * and on any failure ctl_vm_abandon(&vm), which removes a VM this open
 * created. `khyve NAME` then runs it.
 *
 * Everything here returns 0 or -errno with a one-line reason in err that
 * names the VM, never a flag. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct ctl_entry;

/* Names are 1-31 bytes as bhyve's (VM_MAX_NAMELEN 32 with the NUL). */
#define CTL_NAME_MAX 31

/* A usable VM name: 1-31 printable ASCII characters other than '/' and
 * space, not starting with '.'; "locks" is taken (the disk images' lock
 * notes live in $KHYVE_RUNDIR/locks). */
int ctl_check_name(const char *name, char *err, size_t errlen);

/* The runtime directory's path (not created, not checked). */
const char *ctl_rundir(char *buf, size_t len);
/* The runtime directory's path in path, made when create (mkdir -p), and
 * checked: a directory (not a symlink) of this user's own, mode 0700 (no
 * access for group or others). One that fails is refused, never used:
 * -ENOTDIR or -EPERM with a one-line reason; -ENOENT when it does not
 * exist (and !create). Everything here that touches the runtime
 * directory goes through it. */
int ctl_rundir_ready(bool create, char *path, size_t len, char *err, size_t errlen);
/* mkdir -p path (parents 0755, path itself 0700), for the runtime
 * directory and what lives in it. 0 or -errno. */
int ctl_mkdirs(const char *path);

enum ctl_role { CTL_ROLE_KHYVE, CTL_ROLE_LOADER, CTL_ROLE_CTL };

/* An open VM with its lock held. */
struct ctl_vm {
	char name[CTL_NAME_MAX + 1];
	char dir[400];
	int dir_fd;  /* O_DIRECTORY */
	int lock_fd; /* flocked */
	bool fresh;  /* this open made the directory */
	bool was_stale; /* the last holder died holding it */
	enum ctl_role role;
	char stale_text[256]; /* what the dead holder left, kept by khyvectl */
};

#define CTL_OPEN_CREATE 1u /* make it when it does not exist */
#define CTL_OPEN_EXCL 2u   /* with CREATE: fail with -EEXIST when it exists */

/* Open (and maybe create) the VM and take its lock as role. -ENOENT "no
 * such VM", -EEXIST, -EBUSY "in use by khyve (pid N)", -EINVAL bad name.
 * On failure nothing is left behind (a directory made here is removed). */
int ctl_vm_open(const char *name, unsigned flags, enum ctl_role role, struct ctl_vm *vm,
		char *err, size_t errlen);
/* Add "key=value" lines to what the lock file says about the holder
 * (khyve: cpus, mem), for khyvectl --list. */
void ctl_vm_describe(struct ctl_vm *vm, const char *lines);
/* Let go: the lock file is emptied, the lock released. */
void ctl_vm_close(struct ctl_vm *vm);
/* A failed load or start: close, removing the VM when this open made it
 * (nothing left behind). */
void ctl_vm_abandon(struct ctl_vm *vm);
/* Remove the VM (its files and directory) and close it. */
int ctl_vm_remove(struct ctl_vm *vm, char *err, size_t errlen);

/* The path of a file of the VM. */
void ctl_vm_path(const struct ctl_vm *vm, const char *file, char *buf, size_t len);

/* ---- Memory (the loader's side, and khyve's) ---- */
/* A new memory file of size bytes (an old one is emptied first), mapped
 * shared into gm: what the loader writes through guest_mem lands in it. */
int ctl_vm_mem_create(struct ctl_vm *vm, uint64_t size, struct guest_mem *gm, char *err,
		      size_t errlen);
/* The memory file, opened read-only for khyve to map privately; its size
 * in *size. -ENOENT when there is none. */
int ctl_vm_mem_open(struct ctl_vm *vm, int *fd, uint64_t *size, char *err, size_t errlen);

/* ---- Entry state (ctl/entry.h) ---- */
/* Written whole or not at all (a temporary file renamed). */
int ctl_vm_write_entry(struct ctl_vm *vm, const struct ctl_entry *e, char *err, size_t errlen);
/* -ENOENT when the VM has none. */
int ctl_vm_read_entry(struct ctl_vm *vm, struct ctl_entry *e, char *err, size_t errlen);

/* ---- Looking without the lock (khyvectl --list, busy checks) ---- */
enum ctl_vm_state {
	CTL_VM_CREATED,  /* exists, nothing to boot */
	CTL_VM_PREPARED, /* a loader left memory and an entry state */
	CTL_VM_RUNNING,  /* khyve holds it */
	CTL_VM_BUSY,     /* a loader or khyvectl holds it */
	CTL_VM_STALE,    /* its holder died (kill -9) */
};
struct ctl_vm_status {
	enum ctl_vm_state state;
	int pid;           /* the holder, or the one that died; 0 unknown */
	char role[16];     /* "khyve", "loader", "khyvectl" */
	uint64_t mem;      /* bytes; 0 unknown */
	unsigned cpus;     /* 0 unknown */
};
const char *ctl_vm_state_name(enum ctl_vm_state s);
/* -ENOENT when there is no such VM. */
int ctl_vm_status(const char *name, struct ctl_vm_status *st, char *err, size_t errlen);
/* Calls fn for every VM in the runtime directory, in name order. 0 (none
 * when there is no runtime directory) or -errno with a reason in why. */
int ctl_vm_list(void (*fn)(void *opaque, const char *name, const struct ctl_vm_status *st),
		void *opaque, char *why, size_t whylen);

/* ---- The control socket ---- */
/* Bind (server) or connect (client) to the VM's ctl socket. The path may
 * be longer than a sockaddr_un holds: it is reached through the
 * directory's descriptor then. Return a descriptor or -errno. */
int ctl_socket_listen(struct ctl_vm *vm, char *err, size_t errlen);
int ctl_socket_connect(const char *name, char *err, size_t errlen);
