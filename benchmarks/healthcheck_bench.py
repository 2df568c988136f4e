"""Health-check throughput benchmark: N real loopback listeners, one checker process.

    .venv/bin/python -m benchmarks.healthcheck_bench --targets 1000,5000,10000 --types tcp,http

nginx serves every target port (one listener per target, one worker process, so the
server and the checker each get a core). The checker runs in its own process (uvloop,
the production Scheduler with its built-in probes, interval 1 s; it counts samples
through `on_sample`); the parent samples that process's CPU time (utime and stime
from /proc, both reported) and RSS. Figures per run: sustained checks/s (counted
by nginx: connections it accepted), CPU seconds per 1,000 checks, RSS.

The measurement needs only a pid (and nginx's count), so another checker is measured
the same way: `--checkers directord,keepalived` also writes a keepalived.conf with
one TCP_CHECK/HTTP_GET real server per target and runs `keepalived --check -n`
(its checker needs IPVS: run it inside `scripts/vm-run`, and compare both sides
inside the same VM), then prints the CPU-per-check ratio directord/keepalived.
In that comparison directord's runs get the same IPVS service keepalived makes
(`ipvsadm -R`), so both checkers' packets cross the same kernel hooks.

The datagram types (`--types dns,udp,ping`) check N loopback addresses (127.1.x.y) instead of
N ports: one unbound (`interface-automatic`, so it answers from the address asked) serves dns
(an A query of a local-data name) and udp (the same query as a fixed payload, any reply
passes); the kernel answers ping. These are counted by an nftables counter of the packets sent
to 127.1.0.0/16 (`sent_counter`), independent of the checker, as nginx counts the others.
keepalived's DNS_CHECK, UDP_CHECK and PING_CHECK are the peers.
A line per size gives CPU per check against the tcp run's of the same size (`.../tcp`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- measurement -----------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def cpu_split_tree(pid: int) -> tuple[float, float]:
    """(user, system) CPU of a process and its live children (keepalived forks its checker)."""
    user, system = cpu_split(pid)
    with contextlib.suppress(FileNotFoundError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                u, s = cpu_split_tree(int(child))
                user, system = user + u, system + s
    return user, system


def cpu_seconds_tree(pid: int) -> float:
    return sum(cpu_split_tree(pid))


def run_delay_seconds(pid: int) -> float:
    """Time the process (and its live children) was runnable but waiting for a CPU."""
    total = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    with contextlib.suppress(FileNotFoundError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                total += run_delay_seconds(int(child))
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Figures:
    checker: str
    check: str
    targets: int
    interval: float
    seconds: float
    checks: int
    failures: int
    checks_per_s: float
    cpu_s: float
    cpu_s_per_1000: float
    user_s_per_1000: float
    sys_s_per_1000: float
    cpu_share: float  # of one core
    rss_mb: float
    server_cpu_share: float
    cpu_wait_share: float  # runnable but not running: >0.1 means the box is contended
    last_failure: str


# --- the real servers --------------------------------------------------------------------


def free_ports(n: int, start: int = 10000) -> list[int]:
    ports, port = [], start
    while len(ports) < n:
        if port >= 32768:
            raise SystemExit("not enough free ports below the ephemeral range")
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx binds
            try:
                s.bind(("127.0.0.1", port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def nginx_accepts(status_port: int) -> int:
    """Connections nginx has accepted: a count of checks independent of the checker."""
    with socket.create_connection(("127.0.0.1", status_port), 5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    lines = data.split(b"\r\n\r\n", 1)[1].decode().splitlines()
    return int(lines[2].split()[0])  # "server accepts handled requests" / " a h r"


def start_nginx(workdir: Path, ports: list[int], status_port: int) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    listens = "\n".join(f"        listen 127.0.0.1:{p} backlog=1024;" for p in ports)
    # every listener takes a connection slot too; use all the descriptors there are
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log crit;
events {{ worker_connections {nofile - 64}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    keepalive_timeout 0;
    server {{
{listens}
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{status_port};
        location / {{ stub_status; }}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    for port in (ports[0], ports[-1], status_port):
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"nginx exited: {proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("nginx did not come up") from None
                time.sleep(0.1)
    return proc


# --- the checkers ------------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> None:
    """The measured process: the production scheduler and probes, counting samples."""
    import inspect

    import uvloop

    from director.config.model import CheckConfig
    from healthcheck import probes
    from healthcheck.result import Target
    from healthcheck.scheduler import Scheduler

    targets = [_target(t) for t in Path(args.ports_file).read_text().split()]
    extra = {"dns": {"query_name": BENCH_NAME, "query_type": "A"},
             "udp": {"send": bench_query()}}.get(args.type, {})
    check = CheckConfig(type=args.type, interval=args.interval, timeout=1.0, rise=2, fall=3,
                        jitter=1.0, path="/", expect_body="ok" if args.type == "http" else None, **extra)
    every = 0.1 if args.type in DATAGRAM_KINDS else 1.0
    counts = {"checks": 0, "failures": 0, "last_failure": ""}

    def counted(target, check, result) -> None:
        counts["checks"] += 1
        if not result.ok:
            counts["failures"] += 1
            counts["last_failure"] = result.reason

    async def wrapped(target, check):  # for a baseline checkout without on_sample
        result = await probes.probe(target, check)
        counted(target, check, result)
        return result

    async def main() -> None:
        if "on_sample" in inspect.signature(Scheduler).parameters:
            sched = Scheduler(on_sample=counted)  # the built-in probes, as the daemon runs them
        else:
            sched = Scheduler(probe=wrapped)
        for address, port in targets:
            sched.add((address, port), Target(address, port), check)
        while True:
            print(json.dumps(counts), flush=True)
            await asyncio.sleep(every)

    uvloop.run(main())


def _target(text: str) -> tuple[str, int]:
    """A targets-file word: PORT (on 127.0.0.1) or ADDRESS:PORT."""
    address, _, port = text.rpartition(":")
    return address or "127.0.0.1", int(port)


# --- the datagram kinds: loopback addresses, unbound, the kernel's echo -----------------------

DATAGRAM_KINDS = ("dns", "udp", "ping")
BENCH_NAME = "www.bench.test"


def bench_query() -> bytes:
    """The DNS query udp checks send (fixed id: unbound answers any)."""
    from healthcheck import dns_message as dm
    return dm.build_query(0x4242, dm.question(BENCH_NAME, "A", "IN")).data


def loopback_addresses(n: int) -> list[str]:
    """127.1.0.1 ... : every 127/8 address is this host's, no setup needed."""
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(n)]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def start_unbound(workdir: Path, port: int) -> subprocess.Popen:
    unbound = shutil.which("unbound") or "/usr/sbin/unbound"
    conf = workdir / "unbound.conf"
    conf.write_text(f"""server:
    interface: 0.0.0.0
    interface-automatic: yes
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    do-ip6: no
    do-tcp: no
    so-rcvbuf: 8m
    access-control: 127.0.0.0/8 allow
    local-zone: "bench.test." static
    local-data: "{BENCH_NAME}. 300 IN A 192.0.2.1"
remote-control:
    control-enable: no
""")
    proc = subprocess.Popen([unbound, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    query = bench_query()
    deadline = time.monotonic() + 30
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"unbound exited: {proc.stderr.read().decode()}")
            s.sendto(query, ("127.1.0.1", port))
            with contextlib.suppress(TimeoutError, ConnectionRefusedError):
                if s.recv(512):
                    return proc
            if time.monotonic() > deadline:
                raise SystemExit("unbound did not come up")


class DirectordChecker:
    name = "directord"
    code = ""  # another checkout's root to import healthcheck from ("": this one)

    def __init__(self, kind: str, ports: list[int], interval: float, workdir: Path) -> None:
        ports_file = workdir / "ports"
        ports_file.write_text(" ".join(map(str, ports)))
        # The worker is this file run as a script with -P (its folder not on the path), so
        # `healthcheck` and `director` come from PYTHONPATH: this checkout or the baseline's.
        self.proc = subprocess.Popen(
            [sys.executable, "-P", __file__, "worker", "--type", kind, "--interval", str(interval),
             "--ports-file", str(ports_file)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": self.code or str(ROOT)})
        self.latest = {"checks": 0, "failures": 0, "last_failure": ""}
        threading.Thread(target=self._follow, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _follow(self) -> None:
        for line in self.proc.stdout:
            self.latest = json.loads(line)

    def counts(self) -> dict:
        """Latest counts the worker printed (it prints once a second)."""
        return self.latest

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


KEEPALIVED_RS = {
    "tcp": "        TCP_CHECK {{ connect_timeout 1 }}",
    # the same check as directord's: status 200 and the body matching "ok"
    "http": "        HTTP_GET {{ url {{ path / status_code 200 regex ok }} connect_timeout 1 }}",
    # the same checks as directord's datagram kinds (udp: the DNS query as payload, a reply required)
    "dns": f"        DNS_CHECK {{{{ connect_timeout 1 type A name {BENCH_NAME} }}}}",
    "udp": "        UDP_CHECK {{ connect_timeout 1 payload {payload} require_reply }}",
    "ping": "        PING_CHECK {{ connect_timeout 1 }}",
}


class KeepalivedChecker:
    """keepalived's checker against the same targets (needs IPVS: the VM rig)."""

    name = "keepalived"

    def __init__(self, kind: str, ports: list, interval: float, workdir: Path) -> None:
        check = KEEPALIVED_RS[kind].format(payload=bench_query().hex() if kind == "udp" else "")
        servers = "\n".join(
            f"    real_server {address} {port} {{\n        weight 1\n" + check + "\n    }"
            for address, port in map(_target, map(str, ports)))
        conf = workdir / "keepalived.conf"
        conf.write_text(f"""
global_defs {{ router_id bench }}
virtual_server {VIP.replace(":", " ")} {{
    delay_loop {interval:g}
    lb_algo rr
    lb_kind NAT
    protocol {"UDP" if kind in ("dns", "udp") else "TCP"}
{servers}
}}
""")
        log = Path(tempfile.gettempdir()) / f"hcbench-keepalived-{kind}-{len(ports)}.log"
        self.log = log.open("w")  # closed in stop()
        self.proc = subprocess.Popen(
            ["keepalived", "--check", "--dont-fork", "--log-console", "-f", str(conf),
             "-p", str(workdir / "k.pid"), "-c", str(workdir / "c.pid")],
            stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def counts(self) -> dict:
        return {"checks": 0, "failures": 0, "last_failure": "(not reported by keepalived)"}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class BaselineChecker(DirectordChecker):
    """directord from another checkout (`--baseline DIR`): before/after in one run."""

    name = "baseline"


CHECKERS = {"directord": DirectordChecker, "keepalived": KeepalivedChecker,
            "baseline": BaselineChecker}


def wait_for_a_round(status_port: int, n: int, timeout: float = 180.0) -> None:
    """Block until the checker has probed every target once (start-up is not measured)."""
    start, deadline = nginx_accepts(status_port), time.monotonic() + timeout
    polls = 1
    while nginx_accepts(status_port) - start - polls < n:  # each poll is an accept too
        polls += 1
        if time.monotonic() > deadline:
            raise SystemExit(f"the checker did not probe {n} targets within {timeout:g}s")
        time.sleep(0.5)


VIP = "192.0.2.1:80"  # keepalived's virtual server in the comparison


@contextlib.contextmanager
def ipvs_like_keepalived(ports: list, wanted: bool, kind: str = "tcp"):
    """The IPVS service keepalived keeps for these targets, for the other checker's run.

    With services defined, IPVS's netfilter hooks see every packet, the checks'
    too; the other checker's loopback traffic pays that same kernel cost.
    """
    if not wanted:
        yield
        return
    proto = "-u" if kind in ("dns", "udp") else "-t"
    rules = [f"-A {proto} {VIP} -s rr"] + [
        f"-a {proto} {VIP} -r {a}:{p} -m -w 1" for a, p in map(_target, map(str, ports))]
    subprocess.run(["ipvsadm", "-R"], input="\n".join(rules) + "\n", text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["ipvsadm", "-D", proto, VIP], check=False)


def measure(checker_name: str, kind: str, n: int, interval: float, warmup: float,
            seconds: float, mirror_ipvs: bool = False) -> Figures:
    if kind in DATAGRAM_KINDS:
        return measure_datagrams(checker_name, kind, n, interval, warmup, seconds, mirror_ipvs)
    with tempfile.TemporaryDirectory(prefix="hcbench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        *ports, status_port = free_ports(n + 1)
        server = start_nginx(workdir, ports, status_port)
        stack.enter_context(ipvs_like_keepalived(ports, mirror_ipvs and checker_name != "keepalived"))
        checker = CHECKERS[checker_name](kind, ports, interval, workdir)
        try:
            wait_for_a_round(status_port, n)
            time.sleep(warmup)
            c0, s0, t0 = checker.counts(), cpu_seconds(server.pid), time.monotonic()
            a0, (u0, k0) = nginx_accepts(status_port), cpu_split_tree(checker.pid)
            w0 = run_delay_seconds(checker.pid)
            time.sleep(seconds)
            c1, s1, t1 = checker.counts(), cpu_seconds(server.pid), time.monotonic()
            a1, (u1, k1) = nginx_accepts(status_port), cpu_split_tree(checker.pid)
            rss, w1 = rss_mb(checker.pid), run_delay_seconds(checker.pid)
        finally:
            checker.stop()
            server.terminate()
            server.wait(10)
    checks = a1 - a0 - 1  # minus the second status request
    return figures(checker_name, kind, n, interval, checks, (t0, t1), (u0, k0, u1, k1), s1 - s0, (w0, w1),
                   rss, c0, c1)


def figures(checker_name: str, kind: str, n: int, interval: float, checks: int, times: tuple,
            cpu_times: tuple, server_cpu: float, waits: tuple, rss: float, c0: dict, c1: dict) -> Figures:
    (t0, t1), (u0, k0, u1, k1), (w0, w1) = times, cpu_times, waits
    elapsed = t1 - t0
    cpu = (u1 - u0) + (k1 - k0)

    def per_1k(seconds: float) -> float:
        return round(1000 * seconds / checks, 4) if checks > 0 else float("inf")

    return Figures(
        checker=checker_name, check=kind, targets=n, interval=interval,
        seconds=round(elapsed, 2), checks=checks, failures=c1["failures"] - c0["failures"],
        checks_per_s=round(checks / elapsed, 1), cpu_s=round(cpu, 2),
        cpu_s_per_1000=per_1k(cpu), user_s_per_1000=per_1k(u1 - u0),
        sys_s_per_1000=per_1k(k1 - k0),
        cpu_share=round(cpu / elapsed, 3), rss_mb=round(rss, 1),
        server_cpu_share=round(server_cpu / elapsed, 3), last_failure=c1["last_failure"],
        cpu_wait_share=round((w1 - w0) / elapsed, 3),
    )


NFT_TABLE = "hcbench"


@contextlib.contextmanager
def sent_counter():
    """An nftables counter of packets to 127.1.0.0/16 (the checks); yields a reader."""
    rules = (f"table ip {NFT_TABLE} {{\n counter sent {{ }}\n chain out {{\n"
             "  type filter hook output priority 0; policy accept;\n"
             "  ip daddr 127.1.0.0/16 counter name sent\n }\n}\n")
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)

    def read() -> int:
        out = subprocess.run(["nft", "list", "counter", "ip", NFT_TABLE, "sent"], capture_output=True,
                             text=True, check=True).stdout
        return int(out.split("packets", 1)[1].split()[0])
    try:
        yield read
    finally:
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], check=False)


def measure_datagrams(checker_name: str, kind: str, n: int, interval: float, warmup: float,
                      seconds: float, mirror_ipvs: bool) -> Figures:
    """N loopback addresses; unbound answers dns and udp, the kernel ping. Counted by nftables."""
    with tempfile.TemporaryDirectory(prefix="hcbench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        port = free_udp_port() if kind != "ping" else 7  # ping has no port; keepalived wants one
        targets = [f"{a}:{port}" for a in loopback_addresses(n)]
        server = start_unbound(workdir, port) if kind != "ping" else None
        stack.enter_context(ipvs_like_keepalived(targets, mirror_ipvs and checker_name != "keepalived", kind))
        checker = CHECKERS[checker_name](kind, targets, interval, workdir)
        server_cpu = (lambda: cpu_seconds(server.pid)) if server else (lambda: 0.0)
        sent = stack.enter_context(sent_counter())
        try:
            time.sleep(interval + 1.0 + warmup)  # a whole round first: start-up is not measured
            # the count first: `nft` takes long to start (seconds under TCG) and reads the kernel's
            # counter at its end, so the clock and the CPU are read right after it
            p0 = sent()
            c0, s0, t0 = checker.counts(), server_cpu(), time.monotonic()
            (u0, k0), w0 = cpu_split_tree(checker.pid), run_delay_seconds(checker.pid)
            time.sleep(seconds)
            p1 = sent()
            c1, s1, t1 = checker.counts(), server_cpu(), time.monotonic()
            (u1, k1), w1 = cpu_split_tree(checker.pid), run_delay_seconds(checker.pid)
            rss = rss_mb(checker.pid)
        finally:
            checker.stop()
            if server is not None:
                server.terminate()
                server.wait(10)
    checks = p1 - p0
    return figures(checker_name, kind, n, interval, checks, (t0, t1), (u0, k0, u1, k1), s1 - s0, (w0, w1),
                   rss, c0, c1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    w.add_argument("--type", required=True)
    w.add_argument("--interval", type=float, default=1.0)
    w.add_argument("--ports-file", required=True)
    parser.add_argument("--targets", default="1000,5000,10000")
    parser.add_argument("--types", default="tcp,http")
    parser.add_argument("--checkers", default="directord",
                        help="comma list: directord, keepalived (needs IPVS), baseline")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline", metavar="DIR",
                        help="checker 'baseline' runs healthcheck from this checkout")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per size, checkers alternating; ratios use medians")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args()
    if args.cmd == "worker":
        worker_main(args)
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    header = (f"{'checker':<10} {'check':<5} {'targets':>7} {'checks/s':>9} {'fail':>6} "
              f"{'cpu s/1k':>9} {'user':>7} {'sys':>7} {'cpu':>6} {'rss MB':>7} {'nginx':>6} {'waited':>6}")
    results: list[Figures] = []
    if not args.json:
        print(header, flush=True)
    checkers = args.checkers.split(",")
    if "baseline" in checkers:
        if not args.baseline:
            parser.error("checker 'baseline' needs --baseline DIR")
        BaselineChecker.code = str(Path(args.baseline).resolve())
    for kind in args.types.split(","):
        for n in map(int, args.targets.split(",")):
            for _round in range(args.repeat):  # alternate: contention drifts over minutes
                for name in checkers:
                    f = measure(name, kind, n, args.interval, args.warmup, args.seconds,
                                mirror_ipvs="keepalived" in checkers)
                    results.append(f)
                    report(f, args.json)
    print_ratios(results)


def report(f: Figures, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(f)), flush=True)
        return
    print(f"{f.checker:<10} {f.check:<5} {f.targets:>7} {f.checks_per_s:>9} "
          f"{f.failures:>6} {f.cpu_s_per_1000:>9} {f.user_s_per_1000:>7} "
          f"{f.sys_s_per_1000:>7} {f.cpu_share:>6} "
          f"{f.rss_mb:>7} {f.server_cpu_share:>6} {f.cpu_wait_share:>6}", flush=True)
    if f.failures:
        print(f"           last failure: {f.last_failure}")


def print_ratios(results: list[Figures]) -> None:
    """directord/keepalived CPU per check: per round (paired runs) and of the medians; and each
    datagram kind's CPU per check against tcp's at the same size (the goal: at most 1.5)."""
    runs: dict[tuple[str, str, int], list[float]] = {}
    for f in results:
        runs.setdefault((f.checker, f.check, f.targets), []).append(f.cpu_s_per_1000)
    for (name, kind, n), mine in runs.items():
        tcp = runs.get((name, "tcp", n))
        if kind in DATAGRAM_KINDS and tcp and all(tcp):
            print(f"cpu-per-check ratio {name} {kind}/tcp {n}: "
                  f"{statistics.median(mine) / statistics.median(tcp):.2f}")
    for (name, kind, n), mine in runs.items():
        theirs = runs.get(("keepalived", kind, n))
        if name != "directord" or not theirs or not all(theirs):
            continue
        ratio = statistics.median(mine) / statistics.median(theirs)
        rounds = " ".join(f"{a / b:.2f}" for a, b in zip(mine, theirs, strict=False))
        print(f"cpu-per-check ratio directord/keepalived {kind} {n}: {ratio:.2f}"
              + (f" (medians of {len(mine)}; per round {rounds})" if len(mine) > 1 else ""))

if __name__ == "__main__":
    main()
