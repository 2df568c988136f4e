"""The CLI's argparse tree as plain data, for the manual page and the shell completions.

argparse keeps its subcommands and actions in private attributes; reading them here, in one
place, keeps the builders free of argparse internals.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# What a value names, for completion: argparse only knows it is a string.
PATH_VALUES = {"config": "file", "output": "file", "file": "file", "socket": "file", "report": "file",
               "state_dir": "dir"}


@dataclass(frozen=True)
class Option:
    strings: tuple[str, ...]  # ("-c", "--config"); () for a positional
    dest: str
    metavar: str | None  # None: takes no value (a flag)
    help: str
    default: object  # None for flags and suppressed defaults
    choices: tuple[str, ...]
    repeatable: bool
    optional: bool  # positionals: nargs "?"

    @property
    def path_kind(self) -> str | None:
        """"file" or "dir" when the value is a path, else None."""
        return PATH_VALUES.get(self.dest) if self.metavar else None


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    usage: str  # "directord check-config [-h] ...", on one line
    options: tuple[Option, ...]  # optionals, without -h/--help
    positionals: tuple[Option, ...]


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> Option:
    formatter = parser._get_formatter()
    flag = action.nargs == 0
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    if flag:
        metavar = None
    elif action.metavar is not None:
        metavar = str(action.metavar)
    elif choices:
        metavar = "{" + ",".join(choices) + "}"
    else:
        metavar = action.dest.upper() if action.option_strings else action.dest
    default = None if flag or action.default is argparse.SUPPRESS else action.default
    return Option(tuple(action.option_strings), action.dest, metavar,
                  formatter._expand_help(action) if action.help else "", default, choices,
                  isinstance(action, argparse._AppendAction), action.nargs == "?")


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=10_000)  # one line, whatever the terminal
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    """Every subcommand, in the order `directord --help` lists them."""
    sub = subparsers(parser)
    summaries = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    found = []
    for name, p in sub.choices.items():
        actions = [a for a in p._actions if not isinstance(a, argparse._HelpAction)]
        found.append(Command(
            name, summaries.get(name, ""), _usage(p),
            tuple(_option(p, a) for a in actions if a.option_strings),
            tuple(_option(p, a) for a in actions if not a.option_strings)))
    return found


def top_options(parser: argparse.ArgumentParser) -> list[Option]:
    """The options before the command (`--version`, `-h`)."""
    return [_option(parser, a) for a in parser._actions if a.option_strings]
