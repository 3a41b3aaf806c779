"""The mailbox door end to end (SPEC 10 door 3), on real parts: emails sent by the send step
to a real SMTP server (aiosmtpd), their Message-IDs answered by replies, an out-of-office and
DSNs put into a real IMAP server (pymap), ``sequencer mailbox poll`` through the CLI, a real
DuckDB file, and the production tick for the effects. No mocks."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

from pipelines.cli import main
from pipelines.db import connect
from pipelines.outbox.send import send_due
from pipelines.workspace import load_workspace, missing_secrets
from tests.engagement.imap_helpers import FIXTURE_ID, Imap, fixture, free_port
from tests.tick_helpers import contact, enrollments, insert, tick
from tests.workspace_helpers import write_workspace

PASSWORD = "imap-pw"
SENT_AT = dt.datetime(2026, 3, 2, 14, 30)

USERS = """\
users:
  - id: alice
    email: alice@acme.example
    name: Alice Smith
    role: rep
    mailbox: {{host: 127.0.0.1, port: {smtp}, starttls: false}}
    inbox: {{host: 127.0.0.1, port: {imap}, username: alice, password_env: ALICE_IMAP_PW,
             tls: false}}
  - id: bob
    email: bob@acme.example
    role: rep
    inbox: {{host: 127.0.0.1, port: {dead}, username: bob, password_env: BOB_IMAP_PW,
             tls: false}}
  - id: bruno
    email: bruno@acme.example
    role: rep
    inbox: {{host: 127.0.0.1, port: {imap}, username: bruno, password_env: BRUNO_IMAP_PW,
             tls: false}}
  - id: carl
    email: carl@acme.example
    role: rep
    inbox: {{host: 127.0.0.1, port: {imap}, username: carl, password_env: CARL_IMAP_PW,
             tls: false}}
  - {{id: olga, email: olga@acme.example, role: admin}}
roles: {{rep: [view_sequences, create_sequences], admin: [admin]}}
"""
STEPS = """\
  - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Quick question",
     unsubscribe_link: false}
  - {id: bump, day: 3, action: email, template: intro.md.j2, thread: reply,
     unsubscribe_link: false}
  - {id: call, day: 10, action: follow_up}
"""
SEQUENCES = {
    "outbound": f"name: outbound\nowner: alice\naudience: {{where: ['true']}}\nsteps:\n{STEPS}",
    "later": "name: later\nowner: alice\nstarts_on: 2026-03-04\naudience: {where: ['true']}\n"
    f"steps:\n{STEPS}",
}
CONTACTS = ("rep", "addr", "ooo", "hard", "block", "soft", "quiet")


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def build(tmp_path, smtp_port: int, imap_port: int):
    users = USERS.format(smtp=smtp_port, imap=imap_port, dead=free_port())
    root = write_workspace(tmp_path / "ws", SEQUENCES, users=users)
    db = tmp_path / "db" / "sequencer.duckdb"
    con = connect(db)
    insert(con, "contacts", [contact(c) for c in CONTACTS])
    return root, db, con


def send_intro(root, db, con, sink) -> dict[str, str]:
    """Day 1: enrol everyone and send ``intro`` for real; contact → Message-ID as received."""
    tick(con, root, "2026-03-02 12:00")
    con.close()  # the tick locked that instance down; the send opens a fresh one
    con = connect(db)
    report = send_due(con, load_workspace(root), SENT_AT, env={}, backoff=lambda n: 0.0)
    con.close()
    assert report.sent == len(CONTACTS), report.problems
    by_address = {m.message["To"].addresses[0].addr_spec: m.message for m in sink.messages}
    return {c: by_address[f"{c}@x.example"]["Message-ID"] for c in CONTACTS}


def engagement(ids: dict[str, str]) -> list[bytes]:
    """What came back: a reply, a new mail from a contact (address match), an out-of-office,
    three DSNs, a copy of our own mail, and mail from a stranger."""
    return [
        fixture("reply_genuine.eml", {FIXTURE_ID: ids["rep"], "Ann@Example.com": "rep@x.example"}),
        b"From: addr@x.example\r\nTo: alice@acme.example\r\nSubject: pricing?\r\n"
        b"Message-ID: <new-thread-1@x.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n"
        b"\r\nCan you send me your pricing?\r\n",
        fixture("ooo_outlook_en.eml", {FIXTURE_ID: ids["ooo"], "ann@example.com": "ooo@x.example"}),
        fixture(
            "postfix_511_user_unknown.eml",
            {FIXTURE_ID: ids["hard"], "nobody@example.com": "hard@x.example"},
        ),
        fixture(
            "policy_block_5_7_1.eml",
            {FIXTURE_ID: ids["block"], "buyer@bigcorp.example": "block@x.example"},
        ),
        fixture(
            "delayed_4_2_2_mailbox_full.eml",
            {FIXTURE_ID: ids["soft"], "full@example.org": "soft@x.example"},
        ),
        fixture("from_us_bcc_copy.eml", {FIXTURE_ID: ids["quiet"]}),
        b"From: news@stranger.example\r\nTo: alice@acme.example\r\nSubject: Our newsletter\r\n"
        b"Message-ID: <nl-1@stranger.example>\r\n\r\nHello\r\n",
    ]


def mail_activities(con) -> dict[str, tuple]:
    rows = con.execute(
        "select contact_id, type, sequence, step, message_id, detail from activities"
        " where activity_id like 'mail:%' order by contact_id"
    ).fetchall()
    return {r[0]: (*r[1:5], json.loads(r[5])) for r in rows}


def test_poll_replies_auto_replies_and_bounces_then_their_effect_at_the_next_tick(
    tmp_path, smtp_sink, capsys, monkeypatch
):
    monkeypatch.setenv("ALICE_IMAP_PW", PASSWORD)
    monkeypatch.setenv("BOB_IMAP_PW", "whatever")  # set, but nothing listens on bob's port
    monkeypatch.delenv("BRUNO_IMAP_PW", raising=False)
    monkeypatch.setenv("CARL_IMAP_PW", "wrong")  # the server has no such account
    with Imap("alice", PASSWORD) as imap:
        root, db, con = build(tmp_path, smtp_sink.port, imap.port)
        ids = send_intro(root, db, con, smtp_sink)
        imap.append(*engagement(ids))

        # every user's inbox: bob's server is down, bruno's password is not set, carl's login
        # is refused: each reported, alice's is read all the same
        code, out, err = cli(capsys, "mailbox", "poll", "--project", str(root), "--db", str(db))
        assert code == 1
        errors = err.strip().splitlines()
        assert len(errors) == 3 and all(e.startswith("error: imap://") for e in errors)
        assert "imap://bob@127.0.0.1" in errors[0] and "cannot read the inbox" in errors[0]
        assert "imap://carl@127.0.0.1" in errors[2] and "cannot read the inbox" in errors[2]
        assert "BRUNO_IMAP_PW (user 'bruno' inbox password_env) is not set" in err
        [line] = [x for x in out.splitlines() if x.startswith("imap://alice@")]
        assert "8 message(s)" in line and "loaded 6" in line
        assert "not ours 1" in line and "sent by us 1" in line

        con = connect(db)
        got = mail_activities(con)
        assert {c: got[c][:4] for c in got} == {
            "addr": ("email_replied", "outbound", "intro", ids["addr"]),
            "block": ("email_soft_bounced", "outbound", "intro", ids["block"]),
            "hard": ("email_bounced", "outbound", "intro", ids["hard"]),
            "ooo": ("email_auto_replied", "outbound", "intro", ids["ooo"]),
            "rep": ("email_replied", "outbound", "intro", ids["rep"]),
            "soft": ("email_soft_bounced", "outbound", "intro", ids["soft"]),
        }
        assert got["addr"][4]["match"] == "address" and got["rep"][4]["match"] == "message_id"
        assert got["ooo"][4]["until"] == "2026-03-16"
        assert (got["hard"][4]["status"], got["block"][4]["status"]) == ("5.1.1", "5.7.1")
        assert got["soft"][4]["status"] == "4.2.2"
        occurred = con.execute(
            "select occurred_at from activities where contact_id = 'rep' and type = 'email_replied'"
        ).fetchone()
        assert occurred == (dt.datetime(2026, 3, 2, 22, 45),)  # the reply's Date, in UTC
        cursor = con.execute("select user_id, last_uid from mailbox_cursors").fetchall()
        con.close()
        assert [u for u, _ in cursor] == ["alice"]

        # polling again adds nothing, and nothing was marked read on the server
        code, out, _ = cli(capsys, "mailbox", "poll", "--user", "alice", "--project", str(root),
                           "--db", str(db))  # fmt: skip
        assert code == 0 and "0 message(s)" in out and "loaded 0" in out
        flags = imap.flags()
        assert len(flags) == 8 and not any("\\Seen" in f for f in flags.values())

        # a changed UIDVALIDITY reads the folder again: the same activities, nothing new
        con = connect(db)
        con.execute("update mailbox_cursors set uidvalidity = uidvalidity + 1")
        con.close()
        code, out, _ = cli(capsys, "mailbox", "poll", "--user", "alice", "--project", str(root),
                           "--db", str(db))  # fmt: skip
        assert code == 0 and "8 message(s)" in out and "loaded 0, already stored 6" in out
        assert "UIDVALIDITY changed" in out

    con = connect(db)
    assert len(mail_activities(con)) == 6
    tick(con, root, "2026-03-04 12:00")  # day 3 of outbound: bump; day 1 of later
    exits = {c: (status, reason) for s, c, _, status, reason, _ in enrollments(con, "outbound")}
    assert exits == {
        "rep": ("exited", "replied"),
        "addr": ("exited", "replied"),
        "hard": ("exited", "bounced"),
        "ooo": ("active", None),  # an auto-reply is not a reply
        "block": ("active", None),  # a policy block is a soft bounce: the address exists
        "soft": ("active", None),
        "quiet": ("active", None),  # our own copy of the mail is never a reply
    }
    later = {c for _, c, *_ in enrollments(con, "later")}
    assert later == set(CONTACTS) - {"hard"}  # a hard bounce suppresses the address
    bumps = con.execute(
        "select contact_id from actions where sequence = 'outbound' and step = 'bump'"
        " and status = 'due' order by all"
    ).fetchall()
    # ooo's out-of-office (until 2026-03-16) pauses its enrolment (SPEC 11): no bump yet
    assert [c for (c,) in bumps] == ["block", "quiet", "soft"]
    paused = con.execute(
        "select paused_until from enrollments where sequence = 'outbound' and contact_id = 'ooo'"
    ).fetchone()
    assert paused == (dt.date(2026, 3, 16),)
    con.close()


def one_send(db, contact_id: str, message_id: str) -> None:
    """A sent email as the send step records it (action row), for the tests that do not need
    an SMTP round trip; ``contact_id`` is enrolled in ``outbound``."""
    con = connect(db)
    insert(con, "contacts", [contact(contact_id)])
    con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on, enrolled_at,"
        " status, email) values ('outbound', ?, 'e1', '2026-03-02', '2026-03-02', 'active', ?)",
        [contact_id, f"{contact_id}@x.example"],
    )
    con.execute(
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step, day,"
        " action, occurrence_on, occurrence_at, status, message_id, finished_at) values"
        " ('k1', 'outbound', ?, 'e1', 'intro', 1, 'email', '2026-03-02', '2026-03-02 14:00',"
        " 'sent', ?, '2026-03-02 14:30')",
        [contact_id, message_id],
    )
    con.close()


def reply(n: int, to_id: str) -> bytes:
    return (
        f"From: rep@x.example\r\nTo: alice@acme.example\r\nSubject: Re: Quick question\r\n"
        f"Message-ID: <r{n}@x.example>\r\nIn-Reply-To: {to_id}\r\n"
        f"Date: Tue, 3 Mar 2026 1{n}:00:00 +0000\r\n\r\nAnswer {n}\r\n"
    ).encode()


def test_a_new_server_process_has_a_new_uidvalidity_and_the_cursor_restarts(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ALICE_IMAP_PW", PASSWORD)
    port = free_port()
    root = write_workspace(tmp_path / "ws", {}, users=_only_alice(port))
    db = tmp_path / "db.duckdb"
    one_send(db, "rep", "<k1@acme.example>")
    poll = ["mailbox", "poll", "--project", str(root), "--db", str(db)]
    with Imap("alice", PASSWORD, port) as imap:
        imap.append(reply(1, "<k1@acme.example>"))
        assert cli(capsys, *poll)[1].count("loaded 1") == 1
    with Imap("alice", PASSWORD, port) as imap:  # a new process: a new UIDVALIDITY
        imap.append(reply(1, "<k1@acme.example>"), reply(2, "<k1@acme.example>"))
        code, out, _ = cli(capsys, *poll)
    assert code == 0
    assert "2 message(s)" in out and "loaded 1, already stored 1" in out
    assert "UIDVALIDITY changed" in out
    con = connect(db)
    assert con.execute("select count(*) from activities").fetchone() == (2,)
    con.close()


def _only_alice(port: int) -> str:
    return textwrap.dedent(
        f"""\
        users:
          - id: alice
            email: alice@acme.example
            role: rep
            inbox: {{host: 127.0.0.1, port: {port}, username: alice, password_env: ALICE_IMAP_PW,
                     tls: false}}
        roles: {{rep: [view_sequences, create_sequences]}}
        """
    )


def test_a_missing_inbox_password_blocks_neither_send_nor_run(tmp_path, monkeypatch):
    """Only ``mailbox poll`` needs the inbox password: validate's and the blocking
    ``send_secrets_set`` check's ``missing_secrets`` do not ask for it."""
    monkeypatch.delenv("ALICE_IMAP_PW", raising=False)
    root = write_workspace(tmp_path / "ws", {"outbound": SEQUENCES["outbound"]},
                           users=_only_alice(free_port()))  # fmt: skip
    ws = load_workspace(root)
    assert ws.users.user("alice").inbox.tls is False
    assert missing_secrets(ws, {}) == []


def test_inbox_defaults_are_tls_on_port_993(tmp_path):
    users = _only_alice(1).replace("port: 1, ", "").replace(",\n             tls: false", "")
    ws = load_workspace(write_workspace(tmp_path / "ws", {}, users=users))
    inbox = ws.users.user("alice").inbox
    assert (inbox.port, inbox.tls) == (993, True)
