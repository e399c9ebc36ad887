"""Debian's cloud kernel boots under khyve, inside the SVM test host.

Each test is one inner boot (~6-9 s there); run them all in one test-host
boot: scripts/svm-host -- /usr/bin/python3 -m pytest tests/svm
(scripts/test does)."""
import os
import re
import subprocess

import pytest

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
INSIDE = os.environ.get("SVM_HOST") == "1"


def khyve_path(build):
    return os.path.join(REPO, build, "src", "cmd", "khyve")


def boot(kernel, *, build="build", cpus="2", mem="512M", after=None, cmd="true", timeout=150):
    append = f"console=ttyS0 quiet khyve.cmd={cmd}"
    if after:
        append += f" khyve.after={after}"
    args = [khyve_path(build), "-c", cpus, "-m", mem, "-l", "com1,stdio",
            "--kernel", os.path.join(KIT, kernel),
            "--initrd", os.path.join(KIT, "initramfs.cpio.gz"), "--append", append, "linux0"]
    if not INSIDE:
        args = [os.path.join(REPO, "scripts", "svm-host"), "--timeout", str(timeout), "--", *args]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=timeout + 60)
    facts = dict(re.findall(r"KHYVE-KIT: (\w+)=(\S+)", p.stdout))
    return p, facts


def describe(p):
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}"


@pytest.mark.parametrize("build", ["build", "build-asan"])
def test_bzimage_boots_with_two_cpus_and_reboots(build):
    p, facts = boot("bzImage", build=build, after="reboot")
    assert "KHYVE-KIT: up" in p.stdout, describe(p)
    assert facts.get("cpus") == "2", describe(p)
    memkb = int(facts.get("memkb", 0))
    assert 400_000 < memkb <= 512 * 1024, describe(p)
    assert p.returncode == 0, describe(p)  # reboot
    assert "Sanitizer" not in p.stderr, describe(p)


def test_pvh_vmlinux_boots_with_two_cpus_and_powers_off():
    p, facts = boot("vmlinux", mem="768M", cmd="uname")
    assert "KHYVE-KIT: up" in p.stdout, describe(p)
    assert facts.get("cpus") == "2", describe(p)
    memkb = int(facts.get("memkb", 0))
    assert 640_000 < memkb <= 768 * 1024, describe(p)
    assert "Linux" in p.stdout and facts.get("rc") == "0", describe(p)
    assert p.returncode == 1, describe(p)  # poweroff


def test_sigterm_presses_the_power_button_and_linux_shuts_down():
    """kill -TERM on khyve: the guest's ACPI power button; the kit's acpid
    syncs and powers off (exit 1)."""
    if not INSIDE:
        pytest.skip("sends a signal to khyve: runs inside the SVM test host")
    import signal
    import time
    args = [khyve_path("build"), "-c", "2", "-m", "512M", "-l", "com1,stdio",
            "--kernel", os.path.join(KIT, "vmlinux"),
            "--initrd", os.path.join(KIT, "initramfs.cpio.gz"),
            "--append", "console=ttyS0 quiet khyve.cmd=\"sleep 120\"", "linux1"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    out = ""
    deadline = time.monotonic() + 120
    while "KHYVE-KIT: memkb" not in out and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    assert "KHYVE-KIT: up" in out, out
    # acpid may not listen yet, and a press nobody hears is lost, as on a
    # PC: press again until it is heard (each SIGTERM is one press).
    rest, err = "", ""
    for _ in range(60):
        p.send_signal(signal.SIGTERM)
        try:
            rest, err = p.communicate(timeout=2)
            break
        except subprocess.TimeoutExpired:
            pass
    else:
        p.kill()
        rest, err = p.communicate()
    out += rest
    assert "KHYVE-KIT: power button" in out, out + err
    assert "KHYVE-KIT: rc=" not in out  # shut down before the command ended
    assert p.returncode == 1, out + err
