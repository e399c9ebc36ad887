"""virtio-net with queues=2 and a 2-vCPU Linux guest inside the SVM test
host, on a multi_queue tap in a network namespace the scenario makes
(tests/svm/netmq_scenario.py): the guest sees 2 tx and 2 rx queues, pings
the host from each CPU (so from each pair) and moves 1 MiB over TCP each
way; both pairs' interrupts grow. Again with vhost=on (a vhost-net per
pair) where the test host has /dev/vhost-net. A single-queue tap with
queues=2 is one clear error line."""
import json
import os
import re

import pytest

import scenario_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")


@pytest.fixture(scope="module", params=["build", "build-asan"])
def facts(request):
    return scenario_run.run_scenario("netmq_scenario.py", request.param, ["--kit", KIT],
                                     timeout=700)


def irqs(line):
    return {k: int(v) for k, v in re.findall(r"virtio\d+-((?:input|output)\.\d+)=(\d+)", line)}


def check(facts, key):
    why = json.dumps(facts, indent=1)
    assert not facts.get(key + "_timeout") and facts[key + "_status"] == 1, why
    err = facts[key + "_stderr"]
    assert "Sanitizer" not in err and "runtime error" not in err, why
    assert "2 queue pairs" in err, why
    g = facts[key + "_guest"]
    assert "queues tx 2 rx 2 cpus 2" in g, why
    assert "ping0 10 packets received" in g and "ping1 10 packets received" in g, why
    sent = [l.split()[1] for l in g if l.startswith("sentsum ")]
    assert sent and sent[0] == facts.get(key + "_host_received"), why
    assert facts.get(key + "_host_received_bytes") == 1 << 20, why
    recv = [l.split()[1] for l in g if l.startswith("recvsum ")]
    assert recv and recv[0] == facts.get(key + "_host_sent"), why
    before = irqs(next(l for l in g if l.startswith("irqbefore")))
    after = irqs(next(l for l in g if l.startswith("irqafter")))
    for pair in (0, 1):
        grew = sum(after.get(f"{d}.{pair}", 0) - before.get(f"{d}.{pair}", 0)
                   for d in ("input", "output"))
        assert grew > 0, (pair, before, after, why)
    return err


def test_two_pairs_on_khyves_own_path(facts):
    check(facts, "own")


def test_two_pairs_on_vhost_net(facts):
    if not facts["dev_vhost_net"]:
        pytest.skip("no /dev/vhost-net in the test host")
    err = check(facts, "vhost")
    assert "own data path" not in err, facts
    for pair in (0, 1):
        assert f"vhost-net carries pair {pair}'s data path" in err, facts


def test_single_queue_tap_refused(facts):
    assert facts["refused_status"] == 4, facts
    lines = [l for l in facts["refused_stderr"].splitlines() if l.strip()]
    assert len(lines) == 1 and "ksqtap0: not a multiqueue tap" in lines[0], facts
