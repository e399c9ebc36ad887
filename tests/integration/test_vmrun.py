"""vmrun: vmrun.sh's loop over khyveload and khyve. Each test runs the
vmrun of the build under test (beside its khyve, khyveload, khyvectl and
khyve-iso) on a pty, with its own runtime directory.

The guest is tests/guests/bootcount: it counts its boots in sector 0 of
its first virtio-blk disk, reboots until boots=N, then powers off, and
reports its command line and initrd; and tests/guests/powerbutton for
SIGTERM. Kernels come from a -H directory's /boot/loader.conf (khyveload's
autoboot) or from an ISO 9660 install image built here with bsdtar."""
import os
import re
import shutil
import signal
import struct
import subprocess

import pytest

from conftest import BUILD, KHYVECTL, TIMEOUT, guest

VMRUN = os.path.abspath(os.path.join(BUILD, "src", "cmd", "vmrun"))
KHYVE_ISO = os.path.abspath(os.path.join(BUILD, "src", "cmd", "khyve-iso"))
BSDTAR = shutil.which("bsdtar")
MAGIC = b"KHYVEBOOTCOUNT\0"


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["KHYVE_RUNDIR"] = str(tmp_path / "run")
    e["TMPDIR"] = str(tmp_path / "tmp")
    os.makedirs(e["TMPDIR"])
    return e


def vms(env):
    d = env["KHYVE_RUNDIR"]
    return sorted(n for n in os.listdir(d) if n != "locks") if os.path.isdir(d) else []


def nothing_left(env):
    assert vms(env) == [], vms(env)
    assert os.listdir(env["TMPDIR"]) == [], os.listdir(env["TMPDIR"])


def blank_disk(path, size=1 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def boots_on(disk):
    with open(disk, "rb") as f:
        s = f.read(512)
    return struct.unpack_from("<I", s, 16)[0] if s.startswith(MAGIC) else 0


def host_dir(tmp_path, kernel, cmdline=None):
    """A -H directory whose /boot/loader.conf names kernel (khyveload's
    autoboot on host0:)."""
    h = tmp_path / "host"
    (h / "boot").mkdir(parents=True)
    shutil.copy(guest(kernel), h / "boot" / "kernel.elf")
    conf = 'kernel="/boot/kernel.elf"\n'
    if cmdline is not None:
        conf += f'cmdline="{cmdline}"\n'
    (h / "boot" / "loader.conf").write_text(conf)
    return str(h)


class Vmrun:
    """vmrun on a pty: khyveload sees a terminal (its prompt, autoboot)."""

    def __init__(self, args, env, cwd=None):
        import io
        import pexpect
        self.log = io.StringIO()
        self.child = pexpect.spawn(VMRUN, list(args), env=env, cwd=cwd, encoding="utf-8",
                                   codec_errors="replace", timeout=TIMEOUT * 2)
        self.child.logfile_read = self.log

    def expect(self, pattern):
        return self.child.expect(pattern)

    def wait(self):
        import pexpect
        try:
            self.child.expect(pexpect.EOF)
        finally:
            self.child.close(force=True)
        self.out = self.log.getvalue().replace("\r", "")
        assert "Sanitizer" not in self.out and "runtime error" not in self.out, self.out
        return self.child.exitstatus


def run(args, env, cwd=None):
    return subprocess.run([VMRUN, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT)


def test_reboots_loop_until_poweroff(tmp_path, env):
    """A guest that reboots twice and then powers off: three loads, three
    runs, exit 1, the VM destroyed."""
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount", "boots=3 from=loaderconf")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "-e", "autoboot_delay=0",
               "vm0"], env)
    status = v.wait()
    assert status == 1, v.out
    assert re.findall(r"BOOTCOUNT: boot=(\d) of 3", v.out) == ["1", "2", "3"], v.out
    assert v.out.count("BOOTCOUNT: reboot") == 2 and v.out.count("BOOTCOUNT: poweroff") == 1
    # khyveload ran before each run, and the command line came through.
    assert v.out.count("vm0: PVH ELF ready") == 3, v.out
    assert v.out.count("BOOTCOUNT: cmdline=boots=3 from=loaderconf") == 3, v.out
    assert boots_on(disk) == 3
    nothing_left(env)


def test_sigterm_presses_the_power_button(tmp_path, env):
    """SIGTERM to vmrun reaches khyve (the ACPI power button); the guest
    powers off and the loop ends with it."""
    disk = blank_disk(tmp_path / "disk.img")
    host = host_dir(tmp_path, "powerbutton")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "-e", "autoboot_delay=0",
               "vm0"], env)
    v.expect("POWERBUTTON: waiting")
    os.kill(v.child.pid, signal.SIGTERM)
    assert v.wait() == 1, v.out
    assert "POWERBUTTON: pressed" in v.out
    assert v.out.count("PVH ELF ready") == 1, v.out
    nothing_left(env)


def test_sigterm_while_rebooting_guest_stops_the_loop(tmp_path, env):
    """A guest that would reboot forever: after SIGTERM, its next exit
    (whatever it is) ends the loop; the VM is destroyed."""
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount", "boots=1000")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "-e", "autoboot_delay=0",
               "vm0"], env)
    v.expect("BOOTCOUNT: boot=2 of 1000")
    os.kill(v.child.pid, signal.SIGTERM)
    status = v.wait()
    assert status in (0, 1, 4), v.out
    assert boots_on(disk) < 1000
    nothing_left(env)


def test_khyve_error_stops_the_loop(tmp_path, env):
    """khyve exiting 4 (here: a disk option it does not know, which only
    khyve reads) stops vmrun with 4 after one load; the prepared VM is
    left for inspection, and said so."""
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount", "boots=3")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk + ",bogus", "-H", host, "-e",
               "autoboot_delay=0", "vm0"], env)
    assert v.wait() == 4, v.out
    assert v.out.count("PVH ELF ready") == 1, v.out
    assert "BOOTCOUNT" not in v.out
    assert "vmrun: khyve exited 4; vm0 is left as it is" in v.out, v.out
    assert vms(env) == ["vm0"]
    assert boots_on(disk) == 0
    subprocess.run([KHYVECTL, "--vm=vm0", "--destroy"], env=env, check=True)
    assert vms(env) == []


ISOLINUX_CFG = """\
# a Debian-like isolinux.cfg: the menu module as DEFAULT, the entry marked
# MENU DEFAULT in an included file
UI vesamenu.c32
DEFAULT vesamenu.c32
PROMPT 0
TIMEOUT 0
INCLUDE menu.cfg
"""

MENU_CFG = """\
MENU TITLE Test installer
LABEL rescue
  MENU LABEL ^Rescue mode
  KERNEL /install/vmlinuz
  APPEND initrd=/install/initrd.gz rescue/enable=true boots=5
LABEL install
  MENU LABEL ^Install
  MENU DEFAULT
  KERNEL /install/vmlinuz
  APPEND vga=788 initrd=/install/initrd.gz boots=1 quote='it''s' --- quiet
TEXT HELP
  KERNEL /not/this
ENDTEXT
LABEL hd
  LOCALBOOT 0
"""

GRUB_CFG = """\
set timeout=5
set default=1
menuentry 'Graphical install' {
    linux /install/gtk/vmlinuz boots=5
    initrd /install/gtk/initrd.gz
}
menuentry 'Install' {
    linux /install/vmlinuz boots=1 quote='it''s' --- quiet
    initrd /install/initrd.gz
}
"""


def make_iso(tmp_path, kind):
    tree = tmp_path / "isotree"
    (tree / "install").mkdir(parents=True)
    shutil.copy(guest("bootcount"), tree / "install" / "vmlinuz")
    (tree / "install" / "initrd.gz").write_bytes(b"INSTALLER-INITRD" + bytes(4000))
    if kind == "isolinux":
        (tree / "isolinux").mkdir()
        (tree / "isolinux" / "isolinux.cfg").write_text(ISOLINUX_CFG)
        (tree / "isolinux" / "menu.cfg").write_text(MENU_CFG)
        (tree / "isolinux" / "vesamenu.c32").write_bytes(b"\0" * 64)
    else:
        (tree / "boot" / "grub").mkdir(parents=True)
        (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    iso = tmp_path / "test.iso"
    subprocess.run([BSDTAR, "--format", "iso9660", "-cf", str(iso), "-C", str(tree), "."],
                   check=True)
    return str(iso)


@pytest.mark.skipif(BSDTAR is None, reason="bsdtar (libarchive-tools) is not installed")
@pytest.mark.parametrize("kind", ["isolinux", "grub"])
def test_install_image(tmp_path, env, kind):
    """A disk with no boot record and -I: the image's default entry boots
    (its kernel, initrd and command line), with the disk attached."""
    iso = make_iso(tmp_path, kind)
    r = subprocess.run([KHYVE_ISO, iso], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "kernel /install/vmlinuz\ninitrd /install/initrd.gz\n" in r.stdout, r.stdout
    disk = blank_disk(tmp_path / "disk.img")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-I", iso, "vm0"], env)
    assert v.wait() == 1, v.out
    # syslinux passes APPEND as it is; GRUB's words lose their quotes.
    want = ("vga=788 boots=1 quote='it''s' --- quiet" if kind == "isolinux"
            else "boots=1 quote=its --- quiet")
    assert f"BOOTCOUNT: cmdline={want}\n" in v.out, v.out
    assert "BOOTCOUNT: initrd size=4016 head=INSTALLER-INITRD\n" in v.out, v.out
    assert "BOOTCOUNT: boot=1 of 1" in v.out
    assert boots_on(disk) == 1
    nothing_left(env)


@pytest.mark.skipif(BSDTAR is None, reason="bsdtar (libarchive-tools) is not installed")
def test_install_image_cmdline_from_e(tmp_path, env):
    """-e cmdline=... wins over the image's command line (console=ttyS0 for
    an installer that lacks it)."""
    iso = make_iso(tmp_path, "isolinux")
    disk = blank_disk(tmp_path / "disk.img")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-I", iso, "-e",
               "cmdline=boots=1 console=ttyS0", "vm0"], env)
    assert v.wait() == 1, v.out
    assert "BOOTCOUNT: cmdline=boots=1 console=ttyS0\n" in v.out, v.out
    nothing_left(env)


def bad(tmp_path, env, args, message, cwd=None):
    r = run(args, env, cwd=cwd)
    assert r.returncode == 4, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmrun: "), r.stderr
    assert message in lines[0], lines[0]
    assert "Launching" not in r.stdout
    nothing_left(env)
    return lines[0]


def test_bad_input(tmp_path, env):
    disk = blank_disk(tmp_path / "disk.img")
    host = host_dir(tmp_path, "bootcount")
    missing = str(tmp_path / "missing.img")
    bad(tmp_path, env, ["-d", missing, "-H", host, "vm0"], "no such disk image")
    assert not os.path.exists(missing)  # vmrun.sh would have made an 8G file
    bad(tmp_path, env, ["-d", disk, "-H", host, ".vm0"], "not a valid VM name")
    bad(tmp_path, env, ["-d", disk, "-H", host, "a/b"], "not a valid VM name")
    bad(tmp_path, env, ["-d", disk, "-H", host, "x" * 32], "not a valid VM name")
    bad(tmp_path, env, ["-d", disk, "-H", host], "virtual machine name not specified")
    bad(tmp_path, env, ["-d", disk, "-H", host, "vm0", "vm1"], "one virtual machine name")
    bad(tmp_path, env, ["-d", disk, "-X", "vm0"], "unknown option -X")
    bad(tmp_path, env, ["-d", disk, "-A", "vm0"], "no AHCI")
    bad(tmp_path, env, ["-d", disk, "-E", "vm0"], "no UEFI")
    bad(tmp_path, env, ["-d", disk, "-p", "1/0/0", "vm0"], "pass-through")
    bad(tmp_path, env, ["-d", disk, "-l", "/boot/userboot.so", "vm0"], "built in")
    bad(tmp_path, env, ["-d", disk, "-n", "e1000", "vm0"], "virtio-net")
    bad(tmp_path, env, ["-d", disk, "-c", "zero", "-H", host, "vm0"], "number of CPUs")
    bad(tmp_path, env, ["-d", disk, "-H", str(tmp_path / "nohost"), "vm0"],
        "no such directory")
    bad(tmp_path, env, ["-d", disk, "-H", host, "-t", "khyvenotap0", "vm0"],
        "no such network interface")
    # A blank disk, no -H, and no install image (vmrun.sh's ./release.iso).
    bad(tmp_path, env, ["-d", disk, "vm0"], "is not readable", cwd=str(tmp_path))
    # The disk stayed as it was.
    assert open(disk, "rb").read() == bytes(1 << 20)


def test_bad_install_image(tmp_path, env):
    """An -I that is not an ISO 9660 image: khyve-iso's one line, exit 4,
    nothing left (the VM removed, the extraction directory too)."""
    disk = blank_disk(tmp_path / "disk.img")
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"not an iso" * 1000)
    r = run(["-d", disk, "-I", str(junk), "vm0"], env)
    assert r.returncode == 4, r
    assert "khyve-iso: " in r.stderr and "ISO 9660" in r.stderr, r.stderr
    nothing_left(env)


def test_vm_in_use_is_refused(tmp_path, env):
    """A VM that a khyve runs is not vmrun's to take: one line, exit 4, and
    the running VM is untouched."""
    from conftest import KHYVE
    disk = blank_disk(tmp_path / "disk.img")
    host = host_dir(tmp_path, "bootcount")
    k = subprocess.Popen([KHYVE, "-m", "64M", "-l", "com1,stdio", "--kernel",
                          guest("powerbutton"), "vm0"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "POWERBUTTON: waiting" in k.stdout.readline()
        r = run(["-d", disk, "-H", host, "vm0"], env)
        assert r.returncode == 4, r
        assert r.stderr == f"vmrun: vm0: VM is in use (pid {k.pid}); stop it with: " \
                           "khyvectl --vm=vm0 --destroy\n", r.stderr
        assert k.poll() is None
    finally:
        k.terminate()
        out = k.communicate(timeout=TIMEOUT)[0]
    assert k.returncode == 1 and "POWERBUTTON: pressed" in out, out
    assert boots_on(disk) == 0


def ext4_disk(tmp_path, cmdline):
    """An ext4 disk (mke2fs -d) whose /boot/grub/grub.cfg boots bootcount."""
    root = tmp_path / "root"
    (root / "boot" / "grub").mkdir(parents=True)
    shutil.copy(guest("bootcount"), root / "boot" / "vmlinuz")
    (root / "boot" / "grub" / "grub.cfg").write_text(
        f"menuentry 'disk' {{\n\tlinux /boot/vmlinuz {cmdline}\n}}\n")
    img = tmp_path / "ext4.img"
    blank_disk(img, 8 << 20)
    mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(root), str(img)], check=True,
                   capture_output=True)
    return str(img)


@pytest.mark.skipif(BSDTAR is None, reason="bsdtar (libarchive-tools) is not installed")
@pytest.mark.parametrize("force", [False, True])
def test_disk_with_boot_record_boots_unless_i(tmp_path, env, force):
    """A disk with a boot record (ext4) boots from its grub.cfg even with -I
    given; -i boots the install image anyway."""
    disk = ext4_disk(tmp_path, "boots=1 from=disk")
    iso = make_iso(tmp_path, "isolinux")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-I", iso, "-e", "autoboot_delay=0"]
              + (["-i"] if force else []) + ["vm0"], env)
    assert v.wait() == 1, v.out
    if force:
        assert "Booting the install image" in v.out
        assert "BOOTCOUNT: cmdline=vga=788 boots=1 quote='it''s' --- quiet\n" in v.out, v.out
    else:
        assert "disk0:/boot/grub/grub.cfg" in v.out, v.out
        assert "BOOTCOUNT: cmdline=boots=1 from=disk\n" in v.out, v.out
    # The counter went to sector 0 (below the superblock); the file system
    # is still there.
    assert boots_on(disk) == 1
    with open(disk, "rb") as f:
        f.seek(1080)
        assert f.read(2) == b"\x53\xef"
    nothing_left(env)


def test_without_a_terminal_autoboots(tmp_path, env):
    """With no terminal (a service, a script), the loader boots what its
    autoboot would, and the loop runs as on a terminal."""
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount", "boots=2")
    r = run(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "vm0"], env)
    assert r.returncode == 1, r
    assert re.findall(r"BOOTCOUNT: boot=(\d) of 2", r.stdout) == ["1", "2"], r
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    nothing_left(env)


def test_sigterm_at_the_loader_prompt(tmp_path, env):
    """SIGTERM while khyveload waits at its prompt ends the loader (which
    leaves nothing behind) and vmrun with 4; nothing runs."""
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "-e", "autoboot_delay=NO",
               "vm0"], env)
    v.expect("OK ")
    os.kill(v.child.pid, signal.SIGTERM)
    assert v.wait() == 4, v.out
    assert "stopped by signal 15; nothing left behind" in v.out, v.out
    assert "BOOTCOUNT" not in v.out and boots_on(disk) == 0
    nothing_left(env)


def test_sigterm_during_the_autoboot_countdown(tmp_path, env):
    """SIGTERM during the loader's countdown (an hour long) ends it too."""
    import pexpect
    disk = blank_disk(tmp_path / "count.img")
    host = host_dir(tmp_path, "bootcount")
    v = Vmrun(["-c", "1", "-m", "128M", "-d", disk, "-H", host, "-e", "autoboot_delay=3600",
               "vm0"], env)
    v.expect("in 3600 seconds")
    os.kill(v.child.pid, signal.SIGTERM)
    # The loader either ends, or (the bug) shows its prompt and waits.
    which = v.child.expect([pexpect.EOF, "OK "])
    if which == 1:
        v.child.close(force=True)
        pytest.fail("khyveload went to its prompt after SIGTERM")
    assert v.wait() == 4, v.out
    nothing_left(env)


@pytest.mark.skipif(BSDTAR is None, reason="bsdtar (libarchive-tools) is not installed")
def test_install_image_without_a_boot_entry(tmp_path, env):
    """An ISO with no isolinux/syslinux/GRUB configuration: one line from
    khyve-iso, exit 4, nothing left."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("no boot configuration here\n")
    iso = tmp_path / "plain.iso"
    subprocess.run([BSDTAR, "--format", "iso9660", "-cf", str(iso), "-C", str(tree), "."],
                   check=True)
    disk = blank_disk(tmp_path / "disk.img")
    r = run(["-d", disk, "-I", str(iso), "vm0"], env)
    assert r.returncode == 4, r
    assert r.stderr.count("\n") == 1 and "khyve-iso: " in r.stderr, r.stderr
    assert "no isolinux/syslinux or GRUB configuration" in r.stderr, r.stderr
    nothing_left(env)
