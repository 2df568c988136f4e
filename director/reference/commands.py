"""What argparse cannot know about the command line: examples, exit codes, signals, files.

One table feeds both each subcommand's `--help` epilog (director.cli attaches `epilog(name)`)
and `directord(8)`, so the help and the manual say the same thing. Defaults are read from the
config model, never written here. Kept free of I/O and of director.cli (which imports it).
"""

from __future__ import annotations

from dataclasses import dataclass

from director.config.model import GlobalConfig, IpvsConfig, field_default

USAGE = "or a command-line usage error"


@dataclass(frozen=True)
class Example:
    argv: str  # the command line, starting with `directord`
    what: str  # what it does, one clause


@dataclass(frozen=True)
class CommandDoc:
    examples: tuple[Example, ...]
    exit_codes: tuple[tuple[int, str], ...]  # (code, when), in code order


_CONTROL_DOWN = "the daemon is not running or its control socket cannot be reached"

COMMANDS: dict[str, CommandDoc] = {
    "check-config": CommandDoc(
        (Example("directord check-config", "check the default config, and that it fits this host"),
         Example("directord check-config --no-host-checks -c lb2.toml", "check a file meant for another director")),
        ((0, "the config is valid (warnings, if any, go to standard error)"),
         (1, "the config is invalid, has nothing to run, or does not fit this host; one line per problem"),
         (2, USAGE.removeprefix("or "))),
    ),
    "run": CommandDoc(
        (Example("directord run", "run in the foreground with the default config, as the systemd unit does"),
         Example("directord run --log-level debug", "the same, logging every event")),
        ((0, "stopped by SIGTERM or SIGINT"),
         (1, "the config is invalid or has nothing to run"),
         (2, "start-up failed (control socket in use, metrics address taken, state_dir unusable, no IPVS in the "
             f"kernel, permission denied) or a part of the daemon failed while running, {USAGE}")),
    ),
    "probe": CommandDoc(
        (Example("directord probe", "check every real server once and print verdict, latency and reason"),
         Example("directord probe --json -c lab.toml", "the same for another config, as JSON")),
        ((0, "every real server is up"),
         (1, "at least one real server is down"),
         (2, f"the config is invalid or the checks could not run, {USAGE}")),
    ),
    "status": CommandDoc(
        (Example("directord status", "VRRP instances, virtual servers and real servers of the running daemon"),
         Example("directord status web --json", "only the virtual server (or VRRP instance) named web, as JSON")),
        ((0, "the status was printed"),
         (2, f"{_CONTROL_DOWN}, or NAME is neither a virtual server nor a VRRP instance, {USAGE}")),
    ),
    "reload": CommandDoc(
        (Example("directord reload", "make the daemon re-read its config and list the IPVS changes it made"),
         Example("systemctl reload directord", "the same through the unit's ExecReload")),
        ((0, "the daemon runs the new config and the kernel took every change"),
         (2, "the daemon refused the file (its errors are printed; the previous config stays in force), a change "
             f"could not be written to the kernel, or {_CONTROL_DOWN}, {USAGE}")),
    ),
    "drain": CommandDoc(
        (Example("directord drain 10.0.0.11", "weight 0 for 10.0.0.11 in every virtual server, kept across restarts"),
         Example("directord drain 10.0.0.11:8080 --service web", "only that port, only in the virtual server web")),
        ((0, "the real server is drained"),
         (1, "ADDR[:PORT] is not an address with an optional port"),
         (2, f"no configured real server matches, or {_CONTROL_DOWN}, {USAGE}")),
    ),
    "undrain": CommandDoc(
        (Example("directord undrain 10.0.0.11", "put 10.0.0.11 back wherever it was drained"),
         Example("directord undrain 10.0.0.11:8080 --service web", "undo a drain given with the same arguments")),
        ((0, "the drain is lifted"),
         (1, "ADDR[:PORT] is not an address with an optional port"),
         (2, f"no matching drain is in place, or {_CONTROL_DOWN}, {USAGE}")),
    ),
    "failover": CommandDoc(
        (Example("directord failover VI_1", "hand VI_1 to the backup; this director holds back from preempting"),
         Example("directord failover VI_1 --release", "lift that hold: it may become master again")),
        ((0, "mastership was given up, or the hold lifted"),
         (2, "no such VRRP instance, it is not master here, no other router was heard (see --force), or "
             f"{_CONTROL_DOWN}, {USAGE}")),
    ),
    "import": CommandDoc(
        (Example("directord import --from keepalived /etc/keepalived/keepalived.conf -o directord.toml",
                 "convert a keepalived config, listing what did not carry over on standard error"),
         Example("directord import --from ldirectord --strict ldirectord.cf", "print the TOML only if all of it maps")),
        ((0, "converted; directives without an exact equivalent, if any, are listed on standard error"),
         (1, "FILE cannot be read or parsed, with --strict a directive has no exact equivalent, the result does "
             "not validate, or OUTPUT cannot be written"),
         (2, USAGE.removeprefix("or "))),
    ),
    "drill": CommandDoc(
        (Example("directord drill --lab directord --max-takeover 3.2", "every scenario, directord and keepalived"),
         Example("directord drill --scenario sigkill --directors directord --repeat 5",
                 "one scenario, five rounds, medians in the report")),
        ((0, "every bound held (of the --gate implementations)"),
         (1, "a bound broke"),
         (2, f"the lab cannot be used (not built, not running), an unknown scenario or director, {USAGE}")),
    ),
    "diff": CommandDoc(
        (Example("directord diff", "what the first reconcile pass would write to the IPVS table"),
         Example("directord diff --json", "the same as JSON")),
        ((0, "the difference was printed (whether or not there is one)"),
         (1, "the config is invalid"),
         (2, f"no IPVS in the kernel, permission denied, state_dir unreadable, a kernel error, {USAGE}")),
    ),
    "apply": CommandDoc(
        (Example("directord apply", "make the IPVS table match the config once, without the daemon"),
         Example("directord apply --state-dir /tmp/directord", "the same, keeping state elsewhere")),
        ((0, "the table matches the config"),
         (1, "the config is invalid"),
         (2, f"a change was refused by the kernel, no IPVS, permission denied, state_dir unusable, {USAGE}")),
    ),
}

# Exit codes of every command; the commands' own lists say what each means for them.
EXIT_STATUS: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "the config is invalid (or, for probe, a real server is down; for drill, a bound broke; for import, the "
        "conversion failed); errors are one line each, FILE:LINE: key.path: reason"),
    (2, "a runtime error: the daemon is not running or its control socket cannot be reached, a kernel or "
        "permission error, a start-up failure; and every command-line usage error"),
    (130, "interrupted (SIGINT) while a command other than run was working"),
)


def epilog(name: str) -> str:
    """The end of `directord NAME --help`: examples, then exit codes ("" for an undocumented
    command, which tests/reference/ refuses)."""
    doc = COMMANDS.get(name)
    if doc is None:
        return ""
    lines = ["Examples:"]
    for example in doc.examples:
        lines += [f"  {example.argv}", f"      {example.what}"]
    lines += ["", "Exit codes:"]
    lines += [f"  {code}  {meaning}" for code, meaning in doc.exit_codes]
    return "\n".join(lines)


def signals() -> tuple[tuple[str, str], ...]:
    """What `directord run` does on each signal."""
    on_stop = field_default(IpvsConfig, "on_stop")
    return (
        ("SIGHUP", "Re-read the config, as directord reload does. An invalid file is logged as an error and the "
                   "running config stays in force."),
        ("SIGTERM, SIGINT", "Stop gracefully: every master sends a priority-0 advert at once, so the backup takes "
                            "over after its skew time, and keeps its virtual IPs until the backup claims them (one "
                            "advert interval and 150 ms at most). The IPVS table is left in place (ipvs.on_stop "
                            f'default "{on_stop}"), so a restart drops no connection. Exit status 0.'),
        ("SIGKILL", "Nothing runs: the backup takes over after Master_Down_Interval, and the next start removes "
                    "virtual IPs left on the interfaces before it comes up as backup."),
    )


def files(config_path: str) -> tuple[tuple[str, str], ...]:
    """The files directord reads and writes; `config_path` is the -c default of the CLI."""
    from director.daemon.state_store import STATE_FILE

    socket_path = field_default(GlobalConfig, "control_socket")
    state_dir = field_default(GlobalConfig, "state_dir")
    return (
        (config_path, "The configuration, see directord.toml(5). Every command that reads it takes -c FILE."),
        (socket_path, "The control socket (global.control_socket), created mode 0600 by run; status, reload, "
                      "drain, undrain and failover talk to it, or to --socket PATH."),
        (f"{state_dir}/{STATE_FILE}", "What must survive a restart (global.state_dir): the IPVS services directord "
                                      "created, the real servers still draining, and admin drains. Written "
                                      "atomically; run, diff and apply take --state-dir DIR."),
        ("directord.service", "The systemd unit: Type=notify with a watchdog, check-config -q before start, run, "
                              "and reload as ExecReload."),
    )


ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("NOTIFY_SOCKET", "Set by systemd for Type=notify: run reports READY=1 once it is up, a STATUS= line, and "
                      "STOPPING=1. Unset, nothing is sent."),
    ("WATCHDOG_USEC", "Set by systemd with WatchdogSec=: run pings WATCHDOG=1 at half this interval, only while "
                      "both its event loop and its VRRP process answer."),
    ("JOURNAL_STREAM", "Set by systemd when standard error is the journal: every log line and every error line "
                       "then starts with its syslog priority (<3> for errors), for journalctl -p."),
    ("SSL_CERT_FILE", "Trust store of https checks with tls_verify = true, instead of the system's."),
)

SEE_ALSO = ("directord.toml(5)", "ipvsadm(8)", "keepalived(8)", "systemd.service(5)", "systemctl(1)",
            "journalctl(1)")
