"""The secrets a send needs, checked before it starts (issue 9: a missing tracking secret
turned 314 emails ``held``). Secrets live in environment variables named by users.yaml
(SPEC 2); this says which of those the workspace's sequences need and are not set.

Same meaning as ``pipelines.workspace.missing_secrets`` (validate); kept here, private to the
send, until one of the two calls the other (see the issue 9 report).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pipelines.errors import ConfigError, Location, SequencerError
from pipelines.models import Sequence, Step
from pipelines.workspace import Workspace


def missing_secrets(ws: Workspace, environ: Mapping[str, str]) -> list[SequencerError]:
    """One error per (sequence, secret) a sequence needs and ``environ`` lacks: the tracking
    secret (tracked or unsubscribe-linked emails), the password of each sending mailbox that
    logs in, the SMS gateway token. Ordered by sequence, then secret."""
    found: dict[tuple[str, str], SequencerError] = {}
    for seq in sorted(ws.sequences.values(), key=lambda s: s.name):
        for step in seq.steps:
            for variable, what in _needs(ws, seq, step):
                if variable and environ.get(variable):
                    continue
                key = (seq.name, what)
                found.setdefault(key, _error(seq, step, variable, what))
    return list(found.values())


def _error(seq: Sequence, step: Step, variable: str | None, what: str) -> SequencerError:
    name = f"environment variable {variable}" if variable else "its variable (none named)"
    return ConfigError(f"{what}: {name} is not set", Location(sequence=seq.name, step=step.id))


def _needs(ws: Workspace, seq: Sequence, step: Step) -> Iterator[tuple[str | None, str]]:
    users = ws.users
    if step.action == "email":
        if step.unsubscribe_link or step.track_opens or step.track_clicks:
            if users.tracking is not None:
                yield users.tracking.secret_env, "tracking secret"
        sender = users.user(seq.owner if step.from_ == "owner" else step.from_)
        if sender and sender.mailbox and sender.mailbox.username:
            yield sender.mailbox.password_env, f"mailbox password of {sender.id!r}"
    elif step.action == "sms" and users.sms_gateway and users.sms_gateway.token_env:
        yield users.sms_gateway.token_env, "SMS gateway token"
