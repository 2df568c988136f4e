"""Chaos soak: a director pair under a stream of faults, its invariants checked all along.

    scripts/vm-run -- .venv/bin/python -m benchmarks.chaos [--duration 600] [--seed 1]

Inside the VM rig (it needs IPVS and steps the VM's wall clock) it builds the failover lab
(scripts.lab: NAT, lb1 and lb2 with IPVS connection sync, three real servers), runs the two
directors as their unit would (benchmarks.chaos_lab.Supervisor), puts a client load on the VIP
and injects one fault every few seconds, drawn at random (benchmarks.chaos_faults) like cards
from a deck: every kind once before any comes again. It prints
every fault with its outcome, then the breaches of the invariants (benchmarks.chaos_verdict)
and a summary. Exit 0 when nothing was breached, 1 otherwise, 2 when the lab could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchmarks.chaos_faults import Injector
from benchmarks.chaos_lab import Sampler, Supervisor, TableModel, VipWatch
from benchmarks.chaos_verdict import (
    Breach,
    Fault,
    connection_breaches,
    fault_at,
    growth,
    growth_breaches,
    ownership_breaches,
    spans_from_changes,
    table_breaches,
)
from director.drill.labstate import load_state
from director.drill.proc import sh
from scripts import lab

REPO = Path(__file__).resolve().parents[1]
METRICS_PORT = 9100
STATE_FS_SIZE = "1m"  # each director's state dir is a file system this small, so it can be filled
RECONCILE_INTERVAL = 5.0  # scripts.lab's reconcile_interval
SKEW_LIMIT = 0.05  # Master_Down_Interval + 50 ms: how long the VIP may have no owner
GROWTH_LIMIT = 0.10  # descriptors and RSS over the run
# A process is measured from GROWTH_WARM s after its start (READY comes after about 10 s in the VM)
# if it then lives GROWTH_SPAN s more: a kill comes every half minute or so, few live longer.
GROWTH_WARM, GROWTH_SPAN = 20.0, 60.0
CONNECTION_GRACE = 10.0  # a hard fault's failback (preempt_delay 4 s) still counts as that fault
UNFIT_KINDS = ("kill", "sigstop", "link")  # faults that leave their target unable to own the VIP


def state_dirs(name: str) -> Path:
    return Path(f"/run/directord-chaos-{name}")


def global_extra(name: str) -> lab.GlobalExtra:
    """Metrics on each director's front address (the storm's target), the state dir on a
    file system of its own (the full-disk fault's)."""
    def extra(lb: str) -> dict[str, Any]:
        return {"metrics_listen": f"{lab.lb_address('nat', lb)['front0']}:{METRICS_PORT}",
                "state_dir": str(state_dirs(name) / lb)}
    return extra


def mount_state_dirs(name: str) -> None:
    for lb in ("lb1", "lb2"):
        path = state_dirs(name) / lb
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dirs(name), 0o700)
        sh(["mount", "-t", "tmpfs", "-o", f"size={STATE_FS_SIZE},mode=0700", f"chaos-{lb}", str(path)])


def unmount_state_dirs(name: str) -> None:
    for lb in ("lb1", "lb2"):
        sh(["umount", str(state_dirs(name) / lb)], check=False)
    with contextlib.suppress(OSError):
        for lb in ("lb1", "lb2"):
            (state_dirs(name) / lb).rmdir()
        state_dirs(name).rmdir()


def in_client(state: dict[str, Any], argv: list[str]) -> subprocess.Popen:
    """A Python module of ours in the client namespace, talked to over its stdin and stdout."""
    return subprocess.Popen(["ip", "netns", "exec", state["client"], sys.executable, *argv], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=str(REPO))


def await_ready(proc: subprocess.Popen, what: str, timeout: float = 180.0) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        raise RuntimeError(f"{what} did not start: {line.strip() or 'no output'}")


def master_down_interval(state: dict[str, Any]) -> float:
    """The longest Master_Down_Interval of the pair (RFC 5798: 3 intervals plus the skew)."""
    advert = state["advert_interval"]
    return max(3 * advert + (256 - p) * advert / 256 for p in state["priorities"].values())


# --- the run ------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.supervisor = Supervisor()
        self.faults: list[Fault] = []

    def up(self) -> dict[str, Any]:
        name = self.args.name
        if load_state(name) is not None:
            lab.down(name)
        unmount_state_dirs(name)
        mount_state_dirs(name)
        print(f"chaos: building lab {name} (NAT, directord pair, IPVS sync, 3 real servers)", flush=True)
        lab.build(name, "nat", "directord", extra=global_extra(name), start=self.supervisor.start)
        state = self.supervisor.state  # the one dict the lab, the supervisor and the faults keep true
        for lb in state["directors"]:
            self.supervisor.wait_ready(lb, 180.0)
        return state

    def run(self, state: dict[str, Any]) -> int:
        vips = VipWatch(state)
        model = TableModel(state)
        sampler = Sampler(state, self.supervisor, model)
        client = in_client(state, ["-m", "benchmarks.chaos_client"])
        load = in_client(state, ["-m", "director.drill.load", "--vip", state["vip"], "--rate", str(self.args.rate),
                                 "--long", str(self.args.long), "--stream-port", str(state["stream_port"]),
                                 "--clock", "monotonic", "--reopen"])
        injector = None
        try:
            await_ready(client, "the client agent")
            await_ready(load, "the load generator")
            injector = Injector(state, self.supervisor, vips, model, client, self.rng)
            time.sleep(3.0)
            start = time.monotonic()
            self.inject_until(injector, start + self.args.duration, start)
            time.sleep(3.0)
            end = time.monotonic()
            assert load.stdin is not None and load.stdout is not None
            load.stdin.close()
            result = json.loads(load.stdout.readline() or "{}")
        finally:
            for proc in (client, load):
                proc.kill()
                proc.wait()
            sampler.close()
            vips.close()
            if injector is not None:
                injector.close()
        return self.judge(state, vips, sampler, result, start, end)

    def inject_until(self, injector: Injector, deadline: float, start: float) -> None:
        kinds = self.args.fault or list(Injector.KINDS)
        deck: list[str] = []
        while time.monotonic() < deadline:
            if not deck:  # every kind once, in a random order, before any comes again
                deck = self.rng.sample(kinds, len(kinds))
            kind = deck.pop()
            began = time.monotonic()
            try:
                fault = injector.inject(kind)
            except Exception as exc:  # the soak's own trouble is reported as the fault's problem
                fault = Fault(kind, "", "", began, time.monotonic(), problems=[f"{type(exc).__name__}: {exc}"])
            self.faults.append(fault)
            verdict = "; ".join(fault.problems) or "ok"
            print(f"[{fault.start - start:+7.1f} s] {fault.kind:<16} {fault.target or '-':<4} "
                  f"{fault.role or '':<6} {fault.outcome} -> {verdict}", flush=True)
            time.sleep(self.rng.uniform(*self.args.gap))

    # --- the verdict ------------------------------------------------------------------------

    def judge(self, state: dict[str, Any], vips: VipWatch, sampler: Sampler, result: dict[str, Any],
              start: float, end: float) -> int:
        holds = {lb: spans_from_changes(changes, end) for lb, changes in vips.changes.items()}
        unfit: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for f in self.faults:
            if f.kind.startswith(UNFIT_KINDS) and f.target in holds:
                unfit[f.target].append((f.start, f.cleared))
        mdi = master_down_interval(state)
        owner, no_owner, two_owners = ownership_breaches(holds, unfit, start, end, mdi + SKEW_LIMIT,
                                                         state["advert_interval"])
        tables, worst_table = table_breaches(sampler.tables, 2 * RECONCILE_INTERVAL)
        closed = [(c["closed"], c["reason"]) for c in result.get("long", []) if c["closed"] is not None]
        connections = connection_breaches(closed, self.faults, CONNECTION_GRACE)
        grown = growth(sampler.usage, GROWTH_WARM, min_span=min(GROWTH_SPAN, self.args.duration / 3))
        resources = growth_breaches(grown, GROWTH_LIMIT)
        problems = [Breach("fault_outcome", f.start, 0, f"{f.kind} on {f.target or '-'}: {p}")
                    for f in self.faults for p in f.problems]
        breaches = sorted(owner + tables + connections + resources + problems, key=lambda b: b.at)
        if result.get("error"):
            breaches.append(Breach("load", end, 0, result["error"]))
        print_breaches(breaches, self.faults, start)
        print_faults(self.faults, result, closed)
        print(f"\ninvariants over {end - start:.0f} s, {len(self.faults)} faults:")
        nobody = sum(1 for b in owner if b.detail.startswith("no director"))
        rows = [("no director owns the VIP", f"{no_owner * 1000:.0f} ms", f"{(mdi + SKEW_LIMIT) * 1000:.0f} ms",
                 nobody),
                ("two directors own the VIP", f"{two_owners * 1000:.0f} ms",
                 f"{state['advert_interval'] * 1000:.0f} ms", len(owner) - nobody),
                ("IPVS table differs", f"{worst_table:.1f} s", f"{2 * RECONCILE_INTERVAL:.0f} s", len(tables)),
                ("long-lived connections lost", f"{len(closed)} of {len(result.get('long', []))}",
                 "hard faults only", len(connections)),
                ("faults with problems", str(sum(1 for f in self.faults if f.problems)), "0", len(problems))]
        print(f"  {'invariant':<30} {'worst':>12} {'bound':>16} {'breaches':>9}")
        for label, worst, bound, count in rows:
            print(f"  {label:<30} {worst:>12} {bound:>16} {count:>9}")
        print_growth(grown)
        print(f"\nchaos: {len(breaches)} breaches", flush=True)
        if self.args.json:
            Path(self.args.json).write_text(json.dumps({"faults": [vars(f) for f in self.faults],
                                                        "breaches": [vars(b) for b in breaches],
                                                        "growth": grown}, indent=1, default=str))
        return 1 if breaches else 0

    def down(self) -> None:
        self.supervisor.stop_all()
        lab.down(self.args.name)
        unmount_state_dirs(self.args.name)


def print_breaches(breaches: list[Breach], faults: list[Fault], start: float) -> None:
    if not breaches:
        return
    print("\nbreaches:")
    for b in breaches:
        during = fault_at(faults, b.at)
        print(f"  [{b.at - start:+7.1f} s] {b.invariant}: {b.detail}"
              + (f" (after {during.kind} on {during.target or '-'})" if during else ""))


def print_faults(faults: list[Fault], result: dict[str, Any], closed: list[tuple[float, str]]) -> None:
    """Per kind: how many, how many with problems, takeovers, failed requests, lost connections."""
    requests = result.get("requests", [])
    print(f"\n  {'fault':<16} {'count':>5} {'problems':>8} {'takeover ms (max)':>18} {'failed requests':>16} "
          f"{'conns lost':>10}")
    by_kind: dict[str, list[Fault]] = defaultdict(list)
    for f in faults:
        by_kind[f.kind].append(f)
    for kind, group in sorted(by_kind.items()):
        takeovers = [int(part.split(" after ")[1].split(" ms")[0]) for f in group for part in f.outcome.split("; ")
                     if part.startswith("VIP on ")]
        windows = [(f.start, f.cleared + 2.0) for f in group]
        inside = [r for r in requests if any(a <= r[0] <= b for a, b in windows)]
        failed = sum(1 for r in inside if not r[1])
        lost = sum(1 for at, _ in closed if any(a <= at <= b for a, b in windows))
        median = sorted(takeovers)[len(takeovers) // 2] if takeovers else None
        takeover = f"{median} ({max(takeovers)})" if takeovers else "-"
        print(f"  {kind:<16} {len(group):>5} {sum(1 for f in group if f.problems):>8} {takeover:>18} "
              f"{f'{failed}/{len(inside)}':>16} {lost:>10}")
    reasons = Counter(reason for _, reason in closed)
    if reasons:
        print("  long-lived connections ended: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))


def print_growth(grown: dict[str, dict[str, Any]]) -> None:
    if not grown:
        print("  descriptors and RSS: no process lived long enough to measure")
        return
    print(f"\n  {'process':<26} {'watched':>8} {'fds':>12} {'RSS MB':>14} {'growth fd/RSS':>15}")
    for key, row in sorted(grown.items()):
        fds, rss = row["fds"], row["rss"]
        print(f"  {key:<26} {row['span']:>6.0f} s {fds[0]:>5} -> {fds[1]:<4} {rss[0] / 1e6:>6.1f} -> "
              f"{rss[1] / 1e6:<5.1f} {row['fd_growth'] * 100:>+6.1f}%/{row['rss_growth'] * 100:+.1f}%")


def _gap(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chaos soak of a directord pair (inside scripts/vm-run)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults (default 600)")
    parser.add_argument("--seed", type=int, default=1, help="the fault sequence's seed")
    parser.add_argument("--gap", type=_gap, default=(2.0, 5.0), metavar="MIN:MAX",
                        help="seconds between one fault clearing and the next (default 2:5)")
    parser.add_argument("--fault", action="append", choices=Injector.KINDS, help="only these faults (repeatable)")
    parser.add_argument("--rate", type=float, default=10.0, help="new HTTP connections a second")
    parser.add_argument("--long", type=int, default=12, help="long-lived connections held")
    parser.add_argument("--name", default="chaos", help="lab name")
    parser.add_argument("--json", help="also write faults and breaches here")
    args = parser.parse_args(argv)
    if not Path("/proc/net/ip_vs").exists() or os.environ.get("DIRECTORD_IN_VM") != "1":
        print("chaos: run it inside the VM rig: scripts/vm-run -- .venv/bin/python -m benchmarks.chaos",
              file=sys.stderr)
        return 2
    soak = Soak(args)
    try:
        state = soak.up()
        return soak.run(state)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"chaos: the lab failed: {exc}", file=sys.stderr)
        return 2
    finally:
        soak.down()


if __name__ == "__main__":
    sys.exit(main())
