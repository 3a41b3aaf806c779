"""The SMS gateway client (SPEC 6 "SMS"): one JSON POST per message, classified like SMTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pipelines.channels.smtp import SendError


def post_sms(url: str, token: str | None, payload: dict[str, Any], timeout: float = 15.0):
    """POST the SMS as JSON. The gateway dedupes on ``idempotency_key``, so a timeout or a
    dropped connection is retried (transient); 4xx other than 408/429 is permanent."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        kind = "transient" if exc.code in (408, 429) or exc.code >= 500 else "permanent"
        raise SendError(kind, f"SMS gateway HTTP {exc.code}", exc.code) from exc
    except OSError as exc:
        raise SendError("transient", f"SMS gateway: {exc!r}") from exc
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    gid = body.get("id") or body.get("message_id") if isinstance(body, dict) else None
    return {"gateway_id": str(gid) if gid else None}
