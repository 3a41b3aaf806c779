"""The Dagster layer: Definitions load, schedule and sensor, asset checks, a whole-graph run,
and the instance file (dagster.yaml)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines import db
from pipelines.defs.resources import AS_OF_TAG, SequencerResource, as_of_run_config
from pipelines.demo.smtp_sink import SmtpSink
from tests.delivery_fixtures import ENV, add_action, seed_contacts
from tests.delivery_fixtures import write_workspace as write_delivery_workspace
from tests.workspace_helpers import USERS, write_workspace

ROOT = Path(__file__).resolve().parent.parent
ASSETS = {"accounts", "contacts", "activities", "contact_properties", "compiled_sequences",
          "tick", "send", "metrics", "tracking_events", "mailbox_messages",
          "esp_events"}  # fmt: skip
CHECKS = {"accounts_expectations", "contacts_expectations", "activities_expectations",
          "all_sequences_compile", "duplicate_actions", "actions_after_exit",
          "duplicate_idempotency_keys", "send_secrets_set", "events_loaded_once",
          "replies_match_our_sends"}  # fmt: skip
BLOCKING = {"duplicate_actions", "actions_after_exit", "duplicate_idempotency_keys",
            "send_secrets_set"}  # fmt: skip
DATA_CHECKS = BLOCKING - {"send_secrets_set"}  # offending-rows queries over the outputs


def load_defs() -> dg.Definitions:
    from pipelines.definitions import defs

    return defs()


@pytest.fixture(scope="module")
def repo():
    return load_defs().get_repository_def()


@pytest.fixture(scope="module")
def checks() -> dict[str, dg.AssetChecksDefinition]:
    return {next(iter(c.check_specs)).name: c for c in load_defs().asset_checks}


def test_every_asset_check_schedule_and_sensor_is_defined(repo):
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} == ASSETS
    checks = {k.name: k for k in repo.asset_graph.asset_check_keys}
    assert set(checks) == CHECKS
    for name in BLOCKING:
        assert checks[name].asset_key == dg.AssetKey("tick")
        assert repo.asset_graph.get_check_spec(checks[name]).blocking
    assert {s.name for s in repo.schedule_defs} == {
        "tick_every_15_minutes", "engagement_every_5_minutes",
    }  # fmt: skip
    assert {s.name for s in repo.sensor_defs} == {"new_import_files"}
    assert {"ingest_job", "tick_job", "engagement_job"} <= {j.name for j in repo.get_all_jobs()}
    assert set(repo.get_top_level_resources()) == {"sequencer"}


def test_every_step_that_opens_the_database_shares_the_writer_pool(repo):
    for key, assets_def in repo.assets_defs_by_key.items():
        assert assets_def.op.pool == "duckdb_writer", key
    for checks_def in load_defs().asset_checks:
        assert checks_def.op.pool == "duckdb_writer", checks_def.check_keys


def test_schedule_passes_the_scheduled_instant_as_as_of(repo):
    schedule = repo.get_schedule_def("tick_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    scheduled = dt.datetime(2026, 3, 2, 9, 45, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    context = dg.build_schedule_context(scheduled_execution_time=scheduled)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags[AS_OF_TAG] == "2026-03-02T14:45:00"
    assert request.run_config == as_of_run_config("2026-03-02T14:45:00")
    assert request.run_config["ops"]["tick"]["config"]["as_of"] == "2026-03-02T14:45:00"


def test_sensor_requests_an_ingest_for_new_files_only(tmp_path, repo):
    sensor = repo.get_sensor_def("new_import_files")
    resources = {"sequencer": SequencerResource(project_dir=str(tmp_path))}
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "contacts_old.csv").write_text("contact_id\n")
    first = sensor.evaluate_tick(dg.build_sensor_context(resources=resources))
    assert len(first.run_requests) == 1  # nothing seen yet: the old file is new to the sensor
    cursor = first.cursor
    (imports / "contacts_new.csv").write_text("contact_id\n")
    (imports / ".contacts_partial.csv").write_text("contact_id\n")  # a copy in flight
    second = sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, resources=resources))
    [request] = second.run_requests
    assert request.tags["sequencer/new_files"] == "contacts_new.csv"
    assert request.job_name in (None, "ingest_job")
    third = sensor.evaluate_tick(dg.build_sensor_context(cursor=second.cursor, resources=resources))
    assert not third.run_requests and third.skip_message
    old = imports / "contacts_old.csv"
    os.utime(old, ns=(time.time_ns(), old.stat().st_mtime_ns + 10**9))  # changed: new again
    fourth = sensor.evaluate_tick(
        dg.build_sensor_context(cursor=second.cursor, resources=resources)
    )
    assert fourth.run_requests[0].tags["sequencer/new_files"] == "contacts_old.csv"
    assert json.loads(fourth.cursor).keys() == {"contacts_old.csv", "contacts_new.csv"}


def run_check(checks, name: str, resource: SequencerResource) -> dg.AssetCheckResult:
    """Invoke one asset check directly, as Dagster would, against ``resource``."""
    return checks[name](sequencer=resource)


def plant_action(con, key: str, step: str = "intro", at: str = "2026-03-02 14:30:00") -> None:
    con.execute(
        "insert into actions (idempotency_key, sequence, contact_id, enrollment_id, step, day,"
        " action, occurrence_on, occurrence_at, status) values"
        " (?, 's1', 'c1', 'e1', ?, 1, 'email', cast(? as date), ?, 'due')",
        [key, step, at[:10], at],
    )


def test_output_checks_pass_on_good_rows_and_fail_on_planted_bad_ones(tmp_path, checks):
    resource = SequencerResource(project_dir=str(tmp_path), db_path=str(tmp_path / "x.duckdb"))
    con = db.connect(resource.database)
    con.execute(
        "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on, enrolled_at,"
        " status) values ('s1', 'c1', 'e1', '2026-03-02', '2026-03-02 14:30:00', 'active')"
    )
    plant_action(con, "k1")
    plant_action(con, "k2", step="bump", at="2026-03-04 14:30:00")
    con.close()
    for name in DATA_CHECKS:
        assert run_check(checks, name, resource).passed, name

    con = db.connect(resource.database)
    plant_action(con, "k1-again")  # a second action for the same enrolment and step
    con.execute(
        "update enrollments set status = 'exited', exit_reason = 'replied',"
        " exited_on = '2026-03-03', exited_at = '2026-03-03 14:30:00'"
    )
    con.close()
    duplicate = run_check(checks, "duplicate_actions", resource)
    assert not duplicate.passed and duplicate.metadata["offending_rows"].value == 1
    after_exit = run_check(checks, "actions_after_exit", resource)
    assert not after_exit.passed
    assert "k2" in json.dumps(after_exit.metadata["sample"].value)
    assert run_check(checks, "duplicate_idempotency_keys", resource).passed


def test_duplicate_idempotency_keys_check_fails_on_a_shared_or_empty_key(tmp_path, checks):
    """Keys k1 and k2: pass. The primary key forbids a second k1, so the table is first
    copied without it (as a restore or a schema change could) and k1 planted again: one
    offending row, k1 held by 2 actions. An empty key (which the primary key allows) adds a
    second offending row."""
    resource = SequencerResource(project_dir=str(tmp_path), db_path=str(tmp_path / "x.duckdb"))
    con = db.connect(resource.database)
    plant_action(con, "k1")
    plant_action(con, "k2", step="bump", at="2026-03-04 14:30:00")
    con.close()
    assert run_check(checks, "duplicate_idempotency_keys", resource).passed

    con = db.connect(resource.database)
    con.execute("create or replace table actions as select * from actions")  # no primary key
    plant_action(con, "k1", step="bump")
    con.close()
    shared = run_check(checks, "duplicate_idempotency_keys", resource)
    assert not shared.passed and shared.metadata["offending_rows"].value == 1
    assert shared.metadata["sample"].value == [{"idempotency_key": "k1", "actions": "2"}]

    con = db.connect(resource.database)
    plant_action(con, "", step="call")
    con.close()
    empty = run_check(checks, "duplicate_idempotency_keys", resource)
    assert not empty.passed and empty.metadata["offending_rows"].value == 2
    assert [r["idempotency_key"] for r in empty.metadata["sample"].value] == ["", "k1"]


def plant_blocking_failure(con, check: str | None, at: dt.datetime, monkeypatch) -> None:
    """Rows (or an environment) that fail exactly ``check`` and no other blocking check
    (None: plant nothing)."""
    if check == "send_secrets_set":  # the config mistake of issue 9: no tracking secret
        monkeypatch.delenv("TRACKING_SECRET")
    elif check == "duplicate_actions":  # a second action for c1's intro, under another key
        con.execute(
            "insert into actions select * replace ('planted' as idempotency_key,"
            " 'skipped' as status) from actions"
        )
    elif check == "actions_after_exit":  # c3 exited an hour before its intro was decided
        con.execute(
            "insert into enrollments (sequence, contact_id, enrollment_id, enrolled_on,"
            " enrolled_at, status, exit_reason, exited_on, exited_at) values ('outbound',"
            " 'c3', 'e-c3', ?, ?, 'exited', 'manual', ?, ?)",
            [at.date(), at - dt.timedelta(days=1), at.date(), at - dt.timedelta(hours=1)],
        )
        add_action(con, "c3", "intro", at)
    elif check == "duplicate_idempotency_keys":  # c1's key again, on another step
        con.execute("create or replace table actions as select * from actions")  # no primary key
        con.execute(
            "insert into actions select * replace ('bump' as step, 'skipped' as status)"
            " from actions"
        )


@pytest.mark.parametrize("failing", [None, *sorted(BLOCKING)])
def test_a_failed_blocking_check_stops_the_send_in_a_real_run(tmp_path, monkeypatch, failing):
    """Materialize tick, send and the blocking checks (dg.materialize, the real assets)
    on a database holding one due email to c1 (alice's sequence `outbound`, alice's mailbox
    on a real SMTP sink). Nothing planted: every check passes, send materializes and c1's
    email goes out. With rows that fail one check (`failing`), or no TRACKING_SECRET for
    `send_secrets_set`: that check alone fails, tick materializes, send does not, the sink
    receives nothing and c1's action stays `due` (not `held`)."""
    from pipelines.defs import runs

    at = dt.datetime(2026, 3, 2, 14, 30)
    for name, value in ENV.items():  # every secret `outbound` needs (tracking, SMS token)
        monkeypatch.setenv(name, value)
    with SmtpSink() as sink:
        project = write_delivery_workspace(tmp_path / "ws", sink.port)
        resource = SequencerResource(project_dir=str(project), db_path=str(tmp_path / "x.duckdb"))
        con = db.connect(resource.database)
        seed_contacts(con)
        email = add_action(con, "c1", "intro", at)
        plant_blocking_failure(con, failing, at, monkeypatch)
        con.close()
        as_of = {"config": {"as_of": (at + dt.timedelta(hours=1)).isoformat()}}
        result = dg.materialize(
            [runs.tick, runs.send, *(getattr(runs, name) for name in sorted(BLOCKING))],
            resources={"sequencer": resource},
            run_config={"ops": {"tick": as_of, "send": as_of}},
            raise_on_error=False,
        )
        delivered = [m.rcpt_tos[0] for m in sink.messages]
    evaluations = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert evaluations == {name: name != failing for name in BLOCKING}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    con = db.connect(resource.database)
    status = con.execute("select status from actions where idempotency_key = ?", [email])
    status = status.fetchone()[0]
    con.close()
    if failing is None:
        assert (delivered, status) == (["ann@example.com"], "sent")
        assert materialized == {"tick", "send"} and result.success
    else:
        assert (delivered, status) == ([], "due")
        assert materialized == {"tick"} and not result.success


def test_import_check_fails_on_a_failed_expectation_of_the_latest_batch(tmp_path, checks):
    resource = SequencerResource(project_dir=str(tmp_path), db_path=str(tmp_path / "x.duckdb"))
    con = db.connect(resource.database)
    insert = (
        "insert into validation_results (file, entity, expectation, success, element_count,"
        " unexpected_count, validated_at) values (?, 'contacts', 'unique(contact_id)', ?, 10, ?,"
        " ?)"
    )
    con.execute(insert, ["contacts_a.csv", True, 0, "2026-03-01 10:00:00"])
    con.close()
    assert run_check(checks, "contacts_expectations", resource).passed
    con = db.connect(resource.database)
    con.execute(insert, ["contacts_a.csv", False, 2, "2026-03-02 10:00:00"])
    con.close()
    result = run_check(checks, "contacts_expectations", resource)
    assert not result.passed and result.metadata["offending_rows"].value == 1
    assert run_check(checks, "accounts_expectations", resource).passed  # other entities: fine


def test_dagster_yaml_is_a_valid_instance_with_queue_pool_and_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # as the Makefile sets it
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


# --- the whole graph ---------------------------------------------------------------------

SEQUENCE = """
    name: welcome
    owner: alice
    type: classic
    starts_on: 2026-03-02
    audience:
      record: contact
      where: [lifecycle_stage = 'lead']
    schedule: {time: "09:30", timezone: America/New_York, exclude_weekends: false}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hello"}
      - {id: call-1, day: 2, action: call_reminder, note: "Call {{ contact.first_name }}"}
"""
CONTACTS = """\
contact_id,email,first_name,last_name,account_id,owner_id,created_at,updated_at,lifecycle_stage
C1,ana@a.example,Ana,A,A1,alice,2026-01-01,2026-01-01,lead
C2,ben@a.example,Ben,B,A1,alice,2026-01-01,2026-01-01,lead
C3,cy@a.example,Cy,C,A1,alice,2026-01-01,2026-01-01,customer
"""
ACCOUNTS = """\
account_id,name,domain,owner_id,created_at,updated_at
A1,Acme,a.example,alice,2026-01-01,2026-01-01
"""
ACTIVITIES = """activity_id,contact_id,type,occurred_at
H1,C1,call_outgoing,2026-02-01T10:00:00Z
"""
# Rows after the ticks of 2026-03-02 and 2026-03-03, derived from the files above:
EXPECTED_COUNTS = {
    "contacts": 3,  # C1, C2, C3
    "accounts": 1,  # A1
    "activities": 3,  # H1, and one email_sent per intro (C1, C2)
    "contact_properties": 3,  # one per contact
    "enrollments": 2,  # the two leads C1, C2 (C3 is a customer)
    "actions": 4,  # intro on day 1 and call-1 on day 2, for C1 and C2
    "tasks": 2,  # the two call reminders
    "occurrences": 2,  # 09:30 New York on 03-02 and on 03-03
    "runs": 6,  # a tick, a send and a metrics build per tick job
    "sequence_metrics": 3,  # 'all' + the days 03-02 (intro) and 03-03 (call-1)
    "step_metrics": 5,  # 'all' per step (2) + intro on 03-02 and 03-03 (left) + call-1 on 03-03
    "email_outcomes": 2,  # one per sent email
    "variant_metrics": 0,  # issue 13: built and published, empty (no step with variants)
    "holdout_metrics": 0,  # nor a sequence with a holdout
}
OUTPUT_TABLES = tuple(EXPECTED_COUNTS)
ENGINE_MODULES = (
    "pipelines.ingest.load",
    "pipelines.ingest.quality",
    "pipelines.tick.run",
    "pipelines.outbox.send",
)


def test_materialize_the_whole_graph_into_a_file_database(tmp_path, monkeypatch):
    # The assets import these lazily: a renamed module must fail here, not be skipped, nor be
    # found in another checkout (an editable install's finder falls back to its own tree).
    found = {n: importlib.util.find_spec(n) for n in ENGINE_MODULES}
    assert [n for n, spec in found.items() if spec is None] == []
    assert {n: Path(spec.origin) for n, spec in found.items()} == {
        n: ROOT / (n.replace(".", "/") + ".py") for n in ENGINE_MODULES
    }
    sink = SmtpSink()
    mailbox = {"host": "127.0.0.1", "port": sink.port, "starttls": False}
    users = {
        **USERS,
        "users": [{**u, "mailbox": mailbox} for u in USERS["users"]],
        "tracking": {"base_url": "https://t.acme.example", "secret_env": "TRACKING_SECRET"},
    }
    monkeypatch.setenv("TRACKING_SECRET", "test-secret")
    project = write_workspace(tmp_path / "ws", {"welcome": SEQUENCE}, users=users)
    (project / "imports").mkdir()
    (project / "imports" / "contacts.csv").write_text(CONTACTS)
    (project / "imports" / "accounts.csv").write_text(ACCOUNTS)
    (project / "imports" / "activities.csv").write_text(ACTIVITIES)
    database = tmp_path / "db" / "sequencer.duckdb"
    monkeypatch.setenv("SEQUENCER_PROJECT", str(project))  # the EnvVar overrides
    monkeypatch.setenv("SEQUENCER_DB", str(database))
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    ingest = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance)
    assert ingest.success
    tick_job = defs.resolve_job_def("tick_job")

    def tick(as_of: str) -> dg.ExecuteInProcessResult:  # what the schedule requests
        result = tick_job.execute_in_process(
            run_config=as_of_run_config(as_of), instance=instance, tags={AS_OF_TAG: as_of}
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} >= BLOCKING | {"all_sequences_compile"}
        assert all(c.passed for c in checks), [c for c in checks if not c.passed]
        return result

    with sink:
        tick("2026-03-02T15:00:00")  # day 1 (09:30 New York = 14:30Z): the intro emails
        day2 = tick("2026-03-03T15:00:00")  # day 2: the call reminders
        (built,) = day2.asset_materializations_for_node("metrics")
        assert {"variant_metrics", "holdout_metrics"} <= set(built.metadata)
        sent = sorted(m.rcpt_tos[0] for m in sink.messages)
        snapshot = project / ".sequencer" / "snapshot.duckdb"
        con = duckdb.connect(str(snapshot), read_only=True)  # the reader's path
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in OUTPUT_TABLES}
        totals = con.execute("select enrolled, sent from sequence_metrics where period = 'all'")
        totals = totals.fetchall()
        con.close()
        tick("2026-03-03T15:00:00")  # a retry of the same as_of
        resent = len(sink.messages) - len(sent)
    assert sent == ["ana@a.example", "ben@a.example"]
    assert counts == EXPECTED_COUNTS
    assert totals == [(2, 2)]  # the two leads, not the customer
    assert resent == 0  # nothing sent twice
    con = db.connect(database)
    assert con.execute("select count(*) from actions").fetchone()[0] == counts["actions"]
    con.close()


def test_dagster_validates_the_definitions_as_dg_check_defs_does(tmp_path):
    """``dagster definitions validate`` (the check ``dg check defs`` runs in ``make test``)
    loads the code location in a fresh process and finds no error."""
    (tmp_path / "dagster.yaml").write_text("", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_send_secrets_check_names_each_missing_secret(tmp_path, checks, monkeypatch):
    """`outbound` needs TRACKING_SECRET (tracked intro), SMS_TOKEN (its SMS step) and, once
    bob's mailbox logs in, BOB_SMTP_PASSWORD (its `html` step is sent from bob). All set:
    pass. None set: fail, one line per (sequence, secret) naming the variable."""
    project = write_delivery_workspace(tmp_path / "ws", 2525, bob_login=True)
    resource = SequencerResource(project_dir=str(project), db_path=str(tmp_path / "x.duckdb"))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert run_check(checks, "send_secrets_set", resource).passed
    for name in ENV:
        monkeypatch.delenv(name)
    result = run_check(checks, "send_secrets_set", resource)
    assert not result.passed and result.metadata["missing"].value == 3
    text = json.dumps(result.metadata["secrets"].value)
    for name in ENV:
        assert f"environment variable {name} (" in text
    assert text.count("is not set") == 3


def test_a_rejected_import_file_is_reported_and_the_others_load(tmp_path, monkeypatch):
    project = write_workspace(tmp_path / "ws", {})
    (project / "imports").mkdir()
    (project / "imports" / "contacts.csv").write_text(CONTACTS)
    (project / "imports" / "contacts_latin1.csv").write_bytes(
        "contact_id,email,first_name\nc9,z@x.example,Jürgen\n".encode("latin-1")
    )
    database = tmp_path / "db" / "sequencer.duckdb"
    monkeypatch.setenv("SEQUENCER_PROJECT", str(project))
    monkeypatch.setenv("SEQUENCER_DB", str(database))
    result = (
        load_defs()
        .resolve_job_def("ingest_job")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    assert result.success  # one odd file does not stop the scheduled run
    (contacts,) = result.asset_materializations_for_node("contacts")
    rejected = contacts.metadata["rejected_files"].value
    assert list(map(lambda f: Path(f).name, rejected)) == ["contacts_latin1.csv"]
    assert "UTF-8" in next(iter(rejected.values()))
    con = duckdb.connect(str(database), read_only=True)
    expected = len(CONTACTS.strip().splitlines()) - 1
    assert con.execute("select count(*) from contacts").fetchone()[0] == expected
    con.close()


def test_the_backtest_job_writes_the_decisions_under_the_project(tmp_path, monkeypatch):
    """``backtest_job`` in process: the run config names the sequence and the dates; the
    Parquet lands in PROJECT/.sequencer/backtests/ and the real database is unchanged."""
    project = write_workspace(tmp_path / "ws", {"welcome": BACKTESTED})
    database = project / ".sequencer" / "sequencer.duckdb"
    con = db.connect(database)
    con.execute("insert into contacts (contact_id, email) values ('c1', 'c1@x.example')")
    con.close()
    before = database.read_bytes()
    monkeypatch.setenv("SEQUENCER_PROJECT", str(project))
    monkeypatch.delenv("SEQUENCER_DB", raising=False)
    config = {"sequence": "welcome", "from_date": "2026-03-02", "to_date": "2026-03-03"}
    result = (
        load_defs()
        .resolve_job_def("backtest_job")
        .execute_in_process(
            run_config={"ops": {"backtest": {"config": config}}},
            instance=dg.DagsterInstance.ephemeral(),
        )
    )
    assert result.success
    out = project / ".sequencer" / "backtests" / "welcome_2026-03-02_2026-03-03.parquet"
    assert result.output_for_node("backtest") == str(out)
    rows = duckdb.sql(f"select contact_id, step, status from read_parquet('{out}')").fetchall()
    assert rows == [("c1", "intro", "due")]
    assert database.read_bytes() == before


BACKTESTED = """
    name: welcome
    owner: alice
    audience: {where: ["true"]}
    schedule: {time: "09:00", timezone: UTC}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
"""
