"""The steady clock keeps its offset for the whole boot (saved in the state file), so a
wall-clock step between or during runs moves no drain; a new boot anchors afresh."""

from __future__ import annotations

import json
import time
from pathlib import Path

from director.daemon import steady_clock
from director.daemon.state_store import State, StateStore, decode, encode
from director.daemon.steady_clock import ClockAnchor, SteadyClock, boot_id, current_anchor


def test_a_saved_anchor_of_this_boot_is_kept_whatever_the_wall_clock_says(monkeypatch) -> None:
    saved = ClockAnchor(boot_id(), 1000.0)
    monkeypatch.setattr(time, "time", lambda: 9e9)  # the clock stepped far ahead since
    assert current_anchor(saved) == saved
    assert 1000.0 < SteadyClock(saved).now() <= 1000.0 + time.clock_gettime(time.CLOCK_BOOTTIME)


def test_another_boot_or_no_boot_id_anchors_on_the_wall_clock_now(monkeypatch) -> None:
    fresh = current_anchor(ClockAnchor("another-boot", 1000.0))
    assert fresh.boot_id == boot_id() and abs(SteadyClock(fresh).now() - time.time()) < 1
    monkeypatch.setattr(steady_clock, "BOOT_ID_FILE", "/nonexistent")
    unknown = current_anchor(ClockAnchor("", 1000.0))
    assert unknown.boot_id == "" and abs(SteadyClock(unknown).now() - time.time()) < 1


def test_the_anchor_survives_the_state_file(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "state"))
    anchor = ClockAnchor("b0", 12.5)
    store.save(State(clock=anchor))
    assert store.load().clock == anchor
    assert decode(encode(State())).clock is None  # files written before the clock existed


def test_a_drain_since_that_is_not_finite_is_a_corrupt_file(tmp_path: Path) -> None:
    """NaN never compares >= a timeout: the drain would never end."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "state.json").write_text(json.dumps({"version": 1, "draining": [
        {"service": [4, "tcp", "192.0.2.10", 80, 0], "dest": [4, "10.0.0.1", 80], "since": float("nan")}]}))
    assert StateStore(str(state)).load().book.draining == {}
    assert list(state.glob("state.json.corrupt-*"))
