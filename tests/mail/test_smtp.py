"""One bounded SMTP exchange against real servers on loopback: aiosmtpd accepts; a closed port
refuses at once; a hung server, a trickling one and an endless reply are cut at the deadline
or the read bound; a 5xx is permanent, a 4xx is not."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from director.mail.compose import SyncGroupChange, compose
from director.mail.smtp import FAILURE_KINDS, MailError, Server, deliver
from tests.smtp_sink import free_port, recording, silent

MAIL = compose(SyncGroupChange("lb", "master", ("A", "B")), router_id="lb1", host="lb1.example",
               sender="lb@example.org", recipients=("ops@example.org",), when=0.0)


def server(port: int, timeout: float = 2.0) -> Server:
    return Server("127.0.0.1", port, "lb1.example", timeout)


def failure(port: int, timeout: float = 2.0, **kwargs: int) -> tuple[MailError, float]:
    began = time.monotonic()
    with pytest.raises(MailError) as info:
        deliver(MAIL, server(port, timeout), **kwargs)
    assert info.value.kind in FAILURE_KINDS
    return info.value, time.monotonic() - began


@contextlib.contextmanager
def scripted(*replies: bytes, trickle: float = 0.0) -> Iterator[int]:
    """A fake server: sends each reply after reading a line (the first at once); with `trickle`,
    the greeting goes out a byte at a time, `trickle` seconds apart, for ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            if trickle:
                while not stop.wait(trickle):
                    with contextlib.suppress(OSError):
                        conn.sendall(b"2")
                return
            reader = conn.makefile("rb")
            for index, reply in enumerate(replies):
                if index:
                    reader.readline()
                with contextlib.suppress(OSError):
                    conn.sendall(reply)
            stop.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def test_a_real_server_gets_the_message_and_its_envelope() -> None:
    with recording() as (recorder, port):
        deliver(MAIL, server(port))
    assert recorder.envelopes == [("lb@example.org", ["ops@example.org"])]
    assert str(recorder.messages[0]["Subject"]) == "[lb1] VRRP sync group lb is now MASTER"


def test_a_closed_port_fails_at_once() -> None:
    error, took = failure(free_port())
    assert (error.reason, error.kind, error.permanent) == ("connection refused", "refused", False) and took < 0.5


def test_a_hung_server_is_cut_at_the_deadline() -> None:
    with silent() as port:
        error, took = failure(port, timeout=0.5)
    assert error.kind == "timeout" and 0.45 < took < 1.5


def test_a_trickling_server_is_cut_at_the_deadline_of_the_whole_exchange() -> None:
    with scripted(trickle=0.1) as port:  # every read gets a byte in time: only the whole deadline stops it
        error, took = failure(port, timeout=0.8)
    assert error.kind in ("timeout", "overrun") and 0.7 < took < 2.0, (error.reason, took)


def test_an_endless_reply_is_cut_at_the_read_bound() -> None:
    flood = b"220-" + b"x" * 1000 + b"\r\n"
    with scripted(flood * 100 + b"220 hello\r\n") as port:
        error, _ = failure(port, max_reply=16 * 1024)
    assert error.kind == "overrun" and error.reason == "the server's replies exceed 16384 bytes"


@pytest.mark.parametrize(("reply", "kind", "permanent"), [(b"550 5.1.1 no such user\r\n", "refused_recipient", True),
                                                         (b"451 4.3.0 try later\r\n", "refused_recipient", False)])
def test_a_5xx_is_permanent_and_a_4xx_is_not(reply: bytes, kind: str, permanent: bool) -> None:
    with scripted(b"220 hi\r\n", b"250 hello\r\n", b"250 ok\r\n", reply, b"250 reset\r\n") as port:
        error, _ = failure(port)
    assert (error.kind, error.permanent) == (kind, permanent) and reply[:3].decode() in error.reason


def test_a_rejected_message_is_permanent() -> None:
    replies = (b"220 hi\r\n", b"250 hello\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n")
    with scripted(*replies, b"554 5.7.1 spam\r\n", b"250 reset\r\n") as port:
        # DATA's body is many lines; the script answers after the first, which the client ignores
        # until its final dot, so the 554 arrives as the answer to the message
        error, _ = failure(port)
    assert error.permanent and "554" in error.reason
