"""FreeBSD kernels as bhyveload loads them (issue 10, item 3): khyve --kernel
boots the fbsdmeta test guest, a FreeBSD-like kernel linked at KERNBASE,
which checks field by field the metadata and the entry state it was handed
(tests/guests/fbsdmeta.c) and prints what it found; here the test compares
that with what it asked for: the modules, the md_image's bytes, the kenv,
the howto, the memory map, and the CPUID leaves every guest gets."""
import os
import re

from conftest import BUILD, guest, passed, run_guest

MODULE = os.path.join(BUILD, "tests", "guests", "fbsdmod.ko")


def lines(out, prefix):
    return [l[len(prefix):].strip() for l in out.splitlines() if l.startswith(prefix)]


def test_fbsdmeta_with_module_md_image_kenv_and_flags(tmp_path):
    md = tmp_path / "mfsroot.img"
    data = b"FBSDMETA-MD-IMAGE\n" + bytes(range(256)) * 20
    md.write_bytes(data)
    r = passed(run_guest("fbsdmeta", "--module", MODULE, "--module", f"{md} -t md_image",
                         "--kenv", "hint.uart.1.flags=0x80", "--kenv", "boot_verbose=YES",
                         "--kenv", "hint.uart.1.flags=0x90", append="-s"))
    out = r.out
    # the entry state of userboot's amd64 path
    # CR0: PE|NE|PG (ET, bit 4, is forced on by some hosts' KVM)
    m = re.search(r"cs=0x8 ds=0x10 ss=0x10 cr0=(0x[0-9a-f]+)", out)
    assert m and int(m.group(1), 16) & ~0x10 == 0x80000021, out
    assert "efer=0x500" in out and "gdt base=" in out and "limit=0x17" in out
    assert "paging KERNBASE+2M->0x200000" in out
    m = re.search(r"stack ret=0x0 modulep=(0x[0-9a-f]+) kernend=(0x[0-9a-f]+)", out)
    assert m, out
    # the kenv: kernelname, bhyveload's boot_serial, ours (a later --kenv wins)
    assert lines(out, "FBSDMETA: kenv") == [
        "kernelname=/boot/kernel/kernel", "boot_serial=1", "hint.uart.1.flags=0x90",
        "boot_verbose=YES"]
    # -s (RB_SINGLE 0x2) + boot_serial (RB_SERIAL 0x1000) + boot_verbose (0x800)
    assert re.search(r"modulep=0x[0-9a-f]+ kernend=0x[0-9a-f]+ envp=0x[0-9a-f]+ howto=0x1802", out)
    assert "kernel name=/boot/kernel/kernel type=elf kernel addr=0x200000" in out
    assert "args=-s" in out
    assert "symbol btext=0xffffffff80" in out
    # the module, with its sections laid out, and the raw file, byte for byte
    assert "file name=/boot/kernel/fbsdmod.ko type=elf obj module" in out
    assert re.search(r"module /boot/kernel/fbsdmod.ko sections=\d+ marker at 0x[0-9a-f]+: "
                     r"FBSDMOD-MARKER", out)
    assert f"raw /boot/mfsroot.img bytes={len(data)} sum={sum(data)}" in out, out
    # SMAP: the e820 map of a 64 MiB guest
    smap = lines(out, "FBSDMETA: smap")
    assert "0x0 0x9fc00 1" in smap and "0x100000 0x3f00000 1" in smap, smap
    # CPUID for every guest: the timing leaf and the invariant TSC
    m = re.search(r"40000010 tsc_khz=(\d+) apic_khz=(\d+)", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) == 1000000, out
    assert "invariant_tsc=1" in out
    # only the records bhyveload's loader writes (no EFI FW_HANDLE)
    assert "FBSDMETA: record" not in out


def test_fbsdmeta_plain_two_vcpus():
    # No modules, no kenv: the kernel alone, kernelname and boot_serial=1.
    r = passed(run_guest("fbsdmeta", cpus=2, mem="128M"))
    assert "files=1" in r.out
    assert lines(r.out, "FBSDMETA: kenv") == ["kernelname=/boot/kernel/kernel", "boot_serial=1"]
    assert re.search(r"howto=0x1000\r?$", r.out, re.M), r.out
    assert "0x100000 0x7f00000 1" in lines(r.out, "FBSDMETA: smap")


def test_forced_freebsd_format_and_verbose_layout():
    r = passed(run_guest("fbsdmeta", "--boot-format", "freebsd", "--verbose",
                         "--kenv", "console=comconsole"))
    # console=comconsole instead of bhyveload's boot_serial=1
    assert lines(r.out, "FBSDMETA: kenv") == ["kernelname=/boot/kernel/kernel",
                                               "console=comconsole"]
    assert "FreeBSD ELF entry at 0xffffffff80" in r.err
    assert re.search(r"FreeBSD: kenv at 0x[0-9a-f]+ \(\d+ bytes\), modulep 0x", r.err)


def test_bad_freebsd_input_is_one_line_exit_4(tmp_path):
    r = run_guest("fbsdmeta", "--kenv", "novalue")
    assert r.status == 4 and r.err.count("\n") == 1 and "--kenv" in r.err, r
    raw = tmp_path / "blob"
    raw.write_bytes(b"not an ELF module")
    r = run_guest("fbsdmeta", "--module", str(raw))
    assert r.status == 4 and r.err.count("\n") == 1, r
    assert "-t TYPE" in r.err and "blob" in r.err, r
    r = run_guest("fbsdmeta", "--module", guest("fbsdmeta"))
    assert r.status == 4 and "a second kernel" in r.err, r
    r = run_guest("hello", "--kenv", "a=b")
    assert r.status == 4 and r.err.count("\n") == 1 and "only for FreeBSD" in r.err, r
    junk = tmp_path / "kernel"
    junk.write_bytes(b"\0" * 4096)
    r = run_guest("fbsdmeta", "--boot-format", "freebsd", kernel=str(junk))
    assert r.status == 4 and r.err.count("\n") == 1 and "not an ELF file" in r.err, r
