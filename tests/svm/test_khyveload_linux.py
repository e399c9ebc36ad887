"""khyveload with the Linux kit, inside the SVM test host: a partitioned
ext4 disk with a Debian-style grub.cfg, booted by autoboot and then run by
`khyve NAME` with the disk on virtio-blk. The guest itself asks for a
one-shot kernel with scripts/khyve-nextboot; the next autoboot takes it,
the one after boots grub.cfg's default again.

One test-host boot for the three Linux boots."""
import base64
import os
import shutil
import struct
import subprocess

import pytest

from conftest import INSIDE, svm_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")


def b64(cmd):
    return base64.b64encode(cmd.encode()).decode()


# The grub.cfg default's command: the first time, ask for the one-shot
# kernel from inside the guest; every time, say which entry ran.
FIRST = ("mount -t ext4 /dev/vda1 /mnt && "
         "if [ ! -e /mnt/asked ]; then touch /mnt/asked && "
         "sh /mnt/khyve-nextboot -r /mnt -k /boot/vmlinuz-next -i /boot/initrd.img-next "
         f"-c 'console=ttyS0 quiet khyve.cmd64={b64('echo KL-RAN=nextboot')}' && "
         "echo KL-ASKED; fi; umount /mnt; echo KL-RAN=grub")


def make_disk(tmp_path):
    root = tmp_path / "root"
    (root / "boot" / "grub").mkdir(parents=True)
    for name in ("6.1", "next"):
        shutil.copy(os.path.join(KIT, "bzImage"), root / "boot" / f"vmlinuz-{name}")
        shutil.copy(os.path.join(KIT, "initramfs.cpio.gz"), root / "boot" / f"initrd.img-{name}")
    shutil.copy(os.path.join(REPO, "scripts", "khyve-nextboot"), root / "khyve-nextboot")
    (root / "boot" / "grub" / "grub.cfg").write_text(
        "if [ \"${next_entry}\" ] ; then\n set default=\"${next_entry}\"\nelse\n"
        " set default=\"0\"\nfi\n"
        "menuentry 'Debian GNU/Linux' $menuentry_id_option 'gnulinux-simple' {\n"
        "\tinsmod ext2\n\tset root='hd0,msdos1'\n"
        f"\tlinux\t/boot/vmlinuz-6.1 root=/dev/vda1 ro console=ttyS0 quiet khyve.cmd64={b64(FIRST)}\n"
        "\tinitrd\t/boot/initrd.img-6.1\n}\n")
    img = tmp_path / "disk.img"
    size_mb = 64
    with open(img, "wb") as f:
        f.truncate((size_mb + 1) << 20)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-E", f"offset={1 << 20}", "-d", str(root),
                    str(img), f"{size_mb}M"], check=True, capture_output=True)
    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0x80, b"\0\0\0", 0x83, b"\0\0\0", 2048,
                     (size_mb << 20) // 512)
    mbr[510:512] = b"\x55\xaa"
    with open(img, "r+b") as f:
        f.write(mbr)
    return img


def test_kit_autoboots_from_grub_cfg_and_nextboot_is_used_once(tmp_path):
    img = make_disk(tmp_path)
    kl = os.path.join(REPO, "build", "src", "cmd", "khyveload")
    kh = os.path.join(REPO, "build", "src", "cmd", "khyve")
    script = f"""
export KHYVE_RUNDIR=/run/khyveload-test
cp {img} /tmp/disk.img
for i in 1 2 3; do
  echo "KL-ROUND $i"
  echo autoboot | {kl} -m 512M -d /tmp/disk.img vm0 || echo "KL-LOAD-FAILED $?"
  {kh} -c 1 -m 512M -s 0,hostbridge -s 3,virtio-blk,/tmp/disk.img -s 31,lpc -l com1,stdio vm0 </dev/null
  echo "KL-EXIT $?"
done
"""
    p = svm_run(["sh", "-c", script], cwd=REPO, share=[tmp_path], timeout=420)
    out = p.stdout
    why = f"exit {p.returncode}\n--- stdout\n{out[-6000:]}\n--- stderr\n{p.stderr[-3000:]}"
    rounds = out.split("KL-ROUND ")[1:]
    assert len(rounds) == 3, why
    assert "KL-LOAD-FAILED" not in out, why
    # 1: grub.cfg's default entry, which asks for the one-shot kernel.
    assert "Loading disk0p1:/boot/grub/grub.cfg entry 'Debian GNU/Linux'" in rounds[0], why
    assert "KL-ASKED" in rounds[0] and "KL-RAN=grub" in rounds[0], why
    # 2: the one-shot kernel, once; the file is disabled on the disk.
    assert "taken once, now disabled" in rounds[1], why
    assert "KL-RAN=nextboot" in rounds[1] and "KL-RAN=grub" not in rounds[1], why
    # 3: grub.cfg's default again, without asking again.
    assert "KL-RAN=grub" in rounds[2] and "KL-ASKED" not in rounds[2], why
    for r in rounds:
        assert "KHYVE-KIT: up" in r and "KL-EXIT 1" in r, why  # the kit powers off
