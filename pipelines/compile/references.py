"""Reference checks of a sequence (SPEC 4): its owner and their permission, the sequences it
is exclusive with, the users its steps name, and its templates (present and parseable by the
sandbox that renders them).
"""

from __future__ import annotations

import functools
from dataclasses import replace

from jinja2 import TemplateSyntaxError

from pipelines.channels.render import SequencerSandbox
from pipelines.errors import ConfigError, Location, SequencerError
from pipelines.models import Sequence
from pipelines.workspace import Workspace, confined, read_text


def check_references(ws: Workspace, seq: Sequence) -> list[SequencerError]:
    """Owner and permissions, templates, users named by steps, exclusive_with names."""
    file = ws.source(seq.name)
    errors: list[SequencerError] = []
    at = Location(file=file, sequence=seq.name)
    owner = ws.users.user(seq.owner)
    if owner is None:
        errors.append(ConfigError(f"unknown owner {seq.owner!r}", replace(at, field="owner")))
    elif not ws.users.can(seq.owner, "create_sequences"):
        errors.append(
            ConfigError(
                f"owner {seq.owner!r} (role {owner.role!r}) lacks create_sequences",
                Location(file=file, sequence=seq.name, field="owner"),
            )
        )
    for other in seq.exclusive_with:
        if other not in ws.sequences:
            errors.append(
                ConfigError(
                    f"exclusive_with names unknown sequence {other!r}",
                    Location(file=file, sequence=seq.name, field="exclusive_with"),
                )
            )
    for i, step in enumerate(seq.steps):
        loc = Location(file=file, sequence=seq.name, step=step.id)
        for key in ("from_", "reply_to"):
            value = getattr(step, key)
            if value != "owner" and "@" not in value and ws.users.user(value) is None:
                name = key.rstrip("_")
                errors.append(ConfigError(f"{name}: unknown user {value!r}", loc))
        sources = {
            f"steps[{i}].subject": step.subject,
            f"steps[{i}].body": step.body,
            f"steps[{i}].note": step.note,
        }
        for j, variant in enumerate(step.variants or []):
            sources[f"steps[{i}].variants[{j}].subject"] = variant.subject
        templates = [step.template, *(v.template for v in step.variants or [])]
        for template in dict.fromkeys(t for t in templates if t):  # variants: issue 13
            text = _template_text(ws, template, loc, errors)
            if text is not None:
                sources[f"template {template}"] = text
        for name, text in sources.items():
            if text is None:
                continue
            if problem := _syntax_error(text):
                errors.append(ConfigError(f"{name}: template syntax error {problem}", loc))
    return errors


@functools.lru_cache(maxsize=4096)
def _syntax_error(text: str) -> str | None:
    """Where and why ``text`` does not parse in the sandbox that renders it; None if it does.
    Once per text: many sequences share a template."""
    try:
        _sandbox().parse(text)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


@functools.cache
def _sandbox() -> SequencerSandbox:
    return SequencerSandbox()


def _template_text(
    ws: Workspace, name: str, loc: Location, errors: list[SequencerError]
) -> str | None:
    """The template's text, read only when it resolves inside ``sequences/templates/``."""
    path = confined(ws.templates_dir, name)
    if path is None:
        errors.append(ConfigError(f"template {name!r} resolves outside sequences/templates/", loc))
        return None
    if not path.is_file():
        errors.append(ConfigError(f"unknown template {name!r}", loc))
        return None
    try:
        return read_text(path, ws.root)
    except ConfigError as exc:
        errors.append(ConfigError(f"template {name!r}: {exc.message}", loc))
        return None
