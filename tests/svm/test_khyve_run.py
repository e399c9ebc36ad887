"""khyve-run (scripts/khyve-run, src/krun): one command inside a kernel.

Each test boots the kit's Debian kernels under khyve inside the SVM test
host (~20-40 s each there) with the host's root over virtio-fs (a real
virtiofsd) or 9p. Run them in one test-host boot:
  KHYVE_KIT_DIR=/work/kit scripts/test --only svm -- -k khyve_run
"""
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit"))
INSIDE = os.environ.get("SVM_HOST") == "1"
KHYVE_RUN = os.path.join(REPO, "build", "khyve-run")
KHYVE = os.path.join(REPO, "build", "src", "cmd", "khyve")


def kit_env(which):
    env = {}
    path = os.path.join(KIT, which, "kit.env")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v.strip("'")
    return env


def kit_kernel(which):
    """The kit's kernel as its package unpacked it (boot/vmlinuz-V beside
    lib/modules/V), as a distribution installs one."""
    env = kit_env(which)
    pkg, ver = env.get("KERNEL_PACKAGE"), env.get("KERNEL_VERSION")
    if not pkg:
        pytest.skip(f"no {which} kit in {KIT} (scripts/linux-kit, scripts/svm-host --build-only)")
    return os.path.join(KIT, "pkgs", pkg, "boot", f"vmlinuz-{ver}")


CLOUD = "linux"  # linux-image-cloud-amd64: virtio-fs, no 9p
GENERIC = "svm"  # linux-image-amd64: virtio-fs and 9p


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One cache for the session: the vmlinux is extracted and the initramfs
    built once per kernel."""
    return str(tmp_path_factory.mktemp("khyve-run-cache"))


def khyve_run(args, cache, cwd, timeout=400, **kw):
    cmd = [KHYVE_RUN, *args]
    if not INSIDE:
        shares = [a for a in kw.pop("share", [])]
        outer = [os.path.join(REPO, "scripts", "svm-host"), "--timeout", str(timeout),
                 "--env", f"XDG_CACHE_HOME={cache}"]
        for s in shares + [cache]:
            outer += ["--share", s]
        cmd = outer + ["--", *cmd]
    else:
        kw.pop("share", None)
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout + 60)


def describe(p):
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-4000:]}"


@pytest.fixture
def work(tmp_path):
    """A directory the guest sees read-write (--rw), used as the cwd: the
    guest's /tmp is its own tmpfs."""
    d = tmp_path / "work"
    d.mkdir()
    return str(d)


def test_output_and_exit_status(cache_dir, work):
    """The command's stdout and stderr come back apart, in the same working
    directory, as the same user, and its status is khyve-run's."""
    p = khyve_run(["--kernel", kit_kernel(CLOUD), "--rw", work, "--",
                   "sh", "-c", "echo hi; echo to-stderr >&2; pwd; id -u; exit 7"],
                  cache_dir, work, share=[work])
    assert p.returncode == 7, describe(p)
    lines = p.stdout.splitlines()
    assert lines[:3] == ["hi", work, str(os.getuid())], describe(p)
    assert "to-stderr" in p.stderr and "to-stderr" not in p.stdout, describe(p)


def test_panic_gives_255_with_the_panic_text(cache_dir, work):
    p = khyve_run(["--kernel", kit_kernel(CLOUD), "--rw", work, "--",
                   "sh", "-c", "echo c > /proc/sysrq-trigger; echo survived"],
                  cache_dir, work, share=[work])
    assert p.returncode == 255, describe(p)
    assert "Kernel panic" in p.stderr and "sysrq triggered crash" in p.stderr, describe(p)
    assert "survived" not in p.stdout, describe(p)


def test_rw_dirs_reach_the_host_and_the_root_is_read_only(cache_dir, work, tmp_path):
    """--rw writes land on the host; the root share refuses writes (EROFS),
    even where the host could write; /tmp, /var and $HOME are writable and
    their changes stay in the guest. --net gives eth0 slirp's address."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "old").write_text("from the host\n")
    probe = os.path.join(REPO, "build", f".khyve-run-ro-probe-{os.getpid()}")
    home = os.environ.get("HOME", "/root")
    script = (f"cat {other}/old; echo new > {other}/new; mv {other}/old {other}/moved; "
              f"if touch {probe} 2>/dev/null; then echo ROOT-WRITABLE; fi; "
              f"touch {probe} 2>&1 | grep -q 'Read-only' && echo ROOT-EROFS; "
              "echo t > /tmp/t && echo > /var/khyve-run-probe && "
              f"echo h > {home}/.khyve-run-probe && echo SCRATCH-OK; "
              "cat /proc/net/fib_trie | grep -q 10.0.2.15 && echo NET-UP")
    p = khyve_run(["--kernel", kit_kernel(CLOUD), "--net", "--rw", work, "--rw", str(other), "--",
                   "sh", "-c", script], cache_dir, work, share=[work, str(other)])
    assert p.returncode == 0, describe(p)
    assert "from the host" in p.stdout, describe(p)
    assert (other / "new").read_text() == "new\n", describe(p)
    assert (other / "moved").exists() and not (other / "old").exists(), describe(p)
    assert "ROOT-EROFS" in p.stdout and "ROOT-WRITABLE" not in p.stdout, describe(p)
    assert not os.path.exists(probe)
    assert "SCRATCH-OK" in p.stdout, describe(p)
    assert not os.path.exists(os.path.join(home, ".khyve-run-probe"))
    assert not os.path.exists("/var/khyve-run-probe")
    assert "NET-UP" in p.stdout, describe(p)


def khyve_has(emulation):
    with open(KHYVE, "rb") as f:
        return emulation.encode() + b"\0" in f.read()


def test_9p_where_the_kernel_lacks_virtio_fs(cache_dir, work, tmp_path):
    """A kernel without virtio-fs gets the host's files over khyve's own 9p
    server: here the generic kernel (which has 9p) with a module directory
    from which virtiofs.ko is left out."""
    if not khyve_has("virtio-9p"):
        pytest.skip("this khyve has no virtio-9p")
    kernel = kit_kernel(GENERIC)
    env = kit_env(GENERIC)
    ver = env["KERNEL_VERSION"]
    orig = os.path.join(KIT, "pkgs", env["KERNEL_PACKAGE"], "lib", "modules", ver)
    mods = tmp_path / "modules" / ver
    for dp, _, files in os.walk(os.path.join(orig, "kernel")):
        rel = os.path.relpath(dp, orig)
        for f in files:
            if f.startswith("virtiofs.ko"):
                continue
            os.makedirs(mods / rel, exist_ok=True)
            os.symlink(os.path.join(dp, f), mods / rel / f)
    shutil.copyfile(os.path.join(orig, "modules.builtin"), mods / "modules.builtin")
    p = khyve_run(["--kernel", kernel, "--modules", str(mods), "--rw", work, "--",
                   "sh", "-c", f"grep -c ' 9p ' /proc/mounts; grep -c virtiofs /proc/mounts; "
                   f"echo x > {work}/f; touch /etc/khyve-run-probe 2>/dev/null || echo EROFS; "
                   "exit 5"],
                  cache_dir, work, share=[work])
    assert p.returncode == 5, describe(p)
    out = p.stdout.splitlines()
    assert int(out[0]) >= 2 and out[1] == "0" and "EROFS" in out, describe(p)
    assert open(os.path.join(work, "f")).read() == "x\n", describe(p)


def test_build_tree_is_found_from_the_cwd(cache_dir, tmp_path):
    """In a build tree (arch/x86/boot/bzImage, vmlinux, modules.order and
    the .ko files where make leaves them), khyve-run needs no --kernel."""
    env = kit_env(CLOUD)
    if not env:
        pytest.skip("no linux kit")
    ver = env["KERNEL_VERSION"]
    mods = os.path.join(KIT, "pkgs", env["KERNEL_PACKAGE"], "lib", "modules", ver)
    tree = tmp_path / "linux"
    (tree / "arch/x86/boot").mkdir(parents=True)
    (tree / "include/config").mkdir(parents=True)
    (tree / "include/config/kernel.release").write_text(ver + "\n")
    os.symlink(env["KIT_VMLINUX"], tree / "vmlinux")
    shutil.copyfile(env["KIT_BZIMAGE"], tree / "arch/x86/boot/bzImage")  # newer than vmlinux
    order = []
    for line in open(os.path.join(mods, "modules.order")):
        rel = line.strip()
        if rel.startswith("kernel/"):
            rel = rel[len("kernel/"):]
        src = os.path.join(mods, "kernel", rel)
        if os.path.exists(src):
            os.makedirs(tree / os.path.dirname(rel), exist_ok=True)
            os.symlink(src, tree / rel)
            order.append(rel)
    (tree / "modules.order").write_text("".join(r + "\n" for r in order))
    shutil.copyfile(os.path.join(mods, "modules.builtin"), tree / "modules.builtin")
    sub = tree / "drivers"
    p = khyve_run(["--rw", str(tmp_path), "--", "sh", "-c", "uname -r; pwd"], cache_dir,
                  str(sub), share=[str(tmp_path)])
    assert p.returncode == 0, describe(p)
    assert p.stdout.splitlines() == [ver, str(sub)], describe(p)


def test_terminal_when_stdin_is_one(cache_dir, work):
    """With a terminal on stdin the command gets one (hvc0) of the same size."""
    if not INSIDE:
        pytest.skip("drives a pty: runs inside the SVM test host")
    import fcntl
    import struct
    import termios
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        os.chdir(work)
        os.environ["XDG_CACHE_HOME"] = cache_dir
        os.execv(KHYVE_RUN, [KHYVE_RUN, "--kernel", kit_kernel(CLOUD), "--rw", work, "--",
                             "sh", "-c", "tty; stty size; exit 4"])
    out = b""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 5)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 4, text
    assert "/dev/hvc0" in text and "33 111" in text, text


def test_gdb_holds_the_guest_until_gdb_lets_it_go(cache_dir, work):
    """--gdb PORT: khyve waits for gdb before the kernel's first
    instruction; once gdb continues, the run ends as usual."""
    if not INSIDE:
        pytest.skip("drives gdb beside khyve-run: runs inside the SVM test host")
    if shutil.which("gdb") is None:
        pytest.skip("no gdb")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, XDG_CACHE_HOME=cache_dir)
    p = subprocess.Popen([KHYVE_RUN, "--kernel", kit_kernel(CLOUD), "--gdb", str(port),
                          "--rw", work, "--", "sh", "-c", "cat /proc/cmdline; exit 9"],
                         cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while "waiting for a debugger" not in seen and time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            seen += line
        assert "waiting for a debugger" in seen, seen
        time.sleep(1)
        assert p.poll() is None, seen  # held
        g = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{port}",
                            "-ex", "continue"], capture_output=True, text=True,
                           errors="replace", timeout=400)
        out, rest = p.communicate(timeout=400)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 9, f"{out}\n{seen}{rest}\n--- gdb\n{g.stdout}{g.stderr}"
    assert "nokaslr" in out, out
