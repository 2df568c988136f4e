"""Shared test setup.

A test file says what it needs by its name: `*_netns.py` needs root and network
namespaces on the host, `*_kernel.py` a kernel with IPVS (the VM rig). The name sets
the `netns` / `kernel` marker, and a marker set by hand anywhere else is an error, so
`-m kernel` and the file names never disagree. A suite whose environment is missing
fails, saying what is missing; it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.labkit import NatLab, build_nat_lab

SUFFIX_MARKERS = {"_netns.py": "netns", "_kernel.py": "kernel"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        wanted = next((m for suffix, m in SUFFIX_MARKERS.items() if item.path.name.endswith(suffix)), None)
        for marker in SUFFIX_MARKERS.values():
            if marker != wanted and item.get_closest_marker(marker):
                misplaced.append(f"{item.nodeid}: marked {marker} but its file is not *_{marker}.py")
        if wanted:
            item.add_marker(wanted)
    if misplaced:
        raise pytest.UsageError("\n".join(misplaced))


def pytest_runtest_setup(item: pytest.Item) -> None:
    needs_root = item.get_closest_marker("netns") or item.get_closest_marker("kernel")
    if needs_root and os.geteuid() != 0:
        pytest.fail("this test needs root (network namespaces, raw sockets or IPVS)", pytrace=False)
    if item.get_closest_marker("kernel") and not Path("/proc/net/ip_vs").exists():
        pytest.fail("this test needs a kernel with IPVS: run it with scripts/vm-run -- .venv/bin/pytest -m kernel",
                    pytrace=False)


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[NatLab]:
    """Two real HTTP servers behind an IPVS NAT director (kernel suite)."""
    yield from build_nat_lab(tmp_path, 2)


@pytest.fixture
def nat_lab3(tmp_path: Path) -> Iterator[NatLab]:
    yield from build_nat_lab(tmp_path, 3)
