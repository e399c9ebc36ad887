"""Helpers for the hostile-guest tests (test_hostile_*.py): khyve in the
background with its console on a pipe, driven by the guest's
"HOSTILE: sample <name>" lines (the guest waits for one byte after each,
so the host measures khyve at points the guest chose, not after a delay),
and khyve's memory and CPU time read from /proc."""
import os
import re
import signal
import subprocess
import time
import zlib

from conftest import KHYVE, SANITIZED, TIMEOUT, guest

# How much khyve's memory may grow between the guest's "setup" and "end"
# samples. Not zero: the threads' malloc arenas and the allocator's caches
# settle after the first requests, ASan keeps a (here small) quarantine, and
# stacks and a few pages of code touched for the first time count too; all
# that stays within a few MiB. The leaks these tests look for are far
# larger: 100k BAR toggles leaked 200 MB, one nocache request a bounce
# buffer the size of the request.
RSS_SLACK_KB = 8 * 1024

# Under ASan, freed memory waits in a quarantine (256 MiB by default) before
# it is reused: a loop that allocates and frees would look like a leak.
ASAN_ENV = "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"


def khyve_env():
    env = dict(os.environ)
    if SANITIZED:
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), ASAN_ENV) if x)
    return env


def proc_status(pid):
    """RssAnon, VmRSS, VmHWM (KiB) of a live process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def crc(path):
    with open(path, "rb") as f:
        return zlib.crc32(f.read())


class Guest:
    """khyve running a hostile guest; stdin is a pipe (the acks), stdout and
    stderr go to files."""

    def __init__(self, name, args, append, tmp_path, mem="64M", cpus=None, com1="stdio",
                 extra_env=None, prefix=()):
        self.out_path = os.path.join(str(tmp_path), "khyve.out")
        self.err_path = os.path.join(str(tmp_path), "khyve.err")
        # prefix: e.g. ip netns exec NS, which execs khyve (the same pid)
        cmd = list(prefix) + [KHYVE, "-m", mem, "--debug-exit"]
        if com1:
            cmd += ["-l", f"com1,{com1}"]
        if cpus:
            cmd += ["-c", str(cpus)]
        cmd += list(args) + ["--kernel", guest(name), "--append", append, "hostile"]
        env = khyve_env()
        env.update(extra_env or {})
        self.cmd = cmd
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                         env=env)
        self.samples = {}
        self.cpu = {}
        self.acked = 0

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def describe(self):
        return (f"{' '.join(self.cmd)}\nkhyve status {self.proc.poll()}\n--- stdout\n"
                f"{self.stdout()[-6000:]}\n--- stderr\n{self.stderr()[-6000:]}")

    def wait_for(self, pattern, timeout=TIMEOUT, count=1):
        """Wait until stdout matches pattern count times; the last match."""
        deadline = time.monotonic() + timeout
        while True:
            ms = list(re.finditer(pattern, self.stdout()))
            if len(ms) >= count:
                return ms[count - 1]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                ms = list(re.finditer(pattern, self.stdout()))
                if len(ms) >= count:
                    return ms[count - 1]
                raise AssertionError(f"no {pattern!r} (x{count}); {self.describe()}")
            time.sleep(0.01)

    def wait_for_err(self, pattern, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.stderr()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on stderr; {self.describe()}")
            time.sleep(0.01)

    def send(self, data=b"x"):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next_sample(self, timeout=TIMEOUT):
        """Wait for the guest's next sample line, measure khyve, and return
        the sample's name; the caller acks with ack()."""
        m = self.wait_for(r"HOSTILE: sample (\S+)\r?\n", timeout, count=self.acked + 1)
        name = m.group(1)
        self.samples[name] = proc_status(self.proc.pid)
        self.cpu[name] = cpu_seconds(self.proc.pid)
        return name

    def ack(self):
        self.acked += 1
        self.send()

    def run_to_end(self, timeout=TIMEOUT, during=None):
        """Answer every sample until khyve exits; during(name) runs after
        each sample is taken and before it is acked."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                name = self.next_sample(timeout=max(1, deadline - time.monotonic()))
            except AssertionError:
                if self.proc.poll() is not None:
                    break
                raise
            if during:
                during(name)
            self.ack()
        return self.wait(timeout=max(1, deadline - time.monotonic()))

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"khyve did not end; {self.describe()}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    # ---- assertions ----

    def assert_clean(self):
        err = self.stderr()
        assert "Sanitizer" not in err and "runtime error" not in err, self.describe()

    def assert_passed(self, status):
        self.assert_clean()
        out = self.stdout()
        assert status == 1 and "PASS" in out and "FAIL" not in out, self.describe()
        assert "HOSTILE: sane" in out, self.describe()

    def assert_flat(self, first="setup", last="end"):
        a, b = self.samples[first], self.samples[last]
        grew = {k: b[k] - a[k] for k in ("RssAnon", "VmHWM")}
        assert grew["RssAnon"] <= RSS_SLACK_KB and grew["VmHWM"] <= RSS_SLACK_KB, (
            f"khyve's memory grew between the samples {first!r} and {last!r}: "
            f"RssAnon {a['RssAnon']} -> {b['RssAnon']} KiB, VmHWM {a['VmHWM']} -> "
            f"{b['VmHWM']} KiB (allowed +{RSS_SLACK_KB} KiB)\n{self.describe()}")
        return grew
