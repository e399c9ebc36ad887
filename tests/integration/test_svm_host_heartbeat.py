"""The SVM test host (scripts/svm-host) notices a test host that stopped
running, whatever its CPU looks like, and runs the command again in a fresh
one: the CI failure of 2026-12-07, where a frozen test host ate the SVM
stage's whole 2400 s, must cost a minute instead.

The freeze is QEMU's own "stop" (the test host's CPU paused), sent from
here through the monitor socket svm-host keeps in its control directory.
"""

import glob
import os
import shutil
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
import svm_monitor  # noqa: E402

SVM_HOST = os.path.join(REPO, "scripts", "svm-host")

pytestmark = pytest.mark.skipif(
    os.environ.get("SVM_HOST") == "1" or shutil.which("qemu-system-x86_64") is None,
    reason="boots the SVM test host itself (needs QEMU, and not from inside one)")

# The first run leaves a mark in the shared directory and then waits; the
# rerun finds the mark and finishes.
COMMAND = ("if [ -e first-run ]; then echo second-run; exit 7; fi; "
           "touch first-run; sleep 600")


def test_a_frozen_test_host_is_killed_and_the_command_runs_again(tmp_path):
    p = subprocess.Popen([SVM_HOST, "--timeout", "400", "--heartbeat-lost", "12", "--",
                          "sh", "-c", COMMAND], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 200
        while not (tmp_path / "first-run").exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.5)
        socks = glob.glob(f"/tmp/svm-host-{p.pid}-*/monitor.sock")
        assert len(socks) == 1, socks
        svm_monitor.ask(socks[0], "stop")
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 7, f"stdout:\n{out}\nstderr:\n{err}"
    assert out == "second-run\n"
    assert "no heartbeat from its /init" in err
    # 7, not 124: noticed and rerun before the 400 s timeout.
    assert "running the command again in a fresh test host" in err
