"""What a tick decided: per occurrence (``OccurrenceResult``) and per run (``RunReport``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipelines.tick.occurrences import Occurrence


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
        }
