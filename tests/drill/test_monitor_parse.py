"""`ip -tshort monitor` lines: the kernel event's own time, moved onto the monotonic clock."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from director.drill.runner import _stamp


def test_timestamped_line() -> None:
    wall = datetime.now() - timedelta(seconds=0.5)
    stamp, rest = _stamp(f"[{wall.strftime('%Y-%m-%dT%H:%M:%S.%f')}] Deleted 3: front0    inet 198.51.100.10/24")
    assert rest.startswith("Deleted 3: front0")
    assert stamp == pytest.approx(time.monotonic() - 0.5, abs=0.05)


def test_line_without_time_uses_now() -> None:
    stamp, rest = _stamp("3: front0 inet 198.51.100.10/24")
    assert rest == "3: front0 inet 198.51.100.10/24"
    assert stamp == pytest.approx(time.monotonic(), abs=0.05)
