import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcheck.result import ProbeResult, Target, format_ranges, status_in
from healthcheck.riseful import RiseFall


def test_down_needs_rise_consecutive_successes():
    rf = RiseFall(rise=2, fall=3, up=False)
    assert rf.feed(True) is None
    assert rf.state == "rising"
    assert rf.feed(False) is None  # run broken
    assert rf.state == "down"
    assert rf.feed(True) is None
    assert rf.feed(True) is True
    assert rf.up and rf.state == "up"


def test_up_needs_fall_consecutive_failures():
    rf = RiseFall(rise=2, fall=3, up=True)
    assert rf.feed(False) is None
    assert rf.feed(False) is None
    assert rf.state == "falling" and rf.transitioning
    assert rf.feed(False) is False
    assert not rf.up and not rf.transitioning


def test_agreeing_samples_never_transition():
    rf = RiseFall(rise=1, fall=1, up=True)
    assert [rf.feed(True) for _ in range(5)] == [None] * 5
    assert rf.feed(False) is False
    assert rf.feed(True) is True


def test_rejects_zero_counts():
    with pytest.raises(ValueError):
        RiseFall(rise=0, fall=1)


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_transition_only_after_enough_consecutive_samples(samples, rise, fall, initial):
    rf = RiseFall(rise=rise, fall=fall, up=initial)
    state = initial
    for i, ok in enumerate(samples):
        change = rf.feed(ok)
        if change is not None:
            need = rise if change else fall
            assert change != state
            assert samples[i - need + 1 : i + 1] == [change] * need
            assert i - need + 1 >= 0
            state = change
        assert rf.up == state


def test_result_helpers():
    assert format_ranges(((200, 200), (300, 399))) == "[200, 300-399]"
    assert status_in(302, ((200, 200), (300, 399)))
    assert not status_in(503, ((200, 200),))
    assert Target("::1", 80).endpoint == "[::1]:80"
    assert Target("127.0.0.1", 80).family == 4
    assert ProbeResult(True, 0.1, "ok").weight is None
