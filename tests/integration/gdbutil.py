"""Helpers for the GDB stub tests: khyve with -G/-g in the background,
Debian's gdb in batch mode, and a raw remote-protocol client."""
import os
import re
import signal
import socket
import subprocess

from conftest import TIMEOUT, Background, guest

GDB = "gdb"


class Khyve(Background):
    """khyve running a test guest in the background with a GDB stub."""

    def __init__(self, tmp_path, gdb="w0", name="gdbtarget", append=None, cpus=None,
                 extra=(), env=None, gdb_option="-G"):
        self.guest = guest(name)
        args = ["-m", "64M", "-l", "com1,stdio", "--debug-exit", gdb_option, gdb]
        if cpus:
            args += ["-c", str(cpus)]
        args += list(extra) + ["--kernel", self.guest]
        if append:
            args += ["--append", append]
        args.append("gdb0")
        super().__init__(args, tmp_path, env=env)
        self.port = None
        if gdb_option == "-G" or gdb:
            m = self.wait_for(self.stderr, r"gdb: (?:waiting for a debugger|listening) on "
                                           r"127\.0\.0\.1:(\d+)")
            self.port = int(m.group(1))


def gdb_args(vm, commands, symbols=True):
    args = [GDB, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", f"target remote 127.0.0.1:{vm.port}"]
    for c in commands:
        args += ["-ex", c]
    if symbols:
        args.append(vm.guest)
    return args


def run_gdb(vm, *commands, timeout=TIMEOUT, symbols=True):
    """gdb -batch with these commands; returns its output (stdout+stderr)."""
    p = subprocess.run(gdb_args(vm, commands, symbols), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.stdout.decode(errors="replace")


def gdb_with_ctrl_c(vm, before, after, running, timeout=TIMEOUT):
    """Run gdb: the `before` commands end in a continue; once the guest shows
    it runs (its stdout matches `running`, which it can print only after
    gdb let it go), gdb gets SIGINT (what Ctrl-C does), which it passes on
    as an interrupt; then the `after` commands run. Ordered by events, not
    by delays: a slow host only makes it take longer."""
    p = subprocess.Popen(gdb_args(vm, list(before) + list(after)), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        vm.wait_for(vm.stdout, running, timeout=timeout)
    except AssertionError:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"the guest never showed {running!r}; gdb said:\n"
                             + out.decode(errors="replace"))
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=timeout)
    return out.decode(errors="replace")


class Rsp:
    """A minimal remote-protocol client over TCP."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    @staticmethod
    def frame(payload):
        if isinstance(payload, str):
            payload = payload.encode()
        return b"$" + payload + b"#" + b"%02x" % (sum(payload) & 0xff)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def packet(self):
        """The next packet's payload (acks skipped); acknowledges it."""
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    payload = self.buf[start + 1:end]
                    csum = int(self.buf[end + 1:end + 3], 16)
                    self.buf = self.buf[end + 3:]
                    assert csum == sum(payload) & 0xff, payload
                    self.sock.sendall(b"+")
                    return payload
            self._fill()

    def ask(self, payload):
        self.sock.sendall(self.frame(payload))
        return self.packet()
