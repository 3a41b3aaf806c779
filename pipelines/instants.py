"""Instants: the one place that parses, reads and converts them.

Every timestamp the engine stores or compares is a naive ``datetime`` in UTC (SPEC 3); local
calendar dates are ``date`` values in a named IANA time zone. Text from a user (``--as-of``,
a run's config or tag) is ISO-8601, and text without an offset means UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant as naive UTC; no offset means UTC, ``Z`` is accepted.

    >>> parse_instant("2026-03-02T09:30:00-05:00")
    datetime.datetime(2026, 3, 2, 14, 30)
    >>> parse_instant("2026-03-02T15:00:00Z")
    datetime.datetime(2026, 3, 2, 15, 0)
    >>> parse_instant("2026-03-02 23:00")
    datetime.datetime(2026, 3, 2, 23, 0)
    """
    return to_naive_utc(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def to_naive_utc(instant: dt.datetime) -> dt.datetime:
    """An aware instant converted to naive UTC; a naive one is already UTC.

    >>> to_naive_utc(dt.datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("America/New_York")))
    datetime.datetime(2026, 3, 2, 14, 30)
    >>> to_naive_utc(dt.datetime(2026, 3, 2, 9, 30))
    datetime.datetime(2026, 3, 2, 9, 30)
    """
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(UTC).replace(tzinfo=None)


def utc_now() -> dt.datetime:
    """The current instant, naive UTC.

    >>> utc_now().tzinfo is None
    True
    """
    return dt.datetime.now(UTC).replace(tzinfo=None)


def as_of_or_now(text: str | dt.datetime | None) -> dt.datetime:
    """A run's instant: parsed text, a datetime made naive UTC, or now when empty.

    >>> as_of_or_now("2026-03-02T10:00:00+01:00")
    datetime.datetime(2026, 3, 2, 9, 0)
    >>> as_of_or_now(None) <= utc_now()
    True
    """
    if not text:
        return utc_now()
    return parse_instant(text) if isinstance(text, str) else to_naive_utc(text)


def as_aware_utc(instant: dt.datetime) -> dt.datetime:
    """A naive-UTC instant marked as UTC (for APIs that want aware datetimes).

    >>> as_aware_utc(dt.datetime(2026, 3, 2, 9, 30)).isoformat()
    '2026-03-02T09:30:00+00:00'
    """
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def local_date(instant: dt.datetime, timezone: str) -> dt.date:
    """The calendar date in ``timezone`` at a naive-UTC instant.

    >>> local_date(dt.datetime(2026, 3, 3, 3, 0), "America/New_York")
    datetime.date(2026, 3, 2)
    """
    return as_aware_utc(instant).astimezone(ZoneInfo(timezone)).date()


def local_day_bounds(instant: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """Naive-UTC bounds [start, end) of the local calendar day in ``timezone`` holding
    ``instant`` (23 or 25 hours long on DST days).

    >>> local_day_bounds(dt.datetime(2026, 3, 8, 12, 0), "America/New_York")
    (datetime.datetime(2026, 3, 8, 5, 0), datetime.datetime(2026, 3, 9, 4, 0))
    """
    tz = ZoneInfo(timezone)
    day = local_date(instant, timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return to_naive_utc(start), to_naive_utc(end)
