"""Directive tables: exact names, prefixes, a base table's names, the fallback, and settings
applied in a fixed order; and no importer leaves scratch keys in what it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from director.importer import Conversion
from director.importer.keepalived import convert as keepalived
from director.importer.ldirectord import convert as ldirectord
from director.importer.piranha import convert as piranha
from director.importer.table import NO_EQUIVALENT, Reader, Table
from tests.importer.helpers import SAMPLES


@dataclass(frozen=True)
class Directive:
    keyword: str
    file: str = "x.conf"
    line: int = 1


@dataclass
class Seen:
    names: list[str] = field(default_factory=list)


def _record(reader: Reader, node: Directive, state: Seen) -> None:
    state.names.append(node.keyword)


def _reader() -> Reader:
    return Reader(Conversion())


def test_exact_names_then_prefixes_then_fallback() -> None:
    table: Table[Reader, Directive, Seen] = Table()
    table.on("a", "b")(_record)
    table.on_prefix("notify_")(_record)
    reader, seen = _reader(), Seen()
    for name in ("a", "b", "notify_master", "c"):
        table.read(reader, Directive(name), seen)
    assert seen.names == ["a", "b", "notify_master"]
    assert [str(u) for u in reader.conv.unmapped] == [f"x.conf:1: c: {NO_EQUIVALENT}"]


def test_a_table_knows_its_base_and_overrides_it() -> None:
    base: Table[Reader, Directive, Seen] = Table()
    base.on("shared", "both")(_record)
    derived: Table[Reader, Directive, Seen] = Table(base)
    derived.says("overridden", "both")
    base.on("late")(_record)  # registered on the base after the derived table was made
    reader, seen = _reader(), Seen()
    for name in ("shared", "both", "late"):
        derived.read(reader, Directive(name), seen)
    assert seen.names == ["shared", "late"]
    assert [u.reason for u in reader.conv.unmapped] == ["overridden"]


def test_a_fallback_replaces_the_default_note() -> None:
    def fail(reader: Reader, node: Directive, state: Seen) -> None:
        reader.bad(node, "unknown")

    table: Table[Reader, Directive, Seen] = Table(fallback=fail)
    reader = _reader()
    table.read(reader, Directive("zzz", line=7), Seen())
    assert reader.errors == ["x.conf:7: zzz: unknown"] and not reader.conv.unmapped


def test_apply_takes_out_known_settings_in_registration_order() -> None:
    table: Table[Reader, Directive, Seen] = Table()
    table.on("second")(_record)
    table.on("first")(_record)
    settings = {"first": Directive("first"), "other": Directive("other"), "second": Directive("second")}
    seen = Seen()
    table.apply(_reader(), settings, seen)
    assert seen.names == ["second", "first"]
    assert list(settings) == ["other"]


def _keys(item: Any) -> list[str]:
    if isinstance(item, dict):
        return [k for key, value in item.items() for k in [key, *_keys(value)]]
    if isinstance(item, list):
        return [k for value in item for k in _keys(value)]
    return []


@pytest.mark.parametrize(("convert", "sample"), [
    (keepalived, "keepalived.conf"), (keepalived, "roundtrip-keepalived.conf"),
    (ldirectord, "ldirectord.cf"), (piranha, "lvs.cf")])
def test_no_scratch_keys_in_the_output(convert: Any, sample: str) -> None:
    config = convert(str(SAMPLES / sample)).config
    assert [key for key in _keys(config) if key.startswith("_")] == []
    assert all(value is not None for value in _values(config))


def _values(item: Any) -> list[Any]:
    if isinstance(item, dict):
        return [v for value in item.values() for v in [value, *_values(value)]]
    if isinstance(item, list):
        return [v for value in item for v in _values(value)]
    return []
