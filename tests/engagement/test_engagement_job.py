"""The engagement doors as Dagster runs (SPEC 10, item 5): ``engagement_job`` executed
in-process on a real instance loads the tracking server's spool, an ESP file of imports/ and a
real IMAP inbox (pymap) into a DuckDB file; its checks pass, and fail on planted bad rows."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from pipelines.db import connect
from pipelines.engagement.spool import SPOOL_DIR, Spool, event_row
from tests.engagement.imap_helpers import FIXTURE_ID, Imap, fixture
from tests.engagement.test_mailbox import PASSWORD, build, send_intro


def run_job(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from pipelines.definitions import defs

    job = defs().resolve_job_def("engagement_job")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_engagement_job_loads_every_door_and_its_checks_catch_bad_rows(
    tmp_path, smtp_sink, monkeypatch
):
    with Imap("alice", PASSWORD) as imap:
        root, db, con = build(tmp_path, smtp_sink.port, imap.port)
        ids = send_intro(root, db, con, smtp_sink)
        # door 3: a reply in alice's inbox
        swap = {FIXTURE_ID: ids["rep"], "Ann@Example.com": "rep@x.example"}
        imap.append(fixture("reply_genuine.eml", swap))
        # door 1: an open the tracking server spooled (the server's own writer and row)
        spool = Spool(root / SPOOL_DIR)
        token = {"c": "ooo", "m": ids["ooo"], "s": "outbound", "t": "intro", "d": 20514}
        at = dt.datetime(2026, 3, 2, 16, 0)
        spool.submit(event_row("email_opened", token, at, {"user_agent": "x"})).result()
        spool.close()
        # door 2: a SendGrid event file dropped into imports/
        (root / "imports").mkdir(exist_ok=True)
        event = {"email": "soft@x.example", "event": "delivered", "timestamp": 1772463600,
                 "smtp-id": ids["soft"], "sg_event_id": "ev-1", "sg_message_id": "m.1"}  # fmt: skip
        (root / "imports" / "sendgrid_events.json").write_text(json.dumps([event]))
        monkeypatch.setenv("ALICE_IMAP_PW", PASSWORD)  # the other inboxes: reported, skipped
        monkeypatch.setenv("SEQUENCER_PROJECT", str(root))
        monkeypatch.setenv("SEQUENCER_DB", str(db))
        instance = dg.DagsterInstance.ephemeral()
        result = run_job(instance)
        materialized = {
            e.event_specific_data.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        }
        assert materialized == {"tracking_events", "esp_events", "mailbox_messages"}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"events_loaded_once": True, "replies_match_our_sends": True}
        con = connect(db)
        doors = con.execute(
            "select split_part(activity_id, ':', 1), contact_id, type, message_id"
            " from activities where type <> 'email_sent' order by 1"
        ).fetchall()
        assert doors == [
            ("mail", "rep", "email_replied", ids["rep"]),
            ("sendgrid", "soft", "email_delivered", ids["soft"]),
            ("srv", "ooo", "email_opened", ids["ooo"]),
        ]
        # planted: a reply matched to a Message-ID we never sent, a spool event stored twice
        con.execute(
            "insert into activities (activity_id, contact_id, type, occurred_at, message_id)"
            " select 'mail:planted', 'rep', 'email_replied', now(), '<never-sent@acme.example>'"
            " union all select activity_id, contact_id, type, occurred_at, message_id"
            " from activities where activity_id like 'srv:%'"
        )
        con.close()
        again = run_job(instance)  # every door again: nothing new, the checks see the plants
    assert {c.check_name for c in again.get_asset_check_evaluations() if not c.passed} == {
        "events_loaded_once", "replies_match_our_sends",
    }  # fmt: skip
    con = connect(db)
    assert con.execute("select count(*) from activities where type <> 'email_sent'").fetchone() == (
        5,
    )
    con.close()
