"""The serial console on a terminal: input, raw mode, signals, and the
terminal restored on every way out."""
import os
import signal
import subprocess
import time

import pexpect

from conftest import KHYVE, TIMEOUT, Session, guest


def base_args(name, *extra, debug_exit=True):
    args = ["-m", "64M", "-l", "com1,stdio"]
    if debug_exit:
        args.append("--debug-exit")
    return args + ["--kernel", guest(name), *extra]


def test_serial_input_reaches_guest():
    s = Session(base_args("serial", "con0"))
    s.expect("READY")
    s.send("hello khyve\r")
    s.expect("GOT: hello khyve")
    assert s.wait() == 1


def test_ctrl_c_goes_to_the_guest():
    """Raw mode: ^C is a byte for the guest, not SIGINT for khyve."""
    s = Session(base_args("serial", "con1"))
    s.expect("READY")
    s.send("a\x03b\r")
    s.expect("GOT: a")
    assert s.wait() == 1


def shell_session(khyve_args, tag):
    """khyve under a shell on a pty, then `stty -a` in the same terminal."""
    cmd = " ".join(f"'{a}'" for a in [KHYVE, *khyve_args])
    return pexpect.spawn("/bin/bash", ["--norc", "--noprofile", "-c",
                                       f"stty sane; {cmd}; echo STATUS-{tag}=$?; stty -a"],
                         timeout=TIMEOUT, encoding="utf-8", codec_errors="replace")


def assert_terminal_sane(child, tag, status):
    child.expect(rf"STATUS-{tag}=(\d+)")
    assert int(child.match.group(1)) == status
    child.expect(pexpect.EOF)
    stty = child.before
    for flag in ("icanon", "echo", "isig", "icrnl", "opost"):
        assert f" {flag}" in stty or f"\n{flag}" in stty or stty.startswith(flag), (flag, stty)
        assert f"-{flag} " not in stty and f"-{flag}\r" not in stty, (flag, stty)


def test_terminal_restored_after_guest_exit():
    child = shell_session(base_args("hello", "con2"), "a")
    assert_terminal_sane(child, "a", 1)


def pid_of(vmname):
    for _ in range(200):
        out = subprocess.run(["pgrep", "-f", f"khyve .* {vmname}$"], capture_output=True, text=True).stdout
        if out.strip():
            return int(out.split()[0])
        time.sleep(0.05)
    raise AssertionError(f"no khyve for {vmname}")


def test_sigterm_without_acpi_powers_off_at_once_and_restores_terminal():
    child = shell_session(base_args("serial", "con3"), "b")
    child.expect("READY")
    os.kill(pid_of("con3"), signal.SIGTERM)
    assert_terminal_sane(child, "b", 1)


def test_sighup_ends_vm_and_restores_terminal():
    child = shell_session(base_args("serial", "con4"), "c")
    child.expect("READY")
    os.kill(pid_of("con4"), signal.SIGHUP)
    assert_terminal_sane(child, "c", 1)


def test_demo_guest_powers_off_through_acpi_on_a_key():
    s = Session(["-c", "2", "-m", "64M", "-l", "com1,stdio", "--kernel", guest("demo"), "demo0"])
    s.expect("Press any key to power off.")
    report = s.output
    assert "2 CPUs" in report and "FACP" in report and "QEMU" in report
    s.send("x")
    s.expect("powering off")
    assert s.wait() == 1
