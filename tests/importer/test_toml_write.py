"""The TOML writer round-trips through tomllib for the shapes the importer emits."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from director.config.toml_write import dumps
from director.importer import seconds

scalars = st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.booleans())
keys = st.text(min_size=1, max_size=8)


@given(st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3),
                                       st.dictionaries(keys, scalars, max_size=3)), max_size=5))
def test_round_trip_inline(table) -> None:
    data = {"t": table}
    assert tomllib.loads(dumps(data, inline_keys=frozenset(table))) == data


@given(st.lists(st.dictionaries(keys, scalars, max_size=3), min_size=1, max_size=3), st.text())
def test_round_trip_nested_arrays_of_tables(servers, name) -> None:
    data = {"virtual_server": [{"name": name, "check": {"type": "tcp"}, "real_server": servers}]}
    assert tomllib.loads(dumps(data, header=["a", "b"])) == data


def test_header_is_comments_and_none_is_skipped() -> None:
    text = dumps({"global": {"router_id": "lb", "skip": None}}, header=["from x", "", "line"])
    assert text.startswith("# from x\n#\n# line\n")
    assert tomllib.loads(text) == {"global": {"router_id": "lb"}}


@given(st.lists(st.text(), max_size=4))
def test_any_header_is_comments(header: list[str]) -> None:
    """Found by tests/fuzz/test_importers.py: a control character in a header line (the
    importers quote unmapped source directives there) made the whole output invalid TOML."""
    text = dumps({"a": 1}, header=header)
    assert tomllib.loads(text) == {"a": 1}
    assert text.count("\n") == len(header) + 1


def test_header_control_characters_are_escaped() -> None:
    assert dumps({}, header=["x\x00y\x1a\tz\x7f", "a\nb"]) == "# x\\x00y\\x1a\tz\\x7f\n# a\\x0ab\n"


def test_seconds() -> None:
    assert [seconds(v) for v in (6, 0.5, 1.5, 0.01, 0)] == ["6s", "500ms", "1500ms", "10ms", "0s"]
