-- Seeded engagement for the demo: what prospects do with the emails sent in a window.
-- Parameters: $window_start, $window_end (naive UTC), $seed (varchar). Deterministic: the
-- draws hash the message id with the seed, so the same demo gives the same story.

with

sent as (
    select contact_id, sequence, step, message_id, occurred_at as sent_at,
    from activities
    where type = 'email_sent'
      and sequence is not null  -- the engine's own sends, not imported history
      and message_id is not null
      and occurred_at > $window_start
      and occurred_at <= $window_end
),

draws as (
    select
        *,
        (hash(message_id || $seed || 'bounce') % 10000) / 10000.0 as p_bounce,
        (hash(message_id || $seed || 'open') % 10000) / 10000.0 as p_open,
        (hash(message_id || $seed || 'click') % 10000) / 10000.0 as p_click,
        (hash(message_id || $seed || 'reply') % 10000) / 10000.0 as p_reply,
        (hash(message_id || $seed || 'unsub') % 10000) / 10000.0 as p_unsub,
        1 + (hash(message_id || $seed || 'delay') % 600) as delay_minutes,
    from sent
),

events as (
    select *, 'email_bounced' as type, 1 as k from draws where p_bounce < 0.03
    union all
    select *, 'email_delivered', 0 from draws where p_bounce >= 0.03
    union all
    select *, 'email_opened', 2 from draws where p_bounce >= 0.03 and p_open < 0.45
    union all
    select *, 'email_clicked', 3 from draws where p_bounce >= 0.03 and p_open < 0.12
    union all
    select *, 'email_replied', 4 from draws
    where p_bounce >= 0.03 and p_open < 0.45 and p_reply < 0.18
    union all
    select *, 'unsubscribed', 5 from draws where p_bounce >= 0.03 and p_unsub < 0.015
),

final as (
    select
        'sim:' || type || ':' || message_id as activity_id,
        contact_id,
        type,
        -- engagement lands inside the window: the file is "exported" at its end
        least(sent_at + to_minutes(cast(delay_minutes * (1 + k) / 4 as integer)), $window_end)
            as occurred_at,
        sequence,
        step,
        message_id,
    from events
)

select * from final order by occurred_at, activity_id
