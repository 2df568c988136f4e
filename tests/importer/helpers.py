"""Shared helpers: convert a sample, validate it as check-config would, and find notes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from director.config.load import parse_config
from director.config.model import Config
from director.config.resolve import real_server_names, stand_ins
from director.importer import Conversion
from director.importer.cli import render, sort_unmapped

SAMPLES = Path(__file__).parent / "samples"


def imported(conv: Conversion, source: str) -> tuple[Config, dict[str, Any]]:
    """The rendered TOML parsed back and validated: what `directord import` would write."""
    sort_unmapped(conv)
    data = tomllib.loads(render(conv, source, "sample"))
    return parse_config(data, "imported.toml", hosts=stand_ins(real_server_names(data))), data


def notes(conv: Conversion) -> dict[tuple[str, int], str]:
    """Unmapped directives keyed by (file name, line) -> 'directive: reason'."""
    return {(Path(u.file).name, u.line): f"{u.directive}: {u.reason}" for u in conv.unmapped}


def remarks(conv: Conversion) -> dict[tuple[str, int], str]:
    """Directives carried over with a remark, keyed like `notes`."""
    return {(Path(u.file).name, u.line): f"{u.directive}: {u.reason}" for u in conv.remarks}
