-- The actions report (`sequencer actions`, issue 12): actions in the chosen statuses, grouped
-- by (sequence, step, status, reason = actions.error) with the count and the oldest and newest
-- occurrence of each group, most frequent first; with `members`, the first $list_limit actions
-- of each group instead (oldest occurrence first, ties by key), each with its group's size.
-- Read-only. Parameters:
--   $statuses   varchar[]: the statuses to report (the default is chosen by the caller);
--   $sequences  varchar[] or null: the sequences the user may see (null: all, admins and the
--               operator; an action of a sequence no longer in the files shows only to them);
--   $sequence, $step: null, or only that sequence / step id;
--   $list_limit with `members`: how many actions of each group to return.
{% set members = members | default(false) %}
with

chosen as (
    select
        a.idempotency_key,
        a.sequence,
        a.step,
        a.status,
        a.error as reason,
        a.contact_id,
        a.action,
        a.occurrence_at,
        a.attempts,
    from actions as a
    where
        list_contains($statuses::varchar[], a.status)
        and ($sequences::varchar[] is null or list_contains($sequences::varchar[], a.sequence))
        and ($sequence::varchar is null or a.sequence = $sequence)
        and ($step::varchar is null or a.step = $step)
),

{% if members %}
ranked as (
    select
        c.*,
        row_number() over (
            partition by c.sequence, c.step, c.status, c.reason
            order by c.occurrence_at, c.idempotency_key
        ) as position,
    from chosen as c
),

final as (
    select
        r.sequence,
        r.step,
        r.status,
        r.reason,
        r.position,
        r.idempotency_key,
        r.contact_id,
        r.action,
        r.occurrence_at,
        r.attempts,
    from ranked as r
    where r.position <= $list_limit
)

select * from final
order by sequence, step, status, reason nulls first, position
{% else %}
groups as (
    select
        sequence,
        step,
        status,
        reason,
        count(*) as actions,
        min(occurrence_at) as oldest,
        max(occurrence_at) as newest,
    from chosen
    group by sequence, step, status, reason
),

final as (
    select * from groups
)

select * from final
order by actions desc, sequence, step, status, reason nulls first
{% endif %}
