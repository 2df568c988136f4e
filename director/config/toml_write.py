"""A small TOML writer for the shapes directord's config uses.

The standard library reads TOML but cannot write it. Supported: strings, ints,
floats, bools, lists of scalars or of inline tables, tables and arrays of
tables (nested ones written as `[parent.child]` / `[[parent.child]]`).
"""

from __future__ import annotations

import math
import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else string(name)


def string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def value(item: Any) -> str:
    """One value in inline form."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"TOML writer: {item} is not supported")
        return repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        if not item:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"TOML writer: cannot write {type(item).__name__}")


def _is_table_array(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(v, dict) for v in item)


def _is_section(item: Any, inline_keys: frozenset[str], name: str) -> bool:
    return name not in inline_keys and (isinstance(item, dict) or _is_table_array(item))


def _emit(table: dict[str, Any], path: list[str], out: list[str], inline_keys: frozenset[str],
          array: bool, indent: str) -> None:
    if path:
        header = ".".join(key(p) for p in path)
        out.append("")
        out.append(f"{indent}[[{header}]]" if array else f"{indent}[{header}]")
    sections = []
    for name, item in table.items():
        if item is None:
            continue
        if _is_section(item, inline_keys, name):
            sections.append((name, item))
        else:
            out.append(f"{indent}{key(name)} = {value(item)}")
    for name, item in sections:
        child_indent = "  " if path else ""
        if isinstance(item, dict):
            _emit(item, [*path, name], out, inline_keys, False, child_indent)
        else:
            for entry in item:
                _emit(entry, [*path, name], out, inline_keys, True, child_indent)


_COMMENT_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _comment(line: str) -> str:
    """LINE as one TOML comment. TOML forbids control characters other than tab there, and an
    importer's header quotes the source (a stray byte of it in an unmapped directive): they
    are written as escapes, or the whole output would not parse."""
    return "# " + _COMMENT_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


def dumps(data: dict[str, Any], header: list[str] | None = None,
          inline_keys: frozenset[str] = frozenset()) -> str:
    """DATA as TOML text; keys in INLINE_KEYS stay inline tables / lists of inline tables.

    `header` lines are written first as comments. None values are skipped.
    """
    out = [_comment(line).rstrip() for line in header or []]
    _emit(data, [], out, inline_keys, False, "")
    return "\n".join(out).lstrip("\n") + "\n"
