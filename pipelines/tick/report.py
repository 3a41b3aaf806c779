"""What a tick decided: per occurrence (``OccurrenceResult``) and per run (``RunReport``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import Location, SequencerError
from pipelines.tick.occurrences import Occurrence


class SequenceFailed(SequencerError):
    """A sequence's SQL failed at run time (a condition that fails only on data, a memory
    cap): the sequence is left out of the rest of the run; the others go on."""

    def __init__(self, sequence: str, on: dt.date | None, error: Exception) -> None:
        self.on = on
        self.error = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        when = f"its {on.isoformat()} occurrence" if on else "this run"
        super().__init__(
            f"failed at run time and was left out of {when} (and the rest of the run): "
            f"{self.error}",
            Location(sequence=sequence),
        )


@dataclass
class OccurrenceResult:
    """What one occurrence decided."""

    occurrence: Occurrence
    entries: int = 0
    exits: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    steps: dict[str, Counter] = field(default_factory=dict)
    rejected: Counter = field(default_factory=Counter)


@dataclass
class RunReport:
    """What ``run_tick`` did; ``stats`` is what the ``runs`` row records."""

    run_id: str
    as_of: dt.datetime
    occurrences: list[OccurrenceResult] = field(default_factory=list)
    seconds: Counter = field(default_factory=Counter)
    failed: list[SequenceFailed] = field(default_factory=list)
    # errors of batched statements that made a group run one sequence at a time (slower,
    # same decisions): a data-only failure of a condition, or a bug of the batching
    batch_fallbacks: list[str] = field(default_factory=list)

    @property
    def failed_sequences(self) -> set[str]:
        return {f.location.sequence for f in self.failed}

    @property
    def entries(self) -> int:
        return sum(r.entries for r in self.occurrences)

    @property
    def exits(self) -> Counter:
        return sum((r.exits for r in self.occurrences), Counter())

    @property
    def actions(self) -> Counter:
        return sum((r.actions for r in self.occurrences), Counter())

    def stats(self) -> dict[str, Any]:
        return {
            "occurrences": len(self.occurrences),
            "processed": [
                {"sequence": r.occurrence.sequence, "on": r.occurrence.on.isoformat()}
                for r in self.occurrences
            ],
            "entries": self.entries,
            "exits": dict(self.exits),
            "actions": dict(self.actions),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "failed": [
                {
                    "sequence": f.location.sequence,
                    "on": f.on.isoformat() if f.on else None,
                    "error": f.error,
                }
                for f in self.failed
            ],
            "batch_fallbacks": self.batch_fallbacks,
        }
