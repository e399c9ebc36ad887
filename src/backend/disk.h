/* Disk images for virtio-blk: raw files and block devices, opened with
 * bhyve's options, and locked so that two VMs never write one image.
 *
 * Locking: an open file description lock (F_OFD_SETLK, as QEMU uses) on
 * the whole image, exclusive for read-write and shared for ro. OFD locks
 * do not say who holds them, so the holder also writes a note (VM name and
 * pid) in $KHYVE_RUNDIR/locks/ (default /run/khyve, or
 * $XDG_RUNTIME_DIR/khyve when not root), named after the image's device
 * and inode; a refused opener reads it to name the VM that has the image.
 * The lock goes with the process (kill -9 included). The note goes when
 * the disk is closed or khyve exits in any way but kill -9
 * (util/exitclean.h), and with it its directory and locks/ when empty; a
 * note left by kill -9 is only read when a lock is actually refused, its
 * pid is checked, and the next opener of that image removes it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk_options {
	const char *path;
	bool ro;       /* O_RDONLY, shared lock, the guest sees a read-only disk */
	bool nocache;  /* O_DIRECT */
	bool sync;     /* O_SYNC ("direct" in bhyve's words) */
	bool nodelete; /* no discard for the guest */
	uint32_t logical_sector, physical_sector; /* 0: 512 / same as logical */
};

struct disk {
	int fd;
	char *path;
	uint64_t size; /* bytes, a multiple of the logical sector size */
	bool ro, nocache, block_device;
	uint32_t logical_sector, physical_sector;
	char note[640]; /* the lock note we wrote, removed on close ("" none) */
	int note_guard[3]; /* util/exitclean.h handles: the note, its dir, locks/ */
};

/* Open and lock. vm_name names this VM in the lock note. On failure a
 * one-line reason (e.g. "disk.img: in use by VM 'vm1' (pid 1234)"). */
int disk_open(const struct disk_options *o, const char *vm_name, struct disk **out, char *err,
	      size_t errlen);
void disk_close(struct disk *d);
