"""Markdown to man(7) roff, for the subset docs/configuration.md is written in.

Headings, paragraphs, bullet and numbered lists, pipe tables and code fences. A table becomes
one tagged paragraph per row: the first cell as the tag, the middle cells as "Header: value"
and the last cell (the meaning) below them, which reads well at any terminal width.
"""

from __future__ import annotations

import re

from director.reference.roff import entry, escape, inline, line

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
BULLET = re.compile(r"^(?:[-*]|(\d+)\.)\s+(.*)$")


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split(" | ")]


def _table(rows: list[str]) -> list[str]:
    header, body = _cells(rows[0]), [r for r in rows[2:] if r.strip()]
    out = []
    for row in body:
        cells = _cells(row)
        middle = [f"{escape(h.capitalize())}: {inline(c)}" for h, c in zip(header[1:-1], cells[1:-1], strict=False)]
        text = inline(cells[-1]) if len(cells) > 1 else ""
        out += entry(inline(cells[0]), ". ".join(middle) + ("." if middle else ""))
        if text:
            out += [".br", line(text)]
    return out


def _fence(lines: list[str]) -> list[str]:
    """Kept as written: no filling, leading spaces kept (`\\&` stops a request being read)."""
    return [".PP", ".RS 4", ".nf", *(f"\\&{escape(text, literal=True)}" for text in lines), ".fi", ".RE"]


class _Blocks:
    """Reads the markdown one block at a time; `out` collects the roff."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.i = 0
        self.out: list[str] = []

    def take_while(self, keep) -> list[str]:
        taken = []
        while self.i < len(self.lines) and keep(self.lines[self.i]):
            taken.append(self.lines[self.i])
            self.i += 1
        return taken

    def block(self) -> None:
        current = self.lines[self.i]
        heading, bullet = HEADING.match(current), BULLET.match(current)
        if not current.strip():
            self.i += 1
        elif current.startswith("```"):
            self.i += 1
            self.out += _fence(self.take_while(lambda s: not s.startswith("```")))
            self.i += 1  # the closing fence
        elif heading:
            self.i += 1
            level = len(heading.group(1))
            if level > 1:  # the title is the page's .TH
                self.out += [".SH" if level == 2 else ".SS", line(inline(heading.group(2)))]
        elif current.startswith("|"):
            self.out += _table(self.take_while(lambda s: s.startswith("|")))
        elif bullet:
            self.i += 1
            rest = self.take_while(lambda s: s.startswith("  ") and s.strip())
            mark = f"{bullet.group(1)}. 4" if bullet.group(1) else "\\(bu 2"
            self.out += [f".IP {mark}", line(inline(" ".join([bullet.group(2), *(s.strip() for s in rest)])))]
        else:
            text = self.take_while(lambda s: s.strip() and not HEADING.match(s) and not BULLET.match(s)
                                   and not s.startswith(("|", "```")))
            self.out += [".PP", line(inline(" ".join(s.strip() for s in text)))]


def to_roff(markdown: str) -> list[str]:
    """The roff lines of a markdown document (its `#` title left out)."""
    blocks = _Blocks(markdown)
    while blocks.i < len(blocks.lines):
        blocks.block()
    return blocks.out
