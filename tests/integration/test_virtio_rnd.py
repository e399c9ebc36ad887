"""virtio-pci transport and virtqueues, proven on virtio-rnd: random bytes
arrive through direct, chained and indirect buffers, with every interrupt
mode; a BAR move keeps the device working; malformed queues leave khyve
running and the device in DEVICE_NEEDS_RESET, from which it recovers."""
import re

import pytest

from conftest import passed, GUEST_PASS, run_guest


RND = ["-s", "0,hostbridge", "-s", "4,virtio-rnd", "-s", "31,lpc"]


@pytest.mark.parametrize("append", [
    "irq=msix", "irq=msi", "irq=intx", "irq=poll",
    "irq=msix features=0",            # neither event-idx nor indirect
    "irq=intx features=0x20000000",   # event-idx only
    "irq=msix move=1",                # BAR 4 moved by the guest
])
def test_random_bytes_arrive(append):
    r = passed(run_guest("virtiornd", *RND, append=append + " rounds=3"))
    m = re.search(r"RND: bytes=(\d+) distinct=(\d+) irqs=(\d+)", r.out)
    assert int(m.group(1)) > 0 and int(m.group(2)) >= 100
    if "poll" not in append:
        assert int(m.group(3)) > 0


def test_malformed_queues_need_reset_and_recover():
    r = passed(run_guest("virtiobad", *RND))
    cases = re.findall(r"BAD (\w+): status=(\w+) recovered=(\w+)", r.out)
    assert len(cases) >= 20, r
    for name, status, recovered in cases:
        assert int(status, 16) & 0x40, (name, r)
        assert recovered == "yes", (name, r)
    # The log says what was wrong, rate-limited, never fatal.
    assert "virtio-rnd" in r.err
