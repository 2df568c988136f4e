"""Regexes from config that a hostile reply can make run for seconds.

Python's `re` backtracks and cannot be interrupted: `(a+)+$` against a body of
thirty "a"s and a "b" blocks the event loop, and every check with it. A check's
pattern is refused at load time when a variable repeat sits inside an unbounded
one (the body can be split between them in exponentially many ways), unless the
inner part is possessive (`a++`) or atomic (`(?>...)`), which gives nothing back.
"""

from __future__ import annotations

import re
import re._constants as sre  # the parse tree of the stdlib's own compiler
import re._parser as sre_parse
from typing import Any

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


def backtracking_risk(pattern: str) -> str | None:
    """Why `pattern` can take exponential time, or None."""
    try:
        tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):  # the caller reports invalid patterns
        return None
    return _walk(list(tree), inside_unbounded=False)


def _walk(items: list[tuple[Any, Any]], inside_unbounded: bool) -> str | None:
    for op, av in items:
        found = _visit(op, av, inside_unbounded)
        if found:
            return found
    return None


def _visit(op: Any, av: Any, inside_unbounded: bool) -> str | None:
    if op in _REPEATS:
        low, high, sub = av
        if inside_unbounded and high > 1 and low != high:
            return "a repeat inside a repeat can try exponentially many splits of a reply"
        return _walk(list(sub), inside_unbounded or high == sre.MAXREPEAT)
    if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):  # never backtracked into
        return _walk(list(av[2] if op is sre.POSSESSIVE_REPEAT else av), inside_unbounded=False)
    return _walk_children(op, av, inside_unbounded)


def _walk_children(op: Any, av: Any, inside_unbounded: bool) -> str | None:
    if op is sre.SUBPATTERN:
        return _walk(list(av[3]), inside_unbounded)
    if op is sre.BRANCH:
        branches = av[1]
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        branches = [av[1]]
    elif op is sre.GROUPREF_EXISTS:
        branches = [b for b in av[1:] if b is not None]
    else:
        return None
    for branch in branches:
        found = _walk(list(branch), inside_unbounded)
        if found:
            return found
    return None
