"""Smoke test of the SVM test host: one boot, several checks on its output."""

import os
import re

import pytest

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
