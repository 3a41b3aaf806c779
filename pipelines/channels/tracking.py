"""Tracking (SPEC 6 "Emails"): signed tokens, the open pixel, click rewriting, the
unsubscribe link. A token is ``base64url(json).base64url(hmac)``: readable, tamper-evident.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from pipelines.channels.message import MailConfigError
from pipelines.models import Tracking

# --- tracking ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: bytes, payload: dict[str, Any]) -> str:
    """``base64url(json).base64url(hmac_sha256(secret, that))``: readable, tamper-evident.

    >>> verify_token(b"s", sign_token(b"s", {"k": "x"}))
    {'k': 'x'}
    """
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secret: bytes, token: str) -> dict[str, Any]:
    """The payload of a token signed with ``secret``; ``ValueError`` when forged or damaged."""
    body, _, sig = token.partition(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not sig or not hmac.compare_digest(sig, expected):
        raise ValueError("bad tracking token signature")
    return json.loads(_unb64(body))


@dataclass(frozen=True)
class Tracker:
    """Makes the signed URLs of one message: open pixel, click redirects, unsubscribe."""

    base_url: str
    secret: bytes
    key: str
    contact_id: str
    message_id: str

    def _url(self, kind: str, extra: dict[str, str] | None = None) -> str:
        payload = {"k": self.key, "c": self.contact_id, **(extra or {})}
        return f"{self.base_url.rstrip('/')}/{kind}/{sign_token(self.secret, payload)}"

    def open_url(self) -> str:
        return self._url("o") + ".gif"

    def click_url(self, url: str) -> str:
        return self._url("c", {"u": url})

    def unsubscribe_url(self) -> str:
        return self._url("u")


def tracker_for(
    tracking: Tracking | None, key: str, contact_id: str, msg_id: str, env: dict[str, str]
) -> Tracker:
    """The tracker for a message; a :class:`MailConfigError` when users.yaml lacks tracking."""
    if tracking is None:
        raise MailConfigError("tracking and unsubscribe links need `tracking:` in users.yaml")
    if not tracking.secret_env or not env.get(tracking.secret_env):
        raise MailConfigError(
            f"tracking secret missing: set tracking.secret_env and its variable "
            f"({tracking.secret_env or 'unset'})"
        )
    secret = env[tracking.secret_env].encode()
    return Tracker(tracking.base_url, secret, key, contact_id, msg_id)


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.I)


def rewrite_links(markup: str, tracker: Tracker, keep: set[str]) -> str:
    """Point every http(s) link of the HTML part at the click redirect, except ``keep``."""

    def swap(m: re.Match[str]) -> str:
        url = html.unescape(m.group(2))
        if url in keep:
            return m.group(0)
        return m.group(1) + html.escape(tracker.click_url(url)) + m.group(3)

    return _HREF.sub(swap, markup)


def add_open_pixel(markup: str, url: str) -> str:
    pixel = f'<img src="{url}" width="1" height="1" alt="" style="display:none">'
    if re.search(r"</body>", markup, re.I):
        return re.sub(r"</body>", pixel + "</body>", markup, count=1, flags=re.I)
    return markup + "\n" + pixel
