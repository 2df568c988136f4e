"""The control socket: a unix stream socket speaking one JSON object per line.

Request  {"command": "status" | "reload" | "drain" | "undrain" | "failover", ...}
Reply    {"ok": true, "result": ...} or {"ok": false, "error": "one line for people"}

The commands, their arguments and answers: `director.daemon.control_api`.
Root-only by default (mode 0600). Every request is bounded in size and time; a
malformed one gets an error reply, never takes the daemon down. Connections are capped
with a reserve of descriptors left to the daemon (`director.daemon.connlimit`): one
over the cap gets an error reply and is closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from director.daemon.connlimit import ConnectionGate
from director.daemon.private_dir import unsafe_directory

log = structlog.get_logger("directord.control")

MAX_REQUEST = 64 * 1024
MAX_REPLY = 64 * 1024 * 1024
REQUEST_TIMEOUT = 5.0
MAX_CONNECTIONS = 32  # open control connections at once (fewer under a low RLIMIT_NOFILE)
SHED = json.dumps({"ok": False, "error": "too many control connections; try again"}).encode() + b"\n"

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlError(Exception):
    """A request the daemon refuses; the message goes back to the caller."""


class SocketInUse(RuntimeError):
    """Another daemon answers on the control socket."""


def _socket_is_live(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError:
            return True  # e.g. permission denied: something is there; do not steal it
        return True


class ControlServer:
    def __init__(self, path: str, handlers: dict[str, Handler], mode: int = 0o600,
                 max_connections: int | None = None) -> None:
        self.path = path
        self.handlers = handlers
        self.mode = mode
        self.gate = ConnectionGate(max_connections if max_connections is not None else MAX_CONNECTIONS)
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind the socket; SocketInUse (one line) for anything that stops it."""
        try:
            await self._bind()
        except OSError as exc:
            raise SocketInUse(f"cannot create the control socket {self.path}: {exc.strerror or exc}") from exc

    async def _bind(self) -> None:
        if os.path.islink(self.path):
            raise SocketInUse(f"{self.path} is a symbolic link; refusing to follow it (remove it)")
        if os.path.exists(self.path):
            if _socket_is_live(self.path):
                raise SocketInUse(f"another directord is running on {self.path}")
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise SocketInUse(f"{self.path} exists and is not a socket; refusing to replace it")
            os.unlink(self.path)  # stale, left by a crash
        directory = os.path.dirname(self.path) or "."
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise SocketInUse(f"cannot create the control socket {self.path}: {directory} is not a directory")
        os.makedirs(directory, mode=0o755, exist_ok=True)
        problem = unsafe_directory(os.lstat(directory))
        if problem:  # whoever may write there may swap the socket for their own
            raise SocketInUse(f"cannot create the control socket {self.path}: {directory} {problem}")
        old_umask = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._serve, path=self.path, limit=MAX_REQUEST)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self.mode)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.gate.admit(writer.get_extra_info("socket")):
            writer.write(SHED)  # fits an empty socket buffer: sent at once, nothing waits
            writer.close()
            return
        try:
            reply = await self._answer(reader)
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.gate.release()
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": f"request larger than {MAX_REQUEST} bytes"}
        except TimeoutError:
            return {"ok": False, "error": f"no complete request within {REQUEST_TIMEOUT:.0f}s"}
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "request is not JSON"}
        except RecursionError:
            return {"ok": False, "error": "request is nested too deep"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'request must be an object with a "command" string'}
        handler = self.handlers.get(request["command"])
        if handler is None:
            return {"ok": False, "error": f'unknown command "{request["command"]}"; '
                                          f'known: {", ".join(sorted(self.handlers))}'}
        try:
            return {"ok": True, "result": await handler(request)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug in one handler must not take the daemon down
            log.exception("control request failed", command=request["command"])
            return {"ok": False, "error": f"internal error: {exc!r}"}


def request(path: str, command: str, timeout: float = 30.0, **arguments: Any) -> Any:
    """Send one request and return its result; raise ControlError with a line for people."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlError(f"directord is not running (no control socket at {path})") from exc
        except PermissionError as exc:
            raise ControlError(f"permission denied on {path} (the control socket is root-only)") from exc
        sock.sendall(json.dumps({"command": command, **arguments}).encode() + b"\n")
        data = bytearray()
        try:
            while not data.endswith(b"\n") and len(data) < MAX_REPLY:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError as exc:
            raise ControlError(f"directord did not answer within {timeout:.0f}s") from exc
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise ControlError("directord sent a malformed reply") from exc
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "request failed"))
    return reply.get("result")
