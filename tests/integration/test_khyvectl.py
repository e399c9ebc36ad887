"""khyvectl on running VMs (through khyve's control socket) and prepared
ones (their entry state): registers of a suspended guest read and written
(the guest reports what was set), KVM's statistics by name, --force-reset
and --force-poweroff as a guest reset and poweroff, --destroy of a running
VM, --list, --console on a pty, and bad input."""
import os
import re
import subprocess

import pytest

from conftest import KHYVECTL, RUNDIR, TIMEOUT, Background, guest, khyve
from test_named_vm import ctl, ctl_error, listing, prepare, spinner, vmdir


def symbol(name):
    """Address and size of a test guest's symbol (gdbtarget)."""
    out = subprocess.run(["nm", "-S", guest("gdbtarget")], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] == name:
            return int(f[0], 16), int(f[1], 16)
    raise AssertionError(f"no symbol {name} in gdbtarget")


def regs(out):
    """{"rip": (cpu, value), ...} from bhyvectl-style lines."""
    found = {}
    for m in re.finditer(r"^(\w+)\[(\d+)\]\s+0x([0-9a-f]+)$", out, re.M):
        found.setdefault(m.group(1), {})[int(m.group(2))] = int(m.group(3), 16)
    return found


def ok(*args):
    status, out, err = ctl(*args)
    assert status == 0 and not err, (args, status, out, err)
    return out


def test_registers_of_a_suspended_guest(tmp_path):
    b = spinner(tmp_path, "regs0")
    try:
        ok("--vm=regs0", "--suspend")
        assert listing()["regs0"]["state"] == "running"
        spin, spin_size = symbol("spin_until_released")
        r = regs(ok("--vm=regs0", "--get-rip", "--get-rsp"))
        rip, rsp = r["rip"][0], r["rsp"][0]
        assert spin <= rip < spin + spin_size, hex(rip)
        # Suspended: the same place on every look.
        assert regs(ok("--vm=regs0", "--get-rip"))["rip"][0] == rip
        # Send the guest to guest_exit(42), as a call would: the guest
        # reports the argument in its exit status, (42 << 1) | 1.
        exit_fn, _ = symbol("guest_exit")
        ok("--vm=regs0", "--set-rdi=42", f"--set-rsp={rsp - 8:#x}", f"--set-rip={exit_fn:#x}")
        r = regs(ok("--vm=regs0", "--get-rip", "--get-rdi", "--get-rsp"))
        assert r["rip"][0] == exit_fn and r["rdi"][0] == 42 and r["rsp"][0] == rsp - 8
        ok("--vm=regs0", "--resume")
        assert b.wait() == (42 << 1) | 1, b.describe()
    finally:
        b.kill()


def test_get_all_covers_every_vcpu(tmp_path):
    b = spinner(tmp_path, "all0", "-c", "2")
    try:
        out = ok("--vm=all0", "--get-all")
        r = regs(out)
        assert set(r["rip"]) == {0, 1} and set(r["cr0"]) == {0, 1}
        assert r["cr0"][0] & 0x80000001 == 0x80000001  # the BSP runs with paging on
        assert re.search(r"^cs desc\[0\]\t0x0+/0x[0-9a-f]{8}/0x[0-9a-f]{8}$", out, re.M), out
        assert re.search(r"^gdtr\[1\]\t\t0x[0-9a-f]{16}/0x[0-9a-f]{8}$", out, re.M), out
        one = regs(ok("--vm=all0", "--get-all", "--cpu=1"))
        assert set(one["rip"]) == {1}
        ctl_error(["--vm=all0", "--get-rip", "--cpu=2"], "2 vCPUs")
    finally:
        ctl("--vm=all0", "--force-poweroff")
        b.kill()


def test_get_stats_names_kvms_statistics(tmp_path):
    b = spinner(tmp_path, "stats0")
    try:
        out = ok("--vm=stats0", "--get-stats")
        assert out.startswith("vcpu0 stats:\n"), out
        stats = dict(l.split("\t") for l in out.splitlines()[1:])
        stats = {k.strip(): v for k, v in stats.items()}
        # The guest has run: it left KVM_RUN (each UART write did).
        assert int(stats["exits"]) > 0, stats
        assert "halt_wakeup" in stats and "io_exits" in stats
    finally:
        ctl("--vm=stats0", "--force-poweroff")
        b.kill()


def test_force_poweroff_and_force_reset(tmp_path):
    b = spinner(tmp_path, "off0")
    try:
        ok("--vm=off0", "--force-poweroff")
        assert b.wait() == 1
    finally:
        b.kill()
    assert "off0" in listing()  # still created
    b = spinner(tmp_path, "off0")
    try:
        ok("--vm=off0", "--force-reset")
        assert b.wait() == 0
    finally:
        b.kill()
    assert listing()["off0"]["state"] == "created"


def test_destroy_stops_a_running_vm(tmp_path):
    b = spinner(tmp_path, "gone0")
    try:
        ok("--vm=gone0", "--destroy")
        assert not os.path.exists(vmdir("gone0"))
        assert b.wait() == 1
    finally:
        b.kill()
    assert "gone0" not in listing()


def test_list_shows_every_vm(tmp_path):
    prepare("lp0")
    assert ctl("--vm=lc0", "--create")[0] == 0
    b = spinner(tmp_path, "lr0", "-c", "2")
    try:
        rows = listing()
        assert rows["lp0"] == {"state": "prepared", "pid": "-", "mem": "64M", "cpus": "-"}
        assert rows["lc0"]["state"] == "created"
        assert rows["lr0"] == {"state": "running", "pid": str(b.proc.pid), "mem": "64M",
                               "cpus": "2"}
    finally:
        ctl("--vm=lr0", "--destroy")
        b.kill()


def test_registers_of_a_prepared_vm():
    prepare("pr0")
    entry = open(os.path.join(vmdir("pr0"), "entry")).read()
    rip = int(re.search(r"^rip=(0x[0-9a-f]+)$", entry, re.M).group(1), 16)
    r = regs(ok("--vm=pr0", "--get-rip", "--get-rbx"))
    assert r["rip"][0] == rip and r["rbx"][0] != 0
    ok("--vm=pr0", "--set-rax=0x1234")
    assert regs(ok("--vm=pr0", "--get-rax"))["rax"][0] == 0x1234
    assert "rax=0x1234" in open(os.path.join(vmdir("pr0"), "entry")).read()
    ctl_error(["--vm=pr0", "--set-rcx=1"], "rcx", "entry state")
    ctl_error(["--vm=pr0", "--get-stats"], "not running")


def test_bad_input():
    ctl_error(["--vm=nosuch1", "--get-rip"], "nosuch1", "no such VM")
    ctl_error(["--vm=nosuch1", "--destroy"], "no such VM")
    ctl_error(["--vm=a/b", "--get-rip"], "not a valid VM name")
    ctl_error(["--vm=x", "--set-rip=junk"], "junk")
    ctl_error(["--vm=x", "--frobnicate"], "--frobnicate")
    ctl_error(["--get-rip"], "--vm")
    assert ctl("--vm=cc0", "--create")[0] == 0
    ctl_error(["--vm=cc0", "--create"], "already exists")
    ctl_error(["--vm=cc0", "--get-rip"], "not running")
    assert not os.path.exists(vmdir("nosuch1"))


def test_console_attaches_to_a_pty_port(tmp_path):
    import pexpect
    link = tmp_path / "com2"
    b = Background(["-m", "64M", "-l", "com1,stdio", "-l", f"com2,pty={link}", "--debug-exit",
                    "--kernel", guest("serialecho"), "--append", "port=2 ack=1", "con0"], tmp_path)
    b.wait_for(b.stdout, "ECHO: ready on com2")
    c = pexpect.spawn(KHYVECTL, ["--vm=con0", "--console=com2"], timeout=TIMEOUT,
                      encoding="utf-8", codec_errors="replace")
    try:
        c.expect_exact("~. detaches")
        c.send("abc")
        c.expect_exact("ABC")
        c.send("\r~.")  # a newline, then the escape: detached, the guest runs on
        c.expect_exact("[detached]")
        c.expect(pexpect.EOF)
        c.close()
        assert c.exitstatus == 0
        assert b.proc.poll() is None
        c = pexpect.spawn(KHYVECTL, ["--vm=con0", "--console=com2"], timeout=TIMEOUT,
                          encoding="utf-8", codec_errors="replace")
        c.expect_exact("~. detaches")
        c.send("dQ")
        c.expect_exact("BYE 5")  # a, b, c, \r and d
        c.send("x")  # the guest's ack: it ends
        assert b.wait() == 1, b.describe()
        assert "PASS" in b.stdout()
    finally:
        c.close(force=True)
        b.kill()


def test_console_of_a_stdio_port_is_refused(tmp_path):
    b = spinner(tmp_path, "con1")
    try:
        ctl_error(["--vm=con1", "--console"], "stdio", "nothing to attach")
    finally:
        ctl("--vm=con1", "--force-poweroff")
        b.kill()


def test_wakeup_wakes_a_guest_suspended_to_ram(tmp_path):
    """--wakeup is QEMU's system_wakeup: a guest in ACPI S3 resumes at its
    waking vector, seeing a power-button wake; when it is awake, --wakeup
    is refused."""
    k = Background(["-m", "64M", "-l", "com1,stdio", "--debug-exit", "--kernel", guest("s3"),
                    "--append", "wake=button", "s3wake"], tmp_path)
    try:
        k.wait_for(k.stderr, "guest suspended to RAM")
        ok("--vm=s3wake", "--wakeup")
        assert k.wait() == 1, k.describe()
        assert "S3: resumed via real vector" in k.stdout(), k.describe()
        assert "WAK_STS=1 PWRBTN_STS=1 RTC_STS=0 memory=ok" in k.stdout(), k.describe()
        assert "PASS" in k.stdout(), k.describe()
        assert "guest woken from S3 by the wake request" in k.stderr(), k.describe()
    finally:
        k.kill()


def test_wakeup_of_a_guest_that_is_awake_is_refused(tmp_path):
    k = spinner(tmp_path, "awake0")
    try:
        status, out, err = ctl("--vm=awake0", "--wakeup")
        assert status != 0 and "not suspended to RAM" in err, (status, out, err)
        assert len(err.strip().splitlines()) == 1, err
    finally:
        k.kill()
