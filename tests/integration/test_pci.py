"""PCI bus 0: enumeration matches the -s options, BARs, capabilities,
INTx routing in the MP table and the DSDT, MCFG and the e820 reservation,
and -s errors. Proven with the pcienum test guest."""
import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import clean, passed, GUEST_PASS, khyve, run_guest
from test_cli import assert_one_error


def functions(out):
    return {m[0]: dict(id=m[1], cls=m[2], hdr=m[3], pin=int(m[4]), line=int(m[5]))
            for m in re.findall(r"PCI (\w\w\.\d) id=(\w+:\w+) class=(\w+) rev=\w+ hdr=(\w+) "
                                r"subsys=\S+ pin=(\d) line=(\d+)", out)}


SLOTS = ["-s", "0,hostbridge", "-s", "3,virtio-rnd", "-s", "5:0,virtio-rnd",
         "-s", "5:1,virtio-rnd", "-s", "0:7:0,amd_hostbridge", "-s", "31,lpc"]


def test_enumeration_matches_the_command_line():
    r = passed(run_guest("pcienum", *SLOTS))
    f = functions(r.out)
    assert set(f) == {"00.0", "03.0", "05.0", "05.1", "07.0", "1f.0"}, r
    assert f["00.0"]["id"] == "1275:1275" and f["00.0"]["cls"] == "060000"
    assert f["07.0"]["id"] == "1022:7432"
    assert f["1f.0"]["id"] == "8086:7000" and f["1f.0"]["cls"] == "060100"
    for bdf in ("03.0", "05.0", "05.1"):
        assert f[bdf]["id"] == "1af4:1044" and f[bdf]["pin"] == 1
        assert 16 <= f[bdf]["line"] <= 23
    assert f["05.0"]["hdr"] == "80" and f["03.0"]["hdr"] == "00"  # multi-function
    assert "ECAM: base=0xe0000000 e820=reserved" in r.out
    # Each virtio function: MSI-X table BAR (mem32 4 KiB) and the 16 KiB
    # 64-bit virtio BAR, the vendor capabilities, MSI-X and MSI.
    bars = re.findall(r"BAR 05\.1 (\d) (\w+) addr=(\w+) size=(\w+)", r.out)
    assert [(b[0], b[1], b[3]) for b in bars] == [("1", "mem32", "0x1000"),
                                                  ("4", "mem64", "0x4000")]
    caps = re.findall(r"CAP 03\.0 off=\w+ id=(\w+)", r.out)
    # common, ISR, notify and PCI-config windows (virtio-rnd has no device config)
    assert caps.count("0x09") == 4 and "0x11" in caps and "0x05" in caps
    # INTx: the MP table agrees with the interrupt line register.
    for m in re.findall(r"INTX (\S+) pin=A line=(\d+) mptable=(-?\d+)", r.out):
        assert m[1] == m[2], r
    assert "PCI: functions=6" in r.out


def test_no_pci_bus_without_s():
    r = passed(run_guest("pcienum"))
    assert "ECAM: none" in r.out and "PCI: functions=0" in r.out


@pytest.fixture
def acpi_dump(tmp_path):
    r = passed(run_guest("hello", *SLOTS, "--dump-acpi", str(tmp_path)))
    return tmp_path


def test_mcfg_describes_ecam(acpi_dump):
    data = (acpi_dump / "MCFG.dat").read_bytes()
    base, seg, start, end = struct.unpack_from("<QHBB", data, 44)
    assert (base, seg, start, end) == (0xE0000000, 0, 0, 0)


@pytest.mark.skipif(shutil.which("iasl") is None, reason="acpica-tools not installed")
def test_dsdt_routes_every_intx_pin(acpi_dump, tmp_path):
    r = subprocess.run(["iasl", "-d", "DSDT.dat"], cwd=acpi_dump, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dsl = (acpi_dump / "DSDT.dsl").read_text()
    prt = re.findall(r"Package \(0x04\)\s*\{\s*(0x[0-9A-F]+),\s*(\w+),\s*(\w+),\s*(0x[0-9A-F]+)",
                     dsl)
    routes = {(int(a, 16) >> 16, 0 if p == "Zero" else int(p, 16), int(g, 16))
              for a, p, _, g in prt}
    out = passed(run_guest("pcienum", *SLOTS)).out
    lines = {int(bdf[:2], 16): int(line)
             for bdf, line in re.findall(r"INTX (\w\w)\.\d pin=A line=(\d+)", out)}
    assert {(dev, 0, gsi) for dev, gsi in lines.items()} <= routes, (routes, lines)
    assert "PNP0A08" in dsl  # PCI Express root bridge (ECAM)


@pytest.mark.parametrize("args,needles", [
    (["-s", "3,virtio-rnd", "-s", "3,virtio-rnd"], ["3:0", "already taken"]),
    (["-s", "3:0,virtio-rnd", "-s", "3,hostbridge"], ["already taken"]),
    (["-s", "3,ahci-cd"], ["unknown PCI emulation 'ahci-cd'"]),
    (["-s", "3,virtio-rnd,foo=1"], ["virtio-rnd"]),
    (["-s", "0,hostbridge,x"], ["hostbridge"]),
    (["-s", "32,virtio-rnd"], ["slot must be 0-31"]),
    (["-s", "3:9,virtio-rnd"], ["function 0-7"]),
    (["-s", "1:3:0,virtio-rnd"], ["bus 0"]),
    (["-s", "virtio-rnd"], ["slot"]),
    (["-s", "x,virtio-rnd"], ["slot"]),
    (["-s", "30,lpc", "-s", "31,lpc"], ["one lpc"]),
])
def test_bad_slot_options(args, needles, tmp_path):
    r = khyve("-m", "64M", *args, "--kernel", "/nonexistent", "vm0")
    assert_one_error(r, *needles)


def test_function_without_function_0():
    r = run_guest("hello", "-s", "4:1,virtio-rnd")
    assert_one_error(r, "no function 0")
