"""``sequencer mailbox import [--dry-run] FILES…`` (SPEC 10 door 3): .eml files, mbox files and
Maildir folders through the CLI, on a real DuckDB file; the dry run's output format and that
it writes nothing; who may import; the load and the cursor commit together."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mailbox

import duckdb
import pytest

from pipelines.db import connect
from pipelines.engagement.mailbox import Mail, load
from pipelines.workspace import load_workspace
from tests.engagement.imap_helpers import FIXTURE_ID, fixture
from tests.engagement.test_mailbox import one_send, reply
from tests.workspace_helpers import write_workspace

SENT = "<k1@acme.example>"


@pytest.fixture
def project(tmp_path):
    root = write_workspace(tmp_path / "ws", {})
    db = tmp_path / "db.duckdb"
    one_send(db, "rep", SENT)
    return root, db


def run(capsys, root, db, *argv):
    from pipelines.cli import main

    code = main(["mailbox", *argv, "--project", str(root), "--db", str(db)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def bounce() -> bytes:
    return fixture(
        "postfix_511_user_unknown.eml", {FIXTURE_ID: SENT, "nobody@example.com": "rep@x.example"}
    )


def counts(db) -> tuple[int, int, int]:
    con = connect(db)
    try:
        return con.execute(
            "select (select count(*) from activities), (select count(*) from quarantine),"
            " (select count(*) from ingested_files)"
        ).fetchone()
    finally:
        con.close()


def test_import_eml_mbox_and_maildir_once(project, tmp_path, capsys):
    root, db = project
    eml = tmp_path / "reply.eml"
    eml.write_bytes(reply(1, SENT))
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(bounce())
    box.add(reply(2, SENT))
    box.add(reply(1, SENT))  # the same message as reply.eml: one activity
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(fixture("ooo_outlook_en.eml", {FIXTURE_ID: SENT, "ann@example.com": "x@y.z"}))
    maildir.close()
    files = [str(eml), str(tmp_path / "bounces.mbox"), str(tmp_path / "Maildir")]

    code, out, err = run(capsys, root, db, "import", *files)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "loaded 1" in lines[0]
    assert "3 message(s)" in lines[1] and "loaded 2, already stored 1" in lines[1]
    assert "loaded 1" in lines[2]
    con = connect(db)
    types = con.execute(
        "select type, contact_id, step from activities where activity_id like 'mail:%' order by all"
    ).fetchall()
    con.close()
    assert types == [
        ("email_auto_replied", "rep", "intro"),
        ("email_bounced", "rep", "intro"),
        ("email_replied", "rep", "intro"),
        ("email_replied", "rep", "intro"),
    ]
    before = counts(db)
    code, out, _ = run(capsys, root, db, "import", *files)
    assert code == 0 and out.count("loaded 0") == 3
    assert counts(db) == before


def test_dry_run_prints_one_json_object_per_message_and_recipient_and_writes_nothing(
    project, tmp_path, capsys
):
    root, db = project
    two = tmp_path / "two.eml"
    two.write_bytes(_two_recipients())
    box = mailbox.mbox(tmp_path / "in.mbox")
    box.add(reply(1, SENT))
    box.add(b"From: news@stranger.example\r\nSubject: hello\r\nMessage-ID: <n1@s>\r\n\r\nhi")
    box.close()
    before = counts(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()

    code, out, err = run(
        capsys, root, db, "import", "--dry-run", str(two), str(tmp_path / "in.mbox")
    )
    assert (code, err) == (0, "")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest  # not a byte changed
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows == [
        {"file": str(two), "kind": "soft_bounce", "recipient": "louis@larry.slip.umd.edu",
         "status": "4.0.0", "matched_message_id": SENT},
        {"file": str(two), "kind": "delivered", "recipient": "hiro@ux1.example",
         "status": "2.0.0", "matched_message_id": SENT},
        {"file": f"{tmp_path / 'in.mbox'}#1", "kind": "reply", "recipient": "rep@x.example",
         "status": None, "matched_message_id": SENT},
        {"file": f"{tmp_path / 'in.mbox'}#2", "kind": "reply",
         "recipient": "news@stranger.example", "status": None, "matched_message_id": None},
    ]  # fmt: skip
    assert counts(db) == before


def _two_recipients() -> bytes:
    return fixture(
        "rfc3464_two_recipients.eml", {"<0b0d2f6a5c1e4e7f9a8b7c6d5e4f3a2b@acme.example>": SENT}
    )


def test_dry_run_without_a_database_creates_none(tmp_path, capsys):
    root = write_workspace(tmp_path / "ws", {})
    db = tmp_path / "none" / "db.duckdb"
    eml = tmp_path / "a.eml"
    eml.write_bytes(fixture("from_us_bcc_copy.eml", {}))
    code, out, _ = run(capsys, root, db, "import", "--dry-run", str(eml))
    assert code == 0 and not db.exists() and not db.parent.exists()
    # mail we sent never counts: kind other
    assert json.loads(out)["kind"] == "other"


def test_an_unreadable_file_is_reported_and_the_others_load(project, tmp_path, capsys):
    root, db = project
    eml = tmp_path / "ok.eml"
    eml.write_bytes(reply(1, SENT))
    (tmp_path / "plain").mkdir()
    code, out, err = run(
        capsys, root, db, "import", str(tmp_path / "missing.eml"), str(tmp_path / "plain"), str(eml)
    )
    assert code == 1
    assert "missing.eml: file not found" in err and "must be a Maildir" in err
    assert "loaded 1" in out
    code, _, err = run(capsys, root, db, "import", "--dry-run", str(tmp_path / "missing.eml"))
    assert code == 1 and "file not found" in err


def test_import_is_for_the_operator_or_an_admin_but_a_dry_run_is_open(project, tmp_path, capsys):
    root, db = project
    eml = tmp_path / "ok.eml"
    eml.write_bytes(reply(1, SENT))
    code, _, err = run(capsys, root, db, "import", str(eml), "--user", "alice")
    assert code == 4 and "operator or an admin" in err
    assert run(capsys, root, db, "import", str(eml), "--user", "olga")[0] == 0
    code, out, _ = run(capsys, root, db, "import", "--dry-run", str(eml), "--user", "vera")
    assert code == 0 and json.loads(out)["kind"] == "reply"


def test_an_unmatched_other_kind_is_quarantined_with_its_summary(project, tmp_path, capsys):
    """A DSN whose action is ``relayed`` says nothing we can count: matched to our send, it is
    quarantined (unknown activity type ``mailbox:other``), never silently dropped."""
    root, db = project
    eml = tmp_path / "relayed.eml"
    eml.write_bytes(_two_recipients().replace(b"Action: delivered", b"Action: relayed"))
    code, out, _ = run(capsys, root, db, "import", str(eml))
    assert code == 0 and "loaded 1" in out and "quarantined 1" in out
    con = connect(db)
    [(file, reason, raw)] = con.execute("select file, reason, raw from quarantine").fetchall()
    con.close()
    assert (file, reason) == (str(eml), "unknown activity type")
    assert json.loads(raw)["kind"] == "other" and json.loads(raw)["recipient"] == "hiro@ux1.example"


def test_the_cursor_commits_with_the_load_or_not_at_all(project):
    """``within`` (the IMAP cursor's write) fails after writing: the load is rolled back too."""
    root, db = project
    con = connect(db)
    ws = load_workspace(root)

    def cursor_then_crash(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("insert into mailbox_cursors values ('alice', 'h', 'u', 'INBOX', 1, 9, now())")
        raise OSError("disk full")

    mails = [Mail("imap://u@h/INBOX;UID=9", reply(1, SENT))]
    with pytest.raises(OSError):
        load(con, "imap://u@h/INBOX", mails, ws.users, now=dt.datetime(2026, 3, 3),
             within=cursor_then_crash)  # fmt: skip
    assert con.execute("select count(*) from mailbox_cursors").fetchone() == (0,)
    assert con.execute("select count(*) from activities").fetchone() == (0,)
    con.close()


def test_a_dsn_without_the_returned_headers_matches_by_the_failed_recipient(
    project, tmp_path, capsys
):
    root, db = project
    dsn = (
        "From: MAILER-DAEMON@mx.example\r\nSubject: failure\r\nMessage-ID: <d1@mx.example>\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; REP@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b--\r\n"
    )
    eml = tmp_path / "dsn.eml"
    eml.write_bytes(dsn.encode())
    assert run(capsys, root, db, "import", str(eml))[0] == 0
    con = connect(db)
    [(contact_id, type_, message_id, detail)] = con.execute(
        "select contact_id, type, message_id, detail from activities"
    ).fetchall()
    con.close()
    assert (contact_id, type_, message_id) == ("rep", "email_bounced", SENT)
    assert json.loads(detail)["match"] == "address"
