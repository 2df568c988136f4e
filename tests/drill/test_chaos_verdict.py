"""The chaos soak's invariants on hand-made timelines (the soak itself runs in the kernel suite)."""

from __future__ import annotations

import pytest

from benchmarks.chaos_lab import parse_ipvsadm, table_difference
from benchmarks.chaos_verdict import (
    Fault,
    connection_breaches,
    growth,
    growth_breaches,
    ownership_breaches,
    spans_from_changes,
    subtract,
    table_breaches,
)

MDI, ADVERT = 0.952, 0.25


def test_spans_from_changes_close_at_the_end_and_ignore_repeats() -> None:
    changes = [(0.0, True), (1.0, True), (2.0, False), (3.0, False), (4.0, True)]
    assert spans_from_changes(changes, 10.0) == [(0.0, 2.0), (4.0, 10.0)]


def test_subtract_cuts_holes_out() -> None:
    assert subtract([(0.0, 10.0)], [(2.0, 3.0), (5.0, 12.0)]) == [(0.0, 2.0), (3.0, 5.0)]


def test_a_clean_takeover_breaks_nothing() -> None:
    """lb1 is killed at 10 s (unfit until its restart reports READY at 20 s, its address left
    behind); lb2 takes the VIP 0.9 s later; lb1 drops the stale address 0.1 s after READY."""
    holds = {"lb1": [(0.0, 20.1)], "lb2": [(10.9, 30.0)]}
    breaches, nobody, both = ownership_breaches(holds, {"lb1": [(10.0, 20.0)]}, 0.0, 30.0, MDI, ADVERT)
    assert breaches == []
    assert nobody == pytest.approx(0.9)
    assert both == pytest.approx(0.1)


def test_a_slow_takeover_is_a_breach() -> None:
    holds = {"lb1": [(0.0, 10.0)], "lb2": [(11.2, 30.0)]}
    breaches, nobody, _ = ownership_breaches(holds, {}, 0.0, 30.0, MDI, ADVERT)
    assert [b.invariant for b in breaches] == ["vip_owner"]
    assert "no director" in breaches[0].detail and nobody == pytest.approx(1.2)


def test_two_owners_after_the_fault_cleared_is_a_breach_during_it_is_not() -> None:
    """A stopped master keeps its address: no breach while stopped, one when it lingers on after."""
    holds = {"lb1": [(0.0, 30.0)], "lb2": [(10.8, 12.6)]}
    unfit = {"lb1": [(10.0, 12.0)]}
    breaches, _, both = ownership_breaches(holds, unfit, 0.0, 30.0, MDI, ADVERT)
    assert both == pytest.approx(0.6)
    assert len(breaches) == 1 and "two directors" in breaches[0].detail


def test_table_mismatch_may_last_two_passes() -> None:
    samples = [(0.0, "lb1", True, ""), (1.0, "lb1", False, "x"), (9.0, "lb1", False, "x"), (10.0, "lb1", True, ""),
               (20.0, "lb2", False, "y"), (32.0, "lb2", False, "y")]
    breaches, worst = table_breaches(samples, 10.0)
    assert worst == pytest.approx(12.0)
    assert [b.detail.split("'")[0] for b in breaches] == ["lb2"]


def test_connections_may_end_only_around_hard_faults() -> None:
    faults = [Fault("kill_group", "lb1", "master", 10.0, 20.0, hard=True),
              Fault("scrape_storm", "lb1", "master", 40.0, 43.0)]
    breaches = connection_breaches([(25.0, "closed by peer"), (41.0, "ConnectionResetError")], faults, 10.0)
    assert len(breaches) == 1 and "after scrape_storm" in breaches[0].detail


def test_growth_from_a_warm_baseline_for_long_lived_processes() -> None:
    samples = [(0.0, "lb1 parent 7", 40, 100), (60.0, "lb1 parent 7", 20, 50_000_000),
               (300.0, "lb1 parent 7", 22, 56_000_000), (0.0, "lb2 parent 9", 20, 1), (30.0, "lb2 parent 9", 99, 9)]
    grown = growth(samples, warm=60.0, min_span=120.0)
    assert list(grown) == ["lb1 parent 7"]  # lb2's process was not watched long enough
    assert grown["lb1 parent 7"]["fd_growth"] == pytest.approx(0.10)
    breaches = growth_breaches(grown, 0.10)
    assert [b.invariant for b in breaches] == ["rss_growth"]


IPVSADM = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.10:80 rr
  -> 10.0.0.11:80                 Masq    1      0          0
  -> 10.0.0.12:80                 Masq    0      0          3
TCP  198.51.100.10:9000 rr persistent 60
  -> 10.0.0.11:9000               Masq    1      4          0
"""


def test_parse_ipvsadm_and_say_what_differs() -> None:
    have = parse_ipvsadm(IPVSADM)
    assert have == {"TCP 198.51.100.10:80 rr": {"10.0.0.11:80": "Masq 1", "10.0.0.12:80": "Masq 0"},
                    "TCP 198.51.100.10:9000 rr": {"10.0.0.11:9000": "Masq 1"}}
    want = {"TCP 198.51.100.10:80 rr": {"10.0.0.11:80": "Masq 1", "10.0.0.12:80": "Masq 1"},
            "TCP 198.51.100.10:8080 rr": {}}
    assert table_difference(want, have) == (
        "TCP 198.51.100.10:80 rr: 10.0.0.12:80 Masq 0 (want Masq 1); "
        "TCP 198.51.100.10:8080 rr missing; TCP 198.51.100.10:9000 rr not configured")
    assert table_difference(have, have) == ""
