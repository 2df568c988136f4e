"""The line of each key: what a config error points at."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from director.config.locate import SourceMap

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directord.toml"

TEXT = '''\
# comment = [ not a key
[global]
router_id = "lb1"  # trailing [comment]
"quoted.key" = 1

[[virtual_server]]
name = "a"
notes = """
fake = "not a key"
[not_a_header]
"""
  [virtual_server.check]
  type = "tcp"
  [[virtual_server.real_server]]
  address = "10.0.0.1"
  [[virtual_server.real_server]]
  address = "10.0.0.2"

[[virtual_server]]
name = "b"
real_server = [
  { address = "10.0.0.3", weight = 1 },
  { address = "10.0.0.4" }, { address = "10.0.0.5" },
]
check.type = "http"
list = ["a]", "{b", 'c[']
after = 1
'''


def test_headers_keys_and_arrays_of_tables() -> None:
    lines = SourceMap(TEXT).lines
    assert lines[("global",)] == 2
    assert lines[("global", "router_id")] == 3
    assert lines[("global", "quoted.key")] == 4
    assert lines[("virtual_server", 0)] == 6
    assert lines[("virtual_server", 0, "notes")] == 8
    assert ("virtual_server", 0, "fake") not in lines and ("not_a_header",) not in lines
    assert lines[("virtual_server", 0, "check", "type")] == 13
    assert lines[("virtual_server", 0, "real_server", 1, "address")] == 17
    assert lines[("virtual_server", 1, "name")] == 20


def test_inline_tables_in_an_array_are_elements() -> None:
    lines = SourceMap(TEXT).lines
    assert [lines[("virtual_server", 1, "real_server", i)] for i in range(3)] == [22, 23, 23]
    assert lines[("virtual_server", 1, "check", "type")] == 25
    assert lines[("virtual_server", 1, "after")] == 27  # brackets inside strings do not count


def test_an_unplaced_key_falls_back_to_its_parent() -> None:
    source = SourceMap(TEXT)
    assert source.line_of(("virtual_server", 1, "real_server", 0, "port")) == 22
    assert source.line_of(("virtual_server", 0, "missing")) == 6
    assert source.line_of(("nowhere",)) is None


def _leaves(data: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return [leaf for index, item in enumerate(data) for leaf in _leaves(item, (*path, index))]
    return [path]


def test_every_key_of_the_example_is_on_a_line_that_names_it() -> None:
    text = EXAMPLE.read_text()
    source, rows = SourceMap(text), text.splitlines()
    for path in _leaves(tomllib.loads(text)):
        line = source.line_of(path)
        assert line is not None, path
        assert str(path[-1] if isinstance(path[-1], str) else path[-2]) in rows[line - 1], (path, rows[line - 1])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}"\'=.#\n abc1,')), max_size=300))
def test_any_text_maps_without_raising(text: str) -> None:
    """The map is built from text tomllib accepted, but it must not fail on anything else either."""
    source = SourceMap(text)
    rows = len(text.splitlines())
    assert all(1 <= line <= rows for line in source.lines.values())
    assert source.line_of(("a", 0, "b")) in (None, *source.lines.values())
