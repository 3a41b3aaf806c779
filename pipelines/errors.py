"""One error root for everything a user can get wrong.

Modelled on SQLMesh's ``ConfigError``: user-facing errors carry a location (file, sequence,
step, condition) so the message says where to look.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a problem sits: any subset of file, sequence, step, field path and condition."""

    file: str | None = None
    sequence: str | None = None
    step: str | None = None
    field: str | None = None
    condition: str | None = None

    def __str__(self) -> str:
        parts = [
            f"{name} {value!r}" if name != "file" else str(value)
            for name, value in (
                ("file", self.file),
                ("sequence", self.sequence),
                ("step", self.step),
                ("field", self.field),
                ("condition", self.condition),
            )
            if value is not None
        ]
        return ", ".join(parts)


class SequencerError(Exception):
    """Root of every error Sequencer raises on purpose; the CLI prints it as one line."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        where = str(self.location)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(SequencerError):
    """A sequence file, users.yaml or saved view is invalid."""


class ConditionError(ConfigError):
    """A SQL condition was rejected by the compiler.

    ``position`` is the character offset in the condition text where the problem starts,
    when sqlglot can tell.
    """

    def __init__(
        self, message: str, location: Location | None = None, position: int | None = None
    ) -> None:
        self.position = position
        super().__init__(message, location)


class UsageError(SequencerError):
    """A command-line argument is malformed or out of range (exit 2), e.g. ``--as-of``."""


class PermissionDenied(SequencerError):
    """The acting user may not see or change this sequence."""


class IngestError(SequencerError):
    """A whole input file cannot be ingested (unknown kind, unreadable). Bad rows are not
    errors: they go to the quarantine table."""


class DatabaseBusy(SequencerError):
    """Another process holds the DuckDB file (one writer per file)."""


@dataclass
class ErrorList(SequencerError):
    """Several problems found at once, e.g. by ``validate``."""

    errors: list[SequencerError] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, "\n".join(str(e) for e in self.errors))
        self.message = str(self)
        self.location = Location()
