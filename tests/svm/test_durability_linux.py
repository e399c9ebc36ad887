"""kill -9 never loses what a Linux guest's fsync on ext4 was told was
durable, in the default, nocache and direct modes, and e2fsck -fn finds the
power-cut image clean (tests/svm/durability_scenario.py does the work, on a
dm-log-writes disk: see tests/integration/test_durability.py for the idea).

Each cycle boots Linux (~20 s in the SVM test host), so the suite runs
KHYVE_DURABILITY_LINUX_CYCLES cycles (default 6, the modes in turn), not
the 100 of the test-guest variant."""
import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
INSIDE = os.environ.get("SVM_HOST") == "1"
SCENARIO = os.path.join(REPO, "tests", "svm", "durability_scenario.py")
CYCLES = int(os.environ.get("KHYVE_DURABILITY_LINUX_CYCLES", "6"))


def test_ext4_fsync_survives_kill_9():
    build = "build"
    args = ["/usr/bin/python3", SCENARIO, "--khyve", os.path.join(REPO, build, "src", "cmd", "khyve"),
            "--kit", KIT, "--cycles", str(CYCLES)]
    timeout = 60 + 60 * CYCLES
    if not INSIDE:
        args = [os.path.join(REPO, "scripts", "svm-host"), "--mem", "4G", "--timeout",
                str(timeout), "--share", os.path.join(REPO, build), "--", *args]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=timeout + 60, cwd=REPO)
    assert p.returncode == 0 and p.stdout.strip(), f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    f = json.loads(p.stdout.strip().splitlines()[-1])
    why = json.dumps(f, indent=1)
    assert "error" not in f, why
    assert len(f["cycles"]) == CYCLES, why
    assert all(c["started"] and c["killed_status"] == -9 for c in f["cycles"]), why
    assert all(c["log_matches"] for c in f["cycles"]), why
    assert f["lost"] == [], why
    assert f["fsck_failures"] == [], why
    assert f["durable_records"] > 0, why
    print(f"{CYCLES} kills (seed {f['seed']}): {f['durable_records']} fsynced lines, none lost, "
          "e2fsck clean every time")
