/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Constants shared by the assembly entry code, the linker script's users and
 * the C runtime.  Keep this file free of C syntax: entry.S includes it.
 */
#ifndef GUEST_CONFIG_H
#define GUEST_CONFIG_H

#define GUEST_LOAD_ADDR     0x100000    /* the image is linked at 1 MiB */

/* GDT selectors (see gdt in entry.S). */
#define SEL_CODE64          0x08
#define SEL_DATA            0x10
#define SEL_CODE32          0x18

/* Per-CPU stacks: one array, CPU index i owns [i*STACK_SIZE, (i+1)*STACK_SIZE). */
#define MAX_CPUS            16
#define STACK_SIZE          16384

/* Boot protocols recorded by the 32-bit entry points. */
#define BOOT_PROTO_UNKNOWN  0
#define BOOT_PROTO_PVH      1
#define BOOT_PROTO_MULTIBOOT 2

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define PVH_START_MAGIC     0x336ec578

/* Exit codes passed to guest_exit() (the VMM's status is (code << 1) | 1). */
#define EXIT_PASS           0
#define EXIT_FAIL           1
#define EXIT_EXCEPTION      2

#endif
