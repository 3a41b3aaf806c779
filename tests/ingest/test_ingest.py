"""Ingest (SPEC 3): formats, quarantine with exact lines, merge rules, custom columns, GX."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from pipelines.db import connect
from pipelines.errors import IngestError
from pipelines.ingest.load import detect_entity, ingest_file, ingest_files

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ingest"


@pytest.fixture
def con(db_path):
    con = connect(db_path)
    yield con
    con.close()


def ingest(con, name, **kwargs):
    return ingest_file(con, FIXTURES / name, validate_with_gx=kwargs.pop("gx", False), **kwargs)


def quarantined(con, name):
    return con.execute(
        "select line, reason from quarantine where file like '%' || $1 order by line", [name]
    ).fetchall()


def test_detect_entity():
    assert detect_entity(Path("x/contacts_march.csv")) == "contacts"
    assert detect_entity(Path("accounts.parquet")) == "accounts"
    assert detect_entity(Path("activities-1.jsonl")) == "activities"
    for bad in ("contacts.jsonl", "leads.csv", "sendgrid.json"):
        with pytest.raises(IngestError):
            detect_entity(Path(bad))


def test_excel_csv_with_bom_crlf_and_quoted_commas(con):
    r = ingest(con, "contacts_excel.csv")
    assert (r.loaded, r.updated, r.quarantined, r.rows) == (3, 0, 0, 3)
    rows = con.execute(
        "select contact_id, email, first_name, last_name, timezone, unsubscribed, created_at,"
        ' updated_at, "lead score" from contacts order by contact_id'
    ).fetchall()
    assert rows[0] == (
        "c1", "ann@acme.example", "Ann", "Lee, Jr.", "America/New_York", False,
        dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 2, 9), 10,
    )  # fmt: skip
    # offsets are converted to UTC; no offset means UTC; "" escapes a quote
    assert rows[1][2] == 'Bob "B"'
    assert rows[1][6:8] == (dt.datetime(2026, 1, 1, 8), dt.datetime(2026, 1, 2, 5))
    assert rows[2][1] is None and rows[2][3] == "multi\r\nline"


def test_each_bad_row_kind_is_quarantined_with_its_line(con):
    ingest(con, "contacts_excel.csv")
    r = ingest(con, "contacts_bad.csv")
    assert quarantined(con, "contacts_bad.csv") == [
        (3, "missing id: contact_id"),
        (4, "bad email"),
        (7, "unknown timezone"),
        (8, "bad boolean: unsubscribed"),
        (9, "unparseable timestamp: created_at"),
        (10, "wrong column count"),
        (11, "wrong column count"),
        (12, "stray quote"),
        (13, "duplicate contact_id in file"),
        (15, "unterminated quote"),
    ]
    # c4 (multi-line value) and c12 (escaped quotes) load; c1 is older than the stored row
    assert (r.loaded, r.updated, r.unchanged, r.quarantined, r.rows) == (2, 0, 1, 10, 13)
    names = dict(con.execute("select contact_id, first_name from contacts").fetchall())
    assert names["c4"] == "multi\nline" and names["c12"] == 'He said "hi"'
    raw = con.execute("select raw from quarantine where line = 4").fetchone()[0]
    assert raw == "c3,not-an-email,A,B,,,2026-01-01,2026-01-01"


def test_activities_csv_checks_and_email_matching(con):
    ingest(con, "contacts_excel.csv")
    r = ingest(con, "activities_bad.csv")
    assert quarantined(con, "activities_bad.csv") == [
        (4, "unknown activity type"),
        (5, "no contact_id or email"),
        (6, "unparseable timestamp: occurred_at"),
        (8, "duplicate activity_id in file"),
        (10, "missing timestamp: occurred_at"),
    ]
    assert (r.loaded, r.quarantined, r.rows) == (4, 5, 9)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "select activity_id, contact_id, email, occurred_at from activities"
        ).fetchall()
    }
    # matched case-insensitively by email, email kept; an unknown email keeps contact_id NULL
    assert rows["a2"] == ("c1", "ANN@acme.example", dt.datetime(2026, 1, 5, 10))
    assert rows["a7"][:2] == (None, "nobody@acme.example")
    assert rows["a1"][2] == dt.datetime(2026, 1, 5, 10)  # the first occurrence wins
    assert "a6" in rows  # sales_activity:<name> is a known type


def test_jsonl_activities(con):
    ingest(con, "contacts_excel.csv")
    r = ingest(con, "activities_events.jsonl")
    assert quarantined(con, "activities_events.jsonl") == [
        (3, "invalid JSON"),
        (5, "unknown activity type"),
        (6, "invalid JSON"),
    ]
    assert (r.loaded, r.quarantined, r.rows) == (3, 3, 6)  # the blank line 4 is no record
    rows = con.execute(
        "select activity_id, contact_id, occurred_at, detail from activities order by 1"
    ).fetchall()
    assert rows == [
        ("123", "c2", dt.datetime(2026, 1, 9), None),
        ("j1", "c1", dt.datetime(2026, 1, 8, 9), None),
        ("j2", "c2", dt.datetime(2026, 1, 8, 14), '{"k":1}'),
    ]


def test_parquet_activities_line_is_row_index_plus_one(con, tmp_path):
    path = tmp_path / "activities_p.parquet"
    con.execute(
        "copy (select * from (values ('p1', 'c1', 'email_sent', timestamp '2026-01-01 10:00'),"
        " ('p2', 'c1', 'bogus', timestamp '2026-01-01 11:00'),"
        " ('p3', null, 'chat', timestamp '2026-01-01 12:00'))"
        " as t(activity_id, contact_id, type, occurred_at)) to '" + str(path) + "' (format parquet)"
    )
    r = ingest_file(con, path, validate_with_gx=False)
    assert (r.loaded, r.quarantined) == (1, 2)
    assert quarantined(con, "activities_p.parquet") == [
        (2, "unknown activity type"),
        (3, "no contact_id or email"),
    ]
    assert con.execute("select occurred_at from activities").fetchone()[0] == dt.datetime(
        2026, 1, 1, 10
    )


def test_reingest_is_a_no_op(con, tmp_path):
    first = ingest(con, "contacts_bad.csv")
    before = con.execute("select * from contacts order by contact_id").fetchall()
    counts = con.execute("select count(*) from quarantine").fetchone()
    again = ingest(con, "contacts_bad.csv")
    assert again.skipped and (again.loaded, again.updated, again.quarantined) == (0, 0, 0)
    assert not first.skipped
    assert con.execute("select * from contacts order by contact_id").fetchall() == before
    assert con.execute("select count(*) from quarantine").fetchone() == counts
    # same content under another name: skipped by sha256
    copy = tmp_path / "contacts_copy.csv"
    shutil.copy(FIXTURES / "contacts_bad.csv", copy)
    assert ingest_file(con, copy, validate_with_gx=False).skipped
    # same rows, different bytes (another order): the merge itself changes nothing
    lines = (FIXTURES / "contacts_v1.csv").read_text().splitlines()
    ingest(con, "contacts_v1.csv")
    snapshot = con.execute("select * from contacts order by contact_id").fetchall()
    shuffled = tmp_path / "contacts_shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    r = ingest_file(con, shuffled, validate_with_gx=False)
    assert (r.skipped, r.loaded, r.updated, r.unchanged) == (False, 0, 0, 3)
    assert con.execute("select * from contacts order by contact_id").fetchall() == snapshot


def test_newer_updated_at_wins_and_custom_types_are_fixed(con):
    ingest(con, "contacts_v1.csv")
    types = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() where table_name = 'contacts'"
        ).fetchall()
    )
    assert (types["lead_score"], types["vip"], types["signup"]) == ("BIGINT", "BOOLEAN", "DATE")
    r = ingest(con, "contacts_v2.csv")
    assert (r.loaded, r.updated, r.unchanged, r.quarantined) == (0, 1, 2, 1)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "select contact_id, first_name, lead_score, signup from contacts"
        ).fetchall()
    }
    assert rows["k1"] == ("Kay NEW", 11, dt.date(2026, 1, 5))  # newer wins
    assert rows["k2"] == ("Lou", 20, None)  # older ignored
    assert rows["k3"] == ("Max", None, dt.date(2026, 1, 7))  # equal ignored
    assert quarantined(con, "contacts_v2.csv") == [
        (
            5,
            "bad value for column lead_score: expected BIGINT, got 'high'; "
            "bad value for column vip: expected BOOLEAN, got 'maybe'; "
            "bad value for column signup: expected DATE, got 'someday'",
        )
    ]


def test_tag_stamps_import_name(con):
    ingest(con, "accounts_tagged.csv")
    assert con.execute("select import_name from accounts order by 1 nulls first").fetchall() == [
        (None,),
        ("from file",),
    ]
    r = ingest(con, "accounts_tagged.csv", tag="SDR march")
    assert not r.skipped  # another tag is another import
    assert con.execute("select distinct import_name from accounts").fetchall() == [("SDR march",)]


def test_ingest_files_orders_contacts_before_activities(con, tmp_path):
    for name in ("activities_bad.csv", "contacts_excel.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    results = ingest_files(con, [tmp_path / "activities_bad.csv", tmp_path / "contacts_excel.csv"])
    assert [r.entity for r in results] == ["contacts", "activities"]
    matched = con.execute("select contact_id from activities where activity_id = 'a2'")
    assert matched.fetchone() == ("c1",)


def test_validation_results_are_written(con):
    ingest(con, "contacts_excel.csv", gx=True)
    ingest(con, "activities_events.jsonl", gx=True)
    rows = con.execute(
        "select entity, expectation, success, element_count from validation_results order by all"
    ).fetchall()
    assert ("contacts", "expect_column_values_to_be_unique(contact_id)", True, 3) in rows
    assert ("activities", "expect_column_values_to_match_regex(type)", True, 3) in rows
    assert all(success for _, _, success, _ in rows)


def test_blank_lines_do_not_shift_line_numbers(con, tmp_path):
    path = tmp_path / "contacts_blank.csv"
    path.write_text(
        "contact_id,email,created_at\n"
        "c1,a@x.example,2026-01-01\n"
        "\n"  # line 3: blank, skipped by the reader
        "c2,b@x.example,2026-01-01\n"
        "c3,not-an-email,2026-01-01\n"  # line 5
        "c4,d@x.example,2026-01-01,extra\n"  # line 6: wrong column count
        "\n"  # line 7: blank
        "c5,e@x.example,yesterday\n"  # line 8
    )
    result = ingest_file(con, path, validate_with_gx=False)
    assert result.loaded == 2 and result.quarantined == 3
    rows = con.execute("select line, reason from quarantine order by line").fetchall()
    assert rows == [
        (5, "bad email"),
        (6, "wrong column count"),
        (8, "unparseable timestamp: created_at"),
    ]


def test_staged_activities_load_once_and_quarantine_their_source_text(con):
    """The engagement doors' loader: checks, quarantine of the source record, id dedupe."""
    from pipelines.ingest.load import load_staged_activities, reset_staging

    def stage(records):
        reset_staging(con)
        con.execute("create temp table ingest_raw (__text varchar, __raw varchar)")
        con.executemany("insert into ingest_raw values (?, ?)", records)

    good = (
        '{"activity_id": "sg:1", "email": "a@x.example", "type": "email_opened",'
        ' "occurred_at": "2026-03-02T10:00:00Z", "detail": "{\\"machine\\": true}"}'
    )
    bad = (
        '{"activity_id": "sg:2", "email": "a@x.example", "type": "sendgrid:weird",'
        ' "occurred_at": "2026-03-02T10:00:00Z"}'
    )
    stage([(good, None), (bad, '{"event": "weird"}')])
    r = load_staged_activities(con, "events.json", digest="d1", kind="sendgrid")
    assert (r.loaded, r.quarantined, r.rows, r.skipped) == (1, 1, 2, False)
    assert con.execute("select line, reason, raw from quarantine").fetchall() == [
        (2, "unknown activity type", '{"event": "weird"}')
    ]
    assert con.execute("select detail from activities").fetchone() == ('{"machine": true}',)
    stage([(good, None)])
    again = load_staged_activities(con, "events.json", digest="d1", kind="sendgrid")
    assert again.skipped
    other = load_staged_activities(con, "other.json", digest="d2", kind="sendgrid")
    assert (other.loaded, other.unchanged) == (0, 1)
    assert con.execute("select count(*) from activities").fetchone() == (1,)


def test_the_expectation_suite_knows_the_engagement_types(con, tmp_path):
    """An activities file of SPEC 10's types loads and passes GX's type regex (one list of
    types for the SQL check and the suite)."""
    path = tmp_path / "activities_engagement.csv"
    path.write_text(
        "activity_id,email,type,occurred_at\n"
        "e1,a@x.example,email_complained,2026-03-02T10:00:00Z\n"
        "e2,a@x.example,email_soft_bounced,2026-03-02T10:00:00Z\n"
        "e3,a@x.example,email_auto_replied,2026-03-02T10:00:00Z\n"
    )
    assert ingest_file(con, path, validate_with_gx=True).loaded == 3
    (success,) = con.execute(
        "select success from validation_results"
        " where expectation = 'expect_column_values_to_match_regex(type)'"
    ).fetchone()
    assert success
