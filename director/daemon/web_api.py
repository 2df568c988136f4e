"""The read-only HTTP API beside /metrics: /api/v1/status (the document `directord status
--json` prints) and /healthz (for monitoring the director itself). Both are served by the
parent from the state it already holds, never by asking the VRRP process per request.
"""

from __future__ import annotations

import json

from director.daemon.metrics import Document
from director.daemon.views import Views

JSON = "application/json"


def documents(views: Views) -> dict[bytes, Document]:
    async def status() -> tuple[int, str, bytes]:
        return 200, JSON, json.dumps(await views.web_status(), sort_keys=True, default=str).encode()

    async def healthz() -> tuple[int, str, bytes]:
        problem = views.health_problem()
        body = {"healthy": problem is None, **({"problem": problem} if problem else {})}
        return (200 if problem is None else 503), JSON, json.dumps(body).encode()

    return {b"/api/v1/status": status, b"/healthz": healthz}
