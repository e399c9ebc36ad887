"""A Linux guest uses khyve's virtio devices for real, inside the SVM test
host: the virtio modules bind; mkfs.ext4, a file written, sync, poweroff,
then e2fsck and the file's checksum on the host side; ping and 2 MiB of
TCP each way between the guest and the host end of a tap in a network
namespace; /dev/hwrng; a line each way on a virtio-console port.

One inner boot per build (tests/svm/virtio_scenario.py does the work)."""
import json
import os

import pytest

import scenario_run

pytestmark = pytest.mark.svm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.environ.get("KHYVE_KIT_DIR", os.path.join(REPO, ".kit")), "linux")


def run_scenario(build):
    return scenario_run.run_scenario("virtio_scenario.py", build, ["--kit", KIT])


@pytest.mark.parametrize("build", ["build", "build-asan"])
def test_linux_uses_blk_net_rnd_console(build):
    f = run_scenario(build)
    why = json.dumps(f, indent=1)
    g = f["guest"]
    assert not f.get("timeout") and f["status"] == 1, why  # the kit powers off
    assert "Sanitizer" not in f["stderr"] and "runtime error" not in f["stderr"], why
    for drv, n in (("virtio_blk", 2), ("virtio_net", 1), ("virtio_rng", 1), ("virtio_console", 1)):
        assert f"driver {drv} {n}" in g, why
    # virtio-blk: mkfs.ext4, a file, sync; fsck and the file on the host
    assert "mkfs ok" in g and "umount ok" in g, why
    assert f["fsck_status"] == 0, why
    disksum = [l.split()[1] for l in g if l.startswith("disksum ")]
    assert disksum and disksum[0] == f["host_disk_sum"] and f["host_disk_bytes"] == 2 << 20, why
    # virtio-rnd
    assert "rng virtio_rng.0" in g, why
    rng = [l.split()[1] for l in g if l.startswith("rngbytes ")]
    assert rng and len(rng[0]) == 64 and rng[0] != "0" * 64, why
    # virtio-net: ping and TCP both ways
    assert "ping 3 packets received" in g, why
    sent = [l.split()[1] for l in g if l.startswith("sentsum ")]
    assert sent and sent[0] == f.get("host_received_sum"), why
    assert f.get("host_received_bytes") == 2 << 20, why
    recv = [l.split()[1] for l in g if l.startswith("recvsum ")]
    assert recv and recv[0] == f.get("host_sent_sum"), why
    # virtio-console: a named port, a line each way
    assert any(l.endswith(" data") and l.startswith("port ") for l in g), why
    assert f.get("console_from_guest") == "hello over virtio-console", why
    assert "console got hello from the host" in g, why
