"""ESP event ingest (SPEC 10, door 2) against DuckDB's own ``read_json``.

    .venv/bin/python bench/esp_bench.py --events 1000000 --sends 200000

Generates (seeded, with DuckDB's COPY TO) a SendGrid Event Webhook file: one JSON array of
``--events`` events for ``--sends`` emails, in a realistic mix (processed and delivered for
most, opens a third of them machine opens, clicks, deferrals, bounces and blocks, drops,
spam reports, unsubscribes, a few unknown events). Opens and clicks carry no ``smtp-id`` (as
SendGrid sends them: the file's other events give it), 3 % name a Message-ID that is not ours
(matched by address) and 1 % an address we never wrote to. Then, each into a fresh database
file: ``create table t as select * from read_json(file)`` (the floor), and ``ingest`` of the
file into a database holding the contacts and their ``email_sent`` activities (the send step's
rows). Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.db import connect  # noqa: E402
from pipelines.ingest.load import ingest_files  # noqa: E402

T0 = 1772352000  # 2026-03-01T08:00:00Z, the first send

EVENTS_SQL = """
copy (
    with
    draws as (
        select
            i,
            (hash(i) % $sends::ubigint)::bigint as k,
            (hash(i * 7) % 10000) / 100.0 as p,
            (hash(i * 13) % 100)::bigint as q,
        from range($events) as t(i)
    ),
    named as (
        select
            *,
            case
                when p < 20 then 'processed'
                when p < 50 then 'delivered'
                when p < 75 then 'open'
                when p < 83 then 'click'
                when p < 88 then 'deferred'
                when p < 92 then 'bounce'
                when p < 94 then 'dropped'
                when p < 95 then 'spamreport'
                when p < 97 then 'unsubscribe'
                when p < 99.9 then 'group_unsubscribe'
                else 'weird_event'
            end as event,
        from draws
    )
    select
        case when q = 99 then 'nobody' || i || '@nowhere.example'
             else 'user' || k || '@example' || (k % 97) || '.com' end as email,
        {t0} + k + 60 + (i % 86400) as timestamp,
        event,
        case
            when event in ('open', 'click') then null
            when q < 3 then '<sg' || i || '@ismtpd-555.sendgrid.net>'
            else '<m' || k || '@acme.example>'
        end as "smtp-id",
        'ev' || i as sg_event_id,
        'sg' || k || '.filter0001.16648.5515E0B88.0' as sg_message_id,
        ['outbound'] as category,
        case when event = 'open' then q % 3 = 0 end as sg_machine_open,
        case when event = 'click' then 'https://acme.example/deck?c=' || k end as url,
        case when event in ('open', 'click') then 'Mozilla/5.0' end as useragent,
        case when event = 'bounce' then if(q % 4 = 0, 'blocked', 'bounce') end as type,
        case when event = 'bounce' then if(q % 4 = 0, '4.0.0', '5.1.1') end as status,
        case
            when event = 'dropped' then (['Bounced Address', 'Unsubscribed Address',
                'Spam Reporting Address', 'Invalid'])[1 + q % 4]
            when event = 'bounce' then '550 5.1.1 user unknown'
        end as reason,
        case when event in ('delivered', 'deferred') then '250 OK' end as response,
    from named
) to '{path}' (format json, array true)
"""

SETUP_SQL = [
    """insert into contacts (contact_id, email, created_at)
       select 'c' || k, 'user' || k || '@example' || (k % 97) || '.com', timestamp '2026-01-01'
       from range($sends) as t(k)""",
    """insert into activities (activity_id, contact_id, email, type, occurred_at, sequence, step,
                               message_id)
       select 'email_sent:' || k, 'c' || k, null, 'email_sent', to_timestamp({t0} + k)::timestamp,
              'seq' || (k % 20), 'intro', '<m' || k || '@acme.example>'
       from range($sends) as t(k)""",
]


def generate(out: Path, events: int, sends: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sendgrid_{events}_{sends}.json"
    if not path.exists():
        con = duckdb.connect()
        con.execute(EVENTS_SQL.format(path=path, t0=T0), {"events": events, "sends": sends})
        con.close()
    return path


def fresh(out: Path, name: str) -> Path:
    db = out / f"{name}.duckdb"
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    return db


def floor(out: Path, path: Path) -> float:
    con = duckdb.connect(str(fresh(out, "bench_read_json")))
    start = time.perf_counter()
    con.execute("create table t as select * from read_json($1)", [str(path)])
    con.execute("checkpoint")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def run_ingest(out: Path, path: Path, sends: int):
    con = connect(fresh(out, "bench_esp_ingest"))
    for sql in SETUP_SQL:
        con.execute(sql.format(t0=T0), {"sends": sends})
    con.execute("checkpoint")
    start = time.perf_counter()
    [result] = ingest_files(con, [path])
    con.execute("checkpoint")
    elapsed = time.perf_counter() - start
    matched = con.execute(
        "select json_extract_string(detail, '$.match') as m, count(*) from activities"
        " where activity_id like 'sendgrid:%' group by 1 order by 1"
    ).fetchall()
    con.close()
    return elapsed, result, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sends", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()

    start = time.perf_counter()
    path = generate(args.out, args.events, args.sends)
    size = path.stat().st_size / 1e6
    print(f"generated in {time.perf_counter() - start:.1f}s: {path} ({size:.0f} MB)")
    base = floor(args.out, path)
    took, result, matched = run_ingest(args.out, path, args.sends)
    print(f"{'':<10}{'events':>10}{'time':>10}{'events/s':>12}")
    for name, t in (("read_json", base), ("ingest", took)):
        print(f"{name:<10}{args.events:>10}{t:>9.2f}s{args.events / t / 1e6:>10.2f}M")
    print(f"ratio ingest / read_json: {took / base:.2f}x")
    print(
        f"ingest: loaded {result.loaded}, quarantined {result.quarantined}, "
        f"rows {result.rows}; by match: {dict(matched)}"
    )
    for note in result.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
