"""Typed models of the workspace files: ``users.yaml`` and ``sequences/*.yaml`` (SPEC 2, 4, 9).

The models check shape and local rules only; checks that need the rest of the workspace
(owners, templates, views, conditions against the database schema) live in
:mod:`pipelines.workspace`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ActionKind = Literal["email", "email_reminder", "follow_up", "call_reminder", "sms"]
EMAIL_ACTIONS = frozenset({"email"})
TASK_ACTIONS = frozenset({"email_reminder", "follow_up", "call_reminder"})
DEFAULT_CONDITION_LIMIT = 8


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a sequence file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r}") from exc
    return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SendWindow(Strict):
    """SPEC 11: emails and SMS go out only while the recipient's local time is inside
    [start, end) on one of ``weekdays``; ``timezone: contact`` is the contact's own
    (else the owner's), ``owner`` the sequence owner's (else the schedule's)."""

    start: str = "08:00"
    end: str = "18:00"
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]), min_length=1
    )
    timezone: Literal["contact", "owner"] = "contact"

    @model_validator(mode="after")
    def _check_hours(self) -> SendWindow:
        start, end = (_hh_mm(self.start, "start"), _hh_mm(self.end, "end"))
        if start >= end:
            raise ValueError(
                f"send_window: start {self.start} must be before end {self.end} "
                "(a window does not cross midnight)"
            )
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("send_window: weekdays repeat a day")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        """[start, end) in minutes after local midnight."""
        start, end = _hh_mm(self.start, "start"), _hh_mm(self.end, "end")
        return start.hour * 60 + start.minute, end.hour * 60 + end.minute

    @property
    def isodows(self) -> list[int]:
        """The weekdays as ISO numbers (Monday 1 … Sunday 7)."""
        return [WEEKDAYS.index(d) + 1 for d in self.weekdays]


def _hh_mm(value: str, what: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"send_window: {what} must be HH:MM, got {value!r}") from exc


class Mailbox(Strict):
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None


class Inbox(Strict):
    """The IMAP inbox ``sequencer mailbox poll`` reads for replies and bounces (SPEC 10)."""

    host: str
    port: int = 993
    username: str
    password_env: str
    tls: bool = True


class User(Strict):
    id: str
    email: str
    name: str | None = None
    role: str
    timezone: str = "UTC"
    daily_email_limit: int = Field(default=500, ge=0)
    mailbox: Mailbox | None = None
    inbox: Inbox | None = None

    _tz = field_validator("timezone")(check_timezone)


class SmsGateway(Strict):
    url: str
    token_env: str | None = None


class Tracking(Strict):
    base_url: str
    # The variable holding the signing secret, or a list: the first signs, every one verifies
    # (rotation: put the new variable first and keep the old one until its links age out).
    secret_env: str | list[str] | None = None


PERMISSIONS = frozenset({"view_sequences", "create_sequences", "admin"})


class UsersFile(Strict):
    users: list[User] = Field(default_factory=list)
    roles: dict[str, list[str]] = Field(default_factory=dict)
    sms_gateway: SmsGateway | None = None
    tracking: Tracking | None = None
    condition_limit: int = Field(default=DEFAULT_CONDITION_LIMIT, ge=1)
    send_window: SendWindow | None = None  # the default of every sequence without its own

    @model_validator(mode="after")
    def _check_roles(self) -> UsersFile:
        for role, grants in self.roles.items():
            unknown = sorted(set(grants) - PERMISSIONS)
            if unknown:
                raise ValueError(f"role {role!r} grants unknown permissions {unknown}")
        ids = [u.id for u in self.users]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate user ids {dupes}")
        for user in self.users:
            if user.role not in self.roles:
                raise ValueError(f"user {user.id!r} has unknown role {user.role!r}")
        return self

    def user(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def can(self, user_id: str, permission: str) -> bool:
        """Whether the user's role grants ``permission`` (admins hold every permission)."""
        user = self.user(user_id)
        if user is None:
            return False
        grants = set(self.roles.get(user.role, []))
        return "admin" in grants or permission in grants


class Audience(Strict):
    record: Literal["contact", "account"] = "contact"
    views: list[str] = Field(default_factory=list)
    where: list[str] = Field(default_factory=list)
    prevent_duplicate_emails: bool = False


class Schedule(Strict):
    time: str = "09:00"
    timezone: str = "UTC"
    exclude_weekends: bool = False

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"time must be HH:MM, got {value!r}") from exc
        return value

    @property
    def local_time(self) -> dt.time:
        return dt.time.fromisoformat(self.time)


class Variant(Strict):
    """One arm of an email step's A/B test (SPEC 11): its subject and/or template override
    the step's; ``weight`` is its share of the enrolments (0: none, kept for the record)."""

    id: str = Field(min_length=1)
    subject: str | None = None
    template: str | None = None
    weight: float = Field(default=1, ge=0, allow_inf_nan=False)


class Step(Strict):
    id: str
    action: ActionKind
    day: int | None = Field(default=None, ge=1)
    when: list[str] = Field(default_factory=list)
    template: str | None = None
    subject: str | None = None
    body: str | None = None
    note: str | None = None
    thread: Literal["new", "reply"] = "new"
    from_: str = Field(default="owner", alias="from")
    reply_to: str = "owner"
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    track_opens: bool = False
    track_clicks: bool = False
    unsubscribe_link: bool = True
    variants: list[Variant] | None = None

    @model_validator(mode="after")
    def _check_content(self) -> Step:
        self._check_variants()
        arms = self.variants or [Variant(id="-")]
        if self.action == "email" and not all(v.template or self.template for v in arms):
            raise ValueError(f"step {self.id!r}: an email step needs a template")
        # SPEC 4: a reply's subject is "Re: " + its thread's, so it needs none of its own
        subjects = all(v.subject or self.subject for v in arms)
        if self.action == "email" and not subjects and self.thread != "reply":
            raise ValueError(f"step {self.id!r}: an email step needs a subject")
        if self.action == "sms" and not (self.template or self.body):
            raise ValueError(f"step {self.id!r}: an sms step needs a template or a body")
        return self

    def _check_variants(self) -> None:
        if self.variants is None:
            return
        if self.action != "email":
            raise ValueError(f"step {self.id!r}: only an email step may have variants")
        if len(self.variants) < 2:
            raise ValueError(f"step {self.id!r}: variants needs at least 2 variants")
        ids = [v.id for v in self.variants]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"step {self.id!r}: duplicate variant ids {dupes}")
        if not sum(v.weight for v in self.variants) > 0:
            raise ValueError(f"step {self.id!r}: the variants' weights add up to 0")

    def variant(self, variant_id: str | None) -> Variant | None:
        """The variant ``variant_id`` of this step (None: no variants, or not in the file)."""
        return next((v for v in self.variants or [] if v.id == variant_id), None)


class Exit(Strict):
    all_steps_done: bool = True
    replied: bool = True
    unsubscribed: bool = True
    bounced: bool = True
    where: list[str] = Field(default_factory=list)


class Sequence(Strict):
    name: str
    owner: str
    type: Literal["classic", "smart"] = "classic"
    starts_on: dt.date | None = None
    interval_days: int | None = Field(default=None, ge=1)
    duration_days: int | None = Field(default=None, ge=1)
    stale_after_hours: float = Field(default=24, gt=0)
    audience: Audience = Field(default_factory=Audience)
    schedule: Schedule = Field(default_factory=Schedule)
    exclusive_with: list[str] = Field(default_factory=list)
    # SPEC 11: the share (%) of contacts enrolled as a holdout, never contacted; 0.01 steps
    holdout_percent: float = Field(default=0, ge=0, lt=100)
    send_window: SendWindow | None = None  # else users.yaml's; none: any time (SPEC 11)
    steps: list[Step] = Field(min_length=1)
    exit: Exit = Field(default_factory=Exit)

    @model_validator(mode="after")
    def _check_steps(self) -> Sequence:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate step ids {dupes}")
        if self.type == "classic":
            missing = [s.id for s in self.steps if s.day is None]
            if missing:
                raise ValueError(f"classic sequence: steps {missing} need a 'day'")
            days = [s.day for s in self.steps]
            if days != sorted(days):
                raise ValueError("classic sequence: step days must not decrease in file order")
        else:
            if self.interval_days is None or self.duration_days is None:
                raise ValueError("smart sequence: needs interval_days and duration_days")
            with_day = [s.id for s in self.steps if s.day is not None]
            if with_day:
                raise ValueError(f"smart sequence: steps {with_day} must not have a 'day'")
        for step in self.steps:
            if step.thread == "reply" and step.action == "email":
                earlier = self.steps[: self.steps.index(step)]
                if not any(s.action == "email" for s in earlier):
                    raise ValueError(f"step {step.id!r}: thread: reply needs an earlier email step")
        return self

    @field_validator("holdout_percent")
    @classmethod
    def _check_holdout(cls, value: float) -> float:
        if abs(value * 100 - round(value * 100)) > 1e-6:
            raise ValueError(f"holdout_percent: steps of 0.01 (one bucket in 10,000), got {value}")
        return value

    @property
    def holdout_buckets(self) -> int:
        """The buckets (of 0-9999) held out: an enrolment whose bucket is below is a holdout."""
        return round(self.holdout_percent * 100)

    @property
    def has_email_steps(self) -> bool:
        return any(s.action in EMAIL_ACTIONS for s in self.steps)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)
