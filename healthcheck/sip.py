"""SIP probe: OPTIONS over UDP or TCP; up when the matching final response's status
is in `expect_status` (default 200).

UDP requests are retransmitted on RFC 3261 timer A (500 ms, doubling) inside the
one deadline. Replies that do not match the request (Call-ID, CSeq, branch) are
ignored and counted, and the count shows in the reason if the deadline passes.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from healthcheck import sip_message as sm
from healthcheck._io import Phase, ProbeError, Verdict, new_socket, open_stream, run_probe
from healthcheck.result import ProbeResult, Target, status_in

if TYPE_CHECKING:
    from director.config.model import CheckConfig

T1 = 0.5


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    ignored: list[str] = []
    result = await run_probe(check, lambda phase: _check(target, check, phase, ignored))
    if ignored and result.reason.startswith("timeout"):
        kinds = ", ".join(sorted(set(ignored)))
        n = len(ignored)
        reason = f"{result.reason} (ignored {n} repl{'y' if n == 1 else 'ies'}: {kinds})"
        return ProbeResult(False, result.latency, reason)
    return result


def request_uri(target: Target, check: CheckConfig) -> str:
    if check.sip_uri:
        return check.sip_uri
    suffix = ";transport=tcp" if check.transport == "tcp" else ""
    return f"sip:{target.endpoint}{suffix}"


def _local(sock_or_addr) -> tuple[str, int]:
    host, port = sock_or_addr[:2]
    return (f"[{host}]" if ":" in host else host), port


def verdict(response: sm.SipResponse, check: CheckConfig) -> Verdict:
    return status_in(response.status, check.expect_status), response.summary


def judge(data: bytes, request: sm.OptionsRequest, ignored: list[str]) -> sm.SipResponse | None:
    """A final response to `request`, or None (unparsable, stray or provisional)."""
    try:
        response = sm.parse_response(data)
    except sm.SipParseError:
        ignored.append("unparsable")
        return None
    why = sm.mismatch(response, request)
    if why:
        ignored.append(why)
        return None
    return response if response.status >= 200 else None


async def _check(target: Target, check: CheckConfig, phase: Phase, ignored: list[str]) -> Verdict:
    if check.transport == "tcp":
        return await _over_tcp(target, check, phase, ignored)
    return await _over_udp(target, check, phase, ignored)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue(maxsize=64)

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.queue.full():
            self.queue.put_nowait(data[: sm.MAX_MESSAGE + 1])

    def error_received(self, exc: Exception) -> None:
        if not self.queue.full():
            self.queue.put_nowait(exc)


async def _over_udp(target: Target, check: CheckConfig, phase: Phase, ignored: list[str]) -> Verdict:
    loop = asyncio.get_running_loop()
    sock = new_socket(target, socket.SOCK_DGRAM, check)
    try:
        sock.connect((target.address, target.port))  # UDP: no handshake, never blocks
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        host, port = _local(transport.get_extra_info("sockname"))
        request = sm.build_options(request_uri(target, check), "UDP", host, port)
        phase.name = "waiting for SIP response"
        wait = T1
        transport.sendto(request.data)
        while True:
            try:
                item = await asyncio.wait_for(proto.queue.get(), wait)
            except TimeoutError:
                transport.sendto(request.data)  # retransmit, same branch
                wait *= 2
                continue
            if isinstance(item, ConnectionRefusedError):
                return False, "connection refused (ICMP port unreachable)"
            if isinstance(item, Exception):
                raise item
            response = judge(item, request, ignored)
            if response is not None:
                return verdict(response, check)
    finally:
        transport.abort()


async def _over_tcp(target: Target, check: CheckConfig, phase: Phase, ignored: list[str]) -> Verdict:
    stream = await open_stream(target, phase, sm.MAX_MESSAGE, source=check)
    try:
        host, port = _local(stream.sockname())
        request = sm.build_options(request_uri(target, check), "TCP", host, port)
        phase.name = "sending request"
        await stream.write(request.data)
        phase.name = "waiting for SIP response"
        buf = bytearray()
        while True:
            data = await stream.read()
            if not data:
                return False, "connection closed before a SIP response"
            buf += data
            buf = bytearray(buf.lstrip(b"\r\n"))  # CRLF keep-alives between messages
            while (length := _frame(buf)) is not None:
                message, buf = bytes(buf[:length]), buf[length:]
                response = judge(message, request, ignored)
                if response is not None:
                    return verdict(response, check)
    finally:
        stream.close()


def _frame(buf: bytearray) -> int | None:
    try:
        return sm.frame_length(buf)
    except sm.SipParseError as exc:
        raise ProbeError(f"bad SIP response: {exc}") from None
