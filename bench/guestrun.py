"""One guest run of a benchmark, watched (bench/virtiofs, bench/p9).

    r = guestrun.run(cmd, timeout, on_line)

runs cmd (a VMM with the guest's console on its stdout) and calls
on_line(seconds since start, line) for each console line as it arrives,
so that a benchmark can print each phase when it ends instead of after
the whole run. A run still going after timeout seconds is killed and
comes back with r.timed_out set, whatever the guest was doing: a run
that makes no progress is reported, not waited for. The VMM's stderr
goes to a file, not a pipe: a pipe nobody reads stops the VMM once it
holds 64 KiB, which would look like a hang of the guest.
"""
import os
import selectors
import subprocess
import tempfile
import time


class Result:
    def __init__(self):
        self.lines = []       # (seconds since start, line)
        self.rc = None        # the VMM's exit status (negative: killed by that signal)
        self.timed_out = False
        self.elapsed = 0.0
        self.stderr = ""      # its last 4000 characters


def run(cmd, timeout, on_line=None):
    r = Result()
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        buf = b""
        eof = False
        try:
            while True:
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    r.timed_out = True
                    break
                if not sel.select(min(left, 5.0)):
                    continue
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    eof = True
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode(errors="replace").rstrip("\r")
                    at = time.monotonic() - t0
                    r.lines.append((at, line))
                    if on_line:
                        on_line(at, line)
        finally:
            if eof:
                try:  # the console closed: the VMM is on its way out
                    p.wait(timeout=max(10.0, t0 + timeout - time.monotonic()))
                except subprocess.TimeoutExpired:
                    r.timed_out = True
            if p.poll() is None:
                p.kill()
            r.rc = p.wait()
            sel.close()
            p.stdout.close()
        r.elapsed = time.monotonic() - t0
        err.seek(0)
        r.stderr = err.read().decode(errors="replace")[-4000:]
    return r
