"""What a compiled sequence reads (``CompiledSequence.reads``): facts from the compiler's own
record of each condition, never a search of the generated SQL."""

from __future__ import annotations

import pytest

from pipelines.compile.sequence import Reads
from tests.tick_helpers import (
    classic,
    compile_root,
    contact,
    enrollments,
    insert,
    open_db,
    tick,
    write_sequences,
)

CALL = "- {id: call, day: 1, action: call_reminder, when: [STEP]}"


def compiled(tmp_path, audience: str, step: str = '"true"', exit_where: str | None = None):
    """Compile one sequence ``s`` with the given audience, step and exit conditions."""
    con = open_db(tmp_path)
    extra = f"exit:\n  where: [{exit_where}]\n" if exit_where else ""
    root = write_sequences(
        tmp_path / "ws",
        {"s": classic("s", CALL.replace("STEP", step), audience=audience, extra=extra)},
    )
    _, compilation = compile_root(con, root)
    con.close()
    return compilation.sequences["s"]


def test_facts_per_phase(tmp_path):
    """The audience reads now(), the step reads enrollment.*, the exit reads sequences: each
    phase says what it reads, and the sequence-wide facts are their union."""
    c = compiled(
        tmp_path,
        audience='where: ["created_at > now() - interval 30 day"]',
        step='"enrollment.emails_sent = 0"',
        exit_where="\"list_contains(sequences, 'other')\"",
    )
    assert c.reads("audience") == Reads(now=True)
    assert c.reads("step") == Reads(enrollment=True)
    assert c.reads("exit") == Reads(sequences=True)
    assert c.reads("exit", "audience") == Reads(sequences=True, now=True)
    assert c.reads() == Reads(sequences=True, enrollment=True, now=True)
    assert (c.reads_sequences, c.reads_enrollment, c.reads_now) == (True, True, True)


def test_a_sequence_reading_nothing_special(tmp_path):
    c = compiled(tmp_path, audience="where: [\"email like '%@x.example'\"]")
    assert c.reads() == Reads()
    assert (c.reads_sequences, c.reads_enrollment, c.reads_now) == (False, False, False)


@pytest.mark.parametrize("word", ["sequences", "enrollment", "occurrence", "now()"])
def test_a_string_literal_is_not_a_read(tmp_path, word):
    """``'sequences'`` (or 'enrollment', 'occurrence', 'now()') inside a string literal
    reads nothing: the old regex over the SQL took it for a read."""
    literal = f"\"email <> '{word}'\""
    c = compiled(tmp_path, audience=f"where: [{literal}]", step=literal, exit_where=literal)
    assert c.reads() == Reads()
    assert c.conditions("audience")[0].sql.count(word) == 1  # the literal is in the SQL


def test_the_tick_precomputes_an_audience_with_a_sequences_literal(tmp_path):
    """Audience ``email <> 'sequences'`` reads neither sequences nor now(): the tick evaluates
    it once per run over the static contacts (tick_audience_static), like any other, and no
    step reads enrollment.*, so the engagement activities are not gathered. The audience
    that really reads ``sequences`` is evaluated per occurrence. Both enrol the same way."""
    con = open_db(tmp_path)
    insert(con, "contacts", [contact("c1"), contact("c2", email="sequences")])
    call = CALL.replace("STEP", "\"first_name <> 'enrollment'\"")
    root = write_sequences(
        tmp_path / "ws",
        {
            "lit": classic("lit", call, audience="where: [\"email <> 'sequences'\"]"),
            "reads": classic("reads", call, audience='where: ["len(sequences) >= 0"]'),
        },
    )
    tick(con, root, "2026-03-02 10:00")
    static = con.execute("select distinct sequence from tick_audience_static").fetchall()
    assert static == [("lit",)]
    temp = con.execute(
        "select table_name from duckdb_tables() where temporary and table_name like 'tick_email%'"
    ).fetchall()
    assert temp == []
    assert [(s, c) for s, c, *_ in enrollments(con)] == [
        ("lit", "c1"),
        ("reads", "c1"),
        ("reads", "c2"),
    ]
    con.close()
