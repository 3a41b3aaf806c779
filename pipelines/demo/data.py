"""Seeded demo data for the demo workspace: accounts, contacts and activity history as files
in ``imports/``, generated set-based with DuckDB (a few thousand contacts by default).

A handful of deliberately broken rows are appended so the demo shows the quarantine.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import duckdb

INDUSTRIES = ["SaaS", "Fintech", "Retail", "Healthcare", "Manufacturing", "Logistics"]
TIMEZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Sydney",
]
STAGES = ["lead", "lead", "lead", "nurture", "nurture", "customer", "other"]
OWNERS = ["alice", "bruno", "chitra"]
FIRST_NAMES = ["Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jo"]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def contacts_sql(first: int, count: int, accounts: int, created: str, *, days_back: int) -> str:
    """Seeded contacts ``first``..``first+count-1`` created up to ``days_back`` days before
    the SQL timestamp ``created`` (0: at it, spread over the preceding hours)."""
    return f"""
        select
            printf('C%06d', i) as contact_id,
            case
                when i % 97 = 0 then null
                -- every 41st contact repeats the previous one's email in upper case
                when i % 41 = 0 then upper(
                    'person' || (i - 1) || '@company' || (1 + (i - 1) % {accounts}) || '.example')
                else 'person' || i || '@company' || (1 + i % {accounts}) || '.example'
            end as email,
            {_sql_list(FIRST_NAMES)}[1 + i % 10] as first_name,
            'Lastname' || i as last_name,
            printf('A%05d', 1 + i % {accounts}) as account_id,
            {_sql_list(OWNERS)}[1 + (i % 3)] as owner_id,
            {_sql_list(TIMEZONES)}[1 + (i % 6)] as timezone,
            (i % 53 = 0) as unsubscribed,
            ({created} - to_minutes(cast(60 + random() * 60 * 24 * {days_back} as integer)))
                as created_at,
            {created} as updated_at,
            {_sql_list(STAGES)}[1 + cast(floor(random() * 7) as integer)] as lifecycle_stage,
            cast(floor(random() * 100) as integer) as lead_score,
            '+1555' || printf('%07d', i) as phone,
        from range({first}, {first + count}) as t(i)
    """


def new_contacts(
    out: Path, day: dt.date, *, per_day: int = 40, accounts: int = 300, base: int = 3000
) -> Path:
    """A day's new leads as ``contacts_new_<day>.csv`` (created during the night before)."""
    out.mkdir(parents=True, exist_ok=True)
    first = base + 1 + (day.toordinal() % 10_000) * per_day
    path = out / f"contacts_new_{day:%Y%m%d}.csv"
    con = duckdb.connect()
    con.execute("select setseed(?)", [(day.toordinal() % 1000) / 1000])
    created = f"timestamp '{day}'"
    con.execute(
        f"copy ({contacts_sql(first, per_day, accounts, created, days_back=0)}) "
        f"to '{path}' (header, delimiter ',')"
    )
    con.close()
    return path


def generate(
    out: Path,
    *,
    contacts: int = 3000,
    accounts: int = 300,
    seed: float = 0.42,
    start: dt.date = dt.date(2026, 1, 5),
) -> dict[str, Path]:
    """Write ``accounts.csv``, ``contacts.csv`` and ``activities.csv`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("select setseed(?)", [seed])
    con.execute(f"""
        create table accounts as
        select
            printf('A%05d', i) as account_id,
            'Company ' || i as name,
            'company' || i || '.example' as domain,
            {_sql_list(OWNERS)}[1 + (i % 3)] as owner_id,
            (timestamp '{start}' - to_days(cast(30 + random() * 300 as integer))) as created_at,
            (timestamp '{start}' - to_days(cast(random() * 20 as integer))) as updated_at,
            {_sql_list(INDUSTRIES)}[1 + cast(floor(random() * 6) as integer)] as industry,
            cast(10 + floor(pow(random(), 2) * 5000) as integer) as employees,
        from range(1, {accounts} + 1) as t(i)
    """)
    con.execute(
        "create table contacts as "
        + contacts_sql(1, contacts, accounts, f"timestamp '{start}'", days_back=200)
    )
    con.execute(f"""
        create table activities as
        select
            printf('H%07d', row_number() over ()) as activity_id,
            c.contact_id,
            {
        _sql_list(
            [
                "email_sent",
                "email_opened",
                "call_outgoing",
                "chat",
                "meeting",
                "sales_activity:lunch",
            ]
        )
    }[1 + cast(floor(random() * 6) as integer)] as type,
            (c.created_at + to_minutes(cast(random() * 60 * 24 * 30 as integer))) as occurred_at,
        from contacts as c, range(3) as r(k)
        where random() < 0.3
    """)
    paths = {name: out / f"{name}.csv" for name in ("accounts", "contacts", "activities")}
    for name, path in paths.items():
        con.execute(f"copy (select * from {name} order by 1) to '{path}' (header, delimiter ',')")
    _append_bad_contacts(paths["contacts"])
    con.close()
    return paths


def _append_bad_contacts(path: Path) -> None:
    """Deliberately bad rows: they must land in quarantine with their line numbers."""
    with path.open("a", encoding="utf-8") as f:
        f.write(",nobody@example.com,No,Id,A00001,alice,UTC,false,2025-12-01,2025-12-01,lead,10,\n")
        f.write(
            "C999998,not-an-email,Bad,Email,A00001,alice,UTC,false,2025-12-01,2025-12-01,lead,10,\n"
        )
        f.write(
            "C999999,tz@example.com,Bad,Zone,A00001,alice,Mars/Olympus,false,2025-12-01,2025-12-01,lead,10,\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate seeded demo import files.")
    parser.add_argument("--out", default="imports", help="output directory (default: imports)")
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=300)
    args = parser.parse_args()
    for name, path in generate(
        Path(args.out), contacts=args.contacts, accounts=args.accounts
    ).items():
        print(f"wrote {path} ({name})")


if __name__ == "__main__":
    main()
