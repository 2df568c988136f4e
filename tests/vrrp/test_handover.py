"""The make-before-break hand-over of a graceful stop: a master sends priority 0 at once
and keeps its VIPs until its backup claims them, or one advert interval and a margin
have passed."""

from __future__ import annotations

import ipaddress

import pytest

from vrrp.fsm import Instance, RemoveVips, SendAdvert, State, Transition
from vrrp.handover import MARGIN, Handover, Release

ME = ipaddress.IPv4Address("192.0.2.2")
PEER = ipaddress.IPv4Address("192.0.2.3")


def master(name: str, interval_cs: int = 100) -> Instance:
    i = Instance(name=name, vrid=51, priority=100, interval_cs=interval_cs, primary=ME)
    i.start(0.0)
    i.tick(i.deadline)
    assert i.state is State.MASTER
    return i


def backup(name: str) -> Instance:
    i = Instance(name=name, vrid=52, priority=100, interval_cs=100, primary=ME)
    i.start(0.0)
    return i


def resign(handover: Handover[str], now: float, *instances: Instance) -> list:
    return handover.resign(now, [(i.name, i.interval_cs / 100, i.shutdown(now)) for i in instances])


def test_masters_send_priority_zero_at_once_and_hold_their_vips() -> None:
    h: Handover[str] = Handover()
    due = resign(h, 10.0, master("front", 25), backup("spare"), master("back", 100))
    # every priority 0 and the backup's whole shutdown now, in instance order
    assert due == [("front", SendAdvert(0)),
                   ("spare", Transition(State.BACKUP, State.INIT, 100, "shutdown")),
                   ("back", SendAdvert(0))]
    assert h.holding == ["front", "back"]
    assert h.deadline == pytest.approx(10.0 + 1.0 + MARGIN)  # the longest interval counts


def test_the_first_advert_of_the_new_master_releases_only_its_instance() -> None:
    h: Handover[str] = Handover()
    resign(h, 10.0, master("front"), master("back"))
    [release] = h.advert("front", 100, PEER, 10.06)
    assert release == Release("front", "claimed by 192.0.2.3",
                              (RemoveVips(), Transition(State.MASTER, State.INIT, 100, "shutdown")))
    assert h.holding == ["back"] and h.deadline == pytest.approx(11.0 + MARGIN)
    assert h.advert("front", 100, PEER, 10.07) == []  # released once
    assert [r.key for r in h.advert("back", 100, PEER, 10.08)] == ["back"]
    assert h.holding == [] and h.deadline is None
    assert h.deadline_reached(12.0) == []


def test_priority_zero_is_not_a_claim() -> None:
    """Another router resigning at the same time claims nothing."""
    h: Handover[str] = Handover()
    resign(h, 10.0, master("front"))
    assert h.advert("front", 0, PEER, 10.01) == []
    assert h.holding == ["front"]


def test_without_a_claim_every_vip_goes_at_the_deadline() -> None:
    h: Handover[str] = Handover()
    resign(h, 10.0, master("front"), master("back"))
    releases = h.deadline_reached(11.15)
    assert [(r.key, r.reason) for r in releases] == [("front", "no claim in time"), ("back", "no claim in time")]
    assert all(RemoveVips() in r.actions for r in releases)
    assert h.holding == [] and h.deadline is None


def test_adverts_before_the_stop_or_for_other_instances_release_nothing() -> None:
    h: Handover[str] = Handover()
    assert h.advert("front", 100, PEER, 1.0) == []
    resign(h, 10.0, master("front"), backup("spare"))
    assert h.advert("spare", 100, PEER, 10.01) == []
    assert h.holding == ["front"]


def test_resign_happens_once_and_nothing_is_held_without_a_master() -> None:
    h: Handover[str] = Handover()
    spare = backup("spare")
    assert [act for _key, act in resign(h, 10.0, spare)] == [Transition(State.BACKUP, State.INIT, 100, "shutdown")]
    assert h.resigned and h.holding == [] and h.deadline is None
    assert resign(h, 11.0, master("late")) == []  # a second resign is ignored
    assert h.holding == []
