"""How fast directord programs IPVS, next to ipvsadm-restore, in one VM boot.

    scripts/vm-run -- .venv/bin/python -m benchmarks.ipvs_sync [--sizes 1000,10000]

Measures, for N services x 4 real servers: a cold sync into an empty table
(dump + plan + execute), a no-op resync (dump + plan finds nothing: zero
writes), a single weight change, and `ipvsadm-restore` loading the same table
from a rules file. Also measures pyroute2's high-level IPVS call once, the
reason `director.ipvs.kernel` encodes its own messages.

Each measurement runs in a fresh network namespace (IPVS tables are per
netns). Reloading in the same netns after `ipvsadm -C` is unfair to whoever goes
second: flushed real servers sit in the kernel's dest trash for a minute or two
and every add walks that list, which makes a back-to-back reload quadratic.

The plan comes from the real reconciler (`director.reconcile.plan.plan`); `--direct`
uses the script's own minimal diff instead, to separate planning from kernel time.
This script flushes IPVS tables and makes namespaces: run it only in the VM.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from director.ipvs.kernel import NetlinkIpvs
from director.ipvs.model import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    KernelTable,
    Op,
    ServiceKey,
    ServiceSpec,
)
from scripts.labkit import Lab, in_netns, sh

Desired = dict[ServiceKey, tuple[ServiceSpec, dict[DestKey, DestSpec]]]
DESTS_PER_SERVICE = 4


def build_desired(n: int) -> Desired:
    """n TCP services on 172.16.0.0/12, each with 4 NAT real servers of its own."""
    base = int(ipaddress.IPv4Address("172.16.0.1"))
    table: Desired = {}
    for i in range(n):
        key = ServiceKey(4, "tcp", str(ipaddress.IPv4Address(base + i)), 80)
        dests = {}
        for j in range(1, DESTS_PER_SERVICE + 1):
            dkey = DestKey(4, f"10.{i >> 8 & 255}.{i & 255}.{j}", 8080)
            dests[dkey] = DestSpec(dkey, "nat", 1)
        table[key] = (ServiceSpec(key, "wlc"), dests)
    return table


def plan_ops(desired: Desired, actual: KernelTable) -> list[Op]:
    """The minimal ops from actual to desired (stand-in for director.reconcile.plan)."""
    ops: list[Op] = []
    for key, (spec, dests) in desired.items():
        have = actual.get(key)
        if have is None:
            ops.append(AddService(spec))
            ops.extend(AddDest(key, d) for d in dests.values())
            continue
        if have.spec != spec:
            ops.append(EditService(spec))
        for dkey, dspec in dests.items():
            cur = have.dests.get(dkey)
            if cur is None:
                ops.append(AddDest(key, dspec))
            elif cur.spec != dspec:
                ops.append(EditDest(key, dspec))
        ops.extend(DeleteDest(key, d) for d in have.dests if d not in dests)
    ops.extend(DeleteService(k) for k in actual if k not in desired)
    return ops


def plan_with_reconciler(desired: Desired, actual: KernelTable) -> list[Op]:
    """The step through the real reconciler (the default)."""
    from director.reconcile.desired import DesiredService
    from director.reconcile.plan import Book, plan

    table = {k: DesiredService(str(k), spec, dests) for k, (spec, dests) in desired.items()}
    return plan(table, actual, Book(), time.time()).ops


PLAN = plan_with_reconciler  # `--direct` switches this to plan_ops
EVENTS = True  # `--no-events` leaves out the daemon's loop (events, audit)


def rules_file(desired: Desired) -> str:
    lines = []
    for key, (spec, dests) in desired.items():
        lines.append(f"-A -t {key.address}:{key.port} -s {spec.scheduler}")
        lines.extend(
            f"-a -t {key.address}:{key.port} -r {d.key.address}:{d.key.port} -m -w {d.weight}"
            for d in dests.values()
        )
    return "\n".join(lines) + "\n"


def flush() -> None:
    subprocess.run(["ipvsadm", "-C"], check=True)


def sync(backend: NetlinkIpvs, desired: Desired) -> tuple[float, int, int]:
    """(seconds, ops written, errors) for one dump + plan + execute pass."""
    start = time.perf_counter()
    ops = PLAN(desired, backend.dump())
    errors = backend.execute(ops) if ops else []
    elapsed = time.perf_counter() - start
    if errors:
        print(f"  {len(errors)} errors, first: {errors[0].message}", file=sys.stderr)
    return elapsed, len(ops), len(errors)


def ipvsadm_restore(desired: Desired, netns: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as f:
        f.write(rules_file(desired))
        path = f.name
    try:
        with open(path) as rules:
            start = time.perf_counter()
            subprocess.run(in_netns(["ipvsadm-restore"], netns), stdin=rules, check=True)
            return time.perf_counter() - start
    finally:
        os.unlink(path)


def count_services(netns: str) -> int:
    out = sh(["ipvsadm", "-Sn"], ns=netns, timeout=3600)
    return sum(1 for line in out.splitlines() if line.startswith("-A"))


def directord_phase(n: int) -> dict[str, float]:
    """Cold sync, no-op resync and one weight change, in the current (fresh) netns."""
    desired = build_desired(n)
    backend = NetlinkIpvs()
    try:
        cold, written, errs = sync(backend, desired)
        assert errs == 0 and written == n * (1 + DESTS_PER_SERVICE), (written, errs)
        noop, noop_written, _ = sync(backend, desired)
        assert noop_written == 0, f"no-op resync wrote {noop_written} ops"
        key = next(iter(desired))
        spec, dests = desired[key]
        dkey = next(iter(dests))
        changed = dict(desired)
        changed[key] = (spec, {**dests, dkey: replace(dests[dkey], weight=7)})
        single, single_written, _ = sync(backend, changed)
        assert single_written == 1
        sync(backend, desired)  # back to the table the daemon's config describes
        dumps = dump_figures(backend)
    finally:
        backend.close()
    figures = {"cold": cold, "noop": noop, "noop_writes": noop_written, "single": single,
               "single_writes": single_written, **dumps}
    if EVENTS:
        figures |= asyncio.run(daemon_figures(desired))
    return figures


def dump_figures(backend: NetlinkIpvs, runs: int = 2) -> dict[str, float]:
    """A full dump by directord and by `ipvsadm -Ln` (C, same table, same boot): best of `runs`."""
    ours, theirs = [], []
    for _ in range(runs):
        began = time.perf_counter()
        backend.dump()
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        subprocess.run(["ipvsadm", "-Ln"], stdout=subprocess.DEVNULL, check=True)
        theirs.append(time.perf_counter() - began)
    return {"dump": min(ours), "ipvsadm_dump": min(theirs)}


def daemon_config(desired: Desired, state_dir: str) -> str:
    """The directord config that describes `desired` (so its first full pass writes nothing)."""
    lines = [f'[global]\nstate_dir = "{state_dir}"\n']
    for index, (key, (spec, dests)) in enumerate(desired.items()):
        lines.append(f'[[virtual_server]]\nname = "s{index}"\naddress = "{key.address}"\nport = {key.port}\n'
                     f'scheduler = "{spec.scheduler}"\n')
        lines += [f'[[virtual_server.real_server]]\naddress = "{d.key.address}"\nport = {d.key.port}\n'
                  f'weight = {d.weight}\n' for d in dests.values()]
    return "".join(lines)


async def daemon_figures(desired: Desired) -> dict[str, float]:
    """The daemon's reconcile loop over this table (default reconcile_interval and audit_period):
    its first full pass, 20 health transitions and 20 drains (event to netlink ack, each checked
    with ipvsadm afterwards), a tamper made with ipvsadm until the audit repairs it, and the
    loop's CPU over one audit period at rest."""
    import tomllib

    from director.config.load import parse_config
    from director.daemon.health import HealthBridge, state_keys
    from director.daemon.ipvs_thread import IpvsThread
    from director.daemon.reconcile_loop import ReconcileLoop
    from director.daemon.state_store import AdminDrain, StateStore
    from director.reconcile.desired import RealServerState, dest_key

    state_dir = tempfile.mkdtemp(prefix="ipvsbench-state-")
    config = parse_config(tomllib.loads(daemon_config(desired, state_dir)))
    backend = NetlinkIpvs()
    health = HealthBridge(on_change=lambda: None, now=time.time)
    health.keys = state_keys(config)
    health.states = {skey: RealServerState() for skey in health.keys.values()}
    passed = asyncio.Event()
    loop = ReconcileLoop(config, backend, IpvsThread(), StateStore(state_dir), health, None, asyncio.Event(),
                         on_pass=passed.set)
    began = time.perf_counter()
    running = asyncio.create_task(loop.run())
    while loop.counters.full_passes < 1:
        await asyncio.sleep(0.01)
    figures: dict[str, float] = {"full_pass": time.perf_counter() - began}
    n = len(config.virtual_servers)
    picks = [(config.virtual_servers[(i * 499) % n], i % DESTS_PER_SERVICE) for i in range(20)]

    async def timed(act: Callable[[], None]) -> float:
        passed.clear()
        began = time.perf_counter()
        act()
        await passed.wait()  # after the netlink ack and the mirror's update
        return time.perf_counter() - began

    def down(name: str, skey: tuple) -> Callable[[], None]:
        def act() -> None:
            health.states[skey] = RealServerState(up=False)
            loop.touch(name)
        return act

    def drain(name: str, address: str) -> Callable[[], None]:
        def act() -> None:
            loop.state.admin_drains.append(AdminDrain(address, None, name))
            loop.drains_changed()
        return act

    transitions = [await timed(down(vs.name, (vs.name, dest_key(vs.real_servers[r])))) for vs, r in picks]
    drains = [await timed(drain(vs.name, str(vs.real_servers[(r + 1) % DESTS_PER_SERVICE].address)))
              for vs, r in picks]
    vs, _ = picks[-1]
    shown = sh(["ipvsadm", "-Ln", "-t", f"{vs.address}:{vs.port}"])
    zeroed = sum(1 for line in shown.splitlines() if line.strip().startswith("->") and line.split()[3] == "0")
    assert zeroed >= 2, shown  # the transition and the drain, as ipvsadm sees them
    figures |= {"transition_median": statistics.median(transitions), "transition_max": max(transitions),
                "drain_median": statistics.median(drains), "drain_max": max(drains)}

    # tamper with one entry by hand; the audit must repair it within audit_period + one tick
    victim = config.virtual_servers[n // 2]
    rs = victim.real_servers[0]
    sh(["ipvsadm", "-e", "-t", f"{victim.address}:{victim.port}", "-r", f"{rs.address}:{rs.port}", "-m", "-w", "77"])
    repairs, cpu, began = loop.audit.progress.repairs_total, time.process_time(), time.perf_counter()
    period = config.global_.audit_period + config.global_.reconcile_interval
    while loop.audit.progress.repairs_total == repairs and time.perf_counter() - began < period + 30:
        await asyncio.sleep(0.05)
    figures["tamper_repaired"] = time.perf_counter() - began if loop.audit.progress.repairs_total > repairs else -1
    await asyncio.sleep(max(0.0, period - (time.perf_counter() - began)))
    figures["audit_cpu_percent"] = (time.process_time() - cpu) / (time.perf_counter() - began) * 100
    figures["audit_rounds"] = loop.audit.progress.rounds
    running.cancel()
    backend.close()
    return figures


def bench_size(n: int) -> dict[str, float]:
    desired = build_desired(n)
    # A fresh namespace for each (IPVS tables are per namespace); Lab.netns brings lo up, which
    # makes the local table without which IPVS calls every address "not unicast" (EINVAL).
    with Lab("ipvsbench-") as lab:
        ns = lab.netns(f"r{n}")
        restore = ipvsadm_restore(desired, ns)
        assert count_services(ns) == n, "ipvsadm-restore did not load the table"
    with Lab("ipvsbench-") as lab:
        ns = lab.netns(f"d{n}")
        argv = [sys.executable, "-m", "benchmarks.ipvs_sync", "--phase-directord", str(n)]
        if PLAN is plan_ops:
            argv.append("--direct")
        if not EVENTS:
            argv.append("--no-events")
        out = sh(argv, ns=ns, timeout=3600)
        got = json.loads(out.splitlines()[-1])
        assert count_services(ns) == n
    ops_total = n * (1 + DESTS_PER_SERVICE)
    cold = got["cold"]
    print(f"{n} services x {DESTS_PER_SERVICE} real servers ({ops_total} entries), fresh netns each")
    print(f"  directord cold sync      {cold:8.3f} s  ({cold / ops_total * 1e6:.0f} us/entry)")
    print(f"  ipvsadm-restore          {restore:8.3f} s  ({restore / ops_total * 1e6:.0f} us/entry)")
    print(f"  ratio directord/restore  {cold / restore:8.2f}  (target <= 1.0)")
    print(f"  directord no-op resync   {got['noop']:8.3f} s  (writes: {got['noop_writes']})")
    print(f"  directord single change  {got['single']:8.3f} s  (writes: {got['single_writes']}; a full pass)",
          flush=True)
    print(f"  full dump: directord     {got['dump']:8.3f} s   ipvsadm -Ln {got['ipvsadm_dump']:8.3f} s   "
          f"ratio {got['dump'] / got['ipvsadm_dump']:.2f}  (target <= 1.5)", flush=True)
    if EVENTS:
        ms = {k: got[k] * 1000 for k in ("transition_median", "transition_max", "drain_median", "drain_max")}
        print(f"  daemon loop: first full pass {got['full_pass']:.2f} s")
        print(f"  health transition -> ack  median {ms['transition_median']:6.1f} ms  "
              f"worst {ms['transition_max']:6.1f} ms  (20; target <= 50 ms)")
        print(f"  drain -> ack              median {ms['drain_median']:6.1f} ms  worst {ms['drain_max']:6.1f} ms  (20)")
        print(f"  tamper repaired after     {got['tamper_repaired']:6.1f} s  (target <= audit_period 60 s + tick 5 s)")
        print(f"  loop CPU at rest (audit)  {got['audit_cpu_percent']:6.2f} % of a core  (target <= 2 %)", flush=True)
        ka = keepalived_idle(desired)
        ratio = got["audit_cpu_percent"] / ka if ka else float("inf")
        print(f"  idle CPU: directord loop {got['audit_cpu_percent']:.2f} %   keepalived {ka:.2f} %   "
              f"ratio {ratio:.2f}  (target <= 3)", flush=True)
    return {"restore": restore, **got}


def keepalived_conf(desired: Desired) -> str:
    """The same table for keepalived, its real servers without checkers (always up)."""
    parts = ["global_defs {\n  router_id bench\n}\n"]
    for key, (spec, dests) in desired.items():
        parts.append(f"virtual_server {key.address} {key.port} {{\n  delay_loop 6\n  lb_algo {spec.scheduler}\n"
                     "  lb_kind NAT\n  protocol TCP\n")
        parts += [f"  real_server {d.key.address} {d.key.port} {{\n    weight {d.weight}\n  }}\n"
                  for d in dests.values()]
        parts.append("}\n")
    return "".join(parts)


def process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its children (keepalived's checker process)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def keepalived_idle(desired: Desired, seconds: float = 60.0) -> float:
    """keepalived's CPU (both processes) at rest with the same table, checkers disabled (%)."""
    with Lab("ipvsbench-") as lab, tempfile.TemporaryDirectory(prefix="ipvsbench-ka-") as tmp:
        ns = lab.netns("ka")
        conf = os.path.join(tmp, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(keepalived_conf(desired))
        proc = lab.start(["keepalived", "-C", "-n", "-l", "-D", "-f", conf, "-p", os.path.join(tmp, "ka.pid"),
                          "-c", os.path.join(tmp, "ka-check.pid")], ns=ns,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 1800
        while count_services(ns) < len(desired):
            assert time.monotonic() < deadline and proc.poll() is None, "keepalived did not load the table"
            time.sleep(5)
        time.sleep(5)
        # `ip netns exec` is the child: keepalived is the process it execs into (same pid)
        before, began = process_cpu(proc.pid), time.monotonic()
        time.sleep(seconds)
        return (process_cpu(proc.pid) - before) / (time.monotonic() - began) * 100


def pyroute2_per_op(n: int = 20) -> float:
    """Seconds per service add through pyroute2's high-level IPVS API."""
    from socket import IPPROTO_TCP

    from pyroute2 import IPVS, IPVSService

    flush()
    ipvs = IPVS()
    try:
        services = [IPVSService(addr=f"172.31.0.{i + 1}", port=80, protocol=IPPROTO_TCP)
                    for i in range(n)]
        start = time.perf_counter()
        for svc in services:
            ipvs.service("add", service=svc)
        elapsed = time.perf_counter() - start
    finally:
        ipvs.close()
        flush()
    return elapsed / n


def directord_per_op(backend: NetlinkIpvs, n: int = 20) -> float:
    """Seconds per service add through NetlinkIpvs, one op per execute call."""
    flush()
    ops = [AddService(ServiceSpec(ServiceKey(4, "tcp", f"172.31.0.{i + 1}", 80))) for i in range(n)]
    start = time.perf_counter()
    for op in ops:
        assert backend.execute([op]) == []
    elapsed = time.perf_counter() - start
    flush()
    return elapsed / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--direct", action="store_true",
                        help="plan with the script's own diff instead of director.reconcile.plan")
    parser.add_argument("--no-events", action="store_true",
                        help="leave out the daemon loop's figures (events, audit, idle vs keepalived)")
    parser.add_argument("--phase-directord", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PLAN, EVENTS
    if args.direct:
        PLAN = plan_ops
    EVENTS = not args.no_events
    if not os.environ.get("DIRECTORD_IN_VM"):
        print("ipvs_sync: flushes IPVS tables; run it in the VM (scripts/vm-run)", file=sys.stderr)
        return 2
    if args.phase_directord:
        print(json.dumps(directord_phase(args.phase_directord)))
        return 0
    for n in (int(s) for s in args.sizes.split(",")):
        bench_size(n)
    p2 = pyroute2_per_op()
    backend = NetlinkIpvs()
    try:
        ours = directord_per_op(backend)
    finally:
        backend.close()
    print("per-op cost, one service add per call (20 calls)")
    print(f"  pyroute2 IPVS.service('add')   {p2 * 1e3:8.2f} ms/op")
    print(f"  NetlinkIpvs.execute([op])      {ours * 1e3:8.2f} ms/op", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
