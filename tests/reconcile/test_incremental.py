"""Cost follows change (issue 20), on the in-memory backend: the desired table kept from
pass to pass, targeted passes against the mirror (one batch, no dump), a stale write
recovered by re-reading its service, and the rolling audit's slicing, coverage and repairs.
The kernel suite (tests/reconcile/test_targeted_kernel.py) proves the same on real IPVS."""

from __future__ import annotations

import tomllib

from director.config.load import parse_config
from director.config.model import Config
from director.ipvs.memory import MemoryIpvs
from director.ipvs.model import (
    AddDest,
    AddService,
    DeleteDest,
    DestKey,
    DestSpec,
    EditDest,
    KernelDest,
    ServiceKey,
    ServiceSpec,
)
from director.reconcile.apply import reconcile_pass, reconcile_services
from director.reconcile.audit import Audit
from director.reconcile.desired import RealServerState, desired_table
from director.reconcile.incremental import DesiredCache, DrainedStates
from director.reconcile.mirror import apply_ops
from director.reconcile.plan import Book


def config(services: int = 3, weight: int = 10, extra: str = "") -> Config:
    text = ""
    for s in range(services):
        text += f'[[virtual_server]]\nname = "vs{s}"\naddress = "192.0.2.{s + 1}"\nport = 80\n{extra}'
        for r in (1, 2):
            text += f'[[virtual_server.real_server]]\naddress = "10.0.{s}.{r}"\nweight = {weight}\n'
    return parse_config(tomllib.loads(text))


def key(s: int) -> ServiceKey:
    return ServiceKey(4, "tcp", f"192.0.2.{s + 1}", 80)


def dest(s: int, r: int) -> DestKey:
    return DestKey(4, f"10.0.{s}.{r}", 80)


def started(cfg: Config) -> tuple[MemoryIpvs, Book, DesiredCache, dict]:
    """A kernel after a full pass, the cache and the mirror as the daemon keeps them."""
    backend, book, cache = MemoryIpvs(), Book(), DesiredCache()
    cache.follow(cfg)
    cache.recompute({}, 0.0)
    report = reconcile_pass(cfg, backend, book, 0.0, desired=cache.table)
    assert report.ok
    return backend, book, cache, report.kernel


# --- the desired table kept incrementally ---------------------------------------------------


def test_the_cache_recomputes_only_what_is_touched_and_says_what_changed() -> None:
    cfg = config()
    cache = DesiredCache()
    assert cache.follow(cfg) == {"vs0", "vs1", "vs2"}
    assert cache.recompute({}, 0.0) == {key(0), key(1), key(2)}
    assert cache.table == desired_table(cfg)
    assert cache.recompute({}, 0.0) == set()  # nothing touched: nothing recomputed
    down = {("vs1", dest(1, 1)): RealServerState(up=False)}
    cache.touch(["vs1"])
    assert cache.recompute(down, 0.0) == {key(1)}
    assert cache.table[key(1)].dests[dest(1, 1)].weight == 0
    assert cache.table == desired_table(cfg, down)
    cache.touch(["vs2"])  # touched, but its desired entry is unchanged: nothing to write
    assert cache.recompute(down, 0.0) == set()


def test_a_reload_marks_only_the_virtual_servers_it_changes() -> None:
    cache = DesiredCache()
    cache.follow(config())
    cache.recompute({}, 0.0)
    changed = config()
    vs = changed.virtual_servers
    text = tomllib.loads('[[virtual_server]]\nname = "vs1"\naddress = "192.0.2.2"\nport = 80\n'
                         '[[virtual_server.real_server]]\naddress = "10.0.1.1"\nweight = 7\n')
    one = parse_config(text).virtual_servers[0]
    new = type(changed)(**{**changed.__dict__, "virtual_servers": (vs[0], one)})  # vs1 edited, vs2 removed
    assert cache.follow(new) == {"vs1", "vs2"}
    assert cache.recompute({}, 0.0) == {key(1), key(2)}
    assert set(cache.table) == {key(0), key(1)} and cache.table == desired_table(new)


def test_drained_states_lay_the_admin_drains_over_health_without_a_copy() -> None:
    health = {("vs0", dest(0, 1)): RealServerState(up=False)}
    view = DrainedStates(health, {("vs0", dest(0, 2))})
    assert view.get(("vs0", dest(0, 1))) == RealServerState(up=False)
    assert view.get(("vs0", dest(0, 2))).admin_drained
    assert view.get(("vs1", dest(1, 1))) is None


# --- targeted passes -------------------------------------------------------------------------


def test_a_health_change_writes_one_entry_in_one_batch_without_a_dump() -> None:
    cfg = config(services=50)
    backend, book, cache, mirror = started(cfg)
    dumps, writes, batches = backend.dumps, backend.writes, len(backend.log)
    cache.touch(["vs7", "vs9"])
    states = {("vs7", dest(7, 1)): RealServerState(up=False), ("vs9", dest(9, 2)): RealServerState(up=False)}
    changed = cache.recompute(states, 1.0)
    report = reconcile_services(cache.table, mirror, backend, book, 1.0, cache.drain_timeouts, changed)
    assert backend.dumps == dumps and backend.reads == 0  # no dump, no read: the mirror was enough
    assert backend.writes - writes == 2 and len(backend.log) - batches == 2
    assert {type(op) for op in backend.log[-2:]} == {EditDest}
    assert sorted(c.entry for c in report.changes) == [
        "real server 10.0.7.1:80 in vs7 (tcp 192.0.2.8:80)", "real server 10.0.9.2:80 in vs9 (tcp 192.0.2.10:80)"]
    assert report.services[key(7)].dests[dest(7, 1)].spec.weight == 0  # the mirror's new entry
    assert backend.table[key(7)].dests[dest(7, 1)].spec.weight == 0


def test_a_write_meeting_a_missing_entry_rereads_that_service_only() -> None:
    cfg = config(services=5)
    backend, book, cache, mirror = started(cfg)
    del backend.table[key(2)].dests[dest(2, 1)]  # removed by hand: the mirror still has it
    backend.table[key(3)].dests[dest(3, 1)].spec = DestSpec(dest(3, 1), weight=99)  # tampered elsewhere
    cache.touch(["vs2"])
    changed = cache.recompute({("vs2", dest(2, 1)): RealServerState(up=False)}, 1.0)
    report = reconcile_services(cache.table, mirror, backend, book, 1.0, cache.drain_timeouts, changed)
    assert report.reread == {key(2)} and report.errors == []
    assert backend.dumps == 1 and backend.reads == 1  # the start's full dump, then one targeted read
    assert isinstance(backend.log[-1], AddDest)  # planned again from what the kernel really holds
    assert backend.table[key(2)].dests[dest(2, 1)].spec.weight == 0
    assert report.services[key(2)] == backend.table[key(2)]
    assert backend.table[key(3)].dests[dest(3, 1)].spec.weight == 99  # not touched: the audit's business


def test_a_write_meeting_an_existing_service_adopts_it() -> None:
    cfg = config(services=1)
    backend, book, cache = MemoryIpvs(), Book(), DesiredCache()
    cache.follow(cfg)
    changed = cache.recompute({}, 0.0)
    backend.execute([AddService(ServiceSpec(key(0), scheduler="rr"))])  # made by hand meanwhile
    report = reconcile_services(cache.table, {}, backend, book, 0.0, cache.drain_timeouts, changed)
    assert report.reread == {key(0)} and report.errors == []
    assert backend.table[key(0)].spec.scheduler == "wlc" and set(backend.table[key(0)].dests) == {
        dest(0, 1), dest(0, 2)}
    assert key(0) in book.owned


def test_services_the_config_does_not_own_are_never_read_or_written() -> None:
    cfg = config(services=2)
    backend, book, cache, mirror = started(cfg)
    foreign = ServiceKey(4, "tcp", "203.0.113.9", 443)
    backend.execute([AddService(ServiceSpec(foreign)), AddDest(foreign, DestSpec(DestKey(4, "10.9.9.9", 80)))])
    audit = Audit(period=1.0)
    picked = audit.next_slice(cache.table.keys() | book.owned.keys(), 1.0, 0.0)
    assert foreign not in picked
    log = len(backend.log)
    reconcile_services(cache.table, mirror, backend, book, 1.0, cache.drain_timeouts, set(), picked)
    assert len(backend.log) == log and foreign not in book.owned
    assert backend.table[foreign].dests[DestKey(4, "10.9.9.9", 80)].spec.weight == 1


# --- the rolling audit -----------------------------------------------------------------------


def test_the_audit_covers_every_service_within_its_period_in_bounded_slices() -> None:
    keys = [key(s) for s in range(100)] + [ServiceKey(4, "udp", "192.0.2.200", s) for s in range(137)]
    audit = Audit(period=60.0)
    seen: list[ServiceKey] = []
    for tick in range(12):  # 12 ticks of 5 s: one period
        picked = audit.next_slice(keys, 5.0, tick * 5.0)
        assert len(picked) <= -(-len(keys) * 5 // 60)  # ceil(n * interval / period): bounded per tick
        seen += picked
    assert sorted(seen) == sorted(keys) and audit.progress.rounds == 1
    assert audit.progress.last_round_seconds is not None and audit.progress.last_round_seconds <= 60.0
    assert audit.progress.audited_total == len(keys)


def test_a_service_added_mid_round_is_audited_in_that_round() -> None:
    keys = [key(s) for s in range(10)]
    audit = Audit(period=10.0)
    first = audit.next_slice(keys, 5.0, 0.0)
    assert len(first) == 5
    second = audit.next_slice([*keys, key(50)], 5.0, 5.0)
    assert key(50) in second + audit.next_slice([*keys, key(50)], 5.0, 10.0)
    assert set(first) & set(second) == set()


def test_the_audit_repairs_tampered_missing_and_extra_entries_when_their_slice_comes_up() -> None:
    cfg = config(services=4)
    backend, book, cache, mirror = started(cfg)
    backend.table[key(0)].dests[dest(0, 1)].spec = DestSpec(dest(0, 1), weight=3)  # tampered
    del backend.table[key(1)]  # a whole service deleted by hand
    backend.table[key(2)].dests[DestKey(4, "10.7.7.7", 80)] = KernelDest(DestSpec(DestKey(4, "10.7.7.7", 80)))  # extra
    audit = Audit(period=10.0)
    repairs = []
    for tick in range(2):  # two ticks cover the four services
        picked = audit.next_slice(cache.table.keys() | book.owned.keys(), 5.0, tick * 5.0)
        report = reconcile_services(cache.table, mirror, backend, book, 1.0, cache.drain_timeouts, set(), picked)
        repairs += [c.describe() for c in report.repairs]
        for k, svc in report.services.items():
            mirror[k] = svc
    assert backend.table[key(0)].dests[dest(0, 1)].spec.weight == 10
    assert set(backend.table[key(1)].dests) == {dest(1, 1), dest(1, 2)}
    assert DestKey(4, "10.7.7.7", 80) not in backend.table[key(2)].dests  # no connections: deleted
    assert len(repairs) == 1 + 3 + 1 and backend.dumps == 1
    assert mirror == backend.table


def test_an_unreadable_service_is_reported_and_the_rest_of_the_slice_goes_on() -> None:
    class HalfBroken(MemoryIpvs):
        def dump_services(self, keys):  # type: ignore[no-untyped-def]
            keys = list(keys)
            table, _ = super().dump_services(k for k in keys if k != key(1))
            return table, {key(1): f"read service {key(1)}: Input/output error"}

    cfg = config(services=3)
    plain, book, cache, mirror = started(cfg)
    backend = HalfBroken()
    backend.table = plain.table
    backend.table[key(2)].dests[dest(2, 1)].spec = DestSpec(dest(2, 1), weight=1)
    report = reconcile_services(cache.table, mirror, backend, book, 1.0, cache.drain_timeouts, set(),
                                [key(0), key(1), key(2)])
    assert report.audit_errors == [f"read service {key(1)}: Input/output error"]
    assert key(1) not in report.services and backend.table[key(2)].dests[dest(2, 1)].spec.weight == 10


def test_the_mirror_applies_acked_writes_as_the_kernel_does() -> None:
    cfg = config(services=1)
    backend, _, _, mirror = started(cfg)
    ops = [EditDest(key(0), DestSpec(dest(0, 1), weight=4)), DeleteDest(key(0), dest(0, 2)),
           AddDest(key(0), DestSpec(DestKey(4, "10.0.0.9", 80), method="dr", tunnel_port=5))]
    before = mirror[key(0)]
    after = apply_ops(before, ops)
    backend.execute(ops)
    assert after == backend.table[key(0)]
    assert before.dests[dest(0, 1)].spec.weight == 10  # replaced, never edited in place


def test_hysteresis_keeps_a_pool_on_the_edge_from_flapping() -> None:
    from director.config.load import parse_config
    from director.reconcile.desired import quorum_lost

    vs = parse_config({"virtual_server": [{"name": "w", "address": "192.0.2.1", "port": 80, "quorum": 4,
                                           "hysteresis": 1}]}).virtual_servers[0]
    assert quorum_lost(vs, 3, None)  # no verdict yet: the plain rule
    assert not quorum_lost(vs, 3, False) and quorum_lost(vs, 2, False)  # lost only under 4 - 1
    assert quorum_lost(vs, 4, True) and not quorum_lost(vs, 5, True)  # regained only at 4 + 1
