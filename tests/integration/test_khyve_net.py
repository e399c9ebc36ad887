"""khyve-net(8) in network namespaces that each test creates (never the
host's own networking): `private` with a real dnsmasq handing the netclient
test guest a lease and names, two guests by hostname, NAT to a namespace
playing the outside world, `bridged` onto a veth, `down` leaving the
namespace as it found it, and bad input refused with nothing changed."""
import itertools
import json
import os
import re
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import KHYVE, ROOT, TIMEOUT, guest

KHYVE_NET = os.path.join(ROOT, "scripts", "khyve-net")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t, path="/usr/sbin:/sbin:/usr/bin:/bin")
                                 for t in ("ip", "nft", "dnsmasq")),
    reason="needs root, iproute2, nftables and dnsmasq")

_seq = itertools.count()


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


class Netns:
    """A network namespace of this test, with khyve-net's state kept apart."""

    def __init__(self, tmp_path, tag):
        self.name = f"kn{os.getpid()}-{next(_seq)}{tag}"
        self.state = str(tmp_path / f"state-{self.name}")
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        # No IPv6: its link-local addresses appear a while after a link comes
        # up, which would make before/after snapshots depend on timing.
        self.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1")

    def run(self, *args, check=True, **kw):
        return sh("ip", "netns", "exec", self.name, *args, check=check, **kw)

    def net(self, *args, check=False, env=None):
        """khyve-net in this namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name, KHYVE_NET, "--state-dir",
                               self.state, *args], capture_output=True, text=True,
                              env=env, check=check)

    def snapshot(self):
        """What `down` must leave as it found it."""
        link = self.run("ip", "-d", "link").stdout
        return {
            # a bridge's running timers tick: everything but their values counts
            "link": re.sub(r"(_timer) +[\d.]+", r"\1", link),
            "addr": self.run("ip", "addr").stdout,
            "route": self.run("ip", "route", "show", "table", "all").stdout,
            "nft": self.run("nft", "list", "ruleset").stdout,
            "forward": self.run("sysctl", "-n", "net.ipv4.ip_forward").stdout,
            "resolv.conf": self.run("cat", "/etc/resolv.conf", check=False).stdout,
            "resolved": (self.run("resolvectl", "status", check=False).stdout
                         if shutil.which("resolvectl") else ""),
            "dnsmasq": sorted(p for p in os.listdir("/proc") if p.isdigit() and
                              _cmdline(p).startswith("/usr/sbin/dnsmasq") and
                              self.state in _cmdline(p)),
        }

    def shape(self):
        """What khyve-net sets: links, their kinds, masters and owners,
        addresses, rules, forwarding, dnsmasq. (Not operstate or route flags,
        which the kernel updates a moment later: linkwatch.)"""
        links = sorted((l["ifname"], l.get("master"), l.get("linkinfo", {}).get("info_kind"),
                        str(l.get("linkinfo", {}).get("info_data", {}).get("user")))
                       for l in json.loads(self.run("ip", "-j", "-d", "link").stdout))
        addrs = sorted((l["ifname"], a["local"], a["prefixlen"])
                       for l in json.loads(self.run("ip", "-j", "addr").stdout)
                       for a in l.get("addr_info", []))
        snap = self.snapshot()
        return links, addrs, snap["nft"], snap["forward"], snap["dnsmasq"]

    def close(self):
        if os.path.isdir(self.state):
            self.net("down")
        sh("ip", "netns", "del", self.name, check=False)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def netns(tmp_path):
    made = []

    def make(tag=""):
        n = Netns(tmp_path, tag)
        made.append(n)
        return n
    yield make
    for n in reversed(made):
        n.close()


def veth(inside, outside, a_name="kup0", b_name="kout0", a_ip=None, b_ip="198.51.100.2/24"):
    """A veth pair: a_name in `inside` (the host's uplink), b_name in `outside`."""
    sh("ip", "-n", inside.name, "link", "add", a_name, "type", "veth", "peer", "name", b_name,
       "netns", outside.name)
    if a_ip:
        sh("ip", "-n", inside.name, "addr", "add", a_ip, "dev", a_name)
    sh("ip", "-n", inside.name, "link", "set", a_name, "up")
    sh("ip", "-n", outside.name, "addr", "add", b_ip, "dev", b_name)
    sh("ip", "-n", outside.name, "link", "set", b_name, "up")
    wait_oper(inside, a_name, "UP")
    wait_oper(outside, b_name, "UP")


def wait_oper(ns, ifname, state):
    """Until the kernel reports ifname's operstate (set a moment after a
    change, by linkwatch), so that snapshots are not taken mid-change."""
    deadline = time.monotonic() + 30  # bounds a failure only
    while json.loads(ns.run("ip", "-j", "link", "show", ifname).stdout)[0]["operstate"] != state:
        assert time.monotonic() < deadline, f"{ifname} never {state}"
        time.sleep(0.05)


def settles_to(ns, before):
    """ns's snapshot equals before, once pending link events are processed."""
    deadline = time.monotonic() + 30  # bounds a failure only
    while ns.snapshot() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    return ns.snapshot() == before


class Guest:
    """The netclient test guest under khyve in a namespace, in the background."""

    def __init__(self, ns, tap, append, tmp_path, vm):
        self.out_path = str(tmp_path / f"{vm}.out")
        self.err_path = str(tmp_path / f"{vm}.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns.name, KHYVE, "-m", "64M", "-l", "com1,stdio",
                 "--debug-exit", "-s", f"3,virtio-net,{tap}", "--kernel", guest("netclient"),
                 "--append", f"timeout={TIMEOUT} " + append, vm],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def out(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def wait_for(self, pattern):
        deadline = time.monotonic() + 2 * TIMEOUT  # bounds a failure only
        while True:
            m = re.search(pattern, self.out())
            if m:
                return m
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                f"no {pattern!r}\n{self.describe()}"
            time.sleep(0.05)

    def passed(self):
        try:
            status = self.proc.wait(timeout=2 * TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"guest did not end\n{self.describe()}")
        with open(self.err_path, errors="replace") as f:
            err = f.read()
        assert "Sanitizer" not in err and "runtime error" not in err, self.describe()
        assert status == 1 and "PASS" in self.out() and "FAIL" not in self.out(), self.describe()
        return self.out()

    def describe(self):
        with open(self.err_path, errors="replace") as f:
            return f"status {self.proc.poll()}\n--- stdout\n{self.out()}\n--- stderr\n{f.read()}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def guests(tmp_path):
    made = []

    def start(ns, tap, append):
        g = Guest(ns, tap, append, tmp_path, f"g{len(made)}")
        made.append(g)
        return g
    yield start
    for g in made:
        g.kill()


DNS_QUERY = textwrap.dedent("""
    import socket, struct, sys
    name, server = sys.argv[1], sys.argv[2]
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(q, (server, 53))
    r = s.recv(1500)
    an = struct.unpack(">H", r[6:8])[0]
    i = len(q)
    for _ in range(an):
        i += 2 if r[i] & 0xc0 == 0xc0 else r.index(0, i) + 1 - i
        t, c, ttl, l = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if t == 1:
            print(socket.inet_ntoa(r[i:i + 4]))
            break
        i += l
    else:
        print("rcode", r[3] & 15)
""")


PING = textwrap.dedent("""
    import os, select, socket, struct, sys
    def csum(b):
        s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
        s = (s & 0xffff) + (s >> 16)
        return ~(s + (s >> 16)) & 0xffff
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    body = struct.pack(">HH", ident, 1) + bytes(range(56))
    s.sendto(struct.pack(">BBH", 8, 0, csum(b"\\x08\\0\\0\\0" + body)) + body, (sys.argv[1], 0))
    while select.select([s], [], [], 2)[0]:
        r = s.recv(2048)
        ic = r[(r[0] & 15) * 4:]
        if ic[0] == 0 and struct.unpack(">H", ic[4:6])[0] == ident:
            sys.exit(0)
    sys.exit(1)
""")


def host_pings(ns, ip_):
    """One echo request from the host side; True if it was answered."""
    return ns.run("/usr/bin/python3", "-c", PING, ip_, check=False).returncode == 0


def host_resolves(ns, name, server):
    """What dnsmasq, asked from the host side, answers for name."""
    return ns.run("/usr/bin/python3", "-c", DNS_QUERY, name, server).stdout.strip()


def up_ok(r):
    assert r.returncode == 0 and not r.stderr, r
    return r


def test_private_lease_ping_and_host_name(netns, guests):
    h = netns("h")
    r = up_ok(h.net("private", "kbr0", "subnet=10.99.0.0/24", "taps=1", "hostname=khost"))
    assert "kbr0: dnsmasq (pid " in r.stdout, r
    g = guests(h, "kbr0t0", "name=alpha do=dhcp,resolve:khost,resolve:khost.khyve,serve:3")
    ip_ = g.wait_for(r"NET: lease ip=(10\.99\.0\.\d+)/24 router=10\.99\.0\.1 dns=10\.99\.0\.1 "
                     r"server=10\.99\.0\.1 domain=khyve").group(1)
    # the host resolves the guest's DHCP hostname through that dnsmasq
    assert host_resolves(h, "alpha", "10.99.0.1") == ip_
    assert host_resolves(h, "alpha.khyve", "10.99.0.1") == ip_
    # ... and pings it until the guest has answered 3 echo requests
    replies = 0
    while g.proc.poll() is None:
        replies += host_pings(h, ip_)
    out = g.passed()
    assert replies >= 1, out
    assert "NET: resolve khost = 10.99.0.1" in out and "NET: resolve khost.khyve = 10.99.0.1" in out
    assert "NET: served 3 echo requests" in out
    st = h.net("status", "kbr0").stdout
    assert re.search(rf"lease {re.escape(ip_)} \S+ alpha", st), st


def test_two_guests_resolve_and_ping_each_other(netns, guests):
    h = netns("h")
    up_ok(h.net("private", "kbr0", "subnet=10.99.1.0/24", "taps=2", "hostname=khost"))
    # Each answers the other's three pings before it ends: a guest that
    # ended first would leave the other's last ping unanswered.
    a = guests(h, "kbr0t0", "name=alpha do=dhcp,wait:beta,ping:beta,serve:3:beta")
    a.wait_for(r"NET: lease ip=")
    b = guests(h, "kbr0t1", "name=beta do=dhcp,ping:alpha,serve:3:alpha")
    out_b, out_a = b.passed(), a.passed()
    ip_a = re.search(r"NET: lease ip=([\d.]+)/", out_a).group(1)
    ip_b = re.search(r"NET: lease ip=([\d.]+)/", out_b).group(1)
    assert ip_a != ip_b
    assert len(re.findall(rf"NET: ping alpha \({re.escape(ip_a)}\) seq=\d ok", out_b)) == 3, out_b
    assert len(re.findall(rf"NET: ping beta \({re.escape(ip_b)}\) seq=\d ok", out_a)) == 3, out_a
    assert "NET: served 3 echo requests" in out_b
    assert "NET: served 3 echo requests" in out_a


SNIFF = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((sys.argv[1], 0))
    print("ready", flush=True)
    while True:
        f = s.recv(2048)
        if len(f) >= 34 and f[23] == 1 and f[34] == 8:
            print("echo request from", socket.inet_ntoa(f[26:30]), "to", socket.inet_ntoa(f[30:34]),
                  flush=True)
            break
""")


def test_masquerade_carries_a_guest_to_the_outside(netns, guests):
    h, o = netns("h"), netns("o")
    veth(h, o, a_ip="198.51.100.1/24")
    up_ok(h.net("private", "kbr0", "subnet=10.99.2.0/24", "uplink=kup0", "taps=1"))
    nft = h.run("nft", "list", "table", "ip", "khyve-net-kbr0").stdout
    assert 'oifname "kup0" masquerade' in nft and "10.99.2.0/24" in nft, nft
    # the outside has no route back to 10.99.2.0/24: only masquerading lets it answer
    assert "10.99.2" not in o.run("ip", "route").stdout
    sniff = subprocess.Popen(["ip", "netns", "exec", o.name, "/usr/bin/python3", "-c", SNIFF,
                              "kout0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sniff.stdout.readline().strip() == "ready"
        out = guests(h, "kbr0t0", "name=alpha do=dhcp,ping:198.51.100.2").passed()
        seen, _ = sniff.communicate(timeout=30)
    finally:
        if sniff.poll() is None:
            sniff.kill()
            sniff.wait()
    assert len(re.findall(r"NET: ping 198\.51\.100\.2 \(198\.51\.100\.2\) seq=\d ok", out)) == 3
    assert "echo request from 198.51.100.1 to 198.51.100.2" in seen, seen


def test_down_leaves_the_namespace_as_it_found_it(netns):
    h, o = netns("h"), netns("o")
    veth(h, o, a_ip="198.51.100.1/24")
    before = h.snapshot()
    args = ["private", "kbr0", "subnet=10.99.3.0/24", "uplink=kup0", "taps=2", "user=nobody"]
    up_ok(h.net(*args))
    during = h.snapshot()
    shape = h.shape()
    assert during != before and len(during["dnsmasq"]) == 1
    assert during["forward"].strip() == "1" and "khyve-net-kbr0" in during["nft"]
    # taps owned by the user, so khyve can run unprivileged on them
    for t in ("kbr0t0", "kbr0t1"):
        info = json.loads(h.run("ip", "-j", "-d", "link", "show", t).stdout)[0]
        assert info["linkinfo"]["info_data"]["user"] in ("nobody", 65534), info
        assert info["master"] == "kbr0"
    # idempotent: the same command again changes nothing
    r = up_ok(h.net(*args))
    assert "up to date" in r.stdout
    assert h.shape() == shape
    st = h.net("status").stdout
    assert "kbr0: private" in st and "tap kbr0t1: present" in st and "dnsmasq: pid" in st, st
    r = h.net("down")
    assert r.returncode == 0, r
    for what in ("dnsmasq (pid", "nftables table ip khyve-net-kbr0 deleted", "tap kbr0t0 deleted",
                 "bridge kbr0 deleted", "IPv4 forwarding back to 0"):
        assert what in r.stdout, r
    assert settles_to(h, before)
    assert os.listdir(h.state) == []
    r = h.net("down")  # again: nothing to do
    assert r.returncode == 0 and "nothing" in r.stdout, r
    assert settles_to(h, before)


def test_bridged_onto_a_veth_uplink(netns, guests):
    h, o = netns("h"), netns("o")
    veth(h, o)
    sh("ip", "-n", h.name, "link", "set", "kup0", "down")
    wait_oper(h, "kup0", "DOWN")
    before = h.snapshot()
    up_ok(h.net("bridged", "kbr0", "uplink=kup0", "taps=1"))
    up = json.loads(h.run("ip", "-j", "link", "show", "kup0").stdout)[0]
    assert up["master"] == "kbr0" and "UP" in up["flags"]
    # the guest is on the outside's LAN through the bridge
    out = guests(h, "kbr0t0", "ip=198.51.100.7/24 do=ping:198.51.100.2").passed()
    assert len(re.findall(r"NET: ping 198\.51\.100\.2 \(198\.51\.100\.2\) seq=\d ok", out)) == 3
    r = h.net("down", "kbr0")
    assert r.returncode == 0 and "uplink kup0 released" in r.stdout, r
    assert settles_to(h, before)  # kup0 is down and no port again


def one_error(r, *needles):
    lines = r.stderr.splitlines()
    assert r.returncode == 4 and len(lines) == 1 and lines[0].startswith("khyve-net: "), r
    for n in needles:
        assert n in lines[0], r


@pytest.mark.parametrize("args,needles,env", [
    (["private", "kbr0", "uplink=nosuch0"], ["uplink=nosuch0", "no such interface"], None),
    (["bridged", "kbr0"], ["needs uplink="], None),
    (["bridged", "kbr0", "uplink=kaddr0"], ["has addresses"], None),
    (["private", "kbr0", "subnet=10.97.3.0/24"], ["collides with 10.97.0.5/16 on kaddr0"], None),
    (["private", "kbr0", "subnet=10.96.3.0/24"], ["collides with the route 10.96.0.0/16"], None),
    (["private", "kbr0", "subnet=8.8.8.0/24"], ["not a private subnet"], None),
    (["private", "kbr0", "taps=2", "user=nosuchuser"], ["user=nosuchuser", "no such user"], None),
    (["private", "kbr0", "speed=10"], ["unknown argument 'speed=10'"], None),
    (["private", "kexist0"], ["kexist0 exists and khyve-net did not make it"], None),
    (["private", "kbr0", "taps=kexist0"], ["kexist0 exists"], None),
    (["private", "kbr0"], ["dnsmasq is missing"], {"KHYVE_NET_DNSMASQ": "/nonexistent/dnsmasq"}),
    (["private", "kbr0"], ["no permission"], "nobody"),
])
def test_bad_input_changes_nothing(netns, args, needles, env):
    h = netns("h")
    sh("ip", "-n", h.name, "link", "add", "kaddr0", "type", "veth", "peer", "name", "kaddr1")
    sh("ip", "-n", h.name, "addr", "add", "10.97.0.5/16", "dev", "kaddr0")
    sh("ip", "-n", h.name, "route", "add", "blackhole", "10.96.0.0/16")
    sh("ip", "-n", h.name, "link", "add", "kexist0", "type", "bridge")
    before = h.snapshot()
    if env == "nobody":
        r = subprocess.run(["ip", "netns", "exec", h.name, "setpriv", "--reuid=65534",
                            "--regid=65534", "--clear-groups", KHYVE_NET, "--state-dir",
                            h.state, *args], capture_output=True, text=True)
    else:
        r = h.net(*args, env=dict(os.environ, **env) if env else None)
    one_error(r, *needles)
    assert r.stdout == ""
    assert settles_to(h, before)
    assert not os.path.exists(h.state) or os.listdir(h.state) == []


def test_persist_prints_networkd_ifupdown_and_dnsmasq_files():
    r = subprocess.run([KHYVE_NET, "persist", "private", "kbr0", "subnet=10.99.4.0/24",
                        "uplink=eth0", "taps=2", "user=nobody", "hostname=khost"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r
    for s in ("# ---- /etc/systemd/network/50-khyve-kbr0.netdev", "Kind=bridge",
              "Address=10.99.4.1/24", "IPMasquerade=ipv4", "DNS=10.99.4.1", "Domains=~khyve",
              "# ---- /etc/systemd/network/50-khyve-kbr0t1.netdev", "Kind=tap", "User=nobody",
              "Bridge=kbr0", "# ---- /etc/dnsmasq.d/khyve-kbr0.conf", "interface=kbr0",
              "domain-needed", "bogus-priv", "dhcp-range=10.99.4.10,10.99.4.254",
              "host-record=khost,khost.khyve,10.99.4.1"):
        assert s in r.stdout, (s, r.stdout)
    r = subprocess.run([KHYVE_NET, "persist", "bridged", "kbr0", "uplink=eth0", "taps=tap0",
                        "format=ifupdown"], capture_output=True, text=True)
    assert r.returncode == 0, r
    assert "# ---- /etc/network/interfaces.d/khyve-kbr0" in r.stdout
    assert "pre-up ip link set eth0 master kbr0 up" in r.stdout
    assert "pre-up ip tuntap add dev tap0 mode tap" in r.stdout
