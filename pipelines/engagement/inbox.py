"""``sequencer mailbox poll``: each user's ``inbox:`` (users.yaml) over IMAP (SPEC 10 door 3).

INBOX only (never Sent or Drafts), the messages with a UID above the user's cursor
(``mailbox_cursors``), fetched with ``BODY.PEEK`` so nothing is marked read. A changed
UIDVALIDITY means the server renumbered the folder: the cursor restarts from 0 (activity ids
are derived from the messages, so reading old ones again adds nothing). The cursor advances
in the transaction of the load (:func:`pipelines.engagement.mailbox.load`'s ``within``): a
crash in between reads the same messages again, never skips one. One user's server being down
or password missing is reported and the others go on.
"""

from __future__ import annotations

import datetime as dt
import imaplib
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError

from pipelines.engagement.mailbox import Mail, MailboxResult, load
from pipelines.errors import SequencerError
from pipelines.models import Inbox, User
from pipelines.workspace import Workspace, missing_inbox_secrets

FOLDER = "INBOX"
MAX_PER_POLL = 5000  # messages per user and poll; the rest comes at the next poll
TIMEOUT = 30.0  # seconds for the IMAP connection


@dataclass(frozen=True)
class Fetched:
    uidvalidity: int
    last_uid: int  # the highest UID read (the previous cursor when there is nothing new)
    mails: list[Mail]
    restarted: bool  # UIDVALIDITY changed: read from UID 1 again
    more: bool  # more than MAX_PER_POLL new messages: the rest at the next poll


def inbox_users(ws: Workspace, user_id: str | None) -> list[User]:
    """The users to poll: ``user_id``'s inbox, or every user with one (the operator)."""
    if user_id:
        user = ws.users.user(user_id)
        if user is None or user.inbox is None:
            raise SequencerError(f"user {user_id!r} has no inbox: in users.yaml")
        return [user]
    users = [u for u in ws.users.users if u.inbox is not None]
    if not users:
        raise SequencerError("no user has an inbox: in users.yaml (see docs/engagement.md)")
    return users


def label(inbox: Inbox) -> str:
    """Where the messages come from: the quarantine's ``file`` and the report's line.

    >>> label(Inbox(host="imap.acme.example", username="alice", password_env="P"))
    'imap://alice@imap.acme.example:993/INBOX'
    """
    return f"imap://{inbox.username}@{inbox.host}:{inbox.port}/{FOLDER}"


def poll(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    users: list[User],
    environ: Mapping[str, str],
    now: dt.datetime,
) -> list[MailboxResult]:
    """Read each user's new messages and load them; one result per user (``error`` set when
    the inbox could not be read: its password is not set, the server is down…)."""
    missing = missing_inbox_secrets(ws, environ)
    results = []
    for user in users:
        inbox = user.inbox
        assert inbox is not None  # inbox_users
        where = label(inbox)
        if user.id in missing:
            results.append(MailboxResult(source=where, error=missing[user.id]))
            continue
        cursor = read_cursor(con, user.id, inbox)
        try:
            fetched = fetch_new(inbox, environ[inbox.password_env], cursor)
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            results.append(MailboxResult(source=where, error=f"cannot read the inbox: {reason}"))
            continue

        def advance(c: duckdb.DuckDBPyConnection, user=user, fetched=fetched) -> None:
            write_cursor(c, user.id, user.inbox, fetched, now)

        result = load(con, where, fetched.mails, ws.users, now=now, within=advance)
        if fetched.restarted:
            result.notes.append("UIDVALIDITY changed: read the folder again from the start")
        if fetched.more:
            result.notes.append(f"more than {MAX_PER_POLL} new messages: the rest next poll")
        results.append(result)
    return results


def read_cursor(
    con: duckdb.DuckDBPyConnection, user_id: str, inbox: Inbox
) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) of the user's INBOX on this server and account, if any."""
    return con.execute(
        "select uidvalidity, last_uid from mailbox_cursors"
        " where user_id = $1 and host = $2 and username = $3 and folder = $4",
        [user_id, inbox.host, inbox.username, FOLDER],
    ).fetchone()


def write_cursor(
    con: duckdb.DuckDBPyConnection, user_id: str, inbox: Inbox, fetched: Fetched, now
) -> None:
    con.execute(
        "insert into mailbox_cursors (user_id, host, username, folder, uidvalidity, last_uid,"
        " polled_at) values ($1, $2, $3, $4, $5, $6, $7)"
        " on conflict (user_id, host, username, folder) do update set"
        " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
        " polled_at = excluded.polled_at",
        [user_id, inbox.host, inbox.username, FOLDER, fetched.uidvalidity, fetched.last_uid,
         now],
    )  # fmt: skip


def fetch_new(inbox: Inbox, password: str, cursor: tuple[int, int] | None) -> Fetched:
    """The INBOX messages above the cursor, unread flags untouched (``BODY.PEEK``)."""
    box = (
        MailBox(inbox.host, inbox.port, timeout=TIMEOUT)
        if inbox.tls
        else MailBoxUnencrypted(inbox.host, inbox.port, timeout=TIMEOUT)
    )
    with box.login(inbox.username, password, initial_folder=FOLDER) as mb:
        validity = int(mb.folder.status(FOLDER, ["UIDVALIDITY"])["UIDVALIDITY"])
        restarted = cursor is not None and cursor[0] != validity
        since = cursor[1] if cursor is not None and not restarted else 0
        # "UID n:*" always includes the highest UID, even below n: filter
        uids = sorted(int(u) for u in mb.uids(f"UID {since + 1}:*") if int(u) > since)
        more, uids = len(uids) > MAX_PER_POLL, uids[:MAX_PER_POLL]
        mails = []
        if uids:
            for msg in mb.fetch(uid_list=[str(u) for u in uids], mark_seen=False, bulk=100):
                mails.append(Mail(f"{label(inbox)};UID={msg.uid}", _bytes(msg.obj)))
    return Fetched(validity, max(uids, default=since), mails, restarted, more)


def _bytes(obj) -> bytes:
    try:
        return obj.as_bytes()
    except (UnicodeError, LookupError, ValueError):
        return obj.as_string().encode("utf-8", "replace")
