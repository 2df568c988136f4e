"""Reading the email-alert keys of `[global]` (keepalived's names) and their checks across tables.

Kept apart from `director.config.load`, which only splices these readers into its tables. Every
value that ends up in a mail header or an SMTP command is refused here if it could add a line
(CR, LF and other control characters), so no config can smuggle headers into an alert.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from typing import Any

from director.config.model import Config, SmtpServer
from director.config.problems import Problem
from director.config.read import Reader, Section, boolean, duration

MAX_RECIPIENTS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def mail_address(value: str) -> str | None:
    """Why VALUE is not one mail address, or None. "ops@example.com", "Ops <ops@example.com>",
    and a bare local mailbox ("root", which a local MTA delivers) are all addresses."""
    if _CONTROL.search(value):
        return "must not contain control characters (a line break would add mail headers)"
    found = email.utils.getaddresses([value])
    address = found[0][1] if len(found) == 1 else ""
    if len(found) != 1 or not address.strip("@"):
        return "must be one address"
    local, at, domain = address.rpartition("@")
    if any(ch.isspace() for ch in address) or (at and not (local and domain)):
        return 'must be an address such as "ops@example.com", "Ops <ops@example.com>" or "root"'
    return None


def parse_smtp_server(value: str) -> SmtpServer:
    """HOST, HOST:PORT, IPV6 or [IPV6]:PORT; the port defaults to the model's (25)."""
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError
        port = rest[1:] if rest else None
        ipaddress.IPv6Address(host)
    elif value.count(":") == 1:
        host, port = value.split(":")
    elif ":" in value:
        ipaddress.IPv6Address(value)
    if not (_HOSTNAME.fullmatch(host) or ":" in host):
        raise ValueError
    if port is None:
        return SmtpServer(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError
    return SmtpServer(host, int(port))


def _recipients(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[str, ...]:
    items = s.string_list(key, None)
    if items is None:
        return default
    if len(items) > MAX_RECIPIENTS:
        s.error(key, f"lists {len(items)} recipients, at most {MAX_RECIPIENTS}")
        return default
    for index, item in enumerate(items):
        reason = mail_address(item)
        if reason:
            s.error(f"{key}[{index}]", f"{item!r} {reason}")
    return tuple(items)


def _sender(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if isinstance(value, str) and (reason := mail_address(value)):
        s.error(key, f"{value!r} {reason}")
        return default
    return value


def _smtp_server(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> SmtpServer | None:
    value = s.string(key, None)
    if not isinstance(value, str):
        return default
    try:
        return parse_smtp_server(value)
    except ValueError:
        s.error(key, f'"{value}" is not "HOST", "HOST:PORT", "IPV6" or "[IPV6]:PORT" (port 1..65535)')
        return default


def _helo_name(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if isinstance(value, str) and not re.fullmatch(r"[!-~]{1,255}", value):
        s.error(key, f"{value!r} must be one word of printable characters (a host name or [address])")
        return default
    return value


# The readers `director.config.load` adds to [global], in this order.
GLOBAL_MAIL: dict[str, Reader] = {
    "notification_email": _recipients,
    "notification_email_from": _sender,
    "smtp_server": _smtp_server,
    "smtp_connect_timeout": duration(minimum=0.1, maximum=600.0),
    "smtp_helo_name": _helo_name,
    "smtp_alert": boolean,
    "smtp_alert_vrrp": boolean,
    "smtp_alert_checker": boolean,
}
SMTP_ALERT: dict[str, Reader] = {"smtp_alert": boolean}  # on vrrp_instance, vrrp_sync_group, virtual/real server


def mail_warnings(config: Config) -> list[Problem]:
    """Settings that run but mail nobody (keepalived is silent about them too)."""
    g = config.global_
    if g.notification_email and g.smtp_server is None:
        return [Problem(("global", "notification_email"), "no mail is sent without smtp_server")]
    if g.smtp_server is not None and not g.notification_email:
        return [Problem(("global", "smtp_server"), "no mail is sent: notification_email names no recipient")]
    return []
