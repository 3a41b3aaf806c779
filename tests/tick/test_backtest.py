"""Backtest (SPEC 11, issue 13 item 4): replaying a sequence over the days it ran decides what
the real daily tick decided, on a scratch copy; the real database is opened read-only and not
changed; "assumed sent" is what later decisions read."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.db import connect
from pipelines.errors import PermissionDenied, SequencerError, UsageError
from pipelines.project import Project
from tests.tick_helpers import activity, classic, contact, insert, write_sequences

FIRST, LAST = dt.date(2026, 3, 2), dt.date(2026, 3, 13)  # Monday to Friday of the next week
NURTURE = classic(
    "nurture",
    """
    - {id: intro, day: 1, action: email, template: intro.md.j2, subject: Hi,
       variants: [{id: a}, {id: b, subject: Hello}]}
    - {id: nudge, day: 2, action: email, template: intro.md.j2, subject: Hi,
       when: ["enrollment.opened_previous_email"]}
    - {id: call, day: 3, action: call_reminder, when: ["not enrollment.clicked_any_email"]}
    - {id: last, day: 5, action: email, template: intro.md.j2, subject: Bye,
       when: ["enrollment.emails_sent >= 1", "coalesce(last_activity_type, '') <> 'meeting'"]}
    """,
    audience="where: [\"first_name <> 'C7'\"]",
    extra="exclusive_with: [aaa-warm]",
    schedule="{time: '14:00', timezone: America/New_York, exclude_weekends: true}",
)
WARM = classic(
    "aaa-warm",
    """
    - {id: hello, day: 1, action: email, template: intro.md.j2, subject: Hi}
    - {id: again, day: 3, action: email, template: intro.md.j2, subject: Hi}
    """,
    audience="where: [\"first_name = 'C6'\"]",
    schedule="{time: '14:00', timezone: America/New_York, exclude_weekends: true}",
)


BACK_ON_10TH = '{"until": "2026-03-10"}'


def _at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm))


def _history(root: Path) -> None:
    """Contacts and imported engagement (activities carrying sequence and step)."""
    con = connect(root / ".sequencer" / "sequencer.duckdb")
    late = dt.datetime(2026, 3, 4, 12)
    insert(con, "contacts", [contact(f"c{i}") for i in range(1, 8)])
    insert(con, "contacts", [contact("c8", created_at=late), contact("c9", created_at=late)])
    nurture = {"sequence": "nurture"}
    insert(
        con,
        "activities",
        [
            activity("c1", "email_opened", "2026-03-02 20:00", step="intro", **nurture),
            activity("c2", "email_clicked", "2026-03-02 21:00", step="intro", **nurture),
            activity("c3", "email_replied", "2026-03-03 10:00", step="intro", **nurture),
            activity("c4", "unsubscribed", "2026-03-05 10:00"),
            activity(
                "c5",
                "email_opened",
                "2026-03-02 22:00",
                step="intro",
                detail='{"machine": true}',
                **nurture,
            ),  # fmt: skip
            activity("c8", "email_opened", "2026-03-05 20:00", step="intro", **nurture),
            activity("c9", "meeting", "2026-03-10 12:00"),
            activity(
                "c5", "email_auto_replied", "2026-03-06 09:00", detail='{"until": "2026-03-10"}'
            ),
        ],
    )
    con.close()


def _real_daily(root: Path) -> list[tuple]:
    """The real tick every day at 20:00Z, with an enrol, an unenrol and a pause in between."""
    p = Project(root)
    day = FIRST
    while day <= LAST:
        if day == dt.date(2026, 3, 3):
            p.enroll("nurture", ["c7"], _at(day, "12:00"))
            p.pause("nurture", ["c2"], dt.date(2026, 3, 9), _at(day, "12:00"))
        if day == dt.date(2026, 3, 5):
            p.unenroll("nurture", ["c1"], _at(day, "12:00"))
        result = p.run(_at(day, "20:00"), allow_future=True)
        assert not result.problems, result.problems
        day += dt.timedelta(days=1)
    return _decisions(
        p.db_path,
        "select * replace (decided_status as status) from actions where sequence = 'nurture'",
    )


def _decisions(db: Path | None, relation: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True) if db else duckdb.connect()
    try:
        return con.execute(
            f"select contact_id, step, day, occurrence_on, status, variant from ({relation})"
            " order by all"
        ).fetchall()
    finally:
        con.close()


def _tables(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        return {n: sorted(map(repr, con.execute(f'select * from "{n}"').fetchall())) for n in names}
    finally:
        con.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    """The real daily run, once for the module: every test using it only reads the real
    database (a backtest writes nothing to it, which the tests check)."""
    tmp_path = tmp_path_factory.mktemp("ran")
    root = write_sequences(tmp_path / "ws", {"nurture": NURTURE, "aaa-warm": WARM})
    _history(root)
    return root, _real_daily(root)


def test_a_backtest_over_the_days_it_ran_reproduces_the_real_decisions(ran, tmp_path):
    root, real = ran
    db = root / ".sequencer" / "sequencer.duckdb"
    before, tables = hashlib.sha256(db.read_bytes()).hexdigest(), _tables(db)
    out = tmp_path / "out" / "nurture.parquet"
    result = Project(root).backtest("nurture", FIRST, LAST, out=out)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert _tables(db) == tables
    replayed = _decisions(None, f"select * from read_parquet('{out}')")
    assert replayed == real
    assert {r[4] for r in real} == {"due", "skipped"}  # both kinds of decision are compared
    assert {r[0] for r in real} >= {"c2", "c7", "c8"} and "c6" in {r[0] for r in real}
    weekdays = [FIRST + dt.timedelta(days=i) for i in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11)]
    assert [d.on for d in result.days] == weekdays
    assert result.decisions == len(real)
    assert sum(d.entries for d in result.days) == len({r[0] for r in real})


def test_the_parquet_has_the_actions_columns(ran, tmp_path):
    root, _ = ran
    out = tmp_path / "d.parquet"
    Project(root).backtest("nurture", FIRST, FIRST + dt.timedelta(days=1), out=out)
    con = duckdb.connect()
    cols = [r[0] for r in con.execute(f"describe select * from read_parquet('{out}')").fetchall()]
    assert cols == [
        "sequence", "contact_id", "step", "day", "action", "variant", "occurrence_on", "status",
    ]  # fmt: skip


def test_the_backtest_opens_the_real_database_read_only(ran, tmp_path):
    """Another process holds the file read-only (a shared lock) throughout: any write open
    would fail; the backtest does not."""
    root, _ = ran
    db = root / ".sequencer" / "sequencer.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('open', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(db))  # a writer is refused while it is held
        result = Project(root).backtest("nurture", FIRST, FIRST)
        assert result.days[0].entries > 0
    finally:
        holder.kill()
        holder.wait()


def test_assumed_sends_are_what_later_decisions_read(tmp_path):
    """The real tick without a send sees no email_sent; the backtest assumes the day-1 email
    went out, so a day-2 step on `last_contacted_mode = 'No reply'` is due there."""
    seq = classic(
        "s",
        """
        - {id: intro, day: 1, action: email, template: intro.md.j2, subject: Hi}
        - {id: bump, day: 2, action: email, template: intro.md.j2, subject: Hi,
           when: ["last_contacted_mode = 'No reply'", "enrollment.emails_sent = 1"]}
        """,
    )
    root = write_sequences(tmp_path / "ws", {"s": seq})
    con = connect(root / ".sequencer" / "sequencer.duckdb")
    insert(con, "contacts", [contact("c1")])
    con.close()
    result = Project(root).backtest("s", FIRST, FIRST + dt.timedelta(days=1))
    assert [dict(d.steps.get("bump", {})) for d in result.days] == [{}, {"due": 1}]
    scratch_free = _tables(root / ".sequencer" / "sequencer.duckdb")
    assert scratch_free["actions"] == [] and scratch_free["enrollments"] == []


def test_refusals(ran):
    root, _ = ran
    with pytest.raises(UsageError, match="after"):
        Project(root).backtest("nurture", LAST, FIRST)
    with pytest.raises(SequencerError, match="no sequence named"):
        Project(root).backtest("ghost", FIRST, LAST)
    with pytest.raises(PermissionDenied):
        Project(root, user="bruno").backtest("nurture", FIRST, LAST)
    with pytest.raises(SequencerError, match="no database"):
        Project(root, db_path=root / "none.duckdb").backtest("nurture", FIRST, LAST)


def test_the_command_prints_each_day_and_writes_nothing(ran, tmp_path, capsys):
    root, _ = ran
    out = tmp_path / "cli.parquet"
    argv = ["backtest", "nurture", "--from", "2026-03-02", "--to", "2026-03-03"]
    assert main([*argv, "--project", str(root), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("backtest nurture from 2026-03-02 to 2026-03-03: 2 occurrence(s)")
    assert lines[1].startswith("  2026-03-02 (19:00Z)  entries 5  exits none  |  intro: due 5")
    assert lines[2].startswith("  2026-03-03 (19:00Z)  entries 1  exits replied 1  |  ")
    assert f"decision(s) written to {out}" in lines[-2]
    assert lines[-1] == "(nothing was written to the database and nothing was sent)"


def test_a_backtest_holds_out_the_same_contacts(tmp_path):
    """A sequence holding out 30 % (issue 13): c2, c6, c8 and c9 have buckets below 3000, so
    the real tick and the backtest both enrol them as holdouts and decide nothing for them;
    the others' decisions agree."""
    held = NURTURE + "\nholdout_percent: 30\n"  # a top-level key after the steps
    root = write_sequences(tmp_path / "ws", {"nurture": held, "aaa-warm": WARM})
    _history(root)
    real = _real_daily(root)
    out = tmp_path / "held.parquet"
    Project(root).backtest("nurture", FIRST, LAST, out=out)
    assert _decisions(None, f"select * from read_parquet('{out}')") == real
    con = duckdb.connect(str(root / ".sequencer" / "sequencer.duckdb"), read_only=True)
    holdouts = {r[0] for r in con.execute(
        "select contact_id from enrollments where sequence = 'nurture' and status = 'holdout'"
    ).fetchall()}  # fmt: skip
    con.close()
    assert holdouts and holdouts <= {"c2", "c6", "c8", "c9"}
    assert not holdouts & {r[0] for r in real}
