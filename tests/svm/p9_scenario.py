#!/usr/bin/python3
"""One Linux boot under khyve with two virtio-9p shares; run inside the SVM
test host (tests/svm/test_p9_linux.py runs it).

Debian's generic kernel (the SVM host's own: the cloud kernel has no 9p)
boots with an initramfs from khyvekit.generic_guest_initramfs and
  -s 3,virtio-9p,work=RW -s 4,virtio-9p,src=RO,ro
where RW and RO are fresh directories in a work directory that also
holds "secret" beside them, and symlinks in RW point out (to /etc, to
../secret, through ../..). The guest mounts both with
  mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt/TAG
reads what the host put there; creates, writes, appends, renames, makes
and removes directories, deletes, hard-links, symlinks, truncates; tries
to write on the ro share; and tries to get out through the symlinks and
"..". Every step prints "V: ..." lines. Afterwards this script looks at
both directories from the host side.

Prints one JSON object (the facts) on stdout.
usage: p9_scenario.py --khyve PATH --kernel VMLINUX --initrd INITRAMFS
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

GUEST_SCRIPT = r"""
V() { echo "V: $*"; }
mkdir -p /mnt/work /mnt/src
mount -t 9p -o trans=virtio,version=9p2000.L work /mnt/work && V mounted work
mount -t 9p -o trans=virtio,version=9p2000.L src /mnt/src && V mounted src
grep ' 9p ' /proc/mounts | while read -r dev mnt fs opts rest; do V mount $dev $mnt $opts; done
V hostfile "$(cat /mnt/work/from-host.txt)"
V rofile "$(cat /mnt/src/readme.txt)"
V rols $(ls /mnt/src | sort)
cd /mnt/work
echo "created by the guest" > created.txt && V created
echo "more" >> created.txt && V appended
printf 'x%.0s' $(seq 1 100000) > big.bin && V big $(wc -c < big.bin)
mkdir -p d1/d2 && V mkdir
echo inner > d1/d2/inner.txt && mv d1/d2/inner.txt d1/moved.txt && V renamed
mv d1 d3 && V dir renamed
echo gone > doomed.txt && rm doomed.txt && V deleted
mkdir emptydir && rmdir emptydir && V rmdir
ln created.txt hardlink.txt && V hardlink $(stat -c %h created.txt)
ln -s created.txt symlink.txt && V symlink $(readlink symlink.txt) "$(cat symlink.txt)"
echo 0123456789 > trunc.txt && truncate -s 4 trunc.txt && V truncated "$(cat trunc.txt)"
chmod 640 trunc.txt && V chmod $(stat -c %a trunc.txt)
touch -d '2001-02-03 04:05:06' trunc.txt && V touch $(stat -c %Y trunc.txt)
V ls $(ls /mnt/work | sort | tr '\n' ' ')
n=0; for f in $(seq 1 200); do echo $f > many.$f; done; V many $(ls | grep -c '^many\.')
rm -f many.*
# the read-only share refuses writes with EROFS
echo x 2>/tmp/err > /mnt/src/new.txt; V ro create "$(cat /tmp/err)"
rm /mnt/src/readme.txt 2>/tmp/err; V ro rm "$(cat /tmp/err)"
mkdir /mnt/src/newdir 2>/tmp/err; V ro mkdir "$(cat /tmp/err)"
mv /mnt/src/readme.txt /mnt/src/r2 2>/tmp/err; V ro mv "$(cat /tmp/err)"
# escapes: the guest resolves symlinks and .. itself, inside its own tree
V esc1 "$(cat /mnt/work/secretlink 2>&1)"
V esc2 "$(cat /mnt/work/etclink/passwd 2>&1)"
V esc3 "$(cat /mnt/work/../secret 2>&1)"
V esc4 "$(cat /mnt/work/dir/up/secret 2>&1)"
V esc5 "$(ls /mnt/work/../.. | tr '\n' ' ')"
cd /
sync
umount /mnt/work && V umount work
umount /mnt/src && V umount src
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--timeout", type=int, default=240)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="khyve-p9-")
    rw, ro = os.path.join(work, "rw"), os.path.join(work, "ro")
    os.makedirs(os.path.join(rw, "dir"))
    os.makedirs(ro)
    with open(os.path.join(work, "secret"), "w") as f:
        f.write("host secret\n")
    with open(os.path.join(rw, "from-host.txt"), "w") as f:
        f.write("written by the host\n")
    with open(os.path.join(ro, "readme.txt"), "w") as f:
        f.write("read only\n")
    os.symlink("../secret", os.path.join(rw, "secretlink"))
    os.symlink("/etc", os.path.join(rw, "etclink"))
    os.symlink("../..", os.path.join(rw, "dir", "up"))
    # The guest script comes on a third share (a kernel command line holds
    # 2 KiB at most).
    tools = os.path.join(work, "tools")
    os.makedirs(tools)
    with open(os.path.join(tools, "guest.sh"), "w") as f:
        f.write(GUEST_SCRIPT)
    facts = {}
    cmd = "mkdir -p /t && mount -t 9p -o trans=virtio,version=9p2000.L,ro t /t && sh /t/guest.sh"
    append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(cmd.encode()).decode()
    args = [a.khyve, "-c", "1", "-m", "512M", "-l", "com1,stdio",
            "-s", "0,hostbridge", "-s", f"3,virtio-9p,work={rw}", "-s", f"4,virtio-9p,src={ro},ro",
            "-s", f"5,virtio-9p,t={tools},ro", "-s", "31,lpc", "--kernel", a.kernel, "--initrd", a.initrd, "--append", append,
            "linux-p9"]
    start = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = p.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        facts["timeout"] = True
    facts["seconds"] = round(time.monotonic() - start, 1)
    facts["status"] = p.returncode
    facts["stdout"] = out[-6000:]
    facts["stderr"] = err[-3000:]
    facts["guest"] = [l[3:].strip() for l in out.splitlines() if l.startswith("V: ")]

    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"<{e.strerror}>"

    facts["host_rw"] = sorted(os.listdir(rw))
    facts["host_ro"] = sorted(os.listdir(ro))
    facts["host_created"] = read(os.path.join(rw, "created.txt"))
    facts["host_moved"] = read(os.path.join(rw, "d3", "moved.txt"))
    facts["host_d3"] = sorted(os.listdir(os.path.join(rw, "d3"))) if os.path.isdir(os.path.join(rw, "d3")) else None
    facts["host_big"] = os.path.getsize(os.path.join(rw, "big.bin")) if os.path.exists(os.path.join(rw, "big.bin")) else -1
    facts["host_trunc"] = read(os.path.join(rw, "trunc.txt"))
    st = os.lstat(os.path.join(rw, "trunc.txt")) if os.path.exists(os.path.join(rw, "trunc.txt")) else None
    facts["host_trunc_mode"] = oct(st.st_mode & 0o7777) if st else None
    facts["host_trunc_mtime"] = int(st.st_mtime) if st else None
    facts["host_symlink"] = os.readlink(os.path.join(rw, "symlink.txt")) if os.path.islink(os.path.join(rw, "symlink.txt")) else None
    facts["host_hardlinks"] = os.stat(os.path.join(rw, "created.txt")).st_nlink if os.path.exists(os.path.join(rw, "created.txt")) else 0
    facts["host_secret"] = read(os.path.join(work, "secret"))
    facts["host_work"] = sorted(os.listdir(work))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
