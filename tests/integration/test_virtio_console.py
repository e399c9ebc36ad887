"""virtio-console with MULTIPORT, proven with the virtiocon test guest:
the control handshake names the ports and marks the console port, and
text goes both ways on a stdio port, a UNIX socket port (bhyve's kind)
and a pty port."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import GUEST_PASS, KHYVE, TIMEOUT, guest, khyve
from test_cli import assert_one_error


def start(tmp_path, ports, append):
    log = tmp_path / "com1.log"
    args = [KHYVE, "-m", "64M", "-l", f"com1,log={log}", "--debug-exit", "-s",
            f"4,virtio-console,{ports}", "--kernel", guest("virtiocon"), "--append", append, "t0"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    return p, log


def finish(p, log):
    out, err = p.communicate(timeout=TIMEOUT)
    report = log.read_text(errors="replace")
    assert b"Sanitizer" not in err and b"runtime error" not in err, err
    assert p.returncode == GUEST_PASS and "PASS" in report, (p.returncode, report, err)
    return out.decode(errors="replace"), report


def wait_for(path, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_ports_named_and_text_both_ways(tmp_path):
    sock = tmp_path / "port.sock"
    p, log = start(tmp_path, f"@cons=stdio,data={sock}", "say=1 wait=data listen=data emerg=1")
    try:
        wait_for(sock)
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(sock))
        c.settimeout(TIMEOUT)
        got = b""
        while not got.endswith(b"\n"):
            got += c.recv(100)
        assert got == b"hello from data\n"
        c.sendall(b"hi guest\n")
        out, report = finish(p, log)
        c.close()
    finally:
        if p.poll() is None:
            p.kill()
    assert "CON: ports=2 multiport=1" in report
    assert re.search(r"CON: port 0 name=cons console=1 open=1", report), report
    assert re.search(r"CON: port 1 name=data console=0 open=[01]", report), report
    assert "CON: data open" in report and "CON: data got hi guest" in report
    # the emergency write and the console port's text, on stdout
    assert out == "Ehello from cons\n", out
    # khyve removes its socket when it ends; one left behind (by kill -9,
    # or bhyve) is taken over by the next run.
    assert not os.path.exists(sock)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    p, log = start(tmp_path, f"data={sock}", "")
    finish(p, log)
    assert not os.path.exists(sock)


def test_pty_port(tmp_path):
    link = tmp_path / "vport"
    p, log = start(tmp_path, f"tty=pty={link}", "say=1")
    try:
        wait_for(link)
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        data = b""
        deadline = time.monotonic() + TIMEOUT
        import select
        while b"\n" not in data and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                data += os.read(fd, 100)
        os.close(fd)
        out, report = finish(p, log)
    finally:
        if p.poll() is None:
            p.kill()
    assert b"hello from tty" in data, data
    assert "CON: port 0 name=tty console=0 open=1" in report


@pytest.mark.parametrize("conf,needles", [
    ("", ["needs a port"]),
    ("justaname", ["NAME=BACKEND"]),
    ("a=stdio,a=/tmp/x.sock", ["given twice"]),
    ("a=nosuchbackend", ["expected stdio"]),
    ("@=stdio", ["name"]),
])
def test_bad_console_options(conf, needles):
    r = khyve("-s", f"4,virtio-console{',' if conf else ''}{conf}", "--kernel", guest("hello"),
              "vm0")
    assert_one_error(r, *needles)


def test_socket_path_that_is_not_a_socket(tmp_path):
    f = tmp_path / "plain"
    f.write_text("x")
    r = khyve("-s", f"4,virtio-console,p={f}", "--kernel", guest("hello"), "vm0")
    assert_one_error(r, str(f), "not a socket")
