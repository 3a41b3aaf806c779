"""Sequences compiled to SQL, and ``validate`` (SPEC 4, 5, 9).

A :class:`CompiledSequence` holds, for one sequence file, the DuckDB SQL of its audience,
step conditions and exit conditions, ready for the tick and preview to wrap in set-based
queries. The evaluation contract of every SQL fragment is in :mod:`pipelines.compile.condition`:
aliases ``contact``, ``account``, ``enrollment`` (steps only) and ``occurrence``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from pipelines.compile.activity import ActivityFeature
from pipelines.compile.condition import CompiledCondition, ConditionSchema, compile_conditions
from pipelines.compile.references import check_references
from pipelines.errors import ConfigError, ErrorList, Location, SequencerError
from pipelines.models import Sequence
from pipelines.workspace import Workspace

Phase = Literal["audience", "step", "exit"]
CompileConditions = Callable[..., list[CompiledCondition]]
PHASES: tuple[Phase, ...] = ("audience", "step", "exit")


@dataclass(frozen=True)
class Reads:
    """What a set of compiled conditions reads, from the compiler's record of each one
    (:class:`CompiledCondition` ``columns``, ``uses_now``, ``activities``), never from the SQL
    text.

    ``sequences``: the derived ``contact.sequences``; ``enrollment``: any ``enrollment.*``
    column; ``now``: ``now()``/``current_date`` (the occurrence's instant or date);
    ``activities``: an activity function (``activity_count``, ``last_activity_at``: the
    contact's activities as of the occurrence, so it changes with the occurrence too).

    >>> from pipelines.compile.condition import ConditionSchema, compile_condition
    >>> schema = ConditionSchema(contact={"email": "VARCHAR", "sequences": "VARCHAR[]"},
    ...     account={})
    >>> Reads.of([compile_condition("email = 'sequences'", schema)])
    Reads(sequences=False, enrollment=False, now=False, activities=False)
    >>> Reads.of([compile_condition("list_contains(sequences, 'x')", schema)]).sequences
    True
    """

    sequences: bool = False
    enrollment: bool = False
    now: bool = False
    activities: bool = False

    @classmethod
    def of(cls, conditions: Iterable[CompiledCondition]) -> Reads:
        conditions = list(conditions)
        return cls(
            sequences=any(c.reads_sequences for c in conditions),
            enrollment=any(c.reads_enrollment for c in conditions),
            now=any(c.uses_now for c in conditions),
            activities=any(c.activities for c in conditions),
        )


@dataclass(frozen=True)
class CompiledSequence:
    sequence: Sequence
    file: str
    views: dict[str, CompiledCondition]
    where: list[CompiledCondition]
    steps: dict[str, list[CompiledCondition]]
    exit_where: list[CompiledCondition]

    @property
    def name(self) -> str:
        return self.sequence.name

    @property
    def audience_sql(self) -> str | None:
        """One boolean: the union of the views and of the ANDed ``where`` conditions.

        A sequence with neither views nor conditions has no automatic audience: only
        manually enrolled contacts take part (documented decision, never "everyone").
        """
        parts = [f"({c.sql})" for c in self.views.values()]
        if self.where:
            parts.append("(" + " and ".join(f"({c.sql})" for c in self.where) + ")")
        return " or ".join(parts) if parts else None

    def step_sql(self, step_id: str) -> str:
        """The ANDed ``when`` of a step; ``true`` when it has none."""
        return " and ".join(f"({c.sql})" for c in self.steps[step_id]) or "true"

    @property
    def exit_sql(self) -> str | None:
        """Any exit condition true → exit (``exit.where`` entries are ORed: "any ... true")."""
        return " or ".join(f"({c.sql})" for c in self.exit_where) or None

    def conditions(self, phase: Phase) -> list[CompiledCondition]:
        """The compiled conditions of one phase: the audience's views and ``where``, every
        step's ``when``, or ``exit.where``."""
        if phase == "audience":
            return [*self.views.values(), *self.where]
        if phase == "step":
            return [c for conds in self.steps.values() for c in conds]
        if phase == "exit":
            return list(self.exit_where)
        raise ValueError(f"unknown phase {phase!r}")

    def reads(self, *phases: Phase) -> Reads:
        """What the conditions of ``phases`` (default: all) read; see :class:`Reads`."""
        return Reads.of(c for phase in phases or PHASES for c in self.conditions(phase))

    def activity_features(self, *phases: Phase) -> list[ActivityFeature]:
        """The activity functions the conditions of ``phases`` (default: all) call, each once,
        in a fixed order: the generated columns the tick adds to ``contact``."""
        found = {
            f for phase in phases or PHASES for c in self.conditions(phase) for f in c.activities
        }
        return sorted(found, key=ActivityFeature.sort_key)

    @property
    def reads_sequences(self) -> bool:
        """Some condition reads ``contact.sequences`` (the tick then builds that list)."""
        return self.reads().sequences

    @property
    def reads_enrollment(self) -> bool:
        """Some step condition reads ``enrollment.*`` (the tick then joins engagement)."""
        return self.reads("step").enrollment

    @property
    def reads_now(self) -> bool:
        """Some condition reads ``now()``/``current_date``: it changes with the occurrence."""
        return self.reads().now


@dataclass
class Compilation:
    sequences: dict[str, CompiledSequence] = field(default_factory=dict)
    errors: list[SequencerError] = field(default_factory=list)


def _catch(errors: list[SequencerError], fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ErrorList as exc:
        errors.extend(exc.errors)
    except SequencerError as exc:
        errors.append(exc)
    return None


def _compile_views(
    ws: Workspace,
    seq: Sequence,
    schema: ConditionSchema,
    errors: list[SequencerError],
    conditions: CompileConditions,
) -> dict[str, CompiledCondition]:
    """The saved views the audience names, each compiled as one audience condition."""
    file = ws.source(seq.name)
    views: dict[str, CompiledCondition] = {}
    for name in seq.audience.views:
        where = Location(file=file, sequence=seq.name, field=f"audience.views[{name}]")
        if name in ws.broken_views:
            reason = ws.broken_views[name]
            errors.append(ConfigError(f"saved view {name!r} cannot be loaded: {reason}", where))
            continue
        if name not in ws.views:
            errors.append(ConfigError(f"unknown saved view {name!r}", where))
            continue
        compiled = _catch(
            errors,
            conditions,
            [ws.views[name]],
            schema,
            scope="audience",
            record=seq.audience.record,
            location=where,
            limit=ws.users.condition_limit,
        )
        if compiled:
            views[name] = compiled[0]
    return views


def compile_sequence(
    ws: Workspace,
    seq: Sequence,
    schema: ConditionSchema,
    conditions: CompileConditions = compile_conditions,
) -> CompiledSequence:
    """Compile every condition of ``seq``; raise :class:`ErrorList` naming each bad one.
    ``conditions`` compiles a list of them (``compile_conditions``, or a cache's)."""
    file = ws.source(seq.name)
    limit = ws.users.condition_limit
    record = seq.audience.record
    errors: list[SequencerError] = []
    views = _compile_views(ws, seq, schema, errors, conditions)
    where = (
        _catch(
            errors,
            conditions,
            seq.audience.where,
            schema,
            scope="audience",
            record=record,
            limit=limit,
            location=Location(file=file, sequence=seq.name, field="audience.where"),
        )
        or []
    )
    steps: dict[str, list[CompiledCondition]] = {}
    for i, step in enumerate(seq.steps):
        steps[step.id] = (
            _catch(
                errors,
                conditions,
                step.when,
                schema,
                scope="step",
                limit=limit,
                location=Location(
                    file=file, sequence=seq.name, step=step.id, field=f"steps[{i}].when"
                ),
            )
            or []
        )
    exit_where = (
        _catch(
            errors,
            conditions,
            seq.exit.where,
            schema,
            scope="exit",
            limit=limit,
            location=Location(file=file, sequence=seq.name, field="exit.where"),
        )
        or []
    )
    if errors:
        raise ErrorList(errors)
    return CompiledSequence(seq, file, views, where, steps, exit_where)


def compile_workspace(
    ws: Workspace, schema: ConditionSchema, conditions: CompileConditions = compile_conditions
) -> Compilation:
    """Compile every sequence; collect every problem instead of stopping at the first."""
    out = Compilation(errors=list(ws.problems))
    for name, seq in ws.sequences.items():
        problems = check_references(ws, seq)
        compiled = _catch(problems, compile_sequence, ws, seq, schema, conditions)
        if problems:
            out.errors.extend(problems)
        elif compiled is not None:
            out.sequences[name] = compiled
    return out
