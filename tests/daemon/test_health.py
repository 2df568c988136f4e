"""The health bridge: config to probe subscriptions, verdicts and weights to real-server
states, samples to the /metrics stores (no sockets: the scheduler's callbacks are fed
by hand, or its probes are `none` checks)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import tomllib

from director.config.load import parse_config
from director.config.model import CheckConfig, Config, RealServerConfig, VirtualServerConfig
from director.daemon.health import HealthBridge, probe_target, serving, state_keys, targets_from_config
from director.daemon.state_store import AdminDrain
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import AddDest, AddService, DestKey, DestSpec
from director.reconcile.desired import RealServerState, service_key, service_spec
from healthcheck import ProbeResult, Target

CONFIG = """
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
  [virtual_server.check]
  type = "{check}"
  port = 8080
  [[virtual_server.real_server]]
  address = "10.0.0.11"
  [[virtual_server.real_server]]
  address = "10.0.0.12"
"""

RS1, RS2 = ("web", "10.0.0.11:80"), ("web", "10.0.0.12:80")
KEY1, KEY2 = ("web", DestKey(4, "10.0.0.11", 80)), ("web", DestKey(4, "10.0.0.12", 80))


def config(check: str = "none") -> Config:
    return parse_config(tomllib.loads(CONFIG.format(check=check)))


def bridge_for(cfg: Config) -> tuple[HealthBridge, list[None]]:
    """A bridge whose keys and states are those of `cfg` (all up), without a scheduler."""
    pokes: list[None] = []
    bridge = HealthBridge(on_change=lambda: pokes.append(None), now=time.time)
    bridge.keys = state_keys(cfg)
    bridge.states = {skey: RealServerState() for skey in bridge.keys.values()}
    return bridge, pokes


def test_targets_from_config():
    rs = RealServerConfig(address=ipaddress.ip_address("10.0.0.11"), port=80)
    rs6 = RealServerConfig(address=ipaddress.ip_address("2001:db8::1"), port=80)
    vs = VirtualServerConfig(name="web", address=ipaddress.ip_address("192.0.2.10"), port=80,
                             fwmark=0, family=4, check=CheckConfig(type="http", port=8080),
                             real_servers=(rs, rs6))
    out = targets_from_config([vs])
    assert out[("web", "10.0.0.11:80")] == (Target("10.0.0.11", 8080), vs.check)
    assert out[("web", "[2001:db8::1]:80")][0] == Target("2001:db8::1", 8080)


def test_probe_target_uses_the_real_server_port_unless_the_check_names_one():
    vs = config().virtual_servers[0]
    assert probe_target(vs.check, "10.0.0.11", 80) == Target("10.0.0.11", 8080)
    plain = parse_config(tomllib.loads(CONFIG.format(check="none").replace("  port = 8080\n", "")))
    assert probe_target(plain.virtual_servers[0].check, "10.0.0.11", 80) == Target("10.0.0.11", 80)


def test_servers_the_kernel_serves_with_a_weight_start_up():
    cfg = config()
    vs = cfg.virtual_servers[0]
    kernel = MemoryIpvs()
    kernel.execute([AddService(service_spec(vs)),
                    AddDest(service_key(vs), DestSpec(DestKey(4, "10.0.0.11", 80), weight=1)),
                    AddDest(service_key(vs), DestSpec(DestKey(4, "10.0.0.12", 80), weight=0))])
    assert serving(cfg, kernel.dump()) == {RS1}
    assert serving(cfg, {}) == set()


def test_a_transition_becomes_the_real_server_state_and_asks_for_a_pass():
    bridge, pokes = bridge_for(config())
    bridge.on_transition(RS1, False, ProbeResult(False, 0.002, "connection refused"))
    assert bridge.states[KEY1] == RealServerState(up=False, up_since=None)
    assert bridge.states[KEY2] == RealServerState()
    bridge.on_transition(RS1, True, ProbeResult(True, 0.001, "connected"))
    assert bridge.states[KEY1].up and bridge.states[KEY1].up_since is not None
    assert len(pokes) == 2


def test_a_dynamic_weight_is_kept_with_the_state():
    bridge, pokes = bridge_for(config())
    bridge.on_transition(RS2, False, ProbeResult(False, 0.0, "exit 1"))
    bridge.on_weight(RS2, 7, ProbeResult(True, 0.0, "exit 9", 7))
    assert bridge.states[KEY2].dynamic_weight == 7 and not bridge.states[KEY2].up
    bridge.on_weight(RS2, None, ProbeResult(True, 0.0, "exit 0"))
    assert bridge.states[KEY2].dynamic_weight is None
    assert len(pokes) == 3


def test_verdicts_for_keys_no_longer_configured_are_ignored():
    bridge, pokes = bridge_for(config())
    bridge.on_transition(("api", "10.0.0.11:80"), False, ProbeResult(False, 0.0, "refused"))
    bridge.on_weight(("api", "10.0.0.11:80"), 3, ProbeResult(True, 0.0, "ok", 3))
    assert pokes == [] and all(state == RealServerState() for state in bridge.states.values())


def test_samples_fill_the_histograms_and_failure_counters():
    bridge, _ = bridge_for(config())
    check = config().virtual_servers[0].check
    bridge.on_sample(Target("10.0.0.11", 8080), check, ProbeResult(True, 0.003, "ok"))
    bridge.on_sample(Target("10.0.0.11", 8080), check, ProbeResult(False, 1.0, "timed out"))
    bridge.on_sample(Target("10.0.0.11", 8080), check, ProbeResult(False, 0.001, "connection refused"))
    histogram = bridge.histograms[("10.0.0.11", 8080, "none")]
    assert sum(histogram.counts) == 3
    assert bridge.failures == {("10.0.0.11", 8080, "none", "timeout"): 1,
                               ("10.0.0.11", 8080, "none", "refused"): 1}


def test_admin_drains_apply_on_top_of_health():
    cfg = config()
    bridge, _ = bridge_for(cfg)
    bridge.on_transition(RS2, False, ProbeResult(False, 0.0, "refused"))
    states = bridge.with_drains(cfg, [AdminDrain("10.0.0.11")])
    assert states[KEY1] == RealServerState(admin_drained=True)
    assert states[KEY2] == RealServerState(up=False, up_since=None)
    assert not bridge.states[KEY1].admin_drained  # the health states themselves stay as probed


def test_start_subscribes_and_a_reload_follows_the_config():
    async def go() -> None:
        cfg = config("none")
        vs = cfg.virtual_servers[0]
        kernel = MemoryIpvs()
        kernel.execute([AddService(service_spec(vs)),
                        AddDest(service_key(vs), DestSpec(DestKey(4, "10.0.0.11", 80), weight=1))])
        bridge = HealthBridge(on_change=lambda: None, now=time.time)
        assert bridge.check_status(RS1) is None  # before start: no scheduler
        bridge.start(cfg, kernel.dump())
        # served with a weight: up at once, and a `none` check has nothing more to say, so it is
        # not probed at all; the other waits for `rise` passing checks
        assert bridge.scheduler is not None and bridge.scheduler.subscribers == 1
        assert bridge.states == {KEY1: RealServerState(up=True, up_since=None),
                                 KEY2: RealServerState(up=False, up_since=None)}
        assert bridge.check_status(RS1) is None and not bridge.check_status(RS2).up
        fewer = parse_config(tomllib.loads(CONFIG.format(check="none").replace(
            '  [[virtual_server.real_server]]\n  address = "10.0.0.12"\n', "")))
        bridge.on_sample(Target("10.0.0.12", 8080), vs.check, ProbeResult(False, 0.0, "refused"))
        bridge.reload(fewer)
        assert set(bridge.states) == {KEY1} and bridge.scheduler.subscribers == 0
        assert bridge.failures == {}  # samples of a target no longer probed are dropped
        await bridge.close()

    asyncio.run(go())


def test_a_none_check_is_dropped_once_up_and_the_server_stays_up():
    """At rest a `none` check would still cost a task per interval for ever (10k of them at
    10k real servers): once up it is unsubscribed, and its real server stays up."""
    async def go() -> None:
        cfg = config("none")
        bridge = HealthBridge(on_change=lambda: None, now=time.time)
        touched: list[str] = []
        bridge.on_touch = touched.append
        bridge.start(cfg, MemoryIpvs().dump())
        assert bridge.scheduler is not None and bridge.scheduler.subscribers == 2
        deadline = time.monotonic() + 10
        while bridge.scheduler.subscribers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert bridge.scheduler.subscribers == 0
        assert bridge.states == {KEY1: RealServerState(up=True, up_since=bridge.states[KEY1].up_since),
                                 KEY2: RealServerState(up=True, up_since=bridge.states[KEY2].up_since)}
        assert touched == ["web", "web"]  # each came up once and was told to the reconcile loop
        bridge.reload(cfg)  # a reload keeps them up and unprobed
        assert bridge.scheduler.subscribers == 0 and all(s.up for s in bridge.states.values())
        await bridge.close()

    asyncio.run(go())
