"""What an alert mail says: who (router id and host), what changed, and when.

Pure: an event, the sender, the recipients and the time in; a ready `email.message.EmailMessage`
and its envelope out. Every name that comes from the config is stripped of control characters
before it reaches a header, so a name can never add a header line.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

from director import __version__

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_STATE_WORDS = {
    "master": "As master this director now holds the virtual IPs{vips} and answers for them.",
    "backup": "This director no longer holds the virtual IPs{vips}{master}.",
    "fault": "The instance is in FAULT (a tracked interface or virtual server failed) and holds no virtual IPs.",
    "init": "The instance stopped running here (the daemon is stopping, or it was removed) and holds no "
            "virtual IPs.",
}


@dataclass(frozen=True)
class InstanceChange:
    """A VRRP instance changed state (`old` None: its first state in this run)."""

    instance: str
    old: str | None
    new: str
    vrid: int
    interface: str
    priority: int | None = None
    effective_priority: int | None = None
    master_address: str | None = None
    virtual_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncGroupChange:
    """Every instance of a sync group has reached the same new state."""

    group: str
    state: str
    instances: tuple[str, ...]


@dataclass(frozen=True)
class RealServerChange:
    """A real server's health check changed its verdict."""

    virtual_server: str
    service: str  # the virtual server's label: "tcp 192.0.2.10:80"
    real_server: str  # endpoint
    up: bool
    reason: str  # the last check's
    check: str  # check type
    on_failure: str  # quiesce | remove
    up_count: int  # real servers of the virtual server up after this change
    total: int


@dataclass(frozen=True)
class QuorumChange:
    """A virtual server lost or regained quorum (`first`: as found by the first pass)."""

    virtual_server: str
    service: str
    ok: bool
    first: bool
    healthy_weight: int
    quorum: int
    sorry_server: str | None
    up_count: int
    total: int


Event = InstanceChange | SyncGroupChange | RealServerChange | QuorumChange


@dataclass(frozen=True)
class Mail:
    """A message and its SMTP envelope."""

    sender: str  # envelope MAIL FROM: the bare address
    recipients: tuple[str, ...]  # RCPT TO: bare addresses
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


def clean(text: object) -> str:
    """Config text fit for a header and a body line: control characters become one space."""
    return _CONTROL.sub(" ", str(text)).strip()


def stamp(when: float) -> str:
    """A wall time as people read it in a mail: UTC, to the millisecond."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def summary(event: Event) -> tuple[str, list[str]]:
    """The subject (without the router id) and the lines that say what happened."""
    if isinstance(event, InstanceChange):
        return _instance(event)
    if isinstance(event, SyncGroupChange):
        members = ", ".join(clean(name) for name in event.instances)
        return (f"VRRP sync group {clean(event.group)} is now {event.state.upper()}",
                [f"Every instance of sync group {clean(event.group)} ({members}) is now {event.state.upper()}."])
    if isinstance(event, RealServerChange):
        return _real_server(event)
    return _quorum(event)


def _instance(event: InstanceChange) -> tuple[str, list[str]]:
    name = clean(event.instance)
    came = f"changed from {event.old.upper()} to {event.new.upper()}" if event.old else \
        f"started in state {event.new.upper()}"
    vips = f" ({', '.join(event.virtual_ips)})" if event.virtual_ips else ""
    master = f"; the master is now {event.master_address}" if event.master_address and event.new == "backup" else ""
    lines = [f"VRRP instance {name} {came}.",
             _STATE_WORDS.get(event.new, "").format(vips=vips, master=master)]
    detail = f"vrid {event.vrid} on {clean(event.interface)}"
    if event.priority is not None:
        detail += f", priority {event.priority}"
        if event.effective_priority is not None and event.effective_priority != event.priority:
            detail += f" (effective {event.effective_priority})"
    return f"VRRP instance {name} is now {event.new.upper()}", [*filter(None, lines), detail + "."]


def _real_server(event: RealServerChange) -> tuple[str, list[str]]:
    vs, rs = clean(event.virtual_server), clean(event.real_server)
    word = "UP" if event.up else "DOWN"
    lines = [f"Real server {rs} of virtual server {vs} ({event.service}) is {word}.",
             f"Last {event.check} check: {clean(event.reason) or 'passed'}."]
    if event.up:
        lines.append("It takes traffic again with its weight.")
    else:
        lines.append("It gets no new connections (weight 0)." if event.on_failure == "quiesce"
                     else "It was removed from the IPVS table.")
    lines.append(f"{event.up_count} of {event.total} real servers of {vs} are up now.")
    return f"Real server {rs} of virtual server {vs} is {word}", lines


def _quorum(event: QuorumChange) -> tuple[str, list[str]]:
    vs = clean(event.virtual_server)
    if event.first:
        what = "started with quorum" if event.ok else "started without quorum"
    else:
        what = "regained quorum" if event.ok else "lost quorum"
    lines = [f"Virtual server {vs} ({event.service}) {what}: the weight of its healthy real servers is "
             f"{event.healthy_weight}, its quorum {event.quorum}."]
    if event.sorry_server and not event.ok:
        lines.append(f"The sorry server {event.sorry_server} takes its new connections until quorum is back.")
    elif event.sorry_server:
        lines.append(f"The sorry server {event.sorry_server} is out again.")
    elif not event.ok:
        lines.append("No sorry server is configured.")
    lines.append(f"{event.up_count} of {event.total} real servers are up.")
    return f"Virtual server {vs} {what}", lines


def _wrap(line: str) -> str:
    """Lines of at most 76 characters keep the body 7-bit plain text (no quoted-printable)."""
    return textwrap.fill(line, 76, break_on_hyphens=False) if len(line) > 76 else line


def compose(event: Event, *, router_id: str, host: str, sender: str, recipients: tuple[str, ...], when: float,
            dropped: int = 0) -> Mail:
    """The mail for `event`, which happened at wall time `when`. `dropped`: alerts lost to a
    full queue since the last one that left, said in this one so they are not lost unseen."""
    subject, lines = summary(event)
    who = clean(router_id)
    body = [f"{who} (directord on {clean(host)}) reports, at {stamp(when)}:", "", *lines]
    if dropped:
        body += ["", f"{dropped} earlier alert{'s were' if dropped > 1 else ' was'} dropped before this one "
                     "(the mail queue was full); the daemon's log has every change."]
    body += ["", "-- ", f"directord {__version__}"]
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = f"[{who}] {subject}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.formatdate(when, usegmt=True)
    message["Message-ID"] = email.utils.make_msgid("directord", domain=clean(host) or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to an alert
    message.set_content("".join(f"{_wrap(line)}\n" for line in body))
    return Mail(email.utils.parseaddr(sender)[1], tuple(email.utils.parseaddr(r)[1] for r in recipients), message)
