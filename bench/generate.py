"""A seeded synthetic workspace for the tick benchmark, generated with DuckDB SQL.

    .venv/bin/python bench/generate.py --contacts 1000000 --sequences 50 --out bench/data/ws-1m

Writes ``users.yaml``, ``sequences/*.yaml`` (+ a template) and ``imports/`` parquet files:
contacts (with custom ``lead_score`` and ``import_name``), accounts (custom ``industry``,
``employees``) and ~10 activities per contact over the 60 days before ``--start``, plus a
thin stream during the benchmark window. Same arguments → same files (hash-based values).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

import duckdb
import yaml

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "UTC", "America/Los_Angeles"]
TYPES = [
    "email_sent", "email_opened", "email_clicked", "email_replied", "call_outgoing",
    "call_incoming", "chat", "meeting", "sales_activity:lunch", "email_bounced", "unsubscribed",
]  # fmt: skip
# weights per mille: bounces and unsubscribes are rare
WEIGHTS = [300, 220, 80, 40, 100, 40, 60, 60, 90, 5, 5]

CONTACTS = """
copy (
    select
        'c' || lpad(i::varchar, 9, '0') as contact_id,
        case when hash(i, 1) % 50 = 0 then null
             else 'user' || (hash(i, 2) % ($n * 0.98)::ubigint) || '@ex' || (i % 97) || '.com'
        end as email,
        'First' || (i % 1000) as first_name,
        'Last' || (i % 5000) as last_name,
        'a' || lpad((hash(i, 3) % $accounts)::varchar, 8, '0') as account_id,
        'alice' as owner_id,
        null::varchar as timezone,
        hash(i, 4) % 100 = 0 as unsubscribed,
        $start::timestamp - interval 90 day
            + to_seconds((hash(i, 5) % (95 * 86400))::bigint) as created_at,
        $start::timestamp - interval 1 day as updated_at,
        'batch' || (hash(i, 6) % 10) as import_name,
        (hash(i, 7) % 100)::integer as lead_score,
    from range($n) as t(i)
) to '{path}' (format parquet)
"""

ACCOUNTS = """
copy (
    select
        'a' || lpad(i::varchar, 8, '0') as account_id,
        'Account ' || i as name,
        'acct' || i || '.example' as domain,
        'alice' as owner_id,
        $start::timestamp - interval 400 day as created_at,
        $start::timestamp - interval 1 day as updated_at,
        null::varchar as import_name,
        (['SaaS', 'Retail', 'Finance', 'Health', 'Media'])[1 + (hash(i, 8) % 5)::integer]
            as industry,
        (10 + hash(i, 9) % 5000)::integer as employees,
    from range($accounts) as t(i)
) to '{path}' (format parquet)
"""

ACTIVITIES = """
copy (
    with picks as (
        select
            i,
            hash(i, 11) % 1000 as w,
        from range($n) as t(i)
    )
    select
        'act' || i as activity_id,
        'c' || lpad((hash(i, 10) % $contacts)::varchar, 9, '0') as contact_id,
        null::varchar as email,
        {type_case} as type,
        case when i % 20 = 0
             then $start::timestamp + to_seconds((hash(i, 12) % ($days * 86400))::bigint)
             else $start::timestamp - interval 60 day
                  + to_seconds((hash(i, 12) % (60 * 86400))::bigint)
        end as occurred_at,
        null::varchar as sequence,
        null::varchar as step,
        null::varchar as message_id,
        null::varchar as detail,
    from picks
) to '{path}' (format parquet)
"""


def _type_case() -> str:
    """A CASE over cumulative weights: the activity type mix is fixed and seeded by hash."""
    parts, total = [], 0
    for kind, weight in zip(TYPES, WEIGHTS, strict=True):
        total += weight
        parts.append(f"when w < {total} then '{kind}'")
    return "case " + " ".join(parts) + f" else '{TYPES[0]}' end"


def sequence_yaml(
    i: int,
    rng: random.Random,
    start: dt.date,
    *,
    near_empty: bool = False,
    one_instant: bool = False,
) -> dict:
    """One sequence: 3-5 steps, an audience of ~2-6 % of contacts, varied schedules.

    ``near_empty``: the audience also requires ``lead_score = 100`` (no generated contact has
    it: it matches nobody), the per-sequence overhead case; ``one_instant``: every sequence
    at 09:00 UTC, weekends included, so all of them share each instant. Both are applied
    after the random draws: the rest of the sequence is the same."""
    smart = i % 5 == 4
    low = rng.randrange(0, 95)
    audience = [f"lead_score between {low} and {low + rng.randrange(1, 5)}"]
    if i % 3 == 0:
        audience.append("last_contacted_mode <> 'Replied'")
    if i % 4 == 0:
        audience.append("account.industry in ('SaaS', 'Finance', 'Health')")
    steps, day = [], 1
    for k in range(rng.randrange(3, 6)):
        step = {"id": f"s{k + 1}", "action": rng.choice(["email", "follow_up", "call_reminder"])}
        if step["action"] == "email":
            step |= {"template": "intro.md.j2", "subject": "Hello {{ contact.first_name }}"}
        if k and rng.random() < 0.5:
            step["when"] = [rng.choice([
                "not enrollment.opened_previous_email",
                "last_contacted_mode <> 'Replied'",
                "enrollment.emails_sent < 3",
                "dayofweek(current_date) between 1 and 5",
            ])]  # fmt: skip
        if not smart:
            step["day"] = day
            day += rng.randrange(1, 4)
        steps.append(step)
    seq = {
        "name": f"seq-{i:03d}",
        "owner": "alice",
        "type": "smart" if smart else "classic",
        "starts_on": start.isoformat(),
        "audience": {"where": audience, "prevent_duplicate_emails": i % 2 == 0},
        "schedule": {
            "time": f"{rng.randrange(6, 18):02d}:{rng.choice([0, 15, 30, 45]):02d}",
            "timezone": rng.choice(ZONES),
            "exclude_weekends": rng.random() < 0.6,
        },
        "exclusive_with": [f"seq-{i - 1:03d}"] if i and i % 7 == 0 else [],
        "steps": steps,
        "exit": {"where": ["last_activity_type = 'meeting'"] if i % 2 else []},
    }
    if smart:
        seq |= {"interval_days": rng.randrange(1, 4), "duration_days": rng.randrange(7, 15)}
    if near_empty:
        audience.append("lead_score = 100")
    if one_instant:
        seq["schedule"] = {"time": "09:00", "timezone": "UTC", "exclude_weekends": False}
    return seq


# Bumped whenever the generated files change: bench/tick_bench.py regenerates stale data.
VERSION = "2"


def generate(
    out: Path,
    contacts: int,
    sequences: int,
    start: dt.date,
    days: int,
    *,
    near_empty: bool = False,
    one_instant: bool = False,
) -> Path:
    """Write the workspace; sequence i depends only on i and ``start`` (not on the counts),
    so the workspace with 10 sequences is a prefix of the one with 200 over the same data."""
    (out / "sequences" / "templates").mkdir(parents=True, exist_ok=True)
    (out / "imports").mkdir(parents=True, exist_ok=True)
    users = {
        "users": [{"id": "alice", "email": "alice@acme.example", "role": "rep"}],
        "roles": {"rep": ["view_sequences", "create_sequences"]},
    }
    (out / "users.yaml").write_text(yaml.safe_dump(users), encoding="utf-8")
    (out / "sequences" / "templates" / "intro.md.j2").write_text("Hi {{ contact.first_name }}")
    for i in range(sequences):
        seq = sequence_yaml(
            i, random.Random(i), start, near_empty=near_empty, one_instant=one_instant
        )
        (out / "sequences" / f"{seq['name']}.yaml").write_text(
            yaml.safe_dump(seq, sort_keys=False), encoding="utf-8"
        )
    con = duckdb.connect()
    con.execute("set threads = 2")
    params = {"n": contacts, "accounts": max(1, contacts // 20), "start": start}
    con.execute(CONTACTS.format(path=out / "imports" / "contacts.parquet"), params)
    con.execute(
        ACCOUNTS.format(path=out / "imports" / "accounts.parquet"),
        {"accounts": params["accounts"], "start": start},
    )
    con.execute(
        ACTIVITIES.format(path=out / "imports" / "activities.parquet", type_case=_type_case()),
        {"n": contacts * 10, "contacts": contacts, "start": start, "days": days},
    )
    (out / "GENERATOR").write_text(VERSION, encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path("bench/data") / f"ws-{args.contacts}-{args.sequences}"
    generate(out, args.contacts, args.sequences, args.start, args.days)
    print(out)


if __name__ == "__main__":
    main()
