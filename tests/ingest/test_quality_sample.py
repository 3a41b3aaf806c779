"""The Great Expectations suite runs on a bounded, seeded sample of each batch (issue 11):
the sample is deterministic and bounded, a failed expectation on a sampled row shows in
``validation_results`` and in the Dagster ``<entity>_expectations`` check, and GX is not
imported when validation is off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.db import connect
from pipelines.ingest import quality
from pipelines.ingest.load import ingest_file

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def con(db_path):
    con = connect(db_path)
    yield con
    con.close()


def stage_contacts(con, table: str, ids: list[int], bad: dict[int, str] | None = None) -> None:
    """A staged-contacts table as ``ingest_stg`` looks after the SQL checks (all rows good).
    The suite is meant to agree with those checks, so a row it fails cannot come through a
    real ingest: it is planted here, straight into the table the suite reads."""
    bad = bad or {}
    con.execute(
        f"create or replace temp table {table} "
        "(contact_id varchar, email varchar, __reasons varchar[])"
    )
    con.executemany(
        f"insert into {table} values (?, ?, [])",
        [(f"c{i}", bad.get(i, f"u{i}@x.example")) for i in ids],
    )


def sampled_ids(con, table: str, n: int) -> list[str]:
    rows = con.execute(quality.sample_sql("contacts", table), {"n": n}).fetchall()
    return sorted(contact_id for contact_id, _ in rows)


def test_the_sample_is_bounded_and_the_same_rows_in_any_order(con):
    stage_contacts(con, "forward", list(range(1000)))
    stage_contacts(con, "backward", list(reversed(range(1000))))
    sample = sampled_ids(con, "forward", 50)
    assert len(sample) == 50 and len(set(sample)) == 50
    assert sampled_ids(con, "backward", 50) == sample  # keyed by hash, not by position
    assert sampled_ids(con, "forward", 50) == sample  # seeded: again the same
    # spread over the file, not its first rows
    assert sample != sorted(f"c{i}" for i in range(1000))[:50]
    # the cut at a hash gives the same rows as sorting the whole batch
    frame = quality._sample(con, "contacts", "forward", 50, 1000)
    assert sorted(frame["contact_id"]) == sample
    stage_contacts(con, "small", list(range(30)))
    assert len(sampled_ids(con, "small", 50)) == 30  # a small batch is validated whole


def test_the_same_file_is_validated_on_the_same_sample(tmp_path, monkeypatch):
    """Two databases, the same file, and a shuffled copy: the same sampled rows (the result
    names them by a fingerprint of their keys); a different file: another sample."""
    monkeypatch.setattr(quality, "SAMPLE_ROWS", 40)
    rows = [f"c{i},u{i}@x.example" for i in range(300)]
    files = {
        "a": rows, "b": rows, "shuffled": rows[150:] + rows[:150],
        "other": [f"d{i},u{i}@x.example" for i in range(300)],
    }  # fmt: skip
    seen = {}
    for name, lines in files.items():
        path = tmp_path / name / "contacts_many.csv"
        path.parent.mkdir()
        path.write_text("contact_id,email\n" + "\n".join(lines) + "\n")
        con = connect(tmp_path / f"{name}.duckdb")
        assert ingest_file(con, path).loaded == 300
        seen[name] = con.execute(
            "select distinct note, element_count, batch_rows,"
            " result->>'$.sample.fingerprint' from validation_results"
        ).fetchall()
        con.close()
    assert seen["a"] == [("sample of 40 of 300 rows", 40, 300, seen["a"][0][3])]
    assert seen["a"] == seen["b"] == seen["shuffled"]
    assert seen["other"][0][:3] == seen["a"][0][:3] and seen["other"] != seen["a"]


def test_a_failed_expectation_on_a_sampled_row_shows_in_results_and_in_the_check(con, db_path):
    ids = list(range(200))
    stage_contacts(con, "probe", ids)
    inside = sampled_ids(con, "probe", 20)
    outside = sorted(set(f"c{i}" for i in ids) - set(inside))
    planted = {int(inside[3][1:]): "not an email", int(outside[0][1:]): "also, not one"}
    stage_contacts(con, "ingest_stg", ids, bad=planted)
    rows = quality.validate_loaded(con, file="contacts_x.csv", entity="contacts", sample_rows=20)
    by_name = {r["expectation"]: r for r in rows}
    regex = by_name["expect_column_values_to_match_regex(email)"]
    # only the sampled bad row is seen: the other one is DuckDB's checks' job
    assert (regex["success"], regex["unexpected_count"]) == (False, 1)
    stored = con.execute(
        "select success, element_count, unexpected_count, batch_rows, note,"
        " result->>'$.partial_unexpected_list[0]' from validation_results"
        " where expectation = 'expect_column_values_to_match_regex(email)'"
    ).fetchall()
    assert stored == [(False, 20, 1, 200, "sample of 20 of 200 rows", "not an email")]
    assert by_name["expect_column_values_to_be_unique(contact_id)"]["success"]
    con.close()

    from pipelines.definitions import defs
    from pipelines.defs.resources import SequencerResource

    checks = {next(iter(c.check_specs)).name: c for c in defs().asset_checks}
    resource = SequencerResource(project_dir=str(db_path.parent), db_path=str(db_path))
    result = checks["contacts_expectations"](sequencer=resource)
    assert not result.passed and result.metadata["offending_rows"].value == 1
    assert checks["activities_expectations"](sequencer=resource).passed


def test_an_old_validation_results_table_gains_the_sample_columns(tmp_path):
    """A database made before the sample: connecting adds batch_rows and note."""
    import duckdb

    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute(
        "create table validation_results (file varchar not null, entity varchar not null,"
        " expectation varchar not null, success boolean not null, element_count bigint,"
        " unexpected_count bigint, result json,"
        " validated_at timestamp default current_localtimestamp())"
    )
    old.execute("insert into validation_results (file, entity, expectation, success)"
                " values ('f', 'contacts', 'e', true)")  # fmt: skip
    old.close()
    con = connect(path)
    assert con.execute("select file, batch_rows, note from validation_results").fetchall() == [
        ("f", None, None)
    ]
    con.close()


IMPORTS = """
import sys
from pathlib import Path
from pipelines.db import connect
from pipelines.ingest.load import ingest_file
tmp = Path(sys.argv[1])
(tmp / "contacts_x.csv").write_text("contact_id,email\\nc1,a@x.example\\n")
con = connect(tmp / "x.duckdb")
ingest_file(con, tmp / "contacts_x.csv", validate_with_gx=sys.argv[2] == "on")
print("great_expectations" in sys.modules)
"""


@pytest.mark.parametrize("validation", ["off", "on"])
def test_gx_is_imported_only_when_validation_runs(tmp_path, validation):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IMPORTS), str(tmp_path), validation],
        capture_output=True, text=True, cwd=ROOT, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.stdout.strip() == str(validation == "on")


def test_the_guarded_trim_equals_trim_for_every_character(con):
    """sql/ingest/_macros.sql `trimmed` skips trim() for values that cannot change: it must
    give trim()'s answer for any character at either end (every BMP code point)."""
    from pipelines import sqlrun

    sql = sqlrun.ENV.from_string(
        "{% import 'ingest/_macros.sql' as m %}select count(*), count(*) filter"
        " (where trim(x) is distinct from {{ m.trimmed('x') }}) from values_"
    ).render()
    con.execute(
        "create temp table values_ as select unnest([chr(i::int) || 'a', 'a' || chr(i::int),"
        " chr(i::int), ' ' || chr(i::int) || 'a b ' || chr(i::int), '', null]) as x"
        " from range(1, 65536) t(i) where i not between 55296 and 57343"
    )
    total, different = con.execute(sql).fetchone()
    assert total > 300_000 and different == 0
    (changed,) = con.execute("select count(*) from values_ where trim(x) <> x").fetchone()
    assert changed > 60_000  # the values do exercise trim
