"""Shared test setup: make scripts/ importable (labkit), and fail (never skip) suites
whose environment is missing, saying what is missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    needs_root = item.get_closest_marker("netns") or item.get_closest_marker("kernel")
    if needs_root and os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, raw sockets or IPVS)", pytrace=False)
    if item.get_closest_marker("kernel") and not Path("/proc/net/ip_vs").exists():
        pytest.fail("this test needs a kernel with IPVS: run it with scripts/vm-run -- .venv/bin/pytest -m kernel",
                    pytrace=False)
