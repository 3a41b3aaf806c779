-- The occurrence's step decisions (tick_actions, int_step_actions.sql) become actions.
-- The idempotency key is a hash of (sequence, contact, step, enrolment): deterministic; md5
-- (32 hex characters) since issue 11: the key's index is most of this insert, and a 64-hex
-- sha256 made it 1.7x as costly (500,000 actions into 2.1 M: 2.72 s vs 1.64 s; no index at
-- all: 0.35 s). Keys of older rows stay 64 characters; no key is ever recomputed. A
-- collision (even a crafted one) fails the group on the primary key: never a double send. A
-- decision is never rewritten because tick_actions holds only steps not yet decided for the
-- enrolment (int_step_actions.sql, `undecided`), which is exactly "no row with this key": a
-- plain insert, whose key check is an index lookup per row. (`on conflict do nothing` made
-- DuckDB join every insert against a full scan of the actions keys: ~0.15 s per occurrence
-- at 3e6 actions.) The primary key stays the backstop: a duplicate would fail the group.
-- Batched (several sequences of one instant in one tick_actions), each row carries its
-- sequence, occurrence and decided_at. variant: the email step's variant (issue 13), else null.
{% set batched = batched | default(false) %}
{% set sequence = 'sequence' if batched else '$sequence' %}
insert into actions (
    idempotency_key, sequence, contact_id, enrollment_id, step, step_index, day, action,
    occurrence_on, occurrence_at, status, decided_status, decided_at, variant
)
select
    md5(concat_ws(chr(31), {{ sequence }}, contact_id, step, enrollment_id)),
    {{ sequence }}, contact_id, enrollment_id, step, step_index, day, action,
    {{ 'occurrence_on' if batched else '$occurrence_on' }},
    {{ 'occurrence_at' if batched else '$occurrence_at' }},
    status, status,
    {{ 'decided_at' if batched else '$decided_at' }},
    variant
from tick_actions
