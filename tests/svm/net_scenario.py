#!/usr/bin/python3
"""virtio-net's two other data paths with a real Linux guest (the kit),
inside the SVM test host; tests/svm/test_virtio_net_linux.py runs it.

1. vhost-net: a tap in a network namespace (10.77.0.1/24 on the host end),
   khyve --verbose with -s 2,virtio-net,ktap0,vhost=on; the guest pings the
   host end and moves 2 MiB over TCP each way. While it runs, the kernel's
   vhost worker for khyve's pid ("vhost-PID") is looked for.
2. slirp: -s 2,virtio-net,slirp,hostfwd=tcp:127.0.0.1:2222-:22, no tap; the
   guest takes a DHCP lease with busybox udhcpc and listens on port 22 with
   nc; the host connects to 127.0.0.1:2222 and a line goes each way.

Prints one JSON object (the facts) on stdout.
usage: net_scenario.py --khyve PATH --kit DIR
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

# The tap side and the TCP transfers are virtio_scenario's (same addresses,
# ports and checks), only the namespace differs.
from virtio_scenario import (GUEST_IP, HOST_IP, TCP_IN, TCP_OUT,  # noqa: E402,F401
                             rerun_in_netns, serve_tcp_in, serve_tcp_out, sh)

NS = "khyve-svm-vhost"
FWD_PORT = 2222

VHOST_SCRIPT = r"""
V() { echo "V: $*"; }
ip link set eth0 up
ip addr add GUEST_IP/24 dev eth0
V ping $(ping -c 3 -W 3 HOST_IP | grep -o '[0-9]* packets received')
dd if=/dev/urandom of=/tmp/out bs=64k count=32 2>/dev/null
V sentsum $(sha256sum /tmp/out | cut -d' ' -f1)
nc HOST_IP TCP_IN </tmp/out && V sent ok
nc -l -p TCP_OUT </dev/null >/tmp/in
V recvsum $(sha256sum /tmp/in | cut -d' ' -f1)
"""

SLIRP_SCRIPT = r"""
V() { echo "V: $*"; }
cat >/tmp/udhcpc.sh <<'EOS'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
[ -n "$router" ] && ip route add default via "$router"
echo "V: lease $ip router $router dns $dns"
EOS
chmod +x /tmp/udhcpc.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -s /tmp/udhcpc.sh
V listening
echo hello-from-guest | nc -l -p 22 >/tmp/in
V got $(cat /tmp/in)
"""




def kit_args(a, script, net):
    append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(script.encode()).decode()
    return [a.khyve, "--verbose", "-c", "1", "-m", "256M", "-l", "com1,stdio",
            "-s", "0,hostbridge", "-s", f"2,virtio-net,{net}", "-s", "31,lpc",
            "--kernel", os.path.join(a.kit, "vmlinux"),
            "--initrd", os.path.join(a.kit, "initramfs.cpio.gz"), "--append", append, "linux-net"]


def run(args, facts, key, timeout, during=None):
    start = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    if during:
        threading.Thread(target=during, args=(p.pid,), daemon=True).start()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        facts[key + "_timeout"] = True
    facts[key + "_seconds"] = round(time.monotonic() - start, 1)
    facts[key + "_status"] = p.returncode
    facts[key + "_stdout"] = out[-4000:]
    facts[key + "_stderr"] = err[-3000:]
    facts[key + "_guest"] = [l[3:].strip() for l in out.splitlines() if l.startswith("V: ")]






def vhost_part(a, facts):
    ready, stop = threading.Event(), threading.Event()
    threading.Thread(target=serve_tcp_in, args=(facts, ready), daemon=True).start()
    ready.wait(10)
    threading.Thread(target=serve_tcp_out, args=(facts, stop), daemon=True).start()
    seen = set()

    def watch(pid):
        # The kernel's worker for khyve's vhost device: a kernel thread
        # (or, on newer kernels, a thread of khyve) named vhost-PID.
        while not stop.is_set():
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        with open(f"/proc/{d}/comm") as f:
                            if f.read().strip() == f"vhost-{pid}":
                                seen.add(d)
                    except OSError:
                        pass
            for t in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
                try:
                    with open(f"/proc/{pid}/task/{t}/comm") as f:
                        if f.read().strip() == f"vhost-{pid}":
                            seen.add(t)
                except OSError:
                    pass
            time.sleep(0.5)

    script = VHOST_SCRIPT.replace("GUEST_IP", GUEST_IP).replace("HOST_IP", HOST_IP) \
        .replace("TCP_IN", str(TCP_IN)).replace("TCP_OUT", str(TCP_OUT))
    run(kit_args(a, script, "ktap0,vhost=on"), facts, "vhost", 300, during=watch)
    stop.set()
    facts["vhost_worker_seen"] = bool(seen)
    facts["dev_vhost_net"] = os.path.exists("/dev/vhost-net")


def slirp_part(a, facts):
    stop = threading.Event()

    def client():
        # slirp accepts at once and then tries the guest: until the guest
        # listens, the connection just closes; try again.
        while not stop.is_set():
            try:
                c = socket.create_connection(("127.0.0.1", FWD_PORT), timeout=5)
            except OSError:
                time.sleep(0.5)
                continue
            try:
                c.settimeout(60)
                c.sendall(b"hello-from-host\n")
                c.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    b = c.recv(4096)
                    if not b:
                        break
                    got += b
                if b"hello-from-guest" in got:
                    facts["host_got"] = got.decode(errors="replace").strip()
                    return
            except OSError:
                pass
            finally:
                c.close()
            time.sleep(0.5)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    run(kit_args(a, SLIRP_SCRIPT, f"slirp,hostfwd=tcp:127.0.0.1:{FWD_PORT}-:22"), facts,
        "slirp", 300)
    stop.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--inside-netns", action="store_true")
    a = ap.parse_args()
    if not a.inside_netns:
        return rerun_in_netns(NS, [("ktap0", [])], HOST_IP)
    facts = {}
    vhost_part(a, facts)
    slirp_part(a, facts)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
