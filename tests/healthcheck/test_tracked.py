"""A vrrp_script's state (keepalived's init, rise and fall) and a track file's value."""

from __future__ import annotations

import pytest

from healthcheck.tracked import ScriptState, file_value


def run(state: ScriptState, results: str) -> list[bool | None]:
    """Feed 'y'/'n' results; the transition each returned."""
    return [state.feed(r == "y") for r in results]


def test_unknown_until_the_first_result_which_decides_at_once() -> None:
    for first in (True, False):
        state = ScriptState(rise=5, fall=5)
        assert (state.ok, state.state) == (None, "unknown")
        assert state.feed(first) is first  # whatever rise and fall say
        assert state.ok is first


def test_then_rise_and_fall_count_results_in_a_row() -> None:
    state = ScriptState(rise=3, fall=2)
    assert run(state, "y") == [True]
    assert run(state, "n") == [None] and state.state == "falling"
    assert run(state, "y") == [None] and state.state == "ok"  # one success resets the count
    assert run(state, "nn") == [None, False] and state.state == "failed"
    assert run(state, "yyny") == [None, None, None, None] and state.state == "rising"
    assert run(state, "yy") == [None, True] and state.ok is True


def test_init_fail_starts_failed_and_needs_rise_successes() -> None:
    state = ScriptState(rise=2, fall=1, init_fail=True)
    assert (state.ok, state.state) == (False, "failed")
    assert run(state, "n") == [None]  # already failed: no transition
    assert run(state, "yy") == [None, True]


def test_rise_and_fall_of_one_follow_every_result() -> None:
    state = ScriptState(rise=1, fall=1)
    assert run(state, "ynny") == [True, False, None, True]


@pytest.mark.parametrize(("raw", "value"), [
    (b"5\n", 5), (b"  -12 extra", -12), (b"+7", 7), (b"0x1f", 31), (b"0X10\n", 16), (b"017", 15),
    (b"08", 0),  # octal stops at 8, as strtol does
    (b"0x", 0),  # "0" then an x that starts no hex number
    (b"", 0), (b"abc", 0), (b"\n\n", 0), (b"- 5", 0), (b"3\x00garbage 9", 3), (b"\x009", 0),
    (b"\t\v\f\r 42", 42), (b"99999999999999999999", 99999999999999999999),
])
def test_file_value_reads_like_strtol_base_0(raw: bytes, value: int) -> None:
    assert file_value(raw) == value
