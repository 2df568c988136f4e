"""The runtime carries out a sync group's actions phase by phase: all adverts, then all VIP
changes, then all gratuitous ARPs, then the transitions (the drill shows why on the wire)."""

from __future__ import annotations

from typing import Any

from vrrp.fsm import AddVips, RemoveVips, SendAdvert, SendGarp, State, Transition
from vrrp.runtime import VrrpRuntime


def test_actions_run_phase_by_phase_across_members() -> None:
    runtime = VrrpRuntime([])
    done: list[tuple[str, str]] = []
    runtime._do = lambda lv, act: done.append((lv, type(act).__name__))  # type: ignore[method-assign]
    runtime._transition = lambda lv, tr: done.append((lv, "Transition"))  # type: ignore[method-assign]
    runtime._arm = lambda lv: None  # type: ignore[method-assign]
    up = Transition(State.BACKUP, State.MASTER, 100, "test")
    batch: list[tuple[Any, Any]] = [
        ("front", SendAdvert(100)), ("front", AddVips()), ("front", SendGarp()), ("front", up),
        ("back", SendAdvert(100)), ("back", AddVips()), ("back", SendGarp()), ("back", up),
        ("old", SendAdvert(0)), ("old", RemoveVips()),
    ]
    runtime._run(batch)
    assert done == [
        ("front", "SendAdvert"), ("back", "SendAdvert"), ("old", "SendAdvert"),
        ("front", "AddVips"), ("back", "AddVips"), ("old", "RemoveVips"),
        ("front", "SendGarp"), ("back", "SendGarp"),
        ("front", "Transition"), ("back", "Transition"),
    ]


def test_resign_sends_priority_zero_once_and_only_after_start() -> None:
    """The SIGTERM callback resigns at once; `run` resigning again after it sends nothing more."""
    import asyncio
    from types import SimpleNamespace

    class Fsm:
        interval_cs = 25

        def shutdown(self, now: float) -> list[Any]:
            return [SendAdvert(0), RemoveVips()]

    class Lv:  # hashed by identity, as the runtime's instance records are
        name = "front"
        cfg = SimpleNamespace(name="front")
        fsm = Fsm()

    async def scenario() -> list[tuple[str, str]]:
        runtime = VrrpRuntime([])
        sent: list[tuple[str, str]] = []
        runtime._do = lambda lv, act: sent.append((lv.cfg.name, type(act).__name__))  # type: ignore[method-assign]
        runtime._arm = lambda lv: None  # type: ignore[method-assign]
        runtime.live = {"front": Lv()}  # type: ignore[dict-item]
        runtime.resign()
        assert sent == []  # not started yet: `run` resigns once the instances are up
        runtime._started = True
        runtime.resign()
        runtime.resign()
        assert sent == [("front", "SendAdvert")]  # the VIPs are held for the hand-over
        await runtime._hand_over()  # no claim comes: released after one interval and the margin
        return sent

    assert asyncio.run(scenario()) == [("front", "SendAdvert"), ("front", "RemoveVips")]
