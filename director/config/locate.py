"""Where each key of a TOML text is: the line that a config error points at.

tomllib returns values without positions, so this scans the text itself: table
headers, `key = value` lines, and the inline tables of an array value (one element
each). It only has to be right for text tomllib already accepted, and a key it
cannot place falls back to its nearest placed parent (`SourceMap.line_of`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class SourceMap:
    """Key path -> first line (1-based) that defines it."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        self._scan(text)

    def line_of(self, path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def _scan(self, text: str) -> None:
        table: Path = ()
        arrays: dict[Path, int] = {}  # array of tables -> its last index
        scanner = _Scanner()
        for number, line in enumerate(text.splitlines(), 1):
            if scanner.depth == 0 and not scanner.in_string:
                stripped = line.strip()
                if stripped.startswith("["):
                    table = self._header(stripped, arrays, number)
                    continue
                key, _, rest = line.partition("=")
                path = table + tuple(_split_key(key))
                if rest and len(path) > len(table):
                    self._place(path, number)
                    scanner.owner = path
            for index in scanner.feed(line):
                self._place((*scanner.owner, index), number)

    def _header(self, header: str, arrays: dict[Path, int], number: int) -> Path:
        is_array = header.startswith("[[")
        inner = header.strip("[]").split("]")[0] if not is_array else header[2:].split("]]")[0]
        parts = _split_key(inner)
        resolved: Path = ()
        for part in parts[:-1] if parts else ():
            resolved += (part,)
            if resolved in arrays:
                resolved += (arrays[resolved],)
        if not parts:
            return ()
        resolved += (parts[-1],)
        self._place(resolved, number)
        if is_array:
            arrays[resolved] = arrays.get(resolved, -1) + 1
            resolved += (arrays[resolved],)
            self._place(resolved, number)
        return resolved

    def _place(self, path: Path, number: int) -> None:
        self.lines.setdefault(path, number)


def _split_key(text: str) -> list[str]:
    """`a."b.c".d` -> ["a", "b.c", "d"]; anything unparseable gives []."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if rest[0] in "\"'":
            end = rest.find(rest[0], 1)
            if end < 0:
                return []
            parts.append(rest[1:end])
            rest = rest[end + 1:].strip()
        else:
            match = _BARE_KEY.match(rest)
            if not match:
                return []
            parts.append(match.group())
            rest = rest[match.end():].strip()
        if rest.startswith("."):
            rest = rest[1:].strip()
        elif rest and not rest.startswith("#"):
            return []
        else:
            break
    return parts


class _Scanner:
    """Bracket depth and string state across lines, and which array element starts where."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = ""  # the open multi-line string's delimiter
        self.owner: Path = ()
        self._elements = 0

    def feed(self, line: str) -> Iterator[int]:
        """Indexes of the inline tables that open on this line as elements of the owner's array."""
        if self.depth == 0 and not self.in_string:
            self._elements = 0
        pos = 0
        while pos < len(line):
            if self.in_string:
                end = line.find(self.in_string, pos)
                if end < 0:
                    return
                pos, self.in_string = end + 3, ""
                continue
            char = line[pos]
            if char == "#":
                return
            if line.startswith(('"""', "'''"), pos):
                self.in_string, pos = line[pos:pos + 3], pos + 3
                continue
            if char in "\"'":
                pos = _string_end(line, pos)
                continue
            if char in "[{":
                if char == "{" and self.depth == 1:
                    yield self._elements
                    self._elements += 1
                self.depth += 1
            elif char in "]}":
                self.depth = max(0, self.depth - 1)
            pos += 1


def _string_end(line: str, start: int) -> int:
    quote, pos = line[start], start + 1
    while pos < len(line):
        if line[pos] == "\\" and quote == '"':
            pos += 2
            continue
        if line[pos] == quote:
            return pos + 1
        pos += 1
    return pos
