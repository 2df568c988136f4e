"""The generated pages, built once per session by the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([sys.executable, "-m", "director.reference", "build", str(out)], cwd=REPO, check=True,
                   capture_output=True, timeout=60)
    return out


def render(page: Path) -> str:
    """The page as a reader sees it (plain text, minus signs as hyphens); AssertionError on any
    groff warning."""
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-P-cbou", str(page)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.replace("\u2212", "-").replace("\u2010", "-")
