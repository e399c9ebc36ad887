"""The GDB stub with Debian's gdb in batch mode against the gdbtarget test
guest (built with debug info): breakpoints, stepping, variables, threads,
Ctrl-C, detach, the -G w hold, monitor commands, and a stub that survives
whatever arrives on its socket."""
import os
import random
import re
import socket
import subprocess
import time

import pytest

from conftest import GUEST_PASS, KHYVE, TIMEOUT, guest, khyve
from gdbutil import Khyve, Rsp, gdb_with_ctrl_c, run_gdb


@pytest.fixture
def vms():
    started = []
    yield started
    for vm in started:
        vm.kill()


def source_line(guest_file, text):
    """The line number of the first line of a test guest's source that is text."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guests",
                        guest_file)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip("\n") == text:
                return n
    raise AssertionError(f"{text!r} not in {path}")


def start(vms, tmp_path, **kw):
    vm = Khyve(tmp_path, **kw)
    vms.append(vm)
    return vm


def breakpoint_modes(vm):
    """What `monitor breakpoints` says: how Z0 is served here (int3, debug
    registers, traced) and what this host's KVM fires. Detaches."""
    rsp = Rsp(vm.port)
    out = bytes.fromhex(rsp.ask("qRcmd," + b"breakpoints".hex()).decode()).decode()
    rsp.ask("D")
    rsp.close()
    return out


def test_break_backtrace_and_a_changed_variable_the_guest_acts_on(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "continue", "bt", "print answer",
                  "print x", "set var answer = 42", "continue")
    assert re.search(r"Breakpoint 1, gdb_target_function \(x=x@entry=20\) at .*gdbtarget\.c",
                     out), out
    assert re.search(r"#1 .* in main \(\) at .*gdbtarget\.c", out), out
    assert "$1 = 1" in out and "$2 = 20" in out, out
    assert "exited with code 01" in out, out  # the guest's PASS through debug-exit
    assert vm.wait() == GUEST_PASS
    assert "ANSWER: 42 (82)" in vm.stdout(), vm.describe()


def test_single_step_next_step_and_finish(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "continue", "print $pc", "stepi",
                  "print $pc", "finish", "print $pc", "next", "next", "step", "bt 2", "detach")
    pcs = [int(v, 16) for v in re.findall(r"\$\d+ = \(void \(\*\)\(\)\) (0x[0-9a-f]+)", out)]
    assert len(pcs) == 3 and pcs[0] < pcs[1] and "<main+" in out, out
    assert re.search(r"^\d+\s+return doubled;", out, re.M), out  # stepi reached the next line
    assert re.search(r"Value returned is \$\d+ = 41", out), out  # finish
    assert re.search(r"^\d+\s+if \(cmdline_get_u64\(\"spin\"", out, re.M), out  # next
    line = source_line("gdbtarget.c", "    touch_watched();")
    assert re.search(rf"#0 +touch_watched \(\) at .*\n#1 .* in main \(\) at .*:{line}", out), out
    assert vm.wait() == GUEST_PASS, vm.describe()


def test_hardware_breakpoint_and_register_writes(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "hbreak touch_watched", "continue", "set $rbx = 0x1122334455667788",
                  "p/x $rbx", "set $xmm3.v2_int64[0] = 77", "p $xmm3.v2_int64[0]",
                  "info registers eflags", "info registers cs ss", "info all-registers",
                  "p/x $cr0", "p/x $efer", "p/x $fs_base", "detach")
    assert "Hardware assisted breakpoint 1 at" in out, out
    assert re.search(r"Breakpoint 1, touch_watched \(\)", out), out
    assert "= 0x1122334455667788" in out and "= 77" in out, out
    assert re.search(r"eflags +0x[0-9a-f]+ +\[.*\]", out), out
    assert re.search(r"cs +0x8 ", out), out
    assert re.search(r"= 0x8001\d{4}", out), out  # cr0: PG, WP, PE
    assert "= 0x500" in out, out  # efer: LMA, LME
    for reg in ("st0", "xmm15", "mxcsr", "fs_base", "gs_base", "cr3", "cr4", "cr8"):
        assert re.search(rf"^{reg} ", out, re.M), (reg, out)
    assert vm.wait() == GUEST_PASS, vm.describe()


def test_memory_by_virtual_address_through_the_page_tables(tmp_path, vms):
    """high_message is the same bytes as message through a second mapping at
    0xffff800000000000 + physical: reads and writes go through the walk."""
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "continue", "print high_message",
                  "x/s high_message", "set var *(char *)high_message = 'K'",
                  "print message", "x/2gx 0xffff900000000000",
                  "monitor translate ffff800000100000", "monitor memory virtual",
                  "x/2gx 0xffff900000000000", "monitor memory auto", "detach")
    assert re.search(r'= 0xffff8000001[0-9a-f]{5} "khyve gdb target"', out), out
    assert '"Khyve gdb target"' in out, out
    assert "Cannot access memory at address 0xffff900000000000" in out, out
    assert re.search(r"PML4E +[0-9a-f]{16}\n +PDPTE", out), out
    assert "ffff800000100000 -> physical 0000000000100000 (page of 2048 KiB)" in out, out
    assert vm.wait() == GUEST_PASS


def test_held_at_the_entry_point_in_protected_mode_without_paging(tmp_path, vms):
    """-G w: no instruction has run; the vCPU sits at the PVH entry (32-bit
    protected mode, paging off) and can be stepped there."""
    vm = start(vms, tmp_path)
    time.sleep(1.0)
    assert vm.proc.poll() is None and vm.stdout() == "", vm.describe()
    out = run_gdb(vm, "print $pc", "x/2i $pc", "monitor regs", "stepi", "stepi", "print $pc",
                  "continue")
    assert "<pvh_entry>" in out and "cli" in out, out
    assert "no paging" in out, out
    assert "exited with code 01" in out, out
    assert vm.wait() == GUEST_PASS
    assert "PASS" in vm.stdout()


def test_ctrl_c_stops_a_spinning_guest_and_vcpus_are_threads(tmp_path, vms):
    vm = start(vms, tmp_path, cpus=2, append="spin=1 smp=1")
    out = gdb_with_ctrl_c(vm, ["continue"],
                          ["info threads", "thread 1", "bt", "print $rsp", "thread 2", "bt",
                           "print $rsp", "print spin_rounds > 0", "set var released = 1",
                           "detach"], running="SPIN: waiting")
    assert "received signal SIGINT" in out, out
    assert re.search(r"1 +Thread 1 \(vCPU 0, APIC ID 0\)", out), out
    assert re.search(r"2 +Thread 2 \(vCPU 1, APIC ID 1\)", out), out
    assert re.search(r"#\d .*spin_until_released \(\) at", out), out
    assert re.search(r"#\d .*ap_loop \(", out), out
    rsps = re.findall(r"\(void \*\) (0x[0-9a-f]+)", out)
    assert len(rsps) == 2 and rsps[0] != rsps[1], out  # each vCPU its own stack
    assert vm.wait() == GUEST_PASS, vm.describe()
    assert "SPIN: released" in vm.stdout() and "CPUS: 2" in vm.stdout()


def test_detach_lets_the_guest_run_to_completion(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "break touch_watched", "continue", "detach")
    assert "Breakpoint 1, gdb_target_function" in out and "detached" in out, out
    assert vm.wait() == GUEST_PASS, vm.describe()
    assert "ANSWER: 1 (41)" in vm.stdout() and "WATCHED: 0x1234" in vm.stdout()
    assert "gdb: debugger detached" in vm.stderr()


def test_attach_with_dash_g_to_a_running_guest(tmp_path, vms):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    vm = start(vms, tmp_path, gdb=str(port), gdb_option="-g", append="spin=1")
    vm.wait_for(vm.stdout, "SPIN: waiting")  # 1000 rounds into the loop
    out = run_gdb(vm, "bt", "print spin_rounds > 100", "set var released = 1", "detach")
    assert re.search(r"#\d .*spin_until_released", out), out
    assert "$1 = 1" in out, out
    assert vm.wait() == GUEST_PASS, vm.describe()


def test_kill_ends_the_vm(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "continue", "kill")
    assert "killed" in out, out
    assert vm.wait() == 1, vm.describe()  # as a poweroff
    assert "ANSWER" not in vm.stdout()


def test_a_second_debugger_is_refused_politely(tmp_path, vms):
    vm = start(vms, tmp_path)
    first = Rsp(vm.port)
    assert first.ask("?").startswith(b"T05thread:1;")
    out = run_gdb(vm, "info registers rip", timeout=30)
    assert "E.khyve: a debugger is already attached to this VM" in out, out
    assert "refused a second debugger connection" in vm.stderr()
    # The first one is unaffected.
    assert first.ask("qC") == b"QC1"
    assert first.ask("D") == b"OK"
    first.close()
    assert vm.wait() == GUEST_PASS, vm.describe()


def test_breakpoints_beyond_the_debug_registers_are_refused_clearly(tmp_path, vms):
    """Software breakpoints in debug registers (what khyve does where KVM
    does not intercept int3 but fires debug registers; forced here with
    `monitor swbreak debugreg`): a fifth is refused with the reason. Where
    debug registers fire, the four that fit are also hit."""
    vm = start(vms, tmp_path)
    fires = "debug-register breakpoints fire" in breakpoint_modes(vm)
    vm.kill()
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "set breakpoint always-inserted on", "monitor swbreak debugreg",
                  "break gdb_target_function", "break spin_until_released",
                  "break touch_watched", "break puts", "break printf", "monitor breakpoints",
                  "delete 5", *(["continue", "bt 1"] if fires else []), "delete", "detach")
    assert "Cannot insert breakpoint 5" in out or "Could not insert" in out, out
    assert "all 4 debug registers are in use" in vm.stderr(), vm.describe()
    assert len(re.findall(r"dr\d: breakpoint", out)) == 4, out
    if fires:
        assert re.search(r"Breakpoint \d, puts", out), out
    assert vm.wait() == GUEST_PASS


def test_int3_breakpoints_are_patched_in_hidden_and_taken_out(tmp_path, vms):
    """`monitor swbreak int3` as on a KVM that intercepts int3: the guest
    sees 0xcc where gdb sees the original byte, and removing the breakpoint
    puts the byte back (the guest then runs the function unharmed). The int3
    is never executed: this host's KVM would give it to the guest."""
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "set breakpoint always-inserted on", "monitor swbreak int3",
                  "break *gdb_target_function", "hbreak cmdline_get_u64", "continue",
                  "print/x first_code_byte", "x/1xb gdb_target_function",
                  "monitor breakpoints", "delete 1", "x/1xb gdb_target_function",
                  "delete", "detach")
    assert "Breakpoint 2, cmdline_get_u64" in out, out
    assert re.search(r"\$1 = 0xcc", out), out  # what the guest read
    shown = re.findall(r"<gdb_target_function>:\s+(0x[0-9a-f]{2})", out)
    assert len(shown) == 2 and shown[0] == shown[1] != "0xcc", out
    m = re.search(r"int3 at 0000000000(\w+) \(physical 0000000000(\w+), saved byte (\w\w)\)",
                  out)
    assert m and m.group(1) == m.group(2) and "0x" + m.group(3) == shown[0], out
    assert vm.wait() == GUEST_PASS, vm.describe()
    assert "ANSWER: 1 (41)" in vm.stdout()


def test_a_watchpoint_fires_on_a_write(tmp_path, vms):
    """With data breakpoints where KVM fires them, else by tracing (this
    project's KVM does not fire them)."""
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "break gdb_target_function", "continue", "delete", "watch watched",
                  "continue", "bt", "print watched", "continue")
    assert re.search(r"Hardware watchpoint 2: watched\s+Old value = 0\s+New value = 4660", out), out
    assert re.search(r"#0 .*touch_watched \(\) at .*\n#1 .* in main \(\)", out), out
    assert "exited with code 01" in out, out
    assert vm.wait() == GUEST_PASS


def test_traced_breakpoints_are_not_limited(tmp_path, vms):
    """`monitor swbreak trace`: what khyve does where debug-register
    breakpoints do not fire (a nested KVM): six breakpoints at once."""
    vm = start(vms, tmp_path, append="spin=1")
    out = run_gdb(vm, "monitor swbreak trace", "break gdb_target_function",
                  "break spin_until_released", "break touch_watched", "break puts",
                  "break printf", "break cmdline_get_u64", "continue", "bt 1", "delete 4",
                  "delete 6", "continue", "bt 1", "continue", "bt 1", "continue", "bt 1",
                  "set var released = 1", "continue", "bt 1", "delete", "continue")
    assert "software breakpoints (Z0): traced (forced)" in out, out
    assert "Cannot insert" not in out, out
    hits = re.findall(r"Breakpoint (\d), (\w+) \(", out)
    assert [h[1] for h in hits] == ["puts", "gdb_target_function", "printf",
                                    "spin_until_released", "printf"], out
    assert "exited with code 01" in out, out
    assert vm.wait() == GUEST_PASS


def test_read_watchpoints_need_data_breakpoints(tmp_path, vms):
    vm = start(vms, tmp_path)
    if "data breakpoints fire" in breakpoint_modes(vm):
        pytest.skip("this host's KVM fires data breakpoints")
    vm.kill()
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "rwatch watched", "continue", "delete", "detach")
    assert re.search(r"Could not insert (hardware )?watchpoint|Cannot insert", out), out
    assert "read and access watchpoints need data breakpoints" in vm.stderr(), vm.describe()
    assert vm.wait() == GUEST_PASS


def test_monitor_commands(tmp_path, vms):
    vm = start(vms, tmp_path)
    out = run_gdb(vm, "set breakpoint always-inserted on", "break gdb_target_function",
                  "continue", "monitor help", "monitor regs",
                  "monitor msr 0xc0000080", "monitor memmap", "monitor breakpoints",
                  "monitor swbreak debugreg", "monitor bogus", "detach")
    assert "khyve monitor commands" in out, out
    assert re.search(r"cr0 0000000080\w+ cr2 0+ cr3 0+\w+", out), out
    assert "4-level paging" in out, out
    assert "MSR 0xc0000080 = 0x0000000000000500" in out, out
    assert re.search(r"0000000000100000-0000000003ffffff RAM", out), out
    assert (re.search(r"dr\d: breakpoint .* at 0000000000102\w+", out) or "int3 at" in out
            or re.search(r"traced breakpoint \(Z0\) at 0000000000102\w+", out)), out
    assert "debug registers (forced)" in out, out
    assert "unknown monitor command 'bogus'" in out, out
    assert vm.wait() == GUEST_PASS


def test_protocol_details_over_a_raw_connection(tmp_path, vms):
    vm = start(vms, tmp_path)
    r = Rsp(vm.port)
    sup = r.ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386").decode()
    for feature in ("PacketSize=", "qXfer:features:read+", "swbreak+", "hwbreak+"):
        assert feature in sup
    xml = b""
    offset = 0
    while True:
        chunk = r.ask(f"qXfer:features:read:target.xml:{offset:x},100")
        xml += chunk[1:]
        offset += len(chunk) - 1
        if chunk[:1] == b"l":
            break
    for needle in (b"i386:x86-64", b"org.gnu.gdb.i386.core", b"org.gnu.gdb.i386.sse",
                   b"org.gnu.gdb.i386.segments", b"fs_base", b"gs_base", b'"cr3"', b'"efer"'):
        assert needle in xml, needle
    assert r.ask("qAttached") == b"1"
    assert r.ask("qfThreadInfo") == b"m1" and r.ask("qsThreadInfo") == b"l"
    assert bytes.fromhex(r.ask("qThreadExtraInfo,1").decode()) == b"vCPU 0, APIC ID 0"
    assert r.ask("vCont?") == b"vCont;c;C;s;S;t"
    assert r.ask("Hg1") == b"OK" and r.ask("Hg5") == b"E01"
    assert r.ask("T1") == b"OK" and r.ask("T2") == b"E01"
    regs = r.ask("g")
    assert len(regs) == 2 * 600  # every register of the description
    rip = int.from_bytes(bytes.fromhex(r.ask("p10").decode()), "little")
    assert rip == int.from_bytes(bytes.fromhex(regs[16 * 16:16 * 16 + 16].decode()), "little")
    assert r.ask("P0=8877665544332211") == b"OK" and r.ask("p0") == b"8877665544332211"
    assert r.ask("G" + regs.decode()) == b"OK" and r.ask("g") == regs
    # memory: write, read back, binary X with escapes
    assert r.ask("M200000,4:deadbeef") == b"OK" and r.ask("m200000,4") == b"deadbeef"
    assert r.ask(b"X200000,4:}\x03}\x04}]*") == b"OK" and r.ask("m200000,4") == b"23247d2a"
    assert r.ask("m40000000,4") == b"E14"  # beyond RAM
    assert r.ask("QStartNoAckMode") == b"OK"
    r.sock.sendall(Rsp.frame("qC"))
    assert r.packet() == b"QC1"
    assert r.ask("D") == b"OK"
    r.close()
    assert vm.wait() == GUEST_PASS, vm.describe()


def test_garbage_on_the_socket_does_not_hurt_khyve(tmp_path, vms):
    vm = start(vms, tmp_path, append="spin=1")
    rng = random.Random(5)
    bad = ["", "m", "mzz,1", "m1,", "m,1", "mffffffffffffffffff,1", "m0,ffffffffffff",
           "M0,2:zz", "M0,10:00", "M0,1", "Mffffffffffffffff,1:00", "X0,4:}", "X0,8:ab",
           "Z9,0,1", "Z0", "Z0,", "Z2,0,0", "Z2,0,ffff", "z1,zz,1", "vCont;x", "vCont;c:zz",
           "vCont", "vCont;", "H", "Hx1", "Hgzz", "p9999", "pzz", "P", "P0=", "P0=zz",
           "Pffff=00", "G1", "Gzz", "qXfer:features:read:target.xml:ffffffff,ffffffff",
           "qXfer:features:read:other.xml:0,10", "qXfer:features:read:target.xml:",
           "qThreadExtraInfo,99", "qThreadExtraInfo,-1", "qRcmd,zz", "qRcmd,6",
           "qRcmd," + "41" * 600, "qRcmd," + b"translate zz".hex(), "T", "Tzz", "c zz",
           "s 12345678901234567890", "C", "S05;zz", "qSupported:" + "x" * 1000,
           "\x00\x01\x02", "}}}}", "z0,100000,1", "z2,100000,4", "vCont;t", "vCont;t:1"]
    r = Rsp(vm.port)
    for payload in bad:
        reply = r.ask(payload)
        assert not reply.startswith((b"T", b"W", b"S")), (payload, reply)
    # random bytes, with and without frames; overlong packets; bad checksums
    r.send_raw(bytes(rng.randrange(256) for _ in range(20000)).replace(b"\x03", b""))
    r.send_raw(b"$" + b"m" * 40000 + b"#00")
    r.send_raw(b"$qC#00")
    r.send_raw(b"$qC#zz$$$#")
    r.close()  # the debugger went away: the guest goes on
    vm.wait_for(vm.stdout, "SPIN: waiting")
    assert vm.proc.poll() is None, vm.describe()
    out = run_gdb(vm, "bt", "print answer", "set var released = 1", "detach")
    assert "spin_until_released" in out and "$1 = 1" in out, out
    assert vm.wait() == GUEST_PASS, vm.describe()
    assert "Sanitizer" not in vm.stderr() and "runtime error" not in vm.stderr()


@pytest.mark.parametrize("spec,message", [
    ("-Gnonsense", "'nonsense' is not [address:]port"),
    ("-Gw99999", "is not [address:]port"),
    ("-gw1234", "-g: 'w1234' is not a port"),
])
def test_bad_gdb_options(spec, message):
    r = khyve("--kernel", guest("hello"), "t0", spec)
    assert r.status == 4 and message in r.err, r


def test_gdb_port_in_use(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    r = khyve("-G", f"127.0.0.1:{port}", "--kernel", guest("hello"), "t0")
    s.close()
    assert r.status == 4 and "Address already in use" in r.err, r
