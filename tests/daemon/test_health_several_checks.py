"""Real servers with their own checks, several of them: a real server is up only while
all pass; a check may probe another address (connect_ip) and leave from a chosen source
address or link. Real TCP listeners on loopback addresses; the scheduler runs for real."""

from __future__ import annotations

import asyncio
import socket
import time
import tomllib
from collections.abc import Iterator

import pytest

from director.config.load import ConfigError, parse_config
from director.config.model import Config
from director.daemon.health import HealthBridge, probe_target, targets_from_config
from director.ipvs.model import DestKey
from director.reconcile.desired import RealServerState
from healthcheck import ProbeResult, Target, probe_all

KEY = ("web", DestKey(4, "127.0.0.1", 80))
HKEY = ("web", "127.0.0.1:80")


def listener(address: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


@pytest.fixture
def first() -> Iterator[socket.socket]:
    sock = listener("127.0.0.1")
    yield sock
    sock.close()


def free_port(address: str) -> int:
    sock = listener(address)
    port = sock.getsockname()[1]
    sock.close()
    return port


def config_with(*checks: str, service_check: str = 'type = "none"') -> Config:
    text = f"""
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [virtual_server.check]
  {service_check}
  [[virtual_server.real_server]]
  address = "127.0.0.1"
""" + "".join(f"  [[virtual_server.real_server.checks]]\n  {check}\n" for check in checks)
    return parse_config(tomllib.loads(text))


def tcp(port: int, extra: str = "") -> str:
    return f'type = "tcp"\n  port = {port}\n  interval = "0.1s"\n  timeout = "0.5s"\n  rise = 1\n  fall = 1\n' \
           f'  initial = "up"\n  {extra}'


def test_each_check_of_a_real_server_is_its_own_subscription():
    cfg = config_with(tcp(81), tcp(82, 'address = "127.0.0.2"'))
    wanted = targets_from_config(cfg.virtual_servers)
    assert [target for target, _ in wanted.values()] == [Target("127.0.0.1", 81), Target("127.0.0.2", 82)]
    assert list(wanted) == [HKEY, (*HKEY, 1)]


def test_a_real_server_with_its_own_checks_ignores_the_service_check():
    cfg = config_with(tcp(81), service_check='type = "http"\n  port = 8080')
    vs = cfg.virtual_servers[0]
    assert vs.checks_of(vs.real_servers[0]) == vs.real_servers[0].checks
    assert probe_target(vs.real_servers[0].checks[0], "127.0.0.1", 80) == Target("127.0.0.1", 81)


def test_verdicts_of_several_checks_are_anded():
    cfg = config_with(tcp(81), tcp(82))
    pokes: list[None] = []
    bridge = HealthBridge(on_change=lambda: pokes.append(None), now=time.time)
    bridge.keys = {HKEY: KEY}
    bridge.counts = {HKEY: 2}
    bridge.states = {KEY: RealServerState()}
    assert len(cfg.virtual_servers[0].real_servers[0].checks) == 2
    bridge.on_transition((*HKEY, 1), False, ProbeResult(False, 0.0, "connection refused"))
    assert not bridge.states[KEY].up and len(pokes) == 1
    bridge.on_transition(HKEY, False, ProbeResult(False, 0.0, "connection refused"))
    assert len(pokes) == 1  # still down: no news
    bridge.on_transition((*HKEY, 1), True, ProbeResult(True, 0.0, "connected"))
    assert not bridge.states[KEY].up and len(pokes) == 1  # the first check still fails
    bridge.on_transition(HKEY, True, ProbeResult(True, 0.0, "connected"))
    assert bridge.states[KEY].up and len(pokes) == 2


async def wait_for(predicate, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def test_probes_for_real_up_only_while_every_check_passes(first):
    async def scenario() -> None:
        other_port = free_port("127.0.0.2")
        cfg = config_with(tcp(first.getsockname()[1]), tcp(other_port, 'address = "127.0.0.2"'))
        bridge = HealthBridge(on_change=lambda: None, now=time.time)
        bridge.start(cfg, {})
        try:
            await wait_for(lambda: not bridge.states[KEY].up)
            status = bridge.check_status(HKEY)
            assert status is not None and status.target == Target("127.0.0.2", other_port)
            assert "refused" in status.reason
            second = socket.socket()
            second.bind(("127.0.0.2", other_port))
            second.listen(16)
            try:
                await wait_for(lambda: bridge.states[KEY].up)
            finally:
                second.close()
            await wait_for(lambda: not bridge.states[KEY].up)
        finally:
            await bridge.close()

    asyncio.run(scenario())


def accepted_peer(server: socket.socket, limit: float = 3.0) -> str:
    server.settimeout(limit)
    conn, peer = server.accept()
    conn.close()
    return peer[0]


@pytest.mark.parametrize("kind", ["tcp", "http", "imap", "mysql", "smtp"])
def test_a_probe_leaves_from_its_bind_address(first, kind):
    port = first.getsockname()[1]
    cfg = config_with(f'type = "{kind}"\n  port = {port}\n  timeout = "0.5s"\n  bind_address = "127.0.0.3"')
    check = cfg.virtual_servers[0].real_servers[0].checks[0]

    async def scenario() -> str:
        probe = asyncio.ensure_future(probe_all([(Target("127.0.0.1", port), check)]))
        peer = await asyncio.to_thread(accepted_peer, first)
        await probe
        return peer

    assert asyncio.run(scenario()) == "127.0.0.3"


def test_a_probe_bound_to_a_missing_link_fails_with_the_reason(first):
    port = first.getsockname()[1]
    lo = config_with(tcp(port, 'bind_interface = "lo"')).virtual_servers[0].real_servers[0].checks[0]
    missing = config_with(tcp(port, 'bind_interface = "nosuchlink0"')).virtual_servers[0].real_servers[0].checks[0]
    on_lo, on_missing = asyncio.run(probe_all([(Target("127.0.0.1", port), lo), (Target("127.0.0.1", port), missing)]))
    assert on_lo.ok, on_lo.reason
    assert not on_missing.ok and "no such device" in on_missing.reason.lower()


@pytest.mark.parametrize(("extra", "message"), [
    ('bind_address = "::1"', "checks[0].bind_address: ::1 is IPv6 but the probed address 127.0.0.1 is IPv4"),
    ('bind_interface = "bad name"', "checks[0].bind_interface"),
    ('address = "not-an-address"', "checks[0].address"),
])
def test_bad_check_placement_keys_are_refused(extra, message):
    with pytest.raises(ConfigError) as caught:
        config_with(tcp(81, extra))
    assert message in str(caught.value)


def test_a_port_zero_real_server_check_needs_a_port():
    text = """
[[virtual_server]]
name = "all"
fwmark = 7
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  [[virtual_server.real_server.checks]]
  type = "tcp"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text))
    assert "real_server[0].checks[0].port: is required" in str(caught.value)


def test_a_datagram_probe_leaves_from_its_bind_address() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(3)
    port = server.getsockname()[1]
    cfg = config_with(f'type = "udp"\n  port = {port}\n  send = "ping"\n  timeout = "0.5s"\n'
                      '  bind_address = "127.0.0.4"')
    check = cfg.virtual_servers[0].real_servers[0].checks[0]

    async def scenario() -> str:
        probe = asyncio.ensure_future(probe_all([(Target("127.0.0.1", port), check)]))
        _, peer = await asyncio.to_thread(server.recvfrom, 64)
        await probe
        return peer[0]

    try:
        assert asyncio.run(scenario()) == "127.0.0.4"
    finally:
        server.close()
