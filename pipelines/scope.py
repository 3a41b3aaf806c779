"""User scope (SPEC 9): who may list, preview, edit and enrol into which sequence.

Commands act as a user (``--user U`` or ``SEQUENCER_USER``). With no user the command acts
as the *operator* — the scheduler's case — with full access.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import PermissionDenied, SequencerError
from pipelines.models import Sequence
from pipelines.workspace import Workspace


@dataclass(frozen=True)
class Actor:
    """The acting user; ``user_id`` None is the operator (full access)."""

    user_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.user_id is None

    def describe(self) -> str:
        return "operator (full access)" if self.is_operator else f"user {self.user_id!r}"


def resolve_actor(ws: Workspace, user_id: str | None) -> Actor:
    """Check the user exists and may view sequences at all."""
    if not user_id:
        return Actor()
    if ws.users.user(user_id) is None:
        raise PermissionDenied(f"unknown user {user_id!r} (not in users.yaml)")
    if not (ws.users.can(user_id, "view_sequences") or ws.users.can(user_id, "admin")):
        raise PermissionDenied(f"user {user_id!r} may not view sequences")
    return Actor(user_id)


def sees_all(ws: Workspace, actor: Actor) -> bool:
    return actor.is_operator or ws.users.can(actor.user_id or "", "admin")


def visible_sequences(ws: Workspace, actor: Actor) -> list[Sequence]:
    """The sequences ``actor`` may list: their own, or all for admins and the operator."""
    return [
        seq
        for name, seq in sorted(ws.sequences.items())
        if sees_all(ws, actor) or seq.owner == actor.user_id
    ]


def require_sequence(ws: Workspace, actor: Actor, name: str) -> Sequence:
    """The sequence ``name`` if ``actor`` owns it (or sees all); a clear error otherwise."""
    seq = ws.sequences.get(name)
    if seq is None:
        raise SequencerError(f"no sequence named {name!r}")
    if not (sees_all(ws, actor) or seq.owner == actor.user_id):
        raise PermissionDenied(
            f"sequence {name!r} belongs to {seq.owner!r}; {actor.describe()} may only use "
            "their own sequences"
        )
    return seq
