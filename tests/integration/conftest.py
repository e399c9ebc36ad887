"""Shared helpers for integration tests: run khyve (the build named by
$KHYVE_BUILD, default build/) on the test guests from tests/guests."""
import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("KHYVE_BUILD", os.path.join(ROOT, "build"))
KHYVE = os.path.join(BUILD, "src", "cmd", "khyve")
KHYVECTL = os.path.join(BUILD, "src", "cmd", "khyvectl")
PREPARE_VM = os.path.join(BUILD, "tests", "tools", "prepare_vm")

# Named VMs live in $KHYVE_RUNDIR/NAME (src/ctl/vmdir.h): every test run
# gets its own, so that runs on one machine never share (or lock) a name.
RUNDIR = tempfile.mkdtemp(prefix="khyve-rundir-")
os.environ["KHYVE_RUNDIR"] = RUNDIR
atexit.register(shutil.rmtree, RUNDIR, True)
SANITIZED = "asan" in os.path.basename(BUILD.rstrip("/"))
# Guests run instruction by instruction on a software KVM: be generous.
TIMEOUT = 120 if SANITIZED else 60

# debug-exit: a guest write of V ends khyve with (V << 1) | 1; 0 is a pass.
GUEST_PASS = 1


def clean(r):
    """No sanitizer reports from khyve."""
    assert "Sanitizer" not in r.err and "runtime error" not in r.err, r
    return r


def passed(r):
    """The guest reported PASS through debug-exit, and khyve stayed clean."""
    clean(r)
    assert r.status == GUEST_PASS and "PASS" in r.out and "FAIL" not in r.out, r
    return r


def guest(name):
    path = os.path.join(BUILD, "tests", "guests", name)
    if not os.path.exists(path):
        pytest.fail(f"test guest {name} was not built: {path}")
    return path


class Result:
    def __init__(self, status, out, err, elapsed):
        self.status, self.out, self.err, self.elapsed = status, out, err, elapsed

    def __repr__(self):
        return f"<khyve exit {self.status}\n--- stdout\n{self.out}\n--- stderr\n{self.err}>"


def khyve(*args, input=None, timeout=TIMEOUT, env=None):
    """Run khyve to completion; stdin is a pipe (or /dev/null)."""
    start = time.monotonic()
    proc = subprocess.run([KHYVE, *args], input=input if input is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=env)
    return Result(proc.returncode, proc.stdout.decode(errors="replace"),
                  proc.stderr.decode(errors="replace"), time.monotonic() - start)


def run_guest(name, *extra, cpus=None, mem="64M", append=None, modules=(), input=None,
              vm="t0", timeout=TIMEOUT, debug_exit=True, kernel=None):
    args = ["-m", mem, "-l", "com1,stdio"]
    if cpus:
        args += ["-c", str(cpus)]
    if debug_exit:
        args += ["--debug-exit"]
    args += ["--kernel", kernel or guest(name)]
    if append is not None:
        args += ["--append", append]
    for m in modules:
        args += ["--initrd", m]
    args += list(extra) + [vm]
    return khyve(*args, input=input, timeout=timeout)


class Background:
    """khyve running in the background, its stdout and stderr in files under
    tmp_path, for tests that talk to it through other channels."""

    def __init__(self, args, tmp_path, env=None):
        self.out_path = os.path.join(str(tmp_path), "khyve.out")
        self.err_path = os.path.join(str(tmp_path), "khyve.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([KHYVE, *args], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=env)

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_for(self, what, pattern, timeout=TIMEOUT):
        """Wait until what() (self.stdout or self.stderr) matches pattern."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, what())
            if m:
                return m
            if self.proc.poll() is not None or time.monotonic() > deadline:
                m = re.search(pattern, what())
                if m:
                    return m
                raise AssertionError(f"no {pattern!r}; {self.describe()}")
            time.sleep(0.02)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"khyve did not end; {self.describe()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def describe(self):
        return (f"khyve status {self.proc.poll()}\n--- stdout\n{self.stdout()}\n"
                f"--- stderr\n{self.stderr()}")


class Session:
    """khyve on a pty (pexpect), for consoles and signals."""

    def __init__(self, args, timeout=TIMEOUT):
        import pexpect
        self.child = pexpect.spawn(KHYVE, list(args), timeout=timeout, encoding="utf-8",
                                   codec_errors="replace")

    def expect(self, pattern, timeout=None):
        return self.child.expect(pattern, timeout=timeout if timeout is not None else -1)

    def send(self, text):
        self.child.send(text)

    def kill(self, sig=signal.SIGTERM):
        self.child.kill(sig)

    def wait(self, timeout=TIMEOUT):
        import pexpect
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -self.child.signalstatus

    @property
    def output(self):
        return self.child.before
