"""One log renderer for structlog and the standard `logging` module, made to fit journald.

Under systemd (stderr connected to the journal, see `under_journal`) each line starts with
its syslog priority in the `<N>` form sd-daemon(3) describes, so `journalctl -p err` finds
errors; journald stamps the time itself. Elsewhere a line starts with an ISO time and the
level. Text is the message then logfmt `key=value` pairs; every event is exactly one line.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

# sd-daemon(3) priorities (the syslog levels); structlog's "exception" is an error with a traceback
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3, "critical": 2}
# keys rendered in the line's head, not as pairs
_HEAD = ("event", "level", "timestamp")
_NEEDS_QUOTES = re.compile(r'[\s"=\\]|[^\x21-\x7e]')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(text: str, quotes: bool = True) -> str:
    """Control characters escaped so an event stays on one line; quotes too inside a quoted value."""
    return "".join(_ESCAPES[ch] if ch in _ESCAPES and (quotes or ch not in '"\\')
                   else ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def logfmt_value(value: Any) -> str:
    """A value as logfmt writes it: bare when safe, else quoted with newlines and quotes escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return f'"{_escape(text)}"'


def render(event: Mapping[str, Any], fmt: str = "text", journal: bool = False) -> str:
    """One event as one line (no newline at the end): sans-IO, so both loggers share it."""
    level = str(event.get("level", "info")).lower()
    prefix = f"<{PRIORITY.get(level, 6)}>" if journal else ""
    if fmt == "json":
        return prefix + json.dumps(dict(event), default=str, separators=(",", ":"))
    head = [] if journal else [str(event.get("timestamp", "")), level]
    head.append(_escape(str(event.get("event", "")), quotes=False))
    pairs = [f"{key}={logfmt_value(value)}" for key, value in event.items() if key not in _HEAD]
    return prefix + " ".join(part for part in (*head, *pairs) if part)


def under_journal(environ: Mapping[str, str] = os.environ, stderr_fd: int = 2) -> bool:
    """systemd.exec(5): JOURNAL_STREAM is "device:inode" of the journal stream it gave us;
    it counts only while stderr is still that stream (not redirected by whoever started us)."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(stderr_fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


class Renderer:
    """The structlog processor at the end of the chain."""

    def __init__(self, fmt: str = "text", journal: bool = False) -> None:
        self.fmt, self.journal = fmt, journal

    def __call__(self, _logger: Any, _method: str, event: dict[str, Any]) -> str:
        return render(event, self.fmt, self.journal)


class StdlibFormatter(logging.Formatter):
    """Turns a `logging` record (asyncio, healthcheck) into the same event a structlog call makes."""

    def __init__(self, fmt: str = "text", journal: bool = False) -> None:
        super().__init__()
        self.renderer = Renderer(fmt, journal)

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        event: dict[str, Any] = {"event": record.getMessage(), "level": record.levelname.lower(),
                                 "timestamp": stamp.isoformat().replace("+00:00", "Z"), "logger": record.name}
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return self.renderer(None, record.levelname.lower(), event)


class Copies:
    """A structlog processor that hands every event, rendered as a plain line (time and level
    in front, no journal prefix), to extra `logging` handlers: a log file, syslog."""

    def __init__(self, handlers: list[logging.Handler], fmt: str) -> None:
        self.handlers, self.fmt = handlers, fmt

    def __call__(self, _logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = getattr(logging, str(event.get("level", method)).upper(), logging.INFO)
        record = logging.makeLogRecord({"msg": render(event, self.fmt), "levelno": level, "rendered": True,
                                        "levelname": logging.getLevelName(level), "name": "directord"})
        for handler in self.handlers:
            if level >= handler.level:
                handler.handle(record)
        return event


class CopyFormatter(StdlibFormatter):
    """The copies' formatter: a structlog event comes already rendered (`Copies`), a
    `logging` record is rendered as on stderr, without the journal prefix."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage() if getattr(record, "rendered", False) else super().format(record)


def copy_handlers(log_file: str = "", facility: str = "", syslog_socket: str = "/dev/log") -> list[logging.Handler]:
    """Handlers for `[global] log_file` (reopened when logrotate moves it) and `log_facility`
    (syslog through `syslog_socket`). OSError names what cannot be opened."""
    handlers: list[logging.Handler] = []
    if log_file:
        handlers.append(logging.handlers.WatchedFileHandler(log_file, encoding="utf-8"))
    if facility:
        syslog = logging.handlers.SysLogHandler(syslog_socket, logging.handlers.SysLogHandler.facility_names[facility])
        syslog.ident = "directord: "
        handlers.append(syslog)
    return handlers


def configure(level: str = "info", fmt: str = "text", journal: bool | None = None,
              copies: list[logging.Handler] | None = None) -> None:
    """Both loggers to stderr through one renderer, and to `copies` as plain lines; `journal`
    defaults to whether stderr is the journal."""
    if journal is None:
        journal = under_journal()
    number = getattr(logging, level.upper(), logging.INFO)
    copies = copies or []
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(number),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *([Copies(copies, fmt)] if copies else []),
            Renderer(fmt, journal),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StdlibFormatter(fmt, journal))
    for copy in copies:
        copy.setFormatter(CopyFormatter(fmt, journal=False))
    logging.basicConfig(level=number, handlers=[handler, *copies], force=True)
