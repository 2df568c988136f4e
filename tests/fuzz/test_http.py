"""HTTP replies (healthcheck.http_parse and the judge over it): a parse or an HttpParseError,
and the same outcome however the bytes are split into reads, as a socket splits them.

Seeds cover Content-Length, chunked (extensions, trailers, bare LF), close-delimited
bodies, interim 1xx responses and bodiless statuses; mutations repeat slices past the
head and chunk-line bounds.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from director.config.model import CheckConfig, HttpUrl
from healthcheck import http_parse as hp
from healthcheck._io import ProbeError
from healthcheck.http import HttpJudge, quick_judge
from healthcheck.http_depth import UrlJudge
from tests.fuzz.mutate import budget, chunked, drawn, mutate_bytes, pick

SEEDS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: x\r\n\r\n"
    b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\na\nok, ok, ok\n0\n\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 503 Service Unavailable\nServer: x\n\nbody until the connection closes",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nContent-Length: 3\r\nX-Empty:\r\n\r\nnope",
    b"HTTP/1.1 301\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    # just inside the bounds: a chunk extension, a trailer line, the head, the status line
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + b"e" * 1000 + b"\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX: " + b"t" * 1000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * (hp.MAX_HEAD - 60) + b"\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 500 " + b"r" * (hp.MAX_STATUS_LINE - 20) + b"\r\nContent-Length: 0\r\n\r\n",
]


def read(chunks: list[bytes], method: str = "GET") -> tuple[int, str, tuple, bytes, bool]:
    """What a reader gets from these reads and then the end of the stream: the final head
    (interim responses skipped) and its body, or HttpParseError."""
    buf, body, out = b"", None, []
    head = None
    for chunk in chunks:
        if body is not None:
            out.append(body.feed(chunk))
            continue
        buf += chunk
        while body is None and (parsed := hp.parse_head(buf)) is not None:
            head, used = parsed
            buf = buf[used:]
            if not 100 <= head.status < 200 or head.status == 101:
                body = hp.Body(head, method)
                out.append(body.feed(buf))
    if body is None or head is None:
        raise hp.HttpParseError("the stream ended inside the head")
    body.eof()
    return head.status, head.reason, head.headers, b"".join(out), body.done


def outcome(chunks: list[bytes], method: str = "GET") -> object:
    try:
        return read(chunks, method)
    except hp.HttpParseError:
        return "HttpParseError"


@st.composite
def replies(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A mutated reply and the reads it arrives in."""
    choose = drawn(draw)
    data = mutate_bytes(pick(choose, SEEDS), choose, SEEDS)
    return data, chunked(data, choose)


@budget(1800)
@given(replies(), st.sampled_from(["GET", "HEAD"]))
def test_a_reply_parses_the_same_however_it_is_split(reply: tuple[bytes, list[bytes]], method: str) -> None:
    data, chunks = reply
    assert outcome(chunks, method) == outcome([data], method)


@budget(1000)
@given(st.binary(max_size=300), st.data())
def test_random_bytes_parse_or_raise_http_parse_error(data: bytes, draw: st.DataObject) -> None:
    chunks = chunked(data, drawn(draw.draw))
    assert outcome(chunks) == outcome([data])


@budget(1500)
@given(replies())
def test_the_status_line_verdict_never_changes_as_more_arrives(reply: tuple[bytes, list[bytes]]) -> None:
    """A status-only check judges as soon as the first line is in: what it decided on a
    prefix (a status, or an error) must be what the whole reply says."""
    data, chunks = reply
    try:
        final: object = hp.parse_status_line(data)
    except hp.HttpParseError:
        final = "HttpParseError"
    buf = b""
    for chunk in chunks:
        buf += chunk
        try:
            early: object = hp.parse_status_line(buf)
        except hp.HttpParseError:
            early = "HttpParseError"
        if early is not None:
            assert early == final
            break


@budget(1500)
@given(replies())
def test_the_simple_path_agrees_with_the_general_one(reply: tuple[bytes, list[bytes]]) -> None:
    data, _ = reply
    simple = hp.parse_simple(data)
    if simple is None:
        return
    status, reason, _headers, body, done = read([data])
    assert (status, reason, body, done) == (*simple, True)


CHECKS = [CheckConfig(type="http"), CheckConfig(type="http", expect_body="ok", max_body=64),
          CheckConfig(type="http", expect_body="o+", max_body=4, expect_status=((200, 299), (404, 404))),
          CheckConfig(type="http", method="HEAD", expect_body="")]


def judged(check: CheckConfig, chunks: list[bytes]) -> object:
    """The judge's verdict on these reads then the end of the stream, or that it raised ProbeError."""
    judge = HttpJudge(check)
    try:
        for chunk in [*chunks, b""]:  # b"": the end of the stream
            verdict = judge.feed(chunk)
            if verdict is not None:
                return verdict
    except ProbeError:
        return "ProbeError"
    raise AssertionError("the judge gave no verdict at the end of the stream")


@budget(1500)
@given(replies(), st.sampled_from(CHECKS))
def test_the_judge_gives_a_verdict_or_a_probe_error(reply: tuple[bytes, list[bytes]], check: CheckConfig) -> None:
    """The judge, as the probes drive it; its quick path, when it answers, answers the same.

    Split into reads, the judge may decide on the first `max_body` bytes before it reads a
    fault further on, which one read of the whole reply raises at once: the one difference
    a split may make."""
    data, chunks = reply
    split, whole = judged(check, chunks), judged(check, [data] if data else [])
    assert split == whole or (whole == "ProbeError" and split != "ProbeError")
    quick = quick_judge(check)
    fast = quick(data) if quick is not None and data else None
    if fast is not None:
        assert fast == HttpJudge(check).feed(data)


def test_seeds_parse() -> None:
    """Unmutated, every seed is a reply the parser accepts whole."""
    assert [read([s])[0] for s in SEEDS] == [200, 200, 200, 204, 200, 503, 404, 301, 304, 200, 200, 200, 500]


URLS = [HttpUrl("/", digest="5d41402abc4b2a76b9719d911017c592"),  # md5("hello")
        HttpUrl("/", expect_body="ok", regex_no_match=True),
        HttpUrl("/", expect_body="o+", digest="0" * 32, expect_status=((200, 299), (404, 404)))]


def url_judged(url: HttpUrl, chunks: list[bytes], limit: int) -> object:
    """`http_depth.UrlJudge` on these reads then the end of the stream, or that it raised ProbeError."""
    judge = UrlJudge(url, "GET", limit)
    try:
        for chunk in [*chunks, b""]:
            verdict = judge.feed(chunk)
            if verdict is not None:
                assert isinstance(verdict[0], bool) and verdict[1]
                return verdict
    except ProbeError as exc:
        assert str(exc)
        return "ProbeError"
    raise AssertionError("the URL judge gave no verdict at the end of the stream")


@budget(1500)
@given(replies(), st.sampled_from(URLS), st.sampled_from([4, 64, 65536]))
def test_the_url_judge_decides_the_same_however_the_reply_is_split(reply: tuple[bytes, list[bytes]], url: HttpUrl,
                                                                   limit: int) -> None:
    """A digest needs the whole body and regex_no_match the whole bounded body, so the URL
    judge decides at the end of the body: the same verdict for any split of the reads, except
    that a split may let it decide before a fault further on that one read raises at once."""
    data, chunks = reply
    split, whole = url_judged(url, chunks, limit), url_judged(url, [data] if data else [], limit)
    assert split == whole or (whole == "ProbeError" and split != "ProbeError")
