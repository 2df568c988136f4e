"""RADIUS probe: an Access-Request for `login`/`passwd` signed with `secret`, over UDP,
retransmitted (same identifier and authenticator, RFC 2865 2.5) at 1 s, doubling, inside the
one deadline. Up on an Access-Accept whose Response Authenticator proves the secret; an
Access-Reject is "access rejected"; an ICMP port unreachable is "connection refused".
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from healthcheck import radius_wire as rw
from healthcheck._io import Phase, ProbeError, Verdict, new_socket, run_probe
from healthcheck._session import password, secret
from healthcheck.result import ProbeResult, Target

if TYPE_CHECKING:
    from director.config.model import CheckConfig

RETRANSMIT = 1.0


async def probe(target: Target, check: CheckConfig) -> ProbeResult:
    return await run_probe(check, lambda phase: _check(target, check, phase))


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue(maxsize=16)

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.queue.full():
            self.queue.put_nowait(data[: rw.MAX_PACKET])

    def error_received(self, exc: Exception) -> None:
        if not self.queue.full():
            self.queue.put_nowait(exc)


def verdict(reply: rw.Reply, user: str) -> Verdict:
    said = f": {reply.message!r}" if reply.message else ""
    if reply.code == rw.ACCESS_ACCEPT:
        return True, f"Access-Accept for {user}{said}"
    if reply.code == rw.ACCESS_REJECT:
        return False, f"access rejected for {user}{said}"
    return False, f"Access-Challenge for {user} (a challenge-response login is not supported){said}"


async def _check(target: Target, check: CheckConfig, phase: Phase) -> Verdict:
    key = secret(check).encode()
    user = check.login or ""
    request = rw.access_request(user, password(check), key)
    loop = asyncio.get_running_loop()
    sock = new_socket(target, socket.SOCK_DGRAM, check)
    try:
        sock.connect((target.address, target.port))
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        phase.name = "waiting for the RADIUS reply"
        wait = RETRANSMIT
        transport.sendto(request.data)
        while True:
            try:
                item = await asyncio.wait_for(proto.queue.get(), wait)
            except TimeoutError:
                transport.sendto(request.data)
                wait *= 2
                continue
            if isinstance(item, ConnectionRefusedError):
                return False, "connection refused (ICMP port unreachable)"
            if isinstance(item, Exception):
                raise item
            try:
                reply = rw.parse_reply(item, request, key)
            except rw.RadiusError as exc:
                raise ProbeError(str(exc)) from None
            if reply is not None:
                return verdict(reply, user)
    finally:
        transport.abort()
