/* SPDX-License-Identifier: BSD-2-Clause */
#include "fwcfg.h"
#include "io.h"
#include "lib.h"

void fwcfg_read(uint16_t key, void *buf, size_t len)
{
    uint8_t *p = buf;

    outw(FW_CFG_PORT_SEL, key);
    for (size_t i = 0; i < len; i++)
        p[i] = inb(FW_CFG_PORT_DATA);
}

static void fwcfg_continue(void *buf, size_t len)
{
    uint8_t *p = buf;

    for (size_t i = 0; i < len; i++)
        p[i] = inb(FW_CFG_PORT_DATA);
}

void fwcfg_signature(char sig[5])
{
    fwcfg_read(FW_CFG_SIGNATURE, sig, 4);
    sig[4] = 0;
}

bool fwcfg_present(void)
{
    char sig[5];

    fwcfg_signature(sig);
    return !memcmp(sig, "QEMU", 4);
}

uint64_t fwcfg_ram_size(void)
{
    uint8_t b[8];
    uint64_t v = 0;

    fwcfg_read(FW_CFG_RAM_SIZE, b, 8);
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint16_t read_u16(uint16_t key)
{
    uint8_t b[2];

    fwcfg_read(key, b, 2);
    return (uint16_t)(b[0] | b[1] << 8);
}

uint16_t fwcfg_nb_cpus(void)
{
    return read_u16(FW_CFG_NB_CPUS);
}

uint16_t fwcfg_max_cpus(void)
{
    return read_u16(FW_CFG_MAX_CPUS);
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

bool fwcfg_find_file(const char *name, uint16_t *key, uint32_t *size)
{
    uint8_t cnt[4];
    uint32_t n;

    fwcfg_read(FW_CFG_FILE_DIR, cnt, 4);
    n = be32(cnt);
    if (n > 4096)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        struct {
            uint8_t size[4];
            uint8_t select[2];
            uint8_t reserved[2];
            char name[56];
        } f;
        fwcfg_continue(&f, sizeof(f));
        f.name[55] = 0;
        if (!strcmp(f.name, name)) {
            if (key)
                *key = (uint16_t)(f.select[0] << 8 | f.select[1]);
            if (size)
                *size = be32(f.size);
            return true;
        }
    }
    return false;
}
