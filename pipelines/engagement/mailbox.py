"""The mailbox door (SPEC 10 door 3): mail messages → activities, and ``sequencer mailbox
import [--dry-run] FILES…`` (.eml files, mbox files, Maildir folders).

Python reads and classifies each message (:mod:`.classify`); everything after is set-based:
the classifications of a batch are staged in one temp table, matched to our sends by one SQL
model (``sql/engagement/int_mailbox_matches.sql``: Message-ID, else an enrolled contact's
address), and the matched ones are staged in ``ingest_raw`` and loaded by the one loader,
:func:`pipelines.ingest.load.load_staged_activities`. An activity's id is derived from the
message's Message-ID (or the sha256 of its bytes) and the recipient, so reading a message
again adds nothing. ``sequencer mailbox poll`` (IMAP) is :mod:`.inbox`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mailbox as stdlib_mailbox
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import sqlrun
from pipelines.channels.message import domain_of
from pipelines.engagement.classify import (
    ACTIVITY_TYPE,
    Classification,
    Kind,
    classify_message,
    envelope,
    parse,
    referenced_ids,
)
from pipelines.errors import IngestError, Location
from pipelines.ingest.load import load_staged_activities, reset_staging
from pipelines.models import UsersFile

KIND = "mailbox"  # ingested_files.entity of a mailbox batch


@dataclass(frozen=True)
class Mail:
    """One message as read: where from (file, ``file#N`` in an mbox, IMAP UID) and its bytes."""

    source: str
    raw: bytes


@dataclass
class MailboxResult:
    """What one batch (a file, a folder, one user's new IMAP messages) did."""

    source: str
    messages: int = 0
    kinds: Counter = field(default_factory=Counter)  # classification kinds, per recipient
    loaded: int = 0
    already: int = 0  # activities already stored (the message was read before)
    quarantined: int = 0
    not_ours: int = 0  # classifications that match none of our sends: not loaded
    from_us: int = 0  # mail we sent: never a reply
    error: str | None = None  # the batch could not be read at all
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ours:
    """Who "we" are: our users' addresses and the domains of our Message-IDs."""

    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, users: UsersFile) -> Ours:
        addresses = frozenset(u.email.lower() for u in users.users)
        return cls(addresses, frozenset(domain_of(a) for a in addresses))

    def sent(self, sender: str | None, message_id: str | None) -> bool:
        if sender and sender in self.addresses:
            return True
        return bool(message_id) and domain_of(message_id or "") in self.domains


# --- classification rows ---------------------------------------------------------------------


def classified(mails: Iterable[Mail], ours: Ours, now: dt.datetime) -> list[dict]:
    """One row per message and recipient (the columns of ``mailbox_classified``)."""
    rows: list[dict] = []
    for mail in mails:
        msg = parse(mail.raw)
        env = envelope(msg)
        key = env.message_id or f"sha256:{hashlib.sha256(mail.raw).hexdigest()}"
        for c in _classifications(msg):
            rows.append(
                {
                    "rec": len(rows) + 1,
                    "source": mail.source,
                    "message_key": key,
                    "message_id": env.message_id,
                    "sender": env.sender,
                    "occurred_at": env.date or now,
                    "subject": env.subject[:500],
                    "kind": str(c.kind),
                    "activity_type": ACTIVITY_TYPE[c.kind],
                    "recipient": c.recipient,
                    "status": c.status,
                    "diagnostic": (c.diagnostic or "")[:1000] or None,
                    "until": c.until,
                    "candidates": list(c.candidates),
                    "from_us": ours.sent(env.sender, env.message_id),
                }
            )
    return rows


def _classifications(msg) -> list[Classification]:
    """The message's classifications; one the parser cannot take apart is ``other`` (a
    matched one is quarantined with its summary, never dropped silently)."""
    try:
        return classify_message(msg)
    except (ValueError, IndexError, TypeError, LookupError, AttributeError, UnicodeError) as exc:
        reason = f"could not be parsed: {type(exc).__name__}"
        return [Classification(Kind.OTHER, diagnostic=reason, candidates=referenced_ids(msg))]


COLUMNS = (
    "rec bigint, source varchar, message_key varchar, message_id varchar, sender varchar, "
    "occurred_at timestamp, subject varchar, kind varchar, activity_type varchar, "
    "recipient varchar, status varchar, diagnostic varchar, until varchar, "
    "candidates varchar[], from_us boolean"
)


def match(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Stage ``rows`` (one statement) and match them: temp table ``mailbox_matches``."""
    con.execute("drop table if exists mailbox_classified")
    con.execute(f"create temp table mailbox_classified ({COLUMNS})")
    if rows:
        con.execute(
            "insert into mailbox_classified select unnest($1::struct("
            + COLUMNS
            + ")[], recursive := true)",
            [rows],
        )
    sqlrun.materialize(con, "mailbox_matches", sqlrun.render("engagement/int_mailbox_matches.sql"))


def load(
    con: duckdb.DuckDBPyConnection,
    label: str,
    mails: list[Mail],
    users: UsersFile,
    *,
    now: dt.datetime,
    within: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> MailboxResult:
    """Classify, match and load one batch; ``within`` commits with it (the IMAP cursor)."""
    con.execute("set TimeZone = 'UTC'")
    result = MailboxResult(source=label, messages=len(mails))
    rows = classified(mails, Ours.of(users), now)
    match(con, rows)
    result.kinds.update(r["kind"] for r in rows)
    counts = con.execute(
        "select count(*) filter (where ours), "
        "count(*) filter (where match is null and not ours) from mailbox_matches"
    ).fetchone()
    result.from_us, result.not_ours = counts
    reset_staging(con)
    # one row per activity id: the same message twice in a batch is one activity
    con.execute(
        "create temp table ingest_raw as select __text, __raw from mailbox_matches "
        "where loadable qualify row_number() over (partition by activity_id order by rec) = 1 "
        "order by rec"
    )
    digest = con.execute(
        "select sha256(coalesce(string_agg(__text, chr(10) order by __text), '')) from ingest_raw"
    ).fetchone()[0]
    loaded = load_staged_activities(con, label, digest=digest, kind=KIND, within=within)
    result.loaded, result.quarantined = loaded.loaded, loaded.quarantined
    result.already = loaded.unchanged + (
        con.execute("select count(*) from ingest_raw").fetchone()[0] if loaded.skipped else 0
    )
    return result


# --- files: .eml, mbox, Maildir -------------------------------------------------------------


def read_mails(path: Path) -> list[Mail]:
    """The messages of an .eml file, an mbox file or a Maildir folder (cur/ and new/)."""
    if path.is_dir():
        if not any((path / sub).is_dir() for sub in ("cur", "new")):
            raise IngestError("a folder must be a Maildir (with cur/ and new/)", _at(path))
        box = stdlib_mailbox.Maildir(path, factory=None, create=False)
        return [
            Mail(f"{path}/{key}", box.get_bytes(key)) for key in sorted(box.iterkeys())
        ]  # fmt: skip
    if not path.is_file():
        raise IngestError("file not found", _at(path))
    try:
        with path.open("rb") as f:
            head = f.read(5)
        if path.suffix.lower() != ".eml" and head == b"From ":
            box = stdlib_mailbox.mbox(path, factory=None, create=False)
            return [Mail(f"{path}#{n}", box.get_bytes(k)) for n, k in enumerate(box.keys(), 1)]
        return [Mail(str(path), path.read_bytes())]
    except OSError as exc:
        raise IngestError(f"cannot be read: {exc.strerror or exc}", _at(path)) from exc


def _at(path: Path) -> Location:
    return Location(file=str(path))


def import_files(
    con: duckdb.DuckDBPyConnection, paths: list[Path], users: UsersFile, now: dt.datetime
) -> list[MailboxResult]:
    """Load each file or folder as its own batch; one that cannot be read is reported
    (``error``) and the others go on."""
    results = []
    for path in paths:
        try:
            mails = read_mails(path)
        except IngestError as exc:
            results.append(MailboxResult(source=str(path), error=exc.message))
            continue
        results.append(load(con, str(path), mails, users, now=now))
    return results


def dry_run(
    con: duckdb.DuckDBPyConnection, paths: list[Path], users: UsersFile, now: dt.datetime
) -> Iterator[dict]:
    """Classify every message (matched to our sends or not) and write nothing: one dict per
    message and recipient, ``{"file", "kind", "recipient", "status", "matched_message_id"}``
    (mail we sent is ``other``: it never counts); an unreadable file gives ``{"file",
    "error"}``. ``con`` may be read-only (only temp tables are created)."""
    for path in paths:
        try:
            mails = read_mails(path)
        except IngestError as exc:
            yield {"file": str(path), "error": exc.message}
            continue
        match(con, classified(mails, Ours.of(users), now))
        for source, kind, recipient, status, matched, ours in con.execute(
            "select source, kind, recipient, status, matched_message_id, ours "
            "from mailbox_matches order by rec"
        ).fetchall():
            yield {
                "file": source,
                "kind": str(Kind.OTHER) if ours else kind,
                "recipient": recipient,
                "status": status,
                "matched_message_id": matched,
            }
