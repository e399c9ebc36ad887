#!/usr/bin/python3
"""A Linux guest under khyve mounts a virtio-fs share served by a real
virtiofsd (Debian's /usr/lib/qemu/virtiofsd); run inside the SVM test host
(tests/svm/test_virtiofs_linux.py runs it).

1. virtiofsd serves a fresh directory holding fromhost.txt and doomed.txt;
   khyve boots the kit (with fuse and virtiofs appended to its initramfs:
   khyvekit.modules_overlay) with
     -s 5,virtio-fs,socket=SOCK,tag=hostshare
   The guest mounts it (`mount -t virtiofs hostshare /mnt`), reads the
   host's file, creates, writes, renames and deletes files and a
   directory, syncs and prints a checkpoint. The host then checks what it
   sees in the directory, kills virtiofsd (SIGKILL), and the guest, which
   keeps opening a file, reports the error it gets; then it tries a write
   and a listing, and powers off. khyve must still be running then and end
   with the guest's poweroff.
2. Sockets that are not vhost-user back ends: one that never answers and
   one that answers garbage. khyve must fail at start with exit 4 and a
   one-line reason, within its timeout.

Prints one JSON object (the facts) on stdout.
usage: virtiofs_scenario.py --khyve PATH --kit DIR
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
import khyvekit as K  # noqa: E402

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
TAG = "hostshare"

GUEST_SCRIPT = r"""
V() { echo "V: $*"; }
mkdir -p /mnt
if mount -t virtiofs hostshare /mnt; then V mounted; else V mount failed; fi
V fromhost $(cat /mnt/fromhost.txt)
echo "written by the guest" > /mnt/new.txt && V wrote new
mv /mnt/new.txt /mnt/renamed.txt && V renamed
mkdir /mnt/gdir && echo inner > /mnt/gdir/inner.txt && V mkdir
rm /mnt/doomed.txt && V deleted
dd if=/dev/urandom of=/mnt/blob bs=64k count=16 2>/dev/null
V blobsum $(sha256sum /mnt/blob | cut -d' ' -f1)
sync
V listing $(ls /mnt | tr '\n' ' ')
V checkpoint
n=0
while cat /mnt/renamed.txt >/dev/null 2>/tmp/err; do
  n=$((n+1)); [ $n -gt 600 ] && break
  sleep 0.2
done
V readerror $(cat /tmp/err)
if { echo more > /mnt/after.txt; } 2>/tmp/err2; then V write after death worked; else V writeerror $(cat /tmp/err2); fi
if ls /mnt/gdir >/dev/null 2>/tmp/err3; then V ls after death worked; else V lserror $(cat /tmp/err3); fi
V end
"""


def sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def start_virtiofsd(sock, src):
    p = subprocess.Popen([VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={src}",
                          "-o", "cache=auto", "-o", "sandbox=chroot"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(500):
        if os.path.exists(sock):
            return p
        time.sleep(0.01)
    p.kill()
    raise RuntimeError("virtiofsd made no socket")


def host_view(src):
    v = {}
    for name in ("renamed.txt", "new.txt", "doomed.txt", "gdir/inner.txt", "blob"):
        path = os.path.join(src, name)
        v[name] = None
        if os.path.exists(path):
            v[name] = sha256(path) if name == "blob" else open(path).read()
    return v


def scenario_share(a, work, facts):
    src = os.path.join(work, "share")
    os.makedirs(src)
    with open(os.path.join(src, "fromhost.txt"), "w") as f:
        f.write("hello from the host\n")
    with open(os.path.join(src, "doomed.txt"), "w") as f:
        f.write("delete me\n")
    initrd = os.path.join(work, "initrd")
    facts["modules_added"] = K.kit_initramfs_with(a.kit, ["virtiofs"], initrd)
    sock = os.path.join(work, "vfsd.sock")
    vfsd = start_virtiofsd(sock, src)
    append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(GUEST_SCRIPT.encode()).decode()
    args = [a.khyve, "-c", "1", "-m", "512M", "-l", "com1,stdio", "-s", "0,hostbridge",
            "-s", f"5,virtio-fs,socket={sock},tag={TAG}", "-s", "31,lpc",
            "--kernel", os.path.join(a.kit, "vmlinux"), "--initrd", initrd,
            "--append", append, "linux-virtiofs"]
    facts["khyve_args"] = args
    t0 = time.monotonic()
    k = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    guest, err = [], []
    threading.Thread(target=lambda: err.extend(k.stderr), daemon=True).start()
    timed_out = []
    timer = threading.Timer(a.timeout, lambda: (timed_out.append(1), k.kill()))
    timer.start()
    for line in k.stdout:
        line = line.rstrip("\r\n")
        if line.startswith("V: "):
            guest.append(line[3:])
        if line == "V: checkpoint":
            facts["host_view"] = host_view(src)
            vfsd.send_signal(signal.SIGKILL)
            vfsd.wait()
            facts["virtiofsd_killed_at"] = round(time.monotonic() - t0, 1)
            # khyve is alive and its guest still runs
            facts["khyve_alive_after_kill"] = k.poll() is None
    k.wait()
    timer.cancel()
    facts["timeout"] = bool(timed_out)
    facts["status"] = k.returncode
    facts["guest"] = guest
    facts["stderr"] = "".join(err)[-4000:]
    facts["seconds"] = round(time.monotonic() - t0, 1)
    facts["host_after"] = host_view(src)
    if vfsd.poll() is None:
        vfsd.kill()


def serve_garbage(lsock):
    try:
        c, _ = lsock.accept()
        c.recv(64)
        c.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot vhost-user at all\n")
        time.sleep(2)
        c.close()
    except OSError:
        pass


def scenario_not_vhost_user(a, work, facts):
    for kind in ("silent", "garbage"):
        path = os.path.join(work, f"{kind}.sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(4)
        if kind == "garbage":
            threading.Thread(target=serve_garbage, args=(ls,), daemon=True).start()
        args = [a.khyve, "-m", "128M", "-s", "0,hostbridge",
                "-s", f"5,virtio-fs,socket={path},tag=x", "-s", "31,lpc",
                "--kernel", os.path.join(a.kit, "vmlinux"), "notvu"]
        t0 = time.monotonic()
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            facts[kind] = {"status": p.returncode, "stderr": p.stderr,
                           "seconds": round(time.monotonic() - t0, 1)}
        except subprocess.TimeoutExpired:
            facts[kind] = {"status": None, "hung": True}
        ls.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--timeout", type=int, default=240)
    a = ap.parse_args()
    os.environ.setdefault("KHYVE_KIT_DIR", os.path.dirname(os.path.abspath(a.kit)))
    facts = {}
    work = tempfile.mkdtemp(prefix="khyve-virtiofs-")
    try:
        scenario_not_vhost_user(a, work, facts)
        scenario_share(a, work, facts)
    except Exception as e:  # the facts say what happened
        facts["error"] = repr(e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
