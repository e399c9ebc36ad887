"""A Linux guest mounts khyve's virtio-9p shares inside the SVM test host:
Debian's generic kernel (it has 9p as modules; the kit's cloud kernel has
none) with an initramfs from khyvekit.generic_guest_initramfs
mounts a read-write and a read-only share with
`mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR`, and creates,
writes, appends, renames, deletes, links and truncates files there; the
host sees every change; the ro share refuses writes with EROFS; the
symlinks and ".." that point out of the share lead nowhere outside it.

One inner boot per build (tests/svm/p9_scenario.py does the work)."""
import json
import os
import sys

import pytest

import scenario_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT_DIR = os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit"))


def guest_initramfs(build):
    """Built where the kit is readable (here or inside), into the build dir,
    which the SVM host shares read-write."""
    sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
    import khyvekit
    return khyvekit.generic_guest_initramfs(
        os.path.join(REPO, build, "p9-guest", "initramfs.cpio.gz"))


def run_scenario(build):
    return scenario_run.run_scenario(
        "p9_scenario.py", build, ["--kernel", os.path.join(KIT_DIR, "svm", "vmlinux"),
                                  "--initrd", guest_initramfs(build)])


def value(guest, key):
    return next((l[len(key) + 1:] for l in guest if l.startswith(key + " ")), None)


@pytest.mark.parametrize("build", ["build", "build-asan"])
def test_linux_mounts_9p_shares(build):
    f = run_scenario(build)
    why = json.dumps(f, indent=1)
    g = f["guest"]
    assert not f.get("timeout") and f["status"] == 1, why  # the kit powers off
    assert "Sanitizer" not in f["stderr"] and "runtime error" not in f["stderr"], why
    assert "mounted work" in g and "mounted src" in g, why
    # host to guest
    assert value(g, "hostfile") == "written by the host", why
    assert value(g, "rofile") == "read only" and value(g, "rols") == "readme.txt", why
    # guest to host: every change is there
    for step in ("created", "appended", "mkdir", "renamed", "dir renamed", "deleted", "rmdir"):
        assert step in g, (step, why)
    assert value(g, "big") == "100000" and f["host_big"] == 100000, why
    assert f["host_created"] == "created by the guest\nmore\n", why
    assert f["host_moved"] == "inner\n" and f["host_d3"] == ["d2", "moved.txt"], why
    assert f["host_rw"] == ["big.bin", "created.txt", "d3", "dir", "etclink", "from-host.txt",
                            "hardlink.txt", "secretlink", "symlink.txt", "trunc.txt"], why
    assert value(g, "hardlink") == "2" and f["host_hardlinks"] == 2, why
    assert f["host_symlink"] == "created.txt", why
    assert f["host_trunc"] == "0123" and f["host_trunc_mode"] == "0o640", why
    assert f["host_trunc_mtime"] == int(value(g, "touch")), why
    assert value(g, "many") == "200", why
    # the ro share: EROFS for every change, and nothing changed
    for op in ("create", "rm", "mkdir", "mv"):
        msg = value(g, "ro " + op)
        assert msg and "Read-only file system" in msg, (op, why)
    assert f["host_ro"] == ["readme.txt"], why
    # nothing outside the shares was reached or changed
    for k in ("esc1", "esc2", "esc3", "esc4"):
        msg = value(g, k)
        assert msg and "No such file" in msg and "host secret" not in msg and "root:x:" not in msg, (k, why)
    assert "secret" not in (value(g, "esc5") or "").split(), why
    assert f["host_secret"] == "host secret\n", why
    assert f["host_work"] == ["ro", "rw", "secret", "tools"], why
    assert "umount work" in g and "umount src" in g, why
