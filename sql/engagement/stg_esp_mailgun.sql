-- Mailgun events (webhook payloads `{"signature", "event-data"}`, events API pages
-- `{"items": [...]}` or bare events) as activity rows for sql/engagement/int_esp_activities.sql.
-- The event id is event-data `id` (the same in webhooks and the events API), else the
-- webhook's signature token. Message-IDs come without angle brackets.
{% import 'engagement/_macros.sql' as esp %}
with

single as (
    select
        __line,
        0 as __sub,
        coalesce(j -> 'event-data', j) as e,
        j -> 'signature' ->> 'token' as token,
        raw,
        j is null as invalid,
    from esp_records
    where j is null or coalesce(json_type(j -> 'items'), '') <> 'ARRAY'
),

paged as (
    select
        __line,
        unnest(range(1, json_array_length(j, '$.items')::bigint + 1)) as __sub,
        unnest(json_extract(j, '$.items[*]')) as e,
        null as token,
    from esp_records
    where json_type(j -> 'items') = 'ARRAY'
),

events as (
    select * from single
    union all by name
    select *, json(e)::varchar as raw, false as invalid from paged
),

typed as (
    -- one parse per event: json_transform reads every member the model uses at once
    select
        *,
        json_transform(e, '{
            "id": "VARCHAR", "event": "VARCHAR", "timestamp": "VARCHAR",
            "recipient": "VARCHAR", "severity": "VARCHAR", "reason": "VARCHAR",
            "url": "VARCHAR", "reject": {"reason": "VARCHAR"},
            "delivery-status": {"code": "VARCHAR", "message": "VARCHAR",
                                "description": "VARCHAR"},
            "client-info": {"bot": "VARCHAR", "user-agent": "VARCHAR"},
            "message": {"headers": {"message-id": "VARCHAR"}}
        }') as s,
    from events
),

named as (
    select
        *,
        s.event,
        s.severity,
        s.reason,
        nullif(s."client-info".bot, '') as bot,
        s."delivery-status" as status,
    from typed
),

final as (
    select
        __line,
        __sub,
        invalid,
        'mailgun:' || coalesce(s.id, token, {{ esp.record_hash('e') }}) as activity_id,
        nullif(trim(s.recipient), '') as email,
        case
            when event = 'delivered' then 'email_delivered'
            when event = 'opened' then 'email_opened'
            when event = 'clicked' then 'email_clicked'
            when event = 'unsubscribed' then 'unsubscribed'
            when event = 'complained' then 'email_complained'
            when event = 'failed' and severity = 'temporary' then 'email_soft_bounced'
            when event = 'failed' and reason = 'suppress-unsubscribe' then 'unsubscribed'
            when event = 'failed' and reason = 'suppress-complaint' then 'email_complained'
            when event = 'failed' and severity = 'permanent' then 'email_bounced'
            else 'mailgun:' || coalesce(event, '(no event)')
        end as type,
        {{ esp.epoch_iso('s.timestamp') }} as occurred_at,
        s.message.headers."message-id" as provider_message_id,
        {{ esp.detail(
            "'provider': 'mailgun', 'event': event, 'severity': severity, 'reason': reason,"
            ~ " 'status': status.code, 'diagnostic': coalesce(nullif(status.message, ''),"
            ~ " nullif(status.description, ''), s.reject.reason),"
            ~ " 'url': s.url, 'machine': case when bot is not null then true end,"
            ~ " 'bot': bot, 'user_agent': s.\"client-info\".\"user-agent\""
        ) }} as detail,
        case
            when event = 'accepted'
                then 'accepted: Mailgun accepted the email (our send is its email_sent)'
        end as skip,
        raw,
    from named
)

select * from final
