"""The Linux kit guest on `khyve-net private`, inside the SVM test host: its
busybox udhcpc gets a lease (sending its hostname) from the dnsmasq that
khyve-net started in a network namespace, it resolves the host by name
(busybox nslookup) and pings it, and the host resolves the guest's name.
Then `khyve-net down` leaves the namespace as it was.

This file is also the scenario itself: run as a program (inside the test
host) it does the work and prints one JSON object of facts."""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
INSIDE = os.environ.get("SVM_HOST") == "1"
KHYVE_NET = os.path.join(REPO, "scripts", "khyve-net")
NS = "khyve-svm-knet"

GUEST = r"""
cat >/tmp/udhcpc.sh <<'EOF'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr add "$ip/$mask" dev "$interface"
	echo "V: lease $ip/$mask router=$router dns=$dns domain=$domain"
	echo "nameserver $dns" >/etc/resolv.conf
	[ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf ;;
esac
exit 0
EOF
chmod +x /tmp/udhcpc.sh
ip link set eth0 up
udhcpc -i eth0 -s /tmp/udhcpc.sh -q -n -t 20 -T 3 -x hostname:kitguest 2>/dev/null
echo "V: udhcpc $?"
addr=$(nslookup khost 2>/dev/null | awk '/^Name:/ { n = 1; next }
	n && /^Address/ { sub(/^Address[^:]*: */, ""); split($0, a, " "); print a[1]; exit }')
echo "V: khost is $addr"
echo "V: ping $(ping -c 2 -W 5 "$addr" | grep -o '[0-9]* packets received')"
"""


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


def snapshot():
    return [sh("ip", "netns", "exec", NS, *c).stdout for c in
            (["ip", "-d", "link"], ["ip", "addr"], ["nft", "list", "ruleset"])]


def scenario(khyve, kit):
    facts = {}
    state = tempfile.mkdtemp(prefix="khyve-net-state-")
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "netns", "exec", NS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        before = snapshot()
        net = ["ip", "netns", "exec", NS, KHYVE_NET, "--state-dir", state]
        up = sh(*net, "private", "kbr0", "subnet=10.99.9.0/24", "taps=1", "hostname=khost",
                check=False)
        facts["up"] = [up.returncode, up.stdout, up.stderr]
        append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(GUEST.encode()).decode()
        p = subprocess.run(["ip", "netns", "exec", NS, "timeout", "240", khyve, "-c", "1",
                            "-m", "256M", "-l", "com1,stdio", "-s", "0,hostbridge",
                            "-s", "2,virtio-net,kbr0t0", "-s", "31,lpc",
                            "--kernel", os.path.join(kit, "vmlinux"),
                            "--initrd", os.path.join(kit, "initramfs.cpio.gz"),
                            "--append", append, "knet"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace")
        facts["status"] = p.returncode
        facts["stdout"] = p.stdout[-5000:]
        facts["stderr"] = p.stderr[-3000:]
        facts["guest"] = [l[3:].strip() for l in p.stdout.splitlines() if l.startswith("V: ")]
        # the host side asks its dnsmasq for the guest's name
        q = sh("ip", "netns", "exec", NS, sys.executable, "-c",
               "import sys; sys.path.insert(0, sys.argv[1]); import test_khyve_net_linux as t; "
               "print(t.ask('kitguest', '10.99.9.1'))",
               os.path.dirname(os.path.abspath(__file__)), check=False)
        facts["host_resolves_guest"] = q.stdout.strip() or q.stderr[-500:]
        facts["status_out"] = sh(*net, "status", check=False).stdout
        d = sh(*net, "down", check=False)
        facts["down"] = [d.returncode, d.stdout, d.stderr]
        facts["restored"] = snapshot() == before
    finally:
        sh("ip", "netns", "del", NS, check=False)
    return facts


def ask(name, server):
    """A DNS A query over UDP; the first address, or 'rcode N'."""
    import socket
    import struct
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(q, (server, 53))
    r = s.recv(1500)
    i = len(q)
    for _ in range(struct.unpack(">H", r[6:8])[0]):
        i += 2 if r[i] & 0xc0 == 0xc0 else r.index(0, i) + 1 - i
        t, c, ttl, l = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if t == 1:
            return socket.inet_ntoa(r[i:i + 4])
        i += l
    return f"rcode {r[3] & 15}"


@pytest.mark.svm
@pytest.mark.parametrize("build", ["build"])
def test_linux_guest_gets_a_lease_and_names(build):
    args = ["/usr/bin/python3", os.path.abspath(__file__), "--khyve",
            os.path.join(REPO, build, "src", "cmd", "khyve"), "--kit", KIT]
    if not INSIDE:
        args = [os.path.join(REPO, "scripts", "svm-host"), "--timeout", "400", "--share",
                os.path.join(REPO, build), "--", *args]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=500, cwd=REPO)
    assert p.returncode == 0 and p.stdout.strip(), f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    f = json.loads(p.stdout.strip().splitlines()[-1])
    why = json.dumps(f, indent=1)
    assert f["up"][0] == 0, why
    g = f["guest"]
    assert f["status"] == 1, why  # the kit powers off
    assert "udhcpc 0" in g, why
    lease = [l for l in g if l.startswith("lease ")]
    assert lease and re.match(r"lease 10\.99\.9\.\d+/24 router=10\.99\.9\.1 dns=10\.99\.9\.1 "
                              r"domain=khyve", lease[0]), why
    assert "khost is 10.99.9.1" in g, why
    assert "ping 2 packets received" in g, why
    guest_ip = lease[0].split()[1].split("/")[0]
    assert f["host_resolves_guest"] == guest_ip, why
    assert re.search(rf"lease {re.escape(guest_ip)} \S+ kitguest", f["status_out"]), why
    assert f["down"][0] == 0 and f["restored"], why


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    a = ap.parse_args()
    print(json.dumps(scenario(a.khyve, a.kit)))
