"""Control socket requests (director.daemon.control and control_api): every line gets a reply,
an answer or a ControlError's line, never the "internal error" a handler's crash becomes.

Requests are random JSON values in the right and wrong places (deep nesting, huge and
non-finite numbers, lone surrogates) and byte mutations of valid request lines (not UTF-8,
cut, spliced). A drain that parses must survive the state file, where it is kept.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director.config.load import parse_config
from director.daemon import state_store
from director.daemon.control import MAX_REQUEST, ControlServer
from director.daemon.control_api import PARSERS, Known, parse
from tests.fuzz.mutate import budget, drawn, mutate_bytes, pick

CONFIG = parse_config(tomllib.loads("""
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  [[virtual_server.real_server]]
  address = "10.0.0.12"
  port = 1

[[virtual_server]]
name = "dns"
address = "2001:db8::53"
port = 53
protocol = "udp"
  [[virtual_server.real_server]]
  address = "2001:db8::11"
"""))
KNOWN = [Known(CONFIG, frozenset({"VI_1", "VI_2"})), Known(CONFIG, None)]
SEEDS = [json.dumps(r).encode() + b"\n" for r in (
    {"command": "status"}, {"command": "reload"},
    {"command": "drain", "address": "10.0.0.11", "port": 80, "service": "web"},
    {"command": "undrain", "address": "10.0.0.12", "port": 1},
    {"command": "drain", "address": "2001:db8::11", "service": "dns"},
    {"command": "failover", "instance": "VI_1", "force": True},
    {"command": "failover", "instance": "VI_2", "release": False},
)] + [b'{"command": "drain", "address": "10.0.0.11", "port": 1e400}\n',
      b'{"command": "drain", "address": "10.0.0.12", "port": 100000000000000000000000000000001}\n']
FIELDS = ("command", "address", "port", "service", "instance", "force", "release")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([2**64, -(2**63), 10**30, 1, 0, 80, 65536])
    | st.floats() | st.text(max_size=8) | st.sampled_from(["10.0.0.11", "web", "VI_1", "", "\ud800"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)


# What each field usually holds: values that name what the config has, some that do not,
# and the wrong types a hand-written request has (a port as text, true, a float).
LIKELY = {
    "address": st.sampled_from(["10.0.0.11", "10.0.0.12", "2001:db8::11", "192.0.2.99"]),
    "port": st.sampled_from([80, 1, 53, 0, -1, 65536, "80", True, False, 80.0, float("inf")]),
    "service": st.sampled_from(["web", "dns", "mail"]),
    "instance": st.sampled_from(["VI_1", "VI_2", "VI_9"]),
    "force": st.sampled_from([True, False, 1, "yes"]),
    "release": st.sampled_from([True, False, 0, None]),
}
COMMAND_FIELDS = {"status": (), "reload": (), "drain": ("address", "port", "service"),
                  "undrain": ("address", "port", "service"), "failover": ("instance", "force", "release")}
COMMANDS = [*PARSERS, "", "STATUS", "drain\n"]


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A JSON object for one command: its fields each likely or any JSON value, now and then
    missing, with stray fields, or with a command that is not a string."""
    command = draw(st.sampled_from(COMMANDS))
    request: dict[str, Any] = {"command": command if draw(st.integers(0, 7)) else draw(json_values)}
    for field in COMMAND_FIELDS.get(command, ()):
        if draw(st.integers(0, 3)):
            request[field] = draw(LIKELY[field] if draw(st.integers(0, 3)) else json_values)
    if draw(st.integers(0, 3)) == 0:
        request[draw(st.sampled_from((*FIELDS, "", "extra")))] = draw(json_values)
    return json.dumps(request).encode() + b"\n"


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """A field nested deeper than the parser's recursion limit allows, or just within it."""
    depth = draw(st.sampled_from([10, 900, 990, 5000, 30000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a": ', "}")]))
    value = opener * depth + "1" + closer * depth
    return f'{{"command": "drain", "address": {value}}}\n'.encode()


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    choose = drawn(draw)
    return mutate_bytes(pick(choose, SEEDS), choose, SEEDS)


malformed = st.one_of(mutated_lines(), nested(), st.binary(max_size=200))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for every example: a fresh one each would be most of the test's time."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def parsed_requests(known: Known, seen: list[Any]) -> dict:
    """Handlers that only parse, as the control API's do before they act; what parsed is kept."""
    def handler(command: str) -> Callable[[dict[str, Any]], Awaitable[str]]:
        async def handle(request: dict[str, Any]) -> str:
            seen.append(parse(command, request, known))
            return repr(seen[-1])
        return handle
    return {command: handler(command) for command in PARSERS}


async def answer(line: bytes, known: Known, seen: list[Any]) -> dict[str, Any]:
    reader = asyncio.StreamReader(limit=MAX_REQUEST)
    reader.feed_data(line)
    reader.feed_eof()
    return await ControlServer("/nonexistent/control.sock", parsed_requests(known, seen))._answer(reader)


def check(loop: asyncio.AbstractEventLoop, line: bytes, known: Known) -> None:
    seen: list[Any] = []
    reply = loop.run_until_complete(answer(line, known, seen))
    json.dumps(reply, default=str).encode()  # what the server writes back
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and reply["error"]
        assert not reply["error"].startswith("internal error"), reply["error"]
    for request in seen:
        if hasattr(request, "drain"):
            kept = state_store.State(admin_drains=[request.drain()])
            assert state_store.decode(json.loads(json.dumps(state_store.encode(kept)))) == kept


@budget(1500)
@given(structured(), st.sampled_from(KNOWN))
def test_every_request_object_gets_a_reply_and_no_internal_error(loop: asyncio.AbstractEventLoop, line: bytes,
                                                                 known: Known) -> None:
    check(loop, line, known)


@budget(1500)
@given(malformed, st.sampled_from(KNOWN))
def test_every_malformed_line_gets_a_reply_and_no_internal_error(loop: asyncio.AbstractEventLoop, line: bytes,
                                                                 known: Known) -> None:
    check(loop, line, known)
