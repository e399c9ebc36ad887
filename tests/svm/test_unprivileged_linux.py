"""virtio-fs and khyve-run as a user in the kvm group, not root (issue 13
item 2, issue 12), inside the SVM test host: the user starts Debian's
virtiofsd itself as khyve(8) shows and khyve attaches it; khyve-run runs a
command as the user. What the guest makes is the user's on the host, and
the host's permissions hold. (9p and the rest as a user:
tests/integration/test_unprivileged.py.)

One inner boot per build (tests/svm/unpriv_scenario.py does the work)."""
import json
import os
import shutil

import pytest

import scenario_run

pytestmark = [pytest.mark.svm,
              pytest.mark.skipif(not os.access("/usr/lib/qemu/virtiofsd", os.X_OK),
                                 reason="/usr/lib/qemu/virtiofsd is not installed"),
              pytest.mark.skipif(not shutil.which("newuidmap") or not shutil.which("newgidmap"),
                                 reason="newuidmap/newgidmap (Debian: uidmap) are not installed")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
UID, GID = 4242, 4242  # tests/integration/unpriv_user.py


@pytest.fixture(scope="module", params=["build", "build-asan"])
def facts(request):
    f = scenario_run.run_scenario("unpriv_scenario.py", request.param, ["--kit", KIT])
    assert "error" not in f, json.dumps(f, indent=1)
    return f


def clean(text):
    return "Sanitizer" not in text and "runtime error" not in text


def test_virtiofs_by_the_users_own_virtiofsd(facts):
    f = facts["virtiofs"]
    why = json.dumps(f, indent=1)
    assert "error" not in f and not f.get("timeout"), why
    assert f["status"] == 1 and clean(f["stderr"]), why  # the kit powers off
    g = f["guest"]
    for step in ("mounted", "fromhost hello from the host", "wrote new", "mkdir", "renamed",
                 "deleted", "end"):
        assert step in g, (step, why)
    # root's 0600 file: neither read nor written through the share
    assert any(l.startswith("privateerr") and "Permission denied" in l for l in g), why
    assert any(l.startswith("privatewerr") and "Permission denied" in l for l in g), why
    h = f["host"]
    assert h["listing"] == ["fromhost.txt", "gdir", "new.txt", "private.txt"], why
    assert h["new"] == "written by the guest\n" and h["moved"] == "inner\n", why
    assert h["owners"] == {p: [UID, GID] for p in ("new.txt", "gdir", "gdir/moved.txt")}, why
    assert h["private"] == "root's own\n" and h["private_owner"] == [0, 0], why


def test_virtiofsd_that_cannot_start_is_one_line(facts):
    """Under a plain `unshare -r` (no subordinate ids) virtiofsd exits as it
    starts (it may not drop the user's groups): khyve says the back end
    hung up, in one line, exit 4."""
    f = facts["virtiofs"]
    why = json.dumps(f, indent=1)
    r = f["plain"]
    assert "setgroups() failed" in r["virtiofsd_log"], why
    assert r["status"] == 4, why
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and "virtio-fs" in lines[0], why
    assert "the back end hung up before answering" in lines[0], why


def test_khyve_run_as_the_user(facts):
    f = facts["khyve_run"]
    why = json.dumps(f, indent=1)
    r = f["run"]
    assert r.get("status") == 7 and clean(r["stderr"]), why
    assert r["stdout"].splitlines() == [str(UID)], why
    assert f["x"] == {"text": "hi\n", "owner": [UID, GID]}, why


def test_khyve_run_keeps_the_hosts_permissions(facts):
    f = facts["khyve_run"]
    why = json.dumps(f, indent=1)
    r = f["locked"]
    assert r.get("status") == 0 and "Permission denied" in r["stderr"], why
    assert f["locked_listing"] == [], why


def test_khyve_run_without_subordinate_ids(facts):
    """virtiofsd cannot drop the user's groups: one line, exit 125, where
    the kernel has no 9p; 9p instead where it has."""
    f = facts["khyve_run"]
    why = json.dumps(f, indent=1)
    r = f["nosubids"]
    assert r.get("status") == 125 and not r["stdout"], why
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and "virtiofsd cannot run as khyveuser" in lines[0], why
    assert "/etc/subuid" in lines[0] and "--fs 9p" in lines[0], why
    r = f["fallback9p"]
    assert r.get("status") == 0 and clean(r["stderr"]), why
    nine_p, virtiofs, uid = r["stdout"].splitlines()
    assert int(nine_p) >= 2 and virtiofs == "0" and uid == str(UID), why
    assert f["y"] == {"text": "over 9p\n", "owner": [UID, GID]}, why
