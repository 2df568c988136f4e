"""The runtime's I/O parts, with fake sockets: advert sending and the stop signal's
farewell, the GARP announcer's schedule, and the tracked objects' keys."""

from __future__ import annotations

import asyncio
import ipaddress
from types import SimpleNamespace
from typing import Any

from director.config.model import GarpConfig, TrackInterface, TrackVirtualServer, VrrpInstanceConfig
from vrrp import codec, tracking
from vrrp.adverts import Advertiser, Route
from vrrp.counters import Counters
from vrrp.garp import Announcer
from vrrp.rtnl import LinkInfo

SRC = ipaddress.IPv4Address("192.0.2.2")
VIP = ipaddress.IPv4Address("192.0.2.10")


class FakeSock:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any, Any]] = []

    def send(self, payload: bytes, src: Any, dst: Any, ttl: int = 255) -> None:
        self.sent.append((payload, src, dst))


def priorities(sock: FakeSock) -> list[int]:
    return [codec.decode(p, src=src, dst=dst, ttl=255).priority for p, src, dst in sock.sent]


def advert(priority: int) -> codec.Advert:
    return codec.Advert(3, 51, priority, 100, (VIP,))


def test_a_master_readies_its_farewell_and_is_silent_after_saying_it() -> None:
    sock, counters, out = FakeSock(), Counters(), Advertiser()
    route = Route(sock, SRC, (codec.MCAST_V4,))  # type: ignore[arg-type]
    out.send("VI_1", route, advert(150), counters, master=True)
    out.farewell()  # the stop signal's thread
    out.send("VI_1", route, advert(150), counters, master=True)  # the loop, a moment later
    out.send("VI_1", route, advert(0), counters, master=False)
    assert priorities(sock) == [150, 0]
    assert counters.adverts_sent == 2


def test_no_farewell_for_an_instance_that_is_not_master_or_no_longer() -> None:
    sock, counters, out = FakeSock(), Counters(), Advertiser()
    route = Route(sock, SRC, (codec.MCAST_V4,))  # type: ignore[arg-type]
    out.send("backup", route, advert(100), counters, master=False)
    out.send("former", route, advert(200), counters, master=True)
    out.forget("former")  # it went backup
    out.farewell()
    assert priorities(sock) == [100, 200]
    out.send("former", route, advert(200), counters, master=True)  # not silenced: it had nothing to say
    assert priorities(sock) == [100, 200, 200]


def test_a_failed_send_is_counted_not_raised() -> None:
    class Refusing(FakeSock):
        def send(self, payload: bytes, src: Any, dst: Any, ttl: int = 255) -> None:
            raise OSError("no route")

    counters = Counters()
    Advertiser().send("VI_1", Route(Refusing(), SRC, (codec.MCAST_V4,)), advert(100), counters,  # type: ignore[arg-type]
                      master=False)
    assert (counters.adverts_sent, counters.send_errors) == (0, 1)


class FakeSender:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def test_announcer_bursts_then_refreshes_only_while_master() -> None:
    target = SimpleNamespace(garp=GarpConfig(repeat=3, interval=0.02, delay=0, refresh=0.3), is_master=True,
                             counters=Counters(), garp_frames=lambda: [b"arp"], device_frames=lambda: [])

    async def scenario() -> list[int]:
        sender = FakeSender()
        announcer = Announcer(sender)  # type: ignore[arg-type]
        announcer.start(asyncio.get_running_loop(), target)  # type: ignore[arg-type]
        seen = [len(sender.frames)]  # one round at once
        await asyncio.sleep(0.15)
        seen.append(len(sender.frames))  # and the two repeats
        while len(sender.frames) < 4:  # the first refresh
            await asyncio.sleep(0.01)
        target.is_master = False
        await asyncio.sleep(0.7)
        seen.append(len(sender.frames))  # refreshes skip a non-master
        announcer.close()
        assert sender.closed
        return seen

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [1, 3, 4]
    assert target.counters.garps_sent == 4


def announced(garp: GarpConfig, lower_prio: bool, wait: float) -> list[float]:
    """When each round of one announcement went, in seconds after it started."""
    target = SimpleNamespace(garp=garp, is_master=True, counters=Counters(), garp_frames=lambda: [b"arp"],
                             device_frames=lambda: [])

    async def scenario() -> list[float]:
        sender, times = FakeSender(), []
        start = asyncio.get_running_loop().time()
        sender.send = lambda frame: times.append(round(asyncio.get_running_loop().time() - start, 1))  # type: ignore
        announcer = Announcer(sender)  # type: ignore[arg-type]
        announcer.start(asyncio.get_running_loop(), target, lower_prio=lower_prio)  # type: ignore[arg-type]
        await asyncio.sleep(wait)
        announcer.close()
        return times

    return asyncio.run(scenario())


def test_a_second_burst_follows_after_the_delay_as_keepalived_sends_it() -> None:
    assert announced(GarpConfig(repeat=2, interval=0.1, delay=0.5), False, 0.9) == [0.0, 0.1, 0.5, 0.6]
    assert announced(GarpConfig(repeat=2, interval=0.1, delay=0), False, 0.9) == [0.0, 0.1]


def test_a_rival_of_lower_priority_gets_its_own_repeat_and_delay() -> None:
    garp = GarpConfig(repeat=3, interval=0.1, delay=0.5, lower_prio_repeat=1, lower_prio_delay=0.3)
    assert announced(garp, True, 0.9) == [0.0, 0.3]
    assert announced(GarpConfig(repeat=1, delay=0.3), True, 0.5) == [0.0, 0.3]  # unset: repeat and delay
    assert announced(GarpConfig(lower_prio_repeat=0), True, 0.3) == []


def test_each_refresh_sends_refresh_repeat_rounds() -> None:
    garp = GarpConfig(repeat=1, delay=0, interval=0.1, refresh=0.4, refresh_repeat=2)
    assert announced(garp, False, 0.95) == [0.0, 0.4, 0.5, 0.8, 0.9]


def cfg(**kw: Any) -> VrrpInstanceConfig:
    return VrrpInstanceConfig(**{"name": "VI_1", "interface": "eth0", "vrid": 51, **kw})


def test_tracking_names_every_tracked_object_once() -> None:
    c = cfg(track_interfaces=(TrackInterface("eth1", -50),),
            track_virtual_servers=(TrackVirtualServer("web", -100), TrackVirtualServer("db", 0)))
    assert tracking.keys(c) == {"iface:eth0", "track:eth1", "vs:web", "vs:db"}
    assert tracking.link_names([c, cfg(interface="eth2")]) == {"eth0", "eth1", "eth2"}


def test_tracking_links_missing_is_down_and_the_own_link_weighs_zero() -> None:
    c = cfg(track_interfaces=(TrackInterface("eth1", -50),))
    up = LinkInfo(index=2, name="eth0", up=True, mac=b"\x02" * 6)
    assert tracking.links(c, {"eth0": up}) == [("iface:eth0", 0, True), ("track:eth1", -50, False)]


def test_an_untracked_own_interface_is_never_down() -> None:
    down = LinkInfo(index=2, name="eth0", up=False, mac=b"\x02" * 6)
    assert tracking.links(cfg(), {"eth0": down}) == [("iface:eth0", 0, False)]
    assert tracking.links(cfg(track_own_interface=False), {"eth0": down}) == [("iface:eth0", 0, True)]


def test_tracking_virtual_servers_hold_quorum_until_heard_otherwise() -> None:
    c = cfg(track_virtual_servers=(TrackVirtualServer("web", -100), TrackVirtualServer("db", 0)))
    assert tracking.virtual_servers(c, {"db": False}) == [("vs:web", -100, True), ("vs:db", 0, False)]
    assert tracking.virtual_servers(c, {"db": False}, only="db") == [("vs:db", 0, False)]
    assert tracking.virtual_servers(c, {}, only="mail") == []
