"""Fixtures shared by the drill's CLI tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def state_file() -> Iterator[Path]:
    """A lab state file path in /run, removed afterwards."""
    if not os.access("/run", os.W_OK):
        pytest.fail("needs a writable /run (run as root)")
    path = Path(f"/run/directord-lab-halfbuilt{os.getpid()}.json")
    yield path
    path.unlink(missing_ok=True)
