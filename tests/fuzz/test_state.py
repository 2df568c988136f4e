"""The state file (director.daemon.state_store): a State or a StateFormatError from the
decoder, and from the store a State (the file moved aside when corrupt) or a StateError.

Valid documents are mutated as JSON trees (a value of the wrong type, a huge or non-finite
number, deep nesting, a key dropped, an entry repeated) and as bytes (not UTF-8, cut).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director.daemon.state_store import (
    STATE_FILE,
    AdminDrain,
    State,
    StateError,
    StateFormatError,
    StateStore,
    decode,
    encode,
)
from director.daemon.steady_clock import ClockAnchor
from director.ipvs.model import DestKey, ServiceKey
from director.reconcile.plan import Book
from tests.fuzz.mutate import Choose, budget, drawn, mutate_bytes, mutate_tree, pick

WEB = ServiceKey(4, "tcp", "192.0.2.10", 80)
DNS = ServiceKey(6, "udp", "2001:db8::53", 53)
MARK = ServiceKey(4, "", "", 0, 7)
STATES = [
    State(),
    State(Book({WEB: 300.0, DNS: 0.0, MARK: 12.5},
               {(WEB, DestKey(4, "10.0.0.11", 80)): 1.7e9, (DNS, None): 1.7e9 + 0.25}),
          [AdminDrain("10.0.0.11"), AdminDrain("10.0.0.12", 8080, "web"), AdminDrain("2001:db8::11", None, "dns")],
          ClockAnchor("0d1e8a6c-2f2b-4c43-9d3a-6f0e5c3a4b21", 1.7e9 - 1234.5)),
    State(Book({WEB: 1}), [], None),
]
DOCUMENTS = [encode(state) for state in STATES]
# Values put where the decoder expects others: every JSON type, and numbers JSON allows but
# no field holds.
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10**400, -(10**400), 2**63, 2**64, -1, 0]),
    st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308]),
    st.text(max_size=6), st.sampled_from(["\ud800", "", "tcp", "10.0.0.11"]),
    st.lists(st.integers(), max_size=6), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    choose = drawn(draw)
    odd = [draw(ODD) for _ in range(2)]
    doc = pick(choose, DOCUMENTS)
    for _ in range(choose(1, 4)):
        doc = mutate_tree(doc, choose, odd)
    return doc


@budget(2000)
@given(documents())
def test_mutated_documents_decode_or_raise_state_format_error(doc: Any) -> None:
    try:
        state = decode(doc)
    except StateFormatError:
        return
    # what decodes is saved again as it was read
    assert decode(json.loads(json.dumps(encode(state), allow_nan=False))) == state


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> StateStore:
    return StateStore(str(tmp_path_factory.mktemp("state")))


DEEP = "nested deep here"


def file_bytes(choose: Choose) -> bytes:
    """A state file: a mutated document written as JSON, then now and then byte edits or nesting."""
    doc = pick(choose, DOCUMENTS)
    for _ in range(choose(0, 3)):
        doc = mutate_tree(doc, choose, [10**400, float("nan"), "x", None, True])
    if choose(0, 3) == 0:  # a value nested past the JSON parser's recursion limit, or near it
        doc = mutate_tree(doc, choose, [DEEP])
    depth = pick(choose, (10, 900, 990, 1100, 100000))
    text = json.dumps(doc, indent=1).replace(json.dumps(DEEP), "[" * depth + "1" + "]" * depth)
    data = text.encode("utf-8", "surrogatepass")
    return mutate_bytes(data, choose, [json.dumps(d).encode() for d in DOCUMENTS], 3) if choose(0, 1) else data


@budget(1100)
@given(st.one_of(st.composite(lambda draw: file_bytes(drawn(draw)))(), st.binary(max_size=200)))
def test_a_state_file_loads_or_is_moved_aside(store: StateStore, data: bytes) -> None:
    """Whatever the file holds, the daemon starts: its state, or an empty one and the file set aside."""
    for old in store.dir.iterdir():
        old.unlink()
    store.path.write_bytes(data)
    try:
        state = store.load()
    except StateError:
        raise AssertionError("a readable state_dir never fails to load") from None
    aside = [p.name for p in store.dir.iterdir() if p.name != STATE_FILE]
    if store.path.exists():
        assert not aside and state == decode(json.loads(data))
    else:
        assert len(aside) == 1 and state == State()


def test_seeds_round_trip() -> None:
    assert [decode(json.loads(json.dumps(doc))) for doc in DOCUMENTS] == STATES
