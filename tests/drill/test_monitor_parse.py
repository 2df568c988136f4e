"""`ip -tshort monitor` lines (ip runs with TZ=UTC): ip's own receive time, taken as it is on the
drill's one clock (CLOCK_REALTIME), with no conversion through a second clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from director.drill.runner import _stamp


def test_timestamped_line_is_taken_as_is() -> None:
    stamp, rest = _stamp("[2026-11-22T06:20:14.276448] Deleted 3: front0    inet 198.51.100.10/24")
    assert rest.startswith("Deleted 3: front0")
    assert stamp == datetime(2026, 11, 22, 6, 20, 14, 276448, tzinfo=UTC).timestamp()


def test_stamp_does_not_depend_on_when_it_is_read() -> None:
    line = "[2026-11-22T06:20:14.276448] 3: front0 inet 198.51.100.10/24"
    first, _ = _stamp(line)
    time.sleep(0.05)
    assert _stamp(line)[0] == first


def test_line_without_time_uses_now() -> None:
    stamp, rest = _stamp("3: front0 inet 198.51.100.10/24")
    assert rest == "3: front0 inet 198.51.100.10/24"
    assert stamp == pytest.approx(time.time(), abs=0.05)
