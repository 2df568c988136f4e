"""Prometheus metrics: the daemon's state rendered in the text exposition format.

Names follow Prometheus conventions (prefix `directord_`, base units, `_total` on
counters); IPVS label names follow node_exporter's ipvs collector (local_address,
local_port, proto, remote_address, remote_port). `vrrp_instance` avoids clashing
with Prometheus's own `instance` target label.

A scrape reads the same state `directord status` is built from (config, the kernel
table of the last reconcile pass, health and drain states, the VRRP child's
counters; `director.daemon.views` gathers them), but not through the status dicts:
building those for a large table costs more than the whole exposition. The format is
written here directly (a generic client library's cost per sample adds up to seconds
at large tables: DESIGN.md, Dependencies), with label strings built once
per config, and the event loop gets a turn between chunks so health checks keep
their schedule during a scrape. Concurrent scrapes share one render (`MetricsServer`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from director import __version__
from director.config.model import Config, VirtualServerConfig
from director.daemon.connlimit import ConnectionGate
from director.daemon.shared import Shared
from director.daemon.status import ReconcileCounters
from director.ipvs.model import DestKey, KernelService, KernelTable, ServiceKey, Stats
from director.mail.outbox import DROP_REASONS, Outbox
from director.mail.smtp import FAILURE_KINDS
from director.reconcile.audit import AuditProgress
from director.reconcile.desired import DesiredService, DesiredTable, RealServerState, StateKey, dest_key, service_key
from vrrp.fsm import State as VrrpState

VRRP_STATES = tuple(state.value for state in VrrpState)  # the FSM's names, as logs and status print them
CHECK_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHECK_HISTOGRAM = "directord_health_check_duration_seconds"
ROWS_PER_SLICE = 2000  # samples rendered between two yields to the event loop
SERVICES_PER_SLICE = 100  # virtual services whose samples are built between two yields
MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0  # for a request's head: an idle connection is closed after this
WRITE_TIMEOUT = 30.0  # for the whole body
WRITE_CHUNK = 64 * 1024  # bytes written per drain
# A JSON or text document served beside /metrics: (status code, content type, body).
Document = Callable[[], Awaitable[tuple[int, str, bytes]]]
MAX_CONNECTIONS = 64  # open /metrics connections at once (fewer under a low RLIMIT_NOFILE)
SHED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
        b"Retry-After: 1\r\n\r\n")


class Histogram:
    """Cumulative-bucket histogram kept by the daemon, exported at scrape time."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def template(self, name: str, labels: str) -> str:
        """The histogram's lines with its values left as %-placeholders (cached by callers:
        one format call per histogram instead of one per line)."""
        labels = labels.replace("%", "%%")  # label values are literal text in the template
        head = f"{name}_bucket{{{labels[1:-1]}," if labels else f"{name}_bucket{{"
        buckets = "".join(f'{head}le="{le}"}} %d\n' for le in [*map(repr, self.bounds), "+Inf"])
        return f"{buckets}{name}_sum{labels} %r\n{name}_count{labels} %d\n"

    def render(self, template: str) -> str:
        cumulative = list(itertools.accumulate(self.counts))
        return template % (*cumulative, self.sum, cumulative[-1])


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


class Family:
    """One metric family: its header and its sample lines, in order."""

    def __init__(self, name: str, kind: str, doc: str) -> None:
        self.sample = f"{name}_total" if kind == "counter" else name
        self.header = f"# HELP {self.sample} {doc}\n# TYPE {self.sample} {kind}\n"
        self.lines: list[str] = []

    def add(self, label_text: str, value: float) -> None:
        self.lines.append(f"{self.sample}{label_text} {value}\n")

    def render(self) -> Iterable[str]:
        yield self.header
        for start in range(0, len(self.lines), ROWS_PER_SLICE):
            yield "".join(self.lines[start:start + ROWS_PER_SLICE])


def vrrp_families(instances: Mapping[str, Any]) -> list[Family]:
    state = Family("directord_vrrp_state", "gauge", "1 for the VRRP instance's current state")
    gauges = [Family("directord_vrrp_priority", "gauge", "configured VRRP priority"),
              Family("directord_vrrp_effective_priority", "gauge",
                     "priority after the weights of tracked interfaces, virtual servers, scripts and files"),
              Family("directord_vrrp_holding_back", "gauge",
                     "1 while an admin failover keeps this node from preempting (failover --release lifts it)")]
    counters = {key: Family(f"directord_vrrp_{name}", "counter", doc) for key, name, doc in (
        ("transitions", "transitions", "VRRP state transitions"),
        ("adverts_sent", "adverts_sent", "VRRP adverts sent"),
        ("adverts_received", "adverts_received", "valid VRRP adverts received"),
        ("garps_sent", "gratuitous_arps_sent", "gratuitous ARPs and unsolicited neighbour advertisements sent"),
        ("answers_suppressed", "answers_suppressed",
         "out-of-turn adverts (answers to priority 0 or a lower rival) held back by the rate limit"))}
    errors = Family("directord_vrrp_packet_errors", "counter", "VRRP packets dropped, by reason")
    for name, vi in instances.items():
        base = {"vrrp_instance": name, "interface": vi["interface"], "vrid": vi["vrid"]}
        for known in VRRP_STATES:
            state.add(labels(**base, state=known), 1 if vi["state"] == known else 0)
        gauges[0].add(labels(**base), vi["priority"])
        gauges[1].add(labels(**base), vi["effective_priority"])
        gauges[2].add(labels(**base), 1 if vi.get("holding_back") else 0)
        for key, family in counters.items():
            family.add(labels(**base), vi[key])
        for reason, count in vi.get("errors", {}).items():
            errors.add(labels(**base, reason=reason), count)
    return [state, *gauges, *counters.values(), errors]


SCRIPT_STATES = ("unknown", "ok", "failed", "rising", "falling")  # healthcheck.tracked.ScriptState.state


def tracker_families(trackers: Iterable[Mapping[str, Any]]) -> list[Family]:
    """Tracked scripts' states and runs, tracked files' values, tracked process counts, and each
    one's share of each instance's priority (the shift, or 1 in `..._fault` while it holds the instance in fault)."""
    state = Family("directord_track_script_state", "gauge", "1 for the tracked script's current state")
    runs = Family("directord_track_script_runs", "counter", "runs of the tracked script")
    failures = Family("directord_track_script_failures", "counter",
                      "failed runs of the tracked script (exit not 0, killed, timed out, not started)")
    value = Family("directord_track_file_value", "gauge", "the tracked file's value, as read")
    processes = Family("directord_track_process_running", "gauge", "processes counted for the tracked process")
    quorum = Family("directord_track_process_quorum_ok", "gauge",
                    "1 while the tracked process count is within its quorum (after the delays)")
    shift = Family("directord_vrrp_track_priority_shift", "gauge",
                   "what the tracked script or file adds to the VRRP instance's priority now")
    fault = Family("directord_vrrp_track_fault", "gauge",
                   "1 while the tracked script or file holds the VRRP instance in fault")
    for t in trackers:
        name = {"tracker": t["name"]}
        if t["kind"] == "script":
            for known in SCRIPT_STATES:
                state.add(labels(**name, state=known), 1 if t["state"] == known else 0)
            runs.add(labels(**name), t["runs_total"])
            failures.add(labels(**name), t["failures_total"])
        elif t["kind"] == "process":
            if t.get("count") is not None:
                processes.add(labels(**name), t["count"])
                quorum.add(labels(**name), 1 if t["ok"] else 0)
        elif t.get("value") is not None:
            value.add(labels(**name), t["value"])
        for effect in t.get("instances", ()):
            pair = labels(vrrp_instance=effect["instance"], tracker=t["name"], kind=t["kind"])
            shift.add(pair, effect["shift"])
            fault.add(pair, 1 if effect["fault"] else 0)
    return [state, runs, failures, value, processes, quorum, shift, fault]


@dataclass(frozen=True, slots=True)
class _ServiceLabels:
    key: ServiceKey
    name: str  # {virtual_server="..."}
    service: str  # node_exporter's ipvs labels for the service
    # per real server (sorry server last): configured weight, kernel key, health-state key
    # (None for the sorry server), its own labels, its IPVS backend labels
    servers: tuple[tuple[int, DestKey, StateKey | None, str, str], ...]


class LabelCache:
    """Label strings depend only on the config, so they are built once per config (and
    histogram templates once per probed target), not once per scrape: formatting
    labels was most of a scrape's cost."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._services: list[_ServiceLabels] = []
        self._checks: dict[tuple[str, int, str], str] = {}
        # per service: (mirror entry, desired entry, states) and the samples rendered from them
        self.fragments: dict[ServiceKey, tuple[Any, Any, tuple, tuple[str, ...]]] = {}
        self._labels_of: dict[ServiceKey, _ServiceLabels] = {}

    def services(self, config: Config) -> Iterable[_ServiceLabels]:
        if config is not self._config:
            self._config, self._services = config, [_service_labels(vs) for vs in config.virtual_servers]
            keep = {text.key: text for text in self._services}
            old = self.fragments
            # a reload keeps the rendered samples of every service whose labels did not change
            self.fragments = {key: old[key] for key, text in keep.items()
                              if key in old and self._labels_of.get(key) == text}
            self._labels_of = keep
        return self._services

    def check_template(self, key: tuple[str, int, str], histogram: Histogram) -> str:
        text = self._checks.get(key)
        if text is None:
            text = self._checks[key] = histogram.template(CHECK_HISTOGRAM, check_labels(*key))
        return text

    def forget_checks(self, keep: Iterable[tuple[str, int, str]]) -> None:
        self._checks = {key: self._checks[key] for key in keep if key in self._checks}


def check_labels(address: str, port: int, check: str, **more: str) -> str:
    return labels(address=address, port=port, check=check, **more)


def _service_labels(vs: VirtualServerConfig) -> _ServiceLabels:
    key = service_key(vs)
    if vs.fwmark:
        base = {"virtual_server": vs.name, "proto": "fwmark", "local_address": str(vs.fwmark), "local_port": "0"}
    else:
        address, port = _split_endpoint(str(key).split(" ", 1)[1])
        base = {"virtual_server": vs.name, "proto": vs.protocol, "local_address": address, "local_port": port}
    servers = []
    for rs in vs.real_servers + ((vs.sorry_server,) if vs.sorry_server else ()):
        address, port = _split_endpoint(rs.endpoint)
        dkey = dest_key(rs)
        servers.append((rs.weight, dkey, None if rs is vs.sorry_server else (vs.name, dkey),
                        labels(virtual_server=vs.name, address=address, port=port),
                        labels(**base, remote_address=address, remote_port=port)))
    return _ServiceLabels(key, labels(virtual_server=vs.name), labels(**base), tuple(servers))


@dataclass(frozen=True, slots=True)
class Sources:
    """What a scrape reads: the daemon's live state, the same that status is built from."""

    config: Config
    kernel: KernelTable
    desired: DesiredTable
    states: Mapping[StateKey, RealServerState]
    vrrp: Mapping[str, Any] | None
    reconcile: ReconcileCounters
    histograms: Mapping[tuple[str, int, str], Histogram]
    failures: Mapping[tuple[str, int, str, str], int]
    reconcile_histogram: Histogram
    connections: Mapping[str, ConnectionGate] = field(default_factory=dict)  # by server: "metrics", "control"
    trackers: Sequence[Mapping[str, Any]] = ()  # tracked scripts and files (director.daemon.trackers)
    mail: Outbox[Any] | None = None  # the alert mail outbox, when mail is configured


def server_families(sources: Sources, cache: LabelCache) -> Iterator[list[Family] | None]:
    """None after each slice of services (the caller gives the event loop a turn: at 5,000
    real servers the whole loop held it for 25 to 85 ms), then the families."""
    up = Family("directord_real_server_up", "gauge", "1 while the real server's health check passes")
    weight = Family("directord_real_server_weight", "gauge", "weight in the kernel IPVS table")
    configured = Family("directord_real_server_configured_weight", "gauge", "weight in the config")
    drained = Family("directord_real_server_drained", "gauge", "1 while drained by an admin")
    quorum = Family("directord_virtual_server_quorum_ok", "gauge", "1 while the healthy weight meets quorum")
    svc = [Family(f"directord_ipvs_{name}", "counter", doc) for name, doc in (
        ("connections", "connections scheduled by the virtual service"), ("incoming_packets", "packets in"),
        ("outgoing_packets", "packets out"), ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))]
    dest = [Family(f"directord_ipvs_backend_{name}", "counter", doc) for name, doc in (
        ("connections", "connections scheduled to the real server"), ("incoming_packets", "packets in"),
        ("outgoing_packets", "packets out"), ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))]
    active = Family("directord_ipvs_backend_connections_active", "gauge", "active connections")
    inactive = Family("directord_ipvs_backend_connections_inactive", "gauge", "inactive connections")
    families = [up, weight, configured, drained, quorum, *svc, *dest, active, inactive]
    appends = [family.lines.append for family in families]
    kernel, desired, states = sources.kernel, sources.desired, sources.states
    fragments = cache.fragments
    for index, text in enumerate(cache.services(sources.config)):
        if index % SERVICES_PER_SLICE == SERVICES_PER_SLICE - 1:
            yield None
        have, want = kernel.get(text.key), desired.get(text.key)
        seen = tuple(states.get(server[2]) for server in text.servers if server[2] is not None)
        cached = fragments.get(text.key)
        # the mirror and the desired table replace a service's object when it changes: the
        # same objects (and the same states) render the same text
        if cached is not None and cached[0] is have and cached[1] is want and cached[2] == seen:
            parts = cached[3]
        else:
            parts = _service_fragments(text, have, want, states, families)
            fragments[text.key] = (have, want, seen, parts)
        for append, part in zip(appends, parts, strict=True):
            if part:
                append(part)
    yield families


def _service_fragments(text: _ServiceLabels, have: KernelService | None, want: DesiredService | None,
                       states: Mapping[StateKey, RealServerState], families: list[Family]) -> tuple[str, ...]:
    """One service's samples, one string per family (in `families` order)."""
    up_s, weight_s, configured_s, drained_s, quorum_s = (f.sample for f in families[:5])
    svc_s = [f.sample for f in families[5:10]]
    dest_s = [f.sample for f in families[10:15]]
    active_s, inactive_s = families[15].sample, families[16].sample
    up, weight, configured, drained, active, inactive = [], [], [], [], [], []
    svc: list[list[str]] = [[] for _ in range(5)]
    dest: list[list[str]] = [[] for _ in range(5)]
    quorum = f"{quorum_s}{text.name} {0 if want is not None and want.quorum_lost else 1}\n"
    if have is not None:
        _stat_lines(svc, svc_s, text.service, have.stats)
    dests = have.dests if have is not None else {}
    for configured_weight, dkey, state_key, real_labels, dest_labels in text.servers:
        got = dests.get(dkey)
        if state_key is not None:  # a real server, not the sorry server
            state = states.get(state_key)
            up.append(f"{up_s}{real_labels} {0 if state is not None and not state.up else 1}\n")
            weight.append(f"{weight_s}{real_labels} {got.spec.weight if got is not None else 0}\n")
            configured.append(f"{configured_s}{real_labels} {configured_weight}\n")
            drained.append(f"{drained_s}{real_labels} {1 if state is not None and state.admin_drained else 0}\n")
        if got is not None:
            _stat_lines(dest, dest_s, dest_labels, got.stats)
            active.append(f"{active_s}{dest_labels} {got.active_conns}\n")
            inactive.append(f"{inactive_s}{dest_labels} {got.inactive_conns}\n")
    return ("".join(up), "".join(weight), "".join(configured), "".join(drained), quorum,
            *("".join(lines) for lines in svc), *("".join(lines) for lines in dest), "".join(active),
            "".join(inactive))


def _stat_lines(out: list[list[str]], samples: list[str], label_text: str, stats: Stats) -> None:
    for lines, sample, value in zip(out, samples, (stats.connections, stats.packets_in, stats.packets_out,
                                                   stats.bytes_in, stats.bytes_out), strict=True):
        lines.append(f"{sample}{label_text} {value}\n")


def check_lines(sources: Sources, cache: LabelCache) -> Iterable[str]:
    yield f"# HELP {CHECK_HISTOGRAM} health check duration per probed target\n# TYPE {CHECK_HISTOGRAM} histogram\n"
    batch: list[str] = []
    for key, histogram in sources.histograms.items():
        batch.append(histogram.render(cache.check_template(key, histogram)))
        if len(batch) >= ROWS_PER_SLICE // 10:
            yield "".join(batch)
            batch = []
    yield "".join(batch)
    failed = Family("directord_health_check_failures", "counter", "failed health checks, by reason")
    for (address, port, check, reason), count in sources.failures.items():
        failed.add(check_labels(address, port, check, reason=reason), count)
    yield from failed.render()
    cache.forget_checks(sources.histograms)


def reconcile_lines(counters: ReconcileCounters, histogram: Histogram) -> Iterable[str]:
    name = "directord_reconcile_duration_seconds"
    yield f"# HELP {name} IPVS reconcile pass duration\n# TYPE {name} histogram\n"
    yield histogram.render(histogram.template(name, ""))
    operations = Family("directord_reconcile_operations", "counter", "IPVS operations sent, by kind")
    for kind in ("add", "change", "drain", "remove"):
        operations.add(labels(kind=kind), counters.operations.get(kind, 0))
    errors = Family("directord_reconcile_errors", "counter", "IPVS operations the kernel refused")
    errors.add("", counters.errors_total)
    passes = Family("directord_reconcile_passes", "counter", "reconcile passes")
    passes.add("", counters.passes)
    state = Family("directord_state_write_errors", "counter",
                   "state file writes that failed (drains and owned services not persisted)")
    state.add("", counters.state_write_errors)
    full = Family("directord_reconcile_full_passes", "counter", "passes that dumped the whole table")
    full.add("", counters.full_passes)
    rereads = Family("directord_reconcile_rereads", "counter", "services re-read after a write met a changed table")
    rereads.add("", counters.rereads)
    for family in (operations, errors, passes, state, full, rereads, *audit_families(counters.audit)):
        yield from family.render()


def audit_families(progress: AuditProgress) -> list[Family]:
    rounds = Family("directord_audit_rounds", "counter", "complete audit rounds over every owned service")
    rounds.add("", progress.rounds)
    audited = Family("directord_audit_services_audited", "counter", "services re-read and compared by the audit")
    audited.add("", progress.audited_total)
    repairs = Family("directord_audit_repairs", "counter", "IPVS writes the audit made to undo a difference")
    repairs.add("", progress.repairs_total)
    errors = Family("directord_audit_errors", "counter", "services the audit could not read")
    errors.add("", progress.errors_total)
    position = Family("directord_audit_round_progress", "gauge", "fraction of the owned services audited this round")
    position.add("", round(progress.position / progress.services, 4) if progress.services else 0)
    return [rounds, audited, repairs, errors, position]


def connection_lines(gates: Mapping[str, ConnectionGate]) -> Iterable[str]:
    """The metrics and control servers' connections: open, the cap, and those shed over it."""
    open_ = Family("directord_connections_open", "gauge", "open client connections, by server")
    limit = Family("directord_connections_limit", "gauge",
                   "most client connections a server holds at once (RLIMIT_NOFILE leaves a reserve)")
    shed = Family("directord_connections_shed", "counter",
                  "client connections closed at once: over the cap or the descriptor reserve")
    for server, gate in gates.items():
        open_.add(labels(server=server), gate.open)
        limit.add(labels(server=server), gate.limit)
        shed.add(labels(server=server), gate.shed)
    for family in (open_, limit, shed):
        yield from family.render()


def mail_lines(outbox: Outbox[Any]) -> Iterable[str]:
    """The alert mail outbox: sent, failed attempts by reason, drops by reason, and the queue."""
    counters = outbox.counters
    sent = Family("directord_mail_sent", "counter", "alert mails the SMTP server accepted")
    sent.add("", counters.sent)
    failed = Family("directord_mail_failed", "counter", "alert mail exchanges that failed, by reason")
    for reason in dict.fromkeys((*FAILURE_KINDS, *sorted(counters.failed))):
        failed.add(labels(reason=reason), counters.failed[reason])
    dropped = Family("directord_mail_dropped", "counter",
                     "alert mails never sent: queue_full (the oldest made room) or gave_up (retries spent)")
    for reason in DROP_REASONS:
        dropped.add(labels(reason=reason), counters.dropped[reason])
    queued = Family("directord_mail_queued", "gauge", "alert mails waiting or being sent")
    queued.add("", len(outbox) + (outbox.in_flight is not None))
    for family in (sent, failed, dropped, queued):
        yield from family.render()


async def render(sources: Sources, cache: LabelCache) -> AsyncIterator[str]:
    """The exposition, chunk by chunk, yielding to the event loop between chunks."""
    info = Family("directord_info", "gauge", "directord version and router id")
    info.add(labels(version=__version__, router_id=sources.config.global_.router_id), 1)
    families = [info, *vrrp_families((sources.vrrp or {}).get("instances", {})), *tracker_families(sources.trackers)]
    await asyncio.sleep(0)
    for step in server_families(sources, cache):
        if step is None:
            await asyncio.sleep(0)
        else:
            families += step
    for family in families:
        for chunk in family.render():
            yield chunk
            await asyncio.sleep(0)
    for chunk in check_lines(sources, cache):
        yield chunk
        await asyncio.sleep(0)
    for chunk in reconcile_lines(sources.reconcile, sources.reconcile_histogram):
        yield chunk
    if sources.connections:
        for chunk in connection_lines(sources.connections):
            yield chunk
    if sources.mail is not None:
        for chunk in mail_lines(sources.mail):
            yield chunk


class MetricsServer:
    """GET /metrics on the event loop; anything else is 404. Requests are bounded in size
    and time, connections by a cap that leaves descriptors to the daemon (ConnectionGate).

    Scrapes that arrive while a render runs share it (one render however many scrapers),
    and the body goes out chunk by chunk, waiting for each client to drain: a storm of
    scrapers costs one body in memory, not one joined copy per client. HEAD renders nothing.
    """

    def __init__(self, listen: str, exposition: Callable[[], Awaitable[AsyncIterator[str]]],
                 max_connections: int | None = None, documents: Mapping[bytes, Document] | None = None) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.exposition = exposition
        self.documents = dict(documents or {})
        self.gate = ConnectionGate(max_connections if max_connections is not None else MAX_CONNECTIONS)
        self.body: Shared[list[bytes]] = Shared(self._render)
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_REQUEST)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @staticmethod
    async def _document(writer: asyncio.StreamWriter, document: Document) -> None:
        code, content_type, body = await document()
        async with asyncio.timeout(WRITE_TIMEOUT):
            writer.write(f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\nContent-Type: {content_type}\r\n"
                         f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()

    async def _render(self) -> list[bytes]:
        """The whole body, encoded once, in pieces of about WRITE_CHUNK bytes."""
        pieces: list[bytes] = []
        batch: list[str] = []
        size = 0
        async for chunk in await self.exposition():
            batch.append(chunk)
            size += len(chunk)
            if size >= WRITE_CHUNK:
                pieces.append("".join(batch).encode())
                batch, size = [], 0
        pieces.append("".join(batch).encode())
        return pieces

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.gate.admit(writer.get_extra_info("socket")):
            writer.write(SHED)  # fits an empty socket buffer: sent at once, nothing waits
            writer.close()
            return
        try:
            await self._answer(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            self.gate.release()
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        method, path = [*head.split(b"\r\n", 1)[0].split(b" "), b"", b""][:2]
        path = path.split(b"?")[0]
        if method == b"GET" and path in self.documents:
            await self._document(writer, self.documents[path])
            return
        if method not in (b"GET", b"HEAD") or path not in (b"/metrics", b"/"):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
            return
        if method == b"HEAD":  # the headers only: a body's length would cost a render
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nConnection: close\r\n\r\n".encode())
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
            return
        pieces = await self.body.get()
        async with asyncio.timeout(WRITE_TIMEOUT):  # a client that reads too slowly is dropped
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
                         f"Content-Length: {sum(map(len, pieces))}\r\nConnection: close\r\n\r\n".encode())
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
