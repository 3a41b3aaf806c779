"""When a sequence runs (SPEC 6, "Occurrences"): pure time logic, no database.

A sequence has one occurrence per local calendar date at ``schedule.time`` in
``schedule.timezone`` (none on Saturday or Sunday when ``exclude_weekends``). Instants are
naive UTC ``datetime`` values, like every timestamp the engine stores.

DST: the local wall time is resolved with zoneinfo and ``fold=0``. For a time inside a
spring-forward gap that yields the pre-transition offset, i.e. the instant moves forward
past the gap (02:30 on 2026-03-08 in New York is 03:30 EDT = 07:30Z); for an ambiguous
fall-back time it yields the first instant (01:30 on 2026-11-01 is 01:30 EDT = 05:30Z).
A date the zone skipped altogether (Pacific/Apia went from 2011-12-29 straight to
2011-12-31) has no occurrence: its time would fall on the next day's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pipelines.instants import local_date, to_naive_utc
from pipelines.models import Schedule


class Occurrence(NamedTuple):
    """One occurrence of one sequence: its local date and its instant (naive UTC)."""

    sequence: str
    on: dt.date
    at: dt.datetime


def occurs_on(day: dt.date, schedule: Schedule) -> bool:
    """Whether the schedule has an occurrence on this local date.

    >>> occurs_on(dt.date(2026, 3, 7), Schedule(exclude_weekends=True))  # a Saturday
    False
    >>> occurs_on(dt.date(2026, 3, 7), Schedule())
    True
    >>> occurs_on(dt.date(2011, 12, 30), Schedule(timezone="Pacific/Apia"))  # never existed
    False
    """
    if schedule.exclude_weekends and day.weekday() >= 5:
        return False
    return local_date(instant_on(day, schedule), schedule.timezone) == day


def instant_on(day: dt.date, schedule: Schedule) -> dt.datetime:
    """The naive-UTC instant of the schedule's local time on ``day`` (fold=0, see module doc).

    >>> ny = Schedule(time="02:30", timezone="America/New_York")
    >>> instant_on(dt.date(2026, 3, 8), ny)   # spring forward: 02:30 does not exist
    datetime.datetime(2026, 3, 8, 7, 30)
    >>> instant_on(dt.date(2026, 11, 1), Schedule(time="01:30", timezone="America/New_York"))
    datetime.datetime(2026, 11, 1, 5, 30)
    >>> instant_on(dt.date(2026, 3, 2), Schedule(time="09:00", timezone="Asia/Kolkata"))
    datetime.datetime(2026, 3, 2, 3, 30)
    """
    local = dt.datetime.combine(day, schedule.local_time).replace(
        tzinfo=ZoneInfo(schedule.timezone), fold=0
    )
    return to_naive_utc(local)


def occurrence_dates(schedule: Schedule, first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """Every occurrence date from ``first`` to ``last`` inclusive.

    >>> [d.isoformat() for d in occurrence_dates(Schedule(exclude_weekends=True),
    ...     dt.date(2026, 3, 6), dt.date(2026, 3, 9))]
    ['2026-03-06', '2026-03-09']
    """
    day = first
    while day <= last:
        if occurs_on(day, schedule):
            yield day
        day += dt.timedelta(days=1)


def first_on_or_after(schedule: Schedule, day: dt.date) -> dt.date:
    """The first occurrence date on or after ``day``.

    >>> first_on_or_after(Schedule(exclude_weekends=True), dt.date(2026, 3, 7))
    datetime.date(2026, 3, 9)
    """
    while not occurs_on(day, schedule):
        day += dt.timedelta(days=1)
    return day


def latest_at_or_before(schedule: Schedule, as_of: dt.datetime) -> dt.date | None:
    """The date of the latest occurrence with instant ≤ ``as_of`` (searching back a week).

    >>> latest_at_or_before(Schedule(time="09:00"), dt.datetime(2026, 3, 2, 8, 59))
    datetime.date(2026, 3, 1)
    >>> latest_at_or_before(Schedule(time="09:00"), dt.datetime(2026, 3, 2, 9, 0))
    datetime.date(2026, 3, 2)
    """
    day = local_date(as_of, schedule.timezone) + dt.timedelta(days=1)
    for _ in range(9):
        if occurs_on(day, schedule) and instant_on(day, schedule) <= as_of:
            return day
        day -= dt.timedelta(days=1)
    return None


def next_after(schedule: Schedule, instant: dt.datetime) -> dt.date:
    """The date of the first occurrence with instant strictly after ``instant``.

    >>> next_after(Schedule(time="09:00"), dt.datetime(2026, 3, 2, 9, 0))
    datetime.date(2026, 3, 3)
    """
    day = local_date(instant, schedule.timezone) - dt.timedelta(days=1)
    while not (occurs_on(day, schedule) and instant_on(day, schedule) > instant):
        day += dt.timedelta(days=1)
    return day


def first_occurrence(schedule: Schedule, starts_on: dt.date | None, as_of: dt.datetime) -> dt.date:
    """Where a newly seen sequence starts (SPEC 4 ``starts_on``, default: first run that sees it).

    With ``starts_on`` the first occurrence on or after it (runs catch up from there);
    otherwise today's occurrence (the local date of ``as_of``) if its instant has passed,
    else the next one — never an earlier day's: a sequence first seen on a Monday does not
    enrol at Friday's occurrence and then expire its actions.

    >>> first_occurrence(Schedule(time="09:00"), None, dt.datetime(2026, 3, 4, 12, 0))
    datetime.date(2026, 3, 4)
    >>> first_occurrence(Schedule(time="09:00"), None, dt.datetime(2026, 3, 4, 8, 0))
    datetime.date(2026, 3, 4)
    >>> weekdays = Schedule(time="09:00", exclude_weekends=True)
    >>> first_occurrence(weekdays, None, dt.datetime(2026, 3, 9, 8, 0))  # Monday, before 09:00
    datetime.date(2026, 3, 9)
    >>> first_occurrence(Schedule(time="09:00"), dt.date(2026, 3, 1), dt.datetime(2026, 3, 4))
    datetime.date(2026, 3, 1)
    """
    if starts_on is not None:
        return first_on_or_after(schedule, starts_on)
    latest = latest_at_or_before(schedule, as_of)
    if latest == local_date(as_of, schedule.timezone):
        return latest
    return next_after(schedule, as_of)


def occurrences_between(
    name: str,
    schedule: Schedule,
    first: dt.date,
    after: dt.datetime | None,
    until: dt.datetime,
) -> list[Occurrence]:
    """Occurrences dated ≥ ``first`` with ``after`` ≤ instant ≤ ``until`` (``after`` optional).

    >>> [o.at.isoformat() for o in occurrences_between("s", Schedule(time="09:00"),
    ...     dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 9), dt.datetime(2026, 3, 2, 9))]
    ['2026-03-01T09:00:00', '2026-03-02T09:00:00']
    """
    last = local_date(until, schedule.timezone) + dt.timedelta(days=1)
    found = []
    for day in occurrence_dates(schedule, first, last):
        at = instant_on(day, schedule)
        if at <= until and (after is None or at >= after):
            found.append(Occurrence(name, day, at))
    return found
