"""A running Daemon in-process (in-memory IPVS backend, real TCP checks on loopback) mails a
real SMTP server (aiosmtpd on loopback): a real server going down and coming back, quorum
lost and regained, a refused mail retried; /metrics (promtool-checked) and status count it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path

import uvloop

from director.config.load import load_config
from director.daemon.daemon import Daemon
from director.ipvs.memory import MemoryIpvs
from tests.daemon.test_metrics import free_port, samples, scrape, wait_until
from tests.smtp_sink import Recorder, recording

CONFIG = """
[global]
router_id = "lb-test"
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics_listen = "127.0.0.1:{metrics}"
reconcile_interval = "1s"
notification_email = ["ops@example.com", "Pager <pager@example.com>"]
notification_email_from = "lb-test@example.com"
smtp_server = "127.0.0.1:{smtp}"
smtp_connect_timeout = "2s"
smtp_helo_name = "lb-test.example.com"
{extra}

[[virtual_server]]
name = "web"
address = "198.51.100.1"
port = 80
quorum = 1
sorry_server = "127.0.0.9:80"
  [virtual_server.check]
  type = "tcp"
  interval = "100ms"
  timeout = "500ms"
  rise = 1
  fall = 1
  [[virtual_server.real_server]]
  address = "127.0.0.1"
  port = {live}
"""


class Listener:
    """A real server on loopback: accepts and closes every connection until closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def run_daemon(tmp_path: Path, smtp: int, live: int, metrics: int, extra: str, scenario) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "directord.toml"
    path.write_text(CONFIG.format(dir=tmp_path, smtp=smtp, live=live, metrics=metrics, extra=extra))

    async def go() -> None:
        daemon = Daemon(load_config(str(path)), MemoryIpvs())
        running = asyncio.create_task(daemon.run())
        try:
            await scenario(daemon)
        finally:
            daemon.stop.set()
            await asyncio.wait_for(running, 30)

    uvloop.run(go())


def count(recorder: Recorder, *words: str) -> int:
    return sum(all(word in subject for word in words) for subject in recorder.subjects())


def has(recorder: Recorder, *words: str) -> bool:
    return any(all(word in subject for word in words) for subject in recorder.subjects())


def test_a_real_server_down_and_back_and_quorum_are_mailed_and_counted(tmp_path: Path) -> None:
    live, metrics = free_port(), free_port()
    listener = Listener(live)
    seen: list[str] = []
    with recording() as (recorder, smtp):
        async def scenario(daemon: Daemon) -> None:
            await wait_until(lambda: _true(count(recorder, "regained quorum") == 1))  # the warm-up's
            assert has(recorder, "started without quorum")
            listener.close()  # the real server's listener goes: its check fails
            await wait_until(lambda: _true(has(recorder, f"127.0.0.1:{live}", "DOWN")))
            await wait_until(lambda: _true(has(recorder, "lost quorum")))
            again = Listener(live)
            await wait_until(lambda: _true(has(recorder, f"127.0.0.1:{live}", "UP")))
            await wait_until(lambda: _true(count(recorder, "regained quorum") == 2))
            got = samples(await scrape(metrics))
            seen.extend(recorder.subjects())
            again.close()
            assert got["directord_mail_sent_total"] == len(recorder.messages) >= 5
            assert got['directord_mail_dropped_total{reason="queue_full"}'] == 0
            assert got["directord_mail_queued"] == 0
            status = await daemon.views.status()
            assert status["mail"]["sent_total"] == len(recorder.messages) and status["mail"]["queue"] == []

        run_daemon(tmp_path, smtp, live, metrics, "smtp_alert = true", scenario)

    down = next(m for m in recorder.messages if "DOWN" in str(m["Subject"]))
    assert str(down["Subject"]) == f"[lb-test] Real server 127.0.0.1:{live} of virtual server web is DOWN"
    assert down["From"] == "lb-test@example.com" and down["To"] == "ops@example.com, Pager <pager@example.com>"
    assert down["Date"] and down["Message-ID"] and down["Auto-Submitted"] == "auto-generated"
    body = down.get_content()
    assert "lb-test (directord on " in body and " UTC:" in body  # who and when
    assert "tcp 198.51.100.1:80" in body and "Last tcp check: " in body and "0 of 1 real servers of web are up" in body
    assert recorder.envelopes[0] == ("lb-test@example.com", ["ops@example.com", "pager@example.com"])
    lost = next(m for m in recorder.messages if "lost quorum" in str(m["Subject"]))
    assert "its quorum 1" in lost.get_content() and "127.0.0.9:80 takes its new connections" in lost.get_content()
    # the warm-up (first up after the start, no check failed before it) sends nothing
    assert [s for s in seen if f"127.0.0.1:{live}" in s] == [
        f"[lb-test] Real server 127.0.0.1:{live} of virtual server web is DOWN",
        f"[lb-test] Real server 127.0.0.1:{live} of virtual server web is UP"]


def test_a_refused_mail_is_tried_again_and_switches_silence_what_they_cover(tmp_path: Path) -> None:
    live, metrics = free_port(), free_port()
    listener = Listener(live)
    extra = "smtp_alert_checker = false"  # real servers and quorum: nothing unless they say so
    with recording(refuse_first=1) as (recorder, smtp):
        async def scenario(daemon: Daemon) -> None:
            daemon.mailer.outbox.retry_delays = (0.2, 0.2)
            daemon.alerts.on_quorum("web", False, False)  # as the reconcile loop would: mailed? no
            vs = daemon.config.virtual_servers[0]
            await asyncio.sleep(0.3)
            assert daemon.mailer.outbox.counters.sent == 0 and len(daemon.mailer.outbox) == 0
            # switch quorum mail on for this virtual server only
            path = tmp_path / "directord.toml"
            path.write_text(path.read_text().replace("quorum = 1", "quorum = 1\nsmtp_alert = true"))
            assert await daemon.reload() == []
            assert daemon.config.virtual_servers[0].smtp_alert is True and vs.smtp_alert is None
            listener.close()
            await wait_until(lambda: _true(has(recorder, "lost quorum")))
            got = samples(await scrape(metrics))
            assert got['directord_mail_failed_total{reason="deferred"}'] == 1  # the 451, then the retry
            assert got["directord_mail_sent_total"] >= 1
            assert not has(recorder, "Real server")  # smtp_alert_checker = false covers real servers

        run_daemon(tmp_path, smtp, live, metrics, extra, scenario)
    assert recorder.refused == 1


async def _true(value: bool) -> bool:
    return value
