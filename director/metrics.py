"""Prometheus metrics: custom collectors over the status snapshot, built at scrape time.

Names follow Prometheus conventions (prefix `directord_`, base units, `_total`
on counters); IPVS label names follow node_exporter's ipvs collector
(local_address, local_port, proto, remote_address, remote_port).
The HTTP server runs on its own thread; it reads a snapshot built from shallow
copies, so a scrape never waits on the event loop that runs VRRP timers.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from director import __version__

VRRP_STATES = ("initialize", "backup", "master", "fault")
CHECK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """Cumulative-bucket histogram kept by the daemon; exported by the collector."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, int]]:
        total, out = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
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


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), port


def _service_labels(vs: dict[str, Any]) -> list[str]:
    if vs["protocol"] == "fwmark":
        return [vs["name"], "fwmark", vs["service"].split()[1], "0"]
    proto, endpoint = vs["service"].split(" ", 1)
    address, port = _split_endpoint(endpoint)
    return [vs["name"], proto, address, port]


class DirectordCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[str, Any]], check_histograms: Callable[[], dict],
                 check_failures: Callable[[], dict], reconcile_histogram: Callable[[], Histogram]) -> None:
        self.snapshot = snapshot
        self.check_histograms = check_histograms
        self.check_failures = check_failures
        self.reconcile_histogram = reconcile_histogram

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot()
        info = GaugeMetricFamily("directord_info", "directord version and router id", labels=["version", "router_id"])
        info.add_metric([__version__, snap["router_id"]], 1)
        yield info
        yield from self._vrrp(snap["vrrp"].get("instances", {}))
        yield from self._real_servers(snap["virtual_servers"])
        yield from self._ipvs(snap["virtual_servers"])
        yield from self._checks()
        yield from self._reconcile(snap["reconcile"])

    def _vrrp(self, instances: dict[str, Any]) -> Iterable[Metric]:
        labels = ["vrrp_instance", "interface", "vrid"]  # "instance" is Prometheus's target label
        state = GaugeMetricFamily("directord_vrrp_state", "1 for the instance's current VRRP state",
                                  labels=[*labels, "state"])
        gauges = {name: GaugeMetricFamily(f"directord_vrrp_{name}", doc, labels=labels) for name, doc in (
            ("priority", "configured VRRP priority"),
            ("effective_priority", "priority after tracked interface and virtual server weights"))}
        counters = {name: CounterMetricFamily(f"directord_vrrp_{name}", doc, labels=labels) for name, doc in (
            ("transitions", "VRRP state transitions"), ("adverts_sent", "VRRP adverts sent"),
            ("adverts_received", "valid VRRP adverts received"), ("gratuitous_arps_sent",
                                                                  "gratuitous ARPs and unsolicited NAs sent"))}
        errors = CounterMetricFamily("directord_vrrp_packet_errors", "VRRP packets dropped, by reason",
                                     labels=[*labels, "reason"])
        for name, vi in instances.items():
            values = [name, vi["interface"], str(vi["vrid"])]
            for known in VRRP_STATES:
                state.add_metric([*values, known], 1.0 if vi["state"] == known else 0.0)
            gauges["priority"].add_metric(values, vi["priority"])
            gauges["effective_priority"].add_metric(values, vi["effective_priority"])
            counters["transitions"].add_metric(values, vi["transitions"])
            counters["adverts_sent"].add_metric(values, vi["adverts_sent"])
            counters["adverts_received"].add_metric(values, vi["adverts_received"])
            counters["gratuitous_arps_sent"].add_metric(values, vi["garps_sent"])
            for reason, count in vi.get("errors", {}).items():
                errors.add_metric([*values, reason], count)
        yield state
        yield from gauges.values()
        yield from counters.values()
        yield errors

    def _real_servers(self, services: list[dict[str, Any]]) -> Iterable[Metric]:
        labels = ["virtual_server", "address", "port"]
        up = GaugeMetricFamily("directord_real_server_up", "1 when the real server's health check passes",
                               labels=labels)
        weight = GaugeMetricFamily("directord_real_server_weight", "weight in the kernel IPVS table",
                                   labels=labels)
        configured = GaugeMetricFamily("directord_real_server_configured_weight", "weight in the config",
                                       labels=labels)
        drained = GaugeMetricFamily("directord_real_server_drained", "1 while drained by an admin", labels=labels)
        quorum = GaugeMetricFamily("directord_virtual_server_quorum_ok", "1 while the healthy weight meets quorum",
                                   labels=["virtual_server"])
        for vs in services:
            quorum.add_metric([vs["name"]], 1.0 if vs["quorum_ok"] else 0.0)
            for rs in vs["real_servers"]:
                if rs["role"] != "real":
                    continue
                values = [vs["name"], *_split_endpoint(rs["address"])]
                up.add_metric(values, 1.0 if rs.get("health") in ("up", "falling") else 0.0)
                weight.add_metric(values, rs["weight"] if rs["weight"] is not None else 0)
                configured.add_metric(values, rs["configured_weight"])
                drained.add_metric(values, 1.0 if rs["drained"] else 0.0)
        yield from (up, weight, configured, drained, quorum)

    def _ipvs(self, services: list[dict[str, Any]]) -> Iterable[Metric]:
        svc_labels = ["virtual_server", "proto", "local_address", "local_port"]
        dest_labels = [*svc_labels, "remote_address", "remote_port"]
        svc = {k: CounterMetricFamily(f"directord_ipvs_{k}", doc, labels=svc_labels) for k, doc in (
            ("connections", "connections scheduled by the virtual service"),
            ("incoming_packets", "packets in"), ("outgoing_packets", "packets out"),
            ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))}
        dest = {k: CounterMetricFamily(f"directord_ipvs_backend_{k}", doc, labels=dest_labels) for k, doc in (
            ("connections", "connections scheduled to the real server"),
            ("incoming_packets", "packets in"), ("outgoing_packets", "packets out"),
            ("incoming_bytes", "bytes in"), ("outgoing_bytes", "bytes out"))}
        active = GaugeMetricFamily("directord_ipvs_backend_connections_active", "active connections",
                                   labels=dest_labels)
        inactive = GaugeMetricFamily("directord_ipvs_backend_connections_inactive", "inactive connections",
                                     labels=dest_labels)
        keys = {"connections": "connections_total", "incoming_packets": "packets_in_total",
                "outgoing_packets": "packets_out_total", "incoming_bytes": "bytes_in_total",
                "outgoing_bytes": "bytes_out_total"}
        for vs in services:
            if not vs["in_kernel"]:
                continue
            values = _service_labels(vs)
            for name, family in svc.items():
                family.add_metric(values, vs["stats"][keys[name]])
            for rs in vs["real_servers"]:
                if not rs["in_kernel"]:
                    continue
                dvalues = [*values, *_split_endpoint(rs["address"])]
                for name, family in dest.items():
                    family.add_metric(dvalues, rs["stats"][keys[name]])
                active.add_metric(dvalues, rs["active_conns"])
                inactive.add_metric(dvalues, rs["inactive_conns"])
        yield from svc.values()
        yield from dest.values()
        yield from (active, inactive)

    def _checks(self) -> Iterable[Metric]:
        labels = ["address", "port", "check"]
        duration = HistogramMetricFamily("directord_health_check_duration_seconds",
                                         "health check duration per probed target", labels=labels)
        for (address, port, check), histogram in self.check_histograms().items():
            duration.add_metric([address, str(port), check], histogram.buckets(), histogram.sum)
        yield duration
        failures = CounterMetricFamily("directord_health_check_failures", "failed health checks, by reason",
                                       labels=[*labels, "reason"])
        for (address, port, check, reason), count in self.check_failures().items():
            failures.add_metric([address, str(port), check, reason], count)
        yield failures

    def _reconcile(self, rec: dict[str, Any]) -> Iterable[Metric]:
        histogram = self.reconcile_histogram()
        duration = HistogramMetricFamily("directord_reconcile_duration_seconds", "IPVS reconcile pass duration")
        duration.add_metric([], histogram.buckets(), histogram.sum)
        yield duration
        operations = CounterMetricFamily("directord_reconcile_operations", "IPVS operations sent, by kind",
                                         labels=["kind"])
        for kind in ("add", "change", "drain", "remove"):
            operations.add_metric([kind], rec["operations_total"].get(kind, 0))
        yield operations
        yield CounterMetricFamily("directord_reconcile_errors", "IPVS operations the kernel refused",
                                  value=rec["errors_total"])
        yield CounterMetricFamily("directord_reconcile_passes", "reconcile passes", value=rec["passes_total"])


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def serve(listen: str, collector: DirectordCollector) -> Any:
    """Start the /metrics HTTP server on its own thread; returns the server (call .shutdown())."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    host, port = parse_listen(listen)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
