"""VRRP failover time: directord vs keepalived, side by side in the same run.

Failover time = from the fault on the master to the VIP answering ARP from the
backup, seen from a third (client) namespace. Both daemons run VRRPv3 over
multicast with identical settings (priorities 200/100, same advert interval);
directord is the whole daemon (`directord run`, VRRP child and all).

`--fault sigkill` (the default) kills the master's process group; the target is at
most Master_Down_Interval + 20 ms, and no slower than keepalived. `--fault sigterm`
is `systemctl stop`: SIGTERM to the group, and the figures also show when the
master's priority-0 advert reached the client; the target is no slower than
keepalived on either.

    .venv/bin/python benchmarks/vrrp_failover.py --runs 20 --intervals 1,0.1
    .venv/bin/python benchmarks/vrrp_failover.py --runs 20 --intervals 0.25 --fault sigterm
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.vrrp.lab import (  # noqa: E402 - the lab lives with the tests
    PYTHON,
    VIP,
    Lab,
    keepalived_conf,
    sh,
    start_keepalived,
)

MASTER_PRIO, BACKUP_PRIO = 200, 100
TOLERANCE = 0.005  # medians this close count as level
START_WAIT = 60.0  # a daemon starting in an emulated VM takes many seconds


def mdi(interval: float, priority: int = BACKUP_PRIO) -> float:
    """RFC 5798 Master_Down_Interval for the backup, in seconds."""
    return 3 * interval + (256 - priority) * interval / 256


def start(lab: Lab, impl: str, node: str, priority: int, interval: float) -> None:
    if impl == "directord":
        start_directord(lab, node, priority, interval)
    else:
        idx = lab.nodes.index(node) + 1
        conf = keepalived_conf(lab.addr(idx), priority=priority, version=3,
                               interval=f"{interval:g}", peers=[])
        start_keepalived(lab, node, conf)


def start_directord(lab: Lab, node: str, priority: int, interval: float) -> None:
    """`directord run` with one VRRP instance and nothing else (no IPVS needed)."""
    cfg = lab.write_config(node, daemon=True, priority=priority, advert_interval=f"{round(interval * 1000)}ms")
    log = open(lab._fresh_log(node), "ab")  # noqa: SIM115 - owned by the process
    lab.procs[node] = subprocess.Popen(
        ["ip", "netns", "exec", node, str(ROOT / ".venv" / "bin" / "directord"), "run", "-c", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def one_run(lab: Lab, impl: str, interval: float, align: bool, fault: str) -> tuple[float, float | None]:
    """(fault to takeover, fault to the priority-0 advert or None) in seconds."""
    master, backup = lab.nodes
    start(lab, impl, master, MASTER_PRIO, interval)
    lab.wait_for(lambda: lab.holders() == [master], mdi(interval, MASTER_PRIO) + START_WAIT)
    start(lab, impl, backup, BACKUP_PRIO, interval)
    if impl == "directord":
        lab.wait_backup(backup, timeout=START_WAIT)
    else:
        lab.wait_for(lambda: "Entering BACKUP STATE" in lab.log(backup), START_WAIT)
    time.sleep(max(1.5, 3 * interval))  # the backup has heard the master's adverts
    if lab.holders() != [master]:
        raise RuntimeError(f"{impl}: unexpected VIP holders {lab.holders()}")
    probe = subprocess.Popen(
        ["ip", "netns", "exec", lab.client, PYTHON, str(ROOT / "benchmarks" / "vrrp_probe.py"),
         "--src", "192.0.2.50", "--vip", VIP, "--mac", lab.mac(backup),
         "--timeout", str(mdi(interval) + 5),
         *(["--align-src", lab.addr(1)] if align else []),
         *(["--resign-src", lab.addr(1)] if fault == "sigterm" else [])],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert probe.stdout is not None
        if probe.stdout.readline().strip() != "ready":
            raise RuntimeError("prober failed to start")
        if align and not probe.stdout.readline().startswith("advert"):
            raise RuntimeError(f"{impl}: no advert from the master")
        # The whole process group at once, as systemd does: with SIGKILL, keepalived's
        # VRRP child would otherwise notice its parent dying and resign gracefully.
        pgid = os.getpgid(lab.procs[master].pid)
        t_fault = time.monotonic()
        os.killpg(pgid, signal.SIGKILL if fault == "sigkill" else signal.SIGTERM)
        resigned = None
        line = probe.stdout.readline().split()
        if line and line[0] == "resign":
            resigned = float(line[1]) - t_fault
            line = probe.stdout.readline().split()
        if not line or line[0] != "answered":
            raise RuntimeError(f"{impl}: backup never answered for the VIP")
        if fault == "sigterm" and resigned is None:
            raise RuntimeError(f"{impl}: no priority-0 advert on a graceful stop")
        return float(line[1]) - t_fault, resigned
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
        for node in (master, backup):
            proc = lab.procs.pop(node, None)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            if proc:
                proc.wait()
            sh("ip", "-n", node, "addr", "del", f"{VIP}/24", "dev", "eth0", check=False)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--intervals", default="1,0.1", help="advert intervals in seconds")
    ap.add_argument("--impls", default="directord,keepalived")
    ap.add_argument("--fault", choices=("sigkill", "sigterm"), default="sigkill")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keep-logs", action="store_true", help="keep daemon logs")
    ap.add_argument("--phase", choices=("advert", "random"), default="advert",
                    help="fault right after a master advert (worst case, same phase for "
                    "both daemons) or at a random moment")
    args = ap.parse_args()
    intervals = [float(x) for x in args.intervals.split(",")]
    impls = args.impls.split(",")
    takeovers: dict[str, dict[str, list[float]]] = {}
    resigns: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dvr-bench-") as tmp:
        if args.keep_logs:
            tmp = tempfile.mkdtemp(prefix="dvr-bench-logs-")
            print(f"logs in {tmp}", file=sys.stderr)
        lab = Lab(2, Path(tmp))
        try:
            for interval in intervals:
                key = f"{interval:g}"
                for run in range(args.runs):
                    for impl in impls:  # interleaved so both see the same host load
                        t, resigned = one_run(lab, impl, interval, args.phase == "advert", args.fault)
                        takeovers.setdefault(key, {}).setdefault(impl, []).append(t)
                        extra = ""
                        if resigned is not None:
                            resigns.setdefault(key, {}).setdefault(impl, []).append(resigned)
                            extra = f"  priority 0 at {resigned * 1000:6.1f} ms"
                        print(f"interval {key}s run {run + 1:2d} {impl:10s} "
                              f"{t * 1000:8.1f} ms{extra}", file=sys.stderr, flush=True)
        finally:
            lab.close()
    ok = report(takeovers, resigns, args.fault)
    if args.json:
        Path(args.json).write_text(json.dumps({"fault": args.fault, "takeover": takeovers,
                                               "priority0": resigns}, indent=2))
    print("\ntarget met" if ok else "\ntarget MISSED")
    return 0 if ok else 1


def report(takeovers: dict[str, dict[str, list[float]]], resigns: dict[str, dict[str, list[float]]],
           fault: str) -> bool:
    """Print the table; True when directord meets its targets against keepalived."""
    print(f"\nfault: {fault}\n{'interval':>8} {'impl':>10} {'runs':>4} {'median ms':>10} {'p95 ms':>8} "
          f"{'prio0 ms':>8} {'MDI ms':>8} {'target ms':>9}")
    ok = True
    for interval, by_impl in takeovers.items():
        limit = mdi(float(interval)) + 0.020
        for impl, values in by_impl.items():
            med, high = statistics.median(values), p95(values)
            prio0 = resigns.get(interval, {}).get(impl)
            shown = f"{statistics.median(prio0) * 1000:>8.1f}" if prio0 else f"{'-':>8}"
            print(f"{interval + 's':>8} {impl:>10} {len(values):>4} {med * 1000:>10.1f} "
                  f"{high * 1000:>8.1f} {shown} {mdi(float(interval)) * 1000:>8.1f} {limit * 1000:>9.1f}")
            if impl != "directord":
                continue
            ok &= high <= limit
            if "keepalived" in by_impl:
                ok &= med <= statistics.median(by_impl["keepalived"]) + TOLERANCE
            peer = resigns.get(interval, {}).get("keepalived")
            if prio0 and peer:
                ok &= statistics.median(prio0) <= statistics.median(peer) + TOLERANCE
    return ok


if __name__ == "__main__":
    sys.exit(main())
