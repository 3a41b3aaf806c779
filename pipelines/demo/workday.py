"""The demo's step 8: what the rep's and analyst's tools did during the play (issue 12):
send windows that deferred emails until the recipient's morning, the contact paused on day
2 and where it resumed. Read-only queries over the demo database; the commands themselves
are printed and run by :mod:`pipelines.demo.run`."""

from __future__ import annotations

from pathlib import Path

from pipelines import db
from pipelines.outbox.batch import WINDOW_NOTE


def show_send_windows(db_path: Path) -> None:
    """outbound-q1's emails that waited for their recipient's local hours, by timezone, and
    one of them: decided at the 09:30 New York run, sent in the recipient's morning."""
    con = db.connect(db_path, read_only=True)
    try:
        waited = con.execute(
            """
            select coalesce(c.timezone, '(owner''s)') as zone, count(*) as n,
            from actions as a join contacts as c using (contact_id)
            where a.sequence = 'outbound-q1' and a.action = 'email' and a.status = 'sent'
              and a.finished_at > a.occurrence_at + interval 1 hour
            group by all order by n desc, zone
            """
        ).fetchall()
        example = con.execute(
            """
            select a.contact_id, c.timezone, a.occurrence_at, a.finished_at,
                timezone(c.timezone, a.occurrence_at::timestamptz),
                timezone(c.timezone, a.finished_at::timestamptz),
            from actions as a join contacts as c using (contact_id)
            where a.sequence = 'outbound-q1' and a.action = 'email' and a.status = 'sent'
              and a.finished_at > a.occurrence_at + interval 1 hour and c.timezone is not null
            order by a.occurrence_at, a.contact_id limit 1
            """
        ).fetchone()
        waiting = con.execute(
            "select count(*) from actions where status = 'deferred' and error = ?", [WINDOW_NOTE]
        ).fetchone()[0]
    finally:
        con.close()
    total = sum(n for _, n in waited)
    print(
        f"send window (outbound-q1, 08:00-18:00 weekdays, the contact's time): {total} emails "
        f"waited for their recipient's morning, then went out; {waiting} still wait now"
    )
    for zone, n in waited:
        print(f"  {zone:<22} {n:>4}")
    if example:
        cid, zone, decided, sent, local_decided, local_sent = example
        print(
            f"  e.g. {cid} ({zone}): decided {decided:%a %H:%M}Z = {local_decided:%a %H:%M} "
            f"there, sent {sent:%a %H:%M}Z = {local_sent:%a %H:%M} there"
        )


def paused_contact(db_path: Path) -> str | None:
    """The contact the play paused (pipelines.demo.play.pause_one), if any."""
    con = db.connect(db_path, read_only=True)
    try:
        row = con.execute(
            "select contact_id from pauses where sequence = 'outbound-q1' order by paused_at"
            " limit 1"
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def show_pause(db_path: Path, contact_id: str) -> None:
    """The paused contact's steps next to those of the contacts who entered with it."""
    con = db.connect(db_path, read_only=True)
    try:
        pause = con.execute(
            "select paused_at, until_on from pauses where sequence = 'outbound-q1'"
            " and contact_id = ?",
            [contact_id],
        ).fetchone()
        mine = con.execute(
            "select step, day, occurrence_on, status from actions"
            " where sequence = 'outbound-q1' and contact_id = ? order by occurrence_on, step",
            [contact_id],
        ).fetchall()
        others = dict(
            con.execute(
                """
                select a.step, min(a.occurrence_on)
                from actions as a
                join enrollments as e using (sequence, contact_id)
                where a.sequence = 'outbound-q1' and a.contact_id <> $contact
                  and e.enrolled_on = (select enrolled_on from enrollments
                                       where sequence = 'outbound-q1' and contact_id = $contact)
                group by a.step
                """,
                {"contact": contact_id},
            ).fetchall()
        )
    finally:
        con.close()
    print(
        f"pause: {contact_id} in outbound-q1, paused {pause[0]:%Y-%m-%d %H:%M}Z until "
        f"{pause[1]}; the occurrences in between decided nothing and did not count as days:"
    )
    for step, day, on, status in mine:
        usual = others.get(step)
        note = f"   (those who entered with it: {usual})" if usual and usual != on else ""
        print(f"  day {day}  {step:<8} {on}  {status}{note}")


def render_candidate(db_path: Path) -> str | None:
    """An outbound-q1 contact whose day-3 email (``bump``) is due at the next occurrence: it
    entered at the second-to-last occurrence and is still active."""
    con = db.connect(db_path, read_only=True)
    try:
        row = con.execute(
            """
            select e.contact_id from enrollments as e
            where e.sequence = 'outbound-q1' and e.status = 'active'
              and e.enrolled_on = (select occurrence_on from occurrences
                                   where sequence = 'outbound-q1'
                                   order by occurrence_on desc limit 1 offset 1)
            order by e.contact_id limit 1
            """
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None
