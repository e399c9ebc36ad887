"""The benchmark guests of bench/run run and report their numbers (no
timing is checked here: timings belong in bench/)."""
import re

from conftest import passed, run_guest


def fields(out, prefix):
    return [dict(re.findall(r"(\w+)=(\w+)", line)) for line in out.splitlines()
            if line.startswith(prefix)]


def test_pmtbench_finds_the_pm_timer_through_the_fadt_and_reports_counts():
    r = passed(run_guest("pmtbench", append="n=50 warmup=5"))
    head = fields(r.out, "PMTBENCH: port=")
    assert head and head[0]["port"] == "0x408"  # khyve's ACPI_PM_TMR_PORT
    assert int(head[0]["tsc_khz"]) > 0
    ops = {d["op"]: d for d in fields(r.out, "PMTBENCH: op=")}
    assert set(ops) == {"pmtimer", "cpuid"}
    for d in ops.values():
        assert int(d["n"]) == 50 and int(d["cycles"]) > 0
    assert int(ops["pmtimer"]["ticks"]) >= 0


def test_ipibench_round_trips_between_two_vcpus_busy_and_halted():
    r = passed(run_guest("ipibench", cpus=2, append="n=20 warmup=2"))
    head = fields(r.out, "IPIBENCH: apic=")
    assert head and head[0]["bsp"] != head[0]["ap"]
    modes = {d["mode"]: d for d in fields(r.out, "IPIBENCH: mode=")}
    assert set(modes) == {"busy", "halt"}
    for d in modes.values():
        assert int(d["n"]) == 20 and int(d["cycles"]) > 0
