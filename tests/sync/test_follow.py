"""Which kernel sync threads run as VRRP roles change: pure logic, the clock passed in."""

from __future__ import annotations

from director.sync.follow import HANDOVER_GRACE, SyncFollower


def test_startup_keeps_a_left_master_thread_for_the_grace_but_never_starts_one() -> None:
    sync = SyncFollower.starting(100.0)
    assert sync.plan(set(), 100.0) == (["backup"], [])
    assert sync.plan({"master"}, 100.0) == (["backup"], [])
    assert sync.next_change(100.0) == 100.0 + HANDOVER_GRACE
    assert sync.plan({"master", "backup"}, 100.0 + HANDOVER_GRACE) == ([], ["master"])
    assert sync.next_change(100.0 + HANDOVER_GRACE) is None


def test_master_runs_both_threads() -> None:
    sync = SyncFollower.starting(0.0)
    sync.set_master(True, 10.0)
    assert sync.plan({"backup"}, 10.0) == (["master"], [])
    assert sync.plan(set(), 10.0) == (["backup", "master"], [])
    assert sync.next_change(10.0) is None


def test_leaving_master_keeps_its_thread_until_the_kernel_has_flushed() -> None:
    sync = SyncFollower.starting(0.0)
    sync.set_master(True, 10.0)
    sync.set_master(False, 20.0)
    assert sync.plan({"master", "backup"}, 20.0 + HANDOVER_GRACE - 0.1) == ([], [])
    assert sync.next_change(20.0) == 20.0 + HANDOVER_GRACE
    assert sync.plan({"master", "backup"}, 20.0 + HANDOVER_GRACE) == ([], ["master"])


def test_master_again_within_the_grace_cancels_it() -> None:
    sync = SyncFollower.starting(0.0)
    sync.set_master(True, 10.0)
    sync.set_master(False, 20.0)
    sync.set_master(True, 21.0)
    assert sync.next_change(21.0) is None
    assert sync.plan({"master", "backup"}, 30.0) == ([], [])
