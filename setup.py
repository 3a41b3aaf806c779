"""Ships ``sql/`` inside the wheel as ``pipelines/sql_files/`` (docs/decisions.md).

The SQL stays at the top of the repository, where the project layout puts it; a built wheel
(``pip install .``, ``pip wheel .``) carries a copy inside the package, where
``pipelines.sqlrun.sql_root`` finds it. Editable installs skip the copy and read ``sql/``
in place. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SQL = Path(__file__).resolve().parent / "sql"
PACKAGED = Path("pipelines") / "sql_files"  # pipelines.sqlrun.PACKAGED


class BuildPyWithSql(build_py):
    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            self.copy_tree(str(SQL), str(Path(self.build_lib) / PACKAGED))


setup(cmdclass={"build_py": BuildPyWithSql})
