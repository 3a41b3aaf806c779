"""The typing pass's trim guard and timezone check through a real ingest (issue 11's second
pass changed both): values are trimmed exactly when trim changes them, including non-ASCII
characters in the middle and Unicode spaces at an end; a zone name is checked as given."""

from __future__ import annotations

from pipelines.db import connect
from pipelines.ingest.load import ingest_file


def test_ids_are_trimmed_and_zones_checked_through_ingest(tmp_path):
    path = tmp_path / "contacts_trim.csv"
    path.write_text(
        "contact_id,email,timezone\n"
        " c1,a@x.example,Europe/Paris\n"  # leading space
        "c2 ,b@x.example, Asia/Tokyo \n"  # trailing spaces, zone trimmed then known
        "c\u00e93\u00a0,c@x.example,\n"  # non-ASCII inside, a no-break space at the end
        "c\u00e94,d@x.example,Mars/Base\n"  # non-ASCII inside, nothing to trim; bad zone
        "c5,e@x.example,europe/paris\n",  # zone names are case-sensitive
        encoding="utf-8",
    )
    con = connect(tmp_path / "t.duckdb")
    r = ingest_file(con, path, validate_with_gx=False)
    assert (r.loaded, r.quarantined) == (3, 2)
    rows = con.execute("select contact_id, timezone from contacts order by 1").fetchall()
    assert rows == [("c1", "Europe/Paris"), ("c2", "Asia/Tokyo"), ("c\u00e93", None)]
    assert con.execute("select line, reason from quarantine order by line").fetchall() == [
        (5, "unknown timezone"),
        (6, "unknown timezone"),
    ]
    con.close()
