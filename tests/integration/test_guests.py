"""The core platform, proven with the freestanding test guests."""
import datetime
import os
import re
import zlib

import pytest

from conftest import clean, passed, GUEST_PASS, guest, khyve, run_guest


def test_hello_serial_output():
    r = passed(run_guest("hello"))
    assert "Hello from the khyve test guest" in r.out


E820_64M = [
    (0x0, 0x9FC00, 1),
    (0x9FC00, 0x400, 2),
    (0xE0000, 0x20000, 2),
    (0x100000, 0x3F00000, 1),
]


def e820(out):
    return [(int(b, 16), int(l, 16), int(t))
            for b, l, t in re.findall(r"E820 base=(\w+) len=(\w+) type=(\d+)", out)]


def modules(out):
    return {int(i): dict(addr=int(a, 16), size=int(s), crc=int(c, 16), cmdline=cl)
            for i, a, s, c, cl in re.findall(
                r"MODULE (\d+): addr=(\w+) size=(\d+) sum=\w+ crc32=(\w+) head=\w+ cmdline=(.*)",
                out)}


@pytest.fixture
def module_files(tmp_path):
    a = tmp_path / "first.bin"
    a.write_bytes(os.urandom(70000))
    b = tmp_path / "second.bin"
    b.write_bytes(b"module two\n" * 333)
    return a, b


@pytest.mark.parametrize("image,protocol", [("bootinfo", "pvh"), ("bootinfo.mb.elf", "multiboot"),
                                            ("bootinfo.mb64", "multiboot")])
def test_boot_protocol_handover(image, protocol, module_files):
    a, b = module_files
    extra = ["--boot-format", "multiboot"] if image == "bootinfo.mb64" else []
    r = passed(run_guest("bootinfo", *extra, kernel=guest(image), append="root=/dev/vda quiet x=1",
                         modules=[f"{a} alpha beta", str(b)]))
    assert f"protocol={protocol}" in r.out
    assert e820(r.out) == E820_64M
    cmdline = re.search(r"CMDLINE: (.*)", r.out).group(1).strip()
    if protocol == "multiboot":
        # GRUB and QEMU hand over the kernel's path first.
        assert cmdline == f"{guest(image)} root=/dev/vda quiet x=1"
    else:
        assert cmdline == "root=/dev/vda quiet x=1"
    mods = modules(r.out)
    assert len(mods) == 2
    assert mods[0]["size"] == a.stat().st_size and mods[0]["crc"] == zlib.crc32(a.read_bytes())
    assert mods[1]["size"] == b.stat().st_size and mods[1]["crc"] == zlib.crc32(b.read_bytes())
    if protocol == "multiboot":
        assert mods[0]["cmdline"].strip() == f"{a} alpha beta"
        assert mods[1]["cmdline"].strip() == str(b)
    else:
        assert mods[0]["cmdline"].strip() == "alpha beta"
    # Modules are page aligned, do not overlap, and lie in RAM.
    assert mods[0]["addr"] % 4096 == 0 and mods[1]["addr"] % 4096 == 0
    lo, hi = sorted(mods.values(), key=lambda m: m["addr"])
    assert lo["addr"] + lo["size"] <= hi["addr"] and hi["addr"] + hi["size"] <= 64 << 20
    assert "FWCFG: signature=QEMU ram=67108864 cpus=1 max_cpus=1" in r.out


def test_unclaimed_ports_read_all_ones_and_kvm_leaves_are_visible():
    r = passed(run_guest("bootinfo"))
    assert "UNCLAIMED: inb=0xff inw=0xffff inl=0xffffffff" in r.out
    m = re.search(r"HYPERVISOR: signature=(\S*) max_leaf=(\w+) features=(\w+)", r.out)
    assert m and m.group(1) == "KVMKVMKVM" and int(m.group(2), 16) >= 0x40000001
    assert int(m.group(3), 16) & (1 << 3)  # KVM_FEATURE_CLOCKSOURCE2: kvmclock


def test_memory_above_4g():
    r = passed(run_guest("bootinfo", mem="5G"))
    m = e820(r.out)
    assert (0x100000, 0xC0000000 - 0x100000, 1) in m
    assert (0x100000000, 0x80000000, 1) in m
    assert "ram=5368709120" in r.out


def test_memory_bare_number_is_mib():
    r = passed(run_guest("bootinfo", mem="96"))
    assert "ram=100663296" in r.out


@pytest.mark.parametrize("cpus,expected", [("2", 2), ("3", 3)])
def test_every_vcpu_starts(cpus, expected):
    r = passed(run_guest("smp", cpus=cpus))
    assert f"CPUS: {expected}" in r.out
    assert f"MADT: cpus={expected}" in r.out
    assert re.search(rf"MPTABLE: .* cpus={expected}", r.out)
    for i in range(1, expected):
        assert f"CPU {i} up" in r.out


def test_topology_in_cpuid():
    r = passed(run_guest("smp", cpus="cpus=4,sockets=2,cores=2"))
    assert "CPUS: 4" in r.out
    topo = {int(m[0]): m[1] for m in re.findall(r"TOPO (\d+): (.*)", r.out)}
    expect = {0: (0, 0, 0), 1: (0, 1, 0), 2: (1, 0, 0), 3: (1, 1, 0)}
    for cpu, (pkg, core, thread) in expect.items():
        fields = dict(kv.split("=") for kv in topo[cpu].split())
        assert fields["x2apic"] == str(cpu)
        assert fields["core_count"] == "2" and fields["smt_count"] == "1"
        assert (fields["pkg"], fields["core"], fields["thread"]) == (str(pkg), str(core), str(thread))


def rtc_time(out):
    m = re.search(r"RTC: (\d+-\d+-\d+ \d+:\d+:\d+)", out)
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")


def test_rtc_keeps_utc_with_u():
    r = passed(run_guest("rtc", "-u"))
    now = datetime.datetime.utcnow()
    assert abs((rtc_time(r.out) - now).total_seconds()) < 10


def test_rtc_keeps_local_time_by_default():
    env = dict(os.environ, TZ="Etc/GMT-3")  # UTC+3
    args = ["-m", "64M", "-l", "com1,stdio", "--debug-exit", "--kernel", guest("rtc"), "t0"]
    r = passed(khyve(*args, env=env))
    now = datetime.datetime.utcnow() + datetime.timedelta(hours=3)
    assert abs((rtc_time(r.out) - now).total_seconds()) < 10


@pytest.mark.parametrize("method", ["kbd", "cf9"])
def test_reset_is_status_0(method):
    r = clean(run_guest("reset", append=f"method={method}"))
    assert r.status == 0, r


def test_triple_fault_is_status_3():
    r = clean(run_guest("triplefault"))
    assert r.status == 3, r
    assert "triple fault" in r.err


def test_halt_is_status_2():
    r = clean(run_guest("halt"))
    assert r.status == 2, r
    assert "halted" in r.err


def test_halt_with_every_vcpu_halted():
    r = clean(run_guest("halt", cpus=2, append="smp=1"))
    assert r.status == 2, r


def test_debug_exit_other_port_not_claimed_by_default():
    # Without --debug-exit the port is unclaimed: the guest's write is
    # dropped and it falls back to halting.
    r = clean(run_guest("hello", debug_exit=False))
    assert r.status == 2, r
    assert "PASS" in r.out


def test_unhandled_exit_prints_registers_and_is_status_4():
    r = clean(run_guest("mmiojump"))
    assert r.status == 4, r
    assert "registers" in r.err and "rip 00000000d0000000" in r.err, r
