"""Typing and checks (SPEC 3): one SQL model (``sql/ingest/stg_<entity>.sql``) types the
staged rows into ``ingest_stg`` with the reasons each record cannot load; duplicates and
CSV records DuckDB read wrongly (stray quotes, multi-line values) get their reasons here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines import sqlrun
from pipelines.ingest.read import BASE_COLUMNS, KEYS, joined, quote_expr, stage_lines

ACTIVITY_TYPES = [
    "email_sent", "email_delivered", "email_opened", "email_clicked", "email_replied",
    "email_bounced", "unsubscribed", "call_incoming", "call_outgoing", "chat", "sms_sent",
    "sms_received", "meeting", "task_completed",
    "email_auto_replied", "email_soft_bounced", "email_complained",  # SPEC 10
]  # fmt: skip
TYPES = ("BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP")  # the inference order
DIRTY_SHARE = 0.9  # a column typed from most of its values; the rest are bad rows
# One RFC 5321 mailbox: a dot-atom local part (no quoted strings), a domain of LDH labels with
# a letter-led top-level label (no address literals); at most 64 characters before the @ and
# 254 in all (checked in sql/ingest/stg_*.sql). Spaces, commas, display names (`Name <a@x>`),
# a second @ or a list are bad rows.
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = (
    rf"(?:{ATEXT}+(?:\.{ATEXT}+)*)@(?:{LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
)
# One well-formed CSV record: fields either fully quoted (with "" escapes) or free of quotes.
CSV_RECORD_RE = r'(?s)(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*\r?'


def custom_columns(con, entity: str, columns: dict[str, str], notes: list[str]) -> list[dict]:
    """Extra columns of a contacts/accounts file with their type: fixed by the table when
    the column exists (a stored BIGINT column widens to DOUBLE when the file has decimals),
    otherwise inferred from this file's values and added to the table. What an analyst
    should know (dirty values, text columns of mostly numbers, widening) goes to ``notes``."""
    stored = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where table_name = $1 and schema_name = 'main' and not internal",
            [entity],
        ).fetchall()
    )
    extra = [n for n in columns if n not in BASE_COLUMNS[entity]]
    looked_at = [n for n in extra if n not in stored or stored[n] == "BIGINT"]
    if looked_at:
        counts = _type_counts(con, looked_at, columns, numeric_only=True)
        # a column all of whose values are integers (or numbers) is typed from this first
        # pass; the others (and no stored column: it only widens) need every type's counts
        undecided = [
            n for n in looked_at
            if n not in stored and counts.get(n)
            and counts[n]["n"] not in (counts[n]["bigint_ok"], counts[n]["double_ok"])
        ]  # fmt: skip
        if undecided:
            counts |= _type_counts(con, undecided, columns, numeric_only=False)
        for name in looked_at:
            c = counts.get(name)
            type_ = _widened(name, c, notes) if name in stored else _inferred(name, c, notes)
            if name not in stored:
                con.execute(f"alter table {entity} add column {sqlrun.ident(name)} {type_}")
            elif type_ != stored[name]:
                con.execute(f"alter table {entity} alter {sqlrun.ident(name)} type {type_}")
            stored[name] = type_
    return [{"name": n, "source": columns[n], "type": stored[n]} for n in extra]


def _type_counts(con, names: list[str], columns: dict[str, str], *, numeric_only: bool):
    sql = sqlrun.render(
        "ingest/int_infer_types.sql",
        columns=[{"name": n, "source": columns[n]} for n in names],
        numeric_only=numeric_only,
    )
    return {row["column_name"]: row for row in sqlrun.dicts(con.execute(sql))}


def _inferred(name: str, c: dict | None, notes: list[str]) -> str:
    """The first type every value casts to; else the first that at least 90 % of the values
    cast to (the others become bad rows naming the column and the value); else VARCHAR."""
    if not c or not c["n"]:
        return "VARCHAR"
    for t in TYPES:
        if c[f"{t.lower()}_ok"] == c["n"]:
            return t
    numeric = "BIGINT" if c["bigint_ok"] == c["double_ok"] else "DOUBLE"
    best = max((numeric, "BOOLEAN", "DATE", "TIMESTAMP"), key=lambda t: c[f"{t.lower()}_ok"])
    ok, bad = c[f"{best.lower()}_ok"], c[f"{best.lower()}_bad"]
    if ok >= DIRTY_SHARE * c["n"]:
        notes.append(
            f"column {name}: typed {best} from {ok} of {c['n']} values; the rows with other "
            f"values are quarantined (e.g. {bad!r})"
        )
        return best
    if ok:
        notes.append(
            f"column {name}: typed VARCHAR (text): only {ok} of {c['n']} values are {best}"
            f" (e.g. not {bad!r})"
        )
    return "VARCHAR"


def _widened(name: str, c: dict | None, notes: list[str]) -> str:
    """A stored BIGINT column widens to DOUBLE when the file has decimals, never rounds."""
    if c and c["double_ok"] > c["bigint_ok"]:
        notes.append(
            f"column {name}: widened BIGINT -> DOUBLE (this file has decimals, e.g. "
            f"{c['bigint_bad']!r})"
        )
        return "DOUBLE"
    return "BIGINT"


@dataclass
class Staged:
    """What one pass over ``ingest_stg`` (after the in-file dedup) found, so no later step
    scans it again to count."""

    total: int  # staged records
    bad: int  # records with a reason (duplicates of the file included)
    quoted: bool  # some CSV value holds a quote: the lines are checked against the grammar
    match_emails: bool  # good activities with an email and no contact_id

    @property
    def good(self) -> int:
        return self.total - self.bad


def stage_typed(con, entity, fmt, columns, custom, tag) -> Staged:
    src = {c: columns.get(c, "null::varchar") for c in BASE_COLUMNS[entity]}
    sql = sqlrun.render(
        f"ingest/stg_{entity}.sql", src=src, custom=custom, jsonl=fmt == "jsonl",
        quote_expr=quote_expr(columns) if fmt == "csv" else "false",
    )  # fmt: skip
    if entity != "activities":
        con.execute(
            "create temp table if not exists ingest_timezones as "
            "select distinct name from pg_timezone_names()"
        )
    params = {"email_re": EMAIL_RE, "types": ACTIVITY_TYPES, "tag": tag}
    sqlrun.run(con, f"create temp table ingest_stg as {sql}", params)
    return _count_and_dedup(con, entity)


def _count_and_dedup(con, entity: str) -> Staged:
    """One scan for every count the load needs; then repeated ids of the file are marked
    (count - count distinct of the good keys is exactly how many int_dedup.sql marks)."""
    key = sqlrun.ident(KEYS[entity])
    good = "len(__reasons) = 0"
    emails = (
        f"count(*) filter (where {good} and contact_id is null and email is not null) > 0"
        if entity == "activities"
        else "false"
    )
    total, bad, repeats, quoted, match_emails = con.execute(
        f"select count(*), count(*) filter (where not {good}),"
        f" count({key}) filter (where {good}) - count(distinct {key}) filter (where {good}),"
        f" coalesce(bool_or(__quoted), false), {emails} from ingest_stg"
    ).fetchone()
    if repeats:
        sql = sqlrun.render(
            "ingest/int_dedup.sql", key=KEYS[entity], has_updated_at=entity != "activities"
        )
        con.execute(
            f"update ingest_stg set __reasons = [$reason] where __rec in ({sql})",
            {"reason": f"duplicate {KEYS[entity]} in file"},
        )
    return Staged(total, bad + repeats, quoted, match_emails)


def check_csv_text(con, path: Path, columns: dict[str, str], staged: Staged) -> bool:
    """Map CSV records to physical lines and catch quotes DuckDB read as literals. Only runs
    when something is wrong or suspicious (a clean file costs nothing more than the typing
    pass, which tells whether a value holds a quote); returns whether it ran, i.e. whether
    there may be something to quarantine. Rows it finds are counted into ``staged``."""
    (rejects,) = con.execute("select count(*) from ingest_reject_rows").fetchone()
    quoted = staged.quoted
    if not (rejects or staged.bad or quoted):
        return False
    stage_lines(con, path)  # physical lines: blank lines and multi-line values
    row_text = joined(columns)
    nl_expr = f"len({row_text}) - len(replace({row_text}, chr(10), ''))"
    (multi_line,) = con.execute(
        f"select count(*) > 0 from ingest_raw as raw where {nl_expr} > 0 union all "
        "select count(*) > 0 from ingest_reject_rows where contains(raw, chr(10))"
        " order by 1 desc limit 1"
    ).fetchone()
    sql = sqlrun.render("ingest/int_csv_line_map.sql", nl_expr=nl_expr, single_line=not multi_line)
    con.execute(f"create temp table ingest_line_map as {sql}")
    if not quoted:
        return True
    sql = sqlrun.render("ingest/int_stray_quotes.sql", quote_expr=quote_expr(columns))
    found, newly_bad = con.execute(
        "select count(*), count(*) filter (where len(__reasons) = 0) from ingest_stg"
        f" where __rec in ({sql})",
        {"csv_re": CSV_RECORD_RE},
    ).fetchone()
    if found:  # a bad row with a stray quote gets the reason too
        con.execute(
            f"update ingest_stg set __reasons = list_append(__reasons, 'stray quote') "
            f"where __rec in ({sql})",
            {"csv_re": CSV_RECORD_RE},
        )
        staged.bad += newly_bad
    return True
