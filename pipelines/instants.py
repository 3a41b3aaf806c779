"""Instants: the one place that parses, reads and converts them.

Every timestamp the engine stores or compares is a naive ``datetime`` in UTC (SPEC 3); local
calendar dates are ``date`` values in a named IANA time zone. Text from a user (``--as-of``,
a run's config or tag) is ISO-8601, and text without an offset means UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pipelines.errors import UsageError

UTC = dt.UTC
EARLIEST = dt.datetime(1900, 1, 1)
LATEST = dt.datetime(3000, 1, 1)
"""Instants are accepted in [EARLIEST, LATEST): room for any history and any plan, and far
from the ends of ``datetime`` and DuckDB's timestamp, where adding a day overflows."""


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant as naive UTC; no offset means UTC, ``Z`` is accepted.

    >>> parse_instant("2026-03-02T09:30:00-05:00")
    datetime.datetime(2026, 3, 2, 14, 30)
    >>> parse_instant("2026-03-02T15:00:00Z")
    datetime.datetime(2026, 3, 2, 15, 0)
    >>> parse_instant("2026-03-02 23:00")
    datetime.datetime(2026, 3, 2, 23, 0)
    >>> parse_instant("2026-13-01")
    Traceback (most recent call last):
    pipelines.errors.UsageError: '2026-13-01' is not an ISO-8601 instant (month must be in 1..12)
    """
    try:
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return in_range(to_naive_utc(instant), text)
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"{text!r} is not an ISO-8601 instant ({exc})") from None


def in_range(instant: dt.datetime, text: object = None) -> dt.datetime:
    """``instant`` when it lies in [EARLIEST, LATEST); a :class:`UsageError` otherwise.

    >>> try:
    ...     in_range(dt.datetime(9999, 12, 31, 23, 59, 59))
    ... except UsageError as exc:
    ...     print(exc)
    9999-12-31 23:59:59 is out of range: instants go from 1900-01-01 to 2999-12-31
    """
    if EARLIEST <= instant < LATEST:
        return instant
    raise UsageError(
        f"{text or instant} is out of range: instants go from {EARLIEST:%Y-%m-%d} to "
        f"{LATEST - dt.timedelta(days=1):%Y-%m-%d}"
    )


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
    return parse_instant(text) if isinstance(text, str) else in_range(to_naive_utc(text))


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
