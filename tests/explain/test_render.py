"""``preview SEQUENCE --render CONTACT`` (the exact message at the next occurrence, nothing
written or sent) and the gap line of plain ``preview``, on tests/explain/scenario.py with
the real SMTP sink."""

from __future__ import annotations

import datetime as dt

from pipelines.cli import main
from pipelines.cli_why import HIDDEN_HEADERS
from pipelines.db import connect
from pipelines.project import Project
from tests.explain.scenario import ENV, T1, T2, add_reply, build, fingerprint

BEFORE_T1 = T1 - dt.timedelta(hours=2)
SHOWN_HEADERS = ["Message-ID", "Date", "From", "To", "Subject", "List-Unsubscribe"]


def headers(msg) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in msg.items() if k.lower() not in HIDDEN_HEADERS]


def parts(msg) -> tuple[str, ...]:
    """The text and HTML parts, line ends as LF (the wire's are CRLF)."""
    return tuple(
        msg.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html")
    )


def test_render_is_what_the_send_step_then_sends_and_writes_nothing(tmp_path, smtp_sink, capsys):
    root, db = build(tmp_path / "ws", smtp_sink.port)
    p = Project(root)
    before = fingerprint(db)
    found = p.render("outbound", "c_enter", BEFORE_T1, env=ENV)
    assert fingerprint(db) == before and smtp_sink.messages == []
    assert (found.occurrence_on, found.occurrence_at, found.reasons) == (T1.date(), T1, [])
    [rehearsal] = found.rendered
    rendered = rehearsal.prepared.message
    assert rehearsal.action["step"] == "intro" and rehearsal.held is None
    p.run(T1, allow_future=True)
    p.send(T1, env=ENV)
    [received] = smtp_sink.messages
    sent = received.message
    # the same email: every header (the Date is the send's clock, here within the second of
    # the occurrence's instant the render assumed), the text and HTML parts, tracking links
    assert headers(rendered) == headers(sent)
    assert parts(rendered) == parts(sent)
    assert "https://t.acme.example/c/" in parts(sent)[1]
    assert received.rcpt_tos == rehearsal.prepared.recipients == ["enter@x.example"]
    [(key, message_id)] = _sent(db)
    assert (rehearsal.action["idempotency_key"], rendered["Message-ID"]) == (key, message_id)


def _sent(db):
    con = connect(db, read_only=True)
    try:
        return con.execute(
            "select idempotency_key, message_id from actions where status = 'sent'"
        ).fetchall()
    finally:
        con.close()


def test_render_on_the_command_line_prints_headers_body_and_key(
    tmp_path, smtp_sink, capsys, monkeypatch
):
    root, db = build(tmp_path / "ws", smtp_sink.port)
    before = fingerprint(db)
    args = ["--project", str(root), "--as-of", BEFORE_T1.isoformat()]
    monkeypatch.setenv("TRACKING_SECRET", ENV["TRACKING_SECRET"])
    assert main(["preview", "outbound", "--render", "c_enter", *args]) == 0
    out = capsys.readouterr().out
    found = Project(root).render("outbound", "c_enter", BEFORE_T1, env=ENV)
    msg = found.rendered[0].prepared.message
    lines = out.splitlines()
    assert lines[0] == "render c_enter in outbound: next occurrence 2026-03-02 (14:30Z)"
    assert lines[1] == (
        f"email step intro (day 1), idempotency key {found.rendered[0].action['idempotency_key']}"
    )
    for name in SHOWN_HEADERS:
        assert f"  {name}: {msg[name]}" in lines
    text, markup = parts(msg)
    assert "\n".join(x.removeprefix("  ") for x in lines).count(text.rstrip("\n")) == 1
    assert out.rstrip().endswith("(nothing was written or sent)")
    assert fingerprint(db) == before and smtp_sink.messages == []


def test_render_says_why_nothing_is_due(tmp_path, smtp_sink, capsys):
    root, db = build(tmp_path / "ws", smtp_sink.port)
    p = Project(root)

    def reasons(contact_id, at):
        found = p.render("outbound", contact_id, at, env=ENV)
        return [r.action["step"] for r in found.rendered], found.reasons

    assert reasons("c_stage", BEFORE_T1) == (
        [],
        [
            "not enrolled, and not in the audience at that occurrence "
            "(`sequencer why outbound c_stage` shows which condition keeps it out)"
        ],
    )
    assert reasons("c_excl", BEFORE_T1) == (
        [],
        ["not enrolled, and does not enter at that occurrence: exclusive_with"],
    )
    p.run(T1, allow_future=True)
    p.send(T1, env=ENV)
    before = fingerprint(db)
    # at T2: bump's `when` is false (no open), the call task is due and rendered
    steps, why = reasons("c_enter", T1 + dt.timedelta(hours=1))
    assert steps == ["call"] and why == [
        "step bump (day 2) is skipped: its `when` is false at that occurrence "
        "(enrollment.opened_previous_email)"
    ]
    task = p.render("outbound", "c_enter", T1 + dt.timedelta(hours=1), env=ENV).rendered[0]
    assert (task.prepared.task["title"], task.prepared.task["body"]) == (
        "Call C_Enter",
        "Call C_Enter",
    )
    p.run(T2, allow_future=True)
    p.send(T2, env=ENV)
    add_reply(db)
    assert reasons("c_enter", T2 + dt.timedelta(hours=6)) == (
        [],
        ["exits at that occurrence (replied): no step is decided"],
    )
    assert fingerprint(db) != before  # the run and send above wrote; the renders did not
    assert len(smtp_sink.messages) == 1


def test_preview_explains_the_gap_between_audience_and_entries(tmp_path, smtp_sink, capsys):
    root, db = build(tmp_path / "ws", smtp_sink.port)
    p = Project(root)

    def gap(at):
        assert main(["preview", "outbound", "--project", str(root), "--as-of", at]) == 0
        lines = capsys.readouterr().out.splitlines()
        return next(x for x in lines if x.startswith("audience ")), p.preview("outbound", at)

    line, found = gap(BEFORE_T1.isoformat())
    # c_enter enters; c_unsub, c_excl, c_noemail, c_zdup are the audience it does not let in
    assert line == (
        "audience 5, would enter 1: 1 unsubscribed, 1 exclusive_with, 1 no email, "
        "1 duplicate emails"
    )
    assert found.next_occurrence["entries"] == 1 == found.audience.gap["enters"]
    p.run(T1, allow_future=True)
    assert gap((T1 + dt.timedelta(hours=1)).isoformat())[0] == (
        "audience 5, would enter 0: 1 already enrolled, 1 unsubscribed, 1 exclusive_with, "
        "1 no email, 1 duplicate emails"
    )
    p.run(T2, allow_future=True)
    add_reply(db)  # c_enter exits at T3, before that occurrence's entries
    assert gap((T2 + dt.timedelta(hours=6)).isoformat())[0] == (
        "audience 5, would enter 0: 1 previously enrolled, 1 unsubscribed, 1 exclusive_with, "
        "1 no email, 1 duplicate emails"
    )
