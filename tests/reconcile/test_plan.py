"""Reconciler logic against the in-memory backend (the kernel suite proves the same in the VM)."""

from __future__ import annotations

import textwrap

import pytest

from director.config.load import parse_config
from director.config.model import VirtualServerConfig, field_default
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import (
    NO_TUNNEL,
    AddService,
    DeleteDest,
    DestKey,
    DestSpec,
    EditDest,
    ServiceKey,
    ServiceSpec,
)
from director.reconcile.apply import reconcile_pass
from director.reconcile.desired import RealServerState, desired_table
from director.reconcile.plan import DEFAULT_DRAIN_TIMEOUT, Book, plan

WEB = ServiceKey(4, "tcp", "192.0.2.10", 80)
RS1, RS2, RS3 = (DestKey(4, f"10.0.0.{n}", 80) for n in (11, 12, 13))


def config(text: str = "", servers: tuple[str, ...] = ("10.0.0.11", "10.0.0.12"), **vs_keys: str):
    extra = "".join(f"{k} = {v}\n" for k, v in vs_keys.items())
    rs = "".join(f'[[virtual_server.real_server]]\naddress = "{a}"\nweight = 10\n' for a in servers)
    source = ('[[virtual_server]]\nname = "web"\naddress = "192.0.2.10"\nport = 80\n'
              f"{extra}{rs}{textwrap.dedent(text)}")
    import tomllib
    return parse_config(tomllib.loads(source))


def run(cfg, kernel: MemoryIpvs, book: Book, now: float = 0.0, states=None):
    return reconcile_pass(cfg, kernel, book, now, states)


def test_cold_apply_then_second_apply_makes_zero_writes() -> None:
    kernel, book = MemoryIpvs(), Book()
    report = run(config(), kernel, book)
    assert report.ok and [c.action for c in report.changes] == ["add", "add", "add"]
    assert set(kernel.table[WEB].dests) == {RS1, RS2}
    writes = kernel.writes
    again = run(config(), kernel, book)
    assert again.changes == [] and kernel.writes == writes


def test_changes_name_the_service_by_its_config_name_beside_its_address() -> None:
    """`diff`/`apply` print describe(): the operator's name first, the kernel's address beside it."""
    kernel, book = MemoryIpvs(), Book()
    report = run(config(), kernel, book)
    assert [c.describe() for c in report.changes] == [
        "add service web (tcp 192.0.2.10:80): scheduler wlc",
        "add real server 10.0.0.11:80 in web (tcp 192.0.2.10:80): method nat, weight 10",
        "add real server 10.0.0.12:80 in web (tcp 192.0.2.10:80): method nat, weight 10"]
    gone = run(parse_config({}), kernel, book)  # a service that left the config has no name any more
    assert [c.describe() for c in gone.changes] == ["remove service tcp 192.0.2.10:80"]


def test_adopts_a_matching_table_without_writes() -> None:
    kernel = MemoryIpvs()
    run(config(), kernel, Book())
    writes = kernel.writes
    report = run(config(), kernel, Book())  # a fresh book: a restart that lost its state
    assert report.changes == [] and kernel.writes == writes


def test_hand_made_service_survives() -> None:
    kernel, book = MemoryIpvs(), Book()
    other = ServiceKey(4, "tcp", "192.0.2.99", 8080)
    kernel.execute([AddService(ServiceSpec(other, "rr"))])
    run(config(), kernel, book)
    run(config(servers=()), kernel, book)
    assert other in kernel.table


def test_entry_deleted_or_altered_behind_our_back_is_restored() -> None:
    kernel, book = MemoryIpvs(), Book()
    run(config(), kernel, book)
    kernel.execute([DeleteDest(WEB, RS1), EditDest(WEB, DestSpec(RS2, "nat", 99))])
    report = run(config(), kernel, book)
    assert sorted(c.describe() for c in report.changes) == [
        "add real server 10.0.0.11:80 in web (tcp 192.0.2.10:80): method nat, weight 10",
        "change real server 10.0.0.12:80 in web (tcp 192.0.2.10:80): weight 99 -> 10",
    ]
    assert kernel.table[WEB].dests[RS2].spec.weight == 10


def test_service_attribute_change_is_an_edit_with_the_fields() -> None:
    kernel, book = MemoryIpvs(), Book()
    run(config(), kernel, book)
    report = run(config(scheduler='"rr"', persistence_timeout='"60s"'), kernel, book)
    assert [c.describe() for c in report.changes] == [
        "change service web (tcp 192.0.2.10:80): scheduler wlc -> rr, flags 0 -> 1, timeout 0 -> 60"]
    assert kernel.table[WEB].spec.scheduler == "rr" and kernel.table[WEB].spec.timeout == 60


def test_removed_real_server_drains_until_idle() -> None:
    kernel, book = MemoryIpvs(), Book()
    run(config(), kernel, book)
    kernel.table[WEB].dests[RS2].active_conns = 3
    first = run(config(servers=("10.0.0.11",)), kernel, book, now=100)
    assert [c.describe() for c in first.changes] == [
        "drain real server 10.0.0.12:80 in web (tcp 192.0.2.10:80): weight 10 -> 0"]
    assert kernel.table[WEB].dests[RS2].spec.weight == 0
    waiting = run(config(servers=("10.0.0.11",)), kernel, book, now=110)
    assert waiting.changes == [] and "3 connections" in waiting.waiting[0]
    kernel.table[WEB].dests[RS2].active_conns = 0
    done = run(config(servers=("10.0.0.11",)), kernel, book, now=120)
    assert [c.action for c in done.changes] == ["remove"] and RS2 not in kernel.table[WEB].dests


def test_drain_timeout_deletes_a_busy_real_server() -> None:
    kernel, book = MemoryIpvs(), Book()
    cfg = config(drain_timeout='"30s"')
    run(cfg, kernel, book)
    kernel.table[WEB].dests[RS2].inactive_conns = 5
    smaller = config(servers=("10.0.0.11",), drain_timeout='"30s"')
    run(smaller, kernel, book, now=1000)
    assert RS2 in kernel.table[WEB].dests
    run(smaller, kernel, book, now=1029)
    assert RS2 in kernel.table[WEB].dests
    run(smaller, kernel, book, now=1030)
    assert RS2 not in kernel.table[WEB].dests


def test_without_drain_timeouts_plan_drains_for_the_configs_default() -> None:
    assert field_default(VirtualServerConfig, "drain_timeout") == DEFAULT_DRAIN_TIMEOUT
    kernel, book = MemoryIpvs(), Book()
    run(config(), kernel, book)
    kernel.table[WEB].dests[RS2].active_conns = 1
    smaller = desired_table(config(servers=("10.0.0.11",)))
    assert [c.action for c in plan(smaller, kernel.dump(), book, now=0.0).changes] == ["drain"]
    assert [c.action for c in plan(smaller, kernel.dump(), book, now=DEFAULT_DRAIN_TIMEOUT - 1).changes] == ["drain"]
    assert [c.action for c in plan(smaller, kernel.dump(), book, now=DEFAULT_DRAIN_TIMEOUT).changes] == ["remove"]


def test_only_a_tunnelling_real_server_keeps_its_tunnel_options() -> None:
    rs = '[[virtual_server.real_server]]\naddress = "10.0.0.11"\ntunnel_checksum = "csum"\n'
    tun = desired_table(config(rs + 'method = "tun"\ntunnel_type = "gue"\ntunnel_port = 6080\n', servers=()))
    nat = desired_table(config(rs, servers=()))  # the checksum of a nat real server is not judged, nor sent
    assert (tun[WEB].dests[RS1].tunnel_type, tun[WEB].dests[RS1].tunnel_port) == ("gue", 6080)
    assert tun[WEB].dests[RS1].tunnel_checksum == "csum"
    assert {name: getattr(nat[WEB].dests[RS1], name) for name in NO_TUNNEL} == NO_TUNNEL


def test_udp_real_server_is_deleted_at_once() -> None:
    kernel, book = MemoryIpvs(), Book()
    run(config(protocol='"udp"'), kernel, book)
    udp = ServiceKey(4, "udp", "192.0.2.10", 80)
    kernel.table[udp].dests[RS2].active_conns = 7
    run(config(servers=("10.0.0.11",), protocol='"udp"'), kernel, book)
    assert RS2 not in kernel.table[udp].dests


def test_removed_service_drains_then_goes_and_readding_cancels() -> None:
    kernel, book = MemoryIpvs(), Book()
    run(config(), kernel, book)
    kernel.table[WEB].dests[RS1].active_conns = 2
    empty = parse_config({})
    report = run(empty, kernel, book, now=10)
    assert {c.action for c in report.changes} == {"drain"} and WEB in kernel.table
    assert all(d.spec.weight == 0 for d in kernel.table[WEB].dests.values())
    back = run(config(), kernel, book, now=20)  # re-added before the drain finished
    assert all(d.spec.weight == 10 for d in kernel.table[WEB].dests.values()) and back.ok
    run(empty, kernel, book, now=30)
    kernel.table[WEB].dests[RS1].active_conns = 0
    run(empty, kernel, book, now=40)
    assert WEB not in kernel.table and WEB not in book.owned


def test_error_on_one_entry_does_not_stop_the_rest() -> None:
    kernel, book = MemoryIpvs(schedulers=("wlc", "rr")), Book()
    cfg = parse_config({"virtual_server": [
        {"name": "bad", "address": "192.0.2.1", "port": 80, "scheduler": "mh",
         "real_server": [{"address": "10.0.0.1"}]},
        {"name": "good", "address": "192.0.2.2", "port": 80, "real_server": [{"address": "10.0.0.2"}]},
    ]})
    report = run(cfg, kernel, book)
    assert not report.ok
    assert any("tcp 192.0.2.1:80" in line for line in report.errors)
    assert ServiceKey(4, "tcp", "192.0.2.2", 80) in kernel.table


@pytest.mark.parametrize(("on_failure", "weight"), [("quiesce", 0), ("remove", None)])
def test_health_down_quiesces_or_removes(on_failure: str, weight: int | None) -> None:
    kernel, book = MemoryIpvs(), Book()
    cfg = config(on_failure=f'"{on_failure}"')
    run(cfg, kernel, book)
    kernel.table[WEB].dests[RS1].active_conns = 4  # a removal on failure does not wait for connections
    run(cfg, kernel, book, states={("web", RS1): RealServerState(up=False)})
    dest = kernel.table[WEB].dests.get(RS1)
    assert (dest.spec.weight if dest else None) == weight


def test_sorry_server_appears_when_quorum_is_lost_and_leaves_on_recovery() -> None:
    kernel, book = MemoryIpvs(), Book()
    cfg = config(sorry_server='"10.0.0.99:80"', quorum="15")
    sorry = DestKey(4, "10.0.0.99", 80)
    run(cfg, kernel, book)
    assert sorry not in kernel.table[WEB].dests
    down = {("web", RS1): RealServerState(up=False)}
    run(cfg, kernel, book, states=down)
    assert kernel.table[WEB].dests[sorry].spec.weight == 1
    run(cfg, kernel, book)
    assert sorry not in kernel.table[WEB].dests


def test_admin_drain_holds_weight_zero_whatever_the_health() -> None:
    cfg = config()
    table = desired_table(cfg, {("web", RS1): RealServerState(up=True, admin_drained=True)})
    assert table[WEB].dests[RS1].weight == 0 and table[WEB].dests[RS2].weight == 10


def test_slow_start_ramps_the_weight() -> None:
    cfg = config(slow_start='"100s"')
    state = {("web", RS1): RealServerState(up=True, up_since=1000.0)}
    weights = [desired_table(cfg, state, now)[WEB].dests[RS1].weight for now in (1000, 1010, 1050, 1099, 1100)]
    assert weights == [1, 1, 5, 10, 10]


def test_dry_run_changes_nothing_and_keeps_the_book() -> None:
    kernel, book = MemoryIpvs(), Book()
    report = reconcile_pass(config(), kernel, book, 0.0, dry_run=True)
    assert len(report.changes) == 3 and kernel.writes == 0 and book.owned == {}


def test_timeouts_are_set_only_when_they_differ() -> None:
    kernel, book = MemoryIpvs(), Book()
    cfg = parse_config({"ipvs": {"timeouts": {"tcp": "600s"}}})
    first = reconcile_pass(cfg, kernel, book, 0.0)
    assert [c.describe() for c in first.changes] == ["change timeouts: tcp 900 -> 600"]
    assert kernel.timeouts.tcp == 600 and kernel.timeouts.udp == 300
    assert reconcile_pass(cfg, kernel, book, 0.0).changes == []


def test_sysctls_are_written_only_when_they_differ(tmp_path) -> None:
    from director.ipvs.sysctl import NAMES, IpvsSysctl

    for name in NAMES:
        (tmp_path / name).write_text("0\n")
    sysctl = IpvsSysctl(tmp_path)
    kernel, book = MemoryIpvs(), Book()
    cfg = parse_config({"ipvs": {"expire_nodest_conn": True, "conntrack": False}})
    first = reconcile_pass(cfg, kernel, book, 0.0, sysctl=sysctl)
    assert [c.describe() for c in first.changes] == ["change sysctl net.ipv4.vs.expire_nodest_conn: value 0 -> 1"]
    assert (tmp_path / "expire_nodest_conn").read_text() == "1\n"
    assert reconcile_pass(cfg, kernel, book, 0.0, sysctl=sysctl).changes == []
