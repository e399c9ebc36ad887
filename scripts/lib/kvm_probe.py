"""Can this host run guests under khyve? Decided by trying, never by module
names or CPU flags: open /dev/kvm, then boot the smallest test guest
(tests/guests/hello) under the khyve of a build and expect it to pass.

Used by scripts/test, scripts/quickstart and bench/ to choose between
running guests here and inside the SVM test host (scripts/svm-host).

    python3 scripts/lib/kvm_probe.py [BUILD_DIR]
prints "local: ..." and exits 0 when a local KVM runs guests, or prints
"none: <why>" and exits 1.
"""

import os
import subprocess
import sys

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KVM_DEV = "/dev/kvm"
PROBE_TIMEOUT = 60


def local_kvm(build=None):
    """Returns None when guests run under khyve here, else why they do not."""
    build = build or os.path.join(REPO_DIR, "build")
    if not os.path.exists(KVM_DEV):
        return f"there is no {KVM_DEV}"
    try:
        fd = os.open(KVM_DEV, os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
    except OSError as e:
        return f"{KVM_DEV} cannot be opened: {e.strerror}"
    khyve = os.path.join(build, "src", "cmd", "khyve")
    hello = os.path.join(build, "tests", "guests", "hello")
    for path in (khyve, hello):
        if not os.path.exists(path):
            return f"{path} is not built, so KVM could not be tried"
    try:
        r = subprocess.run([khyve, "-m", "16M", "-l", "com1,stdio", "--debug-exit",
                            "--kernel", hello, "kvm-probe"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"a tiny test guest did not finish within {PROBE_TIMEOUT} s on {KVM_DEV}"
    if r.returncode == 1 and b"PASS" in r.stdout:
        return None
    why = r.stderr.decode(errors="replace").strip().splitlines()
    return (f"a tiny test guest failed on {KVM_DEV} (khyve exit {r.returncode}"
            + (f": {why[-1]}" if why else "") + ")")


def main(argv):
    why = local_kvm(argv[1] if len(argv) > 1 else None)
    if why is None:
        print(f"local: {KVM_DEV} runs guests")
        return 0
    print(f"none: {why}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
