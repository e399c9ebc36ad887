"""khyveload: the OK prompt (pexpect), scripted sessions on stdin, host0:
and disk0: devices, autoboot from grub.cfg and loader.conf, the one-shot
nextboot override, and bad input. The loaded test guest is bootinfo, which
reports its command line and modules.

What the loader left is checked in the VM's memory file itself (the PVH
start info, the command line and the modules, where the entry state's
registers point), and by running it: `khyve NAME`."""
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib

import pytest

from conftest import BUILD, KHYVE, ROOT, SANITIZED, TIMEOUT, guest

KHYVELOAD = os.path.join(BUILD, "src", "cmd", "khyveload")
NEXTBOOT = os.path.join(ROOT, "scripts", "khyve-nextboot")
MKE2FS = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
PVH_MAGIC = 0x336EC578


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["KHYVE_RUNDIR"] = str(tmp_path / "run")
    return e


def rundir(env):
    return env["KHYVE_RUNDIR"]


def vm_dir(env, name="vm0"):
    return os.path.join(rundir(env), name)


def nothing_left(env, name="vm0"):
    assert not os.path.exists(vm_dir(env, name)), os.listdir(vm_dir(env, name))


def clean(r):
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def load(args, script, env, name="vm0", timeout=TIMEOUT):
    """khyveload with commands on stdin (not a terminal: a script)."""
    return clean(_run([KHYVELOAD, *args, name], script, env, timeout))


class R:
    def __init__(self, p):
        self.status = p.returncode
        self.stdout = p.stdout.decode(errors="replace")
        self.stderr = p.stderr.decode(errors="replace")

    def __repr__(self):
        return f"<exit {self.status}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}>"


def _run(argv, script, env, timeout):
    return R(subprocess.run(argv, input=script.encode(), env=env, capture_output=True,
                            timeout=timeout))


def session(args, env, name="vm0"):
    import pexpect
    child = pexpect.spawn(KHYVELOAD, [*args, name], env=env, timeout=TIMEOUT, encoding="utf-8",
                          codec_errors="replace")
    return child


def ended(child):
    import pexpect
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def entry(env, name="vm0"):
    with open(os.path.join(vm_dir(env, name), "entry")) as f:
        text = f.read()
    assert text.startswith("khyve-entry 1\n"), text
    e = {"load": []}
    for line in text.splitlines()[1:]:
        k, _, v = line.partition("=")
        if k == "load":
            e["load"].append(v)
        else:
            e[k] = v
    return e


def pvh_handover(env, name="vm0"):
    """The PVH start info the entry state points at (rbx), read from the
    memory file: the command line and the modules' bytes."""
    e = entry(env, name)
    assert e["format"] == "PVH ELF", e
    with open(os.path.join(vm_dir(env, name), "mem"), "rb") as f:
        mem = f.read()
    info = int(e["rbx"], 0)
    magic, _ver, _flags, nmods, modlist, cmdline = struct.unpack_from("<IIIIQQ", mem, info)
    assert magic == PVH_MAGIC
    cl = mem[cmdline:mem.index(b"\0", cmdline)].decode() if cmdline else ""
    mods = []
    for i in range(nmods):
        paddr, size, _mcl, _r = struct.unpack_from("<QQQQ", mem, modlist + 32 * i)
        mods.append(mem[paddr:paddr + size])
    return cl, mods


def run_prepared(env, name="vm0"):
    """khyve NAME: what the guest reported."""
    p = subprocess.run([KHYVE, "-l", "com1,stdio", "--debug-exit", name], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 1 and "PASS" in out, (p.returncode, out, p.stderr)
    return out


def check_boot(env, cmdline, initrds, name="vm0"):
    cl, mods = pvh_handover(env, name)
    assert cl == cmdline
    assert mods == initrds
    out = run_prepared(env, name)
    assert f"CMDLINE: {cmdline}" in out
    assert f"MODULES: {len(initrds)}" in out
    for i, m in enumerate(initrds):
        assert re.search(rf"MODULE {i}: .*size={len(m)} .*crc32=0x{zlib.crc32(m):08x}", out)


# ---- trees and images ----

INITRD = b"initrd bytes\n" * 1000


@pytest.fixture
def host(tmp_path):
    """A host directory as `make installkernel DESTDIR=` leaves one, with a
    Linux-style kernel and initrd beside it."""
    h = tmp_path / "host"
    (h / "boot" / "kernel").mkdir(parents=True)
    shutil.copy(guest("bootinfo"), h / "boot" / "kernel" / "kernel")
    shutil.copy(guest("bootinfo"), h / "boot" / "vmlinuz")
    (h / "boot" / "initrd.img").write_bytes(INITRD)
    (h / "secret-link").symlink_to("/etc/hostname")
    (h / "boot" / "up").symlink_to("../..")
    return h


def mkfs(tree, image, size_mb=16, offset=0):
    args = [MKE2FS, "-q", "-F", "-t", "ext4", "-d", str(tree)]
    if offset:
        args += ["-E", f"offset={offset}"]
    subprocess.run(args + [str(image), f"{size_mb}M"], check=True, capture_output=True)


def linux_tree(root, grub=None, nextboot=None):
    """A Linux root file system: kernels in /boot, /vmlinuz links."""
    (root / "boot" / "grub").mkdir(parents=True)
    shutil.copy(guest("bootinfo"), root / "boot" / "vmlinuz-1")
    shutil.copy(guest("bootinfo"), root / "boot" / "vmlinuz-2")
    (root / "boot" / "initrd.img-1").write_bytes(b"one\n" * 100)
    (root / "boot" / "initrd.img-2").write_bytes(b"two\n" * 200)
    (root / "vmlinuz").symlink_to("boot/vmlinuz-1")
    (root / "initrd.img").symlink_to("boot/initrd.img-1")
    if grub is not None:
        (root / "boot" / "grub" / "grub.cfg").write_text(grub)
    if nextboot is not None:
        (root / "boot" / "nextboot.conf").write_text(nextboot)
    return root


GRUB_CFG = r"""
# Debian-style
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
else
   set default="1>1"
fi
function load_video {
  insmod all_video
}
set root='hd0,msdos1'
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {
	load_video
	insmod ext2
	linux	/boot/vmlinuz-1 root=/dev/vda1 ro quiet
	initrd	/boot/initrd.img-1
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced' {
	menuentry 'Debian GNU/Linux, with Linux 1' --class debian {
		linux	/boot/vmlinuz-1 root=/dev/vda1 ro
		initrd	/boot/initrd.img-1
	}
	menuentry 'Debian GNU/Linux, with Linux 2' --class debian {
		set kver=2
		if [ x$grub_platform = xxen ]; then insmod xzio; fi
		echo	'Loading Linux 2 ...'
		linux	($root)/boot/vmlinuz-$kver root=/dev/vda1 ro which=grub "quoted arg"
		initrd	/boot/initrd.img-$kver
	}
}
"""


@pytest.fixture
def disk(tmp_path):
    root = linux_tree(tmp_path / "root", grub=GRUB_CFG)
    img = tmp_path / "disk.img"
    mkfs(root, img)
    return img


def mbr_disk(tmp_path, root, gpt=False):
    """An image with one partition (MBR or GPT) at 1 MiB holding ext4."""
    img = tmp_path / ("gpt.img" if gpt else "mbr.img")
    size_mb, off = 16, 1 << 20
    with open(img, "wb") as f:
        f.truncate((size_mb + 2) << 20)
    mkfs(root, img, size_mb, off)
    first, count = off // 512, (size_mb << 20) // 512
    total = ((size_mb + 2) << 20) // 512
    with open(img, "r+b") as f:
        mbr = bytearray(512)
        if gpt:
            struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\0\0\0", 0xEE, b"\0\0\0", 1, total - 1)
        else:
            struct.pack_into("<B3sB3sII", mbr, 446, 0x80, b"\0\0\0", 0x83, b"\0\0\0", first, count)
        mbr[510:512] = b"\x55\xaa"
        f.write(mbr)
        if gpt:
            linux = bytes.fromhex("af3dc60f83847247 8e793d69d8477de4".replace(" ", ""))
            ent = bytearray(128 * 128)
            struct.pack_into("<16s16sQQQ", ent, 0, linux, os.urandom(16), first, first + count - 1, 0)
            hdr = bytearray(92)
            struct.pack_into("<8sIIIIQQQQ16sQIII", hdr, 0, b"EFI PART", 0x10000, 92, 0, 0, 1,
                             total - 1, 34, total - 34, os.urandom(16), 2, 128, 128,
                             zlib.crc32(bytes(ent)))
            struct.pack_into("<I", hdr, 16, zlib.crc32(bytes(hdr)))
            f.seek(512)
            f.write(hdr)
            f.seek(1024)
            f.write(ent)
    return img


# ---- scripted sessions ----

def test_script_load_host0_boot(host, env):
    """The scripting use: load, load -t initrd, boot on stdin; exit 0 with
    the VM ready, the command line from load's arguments."""
    r = load(["-m", "64M", "-h", str(host)],
             "load host0:/boot/vmlinuz console=ttyS0 x=1\n"
             "load -t initrd /boot/initrd.img\n"
             "boot\n", env)
    assert r.status == 0, r
    assert "ready" in r.stdout
    e = entry(env)
    assert e["cmdline"] == "console=ttyS0 x=1" and e["mem"] == str(64 << 20)
    assert any(l.endswith("host0:/boot/vmlinuz") for l in e["load"]), e
    check_boot(env, "console=ttyS0 x=1", [INITRD])


def test_set_cmdline_replaces(host, env):
    r = load(["-m", "64M", "-h", str(host), "-e", "greeting=hi"],
             "load /boot/vmlinuz a=1\nset cmdline=b=2 c=$greeting\nboot\n", env)
    assert r.status == 0, r
    check_boot(env, "b=2 c=hi", [])


def test_script_error_ends_session(host, env):
    """In a script, an error is one line on stderr, exit 4, nothing left."""
    r = load(["-h", str(host)], "load /boot/initrd.img\nboot\n", env)
    assert r.status == 4, r
    assert re.search(r"^khyveload: host0:/boot/initrd.img: .*not", r.stderr, re.M), r
    nothing_left(env)


def test_input_ends_without_boot(host, env):
    r = load(["-h", str(host)], "load /boot/vmlinuz\n", env)
    assert r.status == 4 and "without boot" in r.stderr, r
    nothing_left(env)


# ---- the prompt ----

def test_prompt_session_ext4(disk, env):
    """A session at the OK prompt on an ext4 image built by mke2fs -d:
    devices, listing, loading with arguments, errors that keep the prompt,
    the line editor's history, and boot."""
    c = session(["-m", "64M", "-d", str(disk), "-e", "autoboot_delay=NO"], env)
    c.expect("OK ")
    c.sendline("lsdev -v")
    c.expect(r"disk0:\s+.*disk.img, 16 MiB, ext4")
    c.expect("OK ")
    c.sendline("ls /boot")
    c.expect(r"vmlinuz-2")
    c.expect("OK ")
    c.sendline("frobnicate")
    c.expect("frobnicate: unknown command")
    c.expect("OK ")
    c.sendline("load disk0:/boot/nothing")
    c.expect("No such file")
    c.expect("OK ")
    c.sendline("load /boot/initrd.img-1")  # not a kernel: refused, prompt stays
    c.expect("initrd.img-1: .*not")
    c.expect("OK ")
    c.sendline("load /boot/vmlinuz-2 root=/dev/vda1 x=2")
    c.expect("PVH ELF")
    c.expect("OK ")
    c.sendline("load -t initrd /boot/initrd.img-2")
    c.expect("OK ")
    # History: up arrow brings back the last line; edit it with ^U.
    c.send("\x1b[A")
    c.expect("initrd.img-2")
    c.send("\x15show cmdline\r")
    c.expect("root=/dev/vda1 x=2")
    c.expect("OK ")
    c.sendline("boot")
    c.expect("ready")
    assert ended(c) == 0
    check_boot(env, "root=/dev/vda1 x=2", [b"two\n" * 200])


def test_autoboot_grub_countdown_interrupted(disk, env):
    """On a terminal, the countdown names what grub.cfg's default entry
    boots; a key stops it at the prompt; autoboot then boots it."""
    c = session(["-m", "64M", "-d", str(disk), "-e", "autoboot_delay=3600"], env)
    c.expect(r"Hit \[Enter\]")
    c.expect(r"Booting \[disk0:/boot/vmlinuz-2\]")
    c.send(" ")
    c.expect("OK ")
    c.sendline("echo still $currdev")
    c.expect("still disk0")
    c.sendline("autoboot 0")
    c.expect("ready")
    assert ended(c) == 0
    check_boot(env, 'root=/dev/vda1 ro which=grub quoted arg', [b"two\n" * 200])


def test_autoboot_grub_script(disk, env):
    r = load(["-m", "64M", "-d", str(disk)], "autoboot\n", env)
    assert r.status == 0, r
    assert "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 2" in r.stdout
    assert entry(env)["cmdline"] == "root=/dev/vda1 ro which=grub quoted arg"


def test_boot_without_load_uses_config(disk, env):
    """boot with nothing loaded boots what autoboot would, without counting."""
    r = load(["-m", "64M", "-d", str(disk), "-e", "cmdline=mine"], "boot\n", env)
    assert r.status == 0, r
    check_boot(env, "mine", [b"two\n" * 200])


def test_grub_unreadable_falls_back(tmp_path, env):
    """A grub.cfg that cannot be read: a warning, then /vmlinuz and
    /initrd.img."""
    root = linux_tree(tmp_path / "root")
    (root / "boot" / "grub" / "grub.cfg").mkdir()
    img = tmp_path / "disk.img"
    mkfs(root, img)
    r = load(["-m", "64M", "-d", str(img)], "autoboot\n", env)
    assert r.status == 0, r
    assert re.search(r"warning: disk0:/boot/grub/grub.cfg: .*trying /vmlinuz", r.stdout), r
    check_boot(env, "", [b"one\n" * 100])


def test_mbr_and_gpt_partitions(tmp_path, env):
    root = linux_tree(tmp_path / "root", grub=GRUB_CFG)
    for gpt in (False, True):
        img = mbr_disk(tmp_path, root, gpt)
        r = load(["-m", "64M", "-d", str(img)], "lsdev -v\nls disk0p1:/boot\nautoboot\n", env)
        assert r.status == 0, r
        assert "GPT" in r.stdout if gpt else "MBR" in r.stdout
        assert re.search(r"disk0p1:.*ext4", r.stdout), r
        assert entry(env)["cmdline"].endswith("which=grub quoted arg")
        load(["-m", "64M", "-d", str(img)], "quit\n", env)


def test_loader_conf_host0(host, env):
    """A host0: tree's /boot/loader.conf: kernel=, a module by *_load,
    *_name and *_type, and the rest into the environment (the kenv)."""
    (host / "boot" / "modfile").write_bytes(b"module bytes\n" * 50)
    (host / "boot" / "loader.conf").write_text(
        '# loader.conf\nkernel="kernel"\nhint.uart.1.flags="0x80"\n'
        'mymod_load="YES"\nmymod_name="/boot/modfile"\nmymod_type="initrd"\n'
        'other_load="NO"\ncmdline="from=loaderconf"\n')
    r = load(["-m", "64M", "-h", str(host)], "autoboot\n", env)
    assert r.status == 0, r
    assert "host0:/boot/kernel/kernel" in r.stdout
    check_boot(env, "from=loaderconf", [b"module bytes\n" * 50])
    r = load(["-m", "64M", "-h", str(host)], "show hint.uart.1.flags\nquit\n", env)
    assert "0x80" not in r.stdout  # only autoboot reads loader.conf
    r = load(["-m", "64M", "-h", str(host), "-e", "autoboot_delay=0"],
             "set hint.uart.1.flags=0x80\nshow hint.uart.1.flags\nquit\n", env)
    assert "0x80" in r.stdout


# ---- host0: confinement ----

@pytest.mark.parametrize("path", ["/boot/../../etc/hostname", "/secret-link", "/boot/up/etc/hostname",
                                  "../etc/hostname"])
def test_host0_escape_refused(host, env, path):
    c = session(["-h", str(host), "-e", "autoboot_delay=NO"], env)
    c.expect("OK ")
    c.sendline(f"load host0:{path}")
    c.expect("leaves the host directory")
    c.expect("OK ")
    c.sendline(f"ls host0:{path}")
    c.expect("leaves the host directory")
    c.expect("OK ")
    c.sendline("quit")
    assert ended(c) == 4
    nothing_left(env)


# ---- nextboot ----

def test_nextboot_used_exactly_once(tmp_path, env):
    """khyve-nextboot (run here on the guest's root tree) writes the
    one-shot file; the first autoboot takes it and disables it on the
    disk, the second boots grub.cfg's default again."""
    root = linux_tree(tmp_path / "root", grub=GRUB_CFG)
    subprocess.run(["sh", NEXTBOOT, "-r", str(root), "-k", "/boot/vmlinuz-1",
                    "-i", "/boot/initrd.img-1", "-c", "which=nextboot once"], check=True)
    conf = (root / "boot" / "nextboot.conf").read_text()
    assert 'nextboot_enable="YES"' in conf
    img = tmp_path / "disk.img"
    mkfs(root, img)
    r = load(["-m", "64M", "-d", str(img)], "autoboot\n", env)
    assert r.status == 0, r
    assert "taken once, now disabled" in r.stdout
    check_boot(env, "which=nextboot once", [b"one\n" * 100])
    r = load(["-m", "64M", "-d", str(img)], "autoboot\n", env)
    assert r.status == 0, r
    assert "nextboot" not in r.stdout
    check_boot(env, "root=/dev/vda1 ro which=grub quoted arg", [b"two\n" * 200])
    out = subprocess.run(["/usr/sbin/debugfs", "-R", "cat /boot/nextboot.conf", str(img)],
                         capture_output=True, text=True).stdout
    assert 'nextboot_enable="NO"' in out and "YES" not in out


def test_nextboot_refused_while_image_in_use(tmp_path, env):
    """An image a VM writes (its write lock held) is not written: the
    one-shot boot is not taken, the regular one is."""
    root = linux_tree(tmp_path / "root", grub=GRUB_CFG,
                      nextboot='nextboot_enable="YES"\nkernel="/boot/vmlinuz-1"\n')
    img = tmp_path / "disk.img"
    mkfs(root, img)
    import fcntl
    fd = os.open(img, os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK if hasattr(fcntl, "F_OFD_SETLK") else 37,
                    struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0))
        r = load(["-m", "64M", "-d", str(img)], "autoboot\n", env)
    finally:
        os.close(fd)
    assert r.status == 0, r
    assert "in use by a running VM" in r.stdout and "not taken" in r.stdout, r
    assert entry(env)["cmdline"].endswith("which=grub quoted arg")


# ---- bad input: one line, exit 4, nothing left behind ----

def bad(args, env, name="vm0", script="boot\n"):
    r = load(args, script, env, name)
    assert r.status == 4, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("khyveload: "), r
    nothing_left(env, name)
    return lines[0]


def test_bad_names(host, env):
    for name in ["a/b", ".hidden", "x" * 40, ""]:
        msg = bad(["-h", str(host)], env, name=name)
        assert "name" in msg


def test_busy_vm(host, env):
    c = session(["-h", str(host), "-e", "autoboot_delay=NO"], env)
    c.expect("OK ")
    try:
        r = load(["-h", str(host)], "boot\n", env)
        assert r.status == 4 and re.search(rf"in use.*pid {c.pid}", r.stderr), r
    finally:
        c.sendline("quit")
        assert ended(c) == 4
    nothing_left(env)


def test_bad_disks(tmp_path, env):
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    assert "neither an ext2/3/4" in bad(["-d", str(junk)], env)
    assert "No such file" in bad(["-d", str(tmp_path / "missing.img")], env)


def test_bad_host_dirs(tmp_path, env):
    assert "absolute" in bad(["-h", "relative/dir"], env)
    assert "No such file" in bad(["-h", str(tmp_path / "missing")], env)


def test_bad_flags(host, env):
    assert "-l" in bad(["-l", "/boot/userboot.so", "-h", str(host)], env)
    assert "-m" in bad(["-m", "lots", "-h", str(host)], env)


def test_not_a_kernel(host, env):
    msg = bad(["-h", str(host)], env, script="load /boot/initrd.img\nboot\n")
    assert "initrd.img" in msg


def test_sigterm_leaves_nothing(host, env):
    c = session(["-h", str(host), "-e", "autoboot_delay=NO"], env)
    c.expect("OK ")
    c.kill(signal.SIGTERM)
    assert ended(c) == 4
    nothing_left(env)


# ---- FreeBSD kernels ----

FBSDMETA = os.path.join(BUILD, "tests", "guests", "fbsdmeta")
FBSDMOD = os.path.join(BUILD, "tests", "guests", "fbsdmod.ko")


def test_freebsd_kernel_from_host0(tmp_path, env):
    """The article's steps: a kernel and module installed into a host
    directory, loaded at the prompt with a kenv setting, -s, then run by
    khyve NAME; the fbsdmeta guest reports its metadata."""
    h = tmp_path / "host"
    (h / "boot" / "kernel").mkdir(parents=True)
    shutil.copy(FBSDMETA, h / "boot" / "kernel" / "kernel")
    shutil.copy(FBSDMOD, h / "boot" / "kernel" / "fbsdmod.ko")
    (h / "boot" / "md.img").write_bytes(b"md image\n" * 300)
    c = session(["-m", "128M", "-h", str(h), "-e", "autoboot_delay=NO"], env)
    c.expect("OK ")
    c.sendline("load host0:/boot/kernel/kernel -s")
    c.expect("FreeBSD ELF")
    c.sendline("load fbsdmod")
    c.expect("host0:/boot/kernel/fbsdmod.ko module")
    c.sendline("load -t md_image /boot/md.img")
    c.expect("md_image")
    c.sendline("set hint.uart.1.flags=0x80")
    c.sendline("boot")
    c.expect("FreeBSD ELF ready at rip 0xffffffff8")
    assert ended(c) == 0
    e = entry(env)
    assert e["format"] == "FreeBSD ELF" and e["mode"] == "long64" and e["cmdline"] == "-s", e
    assert [l.split()[0] for l in e["load"]] == ["kernel", "module", "md_image"], e
    out = run_prepared(env)
    assert "FBSDMETA: kenv hint.uart.1.flags=0x80" in out
    assert "FBSDMETA: kernel name=/boot/kernel/kernel type=elf kernel" in out and "args=-s" in out
    assert "file name=/boot/kernel/fbsdmod.ko type=elf obj module" in out
    assert "file name=/boot/md.img type=md_image" in out
    assert re.search(r"howto=0x[0-9a-f]*[2367abef]\b", out)  # RB_SINGLE (0x2)


def test_freebsd_loader_conf_autoboot(tmp_path, env):
    h = tmp_path / "host"
    (h / "boot" / "kernel").mkdir(parents=True)
    shutil.copy(FBSDMETA, h / "boot" / "kernel" / "kernel")
    shutil.copy(FBSDMOD, h / "boot" / "kernel" / "fbsdmod.ko")
    (h / "boot" / "loader.conf").write_text('fbsdmod_load="YES"\nhint.uart.1.flags="0x80"\n')
    r = load(["-m", "128M", "-h", str(h)], "autoboot\n", env)
    assert r.status == 0, r
    assert entry(env)["format"] == "FreeBSD ELF"
    out = run_prepared(env)
    assert "FBSDMETA: kenv hint.uart.1.flags=0x80" in out
    assert "file name=/boot/kernel/fbsdmod.ko type=elf obj module" in out


def test_prompt_on_cons_dev(host, env):
    """-c: the prompt on another terminal (a pty), stdin left alone."""
    import pexpect.fdpexpect
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([KHYVELOAD, "-m", "64M", "-h", str(host), "-e", "autoboot_delay=NO",
                              "-c", os.ttyname(slave), "vm0"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        c = pexpect.fdpexpect.fdspawn(master, timeout=TIMEOUT, encoding="utf-8",
                                      codec_errors="replace")
        c.expect("OK ")
        c.send("load /boot/vmlinuz via=cons\r")
        c.expect("PVH ELF")
        c.expect("OK ")
        c.send("boot\r")
        c.expect("ready")
        out, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0 and not out, (out, err)
    finally:
        os.close(slave)
        os.close(master)
    check_boot(env, "via=cons", [])


def test_include_read_echo_reboot_and_single(host, env):
    """include runs a file's commands; read takes the next input line into
    a variable; echo expands it; reboot drops what was loaded and resets
    the environment; boot -s adds "single" to a Linux command line."""
    (host / "boot" / "cmds.rc").write_text(
        "# a command file\nset greeting=from-include\nload /boot/vmlinuz will=vanish\n")
    r = load(["-m", "64M", "-h", str(host), "-e", "keep=1"],
             "include /boot/cmds.rc\necho [$greeting] [${keep}]\nreboot\n"
             "echo after reboot: [$greeting] [$keep]\nshow cmdline\n", env)
    assert r.status == 4, r  # show of an unset variable is an error in a script
    assert "[from-include] [1]" in r.stdout and "after reboot: [] [1]" in r.stdout, r
    r = load(["-m", "64M", "-h", str(host)],
             "read -p 'args? ' answer\nquiet x=$answer\nload /boot/vmlinuz $answer\n"
             "boot -s\n", env)
    assert r.status == 0, r
    check_boot(env, "quiet x=$answer single", [])  # read takes the line as it is


def test_nextboot_naming_a_missing_kernel_is_not_taken(tmp_path, env):
    root = linux_tree(tmp_path / "root", grub=GRUB_CFG,
                      nextboot='nextboot_enable="YES"\nbootfile="host0:/boot/nothing"\n')
    img = tmp_path / "disk.img"
    mkfs(root, img)
    r = load(["-m", "64M", "-d", str(img)], "boot\n", env)
    assert r.status == 0, r
    assert "host0:" in r.stdout and "Loading disk0:/boot/grub/grub.cfg" in r.stdout, r
    assert entry(env)["cmdline"].endswith("which=grub quoted arg")
