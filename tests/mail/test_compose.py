"""What an alert mail says: who (router id, host), what (the change and its detail), when
(UTC to the millisecond, and the Date header); config names never add a header line."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from director.mail.compose import (
    InstanceChange,
    QuorumChange,
    RealServerChange,
    SyncGroupChange,
    compose,
    stamp,
)

WHEN = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC).timestamp()


def mail(event, **kwargs):  # type: ignore[no-untyped-def]
    composed = compose(event, router_id=kwargs.pop("router_id", "lb1"), host="lb1.example.net",
                       sender=kwargs.pop("sender", "Directors <lb@example.net>"),
                       recipients=("ops@example.net", "Pager <pager@example.net>"), when=WHEN, **kwargs)
    parsed = email.message_from_bytes(composed.message.as_bytes(), policy=email.policy.default)
    return composed, parsed, parsed.get_content().replace("\r\n", "\n")


def test_a_vrrp_transition_names_the_instance_both_states_the_vips_and_the_time() -> None:
    composed, parsed, body = mail(InstanceChange("VI_1", "backup", "master", 51, "eth0", 150, 100, None,
                                                 ("192.0.2.10/24",)))
    assert parsed["Subject"] == "[lb1] VRRP instance VI_1 is now MASTER"
    assert body.startswith("lb1 (directord on lb1.example.net) reports, at 2026-03-01 12:30:15.250 UTC:\n")
    assert "VRRP instance VI_1 changed from BACKUP to MASTER." in body
    assert "holds the virtual IPs (192.0.2.10/24)" in body and "vrid 51 on eth0, priority 150 (effective 100)." in body
    assert parsed["Date"].datetime == datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
    assert parsed["From"] == "Directors <lb@example.net>"
    assert parsed["To"] == "ops@example.net, Pager <pager@example.net>"
    assert parsed["Auto-Submitted"] == "auto-generated" and parsed["Message-ID"].endswith("@lb1.example.net>")
    assert composed.sender == "lb@example.net" and composed.recipients == ("ops@example.net", "pager@example.net")
    assert parsed["Content-Transfer-Encoding"] == "7bit" and max(map(len, body.splitlines())) <= 76


@pytest.mark.parametrize(("old", "new", "words"), [
    (None, "backup", ["started in state BACKUP", "no longer holds the virtual IPs", "master is now 192.0.2.2"]),
    ("master", "fault", ["changed from MASTER to FAULT", "holds no virtual IPs"]),
    ("master", "init", ["stopped running here"]),
])
def test_every_state_says_what_it_means(old: str | None, new: str, words: list[str]) -> None:
    _, parsed, body = mail(InstanceChange("VI_1", old, new, 51, "eth0", master_address="192.0.2.2"))
    assert parsed["Subject"] == f"[lb1] VRRP instance VI_1 is now {new.upper()}"
    assert all(word in body for word in words), body


def test_a_real_server_change_names_service_server_reason_and_what_is_left() -> None:
    _, parsed, body = mail(RealServerChange("web", "tcp 192.0.2.10:80", "10.0.0.11:80", False, "connection refused",
                                            "tcp", "quiesce", 1, 2))
    assert parsed["Subject"] == "[lb1] Real server 10.0.0.11:80 of virtual server web is DOWN"
    assert "Real server 10.0.0.11:80 of virtual server web (tcp 192.0.2.10:80) is DOWN." in body
    assert "Last tcp check: connection refused." in body and "weight 0" in body
    assert "1 of 2 real servers of web are up now." in body
    _, parsed, body = mail(RealServerChange("web", "tcp 192.0.2.10:80", "10.0.0.11:80", True, "connected",
                                            "tcp", "remove", 2, 2))
    assert parsed["Subject"].endswith("is UP") and "takes traffic again" in body


@pytest.mark.parametrize(("ok", "first", "what"), [(False, False, "lost quorum"), (True, False, "regained quorum"),
                                                   (False, True, "started without quorum"),
                                                   (True, True, "started with quorum")])
def test_quorum_changes(ok: bool, first: bool, what: str) -> None:
    _, parsed, body = mail(QuorumChange("web", "tcp 192.0.2.10:80", ok, first, 0 if not ok else 2, 2,
                                        "10.0.0.99:80", 0 if not ok else 2, 2))
    assert parsed["Subject"] == f"[lb1] Virtual server web {what}"
    assert "its quorum 2" in body and "10.0.0.99:80" in body


def test_a_sync_group_names_its_members() -> None:
    _, parsed, body = mail(SyncGroupChange("lb", "master", ("VI_FRONT", "VI_BACK")))
    assert parsed["Subject"] == "[lb1] VRRP sync group lb is now MASTER"
    assert "Every instance of sync group lb (VI_FRONT, VI_BACK) is now MASTER." in body


def test_drops_are_told_in_the_next_mail() -> None:
    _, _, body = mail(SyncGroupChange("lb", "backup", ("A",)), dropped=3)
    assert "3 earlier alerts were dropped before this one (the mail queue was full)" in body.replace("\n", " ")


def test_names_from_the_config_cannot_add_header_lines() -> None:
    _, parsed, _ = mail(InstanceChange("VI\r\nBcc: victim@example.org", None, "master", 1, "eth0"),
                           router_id="lb1\nX-Evil: 1")
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"].strip() == "[lb1 X-Evil: 1] VRRP instance VI Bcc: victim@example.org is now MASTER"


def test_stamp_is_utc_to_the_millisecond() -> None:
    assert stamp(WHEN) == "2026-03-01 12:30:15.250 UTC"
