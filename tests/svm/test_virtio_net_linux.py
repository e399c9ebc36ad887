"""virtio-net with a Linux guest inside the SVM test host: vhost-net on a
tap (ping and 2 MiB of TCP each way, the kernel's worker doing it) and
slirp (a DHCP lease and a host-forwarded TCP connection into the guest).
tests/svm/net_scenario.py does the work, one test-host boot per build."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")
INSIDE = os.environ.get("SVM_HOST") == "1"
SCENARIO = os.path.join(REPO, "tests", "svm", "net_scenario.py")


def run_scenario(build):
    args = ["/usr/bin/python3", SCENARIO, "--khyve", os.path.join(REPO, build, "src", "cmd", "khyve"),
            "--kit", KIT]
    if not INSIDE:
        args = [os.path.join(REPO, "scripts", "svm-host"), "--timeout", "700", "--share",
                os.path.join(REPO, build), "--", *args]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=800, cwd=REPO)
    assert p.returncode == 0 and p.stdout.strip(), f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["build", "build-asan"])
def facts(request):
    return run_scenario(request.param)


# Seen once in a clean-clone run (build, not build-asan): with vhost=on the
# Linux guest printed nothing for 300 s after vhost had started (its worker
# was running), as if a control-queue command during virtio-net's probe got
# no answer (Linux spins on it). Not understood yet; issue 11 stays open.
@pytest.mark.xfail(strict=False, reason="intermittent: the guest may hang after vhost starts "
                   "(a control-queue kick lost?); under investigation in issue 11")
def test_vhost_net_carries_ping_and_tcp(facts):
    why = json.dumps(facts, indent=1)
    assert facts["dev_vhost_net"], why
    assert not facts.get("vhost_timeout") and facts["vhost_status"] == 1, why
    err = facts["vhost_stderr"]
    assert "Sanitizer" not in err and "runtime error" not in err, why
    assert "vhost-net carries the data path" in err and "own data path" not in err, why
    assert facts["vhost_worker_seen"], why
    # Completions go from the kernel's worker straight into KVM's irqfd.
    assert "straight into its vector's irqfd" in err, why
    g = facts["vhost_guest"]
    assert "ping 3 packets received" in g, why
    sent = [l.split()[1] for l in g if l.startswith("sentsum ")]
    assert sent and sent[0] == facts.get("host_received_sum"), why
    assert facts.get("host_received_bytes") == 2 << 20, why
    recv = [l.split()[1] for l in g if l.startswith("recvsum ")]
    assert recv and recv[0] == facts.get("host_sent_sum"), why


def test_slirp_lease_and_hostfwd(facts):
    why = json.dumps(facts, indent=1)
    assert not facts.get("slirp_timeout") and facts["slirp_status"] == 1, why
    err = facts["slirp_stderr"]
    assert "Sanitizer" not in err and "runtime error" not in err, why
    g = facts["slirp_guest"]
    assert "lease 10.0.2.15 router 10.0.2.2 dns 10.0.2.3" in g, why
    assert "got hello-from-host" in g, why
    assert facts.get("host_got") == "hello-from-guest", why
