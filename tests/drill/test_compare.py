"""Rounds summed up (medians, ranges, totals) and the trailing figures between implementations."""

from __future__ import annotations

from director.drill.compare import spread, summarize, trailing
from director.drill.core import Figures


def figures(takeover: float | None, failed: int = 0, recovery: float | None = 0.3, lost: int = 0,
            holder: str = "lb2", error: str = "", after: float | None = 0.9) -> Figures:
    return Figures(takeover=takeover, failed_requests=failed, requests=100, lost_connections=lost, connections=12,
                   recovery=recovery, holder=holder, error=error, lost_reasons={"reset": lost} if lost else {},
                   last_advert=-0.05, resigned=False, after_advert=after)


def test_spread_ignores_missing_values() -> None:
    assert spread([None, None]) is None
    got = spread([0.9, None, 0.7, 0.8])
    assert got is not None and (got.median, got.low, got.high, got.samples) == (0.8, 0.7, 0.9, 3)


def test_summary_medians_totals_and_errors() -> None:
    rounds = [figures(0.8, failed=1), figures(0.9, failed=2, lost=1), figures(0.7, holder="lb1+lb2"),
              figures(None, error="precondition: timed out")]
    s = summarize(rounds)
    assert s.rounds == 3 and s.errors == ("precondition: timed out",)
    assert s.takeover is not None and s.takeover.median == 0.8 and (s.takeover.low, s.takeover.high) == (0.7, 0.9)
    assert (s.failed, s.requests, s.lost, s.connections) == (3, 300, 1, 36)
    assert s.lost_reasons == (("reset", 1),)
    assert s.holders == (("lb2", 2), ("lb1+lb2", 1))


def test_trailing_names_each_worse_figure() -> None:
    ours = summarize([figures(0.85, failed=1, recovery=0.2), figures(0.95, recovery=0.2)])
    ref = summarize([figures(0.8, recovery=0.25), figures(0.9, recovery=0.25)])
    assert trailing(ours, ref) == ["VIP takeover: median 900 ms against 850 ms", "failed requests: 1/200 against 0/200"]
    assert trailing(ref, ours) == ["all servers serve: median 250 ms against 200 ms"]
    assert trailing(ours, ours) == []


def test_trailing_scales_counts_by_rounds() -> None:
    """2 failures in 4 rounds are not worse than 1 in 2."""
    ours = summarize([figures(0.8, failed=f) for f in (1, 0, 1, 0)])
    ref = summarize([figures(0.8, failed=1), figures(0.8)])
    assert trailing(ours, ref) == []
    assert trailing(summarize([figures(0.8, failed=f) for f in (1, 1, 1, 0)]), ref) == [
        "failed requests: 3/400 against 1/200"]


def test_missing_takeover_trails_an_observed_one() -> None:
    ours = summarize([figures(None, after=None)])
    ref = summarize([figures(0.8)])
    assert trailing(ours, ref) == ["VIP takeover: never observed, the reference's median is 800 ms",
                                   "last advert to takeover: never observed, the reference's median is 900 ms"]
    assert trailing(summarize([figures(None, error="x")]), ref) == []  # nothing ran: errors are reported apart


def test_all_servers_serve_trails_only_beyond_its_resolution() -> None:
    ours = summarize([figures(0.8, recovery=0.09)])
    ref = summarize([figures(0.8, recovery=0.04)])
    assert trailing(ours, ref, recovery_step=0.06) == []
    assert trailing(ours, ref, recovery_step=0.04) == ["all servers serve: median 90 ms against 40 ms"]


def test_times_trail_only_by_a_whole_printed_millisecond() -> None:
    ref = summarize([figures(0.8600, after=0.9136)])
    assert trailing(summarize([figures(0.8603, after=0.9143)]), ref) == []  # both print 860 and 914 ms
    assert trailing(summarize([figures(0.8606, after=0.9136)]), ref) == ["VIP takeover: median 861 ms against 860 ms"]
