/* SPDX-License-Identifier: BSD-2-Clause */
/* Everything a test guest needs: #include "guest.h" and define int main(void). */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>

#include "config.h"
#include "io.h"
#include "spinlock.h"
#include "lib.h"
#include "printf.h"
#include "uart.h"
#include "delay.h"
#include "runtime.h"
#include "bootinfo.h"
#include "acpi.h"
#include "mptable.h"
#include "fwcfg.h"
#include "rtc.h"
#include "smp.h"

#endif
