-- Daily email volume per sender against the limit (`sequencer actions --volume`, issue 12):
-- one row per (sender, local calendar day) of the last $days days of that sender's timezone up
-- to the day holding $as_of. `sent` counts emails as the send's daily limit does
-- (int_send_batch.sql, `used`): status sent or unknown, on the local day of their finish (else
-- claim) time, half-open [00:00, next 00:00) — here only instants <= $as_of. `deferred_now` is
-- every email deferred at present (the table's state, whatever $as_of), by the user whose
-- mailbox will send it (the step's sender, as the send ranks them). Read-only; reads `actions`
-- and two small temp tables the caller fills from the workspace:
--   _rpt_senders(sender_id, timezone, daily_limit): the users reported (users.yaml);
--   _rpt_steps(sequence, step, sender_id): every step's sending user (owner or `from:`).
-- A sender with nothing sent in the window and nothing deferred is left out.
with

senders as (
    select
        sender_id,
        timezone,
        daily_limit,
        timezone(timezone, timezone('UTC', $as_of::timestamp))::date as today,
    from _rpt_senders
),

window_days as (
    select
        s.sender_id,
        s.timezone,
        s.daily_limit,
        (s.today - cast(r.range as integer))::date as local_day,
    from senders as s
    cross join range($days) as r
),

sends as (
    select
        a.sender_id,
        timezone(s.timezone, timezone('UTC', coalesce(a.finished_at, a.claimed_at)))::date
            as local_day,
    from actions as a
    inner join senders as s on s.sender_id = a.sender_id
    where
        a.action = 'email'
        and a.status in ('sent', 'unknown')
        and coalesce(a.finished_at, a.claimed_at) <= $as_of
        -- a day of slack either side of UTC (offsets reach ±14 h); the local day decides
        and coalesce(a.finished_at, a.claimed_at) > $as_of - to_days($days + 1)
),

sent_per_day as (
    select sender_id, local_day, count(*) as sent,
    from sends
    group by sender_id, local_day
),

deferred as (
    select
        coalesce(st.sender_id, a.sender_id) as sender_id,
        count(*) as deferred_now,
    from actions as a
    left join _rpt_steps as st on st.sequence = a.sequence and st.step = a.step
    where a.action = 'email' and a.status = 'deferred'
    group by coalesce(st.sender_id, a.sender_id)
),

final as (
    select
        w.sender_id,
        w.timezone,
        w.local_day,
        coalesce(p.sent, 0) as sent,
        w.daily_limit,
        coalesce(d.deferred_now, 0) as deferred_now,
    from window_days as w
    left join sent_per_day as p on p.sender_id = w.sender_id and p.local_day = w.local_day
    left join deferred as d on d.sender_id = w.sender_id
    qualify sum(coalesce(p.sent, 0)) over (partition by w.sender_id) > 0
        or coalesce(d.deferred_now, 0) > 0
)

select * from final
order by sender_id, local_day
