"""One guest run of a benchmark, watched (bench/virtiofs, bench/p9).

    r = guestrun.run(cmd, timeout, on_line)

runs cmd (a VMM with the guest's console on its stdout) and calls
on_line(seconds since start, line) for each console line as it arrives,
so that a benchmark can print each phase when it ends instead of after
the whole run; show_late_exit(r, last, label) reports a VMM that was
slow to exit after its last phase. A run still going after timeout
seconds is killed and comes back with r.timed_out set, whatever the
guest was doing: a run that makes no progress is reported, not waited
for; on_timeout(pid), if given, is called first (threads() says what the
VMM's threads wait on). on_start(pid) hears the VMM's pid (wakeups()
counts its threads' sleeps). The VMM's stderr goes to a file, not a
pipe: a pipe nobody reads stops the VMM once it holds 64 KiB, which
would look like a hang of the guest.
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
        self.stderr_bytes = 0


def run(cmd, timeout, on_line=None, on_timeout=None, on_start=None):
    r = Result()
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        if on_start:
            on_start(p.pid)
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        buf = b""
        eof = False
        try:
            while True:
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    r.timed_out = True
                    if on_timeout:
                        on_timeout(p.pid)
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
        r.stderr_bytes = err.seek(0, os.SEEK_END)
        err.seek(max(0, r.stderr_bytes - 4000))
        r.stderr = err.read().decode(errors="replace")
    return r


def show_late_exit(r, last, label, what="the last phase"):
    """Says so when the VMM of run r took over 30 s to exit after what
    ended, last seconds after its start, with its console lines since."""
    if r.elapsed - last <= 30:
        return
    print(f"  {label}: exited {r.elapsed - last:.0f} s after {what}; its console since:",
          flush=True)
    for at, line in r.lines:
        if at >= last:
            print(f"    {at:7.1f} s  {line}", flush=True)


def threads(pid):
    """One line per thread of pid: name, state, CPU ticks, kernel wait
    channel and, when readable (root), the top of its kernel stack."""
    out = []
    base = f"/proc/{pid}/task"
    try:
        tids = sorted(os.listdir(base), key=int)
    except OSError as e:
        return [f"{pid}: {e}"]
    for tid in tids:
        def rd(name):
            try:
                with open(f"{base}/{tid}/{name}") as f:
                    return f.read().strip()
            except OSError:
                return "?"
        stat = rd("stat")
        rest = stat[stat.rfind(")") + 2:].split() if ")" in stat else []
        state = rest[0] if rest else "?"
        ticks = int(rest[11]) + int(rest[12]) if len(rest) > 12 else -1
        stack = " < ".join(l.split()[-1].split("+")[0] for l in rd("stack").splitlines()[:4])
        out.append(f"{pid}/{tid} {rd('comm'):16} {state} cpu {ticks:6} ticks  "
                   f"wchan {rd('wchan')}  {stack}")
    return out


def wakeups(pid):
    """{thread name: (times it slept and was woken, CPU ticks)} for pid's
    threads, summed over threads of one name: how often a VMM's own
    threads took part in the work so far."""
    out = {}
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"{base}/{tid}/status") as f:
                st = dict(l.split(":", 1) for l in f if ":" in l)
            with open(f"{base}/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        name = st["Name"].strip()
        w, c = out.get(name, (0, 0))
        out[name] = (w + int(st["voluntary_ctxt_switches"]), c + int(rest[11]) + int(rest[12]))
    return out


_DEBUGFS = "/sys/kernel/debug"


def kvm_stats(pid):
    """KVM's counters for the VM pid made ({name: value}, the vCPUs'
    summed), from debugfs, mounted here if it is not yet and may be (as
    root); {} when it cannot be read."""
    kvm = os.path.join(_DEBUGFS, "kvm")
    if not os.path.isdir(kvm) and os.geteuid() == 0:
        subprocess.run(["mount", "-t", "debugfs", "debugfs", _DEBUGFS],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        dirs = [d for d in os.listdir(kvm) if d.startswith(f"{pid}-")]
    except OSError:
        return out
    for d in dirs:
        for name in os.listdir(os.path.join(kvm, d)):
            path = os.path.join(kvm, d, name)
            if not os.path.isfile(path):
                continue
            try:
                with open(path) as f:
                    out[name] = out.get(name, 0) + int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return out
