"""Print what happened around each drill fault, from the raw timelines a drill saves.

    python -m benchmarks.drill_trace out/demo/drill-nat.runs.json [--scenario sigkill] [--before 1.2 --after 2]

One line per event in milliseconds from the fault: adverts and priority-0 adverts (`resign`),
gratuitous ARPs seen on the client's wire (kernel stamps), VIP add/del printed by `ip monitor` in
each director, and the drill's own actions; then every failed request. It is how the figures of
benchmarks/drill_results.md were checked: a takeover should follow the old master's last advert
by Master_Down_Interval (silent master) or Skew_Time (priority 0).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def trace(run: dict, before: float, after: float) -> list[str]:
    fault = run["fault"]
    lines = [f"== {run['implementation']} {run['scenario']}" + (f" (error: {run['error']})" if run["error"] else "")]
    for event in sorted(run["events"], key=lambda e: e["t"]):
        offset = event["t"] - fault
        if -before <= offset <= after:
            lines.append(f"  {offset * 1000:+9.1f} ms  {event['director']}  {event['kind']}")
    failed = [f"{(r['t'] - fault) * 1000:+.0f} ms {r['server']}" for r in run["requests"] if not r["ok"]]
    lines.append("  failed requests: " + (", ".join(failed) or "none"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", help="PREFIX.runs.json written by directord drill")
    parser.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    parser.add_argument("--before", type=float, default=1.2, help="seconds before the fault")
    parser.add_argument("--after", type=float, default=2.0, help="seconds after the fault")
    args = parser.parse_args()
    for run in json.loads(Path(args.runs).read_text()):
        if not args.scenario or run["scenario"] in args.scenario:
            print("\n".join(trace(run, args.before, args.after)))


if __name__ == "__main__":
    main()
