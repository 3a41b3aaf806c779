"""Run the SQL mutants: each in a scratch copy of the project, against the tests of its file.

A mutant is written into ``.mutation/scratch-<k>/sql/...`` (the working tree is never
touched), the tests mapped to that file run there with ``-x`` (cheapest and most-killing
tests first, see ``order.py``), and the file is restored before the next mutant. A failing
test, an error or a timeout kills the mutant; all tests passing is a survivor.
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.mutation.sql_mutants import Mutant, mutants_of

# The files run by default, in this order: the targets. The send batch comes before
# the other tick files because its tests take seconds (the tick's, a minute) and a time box
# that ends in the tick files must still measure it.
PRIORITY = (
    "sql/tick/int_exits.sql",
    "sql/tick/int_entries.sql",
    "sql/tick/int_completions.sql",
    "sql/send/int_send_batch.sql",
    "sql/tick/*.sql",
)
# Which tests can see a change to a SQL file: first match wins. Globs, so new test files of
# the same area join by name.
TESTS_FOR = (
    ("sql/tick/*", ("tests/tick/test_tick*.py", "tests/tick/test_preview*.py")),
    ("sql/send/*", ("tests/outbox/test_*.py",)),
    ("sql/ingest/*", ("tests/ingest/test_*.py",)),
    ("sql/metrics/*", ("tests/test_metrics*.py",)),
    ("sql/int_contact_properties.sql", ("tests/tick/test_properties*.py",)),
    ("sql/checks/*", ("tests/test_definitions*.py",)),
)
TARGETS = (
    ("sql/tick/int_entries.sql", "entries/exits SQL"),
    ("sql/tick/int_exits.sql", "entries/exits SQL"),
    # the statements that write what int_entries/int_exits decide (tick.py strings until issue 8)
    ("sql/tick/dml_exit_enrollments.sql", "entries/exits SQL"),
    ("sql/tick/dml_insert_enrollments.sql", "entries/exits SQL"),
    ("sql/tick/dml_resolve_manual_requests.sql", "entries/exits SQL"),
    ("sql/tick/*", "tick"),
    ("sql/send/int_send_batch.sql", "send batch"),
)
COPIED = ("pipelines", "sql", "tests", "sequences", "pyproject.toml", "users.yaml")
PYTEST = ("-x", "-q", "-p", "no:cacheprovider", "-p", "tests.mutation.order", "-m", "not slow")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class SqlResult:
    id: str
    target: str
    file: str
    line: int
    operator: str
    change: str
    status: str  # killed | timeout | survived | not run | error (counted nowhere)
    killed_by: str = ""
    invalid_sql: bool = False
    seconds: float = 0.0


def not_run(m: Mutant) -> SqlResult:
    return SqlResult(m.id, target_of(m.path), m.path, m.line, m.operator, m.describe(), "not run")


def _first(path: str, table: tuple[tuple[str, object], ...]) -> object | None:
    return next((value for pattern, value in table if fnmatch.fnmatch(path, pattern)), None)


def target_of(path: str) -> str:
    return str(_first(path, TARGETS) or "other SQL")


def tests_for(root: Path, sql_path: str) -> list[str]:
    """The test files (relative to ``root``) that run against mutants of ``sql_path``."""
    globs = _first(sql_path, TESTS_FOR) or ()
    return sorted({str(p.relative_to(root)) for g in globs for p in root.glob(g)})  # type: ignore[union-attr]


def planned_files(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """SQL files matching ``patterns``, in pattern order, each once, only those with tests."""
    files: list[str] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            rel = str(path.relative_to(root))
            if rel not in files and tests_for(root, rel):
                files.append(rel)
    return files


def make_scratch(root: Path, scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.duckdb*")
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, scratch / name, ignore=ignore)
        elif src.is_file():
            scratch.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, scratch / name)


def run_pytest(
    scratch: Path, tests: list[str], timeout: float, **env: str
) -> tuple[str, str, float]:
    """(``passed``/``failed``/``timeout``/``error``, output, seconds) of one pytest run."""
    full_env = {**os.environ, "PYTHONPATH": str(scratch), **env}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *PYTEST, *tests],
        cwd=scratch,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: a timeout ends the tests' children too
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", out, time.monotonic() - start
    status = {0: "passed", 1: "failed", 2: "failed", 3: "failed"}.get(proc.returncode, "error")
    return status, out, time.monotonic() - start


class SqlRun:
    """Runs the mutants of ``files`` in ``jobs`` scratch copies until ``deadline``."""

    def __init__(self, root: Path, work: Path, jobs: int, deadline: float, log) -> None:
        self.root, self.work, self.deadline, self.log = root, work, deadline, log
        self.scratches: queue.Queue[Path] = queue.Queue()
        for k in range(jobs):
            scratch = work / f"scratch-{k}"
            make_scratch(root, scratch)
            self.scratches.put(scratch)
        self.jobs = jobs
        self.durations: dict[str, float] = {}
        self.kills: dict[str, int] = {}
        self.baseline: dict[tuple[str, ...], float] = {}
        self.lock = threading.Lock()

    def check_baseline(self, tests: list[str]) -> float | None:
        """Seconds of the unmutated run of ``tests`` (None if it does not pass)."""
        key = tuple(tests)
        if key not in self.baseline:
            scratch = self.scratches.get()
            try:
                out_file = scratch / ".mutation-durations.json"
                status, out, secs = run_pytest(
                    scratch, tests, 1800, MUTATION_TEST_DURATIONS=str(out_file)
                )
                self.durations |= json.loads(out_file.read_text()) if out_file.exists() else {}
            finally:
                self.scratches.put(scratch)
            self.log(f"baseline {' '.join(tests)}: {status} in {secs:.0f}s")
            if status != "passed":
                self.log(out[-3000:])
            self.baseline[key] = secs if status == "passed" else -1.0
        return None if self.baseline[key] < 0 else self.baseline[key]

    def _order_file(self, scratch: Path) -> str:
        with self.lock:
            keys = {t: d / (1 + self.kills.get(t, 0)) for t, d in self.durations.items()}
        path = scratch / ".mutation-order.json"
        path.write_text(json.dumps(keys), encoding="utf-8")
        return str(path)

    def run_one(self, mutant: Mutant, tests: list[str], baseline: float) -> SqlResult:
        result = not_run(mutant)
        remaining = self.deadline - time.monotonic()
        if remaining < 5:
            return result
        scratch = self.scratches.get()
        target = scratch / mutant.path
        original = target.read_text(encoding="utf-8")
        try:
            target.write_text(mutant.apply(original), encoding="utf-8")
            limit = 2 * baseline + 20
            status, out, secs = run_pytest(
                scratch, tests, min(limit, remaining), MUTATION_TEST_ORDER=self._order_file(scratch)
            )
        finally:
            target.write_text(original, encoding="utf-8")
            self.scratches.put(scratch)
        if status == "timeout" and remaining < limit:
            return result  # cut by the time box, not by the mutant
        if status == "error":  # pytest itself failed (exit 4/5): no verdict, say why
            self.log(f"error    {result.change}: pytest could not run\n{out[-2000:]}")
            result.status = "error"
            return result
        result.seconds = round(secs, 2)
        result.status = {"passed": "survived", "failed": "killed"}.get(status, status)
        result.invalid_sql = "Parser Error" in out or "ParserException" in out
        killer = _FAILED.search(out)
        if killer:
            result.killed_by = killer.group(1)
            with self.lock:
                self.kills[result.killed_by] = self.kills.get(result.killed_by, 0) + 1
        self.log(f"{result.status:8} {secs:5.1f}s {result.change}")
        return result

    def run(self, files: list[str]) -> list[SqlResult]:
        work: list[tuple[Mutant, list[str], float]] = []
        results: list[SqlResult] = []
        for path in files:
            tests = tests_for(self.root, path)
            mutants = mutants_of(path, (self.root / path).read_text(encoding="utf-8"))
            baseline = self.check_baseline(tests) if time.monotonic() < self.deadline else None
            if baseline is None:
                change = "baseline does not pass" if tuple(tests) in self.baseline else "time box"
                self.log(f"{path}: {len(mutants)} mutants not run ({change})")
                results += [not_run(m) for m in mutants]
                continue
            work += [(m, tests, baseline) for m in mutants]
        with ThreadPoolExecutor(self.jobs) as pool:
            results += pool.map(lambda w: self.run_one(*w), work)
        return results


def as_dicts(results: list[SqlResult]) -> list[dict]:
    return [{"kind": "sql", **asdict(r)} for r in results]
