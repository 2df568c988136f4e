"""What the login checks (mysql, pgsql, ldap, imap, pop, ftp) share: the password from the
config or its file, and a connection read line by line or packet by packet with a bound on
what is read in all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from healthcheck._io import Phase, ProbeError, Stream, open_stream
from healthcheck.result import Target

if TYPE_CHECKING:
    import ssl

    from director.config.model import CheckConfig

MAX_LINE = 4096  # one protocol line (greeting, reply)
MAX_TOTAL = 262144  # all a check reads from one server
T = TypeVar("T")

_file_cache: dict[str, tuple[tuple[int, int], str]] = {}


def password(check: CheckConfig) -> str:
    """`passwd`, or the first line of `passwd_file` (re-read when the file changes)."""
    return _secret(check.passwd, check.passwd_file, "passwd_file")


def secret(check: CheckConfig) -> str:
    return _secret(check.secret, check.secret_file, "secret_file")


def _secret(inline: str | None, path: str | None, key: str) -> str:
    if inline is not None or not path:
        return inline or ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ProbeError(f"cannot read {key} {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        st = os.fstat(fd)
        stamp = (st.st_mtime_ns, st.st_size)
        cached = _file_cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        text = os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)
    value = text.splitlines()[0] if text else ""
    _file_cache[path] = (stamp, value)
    return value


class Session:
    """A connection read in lines or framed packets; at most MAX_TOTAL bytes in all."""

    def __init__(self, stream: Stream, phase: Phase) -> None:
        self.stream, self.phase = stream, phase
        self.buf = bytearray()
        self.total = 0

    @classmethod
    async def open(cls, target: Target, phase: Phase, tls: ssl.SSLContext | None = None,
                   source: CheckConfig | None = None) -> Session:
        """Connect, bound as `source` (the check) asks."""
        stream = await open_stream(target, phase, MAX_LINE, tls, target.address if tls else None, source=source)
        return cls(stream, phase)

    async def more(self, what: str) -> bytes:
        data = await self.stream.read()
        if not data:
            raise ProbeError(f"connection closed {what}")
        self.total += len(data)
        if self.total > MAX_TOTAL:
            raise ProbeError(f"server sent over {MAX_TOTAL} bytes {what}")
        return data

    async def line(self, what: str) -> str:
        """One line without its CRLF; a line longer than MAX_LINE is a bad reply."""
        self.phase.name = what
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                raw = bytes(self.buf[:end])
                del self.buf[:end + 1]
                return raw.rstrip(b"\r").decode("utf-8", "replace")
            if len(self.buf) > MAX_LINE:
                raise ProbeError(f"bad reply: a line over {MAX_LINE} bytes without an end {what}")
            self.buf += await self.more(what)

    async def packet(self, what: str, cut: Callable[[bytes], list[T]], pending: list[T]) -> T:
        """The next item that `cut` (a framer's feed) gives, reading as needed."""
        self.phase.name = what
        while not pending:
            pending.extend(cut(await self.more(what)))
        return pending.pop(0)

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    def close(self) -> None:
        self.stream.close()


def first_line(text: str, limit: int = 120) -> str:
    """A server's reply as it goes into a reason: printable, short."""
    clean = "".join(c if c.isprintable() else "?" for c in text.strip())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."
