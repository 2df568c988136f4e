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

    .venv/bin/python -m benchmarks.vrrp_failover --runs 20 --intervals 1,0.1
    .venv/bin/python -m benchmarks.vrrp_failover --runs 20 --intervals 0.25 --fault sigterm
    .venv/bin/python -m benchmarks.vrrp_failover --runs 20 --intervals 1 --auth pass --vmac

`--auth pass|ah` runs VRRPv2 (v3 has no authentication) with that authentication on both
sides, `--vmac` a virtual MAC (use_vmac) on both; with it the takeover is the new master's
first advert, as both masters answer ARP with the same MAC.

Run from the repository root, as root (network namespaces; the lab is scripts.labkit.VrrpLab).
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

from scripts.labkit import PYTHON, REPO, VIP, VrrpLab, keepalived_conf, sh

MASTER_PRIO, BACKUP_PRIO = 200, 100
TOLERANCE = 0.005  # medians this close count as level
START_WAIT = 60.0  # a daemon starting in an emulated VM takes many seconds


def mdi(interval: float, priority: int = BACKUP_PRIO) -> float:
    """RFC 5798 Master_Down_Interval for the backup, in seconds."""
    return 3 * interval + (256 - priority) * interval / 256


PASSWORD = "bench"
VMAC = "vrrp.51"  # both daemons' default name for VRID 51


def start(lab: VrrpLab, impl: str, node: str, priority: int, interval: float, auth: str, vmac: bool) -> None:
    """directord is the whole daemon (`directord run`, one VRRP instance, no IPVS needed);
    keepalived runs VRRP only."""
    version = 2 if auth != "none" else 3
    if impl == "directord":
        extra: dict[str, object] = {"version": version}
        if auth != "none":
            extra |= {"auth_type": auth, "auth_pass": PASSWORD}
        if vmac:
            extra["use_vmac"] = True
        lab.start_directord(node, priority=priority, advert_interval=f"{round(interval * 1000)}ms", **extra)
    else:
        idx = lab.nodes.index(node) + 1
        conf = keepalived_conf(lab.addr(idx), priority=priority, version=version,
                               interval=f"{interval:g}", peers=[])
        lines = [f"  authentication {{\n    auth_type {auth.upper()}\n    auth_pass {PASSWORD}\n  }}"] \
            if auth != "none" else []
        lines += ["  use_vmac"] if vmac else []
        lab.start_keepalived(node, conf.replace("  state BACKUP\n", "  state BACKUP\n" + "".join(
            line + "\n" for line in lines), 1))


def holders(lab: VrrpLab, vmac: bool) -> list[str]:
    if not vmac:
        return lab.holders()
    return [n for n in lab.nodes if f"inet {VIP}/" in sh(["ip", "-4", "addr", "show"], ns=n)]


def start_pair(lab: VrrpLab, impl: str, interval: float, auth: str, vmac: bool) -> None:
    """Master then backup, until the backup has heard the master's adverts."""
    master, backup = lab.nodes
    start(lab, impl, master, MASTER_PRIO, interval, auth, vmac)
    lab.wait_for(lambda: holders(lab, vmac) == [master], mdi(interval, MASTER_PRIO) + START_WAIT)
    start(lab, impl, backup, BACKUP_PRIO, interval, auth, vmac)
    if impl == "directord":
        lab.wait_backup(backup, timeout=START_WAIT)
    else:
        lab.wait_for(lambda: "Entering BACKUP STATE" in lab.log(backup), START_WAIT)
    time.sleep(max(1.5, 3 * interval))
    if holders(lab, vmac) != [master]:
        raise RuntimeError(f"{impl}: unexpected VIP holders {holders(lab, vmac)}")


def start_probe(lab: VrrpLab, interval: float, align: bool, fault: str, vmac: bool) -> subprocess.Popen:
    master_addr = lab.addr(1)
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.client, PYTHON, "-m", "benchmarks.vrrp_probe",
         "--src", "192.0.2.50", "--vip", VIP, "--mac", lab.mac(lab.nodes[1]),
         "--timeout", str(mdi(interval) + 5),
         *(["--align-src", master_addr] if align else []),
         *(["--resign-src", master_addr] if fault == "sigterm" else []),
         *(["--advert-src", lab.addr(2)] if vmac else [])],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )


def fault_and_watch(lab: VrrpLab, probe: subprocess.Popen, impl: str, align: bool,
                    fault: str) -> tuple[float, float | None]:
    """Kill (or stop) the master right after its advert; (takeover, priority 0) from the fault."""
    assert probe.stdout is not None
    if probe.stdout.readline().strip() != "ready":
        raise RuntimeError("prober failed to start")
    if align and not probe.stdout.readline().startswith("advert"):
        raise RuntimeError(f"{impl}: no advert from the master")
    # The whole process group at once, as systemd does: with SIGKILL, keepalived's
    # VRRP child would otherwise notice its parent dying and resign gracefully.
    pgid = os.getpgid(lab.procs[lab.nodes[0]].pid)
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


def clear_pair(lab: VrrpLab) -> None:
    """Both daemons gone (with their process groups) and no VIP left behind."""
    for node in lab.nodes:
        proc = lab.procs.pop(node, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if proc:
            proc.wait()
        sh(["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], ns=node, check=False)
        sh(["ip", "link", "del", VMAC], ns=node, check=False)  # a killed daemon's virtual MAC


def one_run(lab: VrrpLab, impl: str, interval: float, align: bool, fault: str, auth: str,
            vmac: bool) -> tuple[float, float | None]:
    """(fault to takeover, fault to the priority-0 advert or None) in seconds."""
    start_pair(lab, impl, interval, auth, vmac)
    probe = start_probe(lab, interval, align, fault, vmac)
    try:
        return fault_and_watch(lab, probe, impl, align, fault)
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
        clear_pair(lab)


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
    ap.add_argument("--auth", choices=("none", "pass", "ah"), default="none",
                    help="VRRPv2 with this authentication on both sides")
    ap.add_argument("--vmac", action="store_true", help="a virtual MAC (use_vmac) on both sides")
    args = ap.parse_args()
    intervals = [float(x) for x in args.intervals.split(",")]
    impls = args.impls.split(",")
    takeovers: dict[str, dict[str, list[float]]] = {}
    resigns: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dvr-bench-") as tmp:
        if args.keep_logs:
            tmp = tempfile.mkdtemp(prefix="dvr-bench-logs-")
            print(f"logs in {tmp}", file=sys.stderr)
        lab = VrrpLab(2, Path(tmp))
        try:
            for interval in intervals:
                key = f"{interval:g}"
                for run in range(args.runs):
                    for impl in impls:  # interleaved so both see the same host load
                        t, resigned = one_run(lab, impl, interval, args.phase == "advert", args.fault,
                                              args.auth, args.vmac)
                        takeovers.setdefault(key, {}).setdefault(impl, []).append(t)
                        extra = ""
                        if resigned is not None:
                            resigns.setdefault(key, {}).setdefault(impl, []).append(resigned)
                            extra = f"  priority 0 at {resigned * 1000:6.1f} ms"
                        print(f"interval {key}s run {run + 1:2d} {impl:10s} "
                              f"{t * 1000:8.1f} ms{extra}", file=sys.stderr, flush=True)
        finally:
            lab.close()
    print(f"\nauthentication: {args.auth}, virtual MAC: {'yes' if args.vmac else 'no'}")
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
