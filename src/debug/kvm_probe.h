/* What this host's KVM does for a debugger, found by running a throw-away
 * VM (a few milliseconds): tiny long-mode guests execute an int3 with
 * KVM_GUESTDBG_USE_SW_BP, run into an instruction breakpoint in DR0, and
 * write to a data breakpoint in DR0, and we see which of them KVM reports
 * as KVM_EXIT_DEBUG. An instruction emulator may deliver the int3 to the
 * guest, and a nested KVM may never arm the debug registers. */
#pragma once

#define KVM_PROBE_INT3 1u     /* int3 is intercepted */
#define KVM_PROBE_HW_BREAK 2u /* instruction breakpoints fire */
#define KVM_PROBE_HW_WATCH 4u /* data (write) breakpoints fire */

/* The KVM_PROBE_* that work; 0 when the probe itself fails. */
unsigned kvm_probe_debug(void);
