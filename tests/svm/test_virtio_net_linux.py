"""virtio-net with a Linux guest inside the SVM test host: vhost-net on a
tap (ping and 2 MiB of TCP each way, the kernel's worker doing it) and
slirp (a DHCP lease and a host-forwarded TCP connection into the guest).
tests/svm/net_scenario.py does the work, one test-host boot per build."""
import json
import os

import pytest

import scenario_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")


def run_scenario(build):
    return scenario_run.run_scenario("net_scenario.py", build, ["--kit", KIT], timeout=700)


@pytest.fixture(scope="module", params=["build", "build-asan"])
def facts(request):
    return run_scenario(request.param)


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
