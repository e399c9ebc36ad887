/* QEMU's firmware configuration device (fw_cfg), traditional port
 * interface: selector at 0x510 (16-bit write), data at 0x511 (8-bit reads
 * step through the selected item; past its end they give 0). It offers
 * the signature, ID, UUID, RAM size, CPU counts and a file directory with
 * "etc/e820" (QEMU's format), so firmware written for QEMU finds the
 * memory map. DMA is not offered (FW_CFG_ID bit 1 clear; the DMA port
 * 0x514 is claimed and ignored). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dev/platform.h"

struct fw_cfg;

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514

/* Selector keys. */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_MAX_FILES 0x1000 /* as QEMU's default file_slots */
#define FW_CFG_FILE_NAME_MAX 56 /* bytes, including the NUL */

/* RAM size from p->mem, CPU counts from p->ncpus and p->max_cpus.
 * Returns 0 or -errno. */
int fw_cfg_create(struct platform *p, struct fw_cfg **out);
void fw_cfg_destroy(struct fw_cfg *fw);

/* Add a file (the data is copied); it gets the next free selector from
 * FW_CFG_FILE_FIRST on. Returns 0, -EEXIST (name taken), -ENAMETOOLONG
 * (55 characters at most), -EINVAL (empty name, or len over 4 GiB),
 * -ENOSPC or -ENOMEM. Thread-safe. */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* Set (or replace) a fixed item below FW_CFG_FILE_FIRST, e.g. QEMU's
 * kernel/initrd/cmdline keys; the data is copied. FW_CFG_FILE_DIR cannot
 * be set. Returns 0 or -errno. */
int fw_cfg_set_item(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);
