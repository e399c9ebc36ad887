#!/usr/bin/python3
"""GDB sessions against khyve, run inside the SVM test host (where
tests/svm/test_gdb.py puts them): each scenario starts khyve and gdb (in
batch mode), prints what they said between markers, and exits 0, so the
test can check the transcript.

usage: gdb_scenarios.py guest|linux BUILD_DIR [KIT_DIR]
"""
import base64
import os
import re
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Vm:
    def __init__(self, khyve, args, workdir):
        self.out_path = os.path.join(workdir, "khyve.out")
        self.err_path = os.path.join(workdir, "khyve.err")
        # stdin is a pipe: what the scenario types reaches com1 (stdio).
        self.proc = subprocess.Popen([khyve, *args], stdin=subprocess.PIPE,
                                     stdout=open(self.out_path, "wb"),
                                     stderr=open(self.err_path, "wb"))

    def type_line(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def text(self, which):
        with open(self.out_path if which == "out" else self.err_path, errors="replace") as f:
            return f.read()

    def wait_for(self, which, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(which))
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return re.search(pattern, self.text(which))

    def finish(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "timeout"


def gdb(port, *commands, symbols=None, timeout=300):
    args = ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    if symbols:
        args.append(symbols)
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.stdout.decode(errors="replace")


def section(name, text):
    print(f"=== {name}\n{text}\n=== end {name}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scenario_guest(build, workdir):
    """The gdbtarget guest: more breakpoints than there are debug registers,
    a changed variable, a watchpoint firing on a write, detach."""
    khyve = os.path.join(build, "src", "cmd", "khyve")
    guest = os.path.join(build, "tests", "guests", "gdbtarget")
    vm = Vm(khyve, ["-m", "64M", "-l", "com1,stdio", "--debug-exit", "-G", "w0",
                    "--kernel", guest, "gdb0"], workdir)
    m = vm.wait_for("err", r"waiting for a debugger on 127\.0\.0\.1:(\d+)", 60)
    if not m:
        section("khyve", vm.text("err"))
        return
    port = int(m.group(1))
    start = time.monotonic()
    out = gdb(port, "monitor breakpoints",
              "break gdb_target_function", "break touch_watched", "break puts",
              "break printf", "break spin_until_released", "break cmdline_get_u64",
              "continue", "bt", "delete", "break gdb_target_function", "continue",
              "print answer", "set var answer = 42", "delete", "watch watched",
              "continue", "bt", "delete", "detach", symbols=guest)
    section("gdb", out)
    section("status", str(vm.finish(120)))
    section("seconds", f"{time.monotonic() - start:.1f}")
    section("console", vm.text("out"))
    section("khyve", vm.text("err"))


def scenario_linux(build, kit, workdir):
    """Debian's cloud kernel: gdb attaches while it boots, stops it, reads
    registers and kernel memory by virtual address, and detaches; once up,
    the guest prints linux_banner's address from /proc/kallsyms and gdb
    reads the banner there; once a line is typed on its console, the guest
    powers off (no sleep: gdb may be slow to come on a busy machine)."""
    khyve = os.path.join(build, "src", "cmd", "khyve")
    port = free_port()
    cmd = "grep -w linux_banner /proc/kallsyms; echo KALLSYMS-DONE; read -r done"
    append = ("console=ttyS0 loglevel=5 khyve.cmd64=" + base64.b64encode(cmd.encode()).decode())
    vm = Vm(khyve, ["-c", "2", "-m", "512M", "-l", "com1,stdio", "-g", str(port),
                    "--kernel", os.path.join(kit, "vmlinux"),
                    "--initrd", os.path.join(kit, "initramfs.cpio.gz"),
                    "--append", append, "linux0"], workdir)
    # The kernel's first console line: it is booting, paging is on.
    if not vm.wait_for("out", r"\[ *\d+\.\d+\] ", 120):
        section("console", vm.text("out"))
        section("khyve", vm.text("err"))
        return
    booting = gdb(port, "info threads", "info registers rip rsp cr0 cr3 cr4 efer",
                  "monitor regs", "detach")
    section("booting", booting)
    # Kernel text by virtual and by physical address must agree.
    pc = re.search(r"^rip\s+0x([0-9a-f]+)", booting, re.M)
    if pc:
        va = pc.group(1)
        walk = gdb(port, f"monitor translate {va}", f"x/16xb 0x{va}", "detach")
        section("walk", walk)
        phys = re.search(r"-> physical ([0-9a-f]+)", walk)
        if phys:
            section("physical", gdb(port, "monitor memory physical",
                                    f"x/16xb 0x{phys.group(1)}", "detach"))
    m = vm.wait_for("out", r"([0-9a-f]{16}) \w linux_banner[\s\S]*KALLSYMS-DONE", 180)
    if m:
        section("banner", gdb(port, f"x/s 0x{m.group(1)}", "info registers rip", "detach"))
    vm.type_line("done")
    section("status", str(vm.finish(180)))
    section("console", vm.text("out"))
    section("khyve", vm.text("err"))


def main():
    what, build = sys.argv[1], sys.argv[2]
    workdir = os.environ.get("TMPDIR", "/tmp")
    workdir = os.path.join(workdir, f"gdb-scenario-{os.getpid()}")
    os.makedirs(workdir, exist_ok=True)
    if what == "guest":
        scenario_guest(build, workdir)
    else:
        scenario_linux(build, sys.argv[3], workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
