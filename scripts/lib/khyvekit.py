"""Shared helpers for scripts/linux-kit and scripts/svm-host.

Everything here works on Debian packages that are downloaded with
`apt-get download` and unpacked with `dpkg-deb -x`: nothing is installed
on the host.  Only the Python standard library and Debian tools that are
already present (apt-get, dpkg-deb, lz4, xz, zstd, gzip, mke2fs) are used.
"""

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(os.path.dirname(LIB_DIR))


class KitError(Exception):
    pass


def log(msg):
    print(f"[{os.path.basename(sys.argv[0])}] {msg}", file=sys.stderr, flush=True)


def kit_dir():
    d = os.environ.get("KHYVE_KIT_DIR") or os.path.join(REPO_DIR, ".kit")
    return os.path.abspath(d)


def run(cmd, **kw):
    kw.setdefault("check", True)
    try:
        return subprocess.run(cmd, **kw)
    except subprocess.CalledProcessError as e:
        raise KitError(f"command failed ({e.returncode}): {shlex.join(cmd)}") from e
    except FileNotFoundError as e:
        raise KitError(f"command not found: {cmd[0]}") from e


class Lock:
    """An flock(2) lock file, so that concurrent runs do not build the same kit."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# --------------------------------------------------------------------------
# Debian packages


def resolve_kernel_package(meta):
    """linux-image-cloud-amd64 -> linux-image-6.1.0-NN-cloud-amd64."""

    def query():
        r = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", meta],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(?:\|)?Depends:\s*(linux-image-\d\S*)", line)
            if m:
                return m.group(1)
        return None

    pkg = query()
    if pkg is None:
        log(f"apt-cache knows no dependency of {meta}; running apt-get update")
        run(["apt-get", "update", "-qq"])
        pkg = query()
    if pkg is None:
        raise KitError(f"cannot resolve {meta} to a versioned kernel package")
    return pkg


def apt_download(pkg, dest_dir):
    """Download pkg's .deb into dest_dir (kept as a cache) and return its path."""
    os.makedirs(dest_dir, exist_ok=True)

    def find():
        # apt-get download names files NAME_VERSION_ARCH.deb (':' as %3a)
        cands = [f for f in os.listdir(dest_dir) if f.startswith(pkg + "_") and f.endswith(".deb")]
        cands.sort(key=lambda f: os.path.getmtime(os.path.join(dest_dir, f)))
        return os.path.join(dest_dir, cands[-1]) if cands else None

    def download():
        return subprocess.run(["apt-get", "download", "-q", pkg], cwd=dest_dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    existing = find()
    if existing:
        return existing
    log(f"apt-get download {pkg}")
    r = download()
    if r.returncode != 0:
        log(f"apt-get download failed ({r.stderr.strip()}); running apt-get update and retrying")
        run(["apt-get", "update", "-qq"])
        r = download()
        if r.returncode != 0:
            raise KitError(f"apt-get download {pkg} failed: {r.stderr.strip()}")
    got = find()
    if not got:
        raise KitError(f"apt-get download {pkg} produced no .deb in {dest_dir}")
    return got


def deb_field(deb, field):
    r = run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True)
    return r.stdout.strip()


def deb_extract(deb, dest):
    """dpkg-deb -x into dest (recreated), with a stamp so it is done once."""
    stamp = os.path.join(dest, ".extracted-from")
    name = os.path.basename(deb)
    if os.path.exists(stamp) and open(stamp).read().strip() == name:
        return dest
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    log(f"dpkg-deb -x {name}")
    run(["dpkg-deb", "-x", deb, dest])
    with open(stamp, "w") as f:
        f.write(name + "\n")
    return dest


def kernel_version_of(root):
    mods = os.path.join(root, "lib", "modules")
    vers = sorted(os.listdir(mods)) if os.path.isdir(mods) else []
    if len(vers) != 1:
        raise KitError(f"expected exactly one kernel version in {mods}, found {vers}")
    return vers[0]


# --------------------------------------------------------------------------
# bzImage -> vmlinux

MAGICS = [
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x89LZO", "lzo"),
]


def bzimage_payload(path):
    """Return (compression, compressed bytes, expected size) of a bzImage's payload."""
    with open(path, "rb") as f:
        b = f.read()
    if b[0x202:0x206] != b"HdrS":
        raise KitError(f"{path}: not a bzImage (no HdrS)")
    version = struct.unpack_from("<H", b, 0x206)[0]
    if version < 0x208:
        raise KitError(f"{path}: boot protocol {version:#x} has no payload fields")
    setup_sects = b[0x1F1] or 4
    off, length = struct.unpack_from("<II", b, 0x248)
    start = (setup_sects + 1) * 512 + off
    payload = b[start:start + length]
    kind = next((k for m, k in MAGICS if payload.startswith(m)), None)
    if kind is None:
        raise KitError(f"{path}: unknown payload compression (magic {payload[:6].hex()})")
    # All compressors but gzip get the uncompressed size appended (size_append).
    size = struct.unpack_from("<I", payload, len(payload) - 4)[0]
    if kind != "gzip":
        payload = payload[:-4]
    return kind, payload, size


def decompress(kind, data):
    if kind == "xz":
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        return d.decompress(data)
    if kind == "gzip":
        return gzip.decompress(data)
    tool = {"lz4": ["lz4", "-dc"], "zstd": ["zstd", "-dcq"], "bzip2": ["bzip2", "-dc"],
            "lzma": ["xz", "--format=lzma", "-dc"], "lzo": ["lzop", "-dc"]}[kind]
    r = subprocess.run(tool, input=data, capture_output=True)
    if r.returncode != 0 and not r.stdout:
        raise KitError(f"{tool[0]} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def elf_file_end(data):
    """Bytes of data that belong to the ELF64 image (drops appended relocs)."""
    (e_phoff, e_shoff) = struct.unpack_from("<QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum) = struct.unpack_from("<HHHH", data, 0x36)
    end = max(e_phoff + e_phentsize * e_phnum, e_shoff + e_shentsize * e_shnum)
    for i in range(e_phnum):
        p_off, p_filesz = struct.unpack_from("<Q16xQ", data, e_phoff + i * e_phentsize + 8)
        end = max(end, p_off + p_filesz)
    for i in range(e_shnum):
        sh = e_shoff + i * e_shentsize
        sh_type = struct.unpack_from("<I", data, sh + 4)[0]
        sh_off, sh_size = struct.unpack_from("<QQ", data, sh + 0x18)
        if sh_type != 8:  # SHT_NOBITS
            end = max(end, sh_off + sh_size)
    return end


def elf_notes(data):
    """Yield (name, type, desc) of the PT_NOTE segments of an ELF64 image."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise KitError("not an ELF64 file")
    e_phoff = struct.unpack_from("<Q", data, 0x20)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(e_phnum):
        ph = e_phoff + i * e_phentsize
        p_type = struct.unpack_from("<I", data, ph)[0]
        if p_type != 4:  # PT_NOTE
            continue
        p_off, _, _, p_filesz = struct.unpack_from("<QQQQ", data, ph + 8)
        pos, end = p_off, p_off + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            pos += 12
            name = data[pos:pos + namesz].rstrip(b"\0")
            pos += (namesz + 3) & ~3
            desc = data[pos:pos + descsz]
            pos += (descsz + 3) & ~3
            yield name, ntype, desc


XEN_ELFNOTE_PHYS32_ENTRY = 18


def pvh_entry(data):
    for name, ntype, desc in elf_notes(data):
        if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
            return struct.unpack("<I", desc[:4])[0] if len(desc) == 4 else struct.unpack("<Q", desc[:8])[0]
    return None


def extract_vmlinux(bzimage, out):
    """Decompress bzImage's payload into out; return (compression, PVH entry)."""
    kind, payload, size = bzimage_payload(bzimage)
    log(f"extracting vmlinux from {os.path.basename(bzimage)} ({kind}, {len(payload)} bytes)")
    data = decompress(kind, payload)
    if len(data) != size:
        raise KitError(f"decompressed payload is {len(data)} bytes, header says {size}")
    if data[:4] != b"\x7fELF":
        raise KitError("decompressed payload is not an ELF file")
    data = data[:elf_file_end(data)]
    entry = pvh_entry(data)
    if entry is None:
        raise KitError("vmlinux has no PVH entry note (Xen ELF note type 18)")
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, out)
    return kind, entry


# --------------------------------------------------------------------------
# Kernel modules


def modname(s):
    s = os.path.basename(s)
    s = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", s)
    return s.replace("-", "_")


def read_module(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".ko.xz"):
        data = lzma.decompress(data)
    elif path.endswith(".ko.zst"):
        data = decompress("zstd", data)
    elif path.endswith(".ko.gz"):
        data = gzip.decompress(data)
    return data


def modinfo(data):
    """The key=value pairs of a .ko's .modinfo section."""
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        base = e_shoff + i * e_shentsize
        name, = struct.unpack_from("<I", data, base)
        off, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, off, size

    _, stroff, _ = sh(e_shstrndx)
    info = {}
    for i in range(e_shnum):
        name, off, size = sh(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[off:off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    info.setdefault(k, []).append(v)
    return info


class ModuleTree:
    """The modules of an unpacked kernel package: lookup and dependency order."""

    def __init__(self, root, version):
        self.dir = os.path.join(root, "lib", "modules", version)
        self.paths = {}
        for dp, _, files in os.walk(os.path.join(self.dir, "kernel")):
            for f in files:
                if re.search(r"\.ko(\.(xz|zst|gz))?$", f):
                    self.paths[modname(f)] = os.path.join(dp, f)
        self.builtin = set()
        bi = os.path.join(self.dir, "modules.builtin")
        if os.path.exists(bi):
            self.builtin = {modname(l.strip()) for l in open(bi) if l.strip()}
        self.deps = None
        dep = os.path.join(self.dir, "modules.dep")
        if os.path.exists(dep):  # only present if depmod ran; Debian's .deb lacks it
            self.deps = {}
            for line in open(dep):
                if ":" in line:
                    m, d = line.split(":", 1)
                    self.deps[modname(m)] = [modname(x) for x in d.split()]

    def depends(self, name):
        if self.deps is not None and name in self.deps:
            return self.deps[name]
        info = modinfo(read_module(self.paths[name]))
        return [modname(d) for d in ",".join(info.get("depends", [])).split(",") if d]

    def resolve(self, wanted):
        """Dependency-ordered module names for wanted (missing/builtin ones skipped).

        Returns (ordered, missing, builtin)."""
        order, seen, missing, builtin = [], set(), [], []

        def visit(n, stack):
            if n in seen:
                return
            if n not in self.paths:
                (builtin if n in self.builtin else missing).append(n)
                seen.add(n)
                return
            if n in stack:
                raise KitError(f"module dependency cycle at {n}")
            for d in self.depends(n):
                visit(d, stack | {n})
            seen.add(n)
            order.append(n)

        for w in wanted:
            visit(modname(w), frozenset())
        return order, missing, builtin


# --------------------------------------------------------------------------
# cpio (newc) writer: lets us put device nodes and root-owned files in an
# initramfs without mknod or fakeroot.


class Cpio:
    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdev)

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p and p not in self.entries:
                self.entries[p] = (0o040755, b"", (0, 0))

    def dir(self, path, mode=0o755):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (0o040000 | mode, b"", (0, 0))

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self._parents(path)
        if isinstance(data, str):
            data = data.encode()
        self.entries[path] = (0o100000 | mode, data, (0, 0))

    def symlink(self, path, target):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (0o120777, target.encode(), (0, 0))

    def chardev(self, path, major, minor, mode=0o600):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (0o020000 | mode, b"", (major, minor))

    def bytes(self):
        out = io.BytesIO()
        ino = 1

        def rec(name, mode, data, rdev, nlink):
            nonlocal ino
            nb = name.encode() + b"\0"
            hdr = "070701" + "".join(f"{x:08X}" for x in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
            ino += 1
            out.write(hdr.encode() + nb)
            out.write(b"\0" * (-(110 + len(nb)) % 4))
            out.write(data)
            out.write(b"\0" * (-len(data) % 4))

        for name in sorted(self.entries):
            mode, data, rdev = self.entries[name]
            rec(name, mode, data, rdev, 2 if mode & 0o040000 else 1)
        rec("TRAILER!!!", 0, b"", (0, 0), 1)
        return out.getvalue()

    def write(self, path, compress=True):
        data = self.bytes()
        if compress:
            data = gzip.compress(data, compresslevel=6, mtime=0)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)


def busybox_into(cpio, busybox_root):
    """Add busybox at /bin/busybox with a symlink for each of its applets."""
    bb = os.path.join(busybox_root, "bin", "busybox")
    with open(bb, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    r = run([bb, "--list-full"], capture_output=True, text=True)
    for applet in r.stdout.split():
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")
    for d in ("dev", "proc", "sys", "tmp", "run", "etc", "root", "mnt"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)


def modules_into(cpio, tree, wanted, version):
    """Add the resolved modules (decompressed) and /etc/modules.load (load order)."""
    order, missing, builtin = tree.resolve(wanted)
    for name in order:
        cpio.file(f"lib/modules/{version}/{name}.ko", read_module(tree.paths[name]))
    cpio.file("etc/modules.load", "".join(n + "\n" for n in order))
    return order, missing, builtin


def file_sha(*paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def read_env(path):
    env = {}
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.rstrip("\n"))
            if m:
                v = shlex.split(m.group(2))
                env[m.group(1)] = v[0] if v else ""
    return env


def write_env(path, env):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# generated by khyve's scripts; sourceable by sh\n")
        for k, v in env.items():
            f.write(f"{k}={shlex.quote(str(v))}\n")
    os.rename(tmp, path)


def now():
    return time.monotonic()


def modules_overlay(kit_env, wanted, path):
    """An uncompressed cpio to append to the kit's initramfs (the kernel
    unpacks concatenated archives in order, later files winning): the
    wanted modules the kit lacks, with their dependencies, and an
    /etc/modules.load that loads the kit's modules, then these. Taken from
    the kernel package the kit unpacked (KHYVE_KIT_DIR/pkgs/PACKAGE), so
    the shared kit itself is not rebuilt. Returns the modules added."""
    kver, pkg = kit_env["KERNEL_VERSION"], kit_env["KERNEL_PACKAGE"]
    have = kit_env.get("MODULES", "").split()
    tree = ModuleTree(os.path.join(kit_dir(), "pkgs", pkg), kver)
    order, missing, _ = tree.resolve(wanted)
    if missing:
        raise KitError(f"modules not in {pkg}: {' '.join(missing)}")
    add = [m for m in order if m not in have]
    cpio = Cpio()
    for name in add:
        cpio.file(f"lib/modules/{kver}/{name}.ko", read_module(tree.paths[name]))
    cpio.file("etc/modules.load", "".join(n + "\n" for n in have + add))
    cpio.write(path, compress=False)
    return add


def kit_initramfs_plus(kit, archives, initrd):
    """The Linux kit's initramfs (kit: its directory) with the given cpio
    archives appended, written to initrd."""
    with open(initrd, "wb") as out:
        for part in [os.path.join(kit, "initramfs.cpio.gz")] + list(archives):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)


def kit_initramfs_with(kit, wanted, initrd):
    """kit_initramfs_plus with modules_overlay's archive for the wanted
    modules. Returns the modules added."""
    overlay = initrd + ".modules.cpio"
    add = modules_overlay(read_env(os.path.join(kit, "kit.env")), wanted, overlay)
    kit_initramfs_plus(kit, [overlay], initrd)
    os.unlink(overlay)
    return add


# --------------------------------------------------------------------------
# Debian's generic kernel as a guest (it has 9p; the cloud kernel has not)

GENERIC_GUEST_MODULES = ["virtio_pci", "virtio_console", "9pnet", "9pnet_virtio", "netfs",
                         "fscache", "9p"]


def generic_guest_initramfs(out, modules=GENERIC_GUEST_MODULES, init=None, extra=()):
    """An initramfs (gzip cpio at out) for booting Debian's generic kernel,
    the SVM test host's own ($KHYVE_KIT_DIR/svm/vmlinux), as a guest:
    busybox, the Linux kit's /init (linux-kit-init.sh, which loads
    /etc/modules.load and runs khyve.cmd64) and the modules named, with
    their dependencies, from the kernel package the SVM host kit unpacked;
    extra: (host file, path in the initramfs) pairs, e.g. a program and its
    libraries. Rebuilt only when its recipe changes (out + ".recipe").
    Returns out."""
    kit = kit_dir()
    env = read_env(os.path.join(kit, "svm", "kit.env"))
    if not env.get("KERNEL_PACKAGE") or not env.get("KERNEL_VERSION"):
        raise KitError(f"no SVM host kit in {kit}/svm (scripts/svm-host --build-only makes it)")
    kroot = os.path.join(kit, "pkgs", env["KERNEL_PACKAGE"])
    broot = os.path.join(kit, "pkgs", "busybox-static")
    for d in (kroot, broot):
        if not os.path.isdir(d):
            raise KitError(f"{d} is missing (scripts/svm-host --rebuild unpacks it)")
    init = init or os.path.join(LIB_DIR, "linux-kit-init.sh")
    recipe = " ".join([file_sha(init, __file__), env.get("KERNEL_DEB", ""), *modules,
                       *(f"{g}={file_sha(h)}" for h, g in extra)])
    stamp = out + ".recipe"
    if os.path.exists(out) and os.path.exists(stamp) and open(stamp).read() == recipe:
        return out
    cpio = Cpio()
    busybox_into(cpio, broot)
    tree = ModuleTree(kroot, env["KERNEL_VERSION"])
    order, missing, _ = modules_into(cpio, tree, modules, env["KERNEL_VERSION"])
    if missing:
        raise KitError(f"modules not in {env['KERNEL_PACKAGE']}: {' '.join(missing)}")
    with open(init) as f:
        cpio.file("init", f.read(), 0o755)
    for host, guest in extra:
        with open(host, "rb") as f:
            cpio.file(guest, f.read(), os.stat(host).st_mode & 0o7777)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    cpio.write(out)
    with open(stamp, "w") as f:
        f.write(recipe)
    log(f"generic-kernel guest initramfs {out}: modules {' '.join(order)}")
    return out
