/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Resets the machine: through the i8042 keyboard controller (0x64 <- 0xfe),
 * or through the reset control register (0xcf9 <- 0x02, then 0x06) with
 * "method=cf9" on the command line, or through the ACPI FADT's RESET_REG
 * with "method=acpi".  Output:
 *   RESET: method=<kbd|cf9>
 *   FAIL: still running 500 ms after reset via <method>     (exit code 1)
 */
#include "guest.h"

int main(void)
{
    char method[16] = "kbd";

    cmdline_get("method", method, sizeof(method));
    if (strcmp(method, "cf9") && strcmp(method, "kbd") && strcmp(method, "acpi"))
        test_fail("unknown reset method '%s' (use method=kbd, cf9 or acpi)", method);
    printf("RESET: method=%s\n", method);
    if (!strcmp(method, "acpi")) {
        const struct acpi_info *ai = acpi_get();
        if (!ai->fadt)
            test_fail("no FADT");
        const uint8_t *fadt = phys_to_ptr(ai->fadt);
        const struct acpi_header *h = (const void *)fadt;
        uint32_t flags;
        struct acpi_gas reg;
        memcpy(&flags, fadt + 112, 4);
        memcpy(&reg, fadt + 116, sizeof(reg));
        uint8_t value = fadt[128];
        if (h->length < 129 || !(flags & (1u << 10)))
            test_fail("the FADT has no reset register (flags 0x%x)", flags);
        printf("RESET: FADT RESET_REG space=%u address=0x%lx value=0x%x\n", reg.space_id,
               (unsigned long)reg.address, value);
        if (reg.space_id != 1)
            test_fail("reset register is not in I/O space");
        outb((uint16_t)reg.address, value);
    } else if (!strcmp(method, "cf9")) {
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
    } else {
        /* wait (bounded) for the input buffer to be empty, then pulse reset */
        for (int i = 0; i < 10000 && (inb(0x64) & 0x02); i++)
            cpu_relax();
        outb(0x64, 0xfe);
    }
    mdelay(500);
    test_fail("still running 500 ms after reset via %s", method);
}
