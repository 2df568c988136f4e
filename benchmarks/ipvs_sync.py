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
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

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
    finally:
        backend.close()
    return {"cold": cold, "noop": noop, "noop_writes": noop_written, "single": single,
            "single_writes": single_written}


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
    print(f"  directord single change  {got['single']:8.3f} s  (writes: {got['single_writes']})",
          flush=True)
    return {"restore": restore, **got}


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
    parser.add_argument("--phase-directord", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PLAN
    if args.direct:
        PLAN = plan_ops
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
