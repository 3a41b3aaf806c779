"""Shared fixtures: a database file under ``tmp_path``, the workspace builder, the SMTP sink.

Helpers that are plain functions (rows, ticks, actions) stay in ``tick_helpers.py`` and
``delivery_fixtures.py``; the one workspace builder is ``workspace_helpers.write_workspace``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.demo.smtp_sink import SmtpSink
from tests.workspace_helpers import write_workspace


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's DuckDB file lives (a file, never ``:memory:``)."""
    return tmp_path / "db" / "sequencer.duckdb"


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Path]:
    """``workspace(sequences, users=..., views=..., templates=...)`` writes (or rewrites) the
    test's workspace under ``tmp_path / "ws"`` and returns its root."""

    def build(sequences: dict[str, str] | None = None, **kwargs) -> Path:
        return write_workspace(tmp_path / "ws", sequences or {}, **kwargs)

    return build


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 for one test."""
    with SmtpSink() as sink:
        yield sink
