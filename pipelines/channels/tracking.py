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

PURPOSES = {"o": "open", "c": "click", "u": "unsubscribe"}  # the URL path letter: the purpose
# How long a token is honoured, from the day the email was sent (SPEC 10: unsubscribe at least
# a year). Opens and clicks after that are noise (a click still redirects: its URL is signed).
MAX_AGE_DAYS = {"o": 400, "c": 400, "u": 5 * 366}
EPOCH_DAY = 86_400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _purpose_key(secret: bytes, purpose: str) -> bytes:
    """One key per purpose, derived from the secret: a token signed for the pixel does not
    verify as an unsubscribe token, whatever its payload says."""
    return hmac.new(secret, f"sequencer-tracking-{PURPOSES[purpose]}".encode(), "sha256").digest()


def sign_token(secret: bytes, payload: dict[str, Any], purpose: str = "o") -> str:
    """``base64url(json).base64url(hmac_sha256(key(secret, purpose), that))``: readable,
    tamper-evident, bound to its purpose.

    >>> t = sign_token(b"s", {"m": "<x@y>"}, "u")
    >>> verify_token([b"s"], t, "u")
    {'m': '<x@y>'}
    >>> verify_token([b"s"], t, "o")
    Traceback (most recent call last):
    ValueError: bad tracking token
    """
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(_purpose_key(secret, purpose), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secrets: list[bytes], token: str, purpose: str) -> dict[str, Any]:
    """The payload of a ``purpose`` token signed with one of ``secrets`` (the current one and
    those being rotated out); ``ValueError`` when forged, damaged or of another purpose.
    Every candidate signature is compared in constant time."""
    body, _, sig = token.partition(".")
    ok = False
    for secret in secrets:
        key = _purpose_key(secret, purpose)
        expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
        ok |= bool(sig) and hmac.compare_digest(sig, expected)
    if not ok:
        raise ValueError("bad tracking token")
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise ValueError("bad tracking token") from None
    if not isinstance(payload, dict):
        raise ValueError("bad tracking token")
    return payload


def expired(payload: dict[str, Any], purpose: str, now_epoch_day: int) -> bool:
    """A token older than its purpose's :data:`MAX_AGE_DAYS` (``d``: the day it was signed)."""
    return now_epoch_day - int(payload.get("d", 0)) > MAX_AGE_DAYS[purpose]


@dataclass(frozen=True)
class Tracker:
    """Makes the signed URLs of one message: open pixel, click redirects, unsubscribe. Each
    token carries what the activity it records needs (SPEC 10): contact, sequence, step,
    Message-ID, and the day it was signed."""

    base_url: str
    secret: bytes
    contact_id: str
    message_id: str
    sequence: str
    step: str
    day: int  # days since 1970-01-01 of the send

    def _url(self, purpose: str, extra: dict[str, str] | None = None) -> str:
        payload = {
            "c": self.contact_id, "m": self.message_id, "s": self.sequence, "t": self.step,
            "d": self.day, **(extra or {}),
        }  # fmt: skip
        token = sign_token(self.secret, payload, purpose)
        return f"{self.base_url.rstrip('/')}/{purpose}/{token}"

    def open_url(self) -> str:
        return self._url("o") + ".gif"

    def click_url(self, url: str) -> str:
        return self._url("c", {"u": url})

    def unsubscribe_url(self) -> str:
        return self._url("u")


def secret_names(tracking: Tracking) -> list[str]:
    """The environment variables of the tracking secrets: the first signs, all verify."""
    names = tracking.secret_env
    return [names] if isinstance(names, str) else list(names or [])


def tracking_secrets(tracking: Tracking | None, env: dict[str, str]) -> list[bytes]:
    """The secrets that verify a token, current first; a :class:`MailConfigError` when
    users.yaml lacks tracking or the current secret is not set."""
    if tracking is None:
        raise MailConfigError("tracking and unsubscribe links need `tracking:` in users.yaml")
    names = secret_names(tracking)
    if not names or not env.get(names[0]):
        raise MailConfigError(
            f"tracking secret missing: set tracking.secret_env and its variable "
            f"({names[0] if names else 'unset'})"
        )
    return [env[n].encode() for n in names if env.get(n)]


def tracker_for(
    tracking: Tracking | None, action: dict[str, Any], msg_id: str, sent_at, env: dict[str, str]
) -> Tracker:
    """The tracker of an email action; a :class:`MailConfigError` when tracking is not set."""
    secret = tracking_secrets(tracking, env)[0]
    day = int(sent_at.timestamp()) // EPOCH_DAY
    return Tracker(
        tracking.base_url, secret, action["contact_id"], msg_id, action["sequence"],
        action["step"], day,
    )  # fmt: skip


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
