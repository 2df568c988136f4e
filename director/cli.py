"""The `directord` command line.

Exit codes: 0 success, 1 config error, 2 kernel or runtime error (argparse usage errors also
exit 2). `probe` alone: 0 every real server up, 1 one or more down, 2 config invalid or the
checks could not run, so a monitoring script can tell "down" from "could not look".
Every error is one line on stderr that says what failed and why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from director import __version__
from director.config.load import ConfigError, load_config
from director.config.model import Config
from director.importer.cli import CONVERTERS
from director.reference.commands import epilog
from director.text import counted

if TYPE_CHECKING:
    from director.daemon.state_store import StateStore

DEFAULT_CONFIG = "/etc/directord/directord.toml"
EXIT_OK, EXIT_CONFIG, EXIT_RUNTIME = 0, 1, 2
MAX_LISTED = 20  # changes a reload prints before summing up the rest


class CommandError(Exception):
    """A failure reported as one line with an exit code."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.code = code


def _error(text: str) -> None:
    """An error on stderr; under journald (ExecStartPre, ExecReload) each of its lines with
    the err priority, so `journalctl -p err` finds the reasons, not only the first line."""
    from director.logs import under_journal

    prefix = "<3>" if under_journal() else ""
    print("\n".join(prefix + line for line in text.splitlines() or [""]), file=sys.stderr)


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.lines:
            _error(line)
        raise CommandError("", EXIT_CONFIG) from exc


def _emit(args: argparse.Namespace, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


# --- check-config ----------------------------------------------------------------------


def _runnable(path: str) -> Config:
    """The config, refused when `run` would have nothing to do, so that check-config (the unit's
    ExecStartPre) and run agree."""
    config = _load(path)
    if not config.virtual_servers and not config.vrrp_instances:
        raise CommandError(f"{config.path}: nothing to run (no virtual_server or vrrp_instance tables)",
                           EXIT_CONFIG)
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _runnable(args.config)
    from director.config.advice import config_warnings
    from director.config.host import host_problems
    from director.config.host_tracking import tracking_host_warnings, tracking_problems
    from director.config.load import explain
    from director.hook_env import SAFE_PATH
    from vrrp.addresses import interface_addresses, local_addresses

    problems = host_problems(config, local_addresses) + tracking_problems(config, SAFE_PATH) \
        if args.host_checks else []
    risky = tracking_host_warnings(config, SAFE_PATH) if args.host_checks else []
    if config.global_.script_security:
        problems, risky = problems + risky, []
    for line in explain(config.path, problems):
        _error(line)
    warnings = config_warnings(config, interface_addresses if args.host_checks else None) + risky
    for line in explain(config.path, warnings, "warning: "):
        print(line, file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    if not args.quiet:
        real_servers = sum(len(vs.real_servers) for vs in config.virtual_servers)
        print(f"{config.path}: ok ({counted(len(config.virtual_servers), 'virtual server')}, "
              f"{counted(real_servers, 'real server')}, {counted(len(config.vrrp_instances), 'VRRP instance')})")
    return EXIT_OK


# --- diff / apply ------------------------------------------------------------------------


def _open_backend():
    from director.ipvs.kernel import NetlinkIpvs
    from director.ipvs.model import IpvsUnavailable

    try:
        return NetlinkIpvs()
    except IpvsUnavailable as exc:
        raise CommandError(str(exc)) from exc
    except PermissionError as exc:
        raise CommandError("cannot open the IPVS netlink socket: permission denied (run as root)") from exc


def _reconcile_once(args: argparse.Namespace, dry_run: bool) -> int:
    from director.daemon.state_store import StateError, StateStore

    config = _load(args.config)
    store = StateStore(args.state_dir or config.global_.state_dir)
    try:
        if not dry_run:
            store.lock()  # not beside a running daemon: both would write the table and the state
        return _reconcile_locked(args, config, store, dry_run)
    except StateError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        store.unlock()


def _reconcile_locked(args: argparse.Namespace, config: Config, store: StateStore, dry_run: bool) -> int:
    from director.daemon.state_store import StateError, admin_drain_states
    from director.daemon.steady_clock import SteadyClock, current_anchor
    from director.ipvs.sysctl import IpvsSysctl
    from director.reconcile.apply import reconcile_pass

    state = store.load()
    state.clock = current_anchor(state.clock)  # the daemon's clock: a drain it began counts on here
    backend = _open_backend()
    try:
        states = admin_drain_states(config, state.admin_drains)
        report = reconcile_pass(config, backend, state.book, SteadyClock(state.clock).now(), states, dry_run=dry_run,
                                sysctl=IpvsSysctl())
    except OSError as exc:
        raise CommandError(f"kernel: {exc}") from exc
    finally:
        backend.close()
    if not dry_run:
        try:
            store.save(state)
        except StateError as exc:
            report.errors.append(str(exc))
    _emit(args, report.to_json(), _format_report(report, dry_run))
    for line in report.errors if args.json else []:
        print(line, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_RUNTIME


def _format_report(report, dry_run: bool) -> str:
    lines = []
    for change in report.changes:
        lines.append(f"{change.action:<7} {change.describe()[len(change.action) + 1:]}")
    lines.extend(f"wait    {line}" for line in report.waiting)
    lines.extend(f"error   {line}" for line in report.errors)
    summary = f"{counted(report.services, 'service')}, {counted(report.real_servers, 'real server')}"
    if not report.changes and not report.errors:
        lines.append(f"no changes: the kernel matches the config ({summary})")
    else:
        verb = "would make" if dry_run else "made"
        lines.append(f"{verb} {counted(len(report.changes), 'change')} ({summary})"
                     + (f", {len(report.errors)} failed" if report.errors else ""))
    return "\n".join(lines)


def cmd_diff(args: argparse.Namespace) -> int:
    return _reconcile_once(args, dry_run=True)


def cmd_apply(args: argparse.Namespace) -> int:
    return _reconcile_once(args, dry_run=False)


# --- run / probe --------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from director import logs

    config = _runnable(args.config)
    try:
        copies = logs.copy_handlers(config.global_.log_file, config.global_.log_facility or "")
    except OSError as exc:
        raise CommandError(f"cannot open the log: {exc.filename or config.global_.log_file}: "
                           f"{exc.strerror or exc}", EXIT_RUNTIME) from exc
    logs.configure(args.log_level or config.global_.log_level, config.global_.log_format, copies=copies)
    import asyncio

    import uvloop

    from director.config.host_tracking import script_security_problems
    from director.config.load import explain
    from director.daemon import privileges
    from director.daemon.control import SocketInUse
    from director.daemon.daemon import Daemon, MetricsUnavailable
    from director.daemon.state_store import StateError
    from director.daemon.vrrp_child import VrrpProcess
    from director.hook_env import SAFE_PATH

    refused = explain(config.path, script_security_problems(config, SAFE_PATH))
    if refused:
        raise CommandError("\n".join(refused), EXIT_CONFIG)
    lacking = privileges.missing(config)
    if lacking:
        raise CommandError(f"needs {' and '.join(lacking)} (run it as root, as the systemd unit does)")
    # Forked first, while this process has no threads, sockets or loop for it to inherit.
    vrrp = VrrpProcess.fork(config.vrrp_instances, config.global_.vrrp_realtime_priority) \
        if config.vrrp_instances else None
    try:
        backend = _open_backend() if config.virtual_servers else None
        daemon = Daemon(config, backend, args.state_dir, vrrp)
        # asyncio.Runner rather than uvloop.run: Debian 12's uvloop (0.17) predates uvloop.run.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(daemon.run())
    except (StateError, SocketInUse, MetricsUnavailable, CommandError, OSError) as exc:
        if vrrp is not None:
            vrrp.abandon()
        message = str(exc) if not isinstance(exc, OSError) else f"cannot start: {exc.strerror or exc}"
        raise CommandError(message, getattr(exc, "code", EXIT_RUNTIME)) from exc


def cmd_probe(args: argparse.Namespace) -> int:
    import asyncio

    from director.daemon.health import probe_target
    from healthcheck import probe_all

    try:
        config = _load(args.config)
    except CommandError as exc:  # 1 means "a server is down" here: an unusable config is 2
        raise CommandError(str(exc), EXIT_RUNTIME) from exc.__cause__
    rows = [(vs, rs, check) for vs in config.virtual_servers for rs in vs.real_servers for check in vs.checks_of(rs)]
    pairs = [(probe_target(check, str(rs.address), rs.port), check) for _, rs, check in rows]
    results = asyncio.run(probe_all(pairs))
    data = [
        {"virtual_server": vs.name, "real_server": rs.endpoint, "check": check.type,
         "target": target.endpoint, "up": result.ok, "latency_ms": round(result.latency * 1000, 2),
         "reason": result.reason, "weight": result.weight}
        for (vs, rs, check), (target, _), result in zip(rows, pairs, results, strict=True)
    ]
    width = max([len(r["virtual_server"]) for r in data] + [14])
    lines = [f"{'VIRTUAL SERVER':<{width}}  {'REAL SERVER':<22} {'CHECK':<6} {'VERDICT':<7} {'LATENCY':>9}  REASON"]
    lines += [f"{r['virtual_server']:<{width}}  {r['real_server']:<22} {r['check']:<6} "
              f"{'up' if r['up'] else 'DOWN':<7} {r['latency_ms']:>7.1f}ms  {r['reason']}" for r in data]
    down = sum(not r["up"] for r in data)
    lines.append(f"{len(data) - down} up, {down} down")
    _emit(args, {"results": data, "up": len(data) - down, "down": down}, "\n".join(lines))
    return EXIT_OK if down == 0 else EXIT_CONFIG


# --- talking to the running daemon -----------------------------------------------------------------


def _socket_path(args: argparse.Namespace) -> str:
    """--socket, else the config's control_socket, else the default.

    A config that no longer validates is exactly when people run `reload`, so its
    `[global] control_socket` is still read when the TOML parses; a file that cannot be
    read at all is an error rather than a silent fall back to the default socket."""
    from director.config.load import read_toml
    from director.config.model import GlobalConfig

    if args.socket:
        return args.socket
    try:
        return load_config(args.config).global_.control_socket
    except ConfigError as exc:
        invalid = exc
    if not os.path.exists(args.config):
        return GlobalConfig.control_socket  # no file to read it from: the daemon's default too
    try:
        configured = read_toml(args.config).get("global", {}).get("control_socket", GlobalConfig.control_socket)
    except ConfigError as exc:
        reason = exc.lines[0].removeprefix(f"{args.config}: ")
        raise CommandError(f"cannot read {args.config}: {reason}; pass --socket") from exc
    except AttributeError:  # [global] is not a table
        configured = None
    if not isinstance(configured, str) or not configured:
        reason = invalid.lines[0].removeprefix(f"{args.config}: ")
        raise CommandError(f"cannot find the control socket in {args.config} ({reason}); pass --socket") from invalid
    return configured


def _ask(args: argparse.Namespace, command: str, **arguments: object) -> object:
    from director.daemon.control import ControlError, request

    try:
        return request(_socket_path(args), command, **arguments)
    except ControlError as exc:
        raise CommandError(str(exc)) from exc


def cmd_status(args: argparse.Namespace) -> int:
    from director.daemon.status import format_status, select

    snapshot = _ask(args, "status")
    if args.name is not None:
        try:
            snapshot = select(snapshot, args.name)
        except LookupError as exc:
            raise CommandError(str(exc.args[0])) from exc
    _emit(args, snapshot, format_status(snapshot))
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    result = _ask(args, "reload")
    assert isinstance(result, dict)
    changes, errors = result.get("changes"), result.get("errors") or []
    vrrp_changes = result.get("vrrp_changes") or []
    counts = [counted(len(vrrp_changes), "VRRP change")]
    if changes is not None:
        counts.insert(0, counted(len(changes), "IPVS change"))
    pending = f" ({result['pending']})" if "pending" in result else ""
    print(f"reloaded {result['reloaded']}: {', '.join(counts)}{pending}")
    for lines in (changes or [], vrrp_changes):
        for line in lines[:MAX_LISTED]:
            print(f"  {line}")
        if len(lines) > MAX_LISTED:
            print(f"  ... and {len(lines) - MAX_LISTED} more")
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_RUNTIME if errors else EXIT_OK


def _drain_arguments(args: argparse.Namespace) -> dict:
    from director.config.read import parse_endpoint

    try:
        address, port = parse_endpoint(args.target)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_CONFIG) from exc
    return {"address": address, "port": port, "service": args.service}


def cmd_drain(args: argparse.Namespace) -> int:
    result = _ask(args, "drain", **_drain_arguments(args))
    print("drained: " + ", ".join(result["drained"]))
    return EXIT_OK


def cmd_undrain(args: argparse.Namespace) -> int:
    result = _ask(args, "undrain", **_drain_arguments(args))
    print("undrained: " + ", ".join(result["undrained"]))
    return EXIT_OK


def cmd_failover(args: argparse.Namespace) -> int:
    result = _ask(args, "failover", instance=args.instance, force=args.force, release=args.release)
    if result.get("released"):
        print(f"{result['instance']}: hold released, may preempt again; now {result['state']}")
        return EXIT_OK
    print(f"{result['instance']}: gave up master (priority 0 sent); now {result['state']}")
    return EXIT_OK


# --- migration and drills (their own modules) ------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from director.importer.cli import run_import

    return run_import(args)


def _fault_phase_arg(text: str) -> float | None:
    """`--fault-phase`: seconds after an advert (0 to 10), or `random`."""
    if text == "random":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 10, nor `random`")
    return value


def _repeat_arg(text: str) -> int:
    """`--repeat`: 1 to 100 rounds."""
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rounds from 1 to 100")
    return int(text)


def _rate_arg(text: str) -> float:
    """`--rate`: more than 0 and at most 1000 new connections a second."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate above 0 and up to 1000 connections a second")
    return value


def cmd_drill(args: argparse.Namespace) -> int:
    from director.drill.cli import run_drill

    return run_drill(args)


# --- wiring ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="directord", description="LVS director daemon: VRRP, IPVS and health checks.")
    parser.add_argument("--version", action="version", version=f"directord {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str,
                config: bool = True, json_output: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if config:
            p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        if json_output:
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    p = command("check-config", cmd_check_config, "validate the config and exit 0 (ok) or 1 (one line per error)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when the config is valid")
    p.add_argument("--no-host-checks", dest="host_checks", action="store_false",
                   help="skip checks against this host (interfaces, address ownership)")
    p = command("run", cmd_run, "run the daemon: VRRP, health checks and the IPVS reconciler")
    p.add_argument("--state-dir", help="override global.state_dir")
    from director.config.model import GlobalConfig, field_choices

    p.add_argument("--log-level", choices=field_choices(GlobalConfig, "log_level"), help="override global.log_level")
    command("probe", cmd_probe, "run every configured health check once and print each verdict, latency and reason",
            json_output=True)
    def control_command(name: str, func: Callable[[argparse.Namespace], int], help_text: str,
                        json_output: bool = False) -> argparse.ArgumentParser:
        p = command(name, func, help_text, json_output=json_output)
        p.add_argument("--socket", help="control socket (default: global.control_socket of the config)")
        return p

    control_command("status", cmd_status, "show VRRP instances, virtual services and real servers",
                    json_output=True).add_argument("name", nargs="?", metavar="NAME",
                                                   help="only this virtual server or VRRP instance")
    control_command("reload", cmd_reload, "make the running daemon re-read its config (kept if invalid)")
    for name, func, text in (("drain", cmd_drain, "take a real server out for maintenance (weight 0, persisted)"),
                             ("undrain", cmd_undrain, "put a drained real server back")):
        p = control_command(name, func, text)
        p.add_argument("target", metavar="ADDR[:PORT]", help="real server address, optionally with port")
        p.add_argument("--service", help="only in this virtual server (default: every one)")
    p = control_command("failover", cmd_failover, "give up master for a VRRP instance (priority 0 advert)")
    p.add_argument("instance", help="VRRP instance name")
    p.add_argument("--force", action="store_true",
                   help="give up master even though no other router was ever heard on the VRID")
    p.add_argument("--release", action="store_true",
                   help="instead, lift the hold an earlier failover left (the node may preempt again)")
    p = command("import", cmd_import, "convert a keepalived.conf, ldirectord.cf or piranha lvs.cf to directord TOML",
                config=False)
    p.add_argument("--from", dest="source", required=True, choices=tuple(CONVERTERS), help="the format of FILE")
    p.add_argument("file", help="the configuration to convert")
    p.add_argument("-o", "--output", help="write the TOML here (default: standard output)")
    p.add_argument("--strict", action="store_true", help="fail on any directive that has no directord equivalent")
    p = command("drill", cmd_drill, "run failover drills against a running lab and report", config=False)
    p.add_argument("--lab", default="directord", help="lab name (built with python -m scripts.lab up, docs/drill.md)")
    p.add_argument("--scenario", action="append", help="scenario to run (default: all); repeatable")
    p.add_argument("--directors", help="director implementations to drill side by side, comma separated "
                   "(directord, keepalived; default: both, keepalived only when installed)")
    p.add_argument("--gate", help="only these implementations' broken bounds make the exit code 1 (default: all)")
    p.add_argument("--report", default="drill-report", help="report path prefix (.txt and .png are written)")
    p.add_argument("--max-takeover", type=float, help="fail if a takeover takes longer (seconds)")
    p.add_argument("--max-failed-requests", type=int, help="fail if more requests fail in a scenario")
    p.add_argument("--max-lost-connections", type=int, default=0,
                   help="fail if more long-lived connections are lost (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--repeat", type=_repeat_arg, default=argparse.SUPPRESS, metavar="N",
                   help="run every scenario N times, the implementations taking turns; the report gives "
                   "medians and ranges, totals, and where the first implementation trails (default 1)")
    p.add_argument("--rate", type=_rate_arg, default=argparse.SUPPRESS,
                   help="new client connections per second (default 25)")
    p.add_argument("--fault-phase", type=_fault_phase_arg, default=argparse.SUPPRESS, metavar="SECONDS|random",
                   help="inject a master's fault this long after one of its adverts reaches the client, so "
                   "every round and implementation meets the same worst case; `random` for no alignment "
                   "(default 0.05)")
    for name, func, text in (
        ("diff", cmd_diff, "show what apply would change in the kernel IPVS table; change nothing"),
        ("apply", cmd_apply, "make the kernel IPVS table match the config once and print what changed"),
    ):
        p = command(name, func, text, json_output=True)
        p.add_argument("--state-dir", help="override global.state_dir")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        if getattr(args, "json", False):  # a consumer parsing stdout gets one JSON document either way
            lines = [str(exc)] if str(exc) else list(getattr(exc.__cause__, "lines", []))
            print(json.dumps({"error": "; ".join(lines) or "failed", "errors": lines, "exit": exc.code}))
        elif str(exc):
            _error(f"directord {args.command}: {exc}")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
