"""A disk that remembers what it was promised: Linux's dm-log-writes.

dm-log-writes passes every request to a data device and records, in order,
each write that completed together with the flushes and FUA writes, on a
log device (Documentation/admin-guide/device-mapper/log-writes.rst). A
write is put in the log only once a flush that came after its completion
made it durable (or when the target is removed, after the last flush).
Replaying the log up to its last flush, plus the FUA writes after it, gives
what a disk would hold after a power cut at the moment khyve was killed:
the writes the host kernel had only in its page cache, or that a disk had
only in its volatile cache, are not in it. Needs root (losetup, dmsetup).

The log's format (drivers/md/dm-log-writes.c): block 0 a super (magic,
version, nr_entries, sectorsize); from block 1 on, each entry one block of
header (sector, nr_sectors, flags, data_len) followed by nr_sectors blocks
of data (none for a flush, a discard or a mark), in sectorsize units."""
import ctypes
import glob
import os
import platform
import shutil
import struct
import subprocess

MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _finit_module(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.syscall(313, fd, b"", 0) != 0 and ctypes.get_errno() != 17:  # EEXIST
            raise OSError(ctypes.get_errno(), f"loading {path}")
    finally:
        os.close(fd)


def load_modules():
    """dm-mod and dm-log-writes: modprobe on a host with its modules; in the
    SVM test host (whose initramfs has no device mapper) from the kit's copy
    of its kernel package. None, or why it cannot be done."""
    if os.path.isdir("/sys/module/dm_log_writes"):
        return None
    modprobe = shutil.which("modprobe") or shutil.which("modprobe", path="/usr/sbin:/sbin")
    if modprobe and subprocess.run([modprobe, "dm-log-writes"], capture_output=True).returncode == 0:
        return None
    rel = platform.release()
    kit = os.environ.get("KHYVE_KIT_DIR") or os.path.join(ROOT, ".kit")  # as khyvekit.kit_dir
    found = glob.glob(f"{kit}/pkgs/linux-image-{rel}/lib/modules/{rel}/kernel/drivers/md")
    if not found:
        return f"no dm-log-writes module for kernel {rel} (modprobe failed; none under {kit}/pkgs)"
    for m in ("dm-mod.ko", "dm-log-writes.ko"):
        if not (m == "dm-mod.ko" and os.path.isdir("/sys/module/dm_mod")):
            _finit_module(os.path.join(found[0], m))
    return None


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout.strip()


class LoggedDisk:
    """A data file and a log file on loop devices; create() puts a
    dm-log-writes target over them (path: /dev/mapper/NAME), remove()
    takes it away, after which log() reads what it recorded."""

    def __init__(self, data_file, log_file, name):
        self.data_file, self.log_file, self.name = data_file, log_file, name
        self.size = os.path.getsize(data_file)
        self.data_loop = run("losetup", "-f", "--show", data_file)
        self.log_loop = run("losetup", "-f", "--show", log_file)
        self.path = f"/dev/mapper/{name}"
        self.live = False

    def create(self):
        with open(self.log_file, "r+b") as f:  # no old super to misread
            f.write(b"\0" * 4096)
        run("dmsetup", "create", "--noudevsync", self.name, "--table",
            f"0 {self.size // 512} log-writes {self.data_loop} {self.log_loop}")
        self.live = True
        run("dmsetup", "mknodes", self.name)

    def remove(self):
        if self.live:
            run("dmsetup", "remove", "--noudevsync", "--retry", self.name)
            self.live = False

    def close(self):
        self.remove()
        for loop in (self.data_loop, self.log_loop):
            subprocess.run(["losetup", "-d", loop], capture_output=True)

    def log(self):
        """[(flags, byte offset, data)] in log order."""
        out = []
        with open(self.log_file, "rb") as f:
            magic, version, n, bs = struct.unpack("<QQQI", f.read(28))
            if magic != MAGIC:
                raise RuntimeError(f"{self.log_file}: not a dm-log-writes log")
            at = bs
            for _ in range(n):
                f.seek(at)
                sector, nr, flags, data_len = struct.unpack("<QQQQ", f.read(32))
                data = b""
                if not flags & (DISCARD | MARK) and nr:
                    f.seek(at + bs)
                    data = f.read(nr * bs)
                    at += nr * bs
                at += bs
                out.append((flags, sector * bs, data if not flags & DISCARD else nr * bs))
        return out


def replay(image, entries, power_cut):
    """Apply the log to image (a bytearray). power_cut: only what a flush
    or FUA made durable; else every write that completed."""
    last_flush = max((i for i, e in enumerate(entries) if e[0] & FLUSH), default=-1)
    for i, (flags, off, data) in enumerate(entries):
        if flags & MARK or (not data and not flags & DISCARD):
            continue
        # A flush makes what came before it durable; data in the flushing
        # request itself only with FUA.
        if power_cut and i >= last_flush and not flags & FUA:
            continue
        if flags & DISCARD:
            image[off:off + data] = bytes(data)
        else:
            image[off:off + len(data)] = data
