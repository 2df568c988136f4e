"""Config problems as a user reads them: in file order, with the line, entries named.

Readers record a problem by key path; only here does a path become text, so the
loader, the host checks and the warnings all say `FILE:LINE: virtual_server "web"...`
the same way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from director.config.include import Sources
from director.config.locate import Path, SourceMap

# Arrays of tables whose entries have a `name` that users know them by.
NAMED_TABLES = ("virtual_server", "vrrp_instance", "vrrp_sync_group", "vrrp_script", "track_file", "track_process")
_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclasses.dataclass(frozen=True)
class Problem:
    path: Path
    reason: str
    see: Path | None = None  # another entry the reason refers to


def parse_key(key: str) -> Path:
    """"real_server[0].port" -> ("real_server", 0, "port")."""
    return tuple(int(index) if index else name for name, index in _KEY_PART.findall(key))


def describe(path: Path, data: Mapping[str, Any]) -> str:
    """("virtual_server", 0, "check", "rise") -> 'virtual_server "web".check.rise'."""
    text = ""
    for position, part in enumerate(path):
        if isinstance(part, int):
            name = _entry_name(data, path[:position], part)
            text += f' "{name}"' if name else f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _entry_name(data: Mapping[str, Any], table: Path, index: int) -> str | None:
    if len(table) != 1 or table[0] not in NAMED_TABLES:
        return None
    entries = data.get(str(table[0]))
    entries = [entries] if isinstance(entries, dict) else entries
    if not isinstance(entries, list) or index >= len(entries) or not isinstance(entries[index], dict):
        return None
    name = entries[index].get("name")
    names = [e.get("name") for e in entries if isinstance(e, dict)]
    return name if isinstance(name, str) and name and names.count(name) == 1 else None


Located = SourceMap | Sources  # one file's map, or a config merged from fragments


def render(problems: Iterable[Problem], file: str, data: Mapping[str, Any],
           source: Located | None = None, kind: str = "") -> list[str]:
    """One line per problem, `FILE:LINE: [KIND]key: reason`, sorted by file and line (stable);
    FILE is the fragment a merged entry came from."""
    placed = [(*_where(source, p.path, file), p) for p in problems]
    order = {name: index for index, name in enumerate(source.paths)} if isinstance(source, Sources) else {}
    placed.sort(key=lambda item: (order.get(item[0], 0), item[1] or 0))
    return [f"{name}{f':{line}' if line else ''}: {kind}{_printable(_text(p, data, source))}"
            for name, line, p in placed]


def _where(source: Located | None, path: Path, file: str) -> tuple[str, int | None]:
    if isinstance(source, Sources):
        return source.where(path)
    return file, source.line_of(path) if source else None


def _printable(text: str) -> str:
    """TEXT with what is not printable escaped: a key or value from the file holding a line
    break would otherwise split its problem over two lines, the second without FILE:LINE."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text(problem: Problem, data: Mapping[str, Any], source: Located | None) -> str:
    head = f"{describe(problem.path, data)}: " if problem.path else ""
    if problem.see is None:
        return head + problem.reason
    if isinstance(source, Sources):
        name, line = source.where(problem.see)
        at = f"{name}:{line}" if line and name != source.paths[0] else f"line {line}" if line else None
    else:
        at = f"line {line}" if source and (line := source.line_of(problem.see)) else None
    return f"{head}{problem.reason} ({at or describe(problem.see, data)})"
