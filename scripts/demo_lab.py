"""The demo: the failover lab and the drill, directord and keepalived side by side.

    python -m scripts.demo_lab [--variants nat,dr] [--repeat N] [--report-dir out/demo]

For each variant: build the lab (client, two directors, three real servers), run every drill
scenario against a directord pair and a keepalived pair in the same lab, print the report, and
tear the lab down, whatever happened (the directors' logs are kept in
REPORT_DIR/logs-VARIANT). Exits 1 when directord broke a bound (takeover beyond
Master_Down_Interval + 50 ms, a long-lived connection lost, the VIP ending on the wrong director;
keepalived's broken bounds are reported but it is the reference, not the subject), 2 when the lab
could not be built. Needs ip_vs: scripts/demo runs this inside the VM when the
host kernel lacks it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from director.drill.labstate import run_dir, state_file
from scripts.labkit import DIRECTORD, PYTHON, REPO

LAB = "demo"
TARGET_MARGIN = 0.05  # the bound: Master_Down_Interval + 50 ms


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def lab(*args: str) -> int:
    return subprocess.run([PYTHON, "-m", "scripts.lab", *args, "--name", LAB], cwd=REPO).returncode


def max_takeover() -> float:
    """Master_Down_Interval of lb2 (from the lab's state file) + 50 ms."""
    from director.drill.core import master_down_interval

    state = json.loads(state_file(LAB).read_text())
    return master_down_interval(state["advert_interval"], state["priorities"]["lb2"]) + TARGET_MARGIN


def keep_logs(dest: Path) -> None:
    """The directors' logs outlive the lab: they explain what a figure cannot."""
    rdir = run_dir(LAB)
    shutil.rmtree(dest, ignore_errors=True)
    for log in rdir.glob("lb*/*.log"):
        (dest / log.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, dest / log.parent.name / log.name)


def drill_variant(variant: str, report_dir: Path, repeat: int) -> int:
    """Lab up, drill, lab down; the drill's exit code (2 if the lab did not come up)."""
    step(f"{variant.upper()} lab: client -> VIP on lb1/lb2 (VRRP) -> rs1..rs3 (busybox httpd + stream service)")
    started = time.monotonic()
    try:
        if lab("up", "--variant", variant) != 0:
            print(f"demo: the {variant} lab did not come up", file=sys.stderr)
            return 2
        print(f"lab up in {time.monotonic() - started:.0f} s", flush=True)
        step(f"{variant.upper()} drill: directord and keepalived, every scenario")
        report = report_dir / f"drill-{variant}"
        return subprocess.run([DIRECTORD, "drill", "--lab", LAB, "--directors", "directord,keepalived",
                               "--gate", "directord", "--max-takeover", f"{max_takeover():.3f}",
                               "--repeat", str(repeat),
                               "--report", str(report)],
                              cwd=REPO).returncode
    finally:
        keep_logs(report_dir / f"logs-{variant}")
        lab("down")
        print(f"{variant} done in {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="nat,dr", help="lab variants to drill, comma separated (nat, dr)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every scenario (medians from 3 up)")
    parser.add_argument("--report-dir", default=str(REPO / "out" / "demo"), help="where the reports go")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in ("nat", "dr")]
    if unknown or not variants:
        print(f"demo: unknown variant {unknown[0] if unknown else '(none)'} (known: nat, dr)", file=sys.stderr)
        return 2
    if not Path("/proc/net/ip_vs").exists():
        print("demo: this kernel has no ip_vs; run `sudo scripts/demo` (it uses the VM rig)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: the lab comes down
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    codes = {variant: drill_variant(variant, report_dir, args.repeat) for variant in variants}
    step("summary")
    for variant, code in codes.items():
        verdict = {0: "all bounds held", 1: "BOUNDS BROKEN"}.get(code, f"FAILED (exit {code})")
        print(f"  {variant}: {verdict}; report {report_dir}/drill-{variant}.txt, timeline .png")
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main())
