"""The parent-child VRRP channel: typed messages round trip, a cut frame is the end of
the stream, an oversized frame breaks the channel before it is read, and a malformed
or unknown frame is counted and skipped; requests and replies end to end, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import pickle
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from director.config.load import parse_config
from director.config.model import (
    GarpConfig,
    TrackFile,
    TrackInterface,
    TrackProcess,
    TrackScript,
    TrackVirtualServer,
    VrrpInstanceConfig,
)
from director.daemon import vrrp_channel as ch
from director.daemon.vrrp_child import VrrpProcess, VrrpProcessError, _answer

CFG = VrrpInstanceConfig(
    name="VI_1", interface="eth0", vrid=51, priority=150,
    virtual_ips=(ipaddress.ip_interface("192.0.2.10/24"), ipaddress.ip_interface("fd00::10/64")),
    unicast_peers=(ipaddress.ip_address("192.0.2.3"),), unicast_src=ipaddress.ip_address("192.0.2.2"),
    garp=GarpConfig(repeat=2), track_interfaces=(TrackInterface("eth1", -50),),
    track_virtual_servers=(TrackVirtualServer("web", 0),), notify=("/bin/true",), sync_group="g",
    track_scripts=(TrackScript("chk", -20),), track_files=(TrackFile("prio", 2),),
    track_processes=(TrackProcess("haproxy", 0),),
)
SNAP = {"instances": {"VI_1": {"state": "master", "errors": {"bad_ttl": 1}}}, "unmatched_errors": {}}
EVERY_MESSAGE = [
    ch.Start(), ch.Stop(), ch.SetTrackedVirtualServer("web", False), ch.SetTrackedScript("chk", True),
    ch.SetTrackedFile("prio", -3), ch.SetTrackedProcess("haproxy", False), ch.Snapshot(1), ch.Failover(2, "VI_1"),
    ch.Reconfigure(3, (CFG,)), ch.Ping(4), ch.SnapshotReply(1, SNAP), ch.FailoverReply(2, True), ch.Done(3),
    ch.Refused(4, "ping: no"), ch.Transitioned("VI_1", "master", SNAP), ch.Failed("boom"), ch.Signalled("SIGTERM"),
]


def read_all(data: bytes, accept: tuple[type, ...] = ch.TO_CHILD + ch.TO_PARENT) -> tuple[list[Any], ch.FrameReader]:
    async def go() -> tuple[list[Any], ch.FrameReader]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        frames = ch.FrameReader(reader, accept, side="test")
        out = []
        while (message := await frames.read()) is not None:
            out.append(message)
        return out, frames

    return asyncio.run(go())


def frame(body: bytes) -> bytes:
    return ch.FRAME.pack(len(body)) + body


def test_every_message_round_trips_and_a_cut_frame_is_end_of_stream() -> None:
    data = b"".join(ch.encode(m) for m in EVERY_MESSAGE)
    assert read_all(data)[0] == EVERY_MESSAGE
    assert read_all(data[:-3])[0] == EVERY_MESSAGE[:-1]


def test_a_config_with_carried_routes_rules_and_address_options_round_trips() -> None:
    carried = parse_config({"vrrp_instance": [{
        "name": "VI_1", "interface": "eth0", "vrid": 51,
        "virtual_ips": [{"address": "192.0.2.10/24", "dev": "eth1", "label": "eth1:v", "broadcast": "+"}],
        "excluded_ips": ["fd00::7/64"], "virtual_routes": [{"to": "10.8.0.0/16", "via": "192.0.2.254"}],
        "virtual_rules": [{"from": "10.0.0.0/8", "to": "10.9.0.0/16", "table": 100}]}]}).vrrp_instances
    assert read_all(ch.encode(ch.Reconfigure(5, carried)))[0] == [ch.Reconfigure(5, carried)]


def test_each_end_takes_only_the_other_ends_messages() -> None:
    assert set(ch.TO_CHILD).isdisjoint(ch.TO_PARENT)
    messages, frames = read_all(ch.encode(ch.Ping(1)) + ch.encode(ch.Done(1)), accept=ch.TO_PARENT)
    assert messages == [ch.Done(1)] and frames.dropped == {"unknown message": 1}


def test_an_oversized_frame_breaks_the_channel_before_it_is_read() -> None:
    with pytest.raises(ch.ChannelError, match="exceeds"):
        read_all(ch.FRAME.pack(ch.MAX_FRAME + 1) + b"x")
    with pytest.raises(ch.ChannelError, match="exceeds"):
        ch.encode(ch.Failed("x" * ch.MAX_FRAME))


class Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("true",))


@pytest.mark.parametrize(("body", "reason"), [
    (b"\x80\x05garbage", "undecodable"),
    (b"", "undecodable"),
    (pickle.dumps(Evil()), "undecodable"),  # a class outside the channel's is never even looked up
    (pickle.dumps(("request", 1, "snapshot")), "unknown message"),  # the old untyped tuples
    (pickle.dumps(ch.Failover(1, None)), "bad field"),  # type: ignore[arg-type]
    (pickle.dumps(ch.Reconfigure(1, ("VI_1",))), "bad field"),  # type: ignore[arg-type]
])
def test_a_malformed_or_unknown_frame_is_counted_and_skipped(body: bytes, reason: str) -> None:
    messages, frames = read_all(frame(body) + ch.encode(ch.Ping(7)))
    assert messages == [ch.Ping(7)]
    assert frames.dropped == {reason: 1}


class FakeRuntime:
    def __init__(self) -> None:
        self.tracked: list[tuple[str, bool]] = []
        self.instances: Any = None

    def snapshot(self) -> dict[str, Any]:
        return SNAP

    def failover(self, name: str) -> bool:
        return name == "VI_1"

    async def reconfigure(self, instances: Any) -> None:
        if not instances:
            raise ValueError("no instances")
        self.instances = instances

    def set_tracked_virtual_server(self, name: str, ok: bool) -> None:
        self.tracked.append((name, ok))


def test_requests_and_replies_end_to_end() -> None:
    """The parent's handle against the child's request loop over a socketpair, with a
    fake runtime in place of VRRP."""

    async def go() -> FakeRuntime:
        ours, theirs = socket.socketpair()
        runtime, stop = FakeRuntime(), asyncio.Event()
        child_reader, child_writer = await asyncio.open_connection(sock=theirs)
        child = asyncio.create_task(_answer(ch.FrameReader(child_reader, ch.TO_CHILD, side="child"),
                                            lambda m: child_writer.write(ch.encode(m)), runtime, stop))  # type: ignore[arg-type]
        proc = VrrpProcess(-1, ours, ())
        early = asyncio.create_task(proc.ping())  # the watchdog's first ping, before the connection
        await asyncio.sleep(0.05)
        reader = await proc._connect()
        reading = asyncio.create_task(proc._read(reader))
        proc._writer.write(ch.FRAME.pack(3) + b"bad")  # the child skips it and answers on
        assert await proc.fresh_snapshot() == SNAP and proc.snapshot() == SNAP
        assert await proc.failover("VI_1") is True
        assert await proc.failover("VI_9") is False
        assert await proc.ping() is True
        assert await early is True
        assert proc.problem() is None  # /healthz: 200
        await proc.reconfigure([CFG])
        assert runtime.instances == (CFG,) and proc.names == {"VI_1"}
        with pytest.raises(VrrpProcessError, match="reconfigure: no instances"):
            await proc.reconfigure([])
        proc.set_tracked_virtual_server("web", False)
        child_writer.write(ch.encode(ch.Transitioned("VI_1", "backup", {"instances": {}})))
        seen: list[tuple[str, str]] = []
        proc.on_transition = lambda name, state: seen.append((name, state))
        proc._send(ch.Stop())
        await asyncio.wait_for(child, 2)
        assert stop.is_set()
        child_writer.close()
        await asyncio.wait_for(reading, 2)
        assert seen == [("VI_1", "backup")] and proc.snapshot() == {"instances": {}}
        assert proc.problem() == "the VRRP process closed its channel"  # /healthz: 503
        assert proc.dropped_frames == {}
        proc._writer.close()
        return runtime

    assert asyncio.run(go()).tracked == [("web", False)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EVERY_MESSAGE), st.data())
def test_a_mutated_frame_is_a_message_or_malformed_never_a_crash(message: Any, data: st.DataObject) -> None:
    """Flip, cut or extend any frame body: decode gives an accepted message or Malformed."""
    body = bytearray(ch.encode(message)[ch.FRAME.size:])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    body = body[:data.draw(st.integers(0, len(body)))] + data.draw(st.binary(max_size=8))
    try:
        decoded = ch.decode(bytes(body), ch.TO_CHILD + ch.TO_PARENT)
    except ch.Malformed:
        return
    assert type(decoded) in ch.TO_CHILD + ch.TO_PARENT


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_are_malformed(body: bytes) -> None:
    with pytest.raises(ch.Malformed):
        ch.decode(body, ch.TO_CHILD + ch.TO_PARENT)


def test_tracker_states_wait_for_the_start_and_follow_it_in_order() -> None:
    """The child accepts nothing before Start, so the states trackers report early are kept
    (the latest per tracker) and sent right after it."""

    async def go() -> list[Any]:
        ours, theirs = socket.socketpair()
        proc = VrrpProcess(-1, ours, ())
        proc.set_tracker(ch.SetTrackedFile("prio", 1))
        proc.set_tracker(ch.SetTrackedScript("chk", False))
        proc.set_tracker(ch.SetTrackedFile("prio", 2))  # replaces the first
        stop = asyncio.Event()
        running = asyncio.create_task(proc.run(stop))
        child_reader, _ = await asyncio.open_connection(sock=theirs)
        frames = ch.FrameReader(child_reader, ch.TO_CHILD, side="child")
        got = [await asyncio.wait_for(frames.read(), 2) for _ in range(3)]
        proc.set_tracker(ch.SetTrackedProcess("hp", True))  # after the start: at once
        got.append(await asyncio.wait_for(frames.read(), 2))
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        return got

    assert asyncio.run(go()) == [ch.Start(), ch.SetTrackedFile("prio", 2), ch.SetTrackedScript("chk", False),
                                 ch.SetTrackedProcess("hp", True)]
