"""Alert mail from the daemon: the outbox on the event loop, each SMTP exchange on a thread.

`submit` only queues (`director.mail.outbox`: bounded, drops the oldest) and wakes the
sending task, so a VRRP transition or a health verdict never waits for mail. The task takes
the next alert due, composes it then (with the drops since the last mail), and runs one
bounded exchange (`director.mail.smtp`) on a daemon thread of its own: neither a slow server
nor a hung name lookup blocks the loop, and none holds the process when it exits. Failures
are retried with backoff; a server that keeps failing costs one warning when mail starts
failing, one info line when it works again, and the counters /metrics and status show.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from director.config.model import GlobalConfig
from director.mail.choose import mail_configured
from director.mail.compose import Event, Mail, compose, summary
from director.mail.outbox import Outbox, Pending
from director.mail.smtp import MailError, Server, deliver

log = structlog.get_logger("directord")

STOP_GRACE = 2.0  # seconds a stopping daemon waits for queued mail
THREAD_GRACE = 5.0  # beyond smtp_connect_timeout, for what the deadline cannot cut (a name lookup)
STATUS_ENTRIES = 20  # queued alerts status lists

Deliver = Callable[[Mail, Server], None]


@dataclass
class Queued:
    """An alert as queued: the event, its wall time, and its mail once composed."""

    event: Event
    when: float
    mail: Mail | None = None

    @property
    def subject(self) -> str:
        return self.mail.subject if self.mail is not None else summary(self.event)[0]


def _in_thread(fn: Callable[..., None], *args: Any) -> asyncio.Future[None]:
    """Run `fn(*args)` on a new daemon thread; the future has its outcome."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.done():  # given up on (wait_for timed out or the task was cancelled)
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            fn(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="directord-mail", daemon=True).start()
    return future


class Mailer:
    """`settings` reads the running config's [global] (a reload applies to the next exchange)."""

    def __init__(self, settings: Callable[[], GlobalConfig], *, deliver_fn: Deliver = deliver,
                 outbox: Outbox[Queued] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox: Outbox[Queued] = outbox if outbox is not None else Outbox()
        self.last_error = ""
        self.last_sent_at: float | None = None
        self.failing = 0  # failed attempts since the last mail that got through
        self._settings = settings
        self._deliver = deliver_fn
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return mail_configured(self._settings())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, event: Event, when: float | None = None) -> None:
        """Queue one alert (from the loop's thread); returns at once."""
        dropped = self.outbox.put(Queued(event, time.time() if when is None else when), self._clock())
        if dropped is not None:
            log.warning("mail queue full, dropped the oldest alert", alert=dropped.item.subject,
                        dropped_total=self.outbox.counters.dropped["queue_full"], capacity=self.outbox.capacity)
        self._wake.set()

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Give queued mail `grace` seconds, then stop; what is left is logged, not sent."""
        deadline = self._clock() + grace
        while (len(self.outbox) or self.outbox.in_flight) and self._clock() < deadline and self._task is not None \
                and not self._task.done():
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        left = self.outbox.abandon()
        if left:
            log.warning("alert mails not sent before stopping", count=left, last_error=self.last_error or None)

    # --- the sending task ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            pending = self.outbox.take(self._clock())
            if pending is None:
                due = self.outbox.next_due()
                self._wake.clear()
                timeout = None if due is None else max(0.0, due - self._clock())
                with contextlib.suppress(TimeoutError):  # asyncio.timeout: see _exchange
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                continue
            try:
                await self._send(pending)
            except Exception as exc:  # a bug here must not end mail for good, nor the daemon
                log.error("alert mail failed unexpectedly", error=repr(exc), exc_info=True)
                if self.outbox.in_flight is pending:
                    self.outbox.failed(pending, repr(exc), self._clock(), permanent=True)

    async def _send(self, pending: Pending[Queued]) -> None:
        g = self._settings()
        if not mail_configured(g):  # a reload turned mail off: what is queued goes nowhere
            self.outbox.failed(pending, "mail is no longer configured", self._clock(), permanent=True,
                               reason_class="unconfigured")
            return
        host = socket.gethostname()
        queued = pending.item
        if queued.mail is None:
            queued.mail = compose(queued.event, router_id=g.router_id, host=host,
                                  sender=g.notification_email_from or f"directord@{host}",
                                  recipients=g.notification_email, when=queued.when,
                                  dropped=self.outbox.claim_drops())
        assert g.smtp_server is not None
        server = Server(g.smtp_server.host, g.smtp_server.port, g.smtp_helo_name or host, g.smtp_connect_timeout)
        try:
            await self._exchange(queued.mail, server)
        except MailError as exc:
            self._failed(pending, exc, server)
        except TimeoutError:
            self._failed(pending, MailError("timed out (the exchange did not end; a name lookup?)", "timeout"), server)
        else:
            self._sent(pending, server)

    async def _exchange(self, mail: Mail, server: Server) -> None:
        """The exchange on its thread, waited for a bounded time. asyncio.timeout rather than
        wait_for: Python 3.11's wait_for loses a cancel that meets the thread's answer, and a
        stopping daemon would then wait on this task."""
        async with asyncio.timeout(server.timeout + THREAD_GRACE):
            await _in_thread(self._deliver, mail, server)

    def _sent(self, pending: Pending[Queued], server: Server) -> None:
        self.outbox.sent(pending)
        self.last_sent_at = time.time()
        if self.failing:
            log.info("alert mail delivered again", server=f"{server.host}:{server.port}",
                     failed_attempts=self.failing)
            self.failing = 0
        log.info("alert mail sent", alert=pending.item.subject, attempts=pending.attempts)

    def _failed(self, pending: Pending[Queued], error: MailError, server: Server) -> None:
        retry = self.outbox.failed(pending, error.reason, self._clock(), error.permanent, error.kind)
        self.last_error = error.reason
        if not self.failing:
            log.warning("alert mail failed; further failures are counted, not logged, until one gets through",
                        server=f"{server.host}:{server.port}", error=error.reason, alert=pending.item.subject)
        self.failing += 1
        if retry is None:
            log.warning("alert mail given up", alert=pending.item.subject, attempts=pending.attempts,
                        error=error.reason)

    # --- views --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The queue and the counters, for `directord status`."""
        now = self._clock()
        counters = self.outbox.counters
        waiting = [self.outbox.in_flight] if self.outbox.in_flight is not None else []
        waiting += list(self.outbox)
        return {
            "enabled": self.enabled,
            "queued": len(self.outbox) + (self.outbox.in_flight is not None),
            "sent_total": counters.sent,
            "failed_total": sum(counters.failed.values()),
            "dropped_total": sum(counters.dropped.values()),
            "last_error": self.last_error or None,
            "last_sent_at": self.last_sent_at,
            "queue": [{"alert": p.item.subject, "attempts": p.attempts,
                       "sending": p is self.outbox.in_flight,
                       "next_attempt_in": None if p is self.outbox.in_flight else round(max(0.0, p.due - now), 1),
                       "last_error": p.last_error or None} for p in waiting[:STATUS_ENTRIES]],
        }
