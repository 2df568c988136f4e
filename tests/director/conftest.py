"""Lab fixtures for kernel tests: real namespaces, real HTTP servers, a real IPVS director."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.director.kernel_util import NatLab, build_nat_lab


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[NatLab]:
    yield from build_nat_lab(tmp_path, 2)


@pytest.fixture
def nat_lab3(tmp_path: Path) -> Iterator[NatLab]:
    yield from build_nat_lab(tmp_path, 3)
