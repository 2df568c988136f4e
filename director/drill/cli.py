"""`directord drill`: run failover scenarios against a running lab and report.

Each implementation (directord, then keepalived when installed) runs every chosen scenario in
the same lab; the figures are printed side by side, written to PREFIX.txt with a timeline in
PREFIX.png, and checked against the bounds given on the command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from director.drill.compare import summarize, trailing
from director.drill.core import SCENARIOS, Bounds, Figures, Run, breaches, master_down_interval, measure
from director.drill.report import text_report, timeline_png

if TYPE_CHECKING:
    from director.drill.runner import LabDriver

# New connections per second: three servers answer within 120 ms of a recovery, and the lab's
# emulated 2-CPU machine keeps idle time (at 50/s it saturates and every process, the client's
# and the directors', runs late).
RATE = 25.0
LONG = 12  # long-lived connections held through each scenario
PHASE = 0.05  # a baseline fault lands this long after one of the master's adverts (see runner.act)


KNOWN = ("directord", "keepalived")


def implementations(args: argparse.Namespace) -> list[str]:
    """`--directors` (comma separated, or a list from Python callers); by default directord,
    and keepalived too when it is installed. ValueError names an unknown one."""
    chosen = args.directors
    if isinstance(chosen, str):
        chosen = chosen.split(",")
    chosen = [c.strip() for c in chosen or [] if c.strip()]
    for impl in chosen:
        if impl not in KNOWN:
            raise ValueError(f"unknown director {impl} (known: {', '.join(KNOWN)})")
    if chosen:
        return list(dict.fromkeys(chosen))
    return ["directord", "keepalived"] if shutil.which("keepalived") else ["directord"]


def header(state: dict, bounds: Bounds, args: argparse.Namespace) -> str:
    advert = state["advert_interval"]
    mdi = master_down_interval(advert, state["priorities"]["lb2"])
    phase = getattr(args, "fault_phase", PHASE)
    when = "at a random phase" if phase is None else f"{phase * 1000:.0f} ms after one of the master's adverts"
    return (f"directord drill: lab {state['name']} ({state['variant']}), VIP {state['vip']}, "
            f"advert {advert * 1000:.0f} ms, lb2 Master_Down_Interval {mdi * 1000:.0f} ms "
            f"(target takeover <= {(mdi + 0.05) * 1000:.0f} ms)\n"
            f"load: {_rate(args):.0f} new connections/s (1 s timeout), {LONG} long-lived connections; "
            f"{_rounds(args)} round(s) per scenario; faults {when}\n"
            f"bounds: takeover {bounds.max_takeover}, failed requests {bounds.max_failed_requests}, "
            f"lost connections {bounds.max_lost_connections}")


def _rate(args: argparse.Namespace) -> float:
    return getattr(args, "rate", RATE)


def _rounds(args: argparse.Namespace) -> int:
    return getattr(args, "repeat", 1)


def run_drill(args: argparse.Namespace) -> int:
    from director.drill.runner import LabDriver, LabError, check_lab

    scenarios = args.scenario or list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"directord drill: unknown scenario {unknown[0]} (known: {', '.join(SCENARIOS)})", file=sys.stderr)
        return 2
    try:
        impls = implementations(args)
        state = check_lab(args.lab)
        driver = LabDriver(state)
    except (LabError, ValueError) as exc:
        print(f"directord drill: {exc}", file=sys.stderr)
        return 2
    bounds = Bounds(args.max_takeover, args.max_failed_requests, args.max_lost_connections)
    servers = sorted(state["servers"])
    runs: list[Run] = []
    phase = getattr(args, "fault_phase", PHASE)
    try:
        for round_ in range(1, _rounds(args) + 1):  # implementations take turns: they share the machine's load
            for impl in impls:
                runs += drill_round(driver, impl, scenarios, round_, _rate(args), phase)
    finally:
        driver.close()
    return finish(args, state, bounds, impls, scenarios, servers, runs)


def drill_round(driver: LabDriver, impl: str, scenarios: list[str], round_: int, rate: float,
                phase: float | None) -> list[Run]:
    """Every scenario once for one implementation; a scenario that cannot start is an error run."""
    try:
        driver.use(impl)
    except (TimeoutError, RuntimeError) as exc:
        return [Run(s, impl, 0, 0, 0, error=str(exc), round=round_) for s in scenarios]
    runs = []
    for scenario in scenarios:
        print(f"drill: round {round_} {impl} {scenario} ...", file=sys.stderr, flush=True)
        try:
            driver.ensure(SCENARIOS[scenario].pre, impl)
        except (TimeoutError, RuntimeError) as exc:
            runs.append(Run(scenario, impl, 0, 0, 0, error=f"precondition: {exc}", round=round_))
            continue
        run = driver.run(scenario, impl, rate, LONG, phase)
        run.round = round_
        runs.append(run)
    return runs


def finish(args: argparse.Namespace, state: dict, bounds: Bounds, impls: list[str], scenarios: list[str],
           servers: list[str], runs: list[Run]) -> int:
    """Figures, verdicts, the text report and the PNG; the exit code."""
    rounds = _rounds(args)
    measured = []  # (run, its figures, the bounds it broke), in run order
    by_pair: dict[tuple[str, str], list[Figures]] = {}
    verdicts: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        fig = measure(run, servers)
        found = breaches(run.scenario, fig, bounds)
        measured.append((run, fig, found))
        pair = (run.implementation, run.scenario)
        by_pair.setdefault(pair, []).append(fig)
        verdicts.setdefault(pair, []).extend(found if rounds == 1 else [f"round {run.round}: {b}" for b in found])
    results = {pair: summarize(figs) for pair, figs in by_pair.items()}
    step = len(servers) / _rate(args)  # the load's resolution for "all servers serve"
    text = text_report(results, impls, scenarios, verdicts, header(state, bounds, args), step)
    prefix = Path(args.report)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.txt").write_text(text)
    Path(f"{prefix}.png").write_bytes(timeline_png([r for r in runs if not r.error or r.end > r.start]))
    Path(f"{prefix}.runs.json").write_text(json.dumps([asdict(r) for r in runs]))  # raw timelines, to check figures
    if args.json:
        print(json.dumps({"runs": [{"implementation": r.implementation, "scenario": r.scenario, "round": r.round,
                                    **asdict(f), "breaches": found} for r, f, found in measured],
                          "trailing": {i: {s: trailing(results[(impls[0], s)], results[(i, s)], step)
                                           for s in scenarios if (impls[0], s) in results and (i, s) in results}
                                       for i in impls[1:]}}, indent=1))
    else:
        print(text, end="")
        print(f"report: {prefix}.txt, timeline: {prefix}.png")
    return 1 if gated_breaches(verdicts, getattr(args, "gate", None)) else 0


def gated_breaches(verdicts: dict[tuple[str, str], list[str]], gate: str | None) -> list[str]:
    """Broken bounds that decide the exit code: every implementation's, or only those named in
    `--gate` (a reference pair run alongside is reported but does not fail the run)."""
    names = {g.strip() for g in (gate or "").split(",") if g.strip()}
    return [b for (impl, _), found in verdicts.items() if not names or impl in names for b in found]
