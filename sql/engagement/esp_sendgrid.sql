-- SendGrid Event Webhook events (one JSON object per record of `esp_records`) as activity
-- rows for sql/engagement/esp_activities.sql. Open and click events carry `sg_message_id` but
-- no `smtp-id`: they take the Message-ID of a sibling event of the same message in the file.
{% import 'engagement/_esp.sql' as esp %}
with

records as (
    select
        __line,
        j,
        raw,
        j ->> 'event' as event,
    from esp_records
),

sibling_ids as (
    select
        j ->> 'sg_message_id' as sg_message_id,
        min(j ->> 'smtp-id') as smtp_id,
    from records
    where j ->> 'sg_message_id' is not null and j ->> 'smtp-id' is not null
    group by all
),

typed as (
    select
        records.*,
        case event
            when 'delivered' then 'email_delivered'
            when 'open' then 'email_opened'
            when 'click' then 'email_clicked'
            when 'deferred' then 'email_soft_bounced'
            when 'bounce' then
                case
                    when j ->> 'type' = 'blocked' or starts_with(j ->> 'status', '4')
                        then 'email_soft_bounced'
                    else 'email_bounced'
                end
            when 'spamreport' then 'email_complained'
            when 'unsubscribe' then 'unsubscribed'
            when 'group_unsubscribe' then 'unsubscribed'
            when 'dropped' then
                case j ->> 'reason'
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
        'sendgrid:' || coalesce(j ->> 'sg_event_id', {{ esp.record_hash('typed.j') }})
            as activity_id,
        nullif(trim(j ->> 'email'), '') as email,
        coalesce(mapped, 'sendgrid:' || coalesce(event, '(no event)')) as type,
        {{ esp.epoch_iso("j ->> 'timestamp'") }} as occurred_at,
        coalesce(j ->> 'smtp-id', sibling_ids.smtp_id) as provider_message_id,
        {{ esp.detail(
            "'provider': 'sendgrid', 'event': event, 'status': j ->> 'status',"
            ~ " 'reason': j ->> 'reason', 'diagnostic': j ->> 'response',"
            ~ " 'classification': j ->> 'bounce_classification', 'url': j ->> 'url',"
            ~ " 'machine': case when (j ->> 'sg_machine_open') = 'true' then true end,"
            ~ " 'user_agent': j ->> 'useragent', 'asm_group_id': j ->> 'asm_group_id',"
            ~ " 'provider_message_id': j ->> 'sg_message_id'"
        ) }} as detail,
        case
            when event = 'processed'
                then 'processed: SendGrid accepted the email (our send is its email_sent)'
        end as skip,
        typed.raw,
    from typed
    left join sibling_ids on sibling_ids.sg_message_id = typed.j ->> 'sg_message_id'
)

select * from final
