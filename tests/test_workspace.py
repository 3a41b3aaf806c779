"""Sequence files and users.yaml: typed models whose errors name the file and field path."""

from __future__ import annotations

import pytest

from pipelines.errors import ErrorList
from pipelines.workspace import load_workspace
from tests.workspace_helpers import write_workspace

GOOD = """
    name: outbound
    owner: alice
    audience: {where: ["lifecycle_stage = 'lead'"]}
    schedule: {time: "09:30", timezone: America/New_York, exclude_weekends: true}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
      - {id: call, day: 3, action: call_reminder, note: "Call them"}
"""


def test_good_sequence_loads_with_defaults(tmp_path):
    ws = load_workspace(write_workspace(tmp_path, {"outbound": GOOD}))
    seq = ws.sequences["outbound"]
    assert seq.type == "classic" and seq.exit.replied and seq.exit.all_steps_done
    assert [s.id for s in seq.steps] == ["intro", "call"]
    assert seq.has_email_steps
    assert ws.source("outbound") == "sequences/outbound.yaml"


def test_name_defaults_to_file_stem(tmp_path):
    text = GOOD.replace("    name: outbound\n", "")
    ws = load_workspace(write_workspace(tmp_path, {"my-seq": text}))
    assert list(ws.sequences) == ["my-seq"]


@pytest.mark.parametrize(
    ("old", "new", "field", "step"),
    [
        ("timezone: America/New_York", "timezone: Mars/Base", "schedule.timezone", None),
        ('time: "09:30"', 'time: "9h30"', "schedule.time", None),
        ("day: 3, action: call_reminder", "day: 0, action: call_reminder", "steps[1].day", "call"),
        ("action: call_reminder", "action: fax", "steps[1].action", "call"),
        ("owner: alice", "owner: alice\n    colour: blue", "colour", None),
    ],
)
def test_errors_name_file_field_and_step(tmp_path, old, new, field, step):
    write_workspace(tmp_path, {"outbound": GOOD.replace(old, new)})
    with pytest.raises(ErrorList) as info:
        load_workspace(tmp_path)
    [err] = info.value.errors
    assert err.location.file == "sequences/outbound.yaml"
    assert err.location.sequence == "outbound"
    assert err.location.field == field
    assert err.location.step == step


def test_classic_steps_need_days_smart_needs_interval(tmp_path):
    no_day = GOOD.replace("day: 3, ", "")
    smart = GOOD.replace("owner: alice", "owner: alice\n    type: smart")
    write_workspace(tmp_path, {"a": no_day, "b": smart.replace("name: outbound", "name: b")})
    with pytest.raises(ErrorList) as info:
        load_workspace(tmp_path)
    messages = " | ".join(str(e) for e in info.value.errors)
    assert "need a 'day'" in messages and "interval_days" in messages


def test_bad_sequence_does_not_hide_the_good_ones_when_not_strict(tmp_path):
    write_workspace(tmp_path, {"outbound": GOOD, "broken": "name: broken\nowner: [\n"})
    ws = load_workspace(tmp_path, strict=False)
    assert list(ws.sequences) == ["outbound"]
    assert ws.problems and ws.problems[0].location.file == "sequences/broken.yaml"


def test_users_file_rejects_unknown_role_and_permission(tmp_path):
    users = {
        "users": [{"id": "x", "email": "x@y.z", "role": "ghost"}],
        "roles": {"rep": ["view_sequences", "fly"]},
    }
    write_workspace(tmp_path, {}, users=users)
    with pytest.raises(ErrorList) as info:
        load_workspace(tmp_path)
    assert info.value.errors[0].location.file == "users.yaml"
    assert "fly" in str(info.value)
    # the permissions are right now: the unknown role is what is left, named with its user
    users["roles"] = {"rep": ["view_sequences"]}
    write_workspace(tmp_path, {}, users=users)
    with pytest.raises(ErrorList) as info:
        load_workspace(tmp_path)
    [err] = info.value.errors
    assert err.location.file == "users.yaml"
    assert "unknown role 'ghost'" in str(err) and "user 'x'" in str(err)
