"""One snapshot of the daemon's state, and its human rendering.

`directord status`, `--json` and `/metrics` all read the dict built here, so what
an admin sees and what Prometheus scrapes never disagree. Pure: plain inputs in,
plain data out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from director.config.model import Config, VirtualServerConfig
from director.ipvs.model import KernelTable, Stats
from director.reconcile.audit import AuditProgress
from director.reconcile.desired import DesiredTable, RealServerState, StateKey, dest_key, service_key
from director.text import counted


@dataclass
class ReconcileCounters:
    passes: int = 0
    last_pass_at: float | None = None
    last_duration: float = 0.0
    operations: dict[str, int] = field(default_factory=dict)  # by action: add, change, drain, remove
    errors_total: int = 0
    last_errors: list[str] = field(default_factory=list)
    state_write_errors: int = 0
    full_passes: int = 0  # passes that dumped and compared the whole table (start, reloads)
    rereads: int = 0  # services re-read because a write met a table changed underneath
    audit: AuditProgress = field(default_factory=AuditProgress)


def _stats(stats: Stats) -> dict[str, int]:
    return {
        "connections_total": stats.connections, "packets_in_total": stats.packets_in,
        "packets_out_total": stats.packets_out, "bytes_in_total": stats.bytes_in,
        "bytes_out_total": stats.bytes_out, "cps": stats.cps, "bps_in": stats.bps_in, "bps_out": stats.bps_out,
    }


def iso(when: float | None) -> str | None:
    """ISO 8601 in UTC beside each epoch float: readable by people and by `date -d` alike."""
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


def _health(status: Any, state: RealServerState | None) -> dict[str, Any]:
    if status is None:
        return {"health": "up" if state is None or state.up else "down", "reason": "", "latency_ms": None,
                "checked_at": None, "checked_at_iso": None, "checks_total": 0, "check_failures_total": 0}
    return {
        "health": status.state,
        "reason": status.reason,
        "latency_ms": round(status.latency * 1000, 2) if status.latency is not None else None,
        "checked_at": status.last_checked,
        "checked_at_iso": iso(status.last_checked),
        "checks_total": status.checks,
        "check_failures_total": status.failures,
        "health_since": status.since,
        "health_since_iso": iso(status.since),
    }


CheckLookup = Callable[[tuple[str, str]], Any]  # (vs name, endpoint) -> the scheduler's TargetStatus or None


def service_status(vs: VirtualServerConfig, health: Mapping[StateKey, RealServerState], checks: CheckLookup,
                   kernel: KernelTable, desired: DesiredTable) -> dict[str, Any]:
    """One virtual server and its real servers, as status shows them."""
    key = service_key(vs)
    have, want = kernel.get(key), desired.get(key)
    real_servers = []
    for rs in vs.real_servers + ((vs.sorry_server,) if vs.sorry_server else ()):
        dkey = dest_key(rs)
        sorry = rs is vs.sorry_server
        state = health.get((vs.name, dkey))
        dest = have.dests.get(dkey) if have else None
        if sorry and dest is None:
            continue
        entry = {
            "address": rs.endpoint,
            "role": "sorry" if sorry else "real",
            "configured_weight": rs.weight,
            "weight": dest.spec.weight if dest else None,
            "in_kernel": dest is not None,
            "method": dest.spec.method if dest else (rs.method or vs.method),
            "drained": bool(state and state.admin_drained),
            "active_conns": dest.active_conns if dest else 0,
            "inactive_conns": dest.inactive_conns if dest else 0,
            "persistent_conns": dest.persistent_conns if dest else 0,
            "stats": _stats(dest.stats) if dest else _stats(Stats()),
        }
        if not sorry:
            entry |= _health(checks((vs.name, rs.endpoint)), state)
            if rs.checks:
                entry["checks"] = [check.type for check in rs.checks]
        real_servers.append(entry)
    return {
        "name": vs.name,
        "service": str(key),
        "protocol": vs.protocol if not vs.fwmark else "fwmark",
        "scheduler": vs.scheduler,
        "method": vs.method,
        "check": vs.check.type,
        "quorum": vs.quorum,
        "quorum_ok": not want.quorum_lost if want else True,
        "in_kernel": have is not None,
        "stats": _stats(have.stats) if have else _stats(Stats()),
        "real_servers": real_servers,
    }


_TRACKER_TIMES = ("since", "last_run_at", "read_at", "counted_at")  # epoch floats of a tracker's entry


def daemon_status(config: Config, *, started: float, reloaded: float | None, vrrp: Mapping[str, Any] | None,
                  reconcile: ReconcileCounters, services: list[dict[str, Any]],
                  trackers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole snapshot around the per-service entries (built separately, so a caller can pace them);
    `trackers` are the tracked scripts and files (`director.daemon.trackers`)."""
    now = time.time()
    vrrp = dict(vrrp or {})
    if "instances" in vrrp:
        vrrp["instances"] = {name: vi | {"state_since_iso": iso(vi.get("state_since"))}
                             for name, vi in vrrp["instances"].items()}
    return {
        "router_id": config.global_.router_id,
        "config": config.path,
        "started": started,
        "started_iso": iso(started),
        "reloaded": reloaded,
        "reloaded_iso": iso(reloaded),
        "now": now,
        "now_iso": iso(now),
        "vrrp": vrrp,
        "trackers": [t | {f"{key}_iso": iso(t[key]) for key in _TRACKER_TIMES if key in t} for t in trackers or []],
        "virtual_servers": services,
        "reconcile": {
            "passes_total": reconcile.passes,
            "last_pass_at": reconcile.last_pass_at,
            "last_pass_at_iso": iso(reconcile.last_pass_at),
            "last_duration_seconds": reconcile.last_duration,
            "operations_total": dict(reconcile.operations),
            "errors_total": reconcile.errors_total,
            "last_errors": list(reconcile.last_errors),
            "full_passes_total": reconcile.full_passes,
            "rereads_total": reconcile.rereads,
            "audit": _audit(reconcile.audit),
        },
    }


def _audit(progress: AuditProgress) -> dict[str, Any]:
    return {
        "rounds_total": progress.rounds, "position": progress.position, "services": progress.services,
        "audited_total": progress.audited_total, "repairs_total": progress.repairs_total,
        "errors_total": progress.errors_total, "last_round_seconds": progress.last_round_seconds,
        "last_repairs": list(progress.last_repairs), "last_errors": list(progress.last_errors),
    }


def select(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    """The snapshot narrowed to the one virtual server or VRRP instance called `name`
    (`directord status NAME`); LookupError naming what exists when nothing is."""
    services = [vs for vs in snapshot["virtual_servers"] if vs["name"] == name]
    instances = {k: vi for k, vi in snapshot["vrrp"].get("instances", {}).items() if k == name}
    if not services and not instances:
        known = [vs["name"] for vs in snapshot["virtual_servers"]] + list(snapshot["vrrp"].get("instances", {}))
        raise LookupError(f"no virtual server or VRRP instance named {name!r}"
                          + (f" (known: {', '.join(known)})" if known else " (none configured)"))
    return snapshot | {"virtual_servers": services, "vrrp": snapshot["vrrp"] | {"instances": instances}}


# --- the human view -----------------------------------------------------------------------------------


def _ago(when: float | None, now: float) -> str:
    if not when:
        return "-"
    s = max(0, int(now - when))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def _tracker_rows(trackers: list[dict[str, Any]], now: float) -> list[list[str]]:
    """One row per tracked script or file: its state, what it does to each instance, its last result."""
    rows = [["TRACKER", "KIND", "STATE", "SINCE", "INSTANCES", "LAST"]]
    for t in trackers:
        state = t["state"].upper() if t["state"] in ("failed", "falling") else t["state"]
        if t["kind"] == "file":
            state = "-" if t.get("value") is None else f"value {t['value']}"
        elif t["kind"] == "process" and t.get("count") is not None:
            state += f" ({t['count']} running)"
        effects = ", ".join(f"{e['instance']} {'FAULT' if e['fault'] else format(e['shift'], '+d')}"
                            for e in t.get("instances", ())) or "-"
        last = t.get("last_result") or t.get("reason") or ""
        if t.get("latency_ms") is not None:
            last += f" ({t['latency_ms']:.1f}ms, {_ago(t.get('last_run_at'), now)} ago)"
        rows.append([t["name"], t["kind"], state, _ago(t.get("since"), now), effects, last])
    return rows


def _carried(vi: dict[str, Any]) -> str:
    """The excluded addresses, routes and rules that move with the instance's mastership."""
    parts = list(vi.get("excluded_ips", ()))
    parts += [counted(vi[key], word) for key, word in (("virtual_routes", "route"), ("virtual_rules", "rule"))
              if vi.get(key)]
    return ", ".join(parts) or "-"


def format_status(snapshot: dict[str, Any]) -> str:
    now = snapshot["now"]
    lines = [f"directord {snapshot['router_id']}: up {_ago(snapshot['started'], now)}, config {snapshot['config']}"
             + (f" (reloaded {_ago(snapshot['reloaded'], now)} ago)" if snapshot.get("reloaded") else "")]
    instances = snapshot["vrrp"].get("instances", {})
    if instances:
        rows = [["INSTANCE", "INTERFACE", "VRID", "STATE", "PRIO", "EFFECTIVE", "MASTER", "SINCE", "TRANSITIONS",
                 "ADVERTS TX/RX", "ERRORS", "VIPS", "ALSO CARRIED"]]
        for name, vi in instances.items():
            interface = vi.get("interface", "-") + (f" ({vi['vmac']})" if vi.get("vmac") else "")
            rows.append([name, interface, str(vi.get("vrid", "-")),
                         vi["state"].upper() + (" (holding back)" if vi.get("holding_back") else ""),
                         str(vi["priority"]), str(vi["effective_priority"]),
                         vi.get("master_address") or "-", _ago(vi.get("state_since"), now), str(vi["transitions"]),
                         f"{vi['adverts_sent']}/{vi['adverts_received']}", str(sum(vi.get("errors", {}).values())),
                         ",".join(vi.get("virtual_ips", ())) or "-", _carried(vi)])
        lines += ["", "VRRP", *_table(rows)]
    if snapshot.get("trackers"):
        lines += ["", "TRACKED", *_table(_tracker_rows(snapshot["trackers"], now))]
    for vs in snapshot["virtual_servers"]:
        healthy = sum(1 for rs in vs["real_servers"] if rs["role"] == "real" and rs.get("health") == "up")
        total = sum(1 for rs in vs["real_servers"] if rs["role"] == "real")
        quorum = "quorum ok" if vs["quorum_ok"] else "QUORUM LOST"
        lines += ["", f"{vs['name']}  {vs['service']}  {vs['scheduler']} {vs['method']}  check {vs['check']}  "
                      f"{healthy}/{total} up, {quorum}  cps {vs['stats']['cps']}"
                      + ("" if vs["in_kernel"] else "  (NOT IN KERNEL)")]
        rows = [["REAL SERVER", "HEALTH", "WEIGHT", "CFG", "ACTIVE", "INACTIVE", "CPS", "LAST CHECK"]]
        for rs in vs["real_servers"]:
            health = "sorry" if rs["role"] == "sorry" else rs.get("health", "-")
            if rs["drained"]:
                health += " (drained)"
            last = rs.get("reason") or ""
            if rs.get("latency_ms") is not None:
                last += f" ({rs['latency_ms']:.1f}ms, {_ago(rs.get('checked_at'), now)} ago)"
            rows.append([rs["address"], health, "-" if rs["weight"] is None else str(rs["weight"]),
                         str(rs["configured_weight"]), str(rs["active_conns"]), str(rs["inactive_conns"]),
                         str(rs["stats"]["cps"]), last])
        lines += _table(rows)
    rec = snapshot["reconcile"]
    lines += ["", f"reconcile: {rec['passes_total']} passes, last {_ago(rec['last_pass_at'], now)} ago "
                  f"in {rec['last_duration_seconds'] * 1000:.1f}ms, {rec['errors_total']} errors"]
    lines += [f"  error: {line}" for line in rec["last_errors"]]
    lines += _audit_lines(rec.get("audit"))
    lines += _mail_lines(snapshot.get("mail"))
    return "\n".join(lines)


def _audit_lines(audit: Mapping[str, Any] | None) -> list[str]:
    """The rolling audit's progress through the owned services, and what it repaired."""
    if not audit:
        return []
    last = audit["last_round_seconds"]
    lines = [f"audit: {audit['position']}/{audit['services']} services into this round, "
             f"{audit['rounds_total']} rounds done" + (f" (last in {last:.0f}s)" if last is not None else "")
             + f", {audit['repairs_total']} repairs, {audit['errors_total']} read errors"]
    lines += [f"  repaired: {line}" for line in audit["last_repairs"][-5:]]
    lines += [f"  audit error: {line}" for line in audit["last_errors"][-5:]]
    return lines


def _mail_lines(mail: Mapping[str, Any] | None) -> list[str]:
    """The alert mail queue (director.daemon.mailer.Mailer.status), when mail is configured."""
    if not mail:
        return []
    lines = [f"mail: {mail['queued']} queued, {mail['sent_total']} sent, {mail['failed_total']} failed attempts, "
             f"{mail['dropped_total']} dropped" + (f"; last error: {mail['last_error']}" if mail["last_error"] else "")]
    for entry in mail["queue"]:
        when = "sending" if entry["sending"] else f"next try in {entry['next_attempt_in']:g}s"
        lines.append(f"  {entry['alert']} ({when}, {entry['attempts']} tried)")
    return lines
