"""Can this host run guests under khyve? Decided by trying, never by module
names or CPU flags: open /dev/kvm, then boot the smallest test guest
(tests/guests/hello) under the khyve of a build and expect it to pass.
For a stock Linux kernel a second try boots the Linux guest kit itself:
some KVMs (software ones, unusual nested ones) run the test guests but
fail on instructions a Linux kernel uses.

Used by scripts/test, scripts/quickstart and bench/ to choose between
running guests here and inside the SVM test host (scripts/svm-host).
$KHYVE_KVM_DEVICE names another device, as it does for khyve.

    python3 scripts/lib/kvm_probe.py [--linux KIT_DIR] [BUILD_DIR]
prints "local: ..." and exits 0 when a local KVM runs guests (and, with
--linux, boots the kit's kernel), or prints "none: <why>" and exits 1.
"""

import os
import subprocess
import sys

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KVM_DEV = os.environ.get("KHYVE_KVM_DEVICE") or "/dev/kvm"
PROBE_TIMEOUT = 60
# The kit's kernel reaches its init in about a second on hardware KVM; a KVM
# that needs half a minute is no place for an interactive shell either.
LINUX_PROBE_TIMEOUT = 30


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


def local_kvm_runs_linux(build, kit):
    """None when the Linux kit in directory kit boots to its init under the
    khyve of build on this host's KVM, else why not."""
    khyve = os.path.join(build or os.path.join(REPO_DIR, "build"), "src", "cmd", "khyve")
    kernel, initrd = os.path.join(kit, "bzImage"), os.path.join(kit, "initramfs.cpio.gz")
    for path in (kernel, initrd):
        if not os.path.exists(path):
            return f"{path} is missing, so Linux could not be tried"
    cmd = [khyve, "-m", "256M", "-l", "com1,stdio", "--kernel", kernel, "--initrd", initrd,
           "--append", "console=ttyS0 quiet panic=-1 khyve.cmd=true", "kvm-probe-linux"]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=LINUX_PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"the Linux kit did not boot within {LINUX_PROBE_TIMEOUT} s on {KVM_DEV}"
    if b"KHYVE-KIT: rc=0" in r.stdout:
        return None
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    why = next((l for l in lines if "error" in l.lower()), lines[0] if lines else "")
    return (f"the Linux kit failed on {KVM_DEV} (khyve exit {r.returncode}"
            + (f": {why.removeprefix('khyve: ')}" if why else "") + ")")


def main(argv):
    args = argv[1:]
    kit = None
    if args[:1] == ["--linux"] and len(args) >= 2:
        kit, args = args[1], args[2:]
    build = args[0] if args else None
    why = local_kvm(build)
    if why is None and kit:
        why = local_kvm_runs_linux(build, kit)
    if why is None:
        print(f"local: {KVM_DEV} runs " + ("Linux" if kit else "guests"))
        return 0
    print(f"none: {why}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
