"""`directord run` with the in-memory IPVS backend, for host tests of the whole daemon.

The host kernel has no IPVS, so `directord run` with virtual servers cannot start here. This
does what `director.cli.cmd_run` does (logs, the VRRP child forked first, the Daemon under
uvloop) with `MemoryIpvs` in place of the netlink backend: VRRP, health checks, the control
socket and every other part run for real. `python -m tests.daemon.memory_daemon CONFIG`.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

from director import logs
from director.config.load import load_config
from director.daemon.daemon import Daemon
from director.daemon.vrrp_child import VrrpProcess
from director.ipvs.memory import MemoryIpvs


def main(path: str) -> int:
    config = load_config(path)
    logs.configure(config.global_.log_level, config.global_.log_format)
    vrrp = VrrpProcess.fork(config.vrrp_instances, config.global_.vrrp_realtime_priority) \
        if config.vrrp_instances else None
    daemon = Daemon(config, MemoryIpvs(), None, vrrp)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(daemon.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
