"""SIP OPTIONS, sans-IO: build a request, frame and parse a response, match it (RFC 3261).

No sockets here. The probe owns the transport; this module turns ids into bytes and
bytes into a verdict-ready `SipResponse`, raising `SipParseError` on anything that
is not a well-formed SIP response.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: branches starting with this are unique
MAX_MESSAGE = 65535
# RFC 3261 §7.3.3 compact header names.
COMPACT = {"i": "call-id", "v": "via", "l": "content-length", "f": "from", "t": "to",
           "m": "contact", "c": "content-type", "k": "supported", "s": "subject"}
_STATUS_LINE = re.compile(rb"SIP/2\.0 ([1-6]\d\d) ?([^\r\n]*)")
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)


class SipParseError(ValueError):
    """The bytes are not a SIP response we can read."""


@dataclass(frozen=True, slots=True)
class OptionsRequest:
    data: bytes
    call_id: str
    cseq: int
    branch: str


@dataclass(frozen=True, slots=True)
class SipResponse:
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def top_via_branch(self) -> str | None:
        via = self.header("via")
        if via is None:
            return None
        m = _BRANCH.search(via.split(",", 1)[0])
        return m.group(1) if m else None

    @property
    def summary(self) -> str:
        return f"SIP {self.status} {self.reason}".rstrip()


def build_options(
    uri: str,
    transport: str,
    local_host: str,
    local_port: int,
    *,
    call_id: str | None = None,
    branch: str | None = None,
    from_tag: str | None = None,
    cseq: int = 1,
) -> OptionsRequest:
    """A fresh OPTIONS: new branch, Call-ID and tag unless given (tests pin them)."""
    branch = branch or MAGIC_COOKIE + secrets.token_hex(8)
    call_id = call_id or f"{secrets.token_hex(12)}@{local_host.strip('[]')}"
    from_tag = from_tag or secrets.token_hex(6)
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {local_host}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:directord@{local_host}>;tag={from_tag}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} OPTIONS",
        f"Contact: <sip:directord@{local_host}:{local_port};transport={transport.lower()}>",
        "Accept: application/sdp",
        "User-Agent: directord-healthcheck",
        "Content-Length: 0",
        "",
        "",
    ]
    return OptionsRequest("\r\n".join(lines).encode("utf-8"), call_id, cseq, branch)


def _head_end(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(end of headers, separator length) at the first blank line, CRLF or bare LF: a CRLF
    one further on (in a body, or the next message) must not decide where this head ends,
    or the framing would depend on how much of the stream has arrived."""
    found = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep)) >= 0]
    return min(found) if found else None


def frame_length(buf: bytes | bytearray, limit: int = MAX_MESSAGE) -> int | None:
    """Stream framing (TCP): the whole message's length once known, else None."""
    found = _head_end(buf)
    if found is None:
        if len(buf) > limit:
            raise SipParseError(f"no end of headers in {limit} bytes")
        return None
    end, sep = found
    length = 0
    for line in _unfold(bytes(buf[:end]))[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if COMPACT.get(name, name) == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise SipParseError(f"bad Content-Length {value.strip()!r}") from None
            if length < 0:
                raise SipParseError(f"bad Content-Length {length}")
    total = end + sep + length
    if total > limit:
        raise SipParseError(f"message of {total} bytes exceeds {limit}")
    return total if len(buf) >= total else None


def _unfold(head: bytes) -> list[str]:
    text = head.decode("utf-8", "replace")
    lines: list[str] = []
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def parse_response(data: bytes | bytearray) -> SipResponse:
    """Parse one SIP response (a datagram, or a framed message from a stream)."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    found = _head_end(data)
    head = bytes(data[: found[0]]) if found else bytes(data)
    m = _STATUS_LINE.match(head)
    if m is None:
        first = head.split(b"\n", 1)[0][:60]
        raise SipParseError(f"not a SIP response: {first!r}")
    headers: dict[str, list[str]] = {}
    for line in _unfold(head)[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipParseError(f"bad header line {line[:60]!r}")
        key = name.strip().lower()
        key = COMPACT.get(key, key)
        headers.setdefault(key, []).extend(_split_values(key, value.strip()))
    reason = m.group(2).decode("utf-8", "replace").strip()
    return SipResponse(int(m.group(1)), reason, headers)


def _split_values(key: str, value: str) -> list[str]:
    return [v.strip() for v in value.split(",")] if key == "via" else [value]


def mismatch(response: SipResponse, request: OptionsRequest) -> str | None:
    """Why this response is not the answer to `request` (None: it is).

    RFC 3261 §17.1.3 matches on the top Via branch and the CSeq method; the Call-ID
    and CSeq number are checked too, so a stray or stale reply never counts.
    """
    if response.header("call-id") != request.call_id:
        return "Call-ID mismatch"
    cseq = (response.header("cseq") or "").split()
    if len(cseq) != 2 or cseq[1].upper() != "OPTIONS" or cseq[0] != str(request.cseq):
        return "CSeq mismatch"
    if response.top_via_branch != request.branch:
        return "Via branch mismatch"
    return None
