"""Mutations the fuzz tests share: bytes (flip, insert, delete, truncate, splice, repeat,
interesting integers), text (token duplication, brace and quote removal, huge numbers,
deep nesting, line edits) and parsed documents (JSON or TOML trees: a value replaced,
dropped, repeated or nested).

One engine serves hypothesis and plain seeded loops alike: every choice goes through a
`Choose(lo, hi)` callback. Under hypothesis each choice is a drawn integer, so a failure
shrinks to a few small edits of a seed; in a loop it is `random.Random(seed).randint`.
"""

from __future__ import annotations

import copy
import itertools
import random
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Choose = Callable[[int, int], int]  # an integer in lo..hi, both included
T = TypeVar("T")

# Values at the edges of 8-, 16-, 32- and 64-bit fields: where length and count checks break.
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 20, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1)
WIDTHS = (1, 2, 4, 8)
# How often `repeat` copies a slice: enough to cross every line, head and packet bound.
REPEATS = (2, 8, 64, 600, 2000)
DEPTHS = (2, 16, 200, 1100, 5000)
# What a number in a config becomes: not finite, too large for any field, or not a number.
HUGE = ("1e400", "-1e400", "nan", "inf", "-1", "0", "99999999999999999999", "4294967296", "65536", "1" * 5000,
        "0x", "1.5", "-0", "1e-400")
JUNK = ("", "{", "}", '"', "[", "]", "=", "#", "!", ",", "\\", "\t", "\x00", "é", "\ufffd", "\ud800", "->",
        "a b c", "include", "true", "[[x]]")
PUNCTUATION = re.compile(r'[{}"\[\]=]')
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
TOKEN = re.compile(r"\S+")


def budget(examples: int) -> settings:
    """A fixed budget that is the same on every run and machine: derandomized, no example database."""
    return settings(derandomize=True, max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


def seeded(seed: int) -> Choose:
    """Choices for a plain loop, the same for every run with the same seed."""
    return random.Random(seed).randint


def drawn(draw: st.DrawFn) -> Choose:
    """Choices drawn by hypothesis (a choice with one possible value draws nothing)."""
    return lambda lo, hi: draw(st.integers(lo, hi)) if lo < hi else lo


def pick(choose: Choose, items: Sequence[T]) -> T:
    return items[choose(0, len(items) - 1)]


# --- bytes -----------------------------------------------------------------------------


def flip(data: bytes, pos: int, bit: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1:]


def insert(data: bytes, pos: int, chunk: bytes) -> bytes:
    return data[:pos] + chunk + data[pos:]


def delete(data: bytes, pos: int, length: int) -> bytes:
    return data[:pos] + data[pos + length:]


def truncate(data: bytes, length: int) -> bytes:
    return data[:length]


def splice(data: bytes, pos: int, other: bytes, start: int) -> bytes:
    """The head of `data` joined to the tail of another input: fields from two messages."""
    return data[:pos] + other[start:]


def repeat(data: bytes, pos: int, length: int, times: int) -> bytes:
    return data[:pos] + data[pos:pos + length] * times + data[pos + length:]


def put_int(data: bytes, pos: int, value: int, width: int, order: str) -> bytes:
    """Overwrite `width` bytes at `pos` with `value` (two's complement when negative)."""
    raw = (value % (1 << (8 * width))).to_bytes(width, order)  # type: ignore[arg-type]
    return data[:pos] + raw + data[pos + width:]


def _interesting(data: bytes, choose: Choose) -> bytes:
    width = pick(choose, WIDTHS)
    value = pick(choose, INTERESTING) * (-1 if choose(0, 3) == 0 else 1)
    return put_int(data, choose(0, len(data) - 1), value, width, "big" if choose(0, 1) else "little")


def edit_bytes(data: bytes, choose: Choose, donors: Sequence[bytes] = ()) -> bytes:
    """One edit; an edit that needs bytes the input lacks inserts instead."""
    op = choose(0, 6)
    size = len(data)
    if op == 0 and size:
        return flip(data, choose(0, size - 1), choose(0, 7))
    if op == 2 and size:
        pos = choose(0, size - 1)
        return delete(data, pos, choose(1, min(16, size - pos)))
    if op == 3:
        return truncate(data, choose(0, size))
    if op == 4 and donors:
        other = pick(choose, donors)
        return splice(data, choose(0, size), other, choose(0, len(other)))
    if op == 5 and size:
        return _interesting(data, choose)
    if op == 6 and size:
        pos = choose(0, size - 1)
        return repeat(data, pos, choose(1, min(16, size - pos)), pick(choose, REPEATS))
    chunk = bytes(choose(0, 255) for _ in range(choose(1, 8)))
    return insert(data, choose(0, size), chunk)


def mutate_bytes(data: bytes, choose: Choose, donors: Sequence[bytes] = (), max_edits: int = 4) -> bytes:
    for _ in range(choose(1, max_edits)):
        data = edit_bytes(data, choose, donors)
    return data


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_edits: int = 4) -> bytes:
    """A seed with a few byte edits (splices take from the other seeds)."""
    choose = drawn(draw)
    return mutate_bytes(pick(choose, seeds), choose, seeds, max_edits)


def fuzzed(seeds: Sequence[bytes], max_size: int = 512) -> st.SearchStrategy[bytes]:
    """Mutated seeds (what shrinking favours) or random bytes."""
    return st.one_of(mutated(seeds), st.binary(max_size=max_size))


def chunked(data: bytes, choose: Choose, most: int = 6) -> list[bytes]:
    """`data` cut at a few random places, as reads from a socket would return it."""
    cuts = sorted({choose(1, len(data) - 1) for _ in range(choose(0, most))}) if len(data) > 1 else []
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --- text ------------------------------------------------------------------------------


def _replace_match(text: str, pattern: re.Pattern[str], choose: Choose, new: Callable[[str], str]) -> str:
    found = list(pattern.finditer(text))
    if not found:
        return text
    m = pick(choose, found)
    return text[:m.start()] + new(m.group()) + text[m.end():]


def nest(kind: int, depth: int) -> str:
    """Brace or bracket nesting `depth` deep: keepalived blocks, TOML arrays or inline tables."""
    if kind == 0:
        return "x {\n" * depth + "}\n" * depth
    if kind == 1:
        return "{" * depth + "}" * depth + "\n"
    if kind == 2:
        return "x = " + "[" * depth + "]" * depth + "\n"
    return "x = " + "{ a = " * depth + "1" + " }" * depth + "\n"


def _line_edit(text: str, choose: Choose, op: int) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    at = choose(0, len(lines) - 1)
    if op == 0:
        del lines[at]
    elif op == 1:
        lines.insert(choose(0, len(lines)), lines[at])
    else:
        lines.insert(at, nest(choose(0, 3), pick(choose, DEPTHS)))
    return "".join(lines)


def edit_text(text: str, choose: Choose) -> str:
    """One edit of a config's text."""
    op = choose(0, 7)
    if op == 0:  # duplicate a token next to itself
        return _replace_match(text, TOKEN, choose, lambda t: f"{t} {t}")
    if op == 1:  # drop a brace, bracket, quote or equals sign
        return _replace_match(text, PUNCTUATION, choose, lambda _: "")
    if op == 2:
        return _replace_match(text, NUMBER, choose, lambda _: pick(choose, HUGE))
    if op == 3:
        return _replace_match(text, TOKEN, choose, lambda _: pick(choose, JUNK))
    if op in (4, 5, 6):
        return _line_edit(text, choose, op - 4)
    return text[:choose(0, len(text))]


def mutate_text(text: str, choose: Choose, max_edits: int = 4) -> str:
    for _ in range(choose(1, max_edits)):
        text = edit_text(text, choose)
    return text


def mutate_file(text: str, choose: Choose, max_edits: int = 4) -> bytes:
    """A config file's bytes after text edits and, one time in four, byte edits (not UTF-8, NULs)."""
    data = mutate_text(text, choose, max_edits).encode("utf-8", "surrogatepass")
    return mutate_bytes(data, choose, (), 2) if choose(0, 3) == 0 else data


@st.composite
def mutated_file(draw: st.DrawFn, seeds: Sequence[str], max_edits: int = 4) -> bytes:
    choose = drawn(draw)
    return mutate_file(pick(choose, seeds), choose, max_edits)


# --- trees ----------------------------------------------------------------------------


def locations(doc: Any, here: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside `doc` (not `doc` itself)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield (*here, key)
        yield from locations(value, (*here, key))


def mutate_tree(doc: Any, choose: Choose, odd: Sequence[Any]) -> Any:
    """One edit at a random place: another value, gone, repeated, wrapped in a list, nested deep."""
    doc = copy.deepcopy(doc)
    places = list(locations(doc))
    if not places:
        return pick(choose, odd)
    *parent_path, key = pick(choose, places)
    parent = doc
    for step in parent_path:
        parent = parent[step]
    op = choose(0, 4)
    if op == 0:
        parent[key] = pick(choose, odd)
    elif op == 1:
        del parent[key]
    elif op == 2 and isinstance(parent, list):
        parent.insert(choose(0, len(parent)), copy.deepcopy(parent[key]))
    elif op == 3:
        parent[key] = [parent[key]]
    else:  # nested, though not so deep that the test's own json.dumps runs out of stack
        value: Any = parent[key]
        for _ in range(choose(1, 200)):
            value = [value]
        parent[key] = value
    return doc
