"""A pytest plugin for the mutation run: cheapest tests first, so ``-x`` kills a mutant early.

Loaded with ``-p tests.mutation.order``; inert unless the environment says otherwise:

- ``MUTATION_TEST_ORDER``: a JSON file mapping test id → sort key (seconds); tests run in
  ascending key, unknown tests last in their usual order. A mutmut stats file
  (``mutmut-stats.json``) is read through its ``duration_by_test``.
- ``MUTATION_TEST_DURATIONS``: a JSON file to write each test's duration to (the baseline).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def sort_keys(path: str) -> dict[str, float]:
    """The keys in a JSON file of either shape (``{}`` if it is missing)."""
    file = Path(path)
    if not file.is_file():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return {k: float(v) for k, v in data.get("duration_by_test", data).items()}


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    keys = sort_keys(os.environ.get("MUTATION_TEST_ORDER", ""))
    if keys:
        items.sort(key=lambda item: keys.get(item.nodeid, float("inf")))


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: Any) -> None:
    if os.environ.get("MUTATION_TEST_DURATIONS"):
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = os.environ.get("MUTATION_TEST_DURATIONS")
    if out:
        Path(out).write_text(json.dumps(_durations, indent=1), encoding="utf-8")
