"""The parent-child VRRP channel's framing: round trips, end of stream, and a bound."""

from __future__ import annotations

import asyncio

import pytest

from director.daemon.vrrp_child import FRAME, MAX_FRAME, VrrpProcessError, _encode, _read_frame


def read_all(data: bytes) -> list[tuple | None]:
    async def go() -> list[tuple | None]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        out = []
        while (message := await _read_frame(reader)) is not None:
            out.append(message)
        return out

    return asyncio.run(go())


def test_frames_round_trip_and_a_cut_frame_is_end_of_stream() -> None:
    data = _encode(("request", 1, "snapshot")) + _encode(("transition", "VI_1", "master", {"instances": {}}))
    assert read_all(data) == [("request", 1, "snapshot"), ("transition", "VI_1", "master", {"instances": {}})]
    assert read_all(data[:-3]) == [("request", 1, "snapshot")]


def test_an_oversized_frame_is_refused_before_it_is_read() -> None:
    with pytest.raises(VrrpProcessError, match="exceeds"):
        read_all(FRAME.pack(MAX_FRAME + 1) + b"x")
