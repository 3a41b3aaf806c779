"""``sequencer serve`` (SPEC 10 door 1): the HTTP app behind ``tracking.base_url``.

- ``GET /o/TOKEN.gif`` → a 1×1 GIF; records ``email_opened`` (``detail.machine`` for a
  prefetching proxy such as Apple Mail Privacy Protection);
- ``GET /c/TOKEN`` → 302 to the URL signed in the token (never anything else); records
  ``email_clicked``;
- ``GET /u/TOKEN`` → a plain confirmation page whose button POSTs back (no JavaScript);
- ``POST /u/TOKEN`` (that button, or RFC 8058 ``List-Unsubscribe=One-Click``) → 200; records
  ``unsubscribed``;
- ``GET /healthz`` → 200 while the spool accepts writes.

A token verifies only for its own purpose (:mod:`pipelines.channels.tracking`); anything else
is a bare 404 that records nothing and echoes nothing. ``HEAD`` answers like ``GET`` but records
nothing (link checkers). Events go to the :class:`~pipelines.engagement.spool.Spool` and are
fsynced before the answer; the app never opens the database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from pipelines.channels.message import MailConfigError
from pipelines.channels.tracking import expired, tracking_secrets, verify_token
from pipelines.engagement.spool import SPOOL_DIR, Spool, event_row
from pipelines.errors import ConfigError
from pipelines.workspace import load_users

PIXEL = base64.b64decode(b"R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "X-Content-Type-Options": "nosniff"}
# Clients that fetch images without a person opening the mail: Apple Mail Privacy Protection
# presents a bare "Mozilla/5.0"; the others are mail security scanners. Kept, marked machine.
MACHINE_AGENTS = ("barracuda", "mimecast", "proofpoint", "symantec", "bot", "scanner")
MAX_FORM_BYTES = 4096
UNIX_EPOCH = dt.datetime(1970, 1, 1)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
</head><body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
{body}
</body></html>
"""
CONFIRM = """<h1>Unsubscribe</h1>
<p>Stop receiving these emails?</p>
<form method="post"><button type="submit" name="confirm" value="yes">Unsubscribe</button></form>
"""
DONE = "<h1>You are unsubscribed</h1><p>You will not receive these emails any more.</p>"


def machine_agent(agent: str) -> bool:
    """A user agent that opens mail by itself, not a person.

    >>> machine_agent("Mozilla/5.0"), machine_agent("Mozilla/5.0 (Windows NT 10.0) Outlook")
    (True, False)
    """
    agent = agent.strip()
    return agent == "Mozilla/5.0" or any(m in agent.lower() for m in MACHINE_AGENTS)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create_app(
    root: Path | str,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    env: dict[str, str] | None = None,
) -> Starlette:
    """The tracking app of the workspace at ``root`` (its users.yaml ``tracking:``); events
    spool to ``root/imports/events``. ``clock`` (naive UTC) stamps events: the demo's
    simulated time; default the wall clock."""
    root = Path(root)
    users = load_users(root)
    try:
        secrets = tracking_secrets(users.tracking, dict(os.environ if env is None else env))
    except MailConfigError as exc:
        raise ConfigError(f"cannot serve tracking links: {exc}") from None
    doors = TrackingDoors(secrets, Spool(root / SPOOL_DIR), clock or _utcnow)
    routes = [
        Route("/o/{token}.gif", doors.pixel, methods=["GET", "HEAD"]),
        Route("/c/{token}", doors.click, methods=["GET", "HEAD"]),
        Route("/u/{token}", doors.unsubscribe, methods=["GET", "HEAD", "POST"]),
        Route("/healthz", doors.healthz, methods=["GET", "HEAD"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        doors.spool.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_exception_handler(404, lambda request, exc: _not_found())
    app.add_exception_handler(405, lambda request, exc: _not_found(405))
    app.state.spool = doors.spool
    return app


class TrackingDoors:
    """The endpoints: verify the token for its purpose, record, answer."""

    def __init__(self, secrets: list[bytes], spool: Spool, now: Callable[[], dt.datetime]):
        self.secrets, self.spool, self.now = secrets, spool, now

    def verified(self, request: Request, purpose: str) -> dict | None:
        try:
            return verify_token(self.secrets, request.path_params["token"], purpose)
        except ValueError:
            return None

    async def record(self, request: Request, kind: str, payload: dict, purpose: str, **detail):
        """Append the event and wait until it is durable; HEAD and expired tokens record
        nothing."""
        at = self.now()
        if request.method == "HEAD" or expired(payload, purpose, (at - UNIX_EPOCH).days):
            return
        agent = request.headers.get("user-agent", "")[:300]
        row = event_row(kind, payload, at, {"user_agent": agent, **detail})
        await asyncio.wrap_future(self.spool.submit(row))

    async def pixel(self, request: Request) -> Response:
        payload = self.verified(request, "o")
        if payload is None:
            return _not_found()
        agent = request.headers.get("user-agent", "")
        detail = {"machine": True} if machine_agent(agent) else {}
        await self.record(request, "email_opened", payload, "o", **detail)
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    async def click(self, request: Request) -> Response:
        payload = self.verified(request, "c")
        url = payload.get("u") if payload else None
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            return _not_found()
        await self.record(request, "email_clicked", payload, "c", url=url)
        return RedirectResponse(url, status_code=302, headers=NO_STORE)

    async def unsubscribe(self, request: Request) -> Response:
        payload = self.verified(request, "u")
        if payload is None:
            return _not_found()
        if request.method in ("GET", "HEAD"):
            return _page("Unsubscribe", CONFIRM)
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > MAX_FORM_BYTES:
                break
        one_click = b"List-Unsubscribe=One-Click" in body
        await self.record(request, "unsubscribed", payload, "u", one_click=one_click)
        return _page("Unsubscribed", DONE)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "events_written": self.spool.written}, headers=NO_STORE)


def _not_found(status: int = 404) -> Response:
    return PlainTextResponse("not found" if status == 404 else "", status, headers=NO_STORE)


def _page(title: str, body: str) -> Response:
    headers = {**NO_STORE, "Content-Security-Policy": "default-src 'none'; form-action 'self'"}
    return HTMLResponse(PAGE.format(title=title, body=body), headers=headers)


def serve(root: Path, host: str, port: int) -> None:
    """Run the app on uvicorn until interrupted (``sequencer serve``)."""
    import uvicorn

    app = create_app(root)
    print(f"serving tracking links on http://{host}:{port} (events to {root / SPOOL_DIR})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
