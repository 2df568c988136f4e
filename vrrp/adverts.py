"""Sending adverts: one instance's route, and the farewell a stop signal sends.

A master's priority-0 advert is encoded while it is master, so that a stop signal
can send it at once from the signal thread (`vrrp.stop_signals`), before the event
loop hears of the stop. An instance that said farewell sends nothing more: another
priority 0 would restart the backup's Skew_Time, and a normal advert would cancel
the hand-over. An AH instance's farewell is sealed when it is sent (one HMAC, microseconds):
sealed in advance, its sequence number would be older than the adverts sent since, and the
peer would drop it as a replay.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, replace

import structlog

from vrrp import ah, codec
from vrrp.counters import Counters
from vrrp.fsm import SHUTDOWN_PRIORITY
from vrrp.sockets import VrrpSocket

log = structlog.get_logger("vrrp")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Packets = tuple[tuple[bytes, IPAddress], ...]  # payload, destination


@dataclass(frozen=True)
class Route:
    """Where and how one instance's adverts go; equal routes encode alike, except that a
    route with an AH `session` numbers each packet it seals."""

    sock: VrrpSocket
    src: IPAddress
    dsts: tuple[IPAddress, ...]
    checksum_as_v2: bool = False
    auth_type: int = codec.AUTH_NONE
    auth_data: bytes = b""  # the 8-byte password (PASS) or AH key
    session: ah.Session | None = None

    def encode(self, advert: codec.Advert) -> Packets:
        return tuple((self._encode(advert, dst), dst) for dst in self.dsts)

    def _encode(self, advert: codec.Advert, dst: IPAddress) -> bytes:
        message = codec.encode(advert, self.src, dst, checksum_as_v2=self.checksum_as_v2,
                               auth_type=self.auth_type, auth_data=self.auth_data)
        if self.session is None:
            return message
        assert isinstance(self.src, ipaddress.IPv4Address) and isinstance(dst, ipaddress.IPv4Address)
        return self.session.seal(message, self.src, dst, self.auth_data)


@dataclass(frozen=True)
class _Farewell:
    advert: codec.Advert
    route: Route
    packets: Packets
    counters: Counters


class Advertiser:
    """Every instance's advert sending. Thread-safe where it has to be: `farewell`
    runs on the signal thread, everything else on the event loop."""

    def __init__(self) -> None:
        # Replaced, never changed, so the signal thread reads a consistent dict.
        self._farewells: dict[str, _Farewell] = {}
        self._silent: set[str] = set()  # instances that said farewell
        self._lock = threading.Lock()  # no advert of theirs may follow a farewell

    def send(self, name: str, route: Route, advert: codec.Advert, counters: Counters, master: bool) -> None:
        """Send one advert (unless the instance said farewell); a master's normal
        advert also readies its farewell."""
        with self._lock:
            if name in self._silent:
                return
            send_all(name, route, route.encode(advert), counters)
        if master and advert.priority != SHUTDOWN_PRIORITY:
            self._ready(name, route, replace(advert, priority=SHUTDOWN_PRIORITY), counters)

    def farewell(self) -> None:
        """Send every master's priority 0 now; those instances stay silent from now on."""
        with self._lock:
            for name, farewell in self._farewells.items():
                packets = farewell.route.encode(farewell.advert) if farewell.route.session else farewell.packets
                send_all(name, farewell.route, packets, farewell.counters)
                self._silent.add(name)

    def forget(self, name: str) -> None:
        """The instance is no longer master: it has no farewell to say."""
        if name in self._farewells:
            self._farewells = {k: v for k, v in self._farewells.items() if k != name}

    def _ready(self, name: str, route: Route, advert: codec.Advert, counters: Counters) -> None:
        current = self._farewells.get(name)
        if current is not None and (current.advert, current.route) == (advert, route):
            return  # encoded once per change, not once per advert
        packets = () if route.session else route.encode(advert)  # sealed when sent
        farewell = _Farewell(advert, route, packets, counters)
        self._farewells = {**self._farewells, name: farewell}


def send_all(name: str, route: Route, packets: Packets, counters: Counters) -> None:
    for payload, dst in packets:
        try:
            route.sock.send(payload, route.src, dst)
            counters.adverts_sent += 1
        except OSError as exc:
            counters.send_errors += 1
            log.debug("advert send failed", instance=name, error=str(exc))
