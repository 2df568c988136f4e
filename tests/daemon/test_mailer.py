"""The daemon's mailer and alert listeners, with a stand-in for the SMTP exchange: submitting
never waits for the exchange, one exchange runs at a time on its own thread, a failing server
is logged once and counted, a stop gives queued mail a bounded grace; the listeners apply the
switches, skip a real server's warm-up and mail a sync group by the rule its notify hooks follow."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import pytest
import structlog
import uvloop

from director.config.load import parse_config
from director.config.model import Config
from director.daemon.mail_alerts import MailAlerts
from director.daemon.mailer import Mailer
from director.daemon.metrics import mail_lines
from director.mail.compose import Mail, SyncGroupChange
from director.mail.outbox import Outbox
from director.mail.smtp import MailError, Server
from director.reconcile.desired import RealServerState, dest_key
from tests.daemon.test_metrics import samples
from vrrp.notify import group_state

GLOBAL = {"router_id": "lb1", "notification_email": ["ops@example.org"], "smtp_server": "127.0.0.1:2525"}
EVENT = SyncGroupChange("lb", "master", ("A",))


def config(group: dict | None = None, **global_: Any) -> Config:
    return parse_config({
        "global": GLOBAL | global_,
        "vrrp_sync_group": [{"name": "lb", **group}] if group else [],
        "vrrp_instance": [{"name": n, "interface": "eth0", "vrid": i + 1, "virtual_ips": [f"192.0.2.{i + 1}"],
                           "sync_group": "lb"} for i, n in enumerate(("A", "B"))],
        "virtual_server": [{"name": "web", "address": "192.0.2.1", "port": 80,
                            "real_server": [{"address": "10.0.0.1"}, {"address": "10.0.0.2", "weight": 3}]}]})


class Slow:
    """An exchange that blocks until released, and records what it was given."""

    def __init__(self, fail: MailError | None = None) -> None:
        self.release = threading.Event()
        self.calls: list[tuple[Mail, Server, str]] = []
        self.fail = fail

    def __call__(self, mail: Mail, server: Server) -> None:
        self.calls.append((mail, server, threading.current_thread().name))
        self.release.wait(10)
        if self.fail is not None:
            raise self.fail


def run(coro) -> None:  # type: ignore[no-untyped-def]
    uvloop.run(asyncio.wait_for(coro, 20))


async def until(check, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_submit_never_waits_for_the_exchange_and_one_runs_at_a_time() -> None:
    slow = Slow()

    async def go() -> None:
        mailer = Mailer(lambda: config().global_, deliver_fn=slow)
        mailer.start()
        began = time.monotonic()
        for _ in range(50):
            mailer.submit(EVENT)
        assert time.monotonic() - began < 0.05  # the loop is not held by a blocked exchange
        await until(lambda: len(slow.calls) == 1)
        await asyncio.sleep(0.1)
        assert len(slow.calls) == 1 and mailer.status()["queued"] == 50  # one in flight, 49 waiting
        mail, server, thread = slow.calls[0]
        assert thread == "directord-mail" and (server.host, server.port, server.timeout) == ("127.0.0.1", 2525, 30.0)
        assert mail.recipients == ("ops@example.org",) and mail.subject == "[lb1] VRRP sync group lb is now MASTER"
        slow.release.set()
        await until(lambda: mailer.outbox.counters.sent == 50)
        await mailer.close()

    run(go())


def test_a_failing_server_is_logged_once_counted_and_retried() -> None:
    slow = Slow(MailError("connection refused", "refused"))
    slow.release.set()

    async def go() -> None:
        mailer = Mailer(lambda: config().global_, deliver_fn=slow, outbox=Outbox(retry_delays=(0.05,)))
        mailer.start()
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                mailer.submit(EVENT)
            await until(lambda: mailer.outbox.counters.dropped["gave_up"] == 3)
        failed = [entry for entry in logs if entry["event"].startswith("alert mail failed")]
        assert len(failed) == 1 and failed[0]["error"] == "connection refused"
        assert mailer.outbox.counters.failed["refused"] == 6 and mailer.outbox.counters.retried == 3
        assert mailer.status()["last_error"] == "connection refused"
        body = "".join(mail_lines(mailer.outbox))
        got = samples(body)  # promtool passes it
        assert got['directord_mail_failed_total{reason="refused"}'] == 6
        assert got['directord_mail_dropped_total{reason="gave_up"}'] == 3 and got["directord_mail_sent_total"] == 0
        slow.fail = None
        with structlog.testing.capture_logs() as logs:
            mailer.submit(EVENT)
            await until(lambda: mailer.outbox.counters.sent == 1)
        assert any(entry["event"] == "alert mail delivered again" for entry in logs)
        await mailer.close()

    run(go())


def test_a_stop_waits_a_bounded_grace_then_abandons_what_is_left() -> None:
    slow = Slow()

    async def go() -> None:
        mailer = Mailer(lambda: config().global_, deliver_fn=slow)
        mailer.start()
        mailer.submit(EVENT)
        mailer.submit(EVENT)
        await until(lambda: len(slow.calls) == 1)
        began = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            await mailer.close(grace=0.3)
        assert 0.25 < time.monotonic() - began < 1.0
        assert [e["count"] for e in logs if e["event"] == "alert mails not sent before stopping"] == [2]
        slow.release.set()

    run(go())


def test_a_full_queue_drops_the_oldest_and_the_next_mail_says_so() -> None:
    slow = Slow()

    async def go() -> None:
        mailer = Mailer(lambda: config().global_, deliver_fn=slow, outbox=Outbox(capacity=2))
        mailer.start()
        mailer.submit(EVENT)
        await until(lambda: len(slow.calls) == 1)  # in flight: never dropped
        with structlog.testing.capture_logs() as logs:
            for state in ("backup", "fault", "master"):
                mailer.submit(dataclasses.replace(EVENT, state=state))
        assert [e["event"] for e in logs] == ["mail queue full, dropped the oldest alert"]
        slow.release.set()
        await until(lambda: mailer.outbox.counters.sent == 3)
        subjects = [call[0].subject for call in slow.calls]
        assert subjects[1:] == ["[lb1] VRRP sync group lb is now FAULT", "[lb1] VRRP sync group lb is now MASTER"]
        assert "1 earlier alert was dropped" in slow.calls[1][0].message.get_content()
        await mailer.close()

    run(go())


class Queue:
    """A Mailer stand-in that keeps what is submitted."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def submit(self, event: Any, when: float | None = None) -> None:
        self.events.append(event)


def alerts(cfg: Config, states: dict | None = None, failures: int | None = 0) -> tuple[MailAlerts, Queue]:
    queue = Queue()
    snapshot = {"instances": {"A": {"priority": 100, "effective_priority": 90, "master_address": "192.0.2.9"}}}
    return MailAlerts(queue, lambda: cfg, lambda: states or {}, lambda key: failures,  # type: ignore[arg-type]
                      lambda: snapshot), queue


def test_vrrp_transitions_and_a_sync_group_once_all_members_agree() -> None:
    listener, queue = alerts(config(smtp_alert_vrrp=True))
    listener.on_vrrp_transition("A", "backup")
    listener.on_vrrp_transition("B", "backup")  # now both: the group mails
    listener.on_vrrp_transition("A", "master")
    listener.on_vrrp_transition("A", "master")  # no change, no mail
    listener.on_vrrp_transition("B", "master")
    kinds = [(type(e).__name__, getattr(e, "instance", getattr(e, "group", None)), getattr(e, "new", None)
              or getattr(e, "state", None)) for e in queue.events]
    assert kinds == [("InstanceChange", "A", "backup"), ("InstanceChange", "B", "backup"),
                     ("SyncGroupChange", "lb", "backup"), ("InstanceChange", "A", "master"),
                     ("InstanceChange", "B", "master"), ("SyncGroupChange", "lb", "master")]
    first = queue.events[0]
    assert (first.old, first.priority, first.effective_priority) == (None, 100, 90)
    assert first.virtual_ips == ("192.0.2.1/32",)

    listener, queue = alerts(config(group={"smtp_alert": True}))  # instances off, the group on
    for name in ("A", "B"):
        listener.on_vrrp_transition(name, "master")
    assert [type(e).__name__ for e in queue.events] == ["SyncGroupChange"]


def test_a_sync_group_mails_fault_as_soon_as_one_member_faults_as_its_hooks_do() -> None:
    """The mail and the group's notify hooks read the group's state by one rule
    (vrrp.notify.group_state): one member in fault is the group in fault, with no wait for
    the others; the group is master again only once every member is."""
    listener, queue = alerts(config(group={"smtp_alert": True}))
    members = {"A": "init", "B": "init"}
    for name, state in (("A", "master"), ("B", "master"), ("A", "fault"), ("B", "backup"),
                        ("A", "backup"), ("A", "master"), ("B", "master")):
        listener.on_vrrp_transition(name, state)
        members[name] = state
        if group_state(members.values()) is not None:  # what the hooks would say now
            assert listener.group_states["lb"] == group_state(members.values())
    # waiting for all members to agree would have mailed master, backup, master: no fault at all
    assert [e.state for e in queue.events] == ["master", "fault", "backup", "master"]
    listener, queue = alerts(config(group={"smtp_alert": True}))
    listener.on_vrrp_transition("A", "fault")  # B has not reported at all: still the group's fault
    assert [e.state for e in queue.events] == ["fault"]


@pytest.mark.parametrize(("failures", "mailed"), [(0, False), (3, True), (None, True)])
def test_a_real_servers_first_up_is_its_warm_up_unless_a_check_failed_before(failures: int | None,
                                                                               mailed: bool) -> None:
    cfg = config()
    listener, queue = alerts(cfg, failures=failures)
    listener.on_real_server(("web", "10.0.0.1:80"), True, "connected")
    assert bool(queue.events) is mailed
    listener.on_real_server(("web", "10.0.0.1:80"), False, "connection refused")
    assert queue.events[-1].up is False and queue.events[-1].reason == "connection refused"


def test_quorum_mails_carry_the_healthy_weight_and_follow_the_switches() -> None:
    vs = config().virtual_servers[0]
    states = {("web", dest_key(vs.real_servers[0])): RealServerState(up=False),
              ("web", dest_key(vs.real_servers[1])): RealServerState(up=True)}
    listener, queue = alerts(config(), states)
    listener.on_quorum("web", True, True)
    assert queue.events == []  # virtual servers: off unless switched on
    listener, queue = alerts(config(smtp_alert=True), states)
    listener.on_quorum("web", False, False)
    [event] = queue.events
    assert (event.ok, event.first, event.healthy_weight, event.quorum, event.up_count, event.total) == \
        (False, False, 3, 1, 1, 2)


def test_a_listener_bug_is_logged_and_never_reaches_its_caller() -> None:
    listener, _ = alerts(config())
    listener._config = lambda: None  # type: ignore[assignment,return-value]
    with structlog.testing.capture_logs() as logs:
        listener.on_vrrp_transition("A", "master")
        listener.on_real_server(("web", "10.0.0.1:80"), False, "x")
        listener.on_quorum("web", False, False)
    assert [e["listener"] for e in logs] == ["on_vrrp_transition", "on_real_server", "on_quorum"]
