"""The seccomp sandbox (khyve(8), SANDBOX): on by default in every thread,
off with --no-sandbox, and a forbidden call ends khyve with one clear line
and status 4 (the test hook KHYVE_SANDBOX_TEST_FORBIDDEN=ROLE makes the
first thread of ROLE call personality(2), which no role allows). Every
other integration test runs with the sandbox on too."""
import glob
import os
import re
import time

import pytest

from conftest import KHYVE, TIMEOUT, Background, clean, guest, khyve, passed

HOOK = "KHYVE_SANDBOX_TEST_FORBIDDEN"


def blk_guest(image, *extra, env=None):
    return khyve("-m", "64M", "-l", "com1,stdio", "--debug-exit", "-s", "0,hostbridge",
                 "-s", f"3,virtio-blk,{image}", *extra, "--kernel", guest("virtioblk"),
                 "--append", "read=0 rcount=8 write=8 wcount=8 seed=3", "t0", env=env)


@pytest.fixture
def image(tmp_path, monkeypatch):
    monkeypatch.setenv("KHYVE_RUNDIR", str(tmp_path / "run"))
    p = tmp_path / "disk.img"
    p.write_bytes(os.urandom(1 << 20))
    return p


@pytest.mark.parametrize("role", ["vcpu", "evloop", "starter", "blk_io"])
def test_a_forbidden_call_is_reported_and_ends_khyve(image, role):
    r = blk_guest(image, env=dict(os.environ, **{HOOK: role}))
    clean(r)
    assert r.status == 4, r
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert lines == [f"khyve: sandbox: thread {role} made forbidden system call personality (135)"], r


def test_the_guest_runs_its_devices_under_the_sandbox(image):
    # The same guest, hook unset: the device thread does its I/O allowed.
    r = passed(blk_guest(image))
    assert "BLK: write sector=8 count=8 status=0" in r.out


def test_no_sandbox_turns_it_off(image):
    r = passed(blk_guest(image, "--no-sandbox", env=dict(os.environ, **{HOOK: "blk_io"})))
    assert "sandbox" not in r.err


def seccomp_modes(pid):
    """{thread name: Seccomp mode} of every thread of pid."""
    modes = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/status") as f:
                st = f.read()
        except FileNotFoundError:
            continue
        name = re.search(r"^Name:\s*(.*)$", st, re.M).group(1)
        modes[name + ":" + os.path.basename(task)] = int(re.search(r"^Seccomp:\s*(\d)", st, re.M).group(1))
    return modes


@pytest.mark.parametrize("sandbox", [True, False])
def test_every_thread_is_filtered_by_default(tmp_path, monkeypatch, sandbox):
    monkeypatch.setenv("KHYVE_RUNDIR", str(tmp_path / "run"))
    args = ["-m", "64M", "-c", "2", "-l", "com1,stdio", "--debug-exit", "--kernel",
            guest("serialecho"), "--append", "port=1 timeout=20000"]
    k = Background(args + ([] if sandbox else ["--no-sandbox"]) + ["t0"], tmp_path)
    want = 2 if sandbox else 0  # SECCOMP_MODE_FILTER
    try:
        k.wait_for(k.stdout, r"ECHO: ready")
        # The main thread puts its filter on once the vCPUs are made,
        # which the guest may outrun.
        deadline = time.monotonic() + 10
        while True:
            modes = seccomp_modes(k.proc.pid)
            if all(m == want for m in modes.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        k.kill()
    # main (the event loop), two vCPUs, and with the sandbox the starter
    assert len(modes) >= (4 if sandbox else 3), modes
    assert all(m == want for m in modes.values()), modes


@pytest.mark.parametrize("cpus", [9, 16])
def test_many_vcpus_run_under_the_sandbox(tmp_path, monkeypatch, cpus):
    # Each vCPU's ioctls are allowed on the VM's vCPU descriptors, one
    # range (src/sandbox/bpf_fds.h) that vm.c makes contiguous though each
    # vCPU's statistics descriptor is made beside it. Past eight threads
    # glibc counts the CPUs on a thread's first malloc, which the vCPU
    # list forbids: the sandbox has each thread make it before its filter.
    monkeypatch.setenv("KHYVE_RUNDIR", str(tmp_path / "run"))
    r = passed(khyve("-m", "64M", "-c", str(cpus), "-l", "com1,stdio", "--debug-exit",
                     "--kernel", guest("smp"), "t0"))
    assert f"CPUS: {cpus}" in r.out, r
    for i in range(1, cpus):
        assert f"CPU {i} up" in r.out, r


def test_the_terminal_is_restored_after_a_report(image):
    # On a terminal the console is raw; the report restores it, as the
    # other ways out do: stty shows the same settings before and after.
    import pexpect
    env = dict(os.environ, **{HOOK: "blk_io"})
    cmd = (f"stty -a; echo ==; {KHYVE} -m 64M -l com1,stdio --debug-exit -s 0,hostbridge "
           f"-s 3,virtio-blk,{image} --kernel {guest('virtioblk')} "
           "--append 'read=0 rcount=8' t0; echo status=$?; stty -a; echo ==")
    child = pexpect.spawn("/bin/sh", ["-c", cmd], env=env, timeout=TIMEOUT, encoding="utf-8",
                          codec_errors="replace")
    child.expect("==")
    before = child.before.strip()
    child.expect(r"made forbidden system call personality \(135\)")
    child.expect(r"status=(\d+)")
    assert child.match.group(1) == "4"
    child.expect("==")
    after = child.before.strip()
    child.expect(pexpect.EOF)
    assert after == before
