#!/usr/bin/python3
"""Ask a running SVM test host's QEMU monitor (HMP) something.

usage: svm_monitor.py PID|SOCKET COMMAND...   e.g. svm_monitor.py 1234 "info lapic"
PID is svm-host's own pid (its control dir is /tmp/svm-host-PID-*)."""
import glob
import os
import socket
import sys
import time


def sock_path(arg):
    if arg.isdigit():
        found = glob.glob(f"/tmp/svm-host-{arg}-*/monitor.sock")
        if not found:
            sys.exit(f"no monitor socket for svm-host {arg}")
        return found[0]
    return arg


def ask(path, command, wait=1.0):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(wait)
    out = b""

    def drain():
        nonlocal out
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
    drain()
    s.sendall(command.encode() + b"\n")
    drain()
    s.close()
    return out.decode(errors="replace")


def stall_signature(regs, lapic):
    """From "info registers" and "info lapic": a description when the CPU
    is halted with interrupts enabled and a vector pending in its local
    APIC (an interrupt QEMU 7.2's TCG has stopped delivering), else None."""
    halted = "HLT=1" in regs
    rfl = [w for w in regs.split() if w.startswith("RFL=")]
    irq_on = bool(rfl) and int(rfl[0][4:], 16) & 0x200
    irr = [[v for v in line.split()[1:] if v.isdigit()]
           for line in lapic.splitlines() if line.startswith("IRR")]
    if halted and irq_on and irr and irr[0]:
        return f"its CPU halted with interrupts enabled and vector {' '.join(irr[0])} pending"
    return None


def describe_cpu(regs, lapic):
    """A few words on the CPU's state, for a report."""
    why = stall_signature(regs, lapic)
    if why:
        return why
    rip = [w for w in regs.split() if w.startswith("RIP=")]
    rfl = [w for w in regs.split() if w.startswith("RFL=")]
    irr = [line.strip() for line in lapic.splitlines() if line.startswith("IRR")]
    return ", ".join(filter(None, ["HLT=1" if "HLT=1" in regs else "running",
                                   rip[0] if rip else "", rfl[0] if rfl else "",
                                   irr[0] if irr else ""]))


if __name__ == "__main__":
    path = sock_path(sys.argv[1])
    for c in sys.argv[2:]:
        print(ask(path, c))
