"""`include = ["conf.d/*.toml"]`: a config spread over fragment files, read as one.

The main file keeps the tables that exist once ([global], [ipvs]); a fragment adds
entries to the arrays of tables (a `[[virtual_server]]` per file, say), appended in the
order the patterns and then the sorted file names give. `Sources` remembers which file
each merged entry came from, so a problem in entry 7 names that fragment's file and line.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

from director.config.locate import Path, SourceMap

# The arrays of tables a fragment may add to.
FRAGMENT_TABLES = ("virtual_server", "vrrp_instance", "vrrp_sync_group", "vrrp_script", "track_file",
                   "track_process")
MAX_FRAGMENTS = 1024


class IncludeError(Exception):
    """One line naming the file and what is wrong."""


class Sources:
    """Where each key of a merged config was written: (file, line)."""

    def __init__(self, path: str, source: SourceMap) -> None:
        self.files: list[tuple[str, SourceMap]] = [(path, source)]
        self.spans: dict[str, list[tuple[int, int, int]]] = {}  # table -> (first merged index, count, file)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.files]

    def add(self, path: str, source: SourceMap, counts: dict[str, tuple[int, int]]) -> None:
        """A fragment whose table entries start at `counts[table][0]` of the merged array."""
        self.files.append((path, source))
        for table, (start, count) in counts.items():
            self.spans.setdefault(table, []).append((start, count, len(self.files) - 1))

    def where(self, key: Path) -> tuple[str, int | None]:
        if len(key) > 1 and isinstance(key[0], str) and isinstance(key[1], int):
            for start, count, index in self.spans.get(key[0], ()):
                if start <= key[1] < start + count:
                    path, source = self.files[index]
                    return path, source.line_of((key[0], key[1] - start, *key[2:]))
        path, source = self.files[0]
        return path, source.line_of(key)


Reader = Callable[[str], tuple[dict[str, Any], SourceMap]]  # path -> (parsed TOML, its map)


def expand(path: str, data: dict[str, Any], source: SourceMap, read: Reader) -> tuple[dict[str, Any], Sources]:
    """The main file's `data` with every fragment `include` names merged in."""
    sources = Sources(path, source)
    patterns = data.pop("include", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise IncludeError(f"{path}:{source.line_of(('include',)) or 1}: include: must be a list of file "
                           "patterns such as [\"conf.d/*.toml\"]")
    merged = dict(data)
    for fragment in _fragments(path, patterns, source):
        _merge(fragment, merged, sources, read)
    return merged, sources


def _fragments(path: str, patterns: list[str], source: SourceMap) -> list[str]:
    base = os.path.dirname(os.path.abspath(path))
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern if os.path.isabs(pattern) else os.path.join(base, pattern)))
        found += [m for m in matches if os.path.isfile(m) and m not in found and m != os.path.abspath(path)]
    if len(found) > MAX_FRAGMENTS:
        raise IncludeError(f"{path}:{source.line_of(('include',)) or 1}: include: {len(found)} files, "
                           f"at most {MAX_FRAGMENTS}")
    return found


def _merge(fragment: str, merged: dict[str, Any], sources: Sources, read: Reader) -> None:
    data, source = read(fragment)
    counts: dict[str, tuple[int, int]] = {}
    for key, value in data.items():
        if key not in FRAGMENT_TABLES:
            raise IncludeError(f"{fragment}:{source.line_of((key,)) or 1}: {key}: a fragment holds only "
                               f"{', '.join(f'[[{t}]]' for t in FRAGMENT_TABLES)}; write it in the main file")
        entries = value if isinstance(value, list) else [value]
        have = merged.setdefault(key, [])
        if not isinstance(have, list):
            have = merged[key] = [have]
        counts[key] = (len(have), len(entries))
        have.extend(entries)
    sources.add(fragment, source, counts)
