-- The send step's batch (SPEC 6 "Sending"): which due and deferred actions go out now.
-- Reads `actions` and two small temp tables the send step fills from the workspace:
--   _send_steps(sequence, step, action, sender_id, weekend_hold): every step of every sequence
--     file, with the user whose mailbox sends it (the owner, or the user named by `from:`),
--     and whether the owner's weekend holds its emails now (SPEC 11, `exclude_weekends`);
--   _send_limits(sender_id, daily_limit, day_start, day_end): each user's daily limit and the
--     UTC bounds of the user's local day containing the send's as_of.
-- Only actions whose occurrence has come (occurrence_at <= $as_of) are candidates: a send never
-- acts early, even after a tick ran ahead. Emails a weekend holds are never within the limit
-- and take no slot. Emails rank per sender: deferred oldest first, then due oldest first, ties (one occurrence
-- decides many emails at one instant) by idempotency key ascending. The first
-- (daily_limit - emails already sent or in flight that local day) are within the limit; an
-- email counts for the local day [00:00, next 00:00) its finish (else claim) time falls in.
with

candidates as (
    select
        a.idempotency_key,
        a.action,
        a.status,
        a.occurrence_at,
        s.sender_id,
        (a.action = 'email' and coalesce(s.weekend_hold, false)) as weekend_hold,
    from actions as a
    left join _send_steps as s on s.sequence = a.sequence and s.step = a.step
    where a.status in ('due', 'deferred') and a.occurrence_at <= $as_of
),

used as (
    select
        a.sender_id,
        count(*) as sent_today,
    from actions as a
    inner join _send_limits as l on l.sender_id = a.sender_id
    where
        a.action = 'email'
        and a.status in ('sent', 'unknown')
        and coalesce(a.finished_at, a.claimed_at) >= l.day_start
        and coalesce(a.finished_at, a.claimed_at) < l.day_end
    group by a.sender_id
),

ranked as (
    select
        c.*,
        row_number() over (
            partition by c.sender_id, c.action = 'email', c.weekend_hold
            order by c.status = 'deferred' desc, c.occurrence_at, c.idempotency_key
        ) as sender_rank,
    from candidates as c
),

final as (
    select
        r.idempotency_key,
        r.action,
        r.status,
        r.occurrence_at,
        r.sender_id,
        r.weekend_hold,
        not r.weekend_hold and (
            r.action <> 'email'
            or l.sender_id is null
            or r.sender_rank <= l.daily_limit - coalesce(u.sent_today, 0)
        ) as within_limit,
    from ranked as r
    left join _send_limits as l on l.sender_id = r.sender_id
    left join used as u on u.sender_id = r.sender_id
)

select * from final
