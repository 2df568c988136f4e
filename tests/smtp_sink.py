"""SMTP servers for the mail tests, on loopback or inside a test's namespace.

`Recorder` is a real SMTP server (aiosmtpd) that keeps every message it accepts; `silent`
accepts TCP connections and never says a word (a hung mail server). Run as a module,
`python -m tests.smtp_sink --listen HOST:PORT --maildir DIR [--silent]` serves the same in
a namespace (`ip netns exec`), writing each accepted message into a Maildir until SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import mailbox
import signal
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    """An aiosmtpd handler: accepts everything (or answers `refuse_first` with a 451 first)."""

    def __init__(self, maildir: Path | None = None, refuse_first: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused = 0
        self._refuse = refuse_first
        self._lock = threading.Lock()
        self._maildir = mailbox.Maildir(maildir) if maildir is not None else None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.refused < self._refuse:
                self.refused += 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            if self._maildir is not None:
                self._maildir.add(envelope.content)
        return "250 2.0.0 queued"

    def subjects(self) -> list[str]:
        with self._lock:
            return [str(m["Subject"]) for m in self.messages]


@contextlib.contextmanager
def recording(host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> Iterator[tuple[Recorder, int]]:
    """A recording SMTP server on HOST:PORT (a free port when 0); yields it and its port."""
    port = port or free_port(host)
    handler = Recorder(**kwargs)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@contextlib.contextmanager
def silent(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose kernel completes the handshake while nobody ever reads or writes."""
    with socket.create_server((host, 0), backlog=128) as sock:
        yield sock.getsockname()[1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_maildir(path: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(path, create=False)
    return [email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for msg in box]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--maildir", type=Path)
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.silent:
        with socket.create_server((host, int(port)), backlog=128):
            stop.wait()
        return
    with recording(host, int(port), maildir=args.maildir):
        while not stop.wait(0.2):
            time.sleep(0)


if __name__ == "__main__":
    main()
