"""Serial port backends: a pty behind a symlink, a TCP socket, a log file,
and com3/com4. The serialecho guest echoes what it reads on one port
(upper-cased) and says "BYE <count>" when it reads a Q."""
import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import KHYVE, TIMEOUT, GUEST_PASS, Background, guest, khyve


class Vm(Background):
    """khyve running serialecho in the background; stdout/stderr kept."""

    def __init__(self, *lpc, append="", tmp_path=None, stdio=True):
        args = ["-m", "64M", "--debug-exit"]
        if stdio:
            args += ["-l", "com1,stdio"]
        for spec in lpc:
            args += ["-l", spec]
        args += ["--kernel", guest("serialecho")]
        if append:
            args += ["--append", append]
        args.append("ser0")
        super().__init__(args, tmp_path)


@pytest.fixture
def vms():
    started = []
    yield started
    for vm in started:
        vm.kill()


def read_until(recv, marker, timeout=TIMEOUT, size=0):
    """Read until marker has arrived and at least size bytes."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data or len(data) < size:
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout waiting for {marker!r}; got {data[-200:]!r}")
        chunk = recv(0.2)
        if chunk:
            data += chunk
    return data


def payload(n=600):
    text = "the quick brown fox jumps over the lazy dog 0123456789 "
    return (text * (n // len(text) + 1))[:n].encode()


# ---- pty ----

def open_pty(path):
    import tty
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def pty_recv(fd):
    def recv(wait):
        if select.select([fd], [], [], wait)[0]:
            try:
                return os.read(fd, 4096)
            except OSError:
                return b""
        return b""
    return recv


def echo_through_pty(vm, path, data):
    vm.wait_for(vm.stdout, r"ECHO: ready on com\d")
    fd = open_pty(path)
    try:
        recv = pty_recv(fd)
        for i in range(0, len(data), 64):  # the guest's UART takes 16 at a time
            os.write(fd, data[i:i + 64])
        got = read_until(recv, b"", size=len(data))
        assert got == data.upper(), got
        os.write(fd, b"Q")
        got = read_until(recv, b"\r\n")
        assert got == f"BYE {len(data)}\r\n".encode()
        os.write(fd, b"K")  # the guest may end now (ack=1)
    finally:
        os.close(fd)


def test_pty_symlink_carries_bytes_both_ways_and_goes_away(tmp_path, vms):
    link = str(tmp_path / "vm0.com2")
    vm = Vm("com2," + link, append="ack=1", tmp_path=tmp_path)
    vms.append(vm)
    vm.wait_for(vm.stderr, r"serial port on /dev/pts/\d+")
    assert os.path.islink(link) and os.readlink(link).startswith("/dev/pts/")
    data = payload()
    echo_through_pty(vm, link, data)
    assert vm.wait() == GUEST_PASS, vm.stderr()
    assert f"ECHO: {len(data)} bytes" in vm.stdout()
    assert not os.path.lexists(link)


def test_pty_survives_the_client_closing_and_reopening(tmp_path, vms):
    link = str(tmp_path / "port")
    vm = Vm("com2," + link, append="ack=1", tmp_path=tmp_path)
    vms.append(vm)
    vm.wait_for(vm.stdout, r"ECHO: ready")
    fd = open_pty(link)
    os.write(fd, b"abc")
    assert read_until(pty_recv(fd), b"ABC") == b"ABC"
    os.close(fd)
    fd = open_pty(link)
    os.write(fd, b"def")
    assert read_until(pty_recv(fd), b"DEF") == b"DEF"
    os.write(fd, b"Q")
    assert read_until(pty_recv(fd), b"\r\n") == b"BYE 6\r\n"
    os.write(fd, b"K")
    os.close(fd)
    assert vm.wait() == GUEST_PASS


def test_pty_replaces_a_stale_symlink(tmp_path, vms):
    link = tmp_path / "stale"
    os.symlink("/dev/pts/99999", link)  # a khyve killed with SIGKILL left it
    vm = Vm(f"com2,{link}", append="ack=1", tmp_path=tmp_path)
    vms.append(vm)
    echo_through_pty(vm, str(link), b"x")
    assert vm.wait() == GUEST_PASS, vm.stderr()
    assert not os.path.lexists(link)


def test_pty_refuses_a_path_that_is_not_its_symlink(tmp_path):
    f = tmp_path / "precious"
    f.write_text("keep me")
    r = khyve("-l", f"com2,{f}", "--kernel", guest("hello"), "t0")
    assert r.status == 4
    assert "already exists and is not a pty symlink" in r.err and str(f) in r.err
    assert f.read_text() == "keep me"
    other = tmp_path / "other"
    os.symlink("/etc/passwd", other)
    r = khyve("-l", f"com2,{other}", "--kernel", guest("hello"), "t0")
    assert r.status == 4 and "not a pty symlink" in r.err
    assert os.readlink(other) == "/etc/passwd"


def test_pty_refuses_the_port_of_a_running_khyve(tmp_path, vms):
    link = str(tmp_path / "busy")
    vm = Vm("com2," + link, append="ack=1", tmp_path=tmp_path)
    vms.append(vm)
    vm.wait_for(vm.stdout, r"ECHO: ready")
    r = khyve("-l", f"com2,{link}", "--kernel", guest("hello"), "t1")
    assert r.status == 4 and "in use as the serial port of a running khyve" in r.err, r
    assert os.path.islink(link)  # still the first one's
    echo_through_pty(vm, link, b"still works")
    assert vm.wait() == GUEST_PASS


# ---- tcp ----

def tcp_recv(sock):
    def recv(wait):
        if select.select([sock], [], [], wait)[0]:
            return sock.recv(4096)
        return b""
    return recv


def listening_port(vm):
    m = vm.wait_for(vm.stderr, r"serial port listening on 127\.0\.0\.1:(\d+)")
    return int(m.group(1))


def test_tcp_carries_bytes_both_ways_and_refuses_a_second_client(tmp_path, vms):
    vm = Vm("com2,tcp=127.0.0.1:0", tmp_path=tmp_path)
    vms.append(vm)
    port = listening_port(vm)
    vm.wait_for(vm.stdout, r"ECHO: ready on com2")
    a = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    data = payload()
    a.sendall(data[:300])
    got = read_until(tcp_recv(a), b"", size=300)
    # A second client is told and let go; the first carries on.
    b = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    busy = read_until(tcp_recv(b), b"\n")
    assert b"already has a client" in busy
    assert b.recv(100) == b""
    b.close()
    a.sendall(data[300:])
    got += read_until(tcp_recv(a), b"", size=len(data) - 300)
    assert got == data.upper()
    a.sendall(b"Q")
    assert read_until(tcp_recv(a), b"\r\n") == f"BYE {len(data)}\r\n".encode()
    a.close()
    assert vm.wait() == GUEST_PASS, vm.stderr()
    assert "refused a second client" in vm.stderr()


def test_tcp_takes_the_next_client_after_one_leaves(tmp_path, vms):
    vm = Vm("com3,tcp=0", append="port=3", tmp_path=tmp_path)  # com3 at 0x3e8
    vms.append(vm)
    port = listening_port(vm)
    vm.wait_for(vm.stdout, r"ECHO: ready on com3")
    a = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    a.sendall(b"one")
    assert read_until(tcp_recv(a), b"ONE") == b"ONE"
    a.close()
    # The hangup is noticed on the event loop: until then a new client is
    # turned away.
    deadline = time.monotonic() + 10
    while True:
        b = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        if not select.select([b], [], [], 0.3)[0]:
            break  # no "busy" message: we are the client
        assert b"already has a client" in b.recv(100) and time.monotonic() < deadline
        b.close()
    b.sendall(b"two")
    assert read_until(tcp_recv(b), b"TWO") == b"TWO"
    b.sendall(b"Q")
    assert read_until(tcp_recv(b), b"\r\n") == b"BYE 6\r\n"
    assert vm.wait() == GUEST_PASS


# ---- log files, com4 ----

def test_log_file_gets_the_output_of_a_tcp_port_and_of_com1(tmp_path, vms):
    log2 = tmp_path / "com2.log"
    log1 = tmp_path / "com1.log"
    vm = Vm(f"com1,log={log1}", f"com2,tcp=0,log={log2}", tmp_path=tmp_path, stdio=False)
    vms.append(vm)
    port = listening_port(vm)
    m = None
    deadline = time.monotonic() + TIMEOUT
    while not m and time.monotonic() < deadline:
        m = re.search("ECHO: ready", log1.read_text(errors="replace"))
        time.sleep(0.05)
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"logged")
    read_until(tcp_recv(s), b"LOGGED")
    s.sendall(b"Q")
    read_until(tcp_recv(s), b"\r\n")
    assert vm.wait() == GUEST_PASS
    assert log2.read_bytes() == b"LOGGEDBYE 6\r\n"
    assert "ECHO: 6 bytes" in log1.read_text() and "PASS" in log1.read_text()
    assert vm.stdout() == ""


def test_stdio_with_a_log_and_com4_on_a_pty(tmp_path, vms):
    log = tmp_path / "console.log"
    link = str(tmp_path / "com4")
    vm = Vm(f"com1,stdio,log={log}", "com4," + link, append="port=4 ack=1", tmp_path=tmp_path,
            stdio=False)
    vms.append(vm)
    echo_through_pty(vm, link, b"four")
    assert vm.wait() == GUEST_PASS
    assert "ECHO: 4 bytes" in vm.stdout()
    assert log.read_text() == vm.stdout()


@pytest.mark.parametrize("spec,message", [
    ("com2,tcp=nonsense", "tcp='nonsense' is not [address:]port"),
    ("com2,tcp=127.0.0.1:70000", "is not [address:]port"),
    ("com2,bogus", "unknown serial backend 'bogus' (expected stdio, a path for a pty"),
    ("com2,stdio,log=", "log=: missing the file name"),
    ("com2,log=/nonexistent/dir/x.log", "log=/nonexistent/dir/x.log: No such file or directory"),
    ("com2,/nonexistent/dir/link", "/nonexistent/dir/link"),
])
def test_bad_serial_specs_are_refused(spec, message):
    r = khyve("-l", spec, "--kernel", guest("hello"), "t0")
    assert r.status == 4, r
    assert message in r.err, r


def test_tcp_port_in_use_is_refused(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    r = khyve("-l", f"com2,tcp=127.0.0.1:{port}", "--kernel", guest("hello"), "t0")
    s.close()
    assert r.status == 4 and "Address already in use" in r.err, r
