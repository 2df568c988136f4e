from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.labkit import VrrpLab, require_root


@pytest.fixture
def lab2(tmp_path: Path) -> Iterator[VrrpLab]:
    require_root()
    lab = VrrpLab(2, tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[VrrpLab]:
    require_root()
    lab = VrrpLab(3, tmp_path)
    try:
        yield lab
    finally:
        lab.close()
