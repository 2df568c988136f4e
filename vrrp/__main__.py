"""`python -m vrrp -c FILE`: run only the VRRP instances of a directord config.

A standalone runner for process-level tests and for debugging a VRRP setup
without IPVS. SIGTERM and SIGINT are graceful: masters send priority 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

import structlog

from director import logs
from director.config.model import GlobalConfig, VrrpInstanceConfig, field_choices


async def _main(path: str) -> int:
    from director.config.load import load_config  # director owns config parsing
    from vrrp.runtime import VrrpRuntime
    from vrrp.stop_signals import take_stop_signals

    config = load_config(path)
    if not config.vrrp_instances:
        print(f"{path}: no [[vrrp_instance]] tables", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    runtime = VrrpRuntime(_untracked(config.vrrp_instances))
    take_stop_signals(asyncio.get_running_loop(), lambda _sig: stop.set(), runtime.say_farewell)
    await runtime.run(stop)
    structlog.get_logger("vrrp").info("stopped")
    return 0


def _untracked(instances: tuple[VrrpInstanceConfig, ...]) -> tuple[VrrpInstanceConfig, ...]:
    """Tracked scripts, files and processes are run, read and counted by `directord run`, which
    this runner is not: without them the instances would wait in init for ever, so they go."""
    kept = []
    for cfg in instances:
        if cfg.track_scripts or cfg.track_files or cfg.track_processes:
            structlog.get_logger("vrrp").warning("tracked scripts, files and processes need directord run: "
                                                 "ignored here", instance=cfg.name)
            cfg = dataclasses.replace(cfg, track_scripts=(), track_files=(), track_processes=())
        kept.append(cfg)
    return tuple(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vrrp", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="directord.toml")
    parser.add_argument("--log-level", choices=field_choices(GlobalConfig, "log_level"), default="info")
    parser.add_argument("--log-format", choices=field_choices(GlobalConfig, "log_format"), default="text")
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)  # the renderer directord uses
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:  # uvloop 0.17 has no uvloop.run
            return runner.run(_main(args.config))
    except Exception as exc:  # one clear line, non-zero exit
        print(f"vrrp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
