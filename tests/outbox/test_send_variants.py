"""Variants on the wire (issue 13 item 2): the tick decides, the send renders the variant's
subject and template to a real SMTP server on 127.0.0.1, and a later ``thread: reply`` step
answers the variant actually sent ("Re: <its subject>", In-Reply-To its Message-ID)."""

from __future__ import annotations

import datetime as dt

from pipelines.db import connect
from pipelines.outbox.send import send_due
from pipelines.project import Project
from pipelines.tick.experiments import bucket, variant_of
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import ENV, USERS
from tests.workspace_helpers import write_workspace

SEQUENCE = """\
name: ab
owner: alice
starts_on: 2026-03-02
audience: {where: ["true"]}
schedule: {time: "09:00", timezone: UTC}
steps:
  - id: intro
    day: 1
    action: email
    template: intro.md.j2
    subject: "Step subject"
    variants:
      - {id: a, subject: "Quick question, {{ contact.first_name }}"}
      - {id: b, subject: "An idea for {{ contact.first_name }}", template: idea.md.j2, weight: 2}
  - {id: bump, day: 3, action: email, template: bump.md.j2, thread: reply}
"""
TEMPLATES = {
    "intro.md.j2": "Hi {{ contact.first_name }}, a quick question.\n",
    "idea.md.j2": "Hello {{ contact.first_name }}, here is an idea.\n",
    "bump.md.j2": "Bumping this, {{ contact.first_name }}.\n",
}
NAMES = ["Ann", "Bo", "Cy", "Di", "Ed", "Fay", "Gus", "Hal", "Ida", "Jo", "Kai", "Lu"]
MONDAY = dt.datetime(2026, 3, 2, 10)


def no_wait(attempt: int) -> float:
    return 0.0


def test_each_variant_is_sent_and_its_reply_step_threads_on_its_subject(tmp_path, smtp_sink):
    users = USERS.format(
        port=smtp_sink.port, bob_port=smtp_sink.port, alice_limit=500, bob_limit=500,
        sms_url="http://127.0.0.1:9/send", bob_login="",
    )  # fmt: skip
    root = write_workspace(tmp_path / "ws", {"ab": SEQUENCE}, users=users, templates=TEMPLATES)
    con = connect(tmp_path / "db.duckdb")
    for i, name in enumerate(NAMES):
        con.execute(
            "insert into contacts (contact_id, email, first_name) values (?, ?, ?)",
            [f"c{i:02d}", f"{name.lower()}@example.com", name],
        )
    project, ws = Project(root), load_workspace(root)
    arms = ws.sequences["ab"].step("intro").variants
    expected = {f"{n.lower()}@example.com": variant_of(bucket("ab", f"c{i:02d}"), arms)
                for i, n in enumerate(NAMES)}  # fmt: skip
    assert set(expected.values()) == {"a", "b"}  # both arms among these contacts
    for day in (0, 2):
        at = MONDAY + dt.timedelta(days=day)
        assert not project.run(at, con=con, allow_future=True).problems
        report = send_due(con, ws, at, env=ENV, backoff=no_wait)
        assert report.sent == len(NAMES) and not report.problems
    first = {m.message["To"].addresses[0].addr_spec: m.message for m in smtp_sink.messages[:12]}
    second = {m.message["To"].addresses[0].addr_spec: m.message for m in smtp_sink.messages[12:]}
    for address, variant in expected.items():
        name = address.split("@")[0].title()
        intro, bump = first[address], second[address]
        subject = f"Quick question, {name}" if variant == "a" else f"An idea for {name}"
        body = "a quick question" if variant == "a" else "here is an idea"
        assert intro["Subject"] == subject
        assert body in intro.get_body(("plain",)).get_content()
        assert bump["Subject"] == f"Re: {subject}"
        assert bump["In-Reply-To"] == intro["Message-ID"]
    recorded = con.execute(
        "select c.email, a.variant, a.subject from actions as a join contacts as c"
        " using (contact_id) where a.step = 'intro'"
    ).fetchall()
    assert {email: variant for email, variant, _ in recorded} == expected
    assert all(subject == first[email]["Subject"] for email, _, subject in recorded)
    bump_variants = con.execute("select distinct variant from actions where step = 'bump'")
    assert bump_variants.fetchall() == [(None,)]
    con.close()


def test_an_action_whose_variant_left_the_file_is_held(tmp_path, smtp_sink):
    """A decided variant removed from the file before the send: held, with the reason, and
    nothing sent (as a removed step)."""
    users = USERS.format(
        port=smtp_sink.port, bob_port=smtp_sink.port, alice_limit=500, bob_limit=500,
        sms_url="http://127.0.0.1:9/send", bob_login="",
    )  # fmt: skip
    root = write_workspace(tmp_path / "ws", {"ab": SEQUENCE}, users=users, templates=TEMPLATES)
    con = connect(tmp_path / "db.duckdb")
    con.execute("insert into contacts (contact_id, email, first_name) values ('c', 'c@x.io', 'C')")
    assert not Project(root).run(MONDAY, con=con, allow_future=True).problems
    [(variant,)] = con.execute("select variant from actions").fetchall()
    edited = SEQUENCE.replace(f"{{id: {variant}, subject", "{id: c, subject")
    assert edited != SEQUENCE
    write_workspace(tmp_path / "ws", {"ab": edited}, users=users, templates=TEMPLATES)
    report = send_due(con, load_workspace(root), MONDAY, env=ENV, backoff=no_wait)
    assert report.sent == 0 and smtp_sink.messages == []
    status, error = con.execute("select status, error from actions").fetchone()
    assert status == "held" and f"variant {variant!r} is no longer in step 'intro'" in error
