"""Tests that run commands inside the SVM test host (scripts/svm-host).

They are marked `svm`: select them with `-m svm`, leave them out with
`-m "not svm"`. On this machine they boot the test host through
scripts/svm-host (skipped when QEMU is missing); when pytest itself runs
inside the test host (SVM_HOST=1, as scripts/test does) the `svm_host`
helper runs the command directly instead, with the same interface.
"""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SVM_HOST = os.path.join(REPO, "scripts", "svm-host")
INSIDE = os.environ.get("SVM_HOST") == "1"  # pytest runs inside the test host


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "svm: boots the SVM test host (QEMU TCG with AMD SVM; ~5 s per boot)")


def pytest_collection_modifyitems(config, items):
    why = None
    if INSIDE:
        return
    if shutil.which("qemu-system-x86_64") is None:
        why = "qemu-system-x86_64 is not installed"
    for item in items:
        if "svm" in item.keywords and why:
            item.add_marker(pytest.mark.skip(reason=why))


def svm_run(args, cwd, share=(), timeout=300, **kw):
    """Run scripts/svm-host [--share DIR]... -- ARGS; return CompletedProcess.

    Inside the test host already, ARGS run directly (shares are moot there)."""
    if INSIDE:
        return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                              errors="replace", timeout=timeout, **kw)
    cmd = [SVM_HOST, "--timeout", str(timeout - 30)]
    for s in share:
        cmd += ["--share", str(s)]
    cmd += ["--", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          errors="replace", timeout=timeout, **kw)


@pytest.fixture(scope="session")
def svm_host():
    """The svm_run helper: svm_host(args, cwd, share=(), timeout=300)."""
    return svm_run
