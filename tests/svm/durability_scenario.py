#!/usr/bin/python3
"""kill -9 of khyve under a Linux guest writing to ext4, inside the SVM test
host (tests/svm/test_durability_linux.py runs it; root).

The disk is ext4 (made here) on a dm-log-writes device
(tests/integration/logwrites.py). In each cycle the kit's kernel boots
with a guest script that mounts it and appends numbered lines to /log,
each followed by fsync (busybox `sync FILE`), printing "V: D n" once fsync
returned. khyve is killed with SIGKILL at a random moment while the guest
writes; the modes default, nocache and direct take turns. Then the image
a power cut at that moment would have left (only what a flush or FUA made
durable) is rebuilt from the log; a copy is mounted (the kernel replays
the journal), /log read and unmounted, and `e2fsck -fn` must find it
clean; every line the guest was told was durable must be in /log. The next
cycle boots from that power-cut image, as a host after a power cut would.

Prints one JSON object (the facts) on stdout.
usage: durability_scenario.py --khyve PATH --kit DIR [--cycles N] [--seed N]
"""
import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import logwrites  # noqa: E402

MODES = [("default", ""), ("nocache", ",nocache"), ("direct", ",direct")]
DISK = 64 << 20
LINE = re.compile(r"R (\d+) (\d+) x{40}")

GUEST_SCRIPT = r"""
V() { echo "V: $*"; }
mkdir -p /mnt
mount -t ext4 /dev/vda /mnt || { V mount failed; exit 1; }
n=START
V start
while :; do
  echo "R TAG $n xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" >> /mnt/log || { V append failed; exit 1; }
  sync /mnt/log || { V fsync failed; exit 1; }
  V D $n
  n=$((n + 1))
done
"""


def sh(*args, check=True, **kw):
    return subprocess.run(args, capture_output=True, text=True, check=check, **kw)


def read_log(image, work):
    """(records in /log, fsck status and output) of a copy of image, once
    the kernel replayed its journal."""
    copy = os.path.join(work, "check.img")
    with open(copy, "wb") as f:
        f.write(image)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    sh("mount", "-t", "ext4", "-o", "loop", copy, mnt)
    try:
        try:
            with open(os.path.join(mnt, "log"), "rb") as f:
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            text = ""
    finally:
        sh("umount", mnt)
    fsck = sh("e2fsck", "-fn", copy, check=False)
    records = {(int(m.group(1)), int(m.group(2))) for m in LINE.finditer(text)}
    return records, fsck.returncode, (fsck.stdout + fsck.stderr)[-1500:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--cycles", type=int, default=12)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    facts = {"seed": a.seed, "cycles": [], "lost": [], "fsck_failures": []}
    why = logwrites.load_modules()
    if why:
        facts["error"] = why
        print(json.dumps(facts))
        return 0
    work = tempfile.mkdtemp(prefix="khyve-durable-")
    data, log = os.path.join(work, "data.img"), os.path.join(work, "log.img")
    with open(data, "wb") as f:
        f.truncate(DISK)
    sh("mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", data)
    with open(data, "rb") as f:
        image = bytearray(f.read())
    with open(log, "wb") as f:
        f.truncate(512 << 20)
    disk = logwrites.LoggedDisk(data, log, f"khyve-durlin-{os.getpid()}")
    durable = set()  # every (tag, n) the guest was told was durable
    start = 1
    try:
        for cycle in range(1, a.cycles + 1):
            mode, opt = MODES[(cycle - 1) % len(MODES)]
            with open(data, "r+b") as f:
                f.write(image)
            disk.create()
            script = GUEST_SCRIPT.replace("START", str(start)).replace("TAG", str(cycle))
            append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(script.encode()).decode()
            out_path = os.path.join(work, "out")
            with open(out_path, "wb") as out:
                p = subprocess.Popen(
                    [a.khyve, "-c", "1", "-m", "256M", "-l", "com1,stdio", "-s", "0,hostbridge",
                     "-s", f"3,virtio-blk,{disk.path}{opt}", "-s", "31,lpc",
                     "--kernel", os.path.join(a.kit, "vmlinux"),
                     "--initrd", os.path.join(a.kit, "initramfs.cpio.gz"), "--append", append,
                     "durlin"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 180
            started = False
            while time.monotonic() < deadline and p.poll() is None:
                with open(out_path, errors="replace") as f:
                    if "V: start" in f.read():
                        started = True
                        break
                time.sleep(0.05)
            if started:
                time.sleep(rnd.uniform(0.0, 2.5))
            p.send_signal(signal.SIGKILL)
            p.wait()
            with open(out_path, errors="replace") as f:
                out = f.read()
            disk.remove()
            entries = disk.log()
            with open(data, "rb") as f:
                written = f.read()
            everything = bytearray(image)
            logwrites.replay(everything, entries, power_cut=False)
            log_matches = everything == written
            logwrites.replay(image, entries, power_cut=True)
            # Complete lines only: the kill may cut "V: D 457" to "V: D 4".
            whole = out[:out.rfind("\n") + 1]
            acked = [int(m.group(1)) for m in re.finditer(r"^V: D (\d+)\r?$", whole, re.M)]
            durable |= {(cycle, n) for n in acked}
            records, fsck, fsck_out = read_log(bytes(image), work)
            lost = sorted(durable - records)
            facts["cycles"].append({"mode": mode, "started": started, "acked": len(acked),
                                    "killed_status": p.returncode, "log_matches": log_matches,
                                    "fsck": fsck})
            if not started:
                facts.setdefault("not_started", []).append(out[-3000:])
            if lost:
                facts["lost"].append({"cycle": cycle, "mode": mode, "records": lost[:20]})
            if fsck:
                facts["fsck_failures"].append({"cycle": cycle, "mode": mode, "output": fsck_out})
            start = max(acked, default=start - 1) + 2  # past one that may be half-written
    finally:
        disk.close()
        shutil.rmtree(work, ignore_errors=True)
    facts["durable_records"] = len(durable)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
