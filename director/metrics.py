"""Prometheus metrics: the status snapshot rendered in the text exposition format.

Names follow Prometheus conventions (prefix `directord_`, base units, `_total` on
counters); IPVS label names follow node_exporter's ipvs collector (local_address,
local_port, proto, remote_address, remote_port). `vrrp_instance` avoids clashing
with Prometheus's own `instance` target label.

Served from the event loop itself and rendered one family at a time, yielding to
the loop in between: a scrape of 10,000 real servers never holds the loop (or the
GIL) long enough to delay a VRRP advert. The format is written here directly:
a generic client library costs about 10 us per sample, over a second at 10k
real servers; precomputed label strings make it a fraction of that.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from director import __version__

VRRP_STATES = ("initialize", "backup", "master", "fault")
CHECK_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROWS_PER_SLICE = 2000  # samples rendered between two yields to the event loop
MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0


class Histogram:
    """Cumulative-bucket histogram kept by the daemon, exported at scrape time."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        inner = labels[1:-1] + "," if labels else ""
        total, out = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            le = "+Inf" if bound == math.inf else repr(bound)
            out.append(f'{name}_bucket{{{inner}le="{le}"}} {total}\n')
        out.append(f"{name}_sum{labels} {self.sum!r}\n")
        out.append(f"{name}_count{labels} {total}\n")
        return out


def reason_class(reason: str) -> str:
    """A low-cardinality label for a check failure reason."""
    text = reason.lower()
    for needle, label in (("timeout", "timeout"), ("timed out", "timeout"), ("refused", "refused"),
                          ("reset", "reset"), ("unreachable", "unreachable"), ("tls", "tls"), ("ssl", "tls"),
                          ("certificate", "tls"), ("body", "body"), ("sip", "sip_status"), ("status", "status"),
                          ("exit", "exit_code"), ("killed", "exit_code"), ("malformed", "malformed"),
                          ("garbage", "malformed"), ("closed", "closed")):
        if needle in text:
            return label
    return re.sub(r"[^a-z_]+", "_", text.split(":")[0]).strip("_")[:32] or "other"


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), port


def _service_labels(vs: dict[str, Any]) -> dict[str, str]:
    if vs["protocol"] == "fwmark":
        return {"virtual_server": vs["name"], "proto": "fwmark", "local_address": vs["service"].split()[1],
                "local_port": "0"}
    proto, endpoint = vs["service"].split(" ", 1)
    address, port = _split_endpoint(endpoint)
    return {"virtual_server": vs["name"], "proto": proto, "local_address": address, "local_port": port}


class Family:
    """One metric family: its header and rows of (label string, value)."""

    def __init__(self, name: str, kind: str, doc: str) -> None:
        self.name, self.kind, self.doc = name, kind, doc
        self.rows: list[tuple[str, float]] = []

    def add(self, label_text: str, value: float) -> None:
        self.rows.append((label_text, value))

    def render(self) -> Iterable[str]:
        sample = f"{self.name}_total" if self.kind == "counter" else self.name
        yield f"# HELP {sample} {self.doc}\n# TYPE {sample} {self.kind}\n"
        for start in range(0, len(self.rows), ROWS_PER_SLICE):
            yield "".join(f"{sample}{text} {value}\n" for text, value in self.rows[start:start + ROWS_PER_SLICE])


def vrrp_families(instances: dict[str, Any]) -> list[Family]:
    state = Family("directord_vrrp_state", "gauge", "1 for the VRRP instance's current state")
    gauges = [Family("directord_vrrp_priority", "gauge", "configured VRRP priority"),
              Family("directord_vrrp_effective_priority", "gauge",
                     "priority after tracked interface and virtual server weights")]
    counters = {key: Family(f"directord_vrrp_{name}", "counter", doc) for key, name, doc in (
        ("transitions", "transitions", "VRRP state transitions"),
        ("adverts_sent", "adverts_sent", "VRRP adverts sent"),
        ("adverts_received", "adverts_received", "valid VRRP adverts received"),
        ("garps_sent", "gratuitous_arps_sent", "gratuitous ARPs and unsolicited neighbour advertisements sent"))}
    errors = Family("directord_vrrp_packet_errors", "counter", "VRRP packets dropped, by reason")
    for name, vi in instances.items():
        base = {"vrrp_instance": name, "interface": vi["interface"], "vrid": vi["vrid"]}
        for known in VRRP_STATES:
            state.add(labels(**base, state=known), 1 if vi["state"] == known else 0)
        gauges[0].add(labels(**base), vi["priority"])
        gauges[1].add(labels(**base), vi["effective_priority"])
        for key, family in counters.items():
            family.add(labels(**base), vi[key])
        for reason, count in vi.get("errors", {}).items():
            errors.add(labels(**base, reason=reason), count)
    return [state, *gauges, *counters.values(), errors]


def server_families(services: list[dict[str, Any]]) -> list[Family]:
    up = Family("directord_real_server_up", "gauge", "1 while the real server's health check passes")
    weight = Family("directord_real_server_weight", "gauge", "weight in the kernel IPVS table")
    configured = Family("directord_real_server_configured_weight", "gauge", "weight in the config")
    drained = Family("directord_real_server_drained", "gauge", "1 while drained by an admin")
    quorum = Family("directord_virtual_server_quorum_ok", "gauge", "1 while the healthy weight meets quorum")
    svc = {k: Family(f"directord_ipvs_{k}", "counter", doc) for k, doc in (
        ("connections", "connections scheduled by the virtual service"), ("incoming_packets", "packets in"),
        ("outgoing_packets", "packets out"), ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))}
    dest = {k: Family(f"directord_ipvs_backend_{k}", "counter", doc) for k, doc in (
        ("connections", "connections scheduled to the real server"), ("incoming_packets", "packets in"),
        ("outgoing_packets", "packets out"), ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))}
    active = Family("directord_ipvs_backend_connections_active", "gauge", "active connections")
    inactive = Family("directord_ipvs_backend_connections_inactive", "gauge", "inactive connections")
    stat_keys = {"connections": "connections_total", "incoming_packets": "packets_in_total",
                 "outgoing_packets": "packets_out_total", "incoming_bytes": "bytes_in_total",
                 "outgoing_bytes": "bytes_out_total"}
    for vs in services:
        quorum.add(labels(virtual_server=vs["name"]), 1 if vs["quorum_ok"] else 0)
        service_labels = _service_labels(vs)
        if vs["in_kernel"]:
            text = labels(**service_labels)
            for key, family in svc.items():
                family.add(text, vs["stats"][stat_keys[key]])
        for rs in vs["real_servers"]:
            address, port = _split_endpoint(rs["address"])
            if rs["role"] == "real":
                text = labels(virtual_server=vs["name"], address=address, port=port)
                up.add(text, 1 if rs.get("health") in ("up", "falling") else 0)
                weight.add(text, rs["weight"] if rs["weight"] is not None else 0)
                configured.add(text, rs["configured_weight"])
                drained.add(text, 1 if rs["drained"] else 0)
            if rs["in_kernel"]:
                text = labels(**service_labels, remote_address=address, remote_port=port)
                for key, family in dest.items():
                    family.add(text, rs["stats"][stat_keys[key]])
                active.add(text, rs["active_conns"])
                inactive.add(text, rs["inactive_conns"])
    return [up, weight, configured, drained, quorum, *svc.values(), *dest.values(), active, inactive]


def check_lines(histograms: dict[tuple[str, int, str], Histogram],
                failures: dict[tuple[str, int, str, str], int]) -> Iterable[str]:
    name = "directord_health_check_duration_seconds"
    yield f"# HELP {name} health check duration per probed target\n# TYPE {name} histogram\n"
    batch: list[str] = []
    for (address, port, check), histogram in histograms.items():
        batch += histogram.lines(name, labels(address=address, port=port, check=check))
        if len(batch) >= ROWS_PER_SLICE:
            yield "".join(batch)
            batch = []
    yield "".join(batch)
    failed = Family("directord_health_check_failures", "counter", "failed health checks, by reason")
    for (address, port, check, reason), count in failures.items():
        failed.add(labels(address=address, port=port, check=check, reason=reason), count)
    yield from failed.render()


def reconcile_lines(rec: dict[str, Any], histogram: Histogram) -> Iterable[str]:
    name = "directord_reconcile_duration_seconds"
    yield f"# HELP {name} IPVS reconcile pass duration\n# TYPE {name} histogram\n"
    yield "".join(histogram.lines(name, ""))
    operations = Family("directord_reconcile_operations", "counter", "IPVS operations sent, by kind")
    for kind in ("add", "change", "drain", "remove"):
        operations.add(labels(kind=kind), rec["operations_total"].get(kind, 0))
    errors = Family("directord_reconcile_errors", "counter", "IPVS operations the kernel refused")
    errors.add("", rec["errors_total"])
    passes = Family("directord_reconcile_passes", "counter", "reconcile passes")
    passes.add("", rec["passes_total"])
    for family in (operations, errors, passes):
        yield from family.render()


async def render(snapshot: dict[str, Any], histograms: dict, failures: dict,
                 reconcile_histogram: Histogram) -> AsyncIterator[str]:
    """The exposition, chunk by chunk, yielding to the event loop between chunks."""
    info = Family("directord_info", "gauge", "directord version and router id")
    info.add(labels(version=__version__, router_id=snapshot["router_id"]), 1)
    families = [info, *vrrp_families(snapshot["vrrp"].get("instances", {}))]
    await asyncio.sleep(0)
    families += server_families(snapshot["virtual_servers"])
    for family in families:
        for chunk in family.render():
            yield chunk
            await asyncio.sleep(0)
    for chunk in check_lines(histograms, failures):
        yield chunk
        await asyncio.sleep(0)
    for chunk in reconcile_lines(snapshot["reconcile"], reconcile_histogram):
        yield chunk


class MetricsServer:
    """GET /metrics on the event loop; anything else is 404. Requests are bounded in size and time."""

    def __init__(self, listen: str, exposition: Callable[[], Awaitable[AsyncIterator[str]]]) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.exposition = exposition
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_REQUEST)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, path = [*head.split(b"\r\n", 1)[0].split(b" "), b"", b""][:2]
            if method not in (b"GET", b"HEAD") or path.split(b"?")[0] not in (b"/metrics", b"/"):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                chunks = [chunk async for chunk in await self.exposition()]
                body = "".join(chunks).encode()
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n"
                             f"Connection: close\r\n\r\n".encode())
                if method == b"GET":
                    writer.write(body)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
