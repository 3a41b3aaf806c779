"""A non-editable install works (issue 8): the wheel carries sql/, and the installed
``sequencer`` ingests, validates and runs the demo workspace from outside the repository.

The wheel is built from a copy of the sources (an in-tree build leaves build/ and *.egg-info
behind) and installed into a fresh virtualenv. To spare reinstalling every dependency, that
virtualenv sees this interpreter's site-packages through a .pth file, which puts them AFTER
its own: the wheel's ``pipelines`` wins, and the editable install's finder (a .pth of that
directory, not processed from there) does not load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "pipelines", "sql")

ACCOUNTS = """account_id,name,domain,owner_id,employees,industry
a1,Midco,midco.example,alice,120,Retail
a2,Bigco,bigco.example,chitra,5000,SaaS
"""
CONTACTS = """contact_id,email,first_name,last_name,account_id,owner_id,timezone,created_at,lifecycle_stage,lead_score
c1,ana@midco.example,Ana,Lee,a1,alice,America/New_York,2025-11-01T00:00:00,lead,90
c2,ben@midco.example,Ben,Ross,a1,bruno,Europe/Berlin,2025-11-01T00:00:00,nurture,10
c3,chen@bigco.example,Chen,Rao,a2,chitra,Asia/Kolkata,2025-11-01T00:00:00,other,10
"""  # noqa: E501


def _wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", str(tmp_path)],
        cwd=src, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("sequencer-*.whl")
    return wheel


def _venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python),
         "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(own) / "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


@pytest.mark.slow
def test_installed_wheel_ingests_validates_and_runs_the_demo_workspace(tmp_path):
    venv = _venv(tmp_path, _wheel(tmp_path))
    work = tmp_path / "workspace"  # outside the repository
    shutil.copytree(ROOT / "sequences", work / "sequences")
    shutil.copy2(ROOT / "users.yaml", work / "users.yaml")
    (work / "imports").mkdir()
    (work / "imports" / "accounts.csv").write_text(ACCOUNTS)
    (work / "imports" / "contacts.csv").write_text(CONTACTS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SEQUENCER_USER")}
    env["TRACKING_SECRET"] = "wheel-test-secret"  # validate checks the secrets it needs

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    where = run("python", "-c", "import pipelines.sqlrun as s; print(s.__file__, s.sql_root())")
    module, sql_root = where.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(sql_root).is_relative_to(venv), where
    assert sql_root.endswith("pipelines/sql_files")

    ingest = run("sequencer", "ingest")
    assert ingest.returncode == 0, ingest.stderr
    validate = run("sequencer", "validate")
    assert validate.returncode == 0, validate.stderr
    for name in ("abm-enterprise", "nurture-2026", "outbound-q1"):
        assert f"ok  {name}" in validate.stdout
    tick = run("sequencer", "run", "--as-of", "2026-01-05T23:00")
    assert tick.returncode == 0, tick.stderr
    assert "as of 2026-01-05 23:00Z: 3 occurrence(s), 3 entries" in tick.stdout
