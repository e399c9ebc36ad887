"""khyve as a user in the kvm group, not root (issue 13).

The test makes the user (tests/integration/unpriv_user.py says how).

Everything but creating a tap works: direct boot, khyveload then khyve,
khyvectl, vmrun, slirp, a tap the user owns, the gdb stub, a serial pty,
virtio-9p shares; and the runtime directory is $XDG_RUNTIME_DIR/khyve.
(virtio-fs through the user's own virtiofsd and khyve-run as the user need
a Linux guest: tests/svm/test_unprivileged_linux.py.) Bad input: no access
to /dev/kvm names the group to join; a runtime directory of someone else,
or open to others, is refused. Root only (it makes the user)."""
import os
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import BUILD, KHYVE, KHYVECTL, ROOT, SANITIZED, TIMEOUT, guest

import unpriv_user as U
from unpriv_user import GID, UID, XDG, user_env

KHYVELOAD = os.path.join(BUILD, "src", "cmd", "khyveload")
VMRUN = os.path.join(BUILD, "src", "cmd", "vmrun")

pytestmark = pytest.mark.skipif(U.usable() is not None, reason=str(U.usable()))


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    with U.kvm_user(str(tmp_path_factory.mktemp("etc"))) as u:
        yield u


as_user_argv = U.as_user_argv


def as_user(user, argv, input=None, env=None, kvm_group=True, timeout=TIMEOUT):
    r = U.as_user(user, argv, input=input, env=env, kvm_group=kvm_group, timeout=timeout)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r
    return r


def spawn_user(user, argv, tmp, name, env=None):
    out = open(os.path.join(tmp, f"{name}.out"), "wb")
    p = subprocess.Popen(as_user_argv(user, argv), stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, env=env or user_env())
    p.out_path = out.name
    out.close()
    return p


def read(p):
    with open(p.out_path, errors="replace") as f:
        return f.read()


def wait_text(p, text, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while text not in read(p):
        assert p.poll() is None and time.monotonic() < deadline, read(p)
        time.sleep(0.02)


shared_dir = U.user_dir  # for its images, sockets and links


def test_direct_boot_and_the_runtime_dir(user):
    r = as_user(user, [KHYVE, "-m", "32M", "-l", "com1,stdio", "--debug-exit",
                       "--kernel", guest("hello"), "u0"])
    assert r.returncode == 1 and "PASS" in r.stdout, r
    # The VM stays created, in $XDG_RUNTIME_DIR/khyve, the user's own.
    rd = os.path.join(XDG, "khyve")
    st = os.stat(rd)
    assert st.st_uid == UID and stat.S_IMODE(st.st_mode) == 0o700
    assert os.listdir(rd) == ["u0"]
    r = as_user(user, [KHYVECTL, "--list"])
    assert r.returncode == 0 and re.search(r"^u0\s", r.stdout, re.M), r
    r = as_user(user, [KHYVECTL, "--vm=u0", "--destroy"])
    assert r.returncode == 0 and os.listdir(rd) == [], r


def test_disk_pty_and_khyvectl(user):
    d = shared_dir(user, "pty")
    disk = os.path.join(d, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    os.chown(disk, UID, GID)
    link = os.path.join(d, "com1")
    p = spawn_user(user, [KHYVE, "-m", "32M", "-D", "-l", f"com1,{link}",
                          "-s", f"2,virtio-blk,{disk}", "--kernel", guest("virtioblk"),
                          "--append", "write=8 wcount=2 hold=1", "u1"], d, "u1")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not os.path.islink(link):
            assert p.poll() is None and time.monotonic() < deadline, read(p)
            time.sleep(0.02)
        # The pty is the user's, and carries the guest's console.
        pts = os.readlink(link)
        assert os.stat(pts).st_uid == UID
        fd = os.open(link, os.O_RDONLY | os.O_NOCTTY)
        got = b""
        while b"BLK: holding" not in got:
            got += os.read(fd, 4096)
        os.close(fd)
        assert b"BLK: readback ok" in got
        # The lock note is in the user's runtime directory.
        assert os.listdir(os.path.join(XDG, "khyve", "locks"))
        r = as_user(user, [KHYVECTL, "--vm=u1", "--get-rip"])
        assert r.returncode == 0 and "rip" in r.stdout, r
        r = as_user(user, [KHYVECTL, "--vm=u1", "--force-poweroff"])
        assert r.returncode == 0, r
        assert p.wait(TIMEOUT) == 1, read(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert os.listdir(os.path.join(XDG, "khyve")) == [] and not os.path.lexists(link)


def test_khyveload_then_khyve(user):
    d = shared_dir(user, "load")
    os.makedirs(os.path.join(d, "boot"), exist_ok=True)
    shutil.copy(guest("bootinfo"), os.path.join(d, "boot", "kernel"))
    r = as_user(user, [KHYVELOAD, "-m", "64M", "-h", d, "u2"],
                input="load host0:/boot/kernel x=1\nboot\n")
    assert r.returncode == 0 and "ready" in r.stdout, r
    r = as_user(user, [KHYVE, "-D", "-l", "com1,stdio", "--debug-exit", "u2"])
    assert r.returncode == 1 and "PASS" in r.stdout and "x=1" in r.stdout, r
    assert os.listdir(os.path.join(XDG, "khyve")) == []


def test_vmrun(user):
    d = shared_dir(user, "vmrun")
    os.makedirs(os.path.join(d, "host", "boot"), exist_ok=True)
    shutil.copy(guest("bootcount"), os.path.join(d, "host", "boot", "kernel.elf"))
    with open(os.path.join(d, "host", "boot", "loader.conf"), "w") as f:
        f.write('kernel="/boot/kernel.elf"\ncmdline="boots=1"\n')
    disk = os.path.join(d, "count.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    os.chown(disk, UID, GID)
    r = as_user(user, [VMRUN, "-c", "1", "-m", "64M", "-d", disk, "-H", os.path.join(d, "host"),
                       "-e", "autoboot_delay=0", "u3"], env=user_env({"TMPDIR": d}),
                timeout=TIMEOUT * 2)
    assert r.returncode == 1 and "BOOTCOUNT: poweroff" in r.stdout + r.stderr, r
    assert os.listdir(os.path.join(XDG, "khyve")) == []


def test_slirp(user):
    r = as_user(user, [KHYVE, "-m", "64M", "-l", "com1,stdio", "--debug-exit",
                       "-s", "3,virtio-net,slirp", "--kernel", guest("netclient"),
                       "--append", "do=dhcp,ping:10.0.2.2 timeout=30", "-D", "u4"])
    assert r.returncode == 1 and "PASS" in r.stdout, r


@pytest.mark.parametrize("up", [True, False])
def test_a_tap_the_user_owns(user, up):
    """Made by root for the user (ip tuntap ... user): khyve needs no
    CAP_NET_ADMIN for it; one that is down is said, and left down."""
    tap = f"ukt{os.getpid() % 10000}"
    subprocess.run(["ip", "tuntap", "add", tap, "mode", "tap", "user", str(UID)], check=True)
    # As udev leaves it on a distribution (the test host has no udev).
    tun_mode = stat.S_IMODE(os.stat("/dev/net/tun").st_mode)
    os.chmod("/dev/net/tun", 0o666)
    try:
        if up:
            subprocess.run(["ip", "link", "set", tap, "up"], check=True)
        r = as_user(user, [KHYVE, "-m", "32M", "-l", "com1,stdio", "--debug-exit", "-D",
                           "-s", f"3,virtio-net,{tap}", "--kernel", guest("pcienum"), "u5"])
        assert r.returncode == 1 and "PASS" in r.stdout, r
        assert ("cannot be set up here" in r.stderr) == (not up), r
    finally:
        os.chmod("/dev/net/tun", tun_mode)
        subprocess.run(["ip", "link", "del", tap])


def test_gdb_stub(user):
    d = shared_dir(user, "gdb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = spawn_user(user, [KHYVE, "-m", "32M", "-l", "com1,stdio", "-D", "-G", f"w127.0.0.1:{port}",
                          "--kernel", guest("gdbtarget"), "u6"], d, "u6")
    try:
        wait_text(p, "waiting for a debugger", TIMEOUT)
        r = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{port}",
                            "-ex", "p/x $pc", "-ex", "kill"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert re.search(r"\$1 = 0x[0-9a-f]+", r.stdout), r
        if p.poll() is None:
            p.terminate()
        p.wait(TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()


def p9_share(user, name):
    """A share the user owns, laid out as tests/guests/virtio9p expects,
    with "private" (root's, 0600) in it and "secret" (root's) beside it."""
    d = shared_dir(user, name)
    share = os.path.join(d, "share")
    os.makedirs(os.path.join(share, "dir"))
    with open(os.path.join(share, "file"), "w") as f:
        f.write("hello from the host\n")
    os.symlink("../secret", os.path.join(share, "out"))
    os.symlink("..", os.path.join(share, "up"))
    for p in ("", "dir", "file", "out", "up"):
        os.lchown(os.path.join(share, p), UID, GID)
    for p, text in (("share/private", "private to root\n"), ("secret", "host secret\n")):
        with open(os.path.join(d, p), "w") as f:
            f.write(text)
        os.chmod(os.path.join(d, p), 0o600)
    return d, share


def run_9p(user, share, opts, append):
    return as_user(user, [KHYVE, "-m", "32M", "-l", "com1,stdio", "--debug-exit", "-D",
                          "-s", "0,hostbridge", "-s", f"4,virtio-9p,share={share}{opts}",
                          "-s", "31,lpc", "--kernel", guest("virtio9p"), "--append", append,
                          "u10"])


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_9p_share_as_the_user(user):
    """The guest's files are the user's on the host; the hostile cases hold
    as they do for root; root's private file stays closed (the host's
    permissions, not the guest's idea of them)."""
    d, share = p9_share(user, "p9rw")
    r = run_9p(user, share, "", "make=1 private=1")
    assert r.returncode == 1 and "PASS" in r.stdout and "FAIL" not in r.stdout, r
    for case in ("tag=share", "private-open err 13", "private-chmod err 1", "walk-dotdot",
                 "open-symlink err 40", "create-over-symlink err 40", "link-symlink err 1",
                 "file says hello from the host", "create-made ok", "fsync-made ok",
                 "mkdir-gdir ok", "create-inner ok"):
        assert f"P9: {case}" in r.stdout, (case, r)
    assert "host secret" not in r.stdout and "private to root" not in r.stdout, r
    made = os.path.join(share, "made")
    assert open(made).read() == "made by the guest\n"
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o640
    assert open(os.path.join(share, "gdir", "inner")).read() == "inner\n"
    for p in ("made", "gdir", "gdir/inner"):
        assert owner(os.path.join(share, p)) == (UID, GID), p
    priv = os.path.join(share, "private")
    assert owner(priv) == (0, 0) and stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert open(priv).read() == "private to root\n"
    assert open(os.path.join(d, "secret")).read() == "host secret\n"
    assert sorted(os.listdir(d)) == ["secret", "share"]


def test_9p_ro_share_as_the_user(user):
    d, share = p9_share(user, "p9ro")
    before = sorted(os.listdir(share))
    r = run_9p(user, share, ",ro", "ro=1 private=1")
    assert r.returncode == 1 and "PASS" in r.stdout and "FAIL" not in r.stdout, r
    for case in ("ro-create err 30", "ro-mkdir err 30", "ro-open-rdwr err 30",
                 "ro-open-trunc err 30", "ro-chmod err 30", "ro-unlink err 30",
                 "ro-rename err 30", "ro-open-read ok", "ro-read ok", "private-open err 13",
                 "private-chmod err 30"):
        assert f"P9: {case}" in r.stdout, (case, r)
    assert sorted(os.listdir(share)) == before
    assert open(os.path.join(share, "file")).read() == "hello from the host\n"


# ---- bad input ----

def test_no_kvm_access_names_the_group(user):
    r = as_user(user, [KHYVE, "-m", "32M", "--kernel", guest("hello"), "u7"], kvm_group=False)
    assert r.returncode == 4, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "join the group 'kvm'" in lines[0], r
    assert os.listdir(os.path.join(XDG, "khyve")) == []  # nothing half-made


def test_runtime_dir_open_to_others_is_refused(user):
    rd = os.path.join(XDG, "khyve")
    as_user(user, [KHYVECTL, "--list"])
    os.makedirs(rd, exist_ok=True)
    os.chown(rd, UID, GID)
    os.chmod(rd, 0o755)
    try:
        for argv in ([KHYVE, "-m", "32M", "--kernel", guest("hello"), "u8"], [KHYVECTL, "--list"]):
            r = as_user(user, argv)
            assert r.returncode != 0, r
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "mode 0755" in lines[0] and "refusing" in lines[0], r
        assert os.listdir(rd) == []
    finally:
        os.chmod(rd, 0o700)


def test_without_xdg_runtime_dir(user):
    """The fallback /tmp/khyve-UID: made private when missing; refused when
    someone else made it first (a shared /tmp)."""
    fallback = f"/tmp/khyve-{UID}"
    shutil.rmtree(fallback, ignore_errors=True)
    env = user_env(xdg=False)
    r = as_user(user, [KHYVE, "-m", "32M", "-l", "com1,stdio", "--debug-exit", "-D",
                       "--kernel", guest("hello"), "u9"], env=env)
    assert r.returncode == 1 and "PASS" in r.stdout, r
    st = os.stat(fallback)
    assert st.st_uid == UID and stat.S_IMODE(st.st_mode) == 0o700
    shutil.rmtree(fallback)
    os.makedirs(fallback, mode=0o700)  # root's, as another user's would be
    try:
        r = as_user(user, [KHYVE, "-m", "32M", "--kernel", guest("hello"), "u9"], env=env)
        assert r.returncode == 4, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and f"belongs to uid 0, not to uid {UID}" in lines[0], r
        assert os.listdir(fallback) == []
    finally:
        shutil.rmtree(fallback, ignore_errors=True)
