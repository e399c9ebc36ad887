#!/usr/bin/python3
"""One Linux boot under khyve that uses every virtio device for real; run
inside the SVM test host (tests/svm/test_virtio_linux.py runs it).

It makes a network namespace with a tap (10.77.0.1/24 on the host end),
a blank 64 MiB disk image, a read-only "tools" image holding this host's
mkfs.ext4 and the libraries it needs (the kit's busybox has no ext4
mkfs), and a UNIX socket port for virtio-console. Then it boots the kit's
kernel with
  -s 0,hostbridge -s 2,virtio-net,TAP -s 3,virtio-blk,DISK
  -s 4,virtio-blk,TOOLS,ro -s 5,virtio-rnd -s 6,virtio-console,data=SOCK
  -s 31,lpc
and a guest script that: lists the bound virtio drivers; mkfs.ext4's the
disk, writes a random file, syncs and unmounts; reads /dev/hwrng; pings
the host end and moves 2 MiB over TCP each way; writes a line on the
console port and reads one back. Meanwhile this script serves the TCP and
console ends. Afterwards it runs e2fsck on the image and checks the file
with debugfs.

Prints one JSON object (the facts) on stdout.
usage: virtio_scenario.py --khyve PATH --kit DIR [--cpus N]
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

NS = "khyve-svm-net"
HOST_IP, GUEST_IP = "10.77.0.1", "10.77.0.2"
TCP_IN, TCP_OUT = 5000, 5001
BLOB = 2 << 20

GUEST_SCRIPT = r"""
V() { echo "V: $*"; }
for d in /sys/bus/virtio/drivers/*; do V driver $(basename $d) $(ls $d | grep -c '^virtio'); done
mkdir -p /tools /mnt
mount -o ro /dev/vdb /tools && V tools mounted
if /tools/ld-linux-x86-64.so.2 --library-path /tools/lib /tools/mkfs.ext4 -q -F -L khyvetest /dev/vda; then V mkfs ok; fi
if mount -t ext4 /dev/vda /mnt; then
  dd if=/dev/urandom of=/mnt/blob bs=64k count=32 2>/dev/null
  V disksum $(sha256sum /mnt/blob | cut -d' ' -f1)
  sync
  umount /mnt && V umount ok
fi
V rng $(cat /sys/class/misc/hw_random/rng_current)
V rngbytes $(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
ip link set eth0 up
ip addr add GUEST_IP/24 dev eth0
V mac $(cat /sys/class/net/eth0/address)
V ping $(ping -c 3 -W 3 HOST_IP | grep -o '[0-9]* packets received')
dd if=/dev/urandom of=/tmp/out bs=64k count=32 2>/dev/null
V sentsum $(sha256sum /tmp/out | cut -d' ' -f1)
nc HOST_IP TCP_IN </tmp/out && V sent ok
nc -l -p TCP_OUT </dev/null >/tmp/in
V recvsum $(sha256sum /tmp/in | cut -d' ' -f1)
for p in /sys/class/virtio-ports/*; do V port $(basename $p) $(cat $p/name); done
dev=/dev/$(grep -l '^data$' /sys/class/virtio-ports/*/name | cut -d/ -f5)
exec 3<>$dev
echo "hello over virtio-console" >&3 && V console sent
read -r line <&3
V console got $line
exec 3<&-
"""


def sh(*args, check=True, **kw):
    return subprocess.run(args, capture_output=True, text=True, check=check, **kw)


def rerun_in_netns(ns, taps, host_ip):
    """Run this script again (with --inside-netns) in a fresh network
    namespace ns holding the taps, each (name, extra `ip tuntap` words),
    with host_ip/24 on the first; the namespace is deleted afterwards.
    Returns the inner run's exit status."""
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for name, extra in taps:
            sh("ip", "-n", ns, "tuntap", "add", "dev", name, "mode", "tap", *extra)
        sh("ip", "-n", ns, "addr", "add", f"{host_ip}/24", "dev", taps[0][0])
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                            os.path.abspath(sys.argv[0]), "--inside-netns", *sys.argv[1:]])
        return p.returncode
    finally:
        sh("ip", "netns", "del", ns, check=False)


def tools_image(path, work):
    """An ext2 image with mkfs.ext4, its libraries and the dynamic loader."""
    root = os.path.join(work, "tools-root")
    os.makedirs(os.path.join(root, "lib"))
    mke2fs = os.path.realpath(shutil.which("mke2fs") or "/sbin/mke2fs")
    shutil.copy(mke2fs, os.path.join(root, "mkfs.ext4"))
    for line in sh("ldd", mke2fs).stdout.splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if not lib.startswith("/"):
            continue
        name = "ld-linux-x86-64.so.2" if "ld-linux" in lib else os.path.join("lib", os.path.basename(lib))
        shutil.copy(os.path.realpath(lib), os.path.join(root, name))
    sh("mke2fs", "-q", "-F", "-t", "ext2", "-d", root, path, "16M")


def serve_tcp_in(facts, ready):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST_IP, TCP_IN))
    s.listen(1)
    s.settimeout(240)
    ready.set()
    try:
        c, _ = s.accept()
        h = hashlib.sha256()
        n = 0
        c.settimeout(120)
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        c.close()
        facts["host_received_bytes"] = n
        facts["host_received_sum"] = h.hexdigest()
    except OSError as e:
        facts["tcp_in_error"] = str(e)


def serve_tcp_out(facts, stop):
    data = os.urandom(BLOB)
    facts["host_sent_sum"] = hashlib.sha256(data).hexdigest()
    while not stop.is_set():
        try:
            c = socket.create_connection((GUEST_IP, TCP_OUT), timeout=2)
        except OSError:
            time.sleep(0.3)
            continue
        try:
            c.settimeout(120)
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass
            facts["host_sent_bytes"] = len(data)
        except OSError as e:
            facts["tcp_out_error"] = str(e)
        c.close()
        return


def serve_console(path, facts, stop):
    while not stop.is_set():
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    else:
        return
    c.settimeout(240)
    got = b""
    try:
        while b"\n" not in got:
            b = c.recv(1024)
            if not b:
                break
            got += b
        facts["console_from_guest"] = got.decode(errors="replace").strip()
        c.sendall(b"hello from the host\n")
        time.sleep(5)
    except OSError as e:
        facts["console_error"] = str(e)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--cpus", default="2")
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--inside-netns", action="store_true")
    a = ap.parse_args()
    if not a.inside_netns:
        return rerun_in_netns(NS, [("ktap0", [])], HOST_IP)

    work = tempfile.mkdtemp(prefix="khyve-virtio-")
    facts = {}
    disk = os.path.join(work, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    tools = os.path.join(work, "tools.img")
    tools_image(tools, work)
    sock = os.path.join(work, "console.sock")
    script = GUEST_SCRIPT.replace("GUEST_IP", GUEST_IP).replace("HOST_IP", HOST_IP) \
        .replace("TCP_IN", str(TCP_IN)).replace("TCP_OUT", str(TCP_OUT))
    append = ("console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(script.encode()).decode())
    args = [a.khyve, "-c", a.cpus, "-m", "512M", "-l", "com1,stdio",
            "-s", "0,hostbridge", "-s", "2,virtio-net,ktap0", "-s", f"3,virtio-blk,{disk}",
            "-s", f"4,virtio-blk,{tools},ro", "-s", "5,virtio-rnd",
            "-s", f"6,virtio-console,data={sock}", "-s", "31,lpc",
            "--kernel", os.path.join(a.kit, "vmlinux"),
            "--initrd", os.path.join(a.kit, "initramfs.cpio.gz"), "--append", append, "linux-virtio"]
    ready, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=serve_tcp_in, args=(facts, ready), daemon=True),
               threading.Thread(target=serve_tcp_out, args=(facts, stop), daemon=True),
               threading.Thread(target=serve_console, args=(sock, facts, stop), daemon=True)]
    threads[0].start()
    ready.wait(10)
    start = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    for t in threads[1:]:
        t.start()
    try:
        out, err = p.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        facts["timeout"] = True
    stop.set()
    facts["seconds"] = round(time.monotonic() - start, 1)
    facts["status"] = p.returncode
    facts["stdout"] = out[-6000:]
    facts["stderr"] = err[-3000:]
    facts["guest"] = [l[3:].strip() for l in out.splitlines() if l.startswith("V: ")]
    fsck = sh("e2fsck", "-fn", disk, check=False)
    facts["fsck_status"] = fsck.returncode
    facts["fsck_output"] = (fsck.stdout + fsck.stderr)[-1500:]
    cat = subprocess.run(["debugfs", "-R", "cat /blob", disk], capture_output=True)
    facts["host_disk_sum"] = hashlib.sha256(cat.stdout).hexdigest()
    facts["host_disk_bytes"] = len(cat.stdout)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
