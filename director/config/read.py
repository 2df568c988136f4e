"""Typed reads from parsed TOML tables that record every error by key path.

Validation keeps going after the first error so a user sees all of them at
once; each failed read records one error and returns the default.
`read_fields` reads a table into a model dataclass with the defaults and
choices of its fields, so the loader restates neither.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from director.config.locate import Path
from director.config.model import IPAddress, IPInterface, field_choices, field_default
from director.config.problems import Problem, parse_key

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# "no default: the key is required"; the same marker a dataclass uses for a field without one
_MISSING: Any = dataclasses.MISSING


def parse_duration(text: str) -> float:
    """Parse "100ms", "2s", "5m", "1h" or combinations such as "1m30s" into seconds."""
    text = text.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError(f'must be a duration with a unit such as "100ms", "2s" or "5m", got "{text}"')
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError('must be a duration with a unit such as "2s", got ""')
    return round(total, 6)


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


def _type_name(value: object) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


class Section:
    """One TOML table being read: remembers which keys were used and collects errors."""

    def __init__(self, data: dict[str, Any], path: Path, errors: list[Problem]) -> None:
        self.data = data
        self.path = path
        self.errors = errors
        self._used: set[str] = set()

    def key_path(self, key: str | Path) -> Path:
        """KEY may be dotted with indexes ("real_server[0].port"); a tuple is taken as is."""
        return self.path + (parse_key(key) if isinstance(key, str) else key)

    def error(self, key: str | Path, reason: str) -> None:
        self.errors.append(Problem(self.key_path(key), reason))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._used.add(key)
        return self.data.get(key, default)

    def _typed(self, key: str, types: tuple[type, ...], default: Any, what: str) -> Any:
        value = self.raw(key)
        if value is _MISSING:
            if default is _MISSING:
                self.error(key, "is required")
                return None
            return default
        if isinstance(value, bool) and bool not in types:
            self.error(key, f"must be {what}, got a boolean")
            return default if default is not _MISSING else None
        if not isinstance(value, types):
            self.error(key, f"must be {what}, got {_type_name(value)}")
            return default if default is not _MISSING else None
        return value

    def string(self, key: str, default: Any = _MISSING, choices: Iterable[str] | None = None) -> Any:
        value = self._typed(key, (str,), default, "a string")
        if choices is not None and isinstance(value, str) and self.has(key):
            allowed = tuple(choices)
            if value not in allowed:
                self.error(key, f'"{value}" is not one of {", ".join(allowed)}{_suggest(value, allowed)}')
                return default if default is not _MISSING else None
        return value

    def integer(self, key: str, default: Any = _MISSING, lo: int | None = None,
                hi: int | None = None) -> Any:
        value = self._typed(key, (int,), default, "an integer")
        if isinstance(value, int) and self.has(key) and not _within(value, lo, hi):
            self.error(key, f"must be in {lo}..{hi}, got {value}")
            return default if default is not _MISSING else None
        return value

    def number(self, key: str, default: Any = _MISSING, lo: float | None = None,
               hi: float | None = None) -> Any:
        value = self._typed(key, (int, float), default, "a number")
        if isinstance(value, int | float) and self.has(key) and not _within(value, lo, hi):
            self.error(key, f"must be in {lo}..{hi}, got {value}")
            return default if default is not _MISSING else None
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, (bool,), default, "true or false")

    def duration(self, key: str, default: Any = _MISSING, *, minimum: float = 0.0,
                 maximum: float | None = None, step: float | None = None) -> Any:
        text = self._typed(key, (str,), _MISSING if default is _MISSING else None,
                           'a duration string such as "2s"')
        if text is None:
            return default if default is not _MISSING else None
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            self.error(key, str(exc))
            return default if default is not _MISSING else None
        if seconds < minimum or (maximum is not None and seconds > maximum):
            upper = format_duration(maximum) if maximum is not None else "unbounded"
            self.error(key, f"must be between {format_duration(minimum)} and {upper}, got {text}")
            return default if default is not _MISSING else None
        if step and abs(round(seconds / step) * step - seconds) > 1e-9:
            self.error(key, f"must be a multiple of {format_duration(step)}, got {text}")
            return default if default is not _MISSING else None
        return seconds

    def address(self, key: str, default: Any = _MISSING) -> IPAddress | None:
        text = self.string(key, default)
        if not isinstance(text, str):
            return text
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            self.error(key, f'"{text}" is not an IPv4 or IPv6 address')
            return None

    def string_list(self, key: str, default: Any = _MISSING) -> list[str] | None:
        value = self._typed(key, (list,), default, "a list of strings")
        if not isinstance(value, list):
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.error(f"{key}[{index}]", f"must be a string, got {_type_name(item)}")
                return default if default is not _MISSING else None
        return value

    def table(self, key: str) -> Section | None:
        value = self.raw(key)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.error(key, f"must be a table, got {_type_name(value)}")
            return None
        return Section(value, self.key_path(key), self.errors)

    def tables(self, key: str) -> list[Section]:
        """An array of tables ([[key]] or key = [{...}, ...])."""
        value = self.raw(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            self.error(key, f"must be an array of tables, got {_type_name(value)}")
            return []
        sections = []
        for index, item in enumerate(value):
            path = (*self.key_path(key), index)
            if not isinstance(item, dict):
                self.errors.append(Problem(path, f"must be a table, got {_type_name(item)}"))
                continue
            sections.append(Section(item, path, self.errors))
        return sections

    def finish(self) -> None:
        """Report every key that was present but never read."""
        known = sorted(self._used)
        for key in self.data:
            if key not in self._used:
                self.error((key,), f"unknown key{_suggest(key, known)}")


def _within(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _suggest(word: str, candidates: Iterable[str]) -> str:
    candidates = list(candidates)
    same = [c for c in candidates if c.lower() == word.lower()]  # "PASS", as keepalived spells it
    close = same or difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def parse_interface(text: str) -> IPInterface:
    """An address with an optional prefix; a bare address gets /32 or /128."""
    return ipaddress.ip_interface(text)


def parse_endpoint(text: str) -> tuple[str, int | None]:
    """ADDRESS, ADDRESS:PORT, IPV6 or [IPV6]:PORT -> (canonical address, port or None)."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (None if not rest else "x")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
        number = int(port) if port is not None else None
    except ValueError as exc:
        raise ValueError(f'"{text}" is not ADDRESS, ADDRESS:PORT, IPV6 or [IPV6]:PORT') from exc
    if number is not None and not 0 < number < 65536:
        raise ValueError(f'"{text}": port must be in 1..65535')
    return str(address), number


# --- reading a table into a model dataclass -----------------------------------------

# (section, key, default, the field's Literal choices or ()) -> the value read
Reader = Callable[[Section, str, Any, tuple[Any, ...]], Any]


def read_fields(s: Section, model: type, readers: Mapping[str, Reader],
                defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read each key in order into the field of `model` named like it.

    The default and the choices come from the field (`defaults` overrides the few
    that depend on sibling values); a field without a default makes the key required.
    """
    defaults = defaults or {}
    return {
        name: read(s, name, defaults[name] if name in defaults else field_default(model, name),
                   field_choices(model, name))
        for name, read in readers.items()
    }


_FROM_MODEL: Any = object()


def read_field(s: Section, model: type, name: str, reader: Reader, default: Any = _FROM_MODEL) -> Any:
    """`read_fields` for one key, where the next read depends on this value."""
    return read_fields(s, model, {name: reader}, None if default is _FROM_MODEL else {name: default})[name]


def text(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    """A string; one of the field's choices when it has any."""
    return s.string(key, default, choices=choices or None)


def boolean(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    return s.boolean(key, default)


def address(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
    return s.address(key, default)


def integer(lo: int | None = None, hi: int | None = None) -> Reader:
    """An integer within lo..hi; a field with integer choices allows their range."""
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        low, high = (min(choices), max(choices)) if choices else (lo, hi)
        return s.integer(key, default, low, high)
    return read


def port(lo: int = 1) -> Reader:
    """A port number (lo..65535), or a service name from /etc/services ("http", "domain")."""
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        value = s.raw(key, None)
        if not isinstance(value, str) or value.strip().isdigit():  # "80" is a number in quotes: a type slip
            return s.integer(key, default, lo, 65535)
        number = service_port(value)
        if number is None:
            s.error(key, f'"{value}" is neither a port number nor a service name in /etc/services')
            return default if default is not _MISSING else None
        return number
    return read


def service_port(name: str) -> int | None:
    """The port of a service name (tcp, else udp, else sctp), as getservbyname(3) finds it."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]{0,63}", name):
        return None
    for protocol in ("tcp", "udp", "sctp"):
        try:
            return socket.getservbyname(name, protocol)
        except OSError:
            continue
    return None


def number(lo: float, hi: float) -> Reader:
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        return s.number(key, default, lo, hi)
    return read


def duration(minimum: float = 0.0, maximum: float | None = None, step: float | None = None) -> Reader:
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        return s.duration(key, default, minimum=minimum, maximum=maximum, step=step)
    return read


def required(reader: Reader, placeholder: Any) -> Reader:
    """A required key: when missing or invalid (already reported) it reads as `placeholder`,
    so the rest of the config can still be checked."""
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        value = reader(s, key, default, choices)
        return placeholder if value is None else value
    return read
