"""ACPI: the tables khyve builds, the PM timer, the power button on
SIGTERM, S5 and the reset register."""
import os
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from conftest import KHYVE, TIMEOUT, Session, guest, khyve, run_guest


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
    ids, off = [], 44
    while off < len(madt):
        kind, length = madt[off], madt[off + 1]
        if kind == 0:
            ids.append(madt[off + 3])
        off += length
    assert ids == [0, 1, 2, 3]


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
    # only the com ports on the command line are described
    assert dsdt.count("PNP0501") == 1
    fadt = (tmp_path / "FACP.dsl").read_text()
    assert re.search(r"PM1A Event Block Address : 0+400", fadt)
    assert re.search(r"PM Timer Block Address : 0+408", fadt)


def test_pm_timer_runs_at_its_rate():
    r = run_guest("pmtimer")
    assert r.status == 1, r
    ticks = int(re.search(r"ticks_per_rtc_second=(\d+)", r.out).group(1))
    # Loosely: one RTC second is only as exact as this machine's KVM lets
    # the guest poll it.
    assert 3579545 * 0.8 < ticks < 3579545 * 1.2, ticks


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


def test_sigint_without_stdio_console_powers_off():
    p = subprocess.Popen([KHYVE, "-m", "64M", "--kernel", guest("powerbutton"), "int1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=TIMEOUT) == 1
