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


if __name__ == "__main__":
    path = sock_path(sys.argv[1])
    for c in sys.argv[2:]:
        print(ask(path, c))
