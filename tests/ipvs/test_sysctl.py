"""The net.ipv4.vs sysctl adapter against a fake /proc/sys folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from director.ipvs.sysctl import NAMES, IpvsSysctl, VsSysctls


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in NAMES:
        (tmp_path / name).write_text("0\n")
    return tmp_path


def test_read_and_write(root: Path) -> None:
    sysctl = IpvsSysctl(root)
    assert sysctl.read() == VsSysctls()
    sysctl.write(VsSysctls(expire_nodest_conn=1, expire_quiescent_template=1, conntrack=1))
    assert sysctl.read() == VsSysctls(1, 1, 1)
    assert (root / "conntrack").read_text() == "1\n"


def test_unchanged_values_are_not_written(root: Path) -> None:
    sysctl = IpvsSysctl(root)
    (root / "conntrack").chmod(0o444)  # a write would fail for non-root; mtime shows it for root
    before = (root / "conntrack").stat().st_mtime_ns
    sysctl.set("conntrack", 0)
    assert (root / "conntrack").stat().st_mtime_ns == before


def test_unmanaged_name_is_refused(root: Path) -> None:
    with pytest.raises(KeyError):
        IpvsSysctl(root).get("amemthresh")
