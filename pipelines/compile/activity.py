"""Activity functions in conditions (issue 12, item 7): the contact's activities as of the
occurrence instant t.

- ``activity_count('meeting', INTERVAL 30 DAY)``: the activities of that type with
  ``occurred_at`` in (t - 30 days, t]; without the interval, every one at or before t;
- ``last_activity_at('call_outgoing')``: the latest ``occurred_at`` <= t of that type, NULL if
  none.

The type is a string literal naming a known activity type (SPEC 3: the ingest list, or
``sales_activity:<name>``), the interval a literal ``INTERVAL n DAY|HOUR|WEEK``. Each
distinct call is an :class:`ActivityFeature`; the compiler replaces the call by a reference
to the feature's generated column of ``contact`` (``"contact"."__activity_count_..."``), so
the emitted SQL holds no subquery. The tick and the preview add those columns to the
``contact`` relation of an occurrence with ONE aggregate over ``activities`` (filtered by
type and window, grouped by contact), LEFT JOINed (``sql/tick/int_contact_activity.sql``).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from pipelines.compile.allowlist import reject
from pipelines.errors import Location
from pipelines.ingest.check import ACTIVITY_TYPES

KINDS: dict[str, Literal["count", "last"]] = {
    "activity_count": "count",
    "last_activity_at": "last",
}
UNIT_HOURS = {"hour": 1, "day": 24, "week": 24 * 7}
MAX_HOURS = 36_500 * 24  # 100 years: t - interval stays a valid timestamp
CUSTOM_TYPE = re.compile(r"sales_activity:\S.*", re.DOTALL)  # as sql/ingest/stg_activities.sql
EXAMPLE = "e.g. activity_count('meeting', INTERVAL 30 DAY)"


@dataclass(frozen=True)
class ActivityFeature:
    """One distinct activity function call: its kind, the activity type and the window in
    hours (None: all history up to the occurrence)."""

    kind: Literal["count", "last"]
    type: str
    hours: int | None = None

    @property
    def column(self) -> str:
        """The generated ``contact`` column holding it (engine-only columns start with __).

        >>> ActivityFeature("count", "meeting", 720).column
        '__activity_count_meeting_720h_4cc030ce'
        """
        window = "all" if self.hours is None else f"{self.hours}h"
        slug = re.sub(r"[^a-z0-9]+", "_", self.type.lower()).strip("_")
        digest = hashlib.sha256(f"{self.kind}|{self.type}|{window}".encode()).hexdigest()
        name = "activity_count" if self.kind == "count" else "last_activity_at"
        return f"__{name}_{slug}_{window}_{digest[:8]}"

    @property
    def sql_type(self) -> str:
        return "BIGINT" if self.kind == "count" else "TIMESTAMP"

    def sort_key(self) -> tuple:
        return (self.kind, self.type, -1 if self.hours is None else self.hours)

    def to_json(self) -> list:
        return [self.kind, self.type, self.hours]

    @classmethod
    def from_json(cls, item: list) -> ActivityFeature:
        kind, type_, hours = item
        return cls(kind, type_, hours)


def rewrite_activity_calls(
    tree: exp.Expr, scope: str, record: str, where: Location
) -> tuple[exp.Expr, frozenset[ActivityFeature]]:
    """Replace every activity function call by its feature's column; check its arguments.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("activity_count('meeting', interval 30 day) >= 1")
    >>> tree, found = rewrite_activity_calls(tree, "audience", "contact", Location())
    >>> print(tree.sql(), [f.to_json() for f in found])
    "contact"."__activity_count_meeting_720h_4cc030ce" >= 1 [['count', 'meeting', 720]]
    """
    features: set[ActivityFeature] = set()

    def rewrite(node: exp.Expr) -> exp.Expr:
        if type(node) is not exp.Anonymous or node.name.lower() not in KINDS:
            return node
        feature = _feature(node, scope, record, where)
        features.add(feature)
        return exp.column(feature.column, table="contact", quoted=True)

    return tree.transform(rewrite, copy=False), frozenset(features)


def with_feature_columns(tables: dict, features: frozenset[ActivityFeature]) -> dict:
    """The aliases visible to the condition, ``contact`` with the features' columns added."""
    if not features:
        return tables
    generated = {f.column: f.sql_type for f in sorted(features, key=ActivityFeature.sort_key)}
    return {**tables, "contact": {**tables["contact"], **generated}}


def feature_columns(features: frozenset[ActivityFeature]) -> set[tuple[str, str]]:
    return {("contact", f.column) for f in features}


def _feature(node: exp.Anonymous, scope: str, record: str, where: Location) -> ActivityFeature:
    name = node.name.lower()
    kind = KINDS[name]
    if scope == "audience" and record == "account":
        raise reject(
            f"{name}() reads a contact's activities: not available in an account audience",
            node,
            where,
        )
    args = node.expressions
    most = 2 if kind == "count" else 1
    if not 1 <= len(args) <= most:
        shape = "an activity type and an optional INTERVAL" if most == 2 else "an activity type"
        raise reject(f"{name}() takes {shape}, got {len(args)} arguments ({EXAMPLE})", node, where)
    activity_type = _activity_type(name, args[0], where)
    hours = _window_hours(name, args[1], where) if len(args) == 2 else None
    return ActivityFeature(kind, activity_type, hours)


def _activity_type(name: str, arg: exp.Expr, where: Location) -> str:
    if not (isinstance(arg, exp.Literal) and arg.is_string):
        hint = ""
        if isinstance(arg, exp.Column) and not arg.table:
            hint = f" (did you mean '{arg.name}'? strings take single quotes)"
        raise reject(
            f"the first argument of {name}() must be a string literal naming an activity "
            f"type{hint}",
            arg,
            where,
        )
    value = arg.name
    if value in ACTIVITY_TYPES or CUSTOM_TYPE.fullmatch(value):
        return value
    close = difflib.get_close_matches(value, ACTIVITY_TYPES, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise reject(
        f"unknown activity type {value!r} in {name}(){hint}: one of {', '.join(ACTIVITY_TYPES)}"
        " or sales_activity:<name>",
        arg,
        where,
    )


def _window_hours(name: str, arg: exp.Expr, where: Location) -> int:
    """``INTERVAL n DAY|HOUR|WEEK`` (singular or plural, n a whole number) in hours."""
    shape = f"the second argument of {name}() must be a literal INTERVAL of hours, days or weeks"
    if not isinstance(arg, exp.Interval):
        raise reject(f"{shape}, {EXAMPLE}", arg, where)
    amount, unit = arg.this, arg.args.get("unit")
    unit_name = unit.name.lower().removesuffix("s") if isinstance(unit, exp.Var) else ""
    digits = amount.name if isinstance(amount, exp.Literal) else ""
    if unit_name not in UNIT_HOURS or not digits.isdigit() or not digits.isascii():
        raise reject(f"{shape}, {EXAMPLE}", arg, where)
    hours = int(digits) * UNIT_HOURS[unit_name]
    if not 1 <= hours <= MAX_HOURS:
        limit = "at least 1 hour and at most 36500 days"
        raise reject(f"the window of {name}() must be {limit}", arg, where)
    return hours
