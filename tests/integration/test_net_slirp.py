"""virtio-net on libslirp (-s N,virtio-net,slirp): no root, no tap. The
netclient guest gets a DHCP lease from slirp's built-in server and pings
its gateway; a host-forwarded port is listened on; bad slirp options are
one clear error each. (A TCP connection through hostfwd into a Linux
guest: tests/svm/test_virtio_net_linux.py.)"""
import re
import socket

import pytest

from conftest import passed, guest, khyve, TIMEOUT
from test_cli import assert_one_error


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_slirp(conf, append):
    return khyve("-m", "64M", "-l", "com1,stdio", "--debug-exit", "-s", "0,hostbridge",
                 "-s", f"3,virtio-net,{conf}", "--kernel", guest("netclient"),
                 "--append", append, "t0", timeout=TIMEOUT)


def test_lease_and_ping_the_gateway():
    r = passed(run_slirp("slirp", "name=slirpy do=dhcp,ping:10.0.2.2 timeout=30"))
    m = re.search(r"NET: lease ip=(\S+) router=(\S+) dns=(\S+)", r.out)
    assert m and m.groups() == ("10.0.2.15/24", "10.0.2.2", "10.0.2.3"), r
    assert len(re.findall(r"NET: ping 10\.0\.2\.2 \(10\.0\.2\.2\) seq=\d ok", r.out)) == 3, r


def test_dns_is_answered():
    # slirp's DNS (10.0.2.3) relays to the host's resolver; whatever the
    # host knows, an answer (an address or NXDOMAIN) comes back.
    r = run_slirp("slirp", "do=dhcp,resolve:no-such-name.invalid timeout=30")
    assert "NET: lease ip=10.0.2.15/24" in r.out, r
    assert re.search(r"NET: resolve no-such-name\.invalid = |FAIL: cannot resolve "
                     r"no-such-name\.invalid: rcode=\d", r.out), r
    assert "timed out" not in r.out and "Sanitizer" not in r.err, r


def test_hostfwd_port_in_use_is_a_clear_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = khyve("-s", f"3,virtio-net,slirp,hostfwd=tcp:127.0.0.1:{port}-:22",
                  "--kernel", guest("hello"), "vm0")
        assert_one_error(r, f"hostfwd=tcp:127.0.0.1:{port}-:22", "cannot listen")
    finally:
        s.close()


@pytest.mark.parametrize("conf,needles", [
    ("slirp,hostfwd=tcp:127.0.0.1:2222", ["hostfwd=tcp:127.0.0.1:2222", "expected"]),
    ("slirp,hostfwd=icmp::1-:2", ["hostfwd=icmp::1-:2"]),
    ("slirp,hostfwd=tcp::99999-:22", ["hostfwd=tcp::99999-:22"]),
    ("slirp,vhost=on", ["vhost=on", "tap"]),
    ("ktap0,hostfwd=tcp::2222-:22", ["slirp option"]),
    ("slirp,vhost=maybe", ["vhost=maybe"]),
])
def test_bad_slirp_options(conf, needles):
    r = khyve("-s", f"3,virtio-net,{conf}", "--kernel", guest("hello"), "vm0")
    assert_one_error(r, *needles)


def test_several_hostfwd_rules():
    a, b = free_port(), free_port()
    r = passed(run_slirp(f"slirp,hostfwd=tcp:127.0.0.1:{a}-:22;udp:127.0.0.1:{b}-:53,open",
                         "do=dhcp timeout=30"))
    assert "NET: lease ip=10.0.2.15/24" in r.out
