"""The allow-list of the condition compiler (SPEC 5): the node classes, functions and bare
words a condition may hold, and the walk that rejects anything else, naming it and where it
starts. Membership is by exact class, never ``isinstance``.
"""

from __future__ import annotations

from sqlglot import exp

from pipelines.errors import ConditionError, Location

# --- The allow-list -------------------------------------------------------------------------
# Node classes a condition may contain. Everything else (subqueries, statements, table
# functions, file readers, JSON/struct access, lambdas, placeholders, star) is rejected.
# Note exp.And/exp.Or subclass exp.Func: membership is by exact class, never isinstance.
ALLOWED_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        # leaves and structure
        exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Var,
        exp.DataType, exp.DataTypeParam, exp.Interval, exp.Array,
        # logic and comparison
        exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Is,
        exp.NullSafeEQ, exp.NullSafeNEQ, exp.Between, exp.In, exp.Case, exp.If,
        exp.Like, exp.ILike, exp.SimilarTo, exp.Glob, exp.Escape, exp.RegexpLike,
        # arithmetic and casts
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Cast, exp.TryCast,
        # strings
        exp.Lower, exp.Upper, exp.Trim, exp.Length, exp.Concat, exp.DPipe, exp.Substring,
        exp.Left, exp.Right, exp.StartsWith, exp.EndsWith, exp.Contains, exp.Replace,
        exp.SplitPart, exp.RegexpExtract, exp.RegexpReplace, exp.StrPosition, exp.Pad,
        # null handling and numbers
        exp.Coalesce, exp.Nullif, exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Least,
        exp.Greatest,
        # dates and times
        exp.DateDiff, exp.DateTrunc, exp.TimestampTrunc, exp.Extract, exp.DateAdd, exp.DateSub,
        exp.Year, exp.Month, exp.Day, exp.DayOfWeek, exp.TimeToStr, exp.StrToTime,
        exp.TimeToUnix, exp.CurrentTimestamp, exp.Localtimestamp, exp.CurrentDate,
        # lists
        exp.ArrayContains, exp.ArrayOverlaps, exp.ArraySize,
    }
)  # fmt: skip

# The bare words a condition may hold: date parts and interval units (date_trunc(month, x),
# extract(year from x), interval 3 day). Anything else would fail only at run time.
DATE_PARTS: frozenset[str] = frozenset(
    {
        unit + plural
        for unit in (
            "year", "month", "day", "hour", "minute", "second", "millisecond", "microsecond",
            "week", "quarter", "decade", "century", "millennium",
        )
        for plural in ("", "s")
    }
    | set("dow doy isodow isoyear yearweek dayofweek dayofyear weekday epoch ms us".split())
)  # fmt: skip

# Function names allowed when sqlglot has no class for them (they parse as exp.Anonymous).
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    """
    lower upper trim ltrim rtrim length concat substring left right starts_with ends_with
    contains replace split_part regexp_matches regexp_extract regexp_replace strpos lpad rpad
    coalesce ifnull nullif abs round floor ceil least greatest
    date_diff datediff date_trunc date_part datepart extract date_add date_sub year month day
    dayofweek strftime strptime epoch age
    list_contains list_has_any len array_length list_count
    now get_current_timestamp transaction_timestamp today
    """.split()
)


MAX_PAD_WIDTH = 1_000  # lpad/rpad build a string of this width per row: a filter needs few


def _check_pad(node: exp.Pad, where: Location) -> None:
    """lpad/rpad widths are integer literals of at most :data:`MAX_PAD_WIDTH`: a width of 2e9
    (or one read from data) would build gigabytes per row."""
    width = node.expression
    if not (isinstance(width, exp.Literal) and width.is_int):
        raise reject("the width of lpad/rpad must be a whole number", node, where)
    if int(width.name) > MAX_PAD_WIDTH:
        raise reject(
            f"the width of lpad/rpad is {width.name}: at most {MAX_PAD_WIDTH}", node, where
        )


def _position(node: exp.Expr) -> int | None:
    """Where the node starts, when its token carried a position (a column: its first part)."""
    if isinstance(node, exp.Column):
        starts = [part.meta["start"] for part in node.parts if "start" in part.meta]
        return min(starts, default=None)
    return node.meta.get("start")


def reject(reason: str, node: exp.Expr, where: Location) -> ConditionError:
    return ConditionError(reason, where, _position(node))


def check_allowed(tree: exp.Expr, where: Location) -> None:
    """Walk every node; anything not on the allow-list is an error naming it."""
    for node in tree.walk():
        kind = type(node)
        if isinstance(node, (exp.Query, exp.Subquery, exp.Exists)):
            raise reject("subqueries are not allowed", node, where)
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and node.is_star):
            raise reject("* is not allowed", node, where)
        if isinstance(node, exp.Placeholder):
            raise reject("parameters and placeholders are not allowed", node, where)
        if kind is exp.Anonymous:
            if node.name.lower() not in ALLOWED_FUNCTIONS:
                raise reject(f"function {node.name.lower()}() is not allowed", node, where)
            continue
        if kind is exp.In and node.args.get("query"):
            raise reject("subqueries are not allowed", node, where)
        if kind is exp.In and (node.args.get("unnest") or not node.expressions):
            raise reject("IN takes a non-empty list of values only", node, where)
        if kind is exp.Pad:
            _check_pad(node, where)
        if kind is exp.Var and node.name.lower() not in DATE_PARTS:
            raise reject(f"unknown date part {node.name!r}", node, where)
        if kind not in ALLOWED_NODES:
            raise reject(_describe(node) + " is not allowed", node, where)


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Func):
        return f"function {node.sql_name().lower()}()"
    return f"{node.key.upper()} expression"
