"""validate checks that the secrets the sequences need are set (issue 9, item 1)."""

from __future__ import annotations

from pipelines.workspace import load_workspace, missing_secrets
from tests.workspace_helpers import USERS, write_workspace

SEQ = """
    name: outbound
    owner: alice
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi",
         track_opens: true}
      - {id: text, day: 2, action: sms, body: "hi"}
"""


def _users() -> dict:
    users = {**USERS, "users": [dict(u) for u in USERS["users"]]}
    users["users"][0]["mailbox"] = {
        "host": "smtp.x",
        "username": "alice",
        "password_env": "ALICE_PW",
    }
    users["tracking"] = {"base_url": "https://t.x", "secret_env": "TRACK_SECRET"}
    users["sms_gateway"] = {"url": "https://sms.x", "token_env": "SMS_TOKEN"}
    return users


def test_each_missing_secret_is_an_error_naming_its_variable(tmp_path):
    ws = load_workspace(write_workspace(tmp_path, {"outbound": SEQ}, users=_users()))
    errors = [str(e) for e in missing_secrets(ws, {})]
    for var in ("ALICE_PW", "TRACK_SECRET", "SMS_TOKEN"):
        assert any(var in e and "outbound" in e for e in errors), (var, errors)


def test_no_error_when_the_secrets_are_set(tmp_path):
    ws = load_workspace(write_workspace(tmp_path, {"outbound": SEQ}, users=_users()))
    env = {"ALICE_PW": "p", "TRACK_SECRET": "s", "SMS_TOKEN": "t"}
    assert missing_secrets(ws, env) == []


def test_validate_fails_naming_a_missing_secret(tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    for var in ("ALICE_PW", "TRACK_SECRET", "SMS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    write_workspace(tmp_path, {"outbound": SEQ}, users=_users())
    assert main(["validate", "--project", str(tmp_path)]) == 1
    assert "TRACK_SECRET" in capsys.readouterr().err
