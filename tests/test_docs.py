"""docs/configuration.md documents every key of the config model, under its table.

The walk starts at `Config` in director/config/model.py and follows every field whose type is
a config dataclass (or an optional one, or a tuple of them) into its sub-table. Python field
names become TOML keys the way director/config/load.py reads them. The reference is read as
markdown: a heading naming a table in backticks (`[global]`, `[[virtual_server.real_server]]`)
opens that table, and every row of a markdown table under it whose first cell is a backticked
key documents that key. Deeper headings without a table (per check type, say) stay in it.

Beyond presence, each documented row must agree with the model: defaults of booleans, numbers,
durations and strings appear in the row's default cell, and every `Literal` choice is named in
the row. And nothing is documented that the model does not have.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from director.config import model
from director.config.read import format_duration

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

# Fields that are not read from the file at all.
NOT_KEYS = {("Config", "path"), ("Config", "fragments"), ("VrrpInstanceConfig", "sync_group_hooks"),
            ("VrrpInstanceConfig", "notify_fifo")}
# Field names the loader reads under another key (load.py: root.table("global"),
# root.tables("virtual_server"), s.tables("real_server"), root.tables("vrrp_instance")).
RENAMED = {
    ("Config", "global_"): "global",
    ("Config", "virtual_servers"): "virtual_server",
    ("Config", "vrrp_instances"): "vrrp_instance",
    ("Config", "vrrp_scripts"): "vrrp_script",
    ("Config", "track_files"): "track_file",
    ("Config", "track_processes"): "track_process",
    ("Config", "vrrp_sync_groups"): "vrrp_sync_group",
    ("VirtualServerConfig", "real_servers"): "real_server",
    # the options of virtual_ips' (and excluded_ips') table entries (load.py `_address_entries`)
    ("VrrpInstanceConfig", "address_options"): "virtual_ips",
    ("VirtualRule", "from_"): "from",  # a Python keyword (load.py `_RULE`)
}
# Fields the loader reads from a key inside a sub-table (load.py `_ipvs`: timeouts.tcp, ...).
NESTED_KEYS = {
    ("IpvsConfig", "timeout_tcp"): ("timeouts", "tcp"),
    ("IpvsConfig", "timeout_tcpfin"): ("timeouts", "tcpfin"),
    ("IpvsConfig", "timeout_udp"): ("timeouts", "udp"),
}
# A sub-table that takes exactly the keys of another (load.py `_sorry_server` reads a table
# form with `_real_server`): its fields are documented once, under the other table.
SAME_KEYS_AS = {"virtual_server.sorry_server": "virtual_server.real_server",
                "virtual_server.real_server.checks": "virtual_server.check"}
# Model defaults the loader replaces (load.py `_global`: the host name; `_check`: "tcp" for
# tcp services, "none" for the others). The row explains them.
DEFAULT_FROM_LOADER = {"global.router_id", "virtual_server.check.type"}
# Literal values that the file spells differently (load.py `_virtual_server`: family).
TOML_VALUES = {"virtual_server.family": {4: "ipv4", 6: "ipv6"},
               "vrrp_instance.virtual_rules.family": {4: "ipv4", 6: "ipv6"}}
# Choices the model lists in a constant rather than (only) in a Literal type.
CHOICES = {
    "virtual_server.scheduler": tuple(model.SCHEDULERS),
    "virtual_server.scheduler_flags": tuple(model.SCHEDULER_FLAGS),
}

TABLE_HEADING = re.compile(r"^(#+)\s.*?`\[\[?([a-z_.]+)\]\]?`")
ANY_HEADING = re.compile(r"^(#+)\s")
ROW = re.compile(r"^\|\s*`([a-z_0-9]+)`\s*\|(.*)\|\s*$")


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]  # type, default, meaning

    @property
    def default(self) -> str:
        return self.cells[1] if len(self.cells) > 1 else ""

    @property
    def text(self) -> str:
        return " | ".join(self.cells)


@dataclass(frozen=True)
class Key:
    table: str  # "global", "virtual_server.check", ...
    key: str
    owner: type
    name: str  # the Python field
    hint: Any
    default: Any  # dataclasses.MISSING when required

    @property
    def path(self) -> str:
        return f"{self.table}.{self.key}"


def documented(text: str) -> dict[str, dict[str, Row]]:
    """table -> key -> its row, as read from the reference."""
    tables: dict[str, dict[str, Row]] = {}
    current, level = None, 0
    for line in text.splitlines():
        heading = TABLE_HEADING.match(line)
        if heading:
            current, level = heading.group(2), len(heading.group(1))
            tables.setdefault(current, {})
            continue
        other = ANY_HEADING.match(line)
        if other and len(other.group(1)) <= level:
            current, level = None, 0
            continue
        row = ROW.match(line)
        if row and current is not None:
            cells = tuple(cell.strip() for cell in row.group(2).split(" | "))
            tables[current][row.group(1)] = Row(cells)
    return tables


def _unwrap(hint: Any) -> Any:
    """The config dataclass inside `X | None` or `tuple[X, ...]`, else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType, tuple):
        for arg in typing.get_args(hint):
            if arg is not type(None) and arg is not Ellipsis and (found := _unwrap(arg)) is not None:
                return found
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _rule(rules: dict[tuple[str, str], Any], cls: type, name: str) -> Any:
    """The rule for field `name` of `cls` or of a config class it extends, else None."""
    return next((rules[(c.__name__, name)] for c in cls.__mro__ if (c.__name__, name) in rules), None)


def model_keys(cls: type, table: str = "") -> list[Key]:
    """Every TOML key the model reads, with its table, walking nested config dataclasses."""
    keys: list[Key] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if _rule(dict.fromkeys(NOT_KEYS, True), cls, f.name):
            continue
        sub_table, key = table, _rule(RENAMED, cls, f.name) or f.name
        if (nested_key := _rule(NESTED_KEYS, cls, f.name)) is not None:
            parent, key = nested_key
            sub_table = f"{table}.{parent}"
            keys.append(Key(table, parent, cls, f.name, dict, None))
        nested = _unwrap(hints[f.name])
        if table:  # the root's keys are the tables themselves
            keys.append(Key(sub_table, key, cls, f.name, hints[f.name], _default(f)))
        if nested is not None:
            path = f"{table}.{key}" if table else key
            keys.extend(model_keys(nested, SAME_KEYS_AS.get(path, path)))
    return list({(k.table, k.key): k for k in keys}.values())


def _toml(value: Any, hint: Any) -> list[str]:
    """How a default may be written in the reference's default cell."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, float):
        return [f'"{format_duration(value)}"', f"{value:g}"]
    if isinstance(value, str):
        return [f'"{value}"']
    return []


def _literal_choices(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return tuple(c for arg in typing.get_args(hint) for c in _literal_choices(arg))
    return ()


def problems(root: type, text: str) -> list[str]:
    """One line per key missing from the reference, documented wrongly, or not in the model."""
    docs = documented(text)
    found: list[str] = []
    expected: dict[str, set[str]] = {}
    for k in model_keys(root):
        expected.setdefault(k.table, set()).add(k.key)
        row = docs.get(k.table, {}).get(k.key)
        if row is None:
            found.append(f"{k.path}: not documented under [{k.table}] ({k.owner.__name__}.{k.name})")
            continue
        spellings = _toml(k.default, k.hint)
        if spellings and k.path not in DEFAULT_FROM_LOADER and not any(s in row.default for s in spellings):
            found.append(f"{k.path}: default cell {row.default!r} does not say {spellings[0]}")
        names = TOML_VALUES.get(k.path, {})
        for choice in dict.fromkeys(_literal_choices(k.hint) + CHOICES.get(k.path, ())):
            word = names.get(choice, choice)
            pattern = f'`"?{re.escape(word)}"?`' if isinstance(word, str) else rf"(?<![\w.]){word}(?![\w.])"
            if not re.search(pattern, row.text):
                found.append(f"{k.path}: choice {word!r} not named in its row")
    for table, rows in docs.items():
        if table in SAME_KEYS_AS:
            continue
        for key in rows:
            if key not in expected.get(table, set()):
                found.append(f"{table}.{key}: documented but not a key of the config model")
    return found


def test_every_config_key_is_documented() -> None:
    assert problems(model.Config, DOC.read_text()) == []


def test_the_walk_reaches_every_table() -> None:
    tables = {k.table for k in model_keys(model.Config)}
    assert tables == {
        "global", "ipvs", "ipvs.timeouts", "ipvs.sync_daemon",
        "vrrp_instance", "vrrp_instance.garp", "vrrp_instance.track_interfaces",
        "vrrp_instance.track_virtual_servers", "vrrp_instance.track_scripts", "vrrp_instance.track_files",
        "vrrp_instance.track_processes", "vrrp_script", "track_file", "track_process", "vrrp_sync_group",
        "vrrp_instance.virtual_ips", "vrrp_instance.virtual_routes", "vrrp_instance.virtual_rules",
        "virtual_server", "virtual_server.check", "virtual_server.check.urls", "virtual_server.real_server",
    }
    keys = {k.path for k in model_keys(model.Config)}
    assert {"global.router_id", "ipvs.timeouts.tcp", "ipvs.timeouts", "ipvs.sync_daemon.max_packet_size",
            "vrrp_instance.garp", "vrrp_instance.garp.refresh", "virtual_server.check.expect_status",
            "virtual_server.sorry_server", "virtual_server.real_server.tunnel_checksum"} <= keys
    assert not any("global_" in k or "real_servers" in k or "timeout_tcp" in k for k in keys)


# A model that grew one field nobody documented, two tables deep.


@dataclass(frozen=True)
class _GrownCheck(model.CheckConfig):
    retry_backoff: float = 0.25


@dataclass(frozen=True)
class _GrownVirtualServer(model.VirtualServerConfig):
    check: _GrownCheck = field(default_factory=_GrownCheck)


@dataclass(frozen=True)
class _GrownGlobal(model.GlobalConfig):
    pid_file: str = "/run/directord.pid"


@dataclass(frozen=True)
class _GrownConfig(model.Config):
    global_: _GrownGlobal = field(default_factory=_GrownGlobal)
    virtual_servers: tuple[_GrownVirtualServer, ...] = ()


def test_an_undocumented_field_is_named() -> None:
    assert problems(_GrownConfig, DOC.read_text()) == [
        "global.pid_file: not documented under [global] (_GrownGlobal.pid_file)",
        "virtual_server.check.retry_backoff: not documented under [virtual_server.check] (_GrownCheck.retry_backoff)",
    ]


def test_a_key_under_the_wrong_table_or_a_wrong_default_is_caught() -> None:
    text = DOC.read_text()
    moved = re.sub(r"^\| `log_level` \|.*\n", "", text, flags=re.M)
    moved = moved.replace("## `[ipvs]`", "## `[ipvs]`\n\n| `log_level` | string | `\"info\"` | misplaced |\n", 1)
    assert moved != text
    assert problems(model.Config, moved) == [
        "global.log_level: not documented under [global] (GlobalConfig.log_level)",
        "ipvs.log_level: documented but not a key of the config model",
    ]
    wrong = re.sub(r"^(\| `rise` \| integer \| )`2`", r"\g<1>`3`", text, flags=re.M)
    assert wrong != text
    assert problems(model.Config, wrong) == ["virtual_server.check.rise: default cell '`3`' does not say 2"]


def test_the_reader_follows_headings() -> None:
    text = "\n".join([
        "## `[global]`", "| `a` | string | | x |",
        "### tcp checks", "| `b` | string | | stays in global |",
        "## Something else", "| `c` | string | | in no table |",
        "## `[[virtual_server.real_server]]`", "| `d` | int | | y |",
    ])
    tables = documented(text)
    assert set(tables["global"]) == {"a", "b"} and set(tables["virtual_server.real_server"]) == {"d"}


def test_relative_links_in_the_docs_resolve() -> None:
    root = DOC.parents[1]
    broken = []
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "benchmarks").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)}: {target}")
    assert broken == []
