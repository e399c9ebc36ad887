"""virtio-fs with a real virtiofsd, inside the SVM test host: a Linux guest
mounts the share, creates, writes, renames and deletes, and the host sees
every change; virtiofsd killed mid-run gives the guest I/O errors while
khyve keeps running; a socket that is not a vhost-user back end is a
one-line error at start with exit 4, never a hang.

One inner boot per build (tests/svm/virtiofs_scenario.py does the work)."""
import json
import os

import pytest

import scenario_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def run_scenario(build):
    return scenario_run.run_scenario("virtiofs_scenario.py", build, ["--kit", KIT])


@pytest.mark.skipif(not os.access(VIRTIOFSD, os.X_OK), reason=f"{VIRTIOFSD} is not installed")
@pytest.mark.parametrize("build", ["build", "build-asan"])
def test_virtiofs_share_and_daemon_death(build):
    f = run_scenario(build)
    why = json.dumps(f, indent=1)
    assert "error" not in f, why
    # Not vhost-user: exit 4, one line naming the problem, in bounded time.
    for kind in ("silent", "garbage"):
        r = f[kind]
        assert r["status"] == 4, why
        lines = [l for l in r["stderr"].splitlines() if l.strip()]
        assert len(lines) == 1 and "not a vhost-user back end" in lines[0], why
        assert "virtio-fs" in lines[0], why
    g = f["guest"]
    assert not f["timeout"] and f["status"] == 1, why  # the kit powers off
    assert "Sanitizer" not in f["stderr"] and "runtime error" not in f["stderr"], why
    assert "mounted" in g, why
    assert "fromhost hello from the host" in g, why
    for step in ("wrote new", "renamed", "mkdir", "deleted", "checkpoint"):
        assert step in g, why
    # The host saw every change before virtiofsd died.
    hv = f["host_view"]
    assert hv["renamed.txt"] == "written by the guest\n", why
    assert hv["new.txt"] is None and hv["doomed.txt"] is None, why
    assert hv["gdir/inner.txt"] == "inner\n", why
    blobsum = [l.split()[1] for l in g if l.startswith("blobsum ")]
    assert blobsum and blobsum[0] == hv["blob"], why
    # virtiofsd killed: khyve lives, the guest gets I/O errors.
    assert f["khyve_alive_after_kill"], why
    assert any(l.startswith("readerror") and "Input/output error" in l for l in g), why
    assert any(l.startswith("writeerror") and "Input/output error" in l for l in g), why
    assert any(l.startswith("lserror") and "Input/output error" in l for l in g), why
    assert "end" in g, why
    assert "hung up" in f["stderr"], why
