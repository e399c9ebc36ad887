"""The GDB stub inside the SVM test host (QEMU TCG with nested SVM), with
Debian's gdb in batch mode: the gdbtarget guest with more breakpoints than
there are debug registers and a watchpoint firing on a write; and Debian's
cloud kernel, which gdb stops while it boots, reads by virtual address, and
lets go on. tests/svm/gdb_scenarios.py runs each session inside the test
host and prints a transcript in sections.

This test host's KVM does not fire breakpoints from debug registers (QEMU's
VMRUN does not arm DR7 for the nested guest) and does not intercept int3
(QEMU checks the INTn intercept for INT3, not the #BP exception intercept),
so khyve serves breakpoints and write watchpoints there by tracing; where a
KVM intercepts int3, the same script runs on int3 breakpoints."""
import os
import re

import pytest

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
BUILD = os.path.join(REPO, "build")
SCENARIOS = os.path.join(REPO, "tests", "svm", "gdb_scenarios.py")


def sections(text):
    return dict(re.findall(r"^=== (\w+)\n(.*?)\n=== end \1$", text, re.S | re.M))


def run_scenario(svm_host, *args, timeout=400):
    p = svm_host(["/usr/bin/python3", SCENARIOS, *args], cwd=REPO, share=[BUILD],
                 timeout=timeout)
    s = sections(p.stdout)
    return p, s


def describe(p):
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-3000:]}"


def test_gdb_script_with_six_breakpoints_and_a_watchpoint(svm_host):
    p, s = run_scenario(svm_host, "guest", BUILD)
    out = s.get("gdb", "")
    assert out, describe(p)
    # Z0 breakpoints are not limited by the four debug registers here.
    assert "Cannot insert breakpoint" not in out, describe(p)
    mode = re.search(r"software breakpoints \(Z0\): (\w+)", out)
    assert mode and mode.group(1) in ("int3", "traced"), describe(p)
    assert re.search(r"Breakpoint 3, puts \(s=.*\"GDBTARGET: start\"", out), describe(p)
    assert re.search(r"#1 .* in main \(\) at .*gdbtarget\.c", out), describe(p)
    assert re.search(r"Breakpoint 7, gdb_target_function \(x=x@entry=20\)", out), describe(p)
    assert "$1 = 1" in out, describe(p)
    # The watchpoint fires on the write in touch_watched().
    assert re.search(r"Hardware watchpoint 8: watched\s+Old value = 0\s+New value = 4660", out), \
        describe(p)
    assert re.search(r"#0 .*touch_watched \(\) at", out), describe(p)
    assert s.get("status") == "1", describe(p)  # the guest's PASS
    assert "ANSWER: 42 (82)" in s.get("console", ""), describe(p)


def test_gdb_stops_a_booting_linux_and_reads_it_by_virtual_address(svm_host):
    if not os.path.exists(os.path.join(KIT, "vmlinux")):
        pytest.skip("no Linux kit (scripts/linux-kit)")
    p, s = run_scenario(svm_host, "linux", BUILD, KIT)
    booting = s.get("booting", "")
    assert booting, describe(p)
    # Stopped while booting: the guest had not reached its init yet.
    assert re.search(r"1 +Thread 1 \(vCPU 0, APIC ID 0\)", booting), describe(p)
    assert re.search(r"2 +Thread 2 \(vCPU 1, APIC ID 1\)", booting), describe(p)
    assert re.search(r"^rip +0xffffffff8[0-9a-f]{7} ", booting, re.M), describe(p)
    assert re.search(r"^efer +0x\w+ +\[ .*LMA.* \]", booting, re.M), describe(p)
    assert "4-level paging" in booting, describe(p)
    # Kernel text read by its virtual address equals the physical bytes
    # the page walk found.
    walk, phys = s.get("walk", ""), s.get("physical", "")
    assert re.search(r"PML4E +[0-9a-f]{16}", walk), describe(p)
    vbytes = re.findall(r"0x[0-9a-f]{2}(?=\s)", walk.split("-> physical")[1]) if "-> physical" in walk else []
    pbytes = re.findall(r"0x[0-9a-f]{2}(?=\s)", phys)
    assert len(vbytes) == 16 and vbytes == pbytes, describe(p)
    # Up, the guest said where linux_banner is; gdb read it there.
    banner = s.get("banner", "")
    assert re.search(r'0xffffffff8[0-9a-f]{7}:\s+"Linux version 6\.', banner), describe(p)
    console = s.get("console", "")
    assert "KHYVE-KIT: up" in console and "KHYVE-KIT: rc=0" in console, describe(p)
    assert s.get("status") == "1", describe(p)  # it finished booting and powered off
