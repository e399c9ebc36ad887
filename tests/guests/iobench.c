/* SPDX-License-Identifier: BSD-2-Clause */
/* Smallest possible guest: one line, then exit code 0 (start-to-exit benchmark). */
#include "guest.h"

int main(void)
{
    printf("Hello from the khyve test guest (%s)\n", boot_protocol_name());
    return 0;
}
