"""User scope (SPEC 9): reps see only their own sequences; viewers cannot own one."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.errors import PermissionDenied
from pipelines.scope import Actor, require_sequence, resolve_actor, visible_sequences
from pipelines.workspace import load_workspace
from tests.workspace_helpers import write_workspace

SEQ = """
    name: {name}
    owner: {owner}
    steps:
      - {{id: call, day: 1, action: call_reminder, note: "Call"}}
"""


@pytest.fixture
def ws(tmp_path):
    write_workspace(
        tmp_path,
        {
            "a-alice": SEQ.format(name="a-alice", owner="alice"),
            "b-bruno": SEQ.format(name="b-bruno", owner="bruno"),
        },
    )
    return load_workspace(tmp_path)


def test_rep_sees_only_own_admin_and_operator_see_all(ws):
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "alice"))] == ["a-alice"]
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "vera"))] == []
    everyone = ["a-alice", "b-bruno"]
    assert [s.name for s in visible_sequences(ws, resolve_actor(ws, "olga"))] == everyone
    assert [s.name for s in visible_sequences(ws, Actor())] == everyone


def test_rep_cannot_use_another_users_sequence(ws):
    with pytest.raises(PermissionDenied, match="belongs to 'bruno'"):
        require_sequence(ws, resolve_actor(ws, "alice"), "b-bruno")
    assert require_sequence(ws, resolve_actor(ws, "olga"), "b-bruno").owner == "bruno"


def test_unknown_user_is_refused(ws):
    with pytest.raises(PermissionDenied, match="unknown user"):
        resolve_actor(ws, "mallory")


def test_cli_preview_of_another_users_sequence_exits_4(ws, tmp_path, capsys):
    code = main(["preview", "b-bruno", "--project", str(tmp_path), "--user", "alice"])
    assert code == 4
    assert "belongs to 'bruno'" in capsys.readouterr().err


def test_cli_sequences_respects_env_user(ws, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQUENCER_USER", "bruno")
    assert main(["sequences", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "b-bruno" in out and "a-alice" not in out


def test_sequence_owned_by_viewer_does_not_validate(tmp_path, capsys):
    write_workspace(tmp_path, {"v": SEQ.format(name="v", owner="vera")})
    code = main(["validate", "--project", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "sequences/v.yaml" in err and "lacks create_sequences" in err
