"""virtio-blk with the virtioblk test guest: data written by the guest is
in the image file on the host (and survives khyve being killed), reads
match the file, ro refuses writes with IOERR, flush, discard and
write-zeroes, bhyve's options, block devices, and the image lock that
keeps a second VM from opening an image in use."""
import os
import re
import shutil
import signal
import subprocess
import time
import zlib

import pytest

from conftest import passed, GUEST_PASS, KHYVE, TIMEOUT, guest, khyve, run_guest
from test_cli import assert_one_error

SIZE = 4 << 20


@pytest.fixture
def rundir(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("KHYVE_RUNDIR", str(d))
    return d


@pytest.fixture
def image(tmp_path, rundir):
    p = tmp_path / "disk.img"
    p.write_bytes(os.urandom(SIZE))
    return p


def pattern(sector, count, seed):
    return bytes(((sector + s) * 31 + j * 7 + seed) & 0xFF for s in range(count) for j in range(512))


def info(out):
    m = re.search(r"BLK: capacity=(\d+) blk_size=(\d+) phys_exp=(\d+) seg_max=(\d+) ro=(\d) "
                  r"flush=(\d) discard=(\d) wz=(\d)", out)
    keys = ["capacity", "blk_size", "phys_exp", "seg_max", "ro", "flush", "discard", "wz"]
    return dict(zip(keys, map(int, m.groups())))


def blk(image_spec, append="", vm="t0", **kw):
    return run_guest("virtioblk", "-s", "0,hostbridge", "-s", f"3,virtio-blk,{image_spec}",
                     append=append, vm=vm, **kw)


def test_write_read_flush_land_in_the_image(image):
    before = image.read_bytes()
    r = passed(blk(image, "read=16 rcount=8 write=100 wcount=64 seed=5"))
    i = info(r.out)
    assert i["capacity"] == SIZE // 512 and i["blk_size"] == 512 and i["ro"] == 0
    assert i["flush"] == 1 and i["discard"] == 1 and i["wz"] == 1 and i["seg_max"] >= 64
    crc = int(re.search(r"BLK: read sector=16 count=8 status=0 crc32=(\w+)", r.out).group(1), 16)
    assert crc == zlib.crc32(before[16 * 512:24 * 512])
    assert "BLK: write sector=100 count=64 status=0" in r.out
    assert "BLK: flush status=0" in r.out and "BLK: readback ok" in r.out
    after = image.read_bytes()
    assert after[100 * 512:164 * 512] == pattern(100, 64, 5)
    assert after[:100 * 512] == before[:100 * 512] and after[164 * 512:] == before[164 * 512:]
    assert "BLK: beyond-end status=1" in r.out and "BLK: bad-type status=2" in r.out


@pytest.mark.parametrize("irq", ["msix", "poll"])
def test_each_interrupt_mode(image, irq):
    passed(blk(image, f"irq={irq} write=8 wcount=1"))
    assert image.read_bytes()[8 * 512:9 * 512] == pattern(8, 1, 1)


def test_ro_refuses_writes_with_ioerr(image):
    before = image.read_bytes()
    r = passed(blk(f"{image},ro", "write=100 wcount=4"))
    i = info(r.out)
    assert i["ro"] == 1 and i["discard"] == 0 and i["wz"] == 0
    assert "BLK: write sector=100 count=4 status=1" in r.out  # VIRTIO_BLK_S_IOERR
    assert image.read_bytes() == before


def test_discard_and_write_zeroes(image):
    r = passed(blk(image, "rcount=0 zero=64 zcount=16 discard=256 dcount=32"))
    assert "BLK: zero sector=64 count=16 status=0" in r.out
    assert "BLK: discard sector=256 count=32 status=0" in r.out
    d = image.read_bytes()
    assert d[64 * 512:80 * 512] == bytes(16 * 512)
    assert d[256 * 512:288 * 512] == bytes(32 * 512)  # a punched hole reads zeroes
    assert len(d) == SIZE
    r = passed(blk(f"{image},nodelete", "rcount=0"))
    assert info(r.out)["discard"] == 0


def test_nocache_on_a_file_system_without_o_direct_is_one_clear_error(tmp_path, rundir):
    """A file system that refuses O_DIRECT (ramfs; tmpfs before Linux 6.6):
    say so, rather than EINVAL. ramfs refuses it on every kernel, so the
    test needs nothing of the host but root."""
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "-o", "mode=0700", "ramfs", str(mnt)], check=True)
    try:
        path = mnt / "disk.img"
        with open(path, "wb") as f:
            f.truncate(SIZE)
        with pytest.raises(OSError):
            os.close(os.open(path, os.O_RDWR | os.O_DIRECT))
        r = blk(f"{path},nocache", "rcount=0")
        assert_one_error(r, str(path), "does not take O_DIRECT")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_bhyve_options_sectorsize_serial_nocache_direct(image):
    r = passed(blk(f"{image},nocache,direct,sectorsize=4096/16384,ser=SERIAL-1234",
                   "write=1000 wcount=24 seed=9"))
    i = info(r.out)
    assert i["blk_size"] == 4096 and i["phys_exp"] == 2
    assert "BLK: serial=SERIAL-1234" in r.out
    assert image.read_bytes()[1000 * 512:1024 * 512] == pattern(1000, 24, 9)
    # path= form; the default serial is stable for a path
    a = passed(blk(f"path={image}", "rcount=0"))
    b = passed(blk(f"path={image}", "rcount=0"))
    sa = re.search(r"BLK: serial=(\S+)", a.out).group(1)
    assert sa == re.search(r"BLK: serial=(\S+)", b.out).group(1) and sa.startswith("KHYVE-")


def test_data_survives_khyve_being_killed(image):
    """What the guest was told is written is in the file after SIGKILL,
    with no flush and no clean exit."""
    args = [KHYVE, "-m", "64M", "-l", "com1,stdio", "--debug-exit", "-s",
            f"3,virtio-blk,{image}", "--kernel", guest("virtioblk"), "--append",
            "rcount=0 write=500 wcount=32 seed=3 flush=0 hold=1", "killme"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while b"BLK: holding" not in out and time.monotonic() < deadline:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        assert b"BLK: write sector=500 count=32 status=0" in out, out
        os.kill(p.pid, signal.SIGKILL)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
    assert image.read_bytes()[500 * 512:532 * 512] == pattern(500, 32, 3)


class Holder:
    """A khyve whose guest keeps the image open until it is killed."""

    def __init__(self, spec, vm):
        args = [KHYVE, "-m", "64M", "-l", "com1,stdio", "--debug-exit", "-s",
                f"3,virtio-blk,{spec}", "--kernel", guest("virtioblk"), "--append",
                "rcount=0 hold=1", vm]
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while b"BLK: holding" not in out and time.monotonic() < deadline:
            chunk = self.p.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        assert b"BLK: holding" in out, out

    def stop(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=30)


def test_second_vm_is_refused_naming_the_holder(image):
    h = Holder(image, "first-vm")
    try:
        r = blk(image, "rcount=0", vm="second")
        assert_one_error(r, str(image), "VM 'first-vm'", f"pid {h.p.pid}", "read-write")
        r = blk(f"{image},ro", "rcount=0", vm="third")
        assert_one_error(r, "VM 'first-vm'")
    finally:
        h.stop()
    # The lock goes with the process.
    passed(blk(image, "rcount=0", vm="second"))


def test_ro_users_share_and_block_writers(image):
    h = Holder(f"{image},ro", "reader")
    try:
        passed(blk(f"{image},ro", "rcount=1", vm="reader2"))
        r = blk(image, "rcount=0", vm="writer")
        assert_one_error(r, "VM 'reader'", "read-only")
    finally:
        h.stop()


def test_another_programs_lock_is_respected(image):
    """An OFD lock held by something that is not khyve (QEMU does this)."""
    import fcntl
    import struct as st
    fd = os.open(image, os.O_RDWR)
    try:
        F_OFD_SETLK = 37
        fcntl.fcntl(fd, F_OFD_SETLK, st.pack("hhqqi4x", fcntl.F_WRLCK, 0, 100, 1, 0))
        r = blk(image, "rcount=0")
        assert_one_error(r, "in use by another program")
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("losetup") is None,
                    reason="needs root and losetup")
def test_block_device(image):
    try:
        dev = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"no loop device: {e}")
    try:
        r = passed(blk(dev, "write=2000 wcount=8 seed=7"))
        assert info(r.out)["capacity"] == SIZE // 512
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
    assert image.read_bytes()[2000 * 512:2008 * 512] == pattern(2000, 8, 7)


@pytest.mark.parametrize("spec,needles", [
    ("/nonexistent/disk.img", ["/nonexistent/disk.img", "No such file"]),
    ("{img},sectorsize=1000", ["sectorsize=1000"]),
    ("{img},sectorsize=4096/512", ["sectorsize"]),
    ("{img},bogus", ["unknown option 'bogus'"]),
    ("{img},ro=maybe", ["ro=maybe"]),
    ("{img},ser=012345678901234567890", ["ser="]),
    ("", ["needs an image"]),
])
def test_bad_blk_options(image, spec, needles):
    s = spec.format(img=image)
    r = khyve("-m", "64M", "-s", f"3,virtio-blk{',' if s else ''}{s}", "--kernel",
              guest("hello"), "vm0")
    assert_one_error(r, *needles)
