#!/usr/bin/python3
"""virtio-net with queues=2 and a 2-vCPU Linux guest (the kit), inside the
SVM test host; tests/svm/test_virtio_net_mq_linux.py runs it.

A multi_queue tap (kmqtap0, 10.78.0.1/24 on the host end) in a network
namespace made here, and a single-queue one (ksqtap0) to see the refusal.
khyve --verbose -c 2 with -s 2,virtio-net,kmqtap0,queues=2 (then with
vhost=on too, where /dev/vhost-net exists). The guest reports its queue
counts, then pings the host from CPU 0 and from CPU 1 (Linux's virtio-net
sets XPS so CPU i transmits on pair i, and tun answers a flow on the
queue it came from), then moves 1 MiB over TCP each way; the per-queue
interrupt counts of /proc/interrupts before and after are printed.

Prints one JSON object (the facts) on stdout.
usage: netmq_scenario.py --khyve PATH --kit DIR
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

# The namespace is made as virtio_scenario makes its own; this test's own
# addresses and ports keep it apart from the other network scenarios.
from virtio_scenario import rerun_in_netns  # noqa: E402

NS = "khyve-svm-mq"
HOST_IP, GUEST_IP = "10.78.0.1", "10.78.0.2"
TCP_IN, TCP_OUT = 5301, 5302

SCRIPT = r"""
V() { echo "V: $*"; }
irqs() {
  grep -E 'virtio[0-9]+-(input|output)[.]' /proc/interrupts | while read -r n rest; do
    set -- $rest; s=0
    while [ $# -gt 0 ]; do case $1 in *[!0-9]*) break;; esac; s=$((s + $1)); shift; done
    eval "last=\${$#}"; echo "$last=$s"
  done | tr '\n' ' '
}
ip link set eth0 up
ip addr add GUEST_IP/24 dev eth0
V queues tx $(ls -d /sys/class/net/eth0/queues/tx-* | wc -l) rx $(ls -d /sys/class/net/eth0/queues/rx-* | wc -l) cpus $(nproc)
V irqbefore $(irqs)
for c in 0 1; do
  V ping$c $(taskset -c $c ping -c 10 -i 0.2 -W 3 HOST_IP | grep -o '[0-9]* packets received')
done
dd if=/dev/urandom of=/tmp/out bs=64k count=16 2>/dev/null
V sentsum $(sha256sum /tmp/out | cut -d' ' -f1)
taskset -c 1 nc HOST_IP TCP_IN </tmp/out && V sent ok
taskset -c 0 nc HOST_IP TCP_OUT </dev/null >/tmp/in
V recvsum $(sha256sum /tmp/in | cut -d' ' -f1)
V irqafter $(irqs)
"""

OUT_DATA = os.urandom(1 << 20)


def serve(facts, key, port, send, stop):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST_IP, port))
    s.listen(1)
    s.settimeout(1)
    while not stop.is_set():
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        with c:
            c.settimeout(60)
            if send:
                c.sendall(OUT_DATA)
                facts[key] = hashlib.sha256(OUT_DATA).hexdigest()
            else:
                h, n = hashlib.sha256(), 0
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
                facts[key] = h.hexdigest()
                facts[key + "_bytes"] = n
        break
    s.close()


def run(a, facts, key, net, timeout=300):
    stop = threading.Event()
    threads = [threading.Thread(target=serve, args=(facts, key + "_host_received", TCP_IN, False,
                                                    stop), daemon=True),
               threading.Thread(target=serve, args=(facts, key + "_host_sent", TCP_OUT, True,
                                                    stop), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    script = SCRIPT.replace("GUEST_IP", GUEST_IP).replace("HOST_IP", HOST_IP) \
        .replace("TCP_IN", str(TCP_IN)).replace("TCP_OUT", str(TCP_OUT))
    append = "console=ttyS0 quiet khyve.cmd64=" + base64.b64encode(script.encode()).decode()
    args = [a.khyve, "--verbose", "-c", "2", "-m", "256M", "-l", "com1,stdio",
            "-s", "0,hostbridge", "-s", f"2,virtio-net,{net}", "-s", "31,lpc",
            "--kernel", os.path.join(a.kit, "vmlinux"),
            "--initrd", os.path.join(a.kit, "initramfs.cpio.gz"), "--append", append, "linux-mq"]
    start = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        facts[key + "_timeout"] = True
    stop.set()
    facts[key + "_seconds"] = round(time.monotonic() - start, 1)
    facts[key + "_status"] = p.returncode
    facts[key + "_stderr"] = err[-4000:]
    facts[key + "_guest"] = [l[3:].strip() for l in out.splitlines() if l.startswith("V: ")]
    if not facts[key + "_guest"]:
        facts[key + "_stdout"] = out[-3000:]


def refusal(a, facts):
    p = subprocess.run([a.khyve, "-c", "1", "-m", "64M", "-s", "0,hostbridge",
                        "-s", "2,virtio-net,ksqtap0,queues=2", "-s", "31,lpc",
                        "--kernel", os.path.join(a.kit, "vmlinux"), "linux-mq-refused"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    facts["refused_status"] = p.returncode
    facts["refused_stderr"] = p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--khyve", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--inside-netns", action="store_true")
    a = ap.parse_args()
    if not a.inside_netns:
        return rerun_in_netns(NS, [("kmqtap0", ["multi_queue"]), ("ksqtap0", [])], HOST_IP)
    facts = {"dev_vhost_net": os.path.exists("/dev/vhost-net")}
    refusal(a, facts)
    run(a, facts, "own", "kmqtap0,queues=2")
    if facts["dev_vhost_net"]:
        run(a, facts, "vhost", "kmqtap0,queues=2,vhost=on")
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
