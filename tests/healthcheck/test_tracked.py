"""A vrrp_script's state (keepalived's init, rise and fall) and a track file's value."""

from __future__ import annotations

import pytest

from healthcheck.tracked import ProcessMatch, ProcessState, ScriptState, file_value


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


# --- processes ---------------------------------------------------------------------------------------

HAPROXY = b"/usr/sbin/haproxy\0-f\0/etc/haproxy/haproxy.cfg\0-p\0/run/haproxy.pid\0"


@pytest.mark.parametrize(("match", "comm", "cmdline", "expected"), [
    (ProcessMatch("haproxy"), "haproxy", None, True),
    (ProcessMatch("haproxy"), "haproxy-wrap", None, False),  # exact, as pgrep -x: no substring
    (ProcessMatch("hap"), "haproxy", None, False),
    (ProcessMatch("/usr/sbin/haproxy", full_command=True), "haproxy", HAPROXY, True),
    (ProcessMatch("haproxy", full_command=True), "haproxy", HAPROXY, False),  # argv[0] is the path
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/haproxy/haproxy.cfg")), "haproxy", HAPROXY, False),  # exact
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid")), "x",
     HAPROXY, True),
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/haproxy/haproxy.cfg"), "partial"), "x", HAPROXY, True),
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/haproxy/"), "partial"), "x", HAPROXY, False),
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/haproxy/"), "initial"), "x", HAPROXY, True),
    (ProcessMatch("/usr/sbin/haproxy", ("-f", "/etc/"), "initial"), "x", HAPROXY, True),
    (ProcessMatch("/usr/sbin/haproxy", ("-x",), "initial"), "x", HAPROXY, False),
    (ProcessMatch("/usr/sbin/haproxy", ()), "x", HAPROXY, False),  # [] exact: no arguments at all
    (ProcessMatch("/usr/sbin/haproxy", ()), "x", b"/usr/sbin/haproxy\0", True),
    (ProcessMatch("/usr/sbin/haproxy", (), "partial"), "x", HAPROXY, True),
    (ProcessMatch("/usr/sbin/haproxy", full_command=True), "x", None, False),  # cmdline not readable
])
def test_process_match(match: ProcessMatch, comm: str, cmdline: bytes | None, expected: bool) -> None:
    assert match.matches(comm, cmdline) is expected


def test_process_quorum_and_its_bounds() -> None:
    state = ProcessState(quorum=2, quorum_max=3)
    assert (state.ok, state.state) == (None, "unknown")
    assert state.feed(1, 0.0) is False  # the first count decides at once
    assert state.feed(2, 1.0) is True and state.feed(3, 2.0) is None
    assert state.feed(4, 3.0) is False  # above quorum_max
    assert state.feed(0, 4.0) is None and state.state == "failed"


def test_process_delays_hold_a_change_and_forget_it_if_the_count_goes_back() -> None:
    state = ProcessState(quorum=1, fork_delay=2.0, terminate_delay=1.0)
    assert state.feed(1, 0.0) is True
    assert state.feed(0, 10.0) is None and state.state == "losing"
    assert state.feed(1, 10.5) is None and state.state == "ok"  # back before terminate_delay: no change
    assert state.feed(0, 11.0) is None
    assert state.feed(0, 12.0) is False  # lost for 1 s
    assert state.feed(1, 13.0) is None and state.state == "gaining"
    assert state.feed(1, 14.9) is None
    assert state.feed(1, 15.0) is True
