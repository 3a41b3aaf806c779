"""Which occurrences a run processes: every sequence's first occurrence date (recorded once in
``sequence_state``), then the unprocessed ones, grouped by instant.

Ordering rule: occurrences are processed in global instant order and never before W (the
state's watermark). A sequence first seen (or rescheduled) after W starts with its first
occurrence at or after W; ``starts_on`` catches up from there only when no later instant has
been processed yet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from pipelines.tick.occurrences import Occurrence, first_occurrence, occurrences_between
from pipelines.tick.state import watermark


def register_sequences(con, compilation, as_of: dt.datetime) -> dict[str, dt.date]:
    """First occurrence date of every compiled sequence; newly seen ones are recorded."""
    known = dict(con.execute("select sequence, first_occurrence_on from sequence_state").fetchall())
    new = []
    for name, compiled in compilation.sequences.items():
        if name not in known:
            seq = compiled.sequence
            known[name] = first_occurrence(seq.schedule, seq.starts_on, as_of)
            new.append((name, as_of, known[name]))
    if new:
        con.executemany(
            "insert into sequence_state (sequence, first_seen_at, first_occurrence_on) "
            "values (?, ?, ?)",
            new,
        )
    return known


def pending_occurrences(con, compilation, starts: dict[str, dt.date], until: dt.datetime):
    """Unprocessed occurrences with W ≤ instant ≤ until, sorted by (instant, sequence).

    W is the latest instant processed: the ledger's, which a group commits with its rows (the
    stored state's watermark is written at the end of a run, so after a run stopped midway
    it is older; it is never later)."""
    done = con.execute(
        "select sequence, max(occurrence_on), max(occurrence_at) from occurrences group by 1"
    ).fetchall()
    last_done = {sequence: on for sequence, on, _ in done}
    stored, _ = watermark(con)
    w = max((t for t in (stored, *(at for *_, at in done)) if t is not None), default=None)
    found: list[Occurrence] = []
    for name, compiled in compilation.sequences.items():
        first = starts[name]
        if name in last_done:
            first = max(first, last_done[name] + dt.timedelta(days=1))
        found += occurrences_between(name, compiled.sequence.schedule, first, w, until)
    return sorted(found, key=lambda o: (o.at, o.sequence))


def group_by_instant(occurrences: list[Occurrence]) -> list[list[Occurrence]]:
    groups: dict[dt.datetime, list[Occurrence]] = defaultdict(list)
    for occ in occurrences:
        groups[occ.at].append(occ)
    return [groups[at] for at in sorted(groups)]
