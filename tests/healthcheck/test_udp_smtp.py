"""udp checks against a real UDP echo server and a closed port; smtp checks against a real
SMTP server (aiosmtpd) on loopback, one refusing EHLO, and one answering 554 at the banner."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from director.config.model import CheckConfig
from healthcheck import smtp, udp
from healthcheck import smtp_reply as sr
from healthcheck.result import Target
from tests.healthcheck.conftest import free_port, run


@pytest.fixture
def echo_port():
    """A UDP echo server (what inetd's echo service does): every datagram back, upper-cased."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                data, addr = sock.recvfrom(2048)
                sock.sendto(b"PONG " + data.upper(), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def udp_check(**kw) -> CheckConfig:
    return CheckConfig(type="udp", timeout=kw.pop("timeout", 1.0), **kw)


def test_udp_reply_matching_and_not(echo_port):
    t = Target("127.0.0.1", echo_port)
    r = run(udp.probe(t, udp_check(send=b"ping", expect=r"^PONG PING$")))
    assert r.ok and r.reason == "reply matched '^PONG PING$'"
    r = run(udp.probe(t, udp_check(send=b"ping", expect="pong")))
    assert not r.ok and r.reason == "reply did not match 'pong': b'PONG PING'"
    r = run(udp.probe(t, udp_check()))
    assert r.ok and r.reason == "reply of 5 bytes"  # an empty datagram, echoed with the prefix


def test_udp_closed_port_is_refused():
    closed = free_port(socket.SOCK_DGRAM)
    r = run(udp.probe(Target("127.0.0.1", closed), udp_check(send=b"x")))
    assert not r.ok and r.reason == "connection refused (ICMP port unreachable)"
    # without require_reply only an ICMP error fails, as keepalived's UDP_CHECK
    r = run(udp.probe(Target("127.0.0.1", closed), udp_check(send=b"x", require_reply=False)))
    assert not r.ok and r.reason == "connection refused (ICMP port unreachable)"


def test_udp_silence_is_a_timeout_unless_no_reply_is_required():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        t = Target("127.0.0.1", mute.getsockname()[1])
        r = run(udp.probe(t, udp_check(send=b"x", timeout=0.2)))
        assert not r.ok and r.reason == "timeout after 0.2s waiting for reply"
        r = run(udp.probe(t, udp_check(send=b"x", timeout=0.2, require_reply=False)))
        assert r.ok and r.reason == "no ICMP error within 0.2s"


# --- smtp ------------------------------------------------------------------------------


class Greeter:
    """Records the names it was greeted with; `refuse_ehlo`: answers EHLO 502 (an RFC 821 server)."""

    def __init__(self, refuse_ehlo: bool = False) -> None:
        self.refuse_ehlo = refuse_ehlo
        self.names: list[str] = []
        self.quits = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.names.append(f"EHLO {hostname}")
        if self.refuse_ehlo:
            return ["502 5.5.1 EHLO not implemented"]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self.names.append(f"HELO {hostname}")
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"


@contextlib.contextmanager
def smtp_server(handler):
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def smtp_check(**kw) -> CheckConfig:
    return CheckConfig(type="smtp", timeout=2.0, **kw)


def test_smtp_banner_ehlo_and_quit_against_aiosmtpd():
    handler = Greeter()
    with smtp_server(handler) as port:
        r = run(smtp.probe(Target("127.0.0.1", port), smtp_check(helo_name="lb1.example.net")))
    assert r.ok and r.reason == "banner 220, EHLO 250"
    assert handler.names == ["EHLO lb1.example.net"]


def test_smtp_falls_back_to_helo():
    handler = Greeter(refuse_ehlo=True)
    with smtp_server(handler) as port:
        r = run(smtp.probe(Target("127.0.0.1", port), smtp_check(helo_name="lb1")))
    assert r.ok and r.reason == "banner 220, HELO 250"
    assert handler.names == ["EHLO lb1", "HELO lb1"]


@contextlib.contextmanager
def scripted(lines: bytes):
    """A server that says `lines` to whoever connects, then closes (a refusing MTA's 554)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(lines)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_smtp_554_banner_is_down_with_its_text():
    with scripted(b"554 5.3.2 mail.example.net no service today\r\n") as port:
        r = run(smtp.probe(Target("127.0.0.1", port), smtp_check()))
    assert not r.ok and r.reason == "banner 554 5.3.2 mail.example.net no service today"


def test_smtp_garbage_closed_and_refused():
    with scripted(b"SSH-2.0-OpenSSH_9.2\r\n") as port:
        r = run(smtp.probe(Target("127.0.0.1", port), smtp_check()))
    assert not r.ok and r.reason == "bad SMTP reply: not an SMTP reply line: b'SSH-2.0-OpenSSH_9.2'"
    with scripted(b"220-first line\r\n") as port:
        r = run(smtp.probe(Target("127.0.0.1", port), smtp_check()))
    assert not r.ok and r.reason == "connection closed before a whole SMTP reply (reply cut off)"
    r = run(smtp.probe(Target("127.0.0.1", free_port()), smtp_check()))
    assert not r.ok and r.reason == "connection refused"


def test_smtp_reply_reader_multiline_and_bounds():
    reader = sr.ReplyReader()
    assert reader.feed(b"250-mail.example\r\n250-SIZE 10") is None
    reply = reader.feed(b"\r\n250 HELP\r\n")
    assert reply == sr.Reply(250, ("mail.example", "SIZE 10", "HELP"))
    with pytest.raises(sr.SmtpParseError, match="different codes"):
        sr.ReplyReader().feed(b"250-a\r\n251 b\r\n")
    with pytest.raises(sr.SmtpParseError, match="longer than"):
        sr.ReplyReader().feed(b"250-" + b"x" * 9000)
    with pytest.raises(sr.SmtpParseError, match="longer than"):
        sr.ReplyReader().feed(b"250-x\r\n" * 200)


def test_udp_checks_run_as_callbacks_in_the_scheduler(echo_port):
    """The scheduler's path (a plan on the shared epoll, no task): up, then down when the port
    closes, and removing the probe closes its kept socket."""
    import asyncio

    from healthcheck import probes
    from healthcheck.scheduler import Scheduler

    closed = free_port(socket.SOCK_DGRAM)
    check = udp_check(send=b"hi", expect="PONG HI", timeout=0.3)
    check = type(check)(**{**check.__dict__, "interval": 0.1, "rise": 1, "fall": 1, "initial": "down",
                           "jitter": 0.0})
    events: list[tuple[str, bool, str]] = []

    async def go() -> None:
        sched = Scheduler(lambda key, up, result: events.append((key, up, result.reason)))
        sched.add("echo", Target("127.0.0.1", echo_port), check)
        sched.add("closed", Target("127.0.0.1", closed), check)
        assert probes.plan(Target("127.0.0.1", echo_port), check) is not None
        await asyncio.sleep(0.5)
        plan = sched._probes[next(iter(k for k in sched._probes if k.target.port == echo_port))].plan
        assert plan.sock is not None
        sched.remove("echo")
        assert plan.sock is None
        await sched.close()

    run(go())
    assert ("echo", True, "reply matched 'PONG HI'") in events
    assert all(key == "echo" for key, up, _ in events if up)
