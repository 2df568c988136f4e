"""keepalived's weight arithmetic for tracked scripts and files, through the state machine."""

from __future__ import annotations

import ipaddress

import pytest

from director.config.model import TrackFile, TrackScript, VrrpInstanceConfig
from vrrp import tracking
from vrrp.fsm import Instance, State
from vrrp.trackers import TrackerStates, file_effect, fsm_input, script_effect

VIP = (ipaddress.ip_interface("192.0.2.10/24"),)


def instance_cfg(scripts: tuple[TrackScript, ...] = (), files: tuple[TrackFile, ...] = (),
                 priority: int = 100) -> VrrpInstanceConfig:
    return VrrpInstanceConfig("VI_1", "eth0", 1, priority=priority, virtual_ips=VIP, track_scripts=scripts,
                              track_files=files)


def fsm(priority: int = 100) -> Instance:
    return Instance("VI_1", 1, priority, 100, ipaddress.IPv4Address("192.0.2.2"))


@pytest.mark.parametrize(("weight", "ok", "effect"), [
    (20, True, (20, False)),  # a positive weight adds while the script is ok...
    (20, False, (0, False)),  # ...and nothing while it fails
    (-20, True, (0, False)),  # a negative weight adds nothing while ok...
    (-20, False, (-20, False)),  # ...and lowers the priority while it fails
    (0, True, (0, False)),
    (0, False, (0, True)),  # weight 0: fault while it fails
    (20, None, (0, False)), (-20, None, (0, False)), (0, None, (0, False)),  # unknown: nothing at all
])
def test_script_effect(weight: int, ok: bool | None, effect: tuple[int, bool]) -> None:
    assert script_effect(weight, ok) == effect


@pytest.mark.parametrize(("weight", "value", "effect"), [
    (1, 5, (5, False)),
    (10, -3, (-30, False)),  # a negative value lowers the priority
    (-2, 4, (-8, False)),
    (1, 0, (0, False)),
    (100, 3, (253, False)),  # at most 253
    (1, 1000, (253, False)),  # the value itself is kept within -254..254 first
    (1, -253, (-253, False)),
    (1, -254, (0, True)),  # -254 and below: fault
    (2, -200, (0, True)),
    (0, 0, (0, False)),  # weight 0: any value but 0 is a fault
    (0, 7, (0, True)), (0, -1, (0, True)),
    (5, None, (0, False)),  # not read yet
])
def test_file_effect(weight: int, value: int | None, effect: tuple[int, bool]) -> None:
    assert file_effect(weight, value) == effect


@pytest.mark.parametrize(("weight", "ok", "effect"), [
    (20, True, (-20, False)),  # reverse: a positive weight is subtracted while ok...
    (20, False, (0, False)),
    (-20, True, (0, False)),
    (-20, False, (20, False)),  # ...a negative one raises the priority while it fails
    (0, True, (0, True)),  # weight 0 reverse: fault while the script is ok
    (0, False, (0, False)),
    (20, None, (0, False)), (0, None, (0, False)),  # unknown: still nothing
])
def test_script_effect_reversed(weight: int, ok: bool | None, effect: tuple[int, bool]) -> None:
    assert script_effect(weight, ok, reverse=True) == effect


@pytest.mark.parametrize(("weight", "value", "effect"), [
    (1, 5, (-5, False)),  # reverse: value x weight is subtracted
    (10, -3, (30, False)),
    (100, -3, (253, False)),  # still at most 253
    (1, 254, (0, True)),  # -254 after turning over: fault
    (0, 0, (0, True)),  # weight 0 reverse: fault while the value is 0...
    (0, 7, (0, False)),  # ...fine while it is anything else
    (5, None, (0, False)),
])
def test_file_effect_reversed(weight: int, value: int | None, effect: tuple[int, bool]) -> None:
    assert file_effect(weight, value, reverse=True) == effect


def test_a_reversed_reference_moves_the_priority_the_other_way_through_the_state_machine() -> None:
    cfg = instance_cfg(scripts=(TrackScript("chk", 20, reverse=True),), files=(TrackFile("prio", 0, reverse=True),))
    states = TrackerStates(scripts={"chk": True}, files={"prio": 3})
    machine = fsm()
    machine.start(0.0)
    tracking.apply(machine, states.tracked(cfg), 0.0)
    assert (machine.effective_priority, machine.state) == (80, State.BACKUP)
    states.files["prio"] = 0
    tracking.apply(machine, states.tracked(cfg), 1.0)
    assert machine.state is State.FAULT


def test_fsm_input_counts_a_shift_as_a_weight_and_a_fault_as_weight_zero() -> None:
    assert fsm_input("script:a", 20, False) == ("script:a", 20, False)  # counted
    assert fsm_input("script:a", -20, False) == ("script:a", -20, False)
    assert fsm_input("script:a", 0, False) == ("script:a", 0, True)  # nothing
    assert fsm_input("script:a", 0, True) == ("script:a", 0, False)  # weight 0, failing: fault


def feed(i: Instance, states: TrackerStates, cfg: VrrpInstanceConfig) -> None:
    tracking.apply(i, states.tracked(cfg), 0.0)


def test_positive_and_negative_script_weights_through_the_state_machine() -> None:
    cfg = instance_cfg((TrackScript("up", 30), TrackScript("down", -40)))
    states, i = TrackerStates(), fsm()
    i.start(0.0)
    feed(i, states, cfg)
    assert i.effective_priority == 100  # neither known yet
    states.set("script", "up", True)
    states.set("script", "down", True)
    feed(i, states, cfg)
    assert i.effective_priority == 130
    states.set("script", "down", False)
    feed(i, states, cfg)
    assert i.effective_priority == 90
    states.set("script", "up", False)
    feed(i, states, cfg)
    assert i.effective_priority == 60 and i.state is State.BACKUP


def test_weight_zero_script_faults_and_recovers() -> None:
    cfg = instance_cfg((TrackScript("chk", 0),))
    states, i = TrackerStates(), fsm()
    i.start(0.0)
    states.set("script", "chk", False)
    feed(i, states, cfg)
    assert i.state is State.FAULT
    states.set("script", "chk", True)
    feed(i, states, cfg)
    assert i.state is State.BACKUP and i.effective_priority == 100


def test_file_value_times_weight_and_the_clamp_to_1_254() -> None:
    cfg = instance_cfg(files=(TrackFile("prio", 10),))
    states, i = TrackerStates(), fsm()
    i.start(0.0)
    for value, expected in ((5, 150), (-3, 70), (20, 254), (-9, 10), (-25, 1), (0, 100)):
        states.set("file", "prio", value)
        feed(i, states, cfg)
        assert i.effective_priority == expected, value
    states.set("file", "prio", -26)  # -260: fault
    feed(i, states, cfg)
    assert i.state is State.FAULT


def test_an_owner_is_never_shifted_but_does_fault() -> None:
    cfg = instance_cfg((TrackScript("up", 30), TrackScript("chk", 0)), priority=255)
    states, i = TrackerStates(), fsm(255)
    i.start(0.0)
    states.set("script", "up", True)
    feed(i, states, cfg)
    assert i.effective_priority == 255
    states.set("script", "chk", False)
    feed(i, states, cfg)
    assert i.state is State.FAULT


def test_only_the_named_object_is_fed() -> None:
    cfg = instance_cfg((TrackScript("a", 5), TrackScript("b", 0)), (TrackFile("f", 1),))
    states = TrackerStates(scripts={"a": True, "b": False}, files={"f": 3})
    assert states.tracked(cfg, only=("script", "b")) == [("script:b", 0, False)]
    assert states.tracked(cfg, only=("file", "f")) == [("file:f", 3, False)]
    assert states.tracked(cfg) == [("script:a", 5, False), ("script:b", 0, False), ("file:f", 3, False)]


def test_an_instance_waits_for_files_and_weight_zero_scripts_only() -> None:
    cfg = instance_cfg((TrackScript("shift", -10), TrackScript("gate", 0)), (TrackFile("f", 1),))
    states = TrackerStates()
    assert states.waiting_for(cfg) == ["file:f", "script:gate"]
    states.set("file", "f", 0)
    states.set("script", "gate", False)
    assert states.waiting_for(cfg) == []  # "shift" is still unknown: it only moves the priority


def test_the_tracked_keys_survive_a_reload() -> None:
    cfg = instance_cfg((TrackScript("a", 5),), (TrackFile("f", 1),))
    assert {"script:a", "file:f"} <= tracking.keys(cfg)
