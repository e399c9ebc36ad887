"""virtio-net on a tap, in a network namespace each test creates: ARP and
ping answered by the host kernel, raw Ethernet frames both ways through a
packet socket on the host end, mergeable receive buffers, bhyve's MAC, the
link brought up by khyve, and a missing tap as a clear error."""
import hashlib
import os
import re
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import passed, GUEST_PASS, KHYVE, TIMEOUT, Result, guest, khyve
from test_cli import assert_one_error

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 for network namespaces")

HOST_IP, GUEST_IP = "10.77.0.1", "10.77.0.2"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def netns():
    name = f"khyve-t{os.getpid()}"
    ip("netns", "del", name, check=False)
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "tuntap", "add", "dev", "ktap0", "mode", "tap")
        ip("-n", name, "addr", "add", f"{HOST_IP}/24", "dev", "ktap0")
        ip("-n", name, "tuntap", "add", "dev", "kmq0", "mode", "tap", "multi_queue")
        yield name
    finally:
        ip("netns", "del", name, check=False)


def run_in(ns, *args, append="", vm="t0", timeout=TIMEOUT, env=None):
    cmd = ["ip", "netns", "exec", ns, KHYVE, "-m", "64M", "-l", "com1,stdio", "--debug-exit",
           *args, "--kernel", guest("virtionet"), "--append", append, vm]
    start = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env)
    return Result(p.returncode, p.stdout.decode(errors="replace"),
                  p.stderr.decode(errors="replace"), time.monotonic() - start)


def test_ping_the_host_kernel(netns):
    r = passed(run_in(netns, "-s", "0,hostbridge", "-s", "3,virtio-net,ktap0",
                      append=f"ip={GUEST_IP} peer={HOST_IP} count=4"))
    host_mac = ip("-n", netns, "link", "show", "ktap0").stdout.split("link/ether ")[1].split()[0]
    assert f"NET: arp peer={HOST_IP} mac={host_mac}" in r.out, r
    assert len(re.findall(r"NET: ping seq=\d bytes=56 ok", r.out)) == 4
    # bhyve's default MAC: 00:a0:98 + MD5("slot-function-vmname")
    d = hashlib.md5(b"3-0-t0").digest()
    assert f"NET: mac=00:a0:98:{d[0]:02x}:{d[1]:02x}:{d[2]:02x} status=1" in r.out
    # khyve brought the link up (it was down)
    assert "UP" in ip("-n", netns, "link", "show", "ktap0").stdout.split(">")[0]


def test_big_frames_in_mergeable_buffers(netns):
    r = passed(run_in(netns, "-s", "3,virtio-net,ktap0,mac=02:11:22:33:44:55,mtu=9000",
                      append="count=2 size=1400 rxbuf=256"))
    assert "NET: mac=02:11:22:33:44:55 status=1 mtu=9000 mrg=1" in r.out
    assert len(re.findall(r"NET: ping seq=\d bytes=1400 ok", r.out)) == 2
    assert int(re.search(r"max_num_buffers=(\d+)", r.out).group(1)) >= 6


def test_without_mergeable_buffers_and_polling(netns):
    r = passed(run_in(netns, "-s", "3,virtio-net,backend=ktap0",
                      append="count=2 size=1000 mrg=0 irq=poll"))
    assert "mrg=0" in r.out and "max_num_buffers=1" in r.out


RAW_PEER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
    s.bind(("ktap0", 0))
    s.settimeout(30)
    print("ready", flush=True)
    got = []
    while len(got) < 3:
        try:
            f = s.recv(2048)
        except OSError as e:  # bound while the tap was down: reported once
            if e.errno == 100:
                continue
            raise
        if f[12:14] == b"\\x88\\xb5":
            got.append(f)
            print("got", f[14:].split(b"\\0")[0].decode(), flush=True)
    for i, f in enumerate(got):
        reply = f[6:12] + f[0:6] + b"\\x88\\xb6" + b"host says " + f[14:].split(b"\\0")[0] + b"\\0"
        s.send(reply.ljust(60, b"\\0"))
""")


def test_raw_frames_both_ways(netns):
    peer = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c", RAW_PEER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        r = passed(run_in(netns, "-s", "3,virtio-net,ktap0", append="count=0 raw=3"))
        out, err = peer.communicate(timeout=30)
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    assert [l for l in out.splitlines() if l.startswith("got")] == [
        f"got khyve raw {i}" for i in range(3)], (out, err)
    assert re.findall(r"NET: raw rx ([^\r\n]*)", r.out) == [f"host says khyve raw {i}"
                                                      for i in range(3)], r


def test_vhost_fallback_says_why(netns):
    # No vhost-net device: one line saying why, then khyve's own path works.
    env = dict(os.environ, KHYVE_VHOST_NET_DEVICE="/nonexistent/vhost-net")
    r = passed(run_in(netns, "-s", "3,virtio-net,ktap0,vhost=on", append="ip=" + GUEST_IP +
                      " peer=" + HOST_IP + " count=2", env=env))
    lines = [l for l in r.err.splitlines() if "vhost" in l]
    assert lines == ["khyve: warning: virtio-net ktap0: vhost=on: /nonexistent/vhost-net: "
                     "No such file or directory (modprobe vhost_net); using khyve's own data path"], r
    assert len(re.findall(r"NET: ping seq=\d bytes=56 ok", r.out)) == 2, r


def test_missing_tap_is_a_clear_error(netns):
    r = run_in(netns, "-s", "3,virtio-net,nosuchtap0")
    assert_one_error(r, "nosuchtap0", "no such network interface")
    r = run_in(netns, "-s", "3,virtio-net,lo")
    assert_one_error(r, "lo", "not a tap")


def test_queues_need_a_multiqueue_tap(netns):
    r = run_in(netns, "-s", "3,virtio-net,ktap0,queues=2")
    assert_one_error(r, "ktap0", "not a multiqueue tap", "multi_queue")


def test_multiqueue_device_for_a_driver_without_mq(netns):
    # The test guest's driver takes no VIRTIO_NET_F_MQ: pair 0 alone, the
    # control queue at 2 (virtio 1.2, 5.1.2), and the tap's other queues
    # detached so that the host's replies reach pair 0.
    ip("-n", netns, "addr", "flush", "dev", "ktap0")
    ip("-n", netns, "addr", "add", f"{HOST_IP}/24", "dev", "kmq0")
    for conf in ("kmq0,queues=4", "kmq0"):
        r = passed(run_in(netns, "-s", "0,hostbridge", "-s", f"3,virtio-net,{conf}",
                          append=f"ip={GUEST_IP} peer={HOST_IP} count=3"))
        assert len(re.findall(r"NET: ping seq=\d bytes=56 ok", r.out)) == 3, (conf, r)


@pytest.mark.parametrize("conf,needles", [
    ("", ["needs a tap"]),
    ("ktap0,queues=0", ["queues=0", "1-16"]),
    ("ktap0,queues=17", ["queues=17", "1-16"]),
    ("ktap0,queues=two", ["queues=two"]),
    ("slirp,queues=2", ["queues=2", "slirp"]),
    ("ktap0,mac=01:00:00:00:00:01", ["mac="]),
    ("ktap0,mac=zz", ["mac=zz"]),
    ("ktap0,mtu=10", ["mtu=10"]),
    ("ktap0,speed=10", ["unknown option 'speed=10'"]),
])
def test_bad_net_options(conf, needles):
    r = khyve("-s", f"3,virtio-net{',' if conf else ''}{conf}", "--kernel", guest("hello"), "vm0")
    assert_one_error(r, *needles)


def test_tap_carrier_changes_reach_the_device(netns):
    # The tap goes administratively down and up while the guest runs;
    # khyve's netlink watch sees both (--verbose says so; what the guest
    # then reads is in tests/unit/test_virtio_net.c).
    import select
    cmd = ["ip", "netns", "exec", netns, KHYVE, "--verbose", "-m", "64M", "-l", "com1,stdio",
           "--debug-exit", "-s", "0,hostbridge", "-s", "3,virtio-net,ktap0",
           "--kernel", guest("netclient"), "--append", "ip=10.77.0.2/24 do=serve:1000000", "t0"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    seen = {"out": b"", "err": b""}

    def wait_for(stream, needle, limit=TIMEOUT):
        fd = (p.stdout if stream == "out" else p.stderr).fileno()
        deadline = time.monotonic() + limit  # against a hang, not a timing
        while needle not in seen[stream] and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout.fileno(), p.stderr.fileno()], [], [], 1)
            for f in r:
                chunk = os.read(f, 4096)
                seen["out" if f == p.stdout.fileno() else "err"] += chunk
        return needle in seen[stream]

    try:
        assert wait_for("out", b"NET: mac="), seen
        ip("-n", netns, "link", "set", "ktap0", "down")
        assert wait_for("err", b"virtio-net ktap0: link down"), seen
        ip("-n", netns, "link", "set", "ktap0", "up")
        assert wait_for("err", b"virtio-net ktap0: link up"), seen
    finally:
        p.kill()
        p.wait()
    assert b"Sanitizer" not in seen["err"], seen
