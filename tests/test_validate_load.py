"""validate names every file that fails to load (issue 9, item 1); a run loads the rest."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.project import Project
from tests.workspace_helpers import write_workspace

GOOD = """
    name: good
    owner: alice
    audience: {where: ["email like '%@acme.example'"]}
    steps:
      - {id: intro, day: 1, action: email, template: intro.md.j2, subject: "Hi"}
"""


@pytest.mark.parametrize(
    "bad",
    [
        GOOD.replace("name: good", "name: bad").replace("steps:", "stepz: []\n    steps:"),
        GOOD.replace("name: good", "name: bad").replace("action: email", "action: folow_up"),
        GOOD.replace("name: good", "name: bad") + '    schedule: {time: "9:00"}\n',
    ],
    ids=["stepz", "folow_up", "time"],
)
def test_validate_names_a_sequence_file_with_a_schema_error(tmp_path, capsys, bad):
    write_workspace(tmp_path, {"good": GOOD, "bad": bad})
    assert main(["validate", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert any(
        line.startswith("error:") and "sequences/bad.yaml" in line for line in err.splitlines()
    )


def test_validate_names_a_non_utf8_sequence_file(tmp_path, capsys):
    write_workspace(tmp_path, {"good": GOOD})
    (tmp_path / "sequences" / "latin.yaml").write_bytes(b"\xff\xfename: x\n")
    assert main(["validate", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "latin.yaml" in x)
    assert line.startswith("error:") and "UTF-8" in line


def test_a_non_utf8_view_fails_only_the_sequences_that_use_it(tmp_path, capsys):
    uses = GOOD.replace("name: good", "name: uses").replace(
        "audience: {", "audience: {views: [v], "
    )
    write_workspace(tmp_path, {"good": GOOD, "uses": uses})
    (tmp_path / "sequences" / "views" / "v.sql").write_bytes(b"\xff\xfe email")
    assert main(["validate", "--project", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "ok  good" in captured.out and "ok  uses" not in captured.out
    errors = [x for x in captured.err.splitlines() if x.startswith("error:")]
    assert any("sequences/views/v.sql" in x and "UTF-8" in x for x in errors)
    assert any("sequence 'uses'" in x and "'v'" in x for x in errors)


def test_a_run_loads_the_other_sequences_when_files_do_not_decode(tmp_path):
    uses = GOOD.replace("name: good", "name: uses").replace(
        "audience: {", "audience: {views: [v], "
    )
    write_workspace(tmp_path, {"good": GOOD, "uses": uses})
    (tmp_path / "sequences" / "latin.yaml").write_bytes(b"\xff\xfename: x\n")
    (tmp_path / "sequences" / "views" / "v.sql").write_bytes(b"\xff\xfe email")
    project = Project(tmp_path, db_path=tmp_path / "db.duckdb")
    compilation = project.compile()
    assert sorted(compilation.sequences) == ["good"]
    files = {e.location.file for e in compilation.errors}
    assert {"sequences/latin.yaml", "sequences/views/v.sql"} <= files


def test_a_reply_step_needs_no_subject_of_its_own(tmp_path, capsys):
    """SPEC 4: a ``thread: reply`` email step's subject is "Re: " + that thread's."""
    reply = (
        GOOD + "      - {id: bump, day: 3, action: email, template: intro.md.j2, thread: reply}\n"
    )
    write_workspace(tmp_path, {"good": reply})
    assert main(["validate", "--project", str(tmp_path)]) == 0, capsys.readouterr().err


def test_a_new_thread_email_step_still_needs_a_subject(tmp_path, capsys):
    write_workspace(tmp_path, {"good": GOOD.replace(', subject: "Hi"', "")})
    assert main(["validate", "--project", str(tmp_path)]) == 1
    assert "needs a subject" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../../users.yaml", "/proc/self/environ", "/bin/ls", "link.j2"])
def test_templates_resolve_only_inside_the_templates_folder(tmp_path, capsys, name):
    write_workspace(tmp_path, {"good": GOOD.replace("intro.md.j2", name)})
    outside = tmp_path / "secret.txt"
    outside.write_text("SECRET", encoding="utf-8")
    (tmp_path / "sequences" / "templates" / "link.j2").symlink_to(outside)
    assert main(["validate", "--project", str(tmp_path)]) == 1
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("error:"))
    assert "outside sequences/templates" in line and "step 'intro'" in line


def test_render_refuses_a_template_symlinked_outside(tmp_path):
    from pipelines.channels.render import Renderer, RenderError

    templates = tmp_path / "templates"
    templates.mkdir()
    (tmp_path / "secret.txt").write_text("SECRET", encoding="utf-8")
    (templates / "link.md.j2").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RenderError, match="outside"):
        Renderer(templates).render_file("link.md.j2", {})


def test_validate_reports_a_template_that_is_not_utf8(tmp_path, capsys):
    write_workspace(tmp_path, {"good": GOOD})
    (tmp_path / "sequences" / "templates" / "intro.md.j2").write_bytes(b"\xff\xfe hi")
    assert main(["validate", "--project", str(tmp_path)]) == 1
    assert "UTF-8" in capsys.readouterr().err


def test_a_view_symlinked_outside_the_views_folder_is_refused(tmp_path, capsys):
    uses = GOOD.replace("name: good", "name: uses").replace(
        "audience: {", "audience: {views: [v], "
    )
    write_workspace(tmp_path, {"good": GOOD, "uses": uses})
    (tmp_path / "outside.sql").write_text("true", encoding="utf-8")
    (tmp_path / "sequences" / "views" / "v.sql").symlink_to(tmp_path / "outside.sql")
    assert main(["validate", "--project", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "ok  good" in captured.out and "ok  uses" not in captured.out
    assert "outside sequences/views" in captured.err
