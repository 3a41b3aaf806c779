-- The send step's batch (SPEC 6 "Sending"): which due and deferred actions go out now.
-- Reads `actions` and two small temp tables the send step fills from the workspace:
--   _send_steps(sequence, step, action, sender_id, weekend_hold, window_*): every step of
--     every sequence file, with the user whose mailbox sends it (the owner, or the user named
--     by `from:`), whether the owner's weekend holds its emails now (SPEC 11,
--     `exclude_weekends`), and its send window (SPEC 11: [window_from, window_to) in local
--     minutes on ISO weekdays window_days, in the contact's timezone, else the owner's
--     owner_tz; window_tz 'owner': always the owner's; null: no window);
--   _send_limits(sender_id, daily_limit, day_start, day_end): each user's daily limit and the
--     UTC bounds of the user's local day containing the send's as_of.
-- Only actions whose occurrence has come (occurrence_at <= $as_of) are candidates: a send never
-- acts early, even after a tick ran ahead. Emails a weekend holds, and emails and SMS outside
-- the recipient's send window, are never within the limit and take no slot. Emails rank per sender: deferred oldest first, then due oldest first, ties (one occurrence
-- decides many emails at one instant) by idempotency key ascending. The first
-- (daily_limit - emails already sent or in flight that local day) are within the limit; an
-- email counts for the local day [00:00, next 00:00) its finish (else claim) time falls in.
with

known_zones as (
    select name from pg_timezone_names()
),

candidates as (
    select
        a.idempotency_key,
        a.action,
        a.status,
        a.occurrence_at,
        s.sender_id,
        (a.action = 'email' and coalesce(s.weekend_hold, false)) as weekend_hold,
        -- the recipient's local time now: the contact's timezone (one DuckDB knows: ingest
        -- quarantines others), else the owner's
        case
            when a.action in ('email', 'sms') and s.window_from is not null then
                timezone(
                    case
                        when s.window_tz = 'contact' and c.timezone in (select name from known_zones)
                            then c.timezone
                        else s.owner_tz
                    end,
                    $as_of::timestamp::timestamptz
                )
        end as recipient_local,
        s.window_from,
        s.window_to,
        s.window_days,
    from actions as a
    left join _send_steps as s on s.sequence = a.sequence and s.step = a.step
    left join contacts as c on c.contact_id = a.contact_id
    where a.status in ('due', 'deferred') and a.occurrence_at <= $as_of
),

held as (
    select
        candidates.* exclude (recipient_local, window_from, window_to, window_days),
        coalesce(
            not list_contains(window_days, isodow(recipient_local))
            or hour(recipient_local) * 60 + minute(recipient_local) not between
                window_from and window_to - 1,
            false
        ) as window_hold,
    from candidates
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
            partition by c.sender_id, c.action = 'email', c.weekend_hold or c.window_hold
            order by c.status = 'deferred' desc, c.occurrence_at, c.idempotency_key
        ) as sender_rank,
    from held as c
),

final as (
    select
        r.idempotency_key,
        r.action,
        r.status,
        r.occurrence_at,
        r.sender_id,
        r.weekend_hold,
        r.window_hold,
        not r.weekend_hold and not r.window_hold and (
            r.action <> 'email'
            or l.sender_id is null
            or r.sender_rank <= l.daily_limit - coalesce(u.sent_today, 0)
        ) as within_limit,
    from ranked as r
    left join _send_limits as l on l.sender_id = r.sender_id
    left join used as u on u.sender_id = r.sender_id
)

select * from final
