"""Loading a workspace (SPEC 2): users.yaml, sequences/*.yaml, views and templates.

Loading checks each file's shape (pydantic); :func:`validate` checks what needs the whole
workspace and the database schema: owners and their permissions, templates, views, and
every SQL condition through the compiler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.channels.tracking import secret_names
from pipelines.errors import ConfigError, ErrorList, Location, SequencerError
from pipelines.models import Sequence, UsersFile

# libyaml's loader where the build has it: the same documents, ~10x faster than the pure
# Python one (which was half of compiling 200 sequences).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Workspace:
    """Everything a run reads from the project directory."""

    root: Path
    users: UsersFile
    sequences: dict[str, Sequence] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    broken_views: dict[str, str] = field(default_factory=dict)
    problems: list[SequencerError] = field(default_factory=list)

    @property
    def templates_dir(self) -> Path:
        return self.root / "sequences" / "templates"

    def source(self, name: str) -> str:
        """The file a sequence came from, relative to the workspace, for error messages."""
        path = self.sources.get(name)
        return str(path.relative_to(self.root)) if path else name


def confined(base: Path, name: str) -> Path | None:
    """``base / name`` resolved (symlinks followed), or None when it leaves ``base``.

    >>> confined(Path("/ws/t"), "../x") is None, confined(Path("/ws/t"), "/etc/passwd") is None
    (True, True)
    """
    base = base.resolve()
    path = (base / name).resolve()
    return path if path.is_relative_to(base) and path != base else None


def _field_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a readable path: ``steps[1].when[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_text(path: Path, root: Path) -> str:
    """A workspace file as text; one that is not UTF-8 is a :class:`ConfigError` naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}): save the file as UTF-8",
            Location(file=_rel(path, root)),
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot be read: {exc.strerror}", Location(file=_rel(path, root))
        ) from exc


def _read_yaml(path: Path, root: Path) -> Any:
    text = read_text(path, root)
    try:
        return yaml.load(text, Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", Location(file=_rel(path, root))) from exc


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _model_errors(exc: ValidationError, location: Location, raw: Any) -> list[ConfigError]:
    """One ConfigError per pydantic error, naming the field path and the step id if any."""
    errors = []
    for err in exc.errors():
        loc = err["loc"]
        step = None
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            steps = raw.get("steps") if isinstance(raw, dict) else None
            if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
                step = steps[loc[1]].get("id")
        message = err["msg"].removeprefix("Value error, ")
        errors.append(
            ConfigError(message, replace(location, field=_field_path(loc) or None, step=step))
        )
    return errors


def load_users(root: Path) -> UsersFile:
    """Read ``users.yaml``; a missing file means a workspace with no users."""
    path = root / "users.yaml"
    if not path.exists():
        return UsersFile()
    raw = _read_yaml(path, root)
    try:
        return UsersFile.model_validate(raw)
    except ValidationError as exc:
        raise ErrorList(_model_errors(exc, Location(file="users.yaml"), raw)) from exc


def load_sequence(path: Path, root: Path) -> Sequence:
    """Read one sequence file; ``name`` defaults to the file name without ``.yaml``."""
    raw = _read_yaml(path, root)
    if not isinstance(raw, dict):
        raise ConfigError("a sequence file must be a mapping", Location(file=_rel(path, root)))
    raw.setdefault("name", path.stem)
    location = Location(file=_rel(path, root), sequence=str(raw["name"]))
    try:
        return Sequence.model_validate(raw)
    except ValidationError as exc:
        raise ErrorList(_model_errors(exc, location, raw)) from exc


def load_views(root: Path, problems: list[SequencerError] | None = None) -> dict[str, str]:
    """Saved views: ``sequences/views/NAME.sql`` holds one SQL boolean expression.

    A view file that cannot be read is left out and its error appended to ``problems``."""
    views_dir = root / "sequences" / "views"
    if not views_dir.is_dir():
        return {}
    views = {}
    for p in sorted(views_dir.glob("*.sql")):
        try:
            if confined(views_dir, p.name) is None:
                raise ConfigError("resolves outside sequences/views/", Location(file=_rel(p, root)))
            views[p.stem] = read_text(p, root).strip().rstrip(";").strip()
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(exc)
    return views


def load_workspace(root: Path | str, *, strict: bool = True) -> Workspace:
    """Load every file of the workspace.

    With ``strict`` every problem is collected and raised as one :class:`ErrorList`;
    without it, bad sequence files are left out (a run keeps going for the others) and
    the problems are returned in ``Workspace.problems``.
    """
    root = Path(root).resolve()
    problems: list[SequencerError] = []
    users = load_users(root)
    view_problems: list[SequencerError] = []
    ws = Workspace(root=root, users=users, views=load_views(root, view_problems))
    ws.broken_views = {Path(e.location.file or "").stem: e.message for e in view_problems}
    problems.extend(view_problems)
    for path in sorted((root / "sequences").glob("*.y*ml")):
        try:
            seq = load_sequence(path, root)
        except ErrorList as exc:
            problems.extend(exc.errors)
            continue
        except ConfigError as exc:
            problems.append(exc)
            continue
        if seq.name in ws.sequences:
            problems.append(
                ConfigError(
                    f"sequence name already used by {ws.source(seq.name)}",
                    Location(file=_rel(path, root), sequence=seq.name),
                )
            )
            continue
        ws.sequences[seq.name] = seq
        ws.sources[seq.name] = path
    if problems and strict:
        raise ErrorList(problems)
    ws.problems = problems
    return ws


def missing_secrets(ws: Workspace, environ: Mapping[str, str]) -> list[SequencerError]:
    """The environment variables the sequences need that are not set in ``environ``: the
    tracking secret (an email step tracks or carries an unsubscribe link), the mailbox
    password of each user who sends email steps (when the mailbox has a username), the SMS
    gateway token (any sms step). One error per variable and sequence."""
    errors: list[SequencerError] = []
    users = ws.users
    for name, seq in sorted(ws.sequences.items()):
        needed: dict[str, str] = {}
        for step in seq.steps:
            if step.action == "email":
                if (
                    users.tracking
                    and users.tracking.secret_env
                    and (step.track_opens or step.track_clicks or step.unsubscribe_link)
                ):
                    first = secret_names(users.tracking)[0]
                    needed[first] = "tracking.secret_env"
                sender = users.user(seq.owner if step.from_ == "owner" else step.from_)
                box = sender.mailbox if sender else None
                if box and box.username and box.password_env:
                    needed[box.password_env] = f"user {sender.id!r} mailbox password_env"
            if step.action == "sms" and users.sms_gateway and users.sms_gateway.token_env:
                needed[users.sms_gateway.token_env] = "sms_gateway.token_env"
        for var, what in needed.items():
            if not environ.get(var):
                at = Location(file=ws.source(name), sequence=name)
                errors.append(ConfigError(f"environment variable {var} ({what}) is not set", at))
    return errors


def missing_inbox_secrets(ws: Workspace, environ: Mapping[str, str]) -> dict[str, str]:
    """User id → the reason their ``inbox:`` cannot be read (its ``password_env`` unset).

    Only ``mailbox poll`` reports these, as warnings: an inbox never blocks ``send`` or
    ``run``, so they are not part of :func:`missing_secrets`."""
    return {
        user.id: f"environment variable {user.inbox.password_env} (user {user.id!r} inbox "
        "password_env) is not set"
        for user in ws.users.users
        if user.inbox and not environ.get(user.inbox.password_env)
    }
