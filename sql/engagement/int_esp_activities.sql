-- ESP events (`esp_events`, from sql/engagement/stg_esp_<provider>.sql) matched to our sends, as
-- the activity records `load_staged_activities` loads (`ingest_raw`: __text, __raw, __line).
-- A send is an `email_sent` activity or a sent email action with a Message-ID (compared
-- without angle brackets). Matching, in order (SPEC 10):
--   1. the event's Message-ID names a send: its sequence, step, message_id, and its contact
--      when the event's recipient is the send's address (or the event names none; an event
--      for a cc'd address keeps the send but finds its contact by email);
--   2. else the recipient's latest send at or before the event (10 minutes of clock skew
--      allowed): detail.match = 'address';
--   3. else no send: the loader finds the contact by email; sequence and step stay null.
-- Skipped events (`skip`: reported in the result's notes) and repeats of an event id within
-- the file (the first one loads) are not staged.
{% import 'engagement/_macros.sql' as m %}
with

events as (
    select
        *,
        nullif(trim(provider_message_id, '<> '), '') as message_key,
        timezone('UTC', try_cast(occurred_at as timestamptz)) as ts,
    from esp_events
    where skip is null and not repeated
),

sends_all as (
    select trim(message_id, '<> ') as message_key, *,
    from ({{ m.our_sends() | indent(4) }})
),

sends as (
    select
        sends_all.* exclude (email, source),
        lower(coalesce(sends_all.email, contacts.email)) as address,
    from sends_all
    left join contacts using (contact_id)
    qualify row_number() over (partition by sends_all.message_key order by source) = 1
),

by_message_id as (
    select
        events.__line,
        events.__sub,
        case
            when events.email is null or sends.address is null
                or lower(events.email) = sends.address then sends.contact_id
        end as contact_id,
        sends.sequence,
        sends.step,
        sends.message_id,
    from events
    inner join sends on sends.message_key = events.message_key
),

unmatched as (
    select events.*
    from events
    anti join by_message_id using (__line, __sub)
    where events.email is not null and events.ts is not null
),

by_address as (
    select
        unmatched.__line,
        unmatched.__sub,
        sends.contact_id,
        sends.sequence,
        sends.step,
        sends.message_id,
    from unmatched
    asof join sends
        on lower(unmatched.email) = sends.address
        and unmatched.ts + interval 10 minute >= sends.sent_at
),

matched as (
    select
        events.*,
        coalesce(by_message_id.sequence, by_address.sequence) as sequence,
        coalesce(by_message_id.step, by_address.step) as step,
        coalesce(by_message_id.contact_id, by_address.contact_id) as contact_id,
        coalesce(
            by_message_id.message_id,
            by_address.message_id,
            '<' || events.message_key || '>'
        ) as message_id,
        case
            when by_message_id.__line is not null then 'message_id'
            when by_address.__line is not null then 'address'
        end as match,
    from events
    left join by_message_id using (__line, __sub)
    left join by_address using (__line, __sub)
),

final as (
    select
        case
            when invalid then raw
            else json_object(
                'activity_id', activity_id,
                'contact_id', contact_id,
                'email', email,
                'type', type,
                'occurred_at', occurred_at,
                'sequence', sequence,
                'step', step,
                'message_id', message_id,
                'detail', json_merge_patch(detail, json_object('match', match))::varchar
            )::varchar
        end as __text,
        raw as __raw,
        __line,
    from matched
    order by __line, __sub
)

select * from final
