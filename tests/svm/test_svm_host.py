"""Smoke test of the SVM test host: one boot, several checks on its output."""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "lib"))
import svm_monitor  # noqa: E402

pytestmark = pytest.mark.svm

SCRIPT = r'''
if [ -c /dev/kvm ]; then echo "KVM-DEV=yes"; else echo "KVM-DEV=no"; fi
echo "NPT=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
echo "NESTED=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null)"
echo "SVM_HOST=$SVM_HOST"
echo "KHYVE_TEST_VAR=$KHYVE_TEST_VAR"
echo "CWD=$(pwd)"
if touch /usr/svm-host-must-fail 2>/dev/null; then echo "ROOT=rw"; else echo "ROOT=ro"; fi
echo written-inside > result.txt
echo "to-stderr" >&2
exit 3
'''


@pytest.fixture(scope="module")
def run(svm_host, tmp_path_factory):
    work = tmp_path_factory.mktemp("svm")
    env = dict(os.environ, KHYVE_TEST_VAR="passed-through")
    r = svm_host(["sh", "-c", SCRIPT], cwd=work, env=env)
    facts = dict(re.findall(r"^([A-Z_-]+)=(.*)$", r.stdout, re.M))
    return r, facts, work


def test_exit_status_is_the_commands(run):
    r, _, _ = run
    assert r.returncode == 3, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def test_dev_kvm_exists(run):
    _, facts, _ = run
    assert facts.get("KVM-DEV") == "yes"


def test_kvm_amd_has_nested_paging(run):
    _, facts, _ = run
    assert facts.get("NPT") == "Y"
    assert facts.get("NESTED") in ("1", "Y")


def test_environment_and_cwd(run):
    _, facts, work = run
    assert facts.get("SVM_HOST") == "1"
    assert facts.get("KHYVE_TEST_VAR") == "passed-through"
    assert facts.get("CWD") == str(work)


def test_root_read_only_cwd_shared_writable(run):
    _, facts, work = run
    assert facts.get("ROOT") == "ro"
    assert (work / "result.txt").read_text() == "written-inside\n"


def test_stderr_separate_and_no_boot_noise(run):
    r, _, _ = run
    assert "to-stderr" in r.stderr
    assert "to-stderr" not in r.stdout
    assert "SVM-HOST" not in r.stdout and "SVM-HOST" not in r.stderr
    assert r.stdout.startswith("KVM-DEV=")


# What QEMU's monitor said about a test host that had stalled (2026-12-07),
# and about one idling normally: only the first is a stall.
STALLED_REGS = ("RIP=ffffffff81a592eb RFL=00000216 [----AP-] CPL=0 II=0 A20=1 SMM=0 HLT=1\n")
STALLED_LAPIC = ("Timer\t DCR=0x3 (divide by 16) initial_count = 90388 current_count = 0\n"
                 "ISR\t (none)\nIRR\t 236 \n")


def test_a_stalled_test_host_is_recognised():
    assert "vector 236 pending" in svm_monitor.stall_signature(STALLED_REGS, STALLED_LAPIC)
    idle_lapic = STALLED_LAPIC.replace("IRR\t 236 ", "IRR\t (none)")
    assert svm_monitor.stall_signature(STALLED_REGS, idle_lapic) is None
    running = STALLED_REGS.replace("HLT=1", "HLT=0")
    assert svm_monitor.stall_signature(running, STALLED_LAPIC) is None
    masked = STALLED_REGS.replace("RFL=00000216", "RFL=00000016")
    assert svm_monitor.stall_signature(masked, STALLED_LAPIC) is None
