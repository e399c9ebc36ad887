"""Where bench/run and bench/virtio run their guests: here when this host's
/dev/kvm runs guests (found by trying: scripts/lib/kvm_probe.py), else
inside the SVM test host (scripts/svm-host), QEMU included, in one boot.

    where = decide(args.where)      # "local" or "svm" (exits with a clear line if neither)
    if where == "svm" and not inside_svm():
        sys.exit(rerun_in_svm(args.svm_cpus, args.svm_mem, timeout))

It also makes the network namespace with one tap that the tap benchmarks
share (netns_with_tap).
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("KHYVE_BUILD", os.path.join(ROOT, "build"))
SVM_HOST = os.path.join(ROOT, "scripts", "svm-host")
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
import kvm_probe  # noqa: E402


def inside_svm():
    return os.environ.get("SVM_HOST") == "1"


def add_args(ap, svm_cpus=2):
    ap.add_argument("--where", choices=["auto", "local", "svm"], default="auto",
                    help="local: this host's /dev/kvm; svm: inside the SVM test host "
                         "(scripts/svm-host); auto (default): local if a tiny guest runs here")
    ap.add_argument("--svm-cpus", type=int, default=svm_cpus,
                    help=f"vCPUs of the SVM test host (default {svm_cpus})")
    ap.add_argument("--svm-mem", default="2G", help="memory of the SVM test host (default 2G)")


def decide(where, prog):
    """'local' or 'svm', with one line on stderr saying why."""
    if inside_svm() or where == "local":
        return "local"
    if where == "svm":
        return "svm"
    why = kvm_probe.local_kvm(BUILD)
    if why is None:
        print(f"{prog}: guests run here (/dev/kvm runs them)", file=sys.stderr, flush=True)
        return "local"
    print(f"{prog}: no usable local KVM ({why}); running inside the SVM test host",
          file=sys.stderr, flush=True)
    return "svm"


def rerun_in_svm(script, argv, cpus, mem, timeout):
    """Runs `script argv --where local` inside one SVM test host boot and
    returns its exit status."""
    cmd = [SVM_HOST, "--cpus", str(cpus), "--mem", mem, "--timeout", str(timeout),
           "--", sys.executable, os.path.abspath(script), *argv, "--where", "local"]
    return subprocess.call(cmd)


def netns_with_tap(ns, tap, cidr):
    """A fresh network namespace ns (an old one of that name removed) with
    lo up and tap up in it, addressed cidr."""
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for args in (["netns", "add", ns], ["-n", ns, "link", "set", "lo", "up"],
                 ["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"],
                 ["-n", ns, "addr", "add", cidr, "dev", tap],
                 ["-n", ns, "link", "set", tap, "up"]):
        subprocess.run(["ip", *args], check=True, capture_output=True)


def host_summary():
    """One line about the host the figures come from."""
    parts = [f"{os.cpu_count()} CPUs"]
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            parts.append(f"clocksource {f.read().strip()}")
    except OSError:
        pass
    for mod, names in (("kvm", ["halt_poll_ns"]), ("kvm_amd", ["npt", "avic", "nrips"]),
                       ("kvm_intel", ["ept", "enable_apicv"])):
        for n in names:
            try:
                with open(f"/sys/module/{mod}/parameters/{n}") as f:
                    parts.append(f"{mod}.{n}={f.read().strip()}")
            except OSError:
                pass
    return ("SVM test host: " if inside_svm() else "this host: ") + ", ".join(parts)
