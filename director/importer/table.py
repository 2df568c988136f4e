"""Directive tables: how every importer reads a block.

Each kind of block (keepalived's vrrp_instance, virtual_server, real_server and
checkers; lvs.cf's virtual and server; an ldirectord virtual= section) has a
table from directive name to a small handler, and a state object that collects
what the block says until the block ends. The table shows at a glance which
directives an importer understands; a name it does not hold goes to the
table's fallback, which reports it with file:line and a reason.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Generic, Protocol, TypeVar

from director.importer import Conversion

NO_EQUIVALENT = "no directord equivalent"


class Located(Protocol):
    """A directive as read from a source file: where it is and its name."""

    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...

    @property
    def keyword(self) -> str: ...


class Reader:
    """What every converter shares: the output, its errors and the names given to virtual servers."""

    def __init__(self, conv: Conversion) -> None:
        self.conv = conv
        self.errors: list[str] = []
        self.names: set[str] = set()

    def skip(self, node: Located, reason: str = NO_EQUIVALENT) -> None:
        """Note a directive that is not (or only approximately) carried over."""
        self.conv.note(node.file, node.line, node.keyword, reason)

    def remark(self, node: Located, reason: str) -> None:
        """Note, in the output's header only, a directive carried over with nothing lost."""
        self.conv.remark(node.file, node.line, node.keyword, reason)

    def bad(self, node: Located, reason: str) -> None:
        """Record a directive that cannot be read at all: the import fails with this line."""
        self.errors.append(f"{node.file}:{node.line}: {node.keyword}: {reason}")


R = TypeVar("R", bound=Reader)
N = TypeVar("N", bound=Located)
S = TypeVar("S")
Handler = Callable[[R, N, S], None]


def _not_supported(reader: Reader, node: Located, _state: object) -> None:
    reader.skip(node)


class Table(Generic[R, N, S]):
    """Directive name -> handler(reader, directive, state) for one kind of block."""

    def __init__(self, base: Table[R, N, S] | None = None, fallback: Handler[R, N, S] | None = None) -> None:
        """A table that knows BASE's directives too; a name neither knows goes to FALLBACK
        (or BASE's), which by default notes it as having no directord equivalent."""
        self.base = base
        self.handlers: dict[str, Handler[R, N, S]] = {}
        self.prefixes: dict[str, Handler[R, N, S]] = {}
        self.fallback: Handler[R, N, S] = fallback or (base.fallback if base else _not_supported)

    def on(self, *names: str) -> Callable[[Handler[R, N, S]], Handler[R, N, S]]:
        """Register the decorated function for these directive names."""
        def register(handler: Handler[R, N, S]) -> Handler[R, N, S]:
            self.handlers.update(dict.fromkeys(names, handler))
            return handler
        return register

    def on_prefix(self, prefix: str) -> Callable[[Handler[R, N, S]], Handler[R, N, S]]:
        """Register the decorated function for every name starting with PREFIX (exact names win)."""
        def register(handler: Handler[R, N, S]) -> Handler[R, N, S]:
            self.prefixes[prefix] = handler
            return handler
        return register

    def sets(self, attribute: str, read: Callable[[R, N], object], *names: str) -> None:
        """These directives set one field of the block's state to `read(reader, directive)`."""
        def store(reader: R, node: N, state: S) -> None:
            setattr(state, attribute, read(reader, node))
        self.handlers.update(dict.fromkeys(names, store))

    def says(self, reason: str, *names: str) -> None:
        """These directives map to nothing: each occurrence is noted with REASON."""
        def note(reader: R, node: N, _state: S) -> None:
            reader.skip(node, reason)
        self.handlers.update(dict.fromkeys(names, note))

    def handler(self, name: str) -> Handler[R, N, S]:
        """This table's handler for NAME, else its base's, else the fallback."""
        table: Table[R, N, S] | None = self
        while table is not None:
            found = table.handlers.get(name) or next(
                (h for p, h in table.prefixes.items() if name.startswith(p)), None)
            if found is not None:
                return found
            table = table.base
        return self.fallback

    def read(self, reader: R, node: N, state: S) -> None:
        """Hand one directive to its handler."""
        self.handler(node.keyword)(reader, node, state)

    def apply(self, reader: R, settings: MutableMapping[str, N], state: S) -> None:
        """Settings read as `key -> last line`: take out and handle each one this table knows,
        in the order the handlers were registered (a later one may rely on an earlier one)."""
        for name, handler in self.handlers.items():
            node = settings.pop(name, None)
            if node is not None:
                handler(reader, node, state)
