"""ACPI: the tables khyve builds, the PM timer, the power button on
SIGTERM, S5, S3 (suspend to RAM and the wake-ups) and the reset register."""
import os
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from conftest import Background, Session, clean, guest, passed, run_guest


def checksum_ok(data):
    return sum(data) % 256 == 0


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    d = tmp_path_factory.mktemp("acpi")
    r = run_guest("hello", "--dump-acpi", str(d), cpus="cpus=4,sockets=2,cores=2")
    assert r.status == 1, r
    return d


def test_rsdp_and_root_tables(dumped):
    rsdp = (dumped / "RSDP.dat").read_bytes()
    assert rsdp[:8] == b"RSD PTR " and rsdp[15] == 2
    assert checksum_ok(rsdp[:20]) and checksum_ok(rsdp[:36])
    xsdt = (dumped / "XSDT.dat").read_bytes()
    assert checksum_ok(xsdt)
    n = (len(xsdt) - 36) // 8
    assert n >= 3
    sigs = {p.name[:4] for p in dumped.glob("*.dat")}
    assert {"FACP", "APIC", "DSDT", "FACS", "SPCR", "XSDT", "RSDT"} <= sigs
    for p in dumped.glob("*.dat"):
        if p.name.startswith(("RSDP", "FACS")):
            continue
        data = p.read_bytes()
        assert checksum_ok(data), p.name
        assert struct.unpack_from("<I", data, 4)[0] == len(data), p.name


def test_madt_lists_every_vcpu(dumped):
    madt = (dumped / "APIC.dat").read_bytes()
    ids, uids, ioapic_ids, off = [], [], [], 44
    while off < len(madt):
        kind, length = madt[off], madt[off + 1]
        if kind == 0:
            uids.append(madt[off + 2])
            ids.append(madt[off + 3])
        if kind == 1:
            ioapic_ids.append(madt[off + 2])
        off += length
    assert ids == [0, 1, 2, 3]
    assert uids == [0, 1, 2, 3]
    # KVM's in-kernel IOAPIC reads ID 0 from its ID register (issue 10)
    assert ioapic_ids == [0]


@pytest.mark.skipif(shutil.which("iasl") is None, reason="acpica-tools not installed")
def test_tables_disassemble_cleanly_with_iasl(dumped, tmp_path):
    for p in sorted(dumped.glob("*.dat")):
        if p.name.startswith("RSDP"):
            continue  # this iasl cannot load an RSDP; checked above
        shutil.copy(p, tmp_path / p.name)
        r = subprocess.run(["iasl", "-d", p.name], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, (p.name, r.stdout, r.stderr)
        dsl = (tmp_path / (p.stem + ".dsl")).read_text(errors="replace")
        assert "Error" not in r.stdout + r.stderr and "Invalid" not in dsl, p.name
    dsdt = (tmp_path / "DSDT.dsl").read_text()
    for needle in ("_S5_", "PNP0A03", "PNP0501", "PNP0B00"):
        assert needle in dsdt
    # a processor device per vCPU, _UID as the MADT's processor UID; no
    # empty _PRT without PCI slots (issue 10)
    cpus = re.findall(r'Device \((C00[0-9A-F])\)\s*\{\s*Name \(_HID, "ACPI0007"', dsdt)
    assert cpus == ["C000", "C001", "C002", "C003"], dsdt
    assert "_PRT" not in dsdt
    # only the com ports on the command line are described
    assert dsdt.count("PNP0501") == 1
    fadt = (tmp_path / "FACP.dsl").read_text()
    assert re.search(r"PM1A Event Block Address : 0+400", fadt)
    assert re.search(r"PM Timer Block Address : 0+408", fadt)


def test_pm_timer_runs_at_its_rate():
    r = run_guest("pmtimer")
    assert r.status == 1, r
    m = re.search(r"ticks_per_rtc_second=(\d+)\.\.(\d+)", r.out)
    lo, hi = int(m.group(1)), int(m.group(2))
    # The guest's bounds hold however its vCPU was scheduled; the RTC and
    # the PM timer may differ by what NTP slews the host clock (< 0.1 %).
    assert lo <= 3579545 * 1.001 and hi >= 3579545 * 0.999, (lo, hi)


def test_s5_is_poweroff():
    s = Session(["-m", "64M", "-l", "com1,stdio", "--kernel", guest("demo"), "s5"])
    s.expect("Press any key")
    s.send("q")
    assert s.wait() == 1


def test_reset_register_is_reboot():
    r = run_guest("reset", append="method=acpi")
    assert r.status == 0, r
    assert "address=0xcf9 value=0x6" in r.out


def test_sigterm_presses_the_power_button():
    s = Session(["-m", "64M", "-l", "com1,stdio", "--kernel", guest("powerbutton"), "pwr0"])
    s.expect("POWERBUTTON: waiting")
    s.kill(signal.SIGTERM)
    s.expect("POWERBUTTON: pressed")
    s.expect("SLP_TYP=5")
    assert s.wait() == 1


def test_sigint_on_stdio_console_is_a_byte_for_the_guest():
    s = Session(["-m", "64M", "-l", "com1,stdio", "--debug-exit", "--kernel", guest("serial"),
                 "int0"])
    s.expect("READY")
    s.kill(signal.SIGINT)
    time.sleep(0.3)
    assert s.child.isalive()
    s.send("after\r")
    s.expect("GOT: \x03after")
    assert s.wait() == 1


def test_sigint_without_stdio_console_powers_off(tmp_path):
    log = tmp_path / "com1.log"
    k = Background(["-m", "64M", "-l", f"com1,log={log}", "--kernel", guest("powerbutton"),
                    "int1"], tmp_path)
    try:
        k.wait_for(lambda: log.read_text() if log.exists() else "", "POWERBUTTON: waiting")
        k.proc.send_signal(signal.SIGINT)
        assert k.wait() == 1, k.describe()
    finally:
        k.kill()


# ---- S3: suspend to RAM (tests/guests/s3.c) ----

def test_s3_rtc_alarm_wakes_the_guest_at_its_waking_vector():
    r = passed(run_guest("s3", append="wake=rtc delay=2"))
    assert "S3: SLP_TYP=1 " in r.out
    assert "S3: resumed via real vector (stub CS=0x900 runs=1)" in r.out, r
    assert re.search(r"WAK_STS=1 PWRBTN_STS=0 RTC_STS=1 memory=ok", r.out), r
    assert "guest suspended to RAM (ACPI S3)" in r.err, r
    assert "guest woken from S3 by the RTC alarm" in r.err, r


def test_s3_x_waking_vector_is_entered_in_protected_mode_with_aps():
    r = passed(run_guest("s3", append="wake=rtc delay=1 vector=x", cpus=2))
    assert "S3: resumed via x vector" in r.out, r
    assert "RTC_STS=1 memory=ok" in r.out, r


def test_s3_without_waking_vector_reboots():
    r = clean(run_guest("s3", append="wake=rtc delay=1 vector=none"))
    assert r.status == 0, r
    assert "S3: suspending" in r.out and "resumed" not in r.out, r
    assert "without a usable waking vector" in r.err, r


def test_s3_sigterm_wakes_then_presses_the_power_button():
    s = Session(["-m", "64M", "-l", "com1,stdio", "--debug-exit", "--kernel", guest("s3"),
                 "--append", "wake=button button=1", "s3pwr"])
    s.expect("S3: suspending")
    # Before or after SLP_EN alike: a press the guest has not cleared is
    # a wake event, so this does not race with the guest.
    s.kill(signal.SIGTERM)
    s.expect(r"S3: resumed via real vector")
    s.expect(r"WAK_STS=1 PWRBTN_STS=1 RTC_STS=0 memory=ok")
    s.expect("S3: waiting for the power button")
    s.kill(signal.SIGTERM)  # awake now: a press, not a wake
    s.expect("POWERBUTTON: pressed")
    s.expect("SLP_TYP=5")
    out = s.output
    assert s.wait() == 1
    assert "FAIL" not in out


def vcpu_threads(pid):
    """{name: (state, utime + stime)} of khyve's vCPU threads."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if name.startswith("vcpu"):
            threads[name] = (fields[0], int(fields[11]) + int(fields[12]))
    return threads


def test_s3_vcpus_block_while_suspended(tmp_path):
    k = Background(["-m", "64M", "-c", "2", "-l", "com1,stdio", "--debug-exit", "--kernel",
                    guest("s3"), "--append", "wake=button", "s3blk"], tmp_path)
    try:
        k.wait_for(k.stderr, "guest suspended to RAM")
        # Blocked, not spinning: no CPU time at all over half a second
        # while asleep. A spinning thread never passes; one that was still
        # on its way to park may take a tick, hence a few tries.
        for _ in range(5):
            before = vcpu_threads(k.proc.pid)
            time.sleep(0.5)
            after = vcpu_threads(k.proc.pid)
            if (after == before and len(after) == 2
                    and all(st == "S" for st, _ in after.values())):
                break
        else:
            raise AssertionError(f"vCPU threads not idle: {before} then {after}")
        assert "resumed" not in k.stdout()
        k.proc.send_signal(signal.SIGTERM)
        assert k.wait() == 1
        assert "PASS" in k.stdout() and "PWRBTN_STS=1" in k.stdout(), k.describe()
    finally:
        k.kill()


def test_s3_sighup_while_suspended_powers_off(tmp_path):
    k = Background(["-m", "64M", "-l", "com1,stdio", "--debug-exit", "--kernel", guest("s3"),
                    "--append", "wake=button", "s3hup"], tmp_path)
    try:
        k.wait_for(k.stderr, "guest suspended to RAM")
        k.proc.send_signal(signal.SIGHUP)
        assert k.wait() == 1
        assert "resumed" not in k.stdout() and "woken" not in k.stderr(), k.describe()
    finally:
        k.kill()
