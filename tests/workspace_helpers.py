"""The one workspace builder of the tests: users.yaml, sequences, views, templates on disk.

The ``workspace`` fixture of ``tests/conftest.py`` calls it under ``tmp_path``; the tick
helpers (``write_sequences``) and the send fixtures (``delivery_fixtures.write_workspace``)
build on it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

USERS = {
    "users": [
        {
            "id": "alice",
            "email": "alice@acme.example",
            "role": "rep",
            "timezone": "America/New_York",
        },
        {"id": "bruno", "email": "bruno@acme.example", "role": "rep", "timezone": "Europe/Berlin"},
        {"id": "vera", "email": "vera@acme.example", "role": "viewer"},
        {"id": "olga", "email": "olga@acme.example", "role": "admin"},
    ],
    "roles": {
        "rep": ["view_sequences", "create_sequences"],
        "viewer": ["view_sequences"],
        "admin": ["admin"],
    },
}


def write_workspace(
    root: Path,
    sequences: dict[str, str],
    *,
    users: dict | str | None = None,
    views: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> Path:
    """Write a workspace; ``sequences`` maps file stem to YAML text (dedented); ``users`` is a
    users.yaml as a dict or as its text (default :data:`USERS`)."""
    (root / "sequences" / "templates").mkdir(parents=True, exist_ok=True)
    (root / "sequences" / "views").mkdir(parents=True, exist_ok=True)
    users_text = users if isinstance(users, str) else yaml.safe_dump(users or USERS)
    (root / "users.yaml").write_text(users_text, encoding="utf-8")
    for stem, text in sequences.items():
        (root / "sequences" / f"{stem}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    for name, text in (views or {}).items():
        (root / "sequences" / "views" / f"{name}.sql").write_text(text, encoding="utf-8")
    for name, text in (templates or {"intro.md.j2": "Hi {{ contact.first_name }}"}).items():
        (root / "sequences" / "templates" / name).write_text(text, encoding="utf-8")
    return root
