"""Convert keepalived, ldirectord and piranha configs into directord TOML.

Each converter returns a `Conversion`: a dict shaped like directord.toml and the
list of source directives that have no exact equivalent, so nothing is dropped
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unmapped:
    """One source directive that was not (or only approximately) carried over."""

    file: str
    line: int
    directive: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.directive}: {self.reason}"


class SourceError(Exception):
    """The source file cannot be parsed; `lines` holds one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class Conversion:
    """The directord config as plain data plus everything that did not map."""

    config: dict[str, Any] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    # carried over with nothing lost, but worth a line in the output's header: a directive
    # directord needs no equivalent for, or a slip the source's own daemon forgives
    remarks: list[Unmapped] = field(default_factory=list)

    def note(self, file: str, line: int, directive: str, reason: str) -> None:
        self.unmapped.append(Unmapped(file, line, directive, reason))

    def remark(self, file: str, line: int, directive: str, reason: str) -> None:
        self.remarks.append(Unmapped(file, line, directive, reason))


def seconds(value: float) -> str:
    """A duration string directord accepts: whole seconds as "6s", fractions as "1500ms"."""
    millis = round(value * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
