"""Run mutmut (configured in pyproject's ``[tool.mutmut]``) on a sample of the Python mutants.

mutmut 3 has no time box and runs cheapest mutants first, so this runs it twice:

1. a warm-up on a handful of mutants of the smallest module: generates ``mutants/``, collects
   which tests reach which function (the stats run), and proves a clean run passes and a
   forced failure fails;
2. the run proper on a stratified sample (each module in proportion to its mutant count,
   seeded, so two runs pick the same mutants), stopped with SIGINT at the deadline.

Results are read back from ``mutants/**/*.meta``; a mutant it had no time for is "not run".
"""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

# What tick.py and deliver.py held before issue 8 split them into packages.
TICK_MODULES = ("run", "state", "pending", "phases", "report")
OUTBOX_MODULES = ("send", "batch", "compose", "transitions", "review")
TARGET_OF_MODULE = {f"pipelines.tick.{m}": "tick" for m in TICK_MODULES}
TARGET_OF_MODULE |= {f"pipelines.outbox.{m}": "outbox" for m in OUTBOX_MODULES}
TARGET_OF_MODULE["pipelines.channels.sms"] = "outbox"
STATUS_OF_EXIT = {0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests"}
STATUS_OF_EXIT |= {code: "timeout" for code in (24, -24, 36, 152, 255)}


def mutmut_executable() -> str:
    here = Path(sys.executable).with_name("mutmut")
    return str(here) if here.exists() else shutil.which("mutmut") or "mutmut"


def configured_modules(root: Path) -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` names, e.g. ``pipelines/tick/run.py``."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def run_mutmut(root: Path, args: list[str], deadline: float, log_file: Path) -> int | None:
    """Run ``mutmut run <args>`` until done or ``deadline``; its exit code (None if cut)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # mutants/ must win
    env["MUTATION_TEST_ORDER"] = str(root / "mutants" / "mutmut-stats.json")
    with log_file.open("a", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [mutmut_executable(), "run", *args],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # mutmut stops its workers, keeps its results
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return None


def read_results(root: Path) -> dict[str, int | None]:
    """Exit code of every generated mutant (None: not run yet)."""
    codes: dict[str, int | None] = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        codes |= json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def module_of(name: str) -> str:
    return name.partition("__mutmut_")[0].rpartition(".")[0]


def sample(names: list[str], size: int, seed: int = 14) -> list[str]:
    """About ``size`` names, each module in proportion to its count (at least one), seeded.

    >>> names = [f"pipelines.a.x_f__mutmut_{i}" for i in range(30)] + ["pipelines.b.x_g__mutmut_1"]
    >>> picked = sample(names, 10)
    >>> len(picked), sum(module_of(n) == "pipelines.b" for n in picked)
    (10, 1)
    >>> sample(names, 10) == picked
    True
    """
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in sorted(names):
        by_module[module_of(name)].append(name)
    rng, picked = random.Random(seed), []
    for _module, members in sorted(by_module.items()):
        rng.shuffle(members)
        picked += members[: max(1, size * len(members) // len(names))]
    rng.shuffle(picked)
    return picked


def describe(root: Path, name: str) -> tuple[str, int, str]:
    """(file, line, ``original → mutated``) of a Python mutant, read from its diff."""
    path = name.partition("__mutmut_")[0].rpartition(".")[0].replace(".", "/") + ".py"
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        cwd = Path.cwd()
        os.chdir(root)
        try:
            diff = get_diff_for_mutant(name, path=path).splitlines()
        finally:
            os.chdir(cwd)
    except Exception as exc:  # the diff is a courtesy; the verdict stands without it
        return path, 0, f"{name} (no diff: {exc})"
    old = [line[1:].strip() for line in diff[2:] if line.startswith("-")]
    new = [line[1:].strip() for line in diff[2:] if line.startswith("+")]
    line = _line_of(root / path, name, old[0] if old else "")
    return path, line, f"{' / '.join(old) or '∅'} → {' / '.join(new) or '∅'}"


def _line_of(file: Path, name: str, text: str) -> int:
    """The line of ``text`` inside the mutated function of ``file`` (0 if not found)."""
    function = name.partition("__mutmut_")[0].rpartition(".")[2].split("ǁ")[-1]
    function = function.removeprefix("x_")
    source = file.read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            for i in range(node.lineno - 1, node.end_lineno or len(lines)):
                if text and lines[i].strip() == text:
                    return i + 1
            return node.lineno
    return 0


def results_as_dicts(root: Path, names: list[str], codes: dict[str, int | None]) -> list[dict]:
    rows = []
    for name in names:
        code = codes.get(name)
        status = "not run" if code is None else STATUS_OF_EXIT.get(code, "suspicious")
        module = module_of(name)
        row = {"kind": "python", "id": name, "target": TARGET_OF_MODULE.get(module, "engine")}
        row |= {"file": module.replace(".", "/") + ".py", "status": status, "exit_code": code}
        if status in ("survived", "no tests"):
            row["file"], row["line"], row["change"] = describe(root, name)
        rows.append(row)
    return rows


def run_python(
    root: Path, size: int, jobs: int, deadline: float, log_file: Path, log
) -> list[dict]:
    """Warm up, then run ``size`` sampled mutants until ``deadline``."""
    shutil.rmtree(root / "mutants", ignore_errors=True)  # verdicts must reflect today's tests
    smallest = min(configured_modules(root), key=lambda p: (root / p).stat().st_size)
    warm = smallest.removesuffix(".py").replace("/", ".") + ".*__mutmut_1"
    log(f"mutmut warm-up ({warm}): generate mutants, stats run, clean and forced-fail runs")
    code = run_mutmut(root, ["--max-children", str(jobs), warm], deadline, log_file)
    codes = read_results(root)
    if code != 0 or not codes:
        log(f"mutmut warm-up failed (exit {code}); see {log_file}")
        return []
    picked = sample([n for n in codes if codes[n] is None], size)
    log(f"mutmut: {len(codes)} mutants generated; running a sample of {len(picked)}")
    run_mutmut(root, ["--max-children", str(jobs), *picked], deadline, log_file)
    warmed = [n for n, c in codes.items() if c is not None]
    return results_as_dicts(root, warmed + picked, read_results(root))
