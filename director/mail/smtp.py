"""One SMTP exchange with the standard library's smtplib, bounded in time and in what it reads.

smtplib's own timeout bounds each socket operation, so a server that trickles a byte every
few seconds, or answers with an endless multi-line reply, could hold an exchange (and its
memory) without end. Here the whole exchange, from connect to the end of DATA, shares one
deadline (`smtp_connect_timeout`, as keepalived bounds its SMTP stream), and the server's
replies together may be at most MAX_REPLY_BYTES. Blocking: the daemon calls it on a thread
of its own (`director.daemon.mailer`). Name resolution is the one step the deadline cannot
cut short; the daemon bounds its wait for the thread as well.
"""

from __future__ import annotations

import smtplib
import socket
import time
from dataclasses import dataclass
from typing import Any

from director.mail.compose import Mail

MAX_REPLY_BYTES = 64 * 1024  # all replies of one exchange; a real server sends a few hundred bytes
# MailError.kind: why an exchange failed, as the failure counter's label
FAILURE_KINDS = ("refused", "timeout", "resolve", "closed", "overrun", "network", "rejected", "deferred",
                 "refused_recipient", "malformed", "unconfigured", "other")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    helo: str  # our name in EHLO / HELO
    timeout: float  # seconds for the whole exchange


class MailError(Exception):
    """The exchange failed: `reason` for logs, `kind` for metrics, `permanent` when a retry cannot help."""

    def __init__(self, reason: str, kind: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.kind, self.permanent = reason, kind, permanent


class _Overrun(OSError):
    """A reply read past the exchange's bounds (time or bytes)."""


class _BoundedReader:
    """What smtplib reads replies from: lines of the socket, each recv under the exchange's
    deadline and all of them within its byte budget (a server trickling a byte at a time
    cannot stretch one line past the deadline)."""

    def __init__(self, smtp: _BoundedSMTP) -> None:
        self._smtp = smtp
        self._buffer = b""

    def readline(self, size: int = -1) -> bytes:
        smtp, limit = self._smtp, size if size >= 0 else 1 << 30
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0 or len(self._buffer) >= limit:
                cut = end + 1 if end >= 0 else limit
                line, self._buffer = self._buffer[:cut], self._buffer[cut:]
                smtp.spend(len(line))
                return line
            smtp.sock.settimeout(smtp.remaining())
            chunk = smtp.sock.recv(4096)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
            if len(self._buffer) > smtp.budget:
                smtp.spend(len(self._buffer))

    def close(self) -> None:
        self._buffer = b""


class _BoundedSMTP(smtplib.SMTP):
    def __init__(self, deadline: float, local_hostname: str, max_reply: int) -> None:
        self.deadline = deadline
        self.budget = self.max_reply = max_reply
        super().__init__(local_hostname=local_hostname)

    def spend(self, count: int) -> None:
        self.budget -= count
        if self.budget < 0:
            raise _Overrun(f"the server's replies exceed {self.max_reply} bytes")

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Overrun("timed out (the whole exchange is bounded by smtp_connect_timeout)")
        return left

    def _get_socket(self, host: str, port: int, timeout: Any) -> socket.socket:
        return socket.create_connection((host, port), self.remaining(), self.source_address)

    def send(self, s: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(self.remaining())
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _BoundedReader(self)  # type: ignore[assignment]
        return super().getreply()


def deliver(mail: Mail, server: Server, max_reply: int = MAX_REPLY_BYTES) -> None:
    """Hand `mail` to `server`; raise MailError saying why not. Once the server has accepted the
    message, a failure to say goodbye no longer matters: the mail is delivered."""
    smtp = _BoundedSMTP(time.monotonic() + server.timeout, server.helo, max_reply)
    try:
        smtp.connect(server.host, server.port)
        refused = smtp.send_message(mail.message, mail.sender, list(mail.recipients))
    except Exception as exc:  # every failure becomes a reason: none may escape the thread
        smtp.close()  # no QUIT: a server that just failed us may not answer it either
        raise _describe(exc) from exc
    _goodbye(smtp)
    if refused:
        first = next(iter(refused.items()))
        raise MailError(f"{len(refused)} of {len(mail.recipients)} recipients refused, {first[0]}: "
                        f"{first[1][0]} {_text(first[1][1])}", "refused_recipient", permanent=True)


def _goodbye(smtp: _BoundedSMTP) -> None:
    try:
        if smtp.sock is not None:
            smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        smtp.close()


def _text(raw: bytes | str) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())[:200]


def _describe(exc: BaseException) -> MailError:
    """A reason a person can act on, a low-cardinality kind, and whether to retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        address, (code, text) = next(iter(exc.recipients.items()))
        return MailError(f"every recipient refused, {address}: {code} {_text(text)}", "refused_recipient",
                         permanent=all(500 <= c < 600 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_error == b"Line too long.":
            return MailError("the server sent a reply line over 8 KiB", "malformed")
        kind = "rejected" if 500 <= exc.smtp_code < 600 else "deferred"
        return MailError(f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}", kind,
                         permanent=kind == "rejected")
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return MailError("connection refused", "refused")
    if isinstance(exc, TimeoutError | socket.timeout) or "timed out" in text:
        return MailError("timed out", "timeout")
    if isinstance(exc, socket.gaierror):
        return MailError(f"cannot resolve the server's name: {exc.strerror or text}", "resolve")
    if isinstance(exc, _Overrun) or "replies exceed" in text:
        return MailError(text.removeprefix("Connection unexpectedly closed: "), "overrun")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailError(text, "closed")
    if isinstance(exc, OSError):
        return MailError(exc.strerror or text, "network")
    return MailError(f"{type(exc).__name__}: {text}", "other")
