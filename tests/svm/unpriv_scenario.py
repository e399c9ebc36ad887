#!/usr/bin/python3
"""virtio-fs and khyve-run as a user in the kvm group, not root (issue 13
item 2); run as root inside the SVM test host, which makes the user
(tests/integration/unpriv_user.py) and runs everything else as it
(tests/svm/test_unprivileged_linux.py runs it).

1. virtiofs: the user starts Debian's virtiofsd itself, the way khyve(8)
   shows: on a listening socket it made (--fd; with --socket-path this
   virtiofsd writes a pid file under /var/run/virtiofsd, which only root
   may), under `unshare -r` (a user namespace in which the user is root:
   virtiofsd needs CAP_SYS_CHROOT and CAP_SETUID/CAP_SETGID there, and
   the guest's root maps to the user) with -o sandbox=chroot. khyve, run
   by the user, boots the kit with -s 5,virtio-fs,socket=SOCK,tag=ushare;
   the guest mounts the share, reads the host's file, creates, writes,
   renames and deletes, and tries root's 0600 file. The host then looks
   at what the guest made. Then the same virtiofsd under a plain
   `unshare -r` (no subordinate ids): it exits at start, and khyve says
   the back end hung up.
2. khyve_run: `khyve-run -- sh -c 'id -u; echo hi > x; exit 7'` run by
   the user in a directory of its own (--rw); once more with the command
   writing into a directory the user may not write; and as a user without
   subordinate ids, for whom virtiofsd cannot run: refused in one line with
   the cloud kernel (no 9p), 9p instead with the generic kernel.

Prints one JSON object (the facts) on stdout.
usage: unpriv_scenario.py --khyve PATH --kit DIR [--only PART]
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import khyvekit as K  # noqa: E402
import unpriv_user as U  # noqa: E402

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
TAG = "ushare"

GUEST_SCRIPT = r"""
V() { echo "V: $*"; }
mkdir -p /mnt
if mount -t virtiofs ushare /mnt; then V mounted; else V mount failed; fi
V fromhost $(cat /mnt/fromhost.txt)
echo "written by the guest" > /mnt/new.txt && V wrote new
mkdir /mnt/gdir && echo inner > /mnt/gdir/inner.txt && V mkdir
mv /mnt/gdir/inner.txt /mnt/gdir/moved.txt && V renamed
rm /mnt/doomed.txt && V deleted
V owner $(stat -c %u:%g /mnt/new.txt)
if cat /mnt/private.txt 2>/tmp/e; then V private readable; else V privateerr $(cat /tmp/e); fi
if echo x >> /mnt/private.txt 2>/tmp/e; then V private writable; else V privatewerr $(cat /tmp/e); fi
sync
V end
"""

# What the user types: a listening socket handed to virtiofsd as fd 3
# (systemd-socket-activate, or the same in Python where it is missing), and
# virtiofsd in a user namespace of newuidmap's making.
LISTEN = ("import os, socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); "
          "s.listen(1); os.dup2(s.fileno(), 3); os.execvp(sys.argv[2], sys.argv[2:])")


def virtiofsd_argv(sock, src, sandbox, subids=True):
    if shutil.which("systemd-socket-activate"):
        listen = ["systemd-socket-activate", "-l", sock]
    else:
        listen = ["/usr/bin/python3", "-c", LISTEN, sock]
    ns = ["unshare", "--map-root-user"] + (["--map-auto"] if subids else [])
    return listen + ns + ["--", VIRTIOFSD, "--fd=3", "-o", f"source={src}", "-o", "cache=auto"] + \
        ([] if sandbox == "namespace" else ["-o", f"sandbox={sandbox}"])


def start_virtiofsd(user, sock, src, log, sandbox, subids=True):
    argv = virtiofsd_argv(sock, src, sandbox, subids)
    with open(log, "wb") as f:
        p = subprocess.Popen(U.as_user_argv(user, argv), stdin=subprocess.DEVNULL,
                             stdout=f, stderr=subprocess.STDOUT, env=U.user_env())
    for _ in range(500):
        if os.path.exists(sock):
            return p, argv
        if p.poll() is not None:
            break
        time.sleep(0.01)
    p.kill()
    raise RuntimeError(f"virtiofsd made no socket: {open(log).read()}")


def owner(path):
    st = os.lstat(path)
    return [st.st_uid, st.st_gid]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return repr(e)


def part_virtiofs(a, user, facts):
    d = U.user_dir(user, "vfs")
    src = os.path.join(d, "share")
    os.makedirs(src)
    for name, text in (("fromhost.txt", "hello from the host\n"), ("doomed.txt", "delete me\n")):
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
        os.chown(os.path.join(src, name), U.UID, U.GID)
    os.chown(src, U.UID, U.GID)
    private = os.path.join(src, "private.txt")
    with open(private, "w") as f:
        f.write("root's own\n")
    os.chmod(private, 0o600)
    work = tempfile.mkdtemp(prefix="khyve-unpriv-")
    os.chmod(work, 0o755)
    initrd = os.path.join(work, "initrd")
    K.kit_initramfs_with(a.kit, ["virtiofs"], initrd)
    os.chmod(initrd, 0o644)
    sock = os.path.join(U.XDG, "vfs.sock")
    vfsd, facts["virtiofsd_argv"] = start_virtiofsd(user, sock, src, os.path.join(work, "vfsd"),
                                                    a.sandbox)
    append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(GUEST_SCRIPT.encode()).decode()
    args = [a.khyve, "-c", "1", "-m", "512M", "-l", "com1,stdio", "-s", "0,hostbridge",
            "-s", f"5,virtio-fs,socket={sock},tag={TAG}", "-s", "31,lpc",
            "--kernel", os.path.join(a.kit, "vmlinux"), "--initrd", initrd,
            "--append", append, "-D", "uvfs"]
    t0 = time.monotonic()
    try:
        r = U.as_user(user, args, timeout=a.timeout)
        facts["status"], out, facts["stderr"] = r.returncode, r.stdout, r.stderr[-4000:]
    except subprocess.TimeoutExpired as e:
        facts["timeout"] = True
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
    facts["seconds"] = round(time.monotonic() - t0, 1)
    facts["guest"] = [l.rstrip("\r")[3:] for l in out.splitlines() if l.startswith("V: ")]
    if vfsd.poll() is None:
        vfsd.kill()
    vfsd.wait()
    facts["virtiofsd_log"] = read(os.path.join(work, "vfsd"))[-2000:]
    # Without subordinate ids (plain unshare -r), virtiofsd exits as it
    # starts: it may not drop the user's groups. khyve says the back end
    # hung up, in one line, at once.
    sock2 = os.path.join(U.XDG, "vfs-plain.sock")
    log2 = os.path.join(work, "vfsd-plain")
    vfsd2, _ = start_virtiofsd(user, sock2, src, log2, a.sandbox, subids=False)
    r = U.as_user(user, [a.khyve, "-m", "128M", "-s", "0,hostbridge",
                         "-s", f"5,virtio-fs,socket={sock2},tag={TAG}", "-s", "31,lpc",
                         "--kernel", os.path.join(a.kit, "vmlinux"), "-D", "uvfs2"],
                  timeout=60)
    facts["plain"] = {"status": r.returncode, "stderr": r.stderr}
    if vfsd2.poll() is None:
        vfsd2.kill()
    vfsd2.wait()
    facts["plain"]["virtiofsd_log"] = read(log2)[-2000:]
    shutil.rmtree(work, ignore_errors=True)
    facts["host"] = {
        "listing": sorted(os.listdir(src)),
        "new": read(os.path.join(src, "new.txt")),
        "moved": read(os.path.join(src, "gdir", "moved.txt")),
        "owners": {p: owner(os.path.join(src, p)) for p in ("new.txt", "gdir", "gdir/moved.txt")
                   if os.path.lexists(os.path.join(src, p))},
        "private": read(private),
        "private_owner": owner(private),
    }


def kit_kernel(kit_root, which):
    kenv = K.read_env(os.path.join(kit_root, which, "kit.env"))
    return os.path.join(kit_root, "pkgs", kenv["KERNEL_PACKAGE"], "boot",
                        f"vmlinuz-{kenv['KERNEL_VERSION']}")


def part_khyve_run(a, user, facts):
    """khyve-run as the user, its kernels the kits', its cache the user's."""
    kit_root = os.path.dirname(os.path.abspath(a.kit))
    cloud = kit_kernel(kit_root, "linux")  # virtio-fs, no 9p
    generic = kit_kernel(kit_root, "svm")  # virtio-fs and 9p
    khyve_run = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(a.khyve))),
                             "khyve-run")
    work = U.user_dir(user, "krun")
    locked = os.path.join(work, "locked")
    os.makedirs(locked)  # root's, 0755: the user may not write in it
    # Without subordinate ids (no /etc/subuid or /etc/subgid entry):
    # virtiofsd cannot drop the user's groups.
    bare = {k: v for k, v in user.items() if k not in ("subuid", "subgid")}
    for name, who, kernel, script in (
            ("run", user, cloud, "id -u; echo hi > x; exit 7"),
            ("locked", user, cloud, "echo no > locked/y; echo status $?"),
            ("nosubids", bare, cloud, "echo ran"),
            ("fallback9p", bare, generic,
             "grep -c ' 9p ' /proc/mounts; grep -c virtiofs /proc/mounts; id -u; "
             "echo over 9p > y")):
        t0 = time.monotonic()
        try:
            r = U.as_user(who, [khyve_run, "--kernel", kernel, "--rw", work, "--",
                                "sh", "-c", script], cwd=work, timeout=a.timeout)
            facts[name] = {"status": r.returncode, "stdout": r.stdout[-3000:],
                           "stderr": r.stderr[-4000:]}
        except subprocess.TimeoutExpired:
            facts[name] = {"timeout": True}
        facts[name]["seconds"] = round(time.monotonic() - t0, 1)
    for f in ("x", "y"):
        path = os.path.join(work, f)
        facts[f] = {"text": read(path), "owner": owner(path) if os.path.exists(path) else None}
    facts["locked_listing"] = os.listdir(locked)


PARTS = {"virtiofs": part_virtiofs, "khyve_run": part_khyve_run}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--only", choices=sorted(PARTS))
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--sandbox", default="namespace", choices=("namespace", "chroot"))
    a = ap.parse_args()
    a.khyve = os.path.abspath(a.khyve)
    os.environ.setdefault("KHYVE_KIT_DIR", os.path.dirname(os.path.abspath(a.kit)))
    facts = {"uid": U.UID, "gid": U.GID}
    why = U.usable()
    if why:
        facts["error"] = why
    else:
        with U.kvm_user() as user:
            for name, part in PARTS.items():
                if a.only in (None, name):
                    facts[name] = {}
                    try:
                        part(a, user, facts[name])
                    except Exception as e:  # the facts say what happened
                        facts[name]["error"] = repr(e)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
