-- SendGrid Event Webhook events (one JSON object per record of `esp_records`) as activity
-- rows for sql/engagement/int_esp_activities.sql. Open and click events carry `sg_message_id` but
-- no `smtp-id`: they take the Message-ID of a sibling event of the same message in the file.
{% import 'engagement/_macros.sql' as esp %}
with

records as (
    -- one parse per event: json_transform reads every member the model uses at once
    -- (a value of another JSON type comes as its text; a missing member as NULL)
    select
        __line,
        j,
        raw,
        json_transform(j, '{
            "event": "VARCHAR", "email": "VARCHAR", "timestamp": "VARCHAR",
            "smtp-id": "VARCHAR", "sg_event_id": "VARCHAR", "sg_message_id": "VARCHAR",
            "type": "VARCHAR", "status": "VARCHAR", "reason": "VARCHAR",
            "response": "VARCHAR", "bounce_classification": "VARCHAR", "url": "VARCHAR",
            "sg_machine_open": "VARCHAR", "useragent": "VARCHAR", "asm_group_id": "VARCHAR"
        }') as s,
    from esp_records
),

sibling_ids as (
    select
        s.sg_message_id,
        min(s."smtp-id") as smtp_id,
    from records
    where s.sg_message_id is not null and s."smtp-id" is not null
    group by all
),

typed as (
    select
        records.*,
        s.event,
        case s.event
            when 'delivered' then 'email_delivered'
            when 'open' then 'email_opened'
            when 'click' then 'email_clicked'
            when 'deferred' then 'email_soft_bounced'
            when 'bounce' then
                case
                    when s.type = 'blocked' or starts_with(s.status, '4')
                        then 'email_soft_bounced'
                    else 'email_bounced'
                end
            when 'spamreport' then 'email_complained'
            when 'unsubscribe' then 'unsubscribed'
            when 'group_unsubscribe' then 'unsubscribed'
            when 'dropped' then
                case s.reason
                    when 'Bounced Address' then 'email_bounced'
                    when 'Unsubscribed Address' then 'unsubscribed'
                    when 'Spam Reporting Address' then 'email_complained'
                end
        end as mapped,
    from records
),

final as (
    select
        typed.__line,
        0 as __sub,
        typed.j is null as invalid,
        'sendgrid:' || coalesce(s.sg_event_id, {{ esp.record_hash('typed.j') }})
            as activity_id,
        nullif(trim(s.email), '') as email,
        coalesce(mapped, 'sendgrid:' || coalesce(event, '(no event)')) as type,
        {{ esp.epoch_iso('s.timestamp') }} as occurred_at,
        coalesce(s."smtp-id", sibling_ids.smtp_id) as provider_message_id,
        {{ esp.detail(
            "'provider': 'sendgrid', 'event': event, 'status': s.status, 'reason': s.reason,"
            ~ " 'diagnostic': s.response, 'classification': s.bounce_classification,"
            ~ " 'url': s.url, 'machine': case when s.sg_machine_open = 'true' then true end,"
            ~ " 'user_agent': s.useragent, 'asm_group_id': s.asm_group_id,"
            ~ " 'provider_message_id': s.sg_message_id"
        ) }} as detail,
        case
            when event = 'processed'
                then 'processed: SendGrid accepted the email (our send is its email_sent)'
        end as skip,
        typed.raw,
    from typed
    left join sibling_ids on sibling_ids.sg_message_id = typed.s.sg_message_id
)

select * from final
