from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vrrp.lab import Lab, require_root


@pytest.fixture
def lab2(tmp_path: Path) -> Iterator[Lab]:
    require_root()
    lab = Lab(2, tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[Lab]:
    require_root()
    lab = Lab(3, tmp_path)
    try:
        yield lab
    finally:
        lab.close()
