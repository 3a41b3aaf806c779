"""The house rules of issue 8, checked: the engine never imports dagster (only
``pipelines/defs/``, ``pipelines/definitions.py`` and the demo do), no module in
``pipelines/`` passes 400 lines, no function 60."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipelines"
DAGSTER_ALLOWED = ("defs/", "definitions.py", "demo/")
MAX_LINES, MAX_FUNCTION_LINES = 400, 60


def modules() -> list[tuple[str, str]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def imports_dagster(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in names):
            return True
    return False


def test_only_the_dagster_layer_and_the_demo_import_dagster():
    found = [name for name, source in modules() if imports_dagster(source)]
    assert found and [n for n in found if not n.startswith(DAGSTER_ALLOWED)] == []


def test_no_module_over_400_lines_and_no_function_over_60():
    long_modules = [n for n, source in modules() if len(source.splitlines()) > MAX_LINES]
    long_functions = [
        f"{name}:{node.lineno} {node.name}"
        for name, source in modules()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert (long_modules, long_functions) == ([], [])
