"""SIP replies (healthcheck.sip_message): a SipResponse or a SipParseError, nothing else, and
stream framing that does not depend on how TCP splits the bytes.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from healthcheck import sip_message as sm
from tests.fuzz.mutate import budget, chunked, drawn, fuzzed, mutate_bytes, pick

REQUEST = sm.build_options("sip:192.0.2.20:5060", "tcp", "192.0.2.1", 5070, call_id="c1@192.0.2.1",
                           branch="z9hG4bKfuzz", from_tag="t1")
VIA = "Via: SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bKfuzz;rport=5070;received=192.0.2.1"
SEEDS = [
    "\r\n".join(["SIP/2.0 200 OK", VIA, "From: <sip:directord@192.0.2.1>;tag=t1", "To: <sip:x>;tag=9",
                 "Call-ID: c1@192.0.2.1", "CSeq: 1 OPTIONS", "Content-Length: 0", "", ""]).encode(),
    "\r\n".join(["SIP/2.0 180 Ringing", "v: SIP/2.0/UDP a;branch=z9hG4bKother, SIP/2.0/UDP b;branch=x",
                 "i: c1@192.0.2.1", "CSeq: 1 OPTIONS", "l: 0", "", ""]).encode(),
    "\r\n".join(["SIP/2.0 404 Not Found", VIA, "Call-ID: c1@192.0.2.1", "CSeq: 1 OPTIONS",
                 "Subject: folded", " over two lines", "Content-Type: application/sdp", "Content-Length: 12",
                 "", "v=0\r\no=- 1 1"]).encode(),
    "\n".join(["SIP/2.0 503 Service Unavailable", VIA, "Call-ID: c1@192.0.2.1", "CSeq: 1 OPTIONS",
               "Retry-After: 5", "", ""]).encode(),
]
STREAMS = [SEEDS[0] + SEEDS[2], SEEDS[1] + b"\r\n" + SEEDS[0], SEEDS[3] + SEEDS[3]]


def check(data: bytes) -> None:
    try:
        response = sm.parse_response(data)
    except sm.SipParseError:
        return
    assert 100 <= response.status <= 699
    assert sm.mismatch(response, REQUEST) in (None, "Call-ID mismatch", "CSeq mismatch", "Via branch mismatch")
    assert response.summary.startswith(f"SIP {response.status}")
    assert response.top_via_branch is None or isinstance(response.top_via_branch, str)


@budget(1800)
@given(fuzzed(SEEDS + STREAMS, max_size=400))
def test_replies_parse_or_raise_sip_parse_error(data: bytes) -> None:
    check(data)


def framed(buf: bytes) -> object:
    try:
        return sm.frame_length(buf)
    except sm.SipParseError:
        return "SipParseError"


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    choose = drawn(draw)
    data = mutate_bytes(pick(choose, STREAMS + SEEDS), choose, SEEDS)
    return data, chunked(data, choose)


@budget(1500)
@given(streams())
def test_stream_framing_does_not_depend_on_how_the_bytes_arrive(stream: tuple[bytes, list[bytes]]) -> None:
    """The first message's length, decided on the reads so far, is what the whole stream says."""
    data, chunks = stream
    final = framed(data)
    buf = b""
    for chunk in chunks:
        buf += chunk
        early = framed(buf)
        if early is not None:
            assert early == final
            break
    if isinstance(final, int):
        check(data[:final])


def test_seeds_are_answers_to_the_request() -> None:
    """Unmutated, the seeds parse, and the first is the answer to the request."""
    responses = [sm.parse_response(s) for s in SEEDS]
    assert [r.status for r in responses] == [200, 180, 404, 503]
    assert sm.mismatch(responses[0], REQUEST) is None
    assert [framed(s) for s in STREAMS] == [len(SEEDS[0]), len(SEEDS[1]), len(SEEDS[3])]
