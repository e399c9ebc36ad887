"""Run what QEMU runs: kernels linked by hand with `as` and plain
`ld -Ttext=ADDR`, no linker script (tests/guests/plainld.s and its meson
entries). GNU ld then adds a PT_LOAD for the ELF headers just below the text
(0xff000, in the BIOS area, for -Ttext=0x100000) and gives allocated notes a
PT_LOAD of their own far above it; a kernel linked below 1 MiB sits where
khyve's boot data usually goes. The same file boots under khyve and under
QEMU (-M pc and -M microvm, TCG), and the guest says so itself: its
`PLAINLD:` lines and PASS, after checking that the boot info, command line
and stack it was handed lie outside its image and that its data and bss are
as linked."""
import re
import subprocess

import pytest

from conftest import TIMEOUT, guest, passed, run_guest

QEMU = "qemu-system-x86_64"
QEMU_MACHINES = {
    "pc": "pc",
    "microvm": "microvm,x-option-roms=off,isa-serial=on,rtc=on",
}
# image: (protocol, how ld laid it out, checked in khyve's --verbose lines)
IMAGES = {
    # ld -m elf_i386 -Ttext=0x100000: headers at 0xff000, .note.khyve at
    # 0x8048xxx (outside a 128 MiB guest)
    "plainld-mb32": ("multiboot", [
        r"khyve: ELF segment 0 at 0xff000-0xff[0-9a-f]{3} skipped: it holds only the ELF and "
        r"program headers and lies in the EBDA/BIOS area 0x9fc00-0xfffff, which is not RAM",
        r"khyve: ELF segment \d at 0x8048[0-9a-f]{3}-0x8048[0-9a-f]{3} skipped: it holds only "
        r"notes and lies outside guest RAM \(128 MiB\)",
        r"khyve: Multiboot entry at 0x1000[0-9a-f]{2} in 32-bit protected mode",
    ]),
    # ld -Ttext=0x100000 (ELF64): headers at 0xff000, the Xen note at 0x400xxx
    "plainld-pvh64": ("pvh", [
        r"khyve: ELF segment 0 at 0xff000-0xff[0-9a-f]{3} skipped: it holds only the ELF and "
        r"program headers",
        r"khyve: ELF segment \d at 0x400[0-9a-f]{3}-0x400[0-9a-f]{3} \(\d+ bytes from file",
        r"khyve: PVH ELF entry at 0x100000 in 32-bit protected mode",
    ]),
    # ld -m elf_i386 -Ttext=0x10000: the headers (loaded, in RAM) at 0xf000
    # and the image over the usual stack
    "plainld-mblow": ("multiboot", [
        r"khyve: ELF segment 0 at 0xf000-0xf[0-9a-f]{3} \(\d+ bytes from file offset 0x0\)",
        r"khyve: the stack moved to 0x[0-9a-f]+-0x[0-9a-f]+: its usual place 0x8000-0x1ffff "
        r"overlaps ELF segment 0 at 0xf000-",
        r"khyve: Multiboot entry at 0x100[0-9a-f]{2} in 32-bit protected mode",
    ]),
    # the a.out kludge in a flat binary loaded at 0x10000
    "plainld-kludge.bin": ("multiboot", [
        r"khyve: Multiboot image at 0x10000-0x1[0-9a-f]{4} \(\d+ bytes from file offset 0x0\)",
        r"khyve: the stack moved to 0x[0-9a-f]+-0x[0-9a-f]+: its usual place 0x8000-0x1ffff "
        r"overlaps Multiboot image at 0x10000-",
    ]),
}


def check_guest(out, image, protocol, marker):
    """The guest's own report: hello, image and boot info, command line, PASS."""
    assert f"PLAINLD: hello ({protocol})" in out, out
    m = re.search(r"PLAINLD: image=(0x\w+)-(0x\w+) info=(0x\w+) cmdline_at=(0x\w+)", out)
    assert m, out
    start, end = int(m.group(1), 16), int(m.group(2), 16)
    assert start == (0x100000 if image in ("plainld-mb32", "plainld-pvh64") else 0x10000), out
    assert not start <= int(m.group(3), 16) < end, out
    if marker:
        assert re.search(r"PLAINLD: cmdline=.*" + re.escape(marker), out), out
    assert "PASS" in out and "FAIL" not in out, out


@pytest.mark.parametrize("image", IMAGES)
def test_khyve_boots_a_plain_ld_kernel(image):
    protocol, said = IMAGES[image]
    r = passed(run_guest(None, "--verbose", kernel=guest(image), mem="128M",
                         append="marker=khyve-plainld"))
    check_guest(r.out, image, protocol, "marker=khyve-plainld")
    for pattern in said:
        assert re.search(pattern, r.err), (pattern, r)
    # --verbose lines are khyve's, one per line
    assert all(line.startswith("khyve: ") for line in r.err.splitlines() if line), r
    assert re.search(r"khyve: boot data: the GDT at 0x\w+-0x\w+, the stack at", r.err), r


def test_khyve_is_quiet_without_verbose():
    r = passed(run_guest(None, kernel=guest("plainld-mb32"), mem="128M"))
    assert "skipped" not in r.err and "boot data" not in r.err, r


def test_pvh_note_segment_outside_ram_is_skipped():
    # In a 4 MiB guest the Xen note's PT_LOAD (0x400xxx) is past the end of
    # RAM; the entry note is still read from the file.
    r = passed(run_guest(None, "--verbose", kernel=guest("plainld-pvh64"), mem="4M",
                         append="x=4m"))
    check_guest(r.out, "plainld-pvh64", "pvh", "x=4m")
    assert re.search(r"khyve: ELF segment \d at 0x400[0-9a-f]{3}-0x400[0-9a-f]{3} skipped: it "
                     r"holds only notes and lies outside guest RAM \(4 MiB\)", r.err), r


@pytest.mark.parametrize("machine", QEMU_MACHINES)
@pytest.mark.parametrize("image", IMAGES)
def test_qemu_boots_the_same_file(image, machine):
    protocol, _ = IMAGES[image]
    cmd = [QEMU, "-accel", "tcg", "-M", QEMU_MACHINES[machine], "-m", "128", "-nodefaults",
           "-no-user-config", "-display", "none", "-nographic", "-serial", "stdio",
           "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-kernel", guest(image), "-append", "marker=qemu-plainld"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, out, p.stderr.decode(errors="replace"))
    # QEMU puts a Multiboot command line after the highest ELF segment: for
    # plainld-mb32 that is past its note, beyond 128 MiB of RAM, so the
    # guest finds it empty there.
    check_guest(out, image, protocol, None if image == "plainld-mb32" else "marker=qemu-plainld")
