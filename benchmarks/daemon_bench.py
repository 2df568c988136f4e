"""The daemon as a service: RSS, idle CPU, reload, /metrics scrape and VRRP advert jitter.

    .venv/bin/python -m benchmarks.daemon_bench [--backend memory|netlink] [--sizes 1000,10000]
        [--per-service 4]

Each size runs a real `Daemon` (the code `directord run` runs, VRRP child included) in its
own processes inside a network namespace, with `--per-service` real servers per virtual
service (`--sizes 10000 --per-service 1` is a 10k-service config). The IPVS backend is the
in-memory one on a host without ip_vs (these figures are the daemon's own cost: its
Python state, checks, snapshot and metrics), or the kernel's (`--backend netlink`, inside
`scripts/vm-run`, where emulation slows Python down many times over).

Figures per size:
- RSS of the daemon and of its VRRP child after start-up and a first reconcile, and their
  PSS summed (pages the fork shares count once); idle CPU of both (checks of type none) over 10 s,
  once at rest (the checks have risen, their writes are done, no operation for 4 s);
- reload with one real server's weight changed: seconds until `directord reload` answers
  (it waits for the pass that applies the change), and the IPVS writes made by that pass
  and the next periodic one (from the daemon's own counters);
- /metrics scrape time (median and max of 20);
- VRRP advert jitter: the largest deviation of the gaps between adverts from advert_interval,
  timed as they leave the daemon's interface, while /metrics is scraped in a loop and every
  real server is health-checked over TCP each second (10k checks/s at 10k real servers).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.healthcheck_bench import cpu_seconds as cpu  # the same /proc readers
from benchmarks.healthcheck_bench import rss_mb
from director.config.toml_write import dumps
from director.drill import wire  # the drill's packet capture
from scripts.labkit import REPO, Lab, sh, wait_for
from vrrp.sockets import STAMP_SPACE, kernel_stamp

ADVERT = 0.1
SELF = [sys.executable, "-m", "benchmarks.daemon_bench"]  # the daemon, sniffer and acceptor processes


def config_text(n_real: int, workdir: Path, check: str, per_service: int = 4) -> str:
    services = []
    for s in range(n_real // per_service):
        service: dict = {"name": f"vs{s}", "address": f"198.{18 + s // 62500}.{s // 250 % 250}.{s % 250 + 1}",
                         "port": 80, "scheduler": "wlc"}
        if check == "tcp":
            service["check"] = {"type": "tcp", "interval": "1s", "timeout": "1s", "port": 8080, "rise": 1,
                                "fall": 3, "initial": "up"}
        service["real_server"] = [
            {"address": f"127.1.{index // 250}.{index % 250 + 1}", "port": 80, "weight": 10}
            for index in range(s * per_service, (s + 1) * per_service)]
        services.append(service)
    return dumps({
        "global": {"router_id": "bench", "control_socket": f"{workdir}/control.sock", "state_dir": f"{workdir}/state",
                   "metrics_listen": "127.0.0.1:9612", "reconcile_interval": "5s"},
        "vrrp_instance": [{"name": "VI_1", "interface": "eth0", "vrid": 7, "priority": 200,
                           "advert_interval": f"{int(ADVERT * 1000)}ms", "virtual_ips": ["192.0.2.100/24"]}],
        "virtual_server": services or None,
    })


def serve(config_path: str, backend: str) -> None:
    """The daemon process: `directord run`'s Daemon with the chosen IPVS backend."""
    import uvloop

    from director import logs
    from director.config.load import load_config
    from director.daemon.daemon import Daemon

    logs.configure("warning", fmt="json")
    config = load_config(config_path)
    if backend == "memory":
        from director.ipvs.memory import MemoryIpvs

        ipvs = MemoryIpvs()
    else:
        from director.ipvs.kernel import NetlinkIpvs

        ipvs = NetlinkIpvs()
    from director.daemon.vrrp_child import VrrpProcess

    # as `directord run` does, before the loop
    vrrp = VrrpProcess.fork(config.vrrp_instances, config.global_.vrrp_realtime_priority)
    sys.exit(uvloop.run(Daemon(config, ipvs, vrrp=vrrp).run()))


def family(pid: int) -> list[int]:
    """The daemon and its VRRP child."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def pss_mb(pid: int) -> float:
    """Proportional set size: pages shared with the forked VRRP child count half in each,
    so the sum over both processes is the memory the daemon really uses."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def family_cpu(pids: list[int]) -> float:
    return sum(cpu(pid) for pid in pids)


def acceptor() -> None:
    """Accept and close on 0.0.0.0:8080 as fast as possible (the TCP checks' target)."""
    import asyncio

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handle, "0.0.0.0", 8080, backlog=4096, reuse_address=True)
        await server.serve_forever()

    import uvloop

    uvloop.run(main())


def control(ns: str, sock: Path, *args: str) -> dict:
    from director.daemon.control import request

    return request(str(sock), args[0], timeout=300)


def scrape_seconds(ns: str) -> float:
    out = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "http://127.0.0.1:9612/metrics"], ns=ns,
             timeout=60)
    return float(out)


def advert_gaps(sniffer: socket.socket, seconds: float) -> list[float]:
    """Gaps between the daemon's VRRP adverts as they leave its eth0, from the kernel's
    timestamps (SO_TIMESTAMPNS) taken when the daemon hands each one to the device: this
    sniffer's own scheduling, and softirq delays on the receiving side, do not count; the
    daemon's do."""
    stamps: list[float] = []
    deadline = time.monotonic() + seconds
    sniffer.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            frame, ancillary, _, address = sniffer.recvmsg(2048, STAMP_SPACE)
        except TimeoutError:
            continue
        event = wire.parse(frame, b"")
        stamp = kernel_stamp(ancillary)
        if address[2] == socket.PACKET_OUTGOING and event and event["kind"] == "advert" and stamp is not None:
            stamps.append(stamp)
    return [b - a for a, b in itertools.pairwise(stamps)]


def measure(n_real: int, backend: str, per_service: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"dbench-{n_real}-"))
    figures: dict = {"real_servers": n_real, "services": n_real // per_service}
    with Lab("dbench-") as lab:
        ns, peer = lab.netns("d"), lab.netns("p")
        lab.veth(ns, "eth0", "192.0.2.1/24", bridge_ns=peer, peer="eth0", peer_address="192.0.2.2/24")
        config = workdir / "directord.toml"
        config.write_text(config_text(n_real, workdir, "none", per_service))
        sock = workdir / "control.sock"
        daemon = lab.start([*SELF, "--serve", str(config), "--backend", backend], ns=ns, cwd=REPO)
        wait_for(lambda: sock.exists(), 120, what="the daemon")
        wait_for(lambda: control(ns, sock, "status").get("reconcile", {}).get("passes_total", 0) >= 1, 300,
                 what="the first reconcile pass")

        def operations() -> int:
            return sum(control(ns, sock, "status")["reconcile"]["operations_total"].values())

        # At rest: the checks (type none) have risen and their writes are done, nothing changes
        # any more (the old 2 s wait measured the warm-up as "idle").
        settled = operations()
        while True:
            time.sleep(4)
            now = operations()
            if now == settled:
                break
            settled = now
        time.sleep(2)
        pids = family(daemon.pid)
        figures["rss_mb"] = "+".join(str(round(rss_mb(pid), 1)) for pid in pids)
        figures["pss_total_mb"] = round(sum(pss_mb(pid) for pid in pids), 1)
        before = family_cpu(pids)
        time.sleep(10)
        figures["idle_cpu_percent"] = round((family_cpu(pids) - before) / 10 * 100, 2)

        ops_before = operations()
        config.write_text(config.read_text().replace("  weight = 10\n", "  weight = 11\n", 1))
        began = time.monotonic()
        answer = control(ns, sock, "reload")  # answers once the pass that applies it has run
        figures["reload_seconds"] = round(time.monotonic() - began, 3)
        seconds = answer.get("seconds", {})
        # the daemon's own split: the file read and checked, then everything that follows it
        figures["reload_apply_seconds"] = round(seconds["total"] - seconds["config_load"], 3) if seconds else None
        assert "changes" in answer, answer
        time.sleep(6)  # one more periodic pass: nothing else may be written
        figures["reload_writes"] = operations() - ops_before

        scrapes = [scrape_seconds(ns) for _ in range(20)]
        figures["scrape_median_ms"] = round(statistics.median(scrapes) * 1000, 1)
        figures["scrape_max_ms"] = round(max(scrapes) * 1000, 1)
        daemon.terminate()
        daemon.wait(timeout=60)

        # Jitter under load: TCP checks on every real server each second, and scrapes in a loop.
        config.write_text(config_text(n_real, workdir, "tcp", per_service))
        lab.start([*SELF, "--acceptor"], ns=ns, cwd=REPO)
        daemon = lab.start([*SELF, "--serve", str(config), "--backend", backend], ns=ns, cwd=REPO)
        wait_for(lambda: sock.exists(), 120, what="the daemon")
        time.sleep(5)  # past Master_Down_Interval (3.6 advert intervals + skew): master and checking
        scraper = lab.start(["bash", "-c", "while true; do curl -s -o /dev/null http://127.0.0.1:9612/metrics; done"],
                            ns=ns)
        time.sleep(3)
        pids = family(daemon.pid)
        cpu_before, began = family_cpu(pids), time.monotonic()
        gaps = json.loads(sh([*SELF, "--sniff", "20"], ns=ns, timeout=120))
        scraper.kill()
        figures["daemon_cpu_percent"] = round((family_cpu(pids) - cpu_before) / (time.monotonic() - began) * 100)
        figures["adverts_seen"] = len(gaps) + 1
        figures["advert_jitter_max_ms"] = round(max(abs(g - ADVERT) for g in gaps) * 1000, 1) if gaps else None
        figures["advert_jitter_p99_ms"] = round(sorted(abs(g - ADVERT) for g in gaps)[int(len(gaps) * 0.99) - 1]
                                                * 1000, 1) if gaps else None
    return figures


def sniff_main(seconds: float) -> None:
    print(json.dumps(advert_gaps(wire.open_socket("eth0"), seconds)))  # ETH_P_ALL: sees outgoing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("memory", "netlink"), default="memory")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--per-service", type=int, default=4, help="real servers per virtual service")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--acceptor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sniff", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.backend)
    if args.acceptor:
        return acceptor()
    if args.sniff:
        return sniff_main(args.sniff)
    Lab.sweep("dbench-")
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} backend={args.backend} "
          f"load={os.getloadavg()[0]:.2f} advert_interval={ADVERT}s")
    header = ("real_servers", "services", "rss_mb", "pss_total_mb", "idle_cpu_percent", "reload_seconds",
              "reload_apply_seconds", "reload_writes", "scrape_median_ms",
              "scrape_max_ms", "daemon_cpu_percent", "adverts_seen", "advert_jitter_max_ms", "advert_jitter_p99_ms")
    print(" ".join(f"{h:>20}" for h in header))
    for size in (int(s) for s in args.sizes.split(",")):
        figures = measure(size, args.backend, args.per_service)
        print(" ".join(f"{figures.get(h)!s:>20}" for h in header), flush=True)


if __name__ == "__main__":
    main()
