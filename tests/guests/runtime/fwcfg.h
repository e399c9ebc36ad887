/* SPDX-License-Identifier: BSD-2-Clause */
/* QEMU fw_cfg, legacy I/O interface: selector 0x510 (16-bit), data 0x511 (8-bit). */
#ifndef GUEST_FWCFG_H
#define GUEST_FWCFG_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511

#define FW_CFG_SIGNATURE  0x0000
#define FW_CFG_ID         0x0001
#define FW_CFG_RAM_SIZE   0x0003
#define FW_CFG_NB_CPUS    0x0005
#define FW_CFG_MAX_CPUS   0x000f
#define FW_CFG_FILE_DIR   0x0019

/* Selects key and reads len bytes (each byte is one port read). */
void fwcfg_read(uint16_t key, void *buf, size_t len);
/* The signature reads "QEMU". */
bool fwcfg_present(void);
/* Copies the 4 signature bytes + NUL into sig[5] (whatever they are). */
void fwcfg_signature(char sig[5]);
uint64_t fwcfg_ram_size(void);     /* u64 little-endian */
uint16_t fwcfg_nb_cpus(void);      /* u16 */
uint16_t fwcfg_max_cpus(void);     /* u16 */
/* Looks a file up in the directory (key 0x19, big-endian fields). */
bool fwcfg_find_file(const char *name, uint16_t *key, uint32_t *size);

#endif
