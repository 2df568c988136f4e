"""The sans-IO HTTP response parser, checked against h11 as an independent reference."""

from __future__ import annotations

import contextlib

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcheck import http_parse as hp


def parse_all(data: bytes, method: str = "GET", split: int | None = None):
    """(head, body) feeding `data` in two pieces, as a socket might deliver it."""
    parts = [data] if split is None else [data[:split], data[split:]]
    buf, head, body, out = b"", None, None, b""
    for part in parts:
        if head is None:
            buf += part
            parsed = hp.parse_head(buf)
            if parsed is None:
                continue
            head, used = parsed
            body = hp.Body(head, method)
            out += body.feed(buf[used:])
        else:
            out += body.feed(part)
    if body is not None:
        body.eof()
    return head, out


def test_simple_response():
    head, body = parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A:  b \r\n\r\nokEXTRA")
    assert head.status == 200 and head.summary == "200 OK" and body == b"ok"
    assert head.get(b"x-a") == [b"b"]


def test_no_reason_bare_lf_and_close_framing():
    head, body = parse_all(b"HTTP/1.0 503\nServer: x\n\nall of it")
    assert head.summary == "503" and body == b"all of it"


def test_chunked_split_everywhere():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n3\r\n!!!\r\n0\r\nT: 1\r\n\r\n"
    for i in range(len(data)):
        _head, body = parse_all(data, split=i)
        assert body == b"ok!!!", i


CHUNKED = hp.Head(200, "OK", ((b"transfer-encoding", b"chunked"),))


def feed_bytewise(data: bytes) -> tuple[bytes, hp.Body]:
    """A chunked body fed one byte at a time: every state must wait for the rest."""
    body = hp.Body(CHUNKED, "GET")
    return b"".join(body.feed(data[i : i + 1]) for i in range(len(data))), body


def test_chunked_line_ends_may_be_bare_lf_or_split_in_the_middle():
    body = hp.Body(CHUNKED, "GET")
    assert body.feed(b"2\r\nok\r") == b"ok" and not body.done  # CR now, LF in the next read
    assert body.feed(b"\n3\n!!!\n0\nTrailer: x\n\n") == b"!!!" and body.done
    assert feed_bytewise(b"2\nok\n0\r\n\r\n")[0] == b"ok"


@pytest.mark.parametrize(("data", "message"), [
    (b"zz\r\n", "bad chunk size line"),
    (b"1" * (hp.MAX_CHUNK_LINE + 2), "bad chunk size line"),
    (b"2\r\nokXX", "missing CRLF after chunk data"),
    (b"0\r\n" + b"T" * (hp.MAX_CHUNK_LINE + 2), "chunked trailer too long"),
])
def test_chunked_faults_are_named_however_the_bytes_arrive(data: bytes, message: str):
    with pytest.raises(hp.HttpParseError, match=message):
        hp.Body(CHUNKED, "GET").feed(data)
    with pytest.raises(hp.HttpParseError, match=message):
        feed_bytewise(data)


@pytest.mark.parametrize(("data", "message"), [
    (b"2;" + b"e" * hp.MAX_CHUNK_LINE + b"\r\nok\r\n0\r\n\r\n", "bad chunk size line"),
    (b"2\r\nok\r\n0\r\nX: " + b"t" * hp.MAX_CHUNK_LINE + b"\r\n\r\n", "chunked trailer too long"),
])
def test_a_chunk_line_over_the_bound_is_refused_even_when_it_arrives_whole(data: bytes, message: str):
    """Found by tests/fuzz/test_http.py: a size or trailer line over MAX_CHUNK_LINE was refused
    when split into reads, yet accepted when one read held it all (the verdict hung on timing)."""
    with pytest.raises(hp.HttpParseError, match=message):
        hp.Body(CHUNKED, "GET").feed(data)
    with pytest.raises(hp.HttpParseError, match=message):
        feed_bytewise(data)


def test_head_and_204_have_no_body():
    assert parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method="HEAD")[1] == b""
    assert parse_all(b"HTTP/1.1 204 No Content\r\n\r\n")[1] == b""


@pytest.mark.parametrize("data", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 999999 Huh\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
    b"HTTP/2 200\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi",  # ended early
    b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nok",  # int() refuses it: ValueError
])
def test_rejects(data):
    with pytest.raises(hp.HttpParseError):
        parse_all(data)


def test_head_bound_and_early_status_line_verdict():
    with pytest.raises(hp.HttpParseError, match="exceeds"):
        hp.parse_head(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 5000)
    with pytest.raises(hp.HttpParseError, match="illegal status line"):
        hp.parse_head(b"garbage")
    assert hp.parse_head(b"HTTP/1.1 200 OK\r\nX: y\r\n") is None


def test_status_line_alone():
    assert hp.parse_status_line(b"HTTP/1.1 200 OK\r\nrest") == (200, "OK")
    assert hp.parse_status_line(b"HTTP/1.0 503\n") == (503, "")
    assert hp.parse_status_line(b"HTTP/1.1 20") is None
    for bad in (b"SSH-2.0\r\n", b"HTTP/1.1 2000 OK\r\n", b"garbage", b"HTTP/1.1 200 " + b"x" * 2000):
        with pytest.raises(hp.HttpParseError, match="illegal status line"):
            hp.parse_status_line(bad)


def test_build_request_refuses_injection():
    assert hp.build_request("GET", "/h", "a:80", "ua").startswith(b"GET /h HTTP/1.1\r\nHost: a:80\r\n")
    for args in [("GET X", "/", "a"), ("GET", "/\r\nX: y", "a"), ("GET", "/", "a\r\nX: y"),
                 ("GET", "noslash", "a")]:
        with pytest.raises(ValueError):
            hp.build_request(*args, "ua")


@given(st.binary(max_size=300), st.integers(0, 300))
def test_never_raises_anything_else(data, split):
    for candidate in (data, b"HTTP/1.1 200 OK\r\n" + data):
        with contextlib.suppress(hp.HttpParseError):
            parse_all(candidate, split=min(split, len(candidate)))


token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
value = st.text("abcdefghijklmnopqrstuvwxyz0123456789 /;=", max_size=20).map(str.strip)


@st.composite
def responses(draw):
    status = draw(st.sampled_from([200, 201, 301, 404, 500, 503]))
    reason = draw(st.sampled_from(["OK", "Not Found", "", "Whatever it is"]))
    headers = draw(st.lists(st.tuples(token, value), max_size=5))
    headers = [(k, v) for k, v in headers
               if k.lower() not in ("content-length", "transfer-encoding")]
    body = draw(st.binary(max_size=200))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    head = f"HTTP/1.1 {status} {reason}".rstrip() + "\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    if framing == "length":
        head += f"Content-Length: {len(body)}\r\n"
        payload = body
    elif framing == "chunked":
        head += "Transfer-Encoding: chunked\r\n"
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        payload = body
    return (head + "\r\n").encode() + payload, draw(st.integers(0, 400))


def h11_parse(data: bytes):
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    conn.receive_data(b"")
    status, body = None, b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, body


@given(responses())
def test_agrees_with_h11(case):
    data, split = case
    head, body = parse_all(data, split=min(split, len(data)))
    assert (head.status, body) == h11_parse(data)


@given(responses())
def test_simple_path_agrees_with_the_general_one(case):
    data, _split = case
    head, body = parse_all(data)
    simple = hp.parse_simple(data)
    if b"Content-Length" in data and head.status not in (204, 304):
        assert simple == (head.status, head.reason, body)
    else:
        assert simple is None


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi",  # incomplete
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 3000 + b"Content-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nok",
])
def test_simple_path_leaves_the_rest_to_the_general_one(data):
    assert hp.parse_simple(data) is None


def test_simple_path():
    data = b"HTTP/1.1 200 OK\r\nX-Content-Length: 9\r\ncontent-length:  2 \r\n\r\nokMORE"
    assert hp.parse_simple(data) == (200, "OK", b"ok")
