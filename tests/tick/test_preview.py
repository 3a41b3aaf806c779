"""preview: the audience, what each condition keeps, a sample — and nothing written."""

from __future__ import annotations

from pipelines.cli import main
from pipelines.db import connect
from tests.workspace_helpers import write_workspace

CONTACT_SEQ = """
    name: leads
    owner: alice
    audience:
      views: [vip]
      where: ["lifecycle_stage = 'lead'", "account.employees BETWEEN 50 AND 500"]
    steps: [{id: call, day: 1, action: call_reminder, note: "Call"}]
"""
ACCOUNT_SEQ = """
    name: abm
    owner: alice
    audience: {record: account, where: ["industry = 'SaaS'"]}
    steps: [{id: call, day: 1, action: call_reminder, note: "Call"}]
"""


def seed(db):
    con = connect(db)
    con.execute("alter table contacts add column lifecycle_stage varchar")
    con.execute("alter table contacts add column lead_score integer")
    con.execute("alter table accounts add column employees integer")
    con.execute("alter table accounts add column industry varchar")
    con.execute("""insert into accounts (account_id, name, employees, industry) values
        ('A1', 'Small SaaS', 20, 'SaaS'), ('A2', 'Mid Retail', 200, 'Retail'),
        ('A3', 'Mid SaaS', 300, 'SaaS')""")
    con.execute("""insert into contacts
        (contact_id, email, first_name, account_id, lifecycle_stage, lead_score, created_at) values
        ('c1', 'c1@x.example', 'Ana', 'A1', 'lead', 95, '2026-01-01'),
        ('c2', 'c2@x.example', 'Ben', 'A2', 'lead', 10, '2026-01-01'),
        ('c3', 'c3@x.example', 'Chen', 'A3', 'customer', 10, '2026-01-01'),
        ('c4', 'c4@x.example', 'Dana', 'A3', 'lead', 10, '2026-06-01'),
        ('c5', 'c5@x.example', 'Eli', null, 'lead', 10, '2026-01-01')""")
    con.close()


def fingerprint(db):
    con = connect(db, read_only=True)
    try:
        return [
            con.execute(f"select count(*), hash(list(t order by all)) from {t} as t").fetchone()
            for t in ("contacts", "accounts", "enrollments", "actions", "occurrences", "runs")
        ]
    finally:
        con.close()


def test_preview_counts_conditions_and_writes_nothing(tmp_path, capsys):
    write_workspace(
        tmp_path, {"leads": CONTACT_SEQ, "abm": ACCOUNT_SEQ}, views={"vip": "lead_score >= 90"}
    )
    db = tmp_path / "db.duckdb"
    seed(db)
    before = fingerprint(db)
    args = ["--project", str(tmp_path), "--db", str(db), "--as-of", "2026-03-02T12:00:00Z"]
    assert main(["preview", "leads", *args]) == 0
    out = capsys.readouterr().out
    # c4 is created after the instant; view vip keeps c1; where keeps c2 (c3 is a customer)
    assert "audience: 2 of 4 contacts" in out
    assert "1 kept by view vip" in out
    assert "3 kept by where: lifecycle_stage = 'lead'" in out
    assert "2 kept by where: account.employees BETWEEN 50 AND 500" in out
    assert fingerprint(db) == before
    assert main(["preview", "abm", *args]) == 0
    out = capsys.readouterr().out
    # record: account — every contact whose primary account is SaaS (A1: c1, A3: c3)
    assert "audience: 2 of" in out and "c1" in out and "c3" in out and "c2 " not in out


def test_preview_now_binds_to_the_instant(tmp_path, capsys):
    seq = ACCOUNT_SEQ.replace("record: account, where: [\"industry = 'SaaS'\"]", "where: [W]")
    seq = seq.replace("W", '"created_at <= now() - interval 30 day"').replace("abm", "leads")
    write_workspace(tmp_path, {"leads": seq})
    db = tmp_path / "db.duckdb"
    seed(db)
    base = ["preview", "leads", "--project", str(tmp_path), "--db", str(db)]
    assert main([*base, "--as-of", "2026-01-15T00:00:00Z"]) == 0
    assert "audience: 0 of 4" in capsys.readouterr().out
    assert main([*base, "--as-of", "2026-07-15T00:00:00Z"]) == 0
    assert "audience: 5 of 5" in capsys.readouterr().out


def test_preview_sample_lists_only_audience_members(tmp_path, capsys):
    """A contact without ``created_at`` takes part from the start, but only if the audience
    keeps it. c6 has no created_at and is a customer: not in ``lifecycle_stage = 'lead'``.
    c7 has no created_at and is a lead: in. Expected sample: c1, c2, c5, c7 (c3 customer,
    c4 created after the instant, c6 customer) — 4 of 6 contacts."""
    seq = CONTACT_SEQ.replace("views: [vip]\n", "").replace(
        ', "account.employees BETWEEN 50 AND 500"', ""
    )
    write_workspace(tmp_path, {"leads": seq})
    db = tmp_path / "db.duckdb"
    seed(db)
    con = connect(db)
    con.execute("""insert into contacts (contact_id, email, first_name, lifecycle_stage) values
        ('c6', 'c6@x.example', 'Fay', 'customer'), ('c7', 'c7@x.example', 'Gus', 'lead')""")
    con.close()
    args = ["--project", str(tmp_path), "--db", str(db), "--as-of", "2026-03-02T12:00:00Z"]
    assert main(["preview", "leads", *args]) == 0
    out = capsys.readouterr().out
    assert "audience: 4 of 6 contacts" in out
    sample = out.split("sample:", 1)[1]
    listed = {word for word in sample.split() if word.endswith("@x.example")}
    assert listed == {"c1@x.example", "c2@x.example", "c5@x.example", "c7@x.example"}
