/* Whether this host's KVM intercepts int3 for a debugger
 * (KVM_GUESTDBG_USE_SW_BP): a throw-away VM with one vCPU in long mode
 * executes an int3 and we see whether KVM reports it (KVM_EXIT_DEBUG) or
 * delivers it to the guest's #BP handler. Some KVMs (an instruction
 * emulator, for one) do the latter. Returns 1, 0, or -errno when the probe
 * itself failed (then assume no). Takes a few milliseconds. */
#pragma once

int kvm_probe_int3_intercept(void);
