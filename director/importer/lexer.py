"""Tokenize keepalived's brace syntax into a tree of statements with file:line.

keepalived is line oriented: a statement is a keyword and its arguments on one
line, optionally opening a `{ ... }` block (the brace may sit on the next
line). `#` and `!` start comments outside quotes. `include GLOB` splices other
files in, resolved relative to the including file.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from director.importer import Conversion, SourceError
from director.importer.common import MAX_SOURCE_BYTES, read_source

MAX_INCLUDE_DEPTH = 8
# Reads in all, a file read twice counting twice: two `include *` lines in a file that they
# find again would read it 2**8 times, and each more line multiplies that.
MAX_FILES_READ = 1000


@dataclass(frozen=True)
class Token:
    text: str
    file: str
    line: int
    quoted: bool = False


@dataclass
class Node:
    """One statement: `keyword args...` and the statements of its block, if any."""

    keyword: str
    args: list[str]
    file: str
    line: int
    children: list[Node] | None = None

    @property
    def where(self) -> tuple[str, int]:
        return self.file, self.line


# keepalived's parameters: `$NAME=VALUE` alone on a line defines one; `$NAME` followed by
# whitespace (or the line's end) and `${NAME}` anywhere are replaced, again and again, at use
DEFINITION = re.compile(r"\s*\$([A-Za-z_]\w*)=(.*)$")
USE = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)(?=\s|$)")
MAX_SUBSTITUTIONS = 32  # a parameter whose value names itself must not loop


@dataclass
class _Lexer:
    errors: list[str] = field(default_factory=list)
    stray: list[Token] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    read_bytes: int = 0

    def define(self, raw: str, path: str, number: int) -> bool:
        """A parameter definition: kept for the lines after it, not a statement."""
        found = DEFINITION.match(raw)
        if found is None:
            return False
        value = found.group(2).rstrip()
        if value.endswith("\\"):
            self.errors.append(f"{path}:{number}: ${found.group(1)}: parameters defined over several lines "
                               "are not supported: write the values out")
        self.params[found.group(1)] = value
        return True

    def substitute(self, raw: str) -> str:
        if not self.params or "$" not in raw:
            return raw
        for _ in range(MAX_SUBSTITUTIONS):
            done = USE.sub(lambda m: self.params.get(m.group(1) or m.group(2), m.group(0)), raw)
            if done == raw:
                break
            raw = done
        return raw

    def file_tokens(self, path: str, depth: int = 0) -> list[list[Token]]:
        """Lines of tokens of PATH with includes expanded in place."""
        try:
            text = read_source(path)
        except OSError as exc:
            self.errors.append(f"{path}: cannot read: {exc.strerror}")
            return []
        self.read_bytes += len(text)
        if self.read_bytes > MAX_SOURCE_BYTES:
            self.errors.append(f"{path}: the file and its includes are larger than "
                               f"{MAX_SOURCE_BYTES // (1024 * 1024)} MiB in all (a loop?)")
            return []
        self.files.append(path)
        lines: list[list[Token]] = []
        for number, raw in enumerate(text.splitlines(), 1):
            if self.define(raw, path, number):
                continue
            tokens = self.line_tokens(self.substitute(raw), path, number)
            if tokens and tokens[0].text == "include" and not tokens[0].quoted:
                lines.extend(self.include(tokens, path, depth))
            elif tokens:
                lines.append(tokens)
        return lines

    def include(self, tokens: list[Token], path: str, depth: int) -> list[list[Token]]:
        where = f"{path}:{tokens[0].line}"
        if len(tokens) != 2:
            self.errors.append(f"{where}: include needs exactly one file name or glob")
            return []
        if depth >= MAX_INCLUDE_DEPTH:
            self.errors.append(f"{where}: includes nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)")
            return []
        pattern = os.path.join(os.path.dirname(path), tokens[1].text)
        matches = sorted(glob.glob(pattern))
        if not matches and not glob.has_magic(pattern):
            self.errors.append(f"{where}: include {tokens[1].text}: no such file")
        lines: list[list[Token]] = []
        for match in matches:
            if len(self.files) >= MAX_FILES_READ:
                self.errors.append(f"{where}: more than {MAX_FILES_READ} files read through includes (a loop?)")
                break
            lines.extend(self.file_tokens(match, depth + 1))
        return lines

    def line_tokens(self, raw: str, path: str, number: int) -> list[Token]:
        tokens: list[Token] = []
        pos = 0
        while pos < len(raw):
            char = raw[pos]
            if char.isspace():
                pos += 1
            elif char in "#!":
                break
            elif char in "{}":
                tokens.append(Token(char, path, number))
                pos += 1
            elif char == '"':
                end = raw.find('"', pos + 1)
                if end < 0:
                    self.errors.append(f"{path}:{number}: unterminated quoted string")
                    end = len(raw)
                tokens.append(Token(raw[pos + 1:end], path, number, quoted=True))
                pos = end + 1
            else:
                end = pos
                while end < len(raw) and not raw[end].isspace() and raw[end] not in '{}"':
                    end += 1
                tokens.append(Token(raw[pos:end], path, number))
                pos = end
        return tokens


class _Tree:
    """Statements folded from lines of tokens: the blocks still open and the statement being read."""

    def __init__(self, errors: list[str], stray: list[Token]) -> None:
        self.errors = errors
        self.stray = stray  # `}` closing nothing: keepalived warns and reads on, so do we
        self.root: list[Node] = []
        self.open_blocks: list[tuple[list[Node], Token | None]] = [(self.root, None)]
        self.current: Node | None = None

    def opening(self, token: Token) -> None:
        """`{` opens the block of the statement on this line, or of the one just before."""
        siblings = self.open_blocks[-1][0]
        owner = self.current or (siblings[-1] if siblings and siblings[-1].children is None else None)
        if owner is None:
            self.errors.append(f"{token.file}:{token.line}: '{{' without a keyword before it")
            owner = Node("", [], token.file, token.line)
            siblings.append(owner)
        owner.children = []
        self.open_blocks.append((owner.children, token))
        self.current = None

    def closing(self, token: Token) -> None:
        if len(self.open_blocks) == 1:
            self.stray.append(token)
        else:
            self.open_blocks.pop()
        self.current = None

    def word(self, token: Token) -> None:
        """The first word of a statement is its keyword, the others its arguments."""
        if self.current is None:
            self.current = Node(token.text, [], token.file, token.line)
            self.open_blocks[-1][0].append(self.current)
        else:
            self.current.args.append(token.text)

    def finish(self) -> list[Node]:
        for _, opener in self.open_blocks[1:]:
            if opener is not None:
                self.errors.append(f"{opener.file}:{opener.line}: '{{' is never closed")
        return self.root


_BRACES = {"{": _Tree.opening, "}": _Tree.closing}


def _build(lines: list[list[Token]], errors: list[str], stray: list[Token]) -> list[Node]:
    """Fold lines of tokens into nested nodes, checking that braces balance."""
    tree = _Tree(errors, stray)
    for tokens in lines:
        tree.current = None
        for token in tokens:
            (_Tree.word if token.quoted else _BRACES.get(token.text, _Tree.word))(tree, token)
    return tree.finish()


def parse_file(path: str) -> tuple[list[Node], list[str], list[Token]]:
    """Parse PATH (with its includes) into statements; raise SourceError on syntax errors.

    Returns the top-level nodes, every file read, in order, and each `}` that closed nothing.
    """
    lexer = _Lexer()
    lines = lexer.file_tokens(path)
    nodes = _build(lines, lexer.errors, lexer.stray)
    if lexer.errors:
        raise SourceError(lexer.errors)
    return nodes, lexer.files, lexer.stray


def convert_braced(path: str, make_converter: Callable[[Conversion], Any]) -> Conversion:
    """Parse a brace-syntax file (and its includes) and run a converter over it;
    keepalived.conf and lvs.cf share this, only their converters differ."""
    nodes, files, stray = parse_file(path)
    conv = Conversion(sources=files)
    for token in stray:
        conv.remark(token.file, token.line, "}", "closes no block: ignored, as keepalived does")
    converter = make_converter(conv)
    converter.run(nodes)
    if converter.errors:
        raise SourceError(converter.errors)
    return conv
