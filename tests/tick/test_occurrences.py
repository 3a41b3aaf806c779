"""Occurrence instants (SPEC 6): local time in the schedule's zone, DST rules, weekends."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.instants import local_date, to_naive_utc
from pipelines.models import Schedule
from pipelines.tick.occurrences import (
    first_occurrence,
    instant_on,
    latest_at_or_before,
    next_after,
    occurrences_between,
)

D = dt.date
T = dt.datetime


@pytest.mark.parametrize(
    ("zone", "local_time", "day", "expected"),
    [
        # New York spring forward: 02:30 does not exist → 03:30 EDT
        ("America/New_York", "02:30", D(2026, 3, 8), T(2026, 3, 8, 7, 30)),
        ("America/New_York", "02:30", D(2026, 3, 7), T(2026, 3, 7, 7, 30)),
        ("America/New_York", "02:30", D(2026, 3, 9), T(2026, 3, 9, 6, 30)),
        # New York fall back: 01:30 happens twice → the first (EDT) instant
        ("America/New_York", "01:30", D(2026, 11, 1), T(2026, 11, 1, 5, 30)),
        ("America/New_York", "01:30", D(2026, 11, 2), T(2026, 11, 2, 6, 30)),
        ("America/New_York", "09:30", D(2026, 3, 2), T(2026, 3, 2, 14, 30)),
        # Berlin: spring forward 2026-03-29 (02:00 → 03:00), fall back 2026-10-25
        ("Europe/Berlin", "02:30", D(2026, 3, 29), T(2026, 3, 29, 1, 30)),
        ("Europe/Berlin", "02:30", D(2026, 3, 28), T(2026, 3, 28, 1, 30)),
        ("Europe/Berlin", "02:30", D(2026, 3, 30), T(2026, 3, 30, 0, 30)),
        ("Europe/Berlin", "02:30", D(2026, 10, 25), T(2026, 10, 25, 0, 30)),
        ("Europe/Berlin", "02:30", D(2026, 10, 26), T(2026, 10, 26, 1, 30)),
        # Kolkata: +05:30, no DST
        ("Asia/Kolkata", "09:00", D(2026, 3, 2), T(2026, 3, 2, 3, 30)),
        ("Asia/Kolkata", "02:00", D(2026, 7, 1), T(2026, 6, 30, 20, 30)),
    ],
)
def test_instant_on(zone, local_time, day, expected):
    assert instant_on(day, Schedule(time=local_time, timezone=zone)) == expected


def test_weekends_excluded_or_not():
    weekdays = Schedule(time="09:00", exclude_weekends=True)
    every_day = Schedule(time="09:00")
    fri, mon = D(2026, 3, 6), D(2026, 3, 9)
    until = T(2026, 3, 9, 9)
    assert [o.on for o in occurrences_between("s", weekdays, fri, None, until)] == [fri, mon]
    assert len(occurrences_between("s", every_day, fri, None, until)) == 4


def test_occurrences_between_bounds_are_inclusive():
    s = Schedule(time="09:00", timezone="Europe/Berlin")
    got = occurrences_between("s", s, D(2026, 3, 27), T(2026, 3, 28, 8), T(2026, 3, 30, 7))
    assert [(o.on, o.at) for o in got] == [
        (D(2026, 3, 28), T(2026, 3, 28, 8)),
        (D(2026, 3, 29), T(2026, 3, 29, 7)),
        (D(2026, 3, 30), T(2026, 3, 30, 7)),
    ]


def test_local_date_and_utc():
    assert local_date(T(2026, 3, 2, 20, 0), "Asia/Kolkata") == D(2026, 3, 3)
    aware = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert to_naive_utc(aware) == T(2026, 3, 2, 14, 0)


def test_first_occurrence_rules():
    s = Schedule(time="09:00", timezone="America/New_York", exclude_weekends=True)
    # before Monday's 09:00 local (13:00Z, EDT): the latest is Friday
    assert latest_at_or_before(s, T(2026, 3, 9, 12, 59)) == D(2026, 3, 6)
    assert first_occurrence(s, None, T(2026, 3, 9, 13, 0)) == D(2026, 3, 9)
    assert first_occurrence(s, D(2026, 3, 7), T(2026, 3, 20)) == D(2026, 3, 9)
    assert next_after(s, T(2026, 3, 6, 14, 0)) == D(2026, 3, 9)


def test_a_date_the_zone_skipped_has_no_occurrence():
    # Pacific/Apia crossed the date line: 2011-12-29 23:59:59 -10:00 → 2011-12-31 00:00 +14:00
    apia = Schedule(time="09:00", timezone="Pacific/Apia")
    found = occurrences_between(
        "s", apia, dt.date(2011, 12, 28), None, dt.datetime(2011, 12, 31, 0, 0)
    )
    assert [(o.on.isoformat(), o.at.isoformat()) for o in found] == [
        ("2011-12-28", "2011-12-28T19:00:00"),
        ("2011-12-29", "2011-12-29T19:00:00"),
        ("2011-12-31", "2011-12-30T19:00:00"),
    ]
    assert len({o.at for o in found}) == len(found)  # one occurrence per instant and sequence
