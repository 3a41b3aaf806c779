"""ESP event files (SPEC 10, door 2): SendGrid, Mailgun, SES (SNS) and Postmark files are
recognized by content, every event maps to the expected activity (golden files in
tests/fixtures/esp/), events match our sends by Message-ID or address, a provider's event id
dedupes across files, unknown events are quarantined with their record, and an ESP bounce or
complaint has its engine effect at the next tick. Real parts: a DuckDB file, the production
ingest path (``ingest_files`` / the CLI), the send step against an SMTP sink, the tick."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines import sqlrun
from pipelines.cli import main
from pipelines.db import connect
from pipelines.engagement.esp import detect_provider
from pipelines.ingest.load import ingest_files
from pipelines.outbox.send import send_due
from pipelines.outbox.transitions import append_sent_activity
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import ENV, add_action, seed_contacts, write_workspace
from tests.outbox.test_outbox_rules import AS_OF, T0, no_wait
from tests.tick_helpers import classic, contact, enrollments, insert, open_db, tick, write_sequences

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esp"
EVENT_FILES = {
    "sendgrid": "sendgrid_events.json",
    "mailgun": "mailgun_events.json",
    "ses": "ses_events.jsonl",
    "postmark": "postmark_events.json",
}
CONTACTS = [("c1", "ann@example.com"), ("c2", "bo@example.com"), ("c3", "cy@example.com"),
            ("c4", "di@example.com")]  # fmt: skip
# (contact, step, Message-ID, sent at): c3's bump is its latest send before the events (at
# 15:xx on 03-02); its `later` email goes out a week after them.
SENDS = [
    ("c1", "intro", "<m1.c1@acme.example>", "2026-03-02 14:30"),
    ("c2", "intro", "<m2.c2@acme.example>", "2026-03-02 14:30"),
    ("c3", "intro", "<m3a.c3@acme.example>", "2026-03-02 14:30"),
    ("c3", "bump", "<m3b.c3@acme.example>", "2026-03-02 14:50"),
    ("c3", "later", "<m3c.c3@acme.example>", "2026-03-09 14:30"),
]


def sent(con, contact: str, step: str, message_id: str, at: dt.datetime) -> None:
    """An email the send step sent: its action row (status sent, Message-ID) and its
    ``email_sent`` activity, written by the send step's own function."""
    key = add_action(con, contact, step, at)
    con.execute(
        "update actions set status = 'sent', message_id = ?, finished_at = ?"
        " where idempotency_key = ?",
        [message_id, at, key],
    )
    action = {"idempotency_key": key, "action": "email", "contact_id": contact,
              "sequence": "outbound", "step": step}  # fmt: skip
    append_sent_activity(con, action, None, at, message_id, {})


@pytest.fixture
def con(db_path):
    con = connect(db_path)
    for cid, email in CONTACTS:
        con.execute("insert into contacts (contact_id, email) values (?, ?)", [cid, email])
    for cid, step, message_id, at in SENDS:
        sent(con, cid, step, message_id, dt.datetime.fromisoformat(at))
    yield con
    con.close()


def esp_activities(con) -> dict[str, dict]:
    cur = con.execute(
        "select activity_id, contact_id, type, strftime(occurred_at, '%Y-%m-%dT%H:%M:%S.%f')"
        " as occurred_at, sequence, step, message_id, detail from activities"
        " where type <> 'email_sent'"
    )
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def same_time(got: str, expected: str) -> bool:
    return dt.datetime.fromisoformat(got) == dt.datetime.fromisoformat(expected)


def same_id(got: str, want: str, named: set[str]) -> bool:
    """``want`` ending in ``*``: an id the provider did not give (a hash), by its prefix."""
    if want.endswith("*"):
        return got.startswith(want[:-1]) and got not in named
    return got == want


def matches(got: dict, want: dict) -> bool:
    """The expected columns; detail: the listed members, and ``machine``/``match`` always."""
    detail = json.loads(got["detail"])
    columns = ("contact_id", "type", "sequence", "step", "message_id")
    return (
        all(got[c] == want[c] for c in columns)
        and same_time(got["occurred_at"], want["occurred_at"])
        and all(detail.get(k) == v for k, v in want["detail"].items())
        and detail.get("machine") == want["detail"].get("machine")
        and detail.get("match") == want["detail"].get("match")
    )


@pytest.mark.parametrize("provider", sorted(EVENT_FILES))
def test_every_event_of_a_provider_file_maps_to_the_expected_activity(con, provider):
    path = FIXTURES / EVENT_FILES[provider]
    expected = json.loads((FIXTURES / f"{provider}_expected.json").read_text())

    [result] = ingest_files(con, [path])  # recognized by content: no --format

    assert (result.entity, result.error) == (provider, None)
    got = esp_activities(con)
    named = {w["activity_id"] for w in expected["activities"]}
    unmatched = []
    for want in expected["activities"]:
        found = [g for k, g in got.items() if same_id(k, want["activity_id"], named)]
        if len(found) != 1 or not matches(found[0], want):
            unmatched.append((want, found))
    assert unmatched == []
    assert len(got) == len(expected["activities"]) == result.loaded
    quarantined = con.execute(
        "select file, line, reason, raw from quarantine order by line"
    ).fetchall()
    assert [(f, line, r) for f, line, r, _ in quarantined] == [
        (str(path), q["line"], "unknown activity type") for q in expected["quarantined"]
    ]
    for (_, _, _, raw), q in zip(quarantined, expected["quarantined"], strict=True):
        assert q["type"].split(":")[-1] in raw  # the provider's record, as it came
    assert result.quarantined == len(expected["quarantined"])
    for note in expected["notes"]:
        assert any(note in n for n in result.notes), (note, result.notes)


def test_files_are_recognized_by_content_and_an_activities_file_is_not_taken_for_one(tmp_path):
    for provider, name in EVENT_FILES.items():
        assert detect_provider(FIXTURES / name) == provider
    assert detect_provider(FIXTURES / "mailgun_events_page.json") == "mailgun"
    assert detect_provider(FIXTURES.parent / "ingest" / "activities_events.jsonl") is None
    one = tmp_path / "hook.json"  # a single webhook payload (not an array)
    one.write_text(json.dumps(json.loads((FIXTURES / "postmark_events.json").read_text())[0]))
    assert detect_provider(one) == "postmark"
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    assert detect_provider(other) is None


def test_the_same_file_twice_and_a_file_repeating_events_add_nothing(con, tmp_path):
    """The events API page repeats two webhook events (same event-data ids); a JSONL copy of
    the SendGrid file repeats all of its events in another file format."""
    mailgun = FIXTURES / "mailgun_events.json"
    [first] = ingest_files(con, [mailgun])
    before = esp_activities(con)
    [again] = ingest_files(con, [mailgun])
    [page] = ingest_files(con, [FIXTURES / "mailgun_events_page.json"])

    assert (again.skipped, again.loaded) == (True, 0)
    assert (page.skipped, page.loaded, page.unchanged, page.quarantined) == (False, 0, 2, 0)
    assert esp_activities(con) == before and first.loaded == len(before)

    events = json.loads((FIXTURES / "sendgrid_events.json").read_text())
    copy = tmp_path / "sendgrid_copy.jsonl"
    copy.write_text("".join(json.dumps(e) + "\n" for e in events))
    [sendgrid] = ingest_files(con, [FIXTURES / "sendgrid_events.json"])
    [repeat] = ingest_files(con, [copy])
    assert sendgrid.loaded > 0
    assert (repeat.skipped, repeat.loaded, repeat.unchanged) == (False, 0, sendgrid.loaded)


def test_an_event_repeated_within_a_file_loads_once_and_a_bad_line_is_quarantined(con, tmp_path):
    events = json.loads((FIXTURES / "sendgrid_events.json").read_text())
    delivered = next(e for e in events if e["event"] == "delivered")
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(delivered) + "\n\n" + "{not json\n" + json.dumps(delivered) + "\n")

    [result] = ingest_files(con, [path])

    assert (result.entity, result.loaded, result.quarantined) == ("sendgrid", 1, 1)
    assert any("repeat an event id" in n for n in result.notes)
    assert con.execute("select line, reason, raw from quarantine").fetchall() == [
        (3, "invalid JSON", "{not json")
    ]


def test_an_sns_subscription_confirmation_is_reported_not_loaded(con, tmp_path):
    confirmation = (FIXTURES / "ses_events.jsonl").read_text().splitlines()[0]
    path = tmp_path / "sns.json"
    path.write_text(confirmation)

    [result] = ingest_files(con, [path])

    assert (result.entity, result.error, result.loaded, result.quarantined) == ("ses", None, 0, 0)
    url = json.loads(confirmation)["SubscribeURL"]
    assert [n for n in result.notes if f"visit SubscribeURL {url}" in n]
    assert esp_activities(con) == {}


def test_the_cli_reads_a_file_as_the_format_given(tmp_path, capsys):
    """``--format`` names the provider (a file with a plain name and no recognizable first
    record loads by it); the table shows the provider as the entity."""
    (tmp_path / "users.yaml").write_text((Path(__file__).parents[2] / "users.yaml").read_text())
    events = json.loads((FIXTURES / "sendgrid_events.json").read_text())
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"note": "first record unlike an event"}] + events))
    db = tmp_path / "db.duckdb"

    assert main(["ingest", "--project", str(tmp_path), "--db", str(db), str(path)]) == 1
    assert "cannot tell what this file holds" in capsys.readouterr().err
    code = main(["ingest", "--project", str(tmp_path), "--db", str(db), "--format", "sendgrid",
                 str(path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert any(line.split()[:3] == ["export.json", "sendgrid", "13"] for line in out.splitlines())
    assert main(["ingest", "--project", str(tmp_path), "--format", "hotmail", str(path)]) == 2


def test_events_match_an_email_the_send_step_sent(tmp_path, smtp_sink):
    """c1's intro goes out through a real SMTP server; SendGrid's events for it carry its
    Message-ID in ``smtp-id``: they get c1, the sequence and the step."""
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    add_action(con, "c1", "intro", T0)
    ws = load_workspace(write_workspace(tmp_path / "ws", smtp_sink.port))
    send_due(con, ws, AS_OF, env=ENV, backoff=no_wait)
    [(message_id,)] = con.execute("select message_id from actions where status = 'sent'").fetchall()
    assert message_id.startswith("<") and smtp_sink.messages
    at = int((AS_OF + dt.timedelta(minutes=5)).replace(tzinfo=dt.UTC).timestamp())
    path = tmp_path / "events.json"
    path.write_text(json.dumps([
        {"email": "ann@example.com", "timestamp": at, "event": "delivered", "smtp-id": message_id,
         "sg_event_id": "d1", "sg_message_id": "s1.filter"},
        {"email": "ann@example.com", "timestamp": at + 60, "event": "open", "sg_event_id": "o1",
         "sg_message_id": "s1.filter", "sg_machine_open": False},
    ]))  # fmt: skip

    [result] = ingest_files(con, [path])

    rows = con.execute(
        "select activity_id, contact_id, type, sequence, step, message_id from activities"
        " where activity_id like 'sendgrid:%' order by 1"
    ).fetchall()
    assert (result.loaded, rows) == (2, [
        ("sendgrid:d1", "c1", "email_delivered", "outbound", "intro", message_id),
        ("sendgrid:o1", "c1", "email_opened", "outbound", "intro", message_id),
    ])  # fmt: skip


def test_an_esp_bounce_and_complaint_exit_at_the_next_tick(tmp_path):
    """Sequence ``s`` emails everyone on day 1 (03-02); its follow-up is on day 5. The ESP
    reports for those emails: SES a permanent bounce for ``bnc``, Postmark a spam complaint
    for ``cmp``, SendGrid a deferral (soft bounce) for ``soft``. At the next tick ``bnc``
    exits ``bounced``, ``cmp`` exits ``unsubscribed`` (a complaint is an unsubscribe), ``soft``
    stays; sequence ``t`` (from 03-04) enrols neither ``bnc`` nor ``cmp``."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact(c) for c in ("bnc", "cmp", "soft")])
    steps = """
    - {id: e1, day: 1, action: email, template: intro.md.j2, subject: Hi}
    - {id: f5, day: 5, action: follow_up}
    """
    root = write_sequences(
        tmp_path / "ws",
        {
            "s": classic("s", steps, extra="starts_on: 2026-03-02"),
            "t": classic("t", steps, extra="starts_on: 2026-03-04"),
        },
    )
    tick(con, root, "2026-03-02 12:00")
    con.close()  # a tick locks its connection down (no file access): ingest opens its own
    con = open_db(tmp_path)
    sent_at = dt.datetime(2026, 3, 2, 12, 5)
    for row in sqlrun.dicts(con.execute("select * from actions where step = 'e1'")):
        row["message_id"] = f"<{row['contact_id']}.e1@acme.example>"
        con.execute(
            "update actions set status = 'sent', message_id = ? where idempotency_key = ?",
            [row["message_id"], row["idempotency_key"]],
        )
        append_sent_activity(con, row, None, sent_at, row["message_id"], {})
    bounce = {"eventType": "Bounce", "mail": {"timestamp": "2026-03-02T12:05:00Z",
              "messageId": "ses-1", "destination": ["bnc@x.example"],
              "commonHeaders": {"messageId": "<bnc.e1@acme.example>"}},
              "bounce": {"bounceType": "Permanent", "timestamp": "2026-03-02T13:00:00Z",
                         "bouncedRecipients": [{"emailAddress": "bnc@x.example"}]}}  # fmt: skip
    files = {
        "ses.jsonl": json.dumps({"Type": "Notification", "MessageId": "sns-1",
                                 "TopicArn": "arn:aws:sns:x", "Message": json.dumps(bounce)}),
        "postmark.json": json.dumps({"RecordType": "SpamComplaint", "ID": 7,
                                     "Type": "SpamComplaint",
                                     "Email": "cmp@x.example", "BouncedAt": "2026-03-02T13:00:00Z",
                                     "MessageID": "pm-1",
                                     "Metadata": {"message_id": "<cmp.e1@acme.example>"}}),
        "sendgrid.json": json.dumps([{"event": "deferred", "email": "soft@x.example",
                                      "timestamp": 1772456400, "sg_event_id": "d1",
                                      "smtp-id": "<soft.e1@acme.example>"}]),
    }  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    results = ingest_files(con, [tmp_path / name for name in files])
    assert [(r.entity, r.loaded, r.error) for r in results] == [
        ("postmark", 1, None), ("sendgrid", 1, None), ("ses", 1, None),
    ]  # fmt: skip
    con.close()
    con = open_db(tmp_path)

    tick(con, root, "2026-03-04 12:00")

    exits = {c: (status, reason) for _, c, _, status, reason, _ in enrollments(con, "s")}
    assert exits == {
        "bnc": ("exited", "bounced"),
        "cmp": ("exited", "unsubscribed"),
        "soft": ("active", None),
    }
    assert {c for _, c, *_ in enrollments(con, "t")} == {"soft"}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_file_with_a_byte_order_mark_and_crlf_lines_loads_the_same(con, tmp_path, suffix):
    events = json.loads((FIXTURES / "sendgrid_events.json").read_text())
    if suffix == ".json":
        text = json.dumps(events, indent=1).replace("\n", "\r\n")
    else:
        text = "".join(json.dumps(e) + "\r\n" for e in events)
    path = tmp_path / f"export{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    [result] = ingest_files(con, [path])

    assert (result.entity, result.loaded, result.quarantined) == ("sendgrid", 13, 3)
