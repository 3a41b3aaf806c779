"""ESP event files (SPEC 10, door 2): SendGrid, Mailgun, Amazon SES (via SNS) and Postmark.

Set-based from the file to the table, no Python per event:

1. :func:`detect_provider` recognizes a ``.json``/``.jsonl`` file by its first record (or
   ``sequencer ingest --format PROVIDER`` says it); an activities file (``activity_id``) is
   never taken for one;
2. DuckDB reads the file into ``esp_records`` (``__line``: the array element or JSONL line,
   ``j``: the record as JSON, ``raw``: its text);
3. ``sql/engagement/stg_esp_<provider>.sql`` maps the records to ``esp_events`` (one row per
   event and recipient: activity id from the provider's event id, type, time, Message-ID,
   detail; ``skip`` says why a record is reported rather than loaded);
4. ``sql/engagement/int_esp_activities.sql`` matches them to our sends and stages ``ingest_raw``,
   which :func:`pipelines.ingest.load.load_staged_activities` checks, quarantines and loads.
"""

from __future__ import annotations

import codecs
import json
import re
import shutil
import tempfile
from pathlib import Path

import duckdb

from pipelines import sqlrun
from pipelines.errors import IngestError, Location
from pipelines.ingest.load import (
    IngestResult,
    _sha256,
    load_staged_activities,
    reset_staging,
)
from pipelines.ingest.read import NO_DELIMITER
from pipelines.ingest.source import prepare

PROVIDERS = ("sendgrid", "mailgun", "ses", "postmark")
SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
HEAD_SIZES = (1 << 16, 1 << 20, 1 << 23)  # how much of a file detection reads, at most
MAX_OBJECT = 1 << 30  # one JSON value (a Mailgun events page) DuckDB may read
_OPENING = re.compile(r'\s*(?:\[|\{\s*"items"\s*:\s*\[)?\s*')  # an array, or an events page


def classify(record: object) -> str | None:
    """The provider one decoded record comes from; ``None`` when it is none of theirs.

    >>> classify({"sg_event_id": "x", "event": "open", "email": "a@b.example"})
    'sendgrid'
    >>> classify({"signature": {"token": "t"}, "event-data": {"event": "opened"}})
    'mailgun'
    >>> classify({"Type": "Notification", "TopicArn": "arn:aws:sns:x", "Message": "{}"})
    'ses'
    >>> classify({"RecordType": "Open", "MessageID": "m"})
    'postmark'
    >>> classify({"activity_id": "a1", "type": "email_opened", "event": "open"}) is None
    True
    """
    if not isinstance(record, dict) or "activity_id" in record:
        return None
    keys = set(record)
    if keys & {"sg_event_id", "sg_message_id", "smtp-id"}:
        return "sendgrid"
    if "event-data" in keys or isinstance(record.get("signature"), dict):
        return "mailgun"
    if {"event", "log-level"} <= keys or ("items" in keys and "paging" in keys):
        return "mailgun"  # an events API item, or a page of them
    if record.get("Type") in SNS_TYPES and keys & {"TopicArn", "Message"}:
        return "ses"
    if keys & {"eventType", "notificationType"} and "mail" in keys:
        return "ses"  # an SES event without its SNS envelope (Firehose, SQS)
    if "RecordType" in keys:
        return "postmark"
    return None


def detect_provider(path: Path) -> str | None:
    """The provider of a ``.json``/``.jsonl`` file's events, from its first record."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".jsonl") or not path.is_file():
        return None
    return classify(_first_record(path))


def _first_record(path: Path) -> object:
    """The file's first record (the first array element, events page item or JSONL line),
    decoded from the head of the file; ``None`` when it does not decode."""
    size = path.stat().st_size
    for head_size in HEAD_SIZES:
        with path.open("rb") as f:
            head = f.read(head_size).decode("utf-8", errors="replace").lstrip("\ufeff")
        start = _OPENING.match(head).end()
        try:
            record, _ = json.JSONDecoder().raw_decode(head, start)
            return record
        except ValueError:
            if head_size >= size:
                return None
    return None


def ingest_esp_file(
    con: duckdb.DuckDBPyConnection, path: Path | str, provider: str
) -> IngestResult:
    """Load one provider event file; a file seen before (same content) is skipped, and an
    event already stored (same provider event id) is not stored again."""
    path = Path(path)
    if provider not in PROVIDERS:
        raise IngestError(
            f"unknown format {provider!r}: expected one of {', '.join(PROVIDERS)}",
            Location(file=str(path)),
        )
    if not path.is_file():
        raise IngestError("file not found", Location(file=str(path)))
    con.execute("set TimeZone = 'UTC'")
    digest = _sha256(path)
    seen = con.execute(
        "select 1 from ingested_files where sha256 = $1 and entity = $2 and tag = ''",
        [digest, provider],
    ).fetchone()
    if seen:
        return IngestResult(str(path), provider, 0, 0, 0, True)
    source = prepare(path)  # UTF-8 (a UTF-16 file with a BOM is transcoded), one line ending
    scratch = tempfile.TemporaryDirectory(prefix="sequencer-esp-")
    try:
        reset_staging(con)
        _stage_records(con, _without_bom(source.path, Path(scratch.name)))
        notes = _map_events(con, provider)
        sqlrun.materialize(con, "ingest_raw", sqlrun.render("engagement/int_esp_activities.sql"))
        result = load_staged_activities(con, path, digest=digest, kind=provider)
    finally:
        source.close()
        scratch.cleanup()
        con.execute("drop view if exists esp_records")
        for table in ("esp_lines", "esp_values", "esp_events"):
            con.execute(f"drop table if exists {table}")
    detected = detect_provider(path)
    if detected and detected != provider:
        notes.insert(0, f"read as {provider} events, but its content looks like {detected}'s")
    result.notes[:0] = source.notes + notes
    return result


def _without_bom(path: Path, scratch: Path) -> Path:
    """The file, or a copy without its UTF-8 byte order mark (DuckDB's JSON reader does not
    skip one: the array would not be seen as an array)."""
    with path.open("rb") as f:
        if f.read(3) != codecs.BOM_UTF8:
            return path
        copy = scratch / path.name
        with copy.open("wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
    return copy


def _stage_records(con, path: Path) -> None:
    """``esp_records(__line, j, raw)``: JSONL line by line (a line that is not JSON stays,
    with ``j`` NULL, and is quarantined as invalid JSON); a ``.json`` file's array elements,
    or its one object."""
    if path.suffix.lower() == ".jsonl":
        con.execute(
            "create temp table esp_lines as select * from read_csv($path, "
            "columns = {'line': 'VARCHAR'}, header = false, auto_detect = false, "
            "delim = $delim, quote = '', escape = '', strict_mode = false, "
            "max_line_size = 100000000)",
            {"path": str(path), "delim": NO_DELIMITER},
        )
        con.execute(
            "create temp table esp_values as select rowid + 1 as __line, "
            "case when json_valid(line) then line::json end as j, line as raw "
            "from esp_lines where trim(coalesce(line, '')) <> ''"
        )
        con.execute("create temp view esp_records as select * from esp_values")
        return
    con.execute(
        "create temp table esp_values as select json as j "
        "from read_json_objects($path, format = 'auto', maximum_object_size = $max)",
        {"path": str(path), "max": MAX_OBJECT},
    )
    con.execute(  # the record's text as the file gave it (whitespace and all)
        "create temp view esp_records as "
        "select rowid + 1 as __line, j, j::varchar as raw from esp_values"
    )


def _map_events(con, provider: str) -> list[str]:
    """Map ``esp_records`` to ``esp_events``; return what the result's notes should say
    about records reported rather than loaded."""
    sql = sqlrun.render(f"engagement/stg_esp_{provider}.sql")
    con.execute(f"create temp table esp_events as select *, false as repeated from ({sql})")
    (repeats,) = con.execute(
        "select count(activity_id) - count(distinct activity_id) from esp_events"
    ).fetchone()
    if repeats:  # a provider's retry inside one file: the first one loads
        con.execute(
            "update esp_events set repeated = true where (__line, __sub) in (select __line, "
            "__sub from esp_events where activity_id is not null qualify row_number() over "
            "(partition by activity_id order by __line, __sub) > 1)"
        )
    notes = [
        f"{skip} ({count} {'record' if count == 1 else 'records'}, not loaded)"
        for skip, count in con.execute(
            "select skip, count(*) from esp_events where skip is not null "
            "group by skip order by min(__line)"
        ).fetchall()
    ]
    (repeats,) = con.execute(
        "select count(*) from esp_events where repeated and skip is null"
    ).fetchone()
    if repeats:
        notes.append(f"{repeats} events repeat an event id of this file: loaded once")
    return notes
