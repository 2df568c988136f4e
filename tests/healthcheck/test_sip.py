"""SIP OPTIONS: the sans-IO message code, kamailio as a real peer, hostile replies."""

from __future__ import annotations

import asyncio
import re
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director.config.model import CheckConfig
from healthcheck import sip
from healthcheck import sip_message as sm
from healthcheck.result import Target
from tests.healthcheck import adversaries as adv
from tests.healthcheck.conftest import run

TICK = 0.1

# --- sans-IO ------------------------------------------------------------------------


def test_options_request_is_fresh_and_well_formed():
    a = sm.build_options("sip:127.0.0.1:5060", "UDP", "127.0.0.1", 40000)
    b = sm.build_options("sip:127.0.0.1:5060", "UDP", "127.0.0.1", 40000)
    assert a.branch != b.branch and a.call_id != b.call_id
    assert a.branch.startswith("z9hG4bK")
    text = a.data.decode()
    assert text.startswith("OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n")
    assert f"Via: SIP/2.0/UDP 127.0.0.1:40000;branch={a.branch};rport\r\n" in text
    assert f"Call-ID: {a.call_id}\r\n" in text and "CSeq: 1 OPTIONS\r\n" in text
    assert text.endswith("Content-Length: 0\r\n\r\n")
    tcp = sm.build_options("sip:[::1]:5060", "TCP", "[::1]", 40000)
    assert "Via: SIP/2.0/TCP [::1]:40000;" in tcp.data.decode()


def answer(req: sm.OptionsRequest, status="200 OK", call_id=None, cseq=None, branch=None,
           compact=False) -> bytes:
    via = f"SIP/2.0/UDP 127.0.0.1:40000;branch={branch or req.branch};rport=40000"
    names = ("v", "i") if compact else ("Via", "Call-ID")
    return (f"SIP/2.0 {status}\r\n{names[0]}: {via}\r\n{names[1]}: {call_id or req.call_id}\r\n"
            f"CSeq: {cseq or '1 OPTIONS'}\r\nContent-Length: 0\r\n\r\n").encode()


def test_response_matching():
    req = sm.build_options("sip:x", "UDP", "127.0.0.1", 40000)
    assert sm.mismatch(sm.parse_response(answer(req)), req) is None
    assert sm.mismatch(sm.parse_response(answer(req, compact=True)), req) is None
    assert sm.mismatch(sm.parse_response(answer(req, call_id="other")), req) == "Call-ID mismatch"
    assert sm.mismatch(sm.parse_response(answer(req, cseq="2 OPTIONS")), req) == "CSeq mismatch"
    assert sm.mismatch(sm.parse_response(answer(req, cseq="1 INVITE")), req) == "CSeq mismatch"
    bad_branch = sm.parse_response(answer(req, branch="z9hG4bKother"))
    assert sm.mismatch(bad_branch, req) == "Via branch mismatch"


def test_parse_status_and_folding():
    r = sm.parse_response(b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1,\r\n"
                          b" SIP/2.0/UDP b;branch=z9hG4bK2\r\n\r\n")
    assert r.summary == "SIP 404 Not Found"
    assert r.top_via_branch == "z9hG4bK1"
    assert len(r.headers["via"]) == 2


@pytest.mark.parametrize("data", [b"", b"HTTP/1.1 200 OK\r\n\r\n", b"SIP/2.0 abc\r\n\r\n",
                                  b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n"])
def test_parse_rejects(data):
    with pytest.raises(sm.SipParseError):
        sm.parse_response(data)


def test_framing():
    msg = b"SIP/2.0 200 OK\r\nl: 4\r\n\r\nbody"
    assert sm.frame_length(msg[:-1]) is None
    assert sm.frame_length(msg + b"SIP/2.0") == len(msg)
    with pytest.raises(sm.SipParseError):
        sm.frame_length(b"SIP/2.0 200 OK\r\nContent-Length: 999999\r\n\r\n")
    with pytest.raises(sm.SipParseError):
        sm.frame_length(b"x" * 70000)


def test_a_bare_lf_head_ends_at_its_own_blank_line():
    """Found by tests/fuzz/test_sip.py: the head ended at the first CRLF blank line even when a
    bare-LF one came before it, so a bare-LF reply followed by a CRLF one (or a CRLF body) was
    framed as one message when both arrived together, and as two when they did not."""
    lf = b"SIP/2.0 100 Trying\nCSeq: 1 OPTIONS\n\n"
    crlf = b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    assert sm.frame_length(lf + crlf) == len(lf) == sm.frame_length(lf)
    body = b"v=0\r\n\r\nContent-Length: 5\r\n"
    assert sm.parse_response(b"SIP/2.0 200 OK\nContent-Length: 26\n\n" + body).headers["content-length"] == ["26"]


@given(st.binary(max_size=400))
def test_parser_never_raises_anything_else(data):
    for candidate in (data, b"SIP/2.0 200 OK\r\n" + data):
        try:
            sm.parse_response(candidate)
            sm.frame_length(candidate)
        except sm.SipParseError:
            pass


# --- kamailio -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kamailio_answers_options(kamailio, transport):
    port = kamailio(200, "OK")
    check = CheckConfig(type="sip", transport=transport)
    result = run(sip.probe(Target("127.0.0.1", port), check))
    assert result.ok and result.reason == "SIP 200 OK", result


@pytest.mark.parametrize(("code", "reason"), [(404, "Not Found"), (503, "Service Unavailable")])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kamailio_error_status_is_down(kamailio, code, reason, transport):
    port = kamailio(code, reason)
    check = CheckConfig(type="sip", transport=transport)
    result = run(sip.probe(Target("127.0.0.1", port), check))
    assert not result.ok and result.reason == f"SIP {code} {reason}", result


def test_kamailio_configurable_success_codes(kamailio):
    port = kamailio(404, "Not Found")
    check = CheckConfig(type="sip", expect_status=((200, 299), (404, 404)))
    assert run(sip.probe(Target("127.0.0.1", port), check)).ok


# --- adversaries ----------------------------------------------------------------------


class FakeSip(asyncio.DatagramProtocol):
    """Answers each OPTIONS with whatever `respond(request_bytes)` returns."""

    def __init__(self, respond):
        self.respond = respond
        self.seen = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.seen += 1
        for reply in self.respond(data):
            self.transport.sendto(reply, addr)


def reply_to(data: bytes, status="200 OK", call_id=None) -> bytes:
    text = data.decode()
    via = re.search(r"^Via: (.*)\r$", text, re.M).group(1)
    cid = call_id or re.search(r"^Call-ID: (.*)\r$", text, re.M).group(1)
    return (f"SIP/2.0 {status}\r\nVia: {via}\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


async def against_udp(respond, check):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: FakeSip(respond), local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        started = time.monotonic()
        result = await sip.probe(Target("127.0.0.1", port), check)
        assert time.monotonic() - started <= check.timeout + TICK
        return result, proto.seen
    finally:
        transport.close()


def test_udp_wrong_call_id_is_ignored():
    check = CheckConfig(type="sip", timeout=0.5)
    result, _ = run(against_udp(lambda d: [reply_to(d, call_id="forged@x")], check))
    assert not result.ok
    assert result.reason == ("timeout after 0.5s waiting for SIP response "
                             "(ignored 1 reply: Call-ID mismatch)")


def test_udp_provisional_then_final_and_strays():
    def respond(d):
        return [b"garbage", reply_to(d, call_id="stale@x"), reply_to(d, "100 Trying"),
                reply_to(d, "200 OK")]

    result, _ = run(against_udp(respond, CheckConfig(type="sip", timeout=1.0)))
    assert result.ok and result.reason == "SIP 200 OK"


def test_udp_silent_port_times_out_and_retransmits():
    check = CheckConfig(type="sip", timeout=1.0)
    result, seen = run(against_udp(lambda d: [], check))
    assert result.reason == "timeout after 1.0s waiting for SIP response"
    assert seen == 2  # the request and one retransmission at 500 ms


def test_udp_closed_port_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(sip.probe(Target("127.0.0.1", port), CheckConfig(type="sip", timeout=1.0)))
    assert result.reason == "connection refused (ICMP port unreachable)"


def test_tcp_hang_and_refused_and_garbage():
    check = CheckConfig(type="sip", transport="tcp", timeout=0.5)

    async def go(handler):
        async with adv.serve(handler) as port:
            return await sip.probe(Target("127.0.0.1", port), check)

    assert run(go(adv.hang)).reason == "timeout after 0.5s waiting for SIP response"
    result = run(sip.probe(Target("127.0.0.1", adv.closed_port()), check))
    assert result.reason == "connection refused"
    result = run(go(adv.reply(b"x" * 70000)))
    assert result.reason == "bad SIP response: no end of headers in 65535 bytes"
    result = run(go(adv.reply(b"HTTP/1.1 200 OK\r\n\r\n")))
    assert result.reason == ("timeout after 0.5s waiting for SIP response "
                             "(ignored 1 reply: unparsable)")
