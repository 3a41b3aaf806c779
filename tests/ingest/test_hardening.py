"""Ingest hardening (issue 9): types that keep values, one-mailbox emails, mixed line
endings, encodings, one file per unit, wide files, who may ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.db import connect
from pipelines.ingest.load import ingest_file, ingest_files

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ingest"


@pytest.fixture
def con(db_path):
    con = connect(db_path)
    yield con
    con.close()


def load(con, path: Path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return ingest_file(con, path, validate_with_gx=False)


def column_type(con, column: str) -> str:
    return con.execute(
        "select data_type from duckdb_columns() where table_name = 'contacts' and column_name = $1",
        [column],
    ).fetchone()[0]


def quarantined(con) -> list[tuple]:
    return con.execute("select line, reason from quarantine order by file, line").fetchall()


def test_decimals_are_double_and_keep_their_value(con, tmp_path):
    load(con, tmp_path / "contacts.csv", "contact_id,arr,seats\nc1,96572.85,3\nc2,10,4\n")
    assert (column_type(con, "arr"), column_type(con, "seats")) == ("DOUBLE", "BIGINT")
    assert con.execute("select arr from contacts where contact_id = 'c1'").fetchone() == (96572.85,)


def test_a_dirty_value_is_quarantined_naming_column_and_value(con, tmp_path):
    rows = "".join(f"c{i},{i * 10}\n" for i in range(1, 10)) + "c10,high\n"
    r = load(con, tmp_path / "contacts.csv", "contact_id,lead_score\n" + rows)
    assert column_type(con, "lead_score") == "BIGINT"
    assert (r.loaded, r.quarantined) == (9, 1)
    assert quarantined(con) == [
        (11, "bad value for column lead_score: expected BIGINT, got 'high'")
    ]
    assert r.notes == [
        "column lead_score: typed BIGINT from 9 of 10 values; the rows with other values "
        "are quarantined (e.g. 'high')"
    ]


def test_a_mostly_text_column_stays_text_with_a_warning(con, tmp_path):
    r = load(con, tmp_path / "contacts.csv", "contact_id,score\nc1,5\nc2,high\nc3,7\n")
    assert column_type(con, "score") == "VARCHAR" and r.loaded == 3
    assert r.notes == ["column score: typed VARCHAR (text): only 2 of 3 values are BIGINT "
                       "(e.g. not 'high')"]  # fmt: skip


def test_a_bigint_column_widens_to_double_with_a_note(con, tmp_path):
    load(con, tmp_path / "contacts_1.csv", "contact_id,arr\nc1,10\n")
    r = load(con, tmp_path / "contacts_2.csv", "contact_id,arr\nc2,96572.85\n")
    assert column_type(con, "arr") == "DOUBLE"
    assert r.notes == ["column arr: widened BIGINT -> DOUBLE (this file has decimals, e.g. "
                       "'96572.85')"]  # fmt: skip
    got = con.execute("select contact_id, arr from contacts order by 1").fetchall()
    assert got == [("c1", 10.0), ("c2", 96572.85)]


def test_a_fixed_boolean_column_quarantines_what_does_not_fit(con, tmp_path):
    load(con, tmp_path / "contacts_1.csv", "contact_id,vip\nc1,true\n")
    r = load(con, tmp_path / "contacts_2.csv", "contact_id,vip\nc2,12.5\nc3,no\n")
    assert (r.loaded, r.quarantined) == (1, 1)
    assert quarantined(con) == [(2, "bad value for column vip: expected BOOLEAN, got '12.5'")]


BAD_EMAILS = [
    "a@x.com,b", "Name <a@x.com>", "a b@x.com", "a@b@x.com", "a@x", "a..b@x.com", ".a@x.com",
    "a@-x.com", "a@x.com.", "a@x_y.com", "a@[1.2.3.4]", '"a b"@x.com', "a@x.com;b@y.com",
    "x" * 65 + "@x.com", "a@" + "b" * 64 + ".com",
]  # fmt: skip
GOOD_EMAILS = ["a@x.com", "first.last+tag@mail.acme-corp.co.uk", "o'brien@x.io", "A_B@X.COM"]


def test_email_is_one_rfc5321_mailbox(con, tmp_path):
    emails = BAD_EMAILS + GOOD_EMAILS
    body = "".join(f'c{i},"{e.replace(chr(34), 2 * chr(34))}"\n' for i, e in enumerate(emails))
    r = load(con, tmp_path / "contacts.csv", "contact_id,email\n" + body)
    assert quarantined(con) == [(i + 2, "bad email") for i in range(len(BAD_EMAILS))]
    loaded = [e for (e,) in con.execute("select email from contacts").fetchall()]
    assert sorted(loaded) == sorted(GOOD_EMAILS) and r.loaded == len(GOOD_EMAILS)


def test_mixed_line_endings_load_with_physical_lines(con, tmp_path):
    text = b"contact_id,email\r\nc1,a@x.com\nc2,not-an-email\r\nc3,c@x.com\n\nc4,bad\r\n"
    r = load(con, tmp_path / "contacts_mixed.csv", text)
    assert (r.loaded, r.quarantined) == (2, 2)
    assert quarantined(con) == [(3, "bad email"), (6, "bad email")]
    assert r.notes == ["mixed CRLF and LF line endings: read with LF (line numbers kept)"]
    assert (tmp_path / "contacts_mixed.csv").read_bytes() == text  # the file itself untouched


def test_utf16_with_bom_is_decoded(con, tmp_path):
    text = "contact_id,email,first_name\r\nc1,a@x.com,José\r\nc2,bad,Zoë\r\n"
    r = load(con, tmp_path / "contacts_u16.csv", text.encode("utf-16"))
    assert (r.loaded, r.quarantined, r.notes) == (1, 1, ["decoded from UTF-16 (byte-order mark)"])
    assert con.execute("select first_name from contacts").fetchone() == ("José",)
    assert quarantined(con) == [(3, "bad email")]


def test_latin1_file_is_rejected_and_the_others_load(con, tmp_path):
    latin = tmp_path / "contacts_latin1.csv"
    latin.write_bytes("contact_id,first_name\nc1,Ann\nc2,José\n".encode("latin-1"))
    good = tmp_path / "contacts_good.csv"
    good.write_text("contact_id,first_name\nc3,Zoë\n", encoding="utf-8")
    results = ingest_files(con, [latin, good])
    by_name = {Path(r.file).name: r for r in results}
    assert by_name["contacts_good.csv"].loaded == 1 and not by_name["contacts_good.csv"].error
    rejected = by_name["contacts_latin1.csv"]
    assert rejected.error == (
        "not UTF-8: byte 0xe9 on line 3 (Latin-1 or Windows-1252?); save the file as UTF-8 "
        "(nothing of it was loaded)"
    )
    assert con.execute("select contact_id from contacts").fetchall() == [("c3",)]
    row = con.execute("select line, raw from quarantine where file = $1", [str(latin)])
    assert row.fetchall() == [(3, "c2,Jos\\xe9")]
    ingest_files(con, [latin])  # retried (not recorded as ingested), quarantined once
    assert con.execute("select count(*) from quarantine").fetchone() == (1,)


def test_unparseable_file_is_reported_and_the_others_load(con, tmp_path):
    broken = tmp_path / "contacts_broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    good = tmp_path / "contacts_good.csv"
    good.write_text("contact_id\nc1\n")
    results = ingest_files(con, [broken, good])
    errors = {Path(r.file).name: r.error for r in results}
    assert errors["contacts_good.csv"] is None
    assert errors["contacts_broken.parquet"].startswith("cannot be read: ")
    assert con.execute("select count(*) from contacts").fetchone() == (1,)


def test_cli_names_the_rejected_file_exits_1_and_loads_the_rest(tmp_path, db_path, capsys):
    (tmp_path / "imports").mkdir()
    shutil.copy(FIXTURES / "contacts_v1.csv", tmp_path / "imports" / "contacts_v1.csv")
    (tmp_path / "imports" / "contacts_x.csv").write_bytes(b"contact_id\nc\xe9\n")
    code = cli.main(["ingest", "--project", str(tmp_path), "--db", str(db_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "contacts_x.csv" in err and "not UTF-8" in err and "Traceback" not in err
    assert "contacts_v1.csv" in out and "REJECTED" in out
    with connect(db_path) as con:
        assert con.execute("select count(*) from contacts").fetchone() == (3,)


def test_cli_prints_warnings(tmp_path, db_path, capsys):
    path = tmp_path / "contacts_w.csv"
    path.write_bytes(b"contact_id,score\r\nc1,5\nc2,high\r\nc3,7\n")
    assert cli.main(["ingest", str(path), "--project", str(tmp_path), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "warning: contacts_w.csv: mixed CRLF and LF line endings" in out
    assert "warning: contacts_w.csv: column score: typed VARCHAR (text)" in out


def test_a_wide_file_loads(con, tmp_path):
    n = 2000
    header = ",".join(["contact_id"] + [f"x{i}" for i in range(n)])
    row = ",".join(["c1"] + [str(i) if i % 2 else f"{i}.5" for i in range(n)])
    r = load(con, tmp_path / "contacts_wide.csv", f"{header}\n{row}\n")
    assert (r.loaded, r.quarantined) == (1, 0)
    got = con.execute("select x0, x1, x1999 from contacts").fetchone()
    assert got == (0.5, 1, 1999)


@pytest.mark.parametrize("user", ["vera", "alice"])
def test_viewers_and_reps_may_not_ingest(workspace, db_path, capsys, user):
    root = workspace()
    shutil.copy(FIXTURES / "contacts_v1.csv", root / "contacts_v1.csv")
    argv = ["ingest", str(root / "contacts_v1.csv"), "--project", str(root), "--db", str(db_path)]
    assert cli.main([*argv, "--user", user]) == cli.EXIT_DENIED
    assert "for the operator or an admin" in capsys.readouterr().err
    assert not db_path.exists() or connect(db_path).execute(
        "select count(*) from contacts"
    ).fetchone() == (0,)
    assert cli.main([*argv, "--user", "olga"]) == 0  # an admin may
