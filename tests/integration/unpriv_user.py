"""A non-root user in the kvm group, made by a test run as root, and
commands run as that user (tests/integration/test_unprivileged.py, and
tests/svm/unpriv_scenario.py inside the SVM test host).

The test host's / is read-only, so the user exists only for the commands
run through as_user_argv: in a mount namespace of each command's own, a
copy of /etc/passwd and /etc/group with a user "khyveuser" and a group
"kvm" is mounted over the real ones, and the command runs under setpriv
as that user with that user's groups; /etc/subuid and /etc/subgid get
the user's subordinate ids the same way. /dev/kvm is made group kvm, mode
0660, while the user exists. The user's $XDG_RUNTIME_DIR is /run/user/UID,
as pam_systemd makes it; its home is /tmp/khyveuser."""
import contextlib
import os
import shutil
import stat
import subprocess
import tempfile

UID, GID, KVM_GID = 4242, 4242, 4343
USER = "khyveuser"
XDG = f"/run/user/{UID}"
HOME = f"/tmp/{USER}"
SUBID_START, SUBID_COUNT = 300000, 65536


def usable():
    """Why users cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (it makes the user)"
    for tool in ("setpriv", "unshare"):
        if not shutil.which(tool):
            return f"needs {tool}"
    return None


@contextlib.contextmanager
def kvm_user(etc_dir=None):
    """The etc files, /dev/kvm for group kvm, the user's directories; yields
    {"passwd", "group", "home"}, and undoes it all on leaving."""
    etc = etc_dir or tempfile.mkdtemp(prefix="khyve-user-etc-")
    passwd, group = os.path.join(etc, "passwd"), os.path.join(etc, "group")
    with open("/etc/passwd") as f, open(passwd, "w") as out:
        out.write(f.read() + f"{USER}:x:{UID}:{GID}::{HOME}:/bin/sh\n")
    with open("/etc/group") as f:
        lines = [l for l in f.read().splitlines() if not l.startswith("kvm:")]
    with open(group, "w") as out:
        out.write("\n".join(lines + [f"{USER}:x:{GID}:", f"kvm:x:{KVM_GID}:{USER}"]) + "\n")
    # Subordinate ids, as Debian's useradd gives a new user (login.defs
    # SUB_UID_COUNT): for user namespaces made with newuidmap/newgidmap.
    # Only where the files exist to be mounted over (the root is read-only).
    subids = {}
    for name in ("subuid", "subgid"):
        if os.path.exists(f"/etc/{name}"):
            subids[name] = os.path.join(etc, name)
            with open(f"/etc/{name}") as f, open(subids[name], "w") as out:
                out.write(f.read() + f"{USER}:{SUBID_START}:{SUBID_COUNT}\n")
    for d in (HOME, XDG):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, mode=0o700)
        os.chown(d, UID, GID)
        os.chmod(d, 0o700)
    kvm = os.environ.get("KHYVE_KVM_DEVICE") or "/dev/kvm"
    st = os.stat(kvm)
    os.chown(kvm, 0, KVM_GID)
    os.chmod(kvm, 0o660)
    try:
        yield {"passwd": passwd, "group": group, "home": HOME, **subids}
    finally:
        os.chown(kvm, st.st_uid, st.st_gid)
        os.chmod(kvm, stat.S_IMODE(st.st_mode))
        shutil.rmtree(HOME, ignore_errors=True)
        shutil.rmtree(XDG, ignore_errors=True)
        if etc_dir is None:
            shutil.rmtree(etc, ignore_errors=True)


def user_env(extra=None, xdg=True):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": HOME, "USER": USER,
         "LOGNAME": USER, "LANG": "C.UTF-8"}
    if xdg:
        e["XDG_RUNTIME_DIR"] = XDG
    for k, v in os.environ.items():
        if k.startswith("ASAN_") or k.startswith("UBSAN_") or k == "KHYVE_KVM_DEVICE":
            e[k] = v
    e.update(extra or {})
    return e


def as_user_argv(user, argv, kvm_group=True):
    """argv as the user, in a mount namespace that knows the user."""
    groups = ["--init-groups"] if kvm_group else ["--groups", str(GID)]
    files = [n for n in ("passwd", "group", "subuid", "subgid") if n in user]
    script = ("".join(f'mount --bind "${i + 1}" /etc/{n} && ' for i, n in enumerate(files))
              + f'shift {len(files)} && exec "$@"')
    return ["unshare", "-m", "sh", "-c", script, "sh", *(user[n] for n in files),
            "setpriv", f"--reuid={UID}", f"--regid={GID}", *groups, "--", *argv]


def as_user(user, argv, input=None, env=None, kvm_group=True, timeout=60, cwd=None):
    """Run argv as the user to its end: the CompletedProcess (text)."""
    return subprocess.run(as_user_argv(user, argv, kvm_group), input=input, capture_output=True,
                          text=True, errors="replace", env=env or user_env(), timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL, cwd=cwd)


def user_dir(user, name):
    """A directory the user owns, in its home."""
    d = os.path.join(user["home"], name)
    os.makedirs(d, exist_ok=True)
    os.chown(d, UID, GID)
    return d
