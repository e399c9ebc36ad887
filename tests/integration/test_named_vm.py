"""Named VMs ($KHYVE_RUNDIR/NAME, src/ctl/vmdir.h): names are checked, a
name is held by one khyve at a time (the second is told who holds it), a
failed start leaves nothing behind, a VM prepared by a loader (here by
tests/tools/prepare_vm, which makes the loader's library calls) runs with
`khyve NAME` and stays prepared, and a khyve killed with -9 leaves a stale
VM that --list shows and --destroy removes."""
import fcntl
import os
import signal
import subprocess

import pytest

from conftest import (KHYVE, KHYVECTL, PREPARE_VM, RUNDIR, TIMEOUT, Background, clean, guest,
                      khyve, passed, run_guest)
from test_cli import assert_one_error


def vmdir(name):
    return os.path.join(RUNDIR, name)


def ctl(*args, timeout=TIMEOUT):
    r = subprocess.run([KHYVECTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def ctl_error(name_args, *needles):
    """khyvectl failing on bad input: one line, exit 4."""
    status, out, err = ctl(*name_args)
    lines = [l for l in err.splitlines() if l.strip()]
    assert status == 4 and len(lines) == 1 and lines[0].startswith("khyvectl: "), (status, out, err)
    for n in needles:
        assert n in lines[0], err
    return lines[0]


def prepare(name, kernel="hello", mem="64M", cmdline=None):
    args = [PREPARE_VM, name, mem, guest(kernel)] + ([cmdline] if cmdline else [])
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r
    assert os.path.exists(os.path.join(vmdir(name), "entry"))


def spinner(tmp_path, name, *extra):
    """gdbtarget spinning in spin_until_released(), in the background."""
    b = Background(["-m", "64M", "-l", "com1,stdio", "--debug-exit", *extra, "--kernel",
                    guest("gdbtarget"), "--append", "spin=1", name], tmp_path)
    try:
        b.wait_for(b.stdout, "SPIN: waiting")
    except BaseException:
        b.kill()
        raise
    return b


def listing():
    status, out, err = ctl("--list")
    assert status == 0, err
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        rows[f[0]] = {"state": f[1], "pid": f[2], "mem": f[3], "cpus": f[4]}
    return rows


@pytest.mark.parametrize("name,why", [
    ("a/b", "'/'"), (".hidden", "'.'"), ("..", "'.'"), ("x" * 32, "31"),
    ("has space", "space"), ("locks", "reserved"), ("", "empty"),
])
def test_bad_names_are_refused_and_leave_nothing(name, why):
    before = set(os.listdir(RUNDIR))
    assert_one_error(khyve("--kernel", guest("hello"), name), "not a valid VM name", why)
    ctl_error(["--vm=" + name, "--create"], "not a valid VM name", why)
    assert set(os.listdir(RUNDIR)) == before


def test_a_31_character_name_runs():
    name = "n" * 31
    passed(run_guest("hello", vm=name))


def test_a_busy_name_is_refused_with_the_holders_pid(tmp_path):
    b = spinner(tmp_path, "busy0")
    try:
        r = khyve("-m", "64M", "--kernel", guest("hello"), "busy0")
        assert_one_error(r, "busy0", "busy", f"pid {b.proc.pid}")
        ctl_error(["--vm=busy0", "--create"], "already exists")
        assert b.proc.poll() is None  # the holder runs on
        assert ctl("--vm=busy0", "--force-poweroff")[0] == 0
        assert b.wait() == 1
    finally:
        b.kill()


def test_a_failed_start_leaves_nothing_behind(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a kernel" * 100)
    # Fails after the VM directory was made (loading the kernel).
    assert_one_error(khyve("--kernel", str(junk), "fail0"), "junk.bin")
    assert not os.path.exists(vmdir("fail0"))
    # A device that cannot be opened, after KVM was set up.
    r = khyve("-m", "64M", "-s", "0,hostbridge", "-s", "3,virtio-blk,/nonexistent/disk.img",
              "--kernel", guest("hello"), "fail1")
    assert r.status == 4 and "/nonexistent/disk.img" in r.err, r
    assert not os.path.exists(vmdir("fail1"))


def test_a_failed_start_keeps_a_vm_that_existed(tmp_path):
    prepare("keep0")
    before = sorted(os.listdir(vmdir("keep0")))
    entry = open(os.path.join(vmdir("keep0"), "entry")).read()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a kernel" * 100)
    assert_one_error(khyve("--kernel", str(junk), "keep0"), "junk.bin")
    assert sorted(os.listdir(vmdir("keep0"))) == before
    assert open(os.path.join(vmdir("keep0"), "entry")).read() == entry
    assert listing()["keep0"]["state"] == "prepared"


def test_a_prepared_vm_runs_and_stays_prepared():
    prepare("prep0")
    assert listing()["prep0"] == {"state": "prepared", "pid": "-", "mem": "64M", "cpus": "-"}
    for _ in range(2):  # the run leaves the loader's memory file as it was
        r = passed(khyve("-l", "com1,stdio", "--debug-exit", "prep0"))
        assert "Hello from the khyve test guest" in r.out
        assert listing()["prep0"]["state"] == "prepared"


def test_a_prepared_vm_gets_its_command_line():
    prepare("prep1", kernel="bootinfo", cmdline="hello=world")
    r = khyve("-l", "com1,stdio", "--debug-exit", "prep1")
    clean(r)
    assert "hello=world" in r.out, r


def test_a_guest_reboot_leaves_the_vm_created():
    prepare("reboot0", kernel="reset")
    r = clean(khyve("-l", "com1,stdio", "reboot0"))
    assert r.status == 0, r
    assert listing()["reboot0"]["state"] == "prepared"
    # And a direct boot that reboots leaves its VM too, as bhyve's does.
    r = clean(run_guest("reset", vm="reboot1", debug_exit=False))
    assert r.status == 0, r
    assert listing()["reboot1"]["state"] == "created"


def test_prepared_memory_size_must_match():
    prepare("mem0")
    assert_one_error(khyve("-m", "128M", "mem0"), "-m", "64 MiB")


def test_unknown_vm_without_kernel():
    assert_one_error(khyve("nosuch0"), "nosuch0", "no such VM")
    assert not os.path.exists(vmdir("nosuch0"))


def test_created_vm_has_nothing_to_boot():
    assert ctl("--vm=empty0", "--create")[0] == 0
    assert listing()["empty0"]["state"] == "created"
    assert_one_error(khyve("empty0"), "empty0", "nothing to boot")
    assert os.path.isdir(vmdir("empty0"))
    assert ctl("--vm=empty0", "--destroy")[0] == 0
    assert not os.path.exists(vmdir("empty0"))


def test_kill9_leaves_a_stale_vm_that_destroy_removes(tmp_path):
    b = spinner(tmp_path, "stale0")
    try:
        pid = b.proc.pid
        assert os.path.exists(os.path.join(vmdir("stale0"), "ctl"))
        assert listing()["stale0"]["state"] == "running"
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
    finally:
        b.kill()
    row = listing()["stale0"]
    assert row["state"] == "stale" and row["pid"] == str(pid), row
    # Looking at it does not make it less stale.
    assert ctl("--vm=stale0", "--get-rip")[0] != 0
    assert listing()["stale0"]["state"] == "stale"
    status, out, err = ctl("--vm=stale0", "--destroy")
    assert status == 0 and not err, err
    assert not os.path.exists(vmdir("stale0"))


def test_D_destroys_the_vm_on_poweroff():
    r = passed(run_guest("hello", "-D", vm="dee0"))
    assert not os.path.exists(vmdir("dee0"))


def test_a_vm_held_by_a_loader_is_busy():
    assert ctl("--vm=held0", "--create")[0] == 0
    with open(os.path.join(vmdir("held0"), "lock"), "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(f"pid={os.getpid()}\nrole=loader\n")
        f.flush()
        assert_one_error(khyve("--kernel", guest("hello"), "held0"), "busy", "loader",
                         f"pid {os.getpid()}")
        ctl_error(["--vm=held0", "--destroy"], "busy", f"pid {os.getpid()}")
        assert listing()["held0"]["state"] == "busy"
        f.truncate(0)
    assert ctl("--vm=held0", "--destroy")[0] == 0
