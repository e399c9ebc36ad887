"""vmrun with the Linux kit, inside the SVM test host: an ext4 disk made
with mke2fs -d holding the kit's vmlinux and initramfs and a grub.cfg that
names them; vmrun (on a pty, so khyveload shows its prompt and autoboots)
loads it through grub.cfg's default entry and runs it with the disk on
virtio-blk. The guest marks the disk and reboots the first time, so vmrun
loads and runs it again; the second time it powers off and vmrun exits 1
with the VM destroyed. One test-host boot for the two Linux boots."""
import base64
import os
import shutil
import subprocess
import sys

import pytest

from conftest import svm_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")

# First boot: mark the disk and reboot; second: say so (and power off).
CMD = ("mount -t ext4 /dev/vda /mnt && "
       "if [ -e /mnt/booted ]; then echo VR-SECOND-BOOT; umount /mnt; "
       "else touch /mnt/booted && umount /mnt && echo VR-FIRST-BOOT && reboot -f; fi")

# Runs inside the test host: vmrun on a pty.
DRIVER = """
import os, sys, pexpect
env = dict(os.environ, KHYVE_RUNDIR="/run/vmrun-test")
p = pexpect.spawn(sys.argv[1], ["-c", "1", "-m", "512M", "-d", sys.argv[2],
                  "-e", "autoboot_delay=0", "vm0"], env=env, encoding="utf-8",
                  codec_errors="replace", timeout=300)
p.logfile_read = sys.stdout
p.expect(pexpect.EOF)
p.close()
print("VR-VMRUN-EXIT", p.exitstatus)
left = [n for n in os.listdir("/run/vmrun-test") if n != "locks"]
print("VR-LEFT", left)
"""


def make_disk(tmp_path):
    root = tmp_path / "root"
    (root / "boot" / "grub").mkdir(parents=True)
    shutil.copy(os.path.join(KIT, "vmlinux"), root / "boot" / "vmlinux")
    shutil.copy(os.path.join(KIT, "initramfs.cpio.gz"), root / "boot" / "initramfs.cpio.gz")
    cmd64 = base64.b64encode(CMD.encode()).decode()
    (root / "boot" / "grub" / "grub.cfg").write_text(
        "set default=0\nset timeout=5\n"
        "menuentry 'khyve kit' {\n"
        f"\tlinux /boot/vmlinux console=ttyS0 quiet khyve.cmd64={cmd64}\n"
        "\tinitrd /boot/initramfs.cpio.gz\n}\n")
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(96 << 20)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(root), str(img)], check=True,
                   capture_output=True)
    return img


def test_kit_autoboots_from_ext4_through_vmrun(tmp_path):
    if not os.path.exists(os.path.join(KIT, "vmlinux")):
        pytest.fail(f"the Linux kit is not built: {KIT} (scripts/linux-kit)")
    img = make_disk(tmp_path)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    vmrun = os.path.join(REPO, "build", "src", "cmd", "vmrun")
    script = f"cp {img} /tmp/vmrun-disk.img && {sys.executable} {driver} {vmrun} /tmp/vmrun-disk.img"
    p = svm_run(["sh", "-c", script], cwd=REPO, share=[tmp_path], timeout=420)
    out = p.stdout.replace("\r", "")
    why = f"exit {p.returncode}\n--- stdout\n{out[-6000:]}\n--- stderr\n{p.stderr[-3000:]}"
    # Two loads by grub.cfg's default entry, two runs of the kit.
    assert out.count("Loading disk0:/boot/grub/grub.cfg entry 'khyve kit'") == 2, why
    assert out.count("KHYVE-KIT: up") == 2, why
    first, second = out.split("KHYVE-KIT: up")[1:]
    assert "VR-FIRST-BOOT" in first and "VR-SECOND-BOOT" not in first, why
    assert "VR-SECOND-BOOT" in second, why
    assert "VR-VMRUN-EXIT 1" in out, why
    assert "VR-LEFT []" in out, why
