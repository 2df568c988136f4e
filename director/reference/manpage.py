"""directord(8) from the CLI's argparse tree and the commands table; directord.toml(5) from
docs/configuration.md. Both return the page as text; writing it is the entry point's job."""

from __future__ import annotations

from director import __version__
from director.reference import commands as table
from director.reference.markdown import to_roff
from director.reference.roff import bold, entry, escape, inline, italic, line, title
from director.reference.walk import Command, Option

DESCRIPTION = (
    "directord is one daemon per LVS director: it owns the virtual IPs with VRRP (versions 2 and 3), programs "
    "the kernel IPVS table over netlink, and health-checks the real servers. One TOML file, "
    "directord.toml(5), configures all three. The other commands check a config before it goes live, look "
    "at or steer the running daemon through its control socket, convert keepalived, ldirectord and piranha "
    "configs, and drill failover in a lab."
)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""


def _invocation(option: Option) -> str:
    names = ", ".join(bold(s) for s in option.strings) if option.strings else ""
    value = italic(option.metavar) if option.metavar else ""
    return f"{names} {value}".strip()


def _option_body(option: Option) -> str:
    parts = [inline(_sentence(option.help))]
    if option.choices and not option.metavar.startswith("{"):
        parts.append("One of: " + ", ".join(bold(c) for c in option.choices) + ".")
    if option.default not in (None, "") and "default" not in option.help:
        parts.append(f"Default: {bold(str(option.default))}.")
    if option.repeatable and "repeatable" not in option.help:
        parts.append("May be given more than once.")
    return " ".join(p for p in parts if p)


def _codes(codes: tuple[tuple[int, str], ...]) -> list[str]:
    return [line for code, meaning in codes for line in entry(bold(str(code)), escape(_sentence(meaning)))]


def _command(cmd: Command) -> list[str]:
    doc = table.COMMANDS.get(cmd.name)
    out = [".SS", line(bold(cmd.name)), ".PP", line(escape(cmd.usage, literal=True)), ".PP",
           line(escape(_sentence(cmd.summary)))]
    for option in (*cmd.positionals, *cmd.options):
        out += entry(_invocation(option), _option_body(option))
    if doc is not None:
        out += [".PP", "Examples:"]
        out += [text for ex in doc.examples for text in entry(bold(ex.argv), escape(_sentence(ex.what)))]
        out += [".PP", "Exit status:", *_codes(doc.exit_codes)]
    return out


def _pairs(section: str, pairs: tuple[tuple[str, str], ...]) -> list[str]:
    return [f".SH {section}", *(text for key, body in pairs for text in entry(bold(key), escape(body)))]


def directord_8(cmds: list[Command], top: list[Option], date: str = "") -> str:
    """The manual page of the command line, from the walk of director.cli.build_parser()."""
    config_path = next(str(o.default) for c in cmds for o in c.options if o.dest == "config")
    out = [*title("DIRECTORD", 8, date, f"directord {__version__}", "System Administration"),
           ".SH NAME", "directord \\- LVS director daemon: VRRP, IPVS and health checks",
           ".SH SYNOPSIS", f"{bold('directord')} {italic('COMMAND')} [{italic('OPTION')}]...", ".br",
           f"{bold('directord')} {bold('--version')}",
           ".SH DESCRIPTION", ".PP", line(escape(DESCRIPTION)), ".PP",
           line(f"Every command takes {bold('-h')}, {bold('--help')}: its options, examples and exit codes. "
                f"Commands that read the config take {bold('-c')} {italic('FILE')} (default "
                f"{bold(config_path)}); those that print state take {bold('--json')}."),
           ".SH OPTIONS"]
    for option in top:
        out += entry(_invocation(option), _option_body(option))
    out += [".SH COMMANDS"]
    for cmd in cmds:
        out += _command(cmd)
    out += [".SH EXIT STATUS", *_codes(table.EXIT_STATUS)]
    out += _pairs("SIGNALS", table.signals())
    out += _pairs("FILES", table.files(config_path))
    out += _pairs("ENVIRONMENT", table.ENVIRONMENT)
    out += [".SH SEE ALSO", line(", ".join(_man_ref(ref) for ref in table.SEE_ALSO))]
    return "\n".join(out) + "\n"


def _man_ref(ref: str) -> str:
    name, _, section = ref.partition("(")
    return f"{bold(name)}({section}"


def directord_toml_5(markdown: str, date: str = "") -> str:
    """The manual page of the config file: docs/configuration.md, converted."""
    out = [*title("DIRECTORD.TOML", 5, date, f"directord {__version__}", "File Formats"),
           ".SH NAME", "directord.toml \\- configuration file of directord(8)",
           ".SH DESCRIPTION", *to_roff(markdown),
           ".SH SEE ALSO", line(", ".join(_man_ref(ref) for ref in ("directord(8)", "ipvsadm(8)")))]
    return "\n".join(out) + "\n"
