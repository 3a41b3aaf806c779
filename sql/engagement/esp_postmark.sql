-- Postmark webhooks (`RecordType` Delivery, Bounce, SpamComplaint, Open, Click,
-- SubscriptionChange) as activity rows for sql/engagement/esp_activities.sql. `MessageID` is
-- Postmark's own id (kept in detail.provider_message_id); our Message-ID travels in the
-- `Metadata` (key message_id, message-id or messageid, any case) or in `Headers`. Bounces and
-- complaints carry a unique `ID`; other records are identified by type, message, recipient and
-- time.
{% import 'engagement/_esp.sql' as esp %}
with

records as (
    select
        __line,
        j,
        raw,
        j is null as invalid,
        j ->> 'RecordType' as event,
        j ->> 'Type' as bounce_type,
        coalesce(j ->> 'Recipient', j ->> 'Email') as recipient,
        coalesce(j ->> 'DeliveredAt', j ->> 'BouncedAt', j ->> 'ReceivedAt', j ->> 'ChangedAt')
            as occurred_at,
        list_filter(
            json_keys(j -> 'Metadata'),
            lambda k: lower(k) in ('message_id', 'message-id', 'messageid')
        )[1] as metadata_key,
    from esp_records
),

typed as (
    select
        *,
        case event
            when 'Delivery' then 'email_delivered'
            when 'Open' then 'email_opened'
            when 'Click' then 'email_clicked'
            when 'SpamComplaint' then 'email_complained'
            when 'Bounce' then
                case
                    when bounce_type in ('HardBounce', 'BadEmailAddress') then 'email_bounced'
                    when bounce_type in (
                        'SoftBounce', 'Transient', 'DnsError', 'Blocked', 'DMARCPolicy'
                    ) then 'email_soft_bounced'
                    when bounce_type = 'Unsubscribe' then 'unsubscribed'
                    when bounce_type in ('SpamComplaint', 'SpamNotification')
                        then 'email_complained'
                    when bounce_type = 'AutoResponder' then 'email_auto_replied'
                end
            when 'SubscriptionChange' then
                case
                    when (j ->> 'SuppressSending') = 'true'
                        and coalesce(j ->> 'SuppressionReason', 'ManualSuppression')
                        = 'ManualSuppression' then 'unsubscribed'
                end
        end as mapped,
    from records
),

final as (
    select
        __line,
        0 as __sub,
        invalid,
        'postmark:' || case
            when j ->> 'ID' is not null then coalesce(event, '') || ':' || (j ->> 'ID')
            when j is not null then concat_ws(
                ':', event, j ->> 'MessageID', recipient, occurred_at
            )
        end as activity_id,
        recipient as email,
        coalesce(
            mapped,
            'postmark:' || coalesce(event, '(no RecordType)')
            || if(event = 'Bounce', ':' || coalesce(bounce_type, '?'), '')
        ) as type,
        occurred_at,
        coalesce(
            json_extract_string(j -> 'Metadata', '$."' || metadata_key || '"'),
            list_filter(
                json_extract(j, '$.Headers[*]'), lambda h: lower(h ->> 'Name') = 'message-id'
            )[1] ->> 'Value'
        ) as provider_message_id,
        {{ esp.detail(
            "'provider': 'postmark', 'event': event, 'bounce_type': bounce_type,"
            ~ " 'status': j ->> 'TypeCode',"
            ~ " 'reason': coalesce(j ->> 'Description', j ->> 'SuppressionReason'),"
            ~ " 'diagnostic': nullif(j ->> 'Details', ''), 'url': j ->> 'OriginalLink',"
            ~ " 'user_agent': j ->> 'UserAgent', 'origin': j ->> 'Origin',"
            ~ " 'until': case when bounce_type = 'AutoResponder' then nullif("
            ~ " regexp_extract(j ->> 'Details', '\\d{4}-\\d{2}-\\d{2}'), '') end,"
            ~ " 'provider_message_id': j ->> 'MessageID'"
        ) }} as detail,
        case
            when event = 'SubscriptionChange' and (j ->> 'SuppressSending') = 'true'
                and j ->> 'SuppressionReason' in ('HardBounce', 'SpamComplaint')
                then 'SubscriptionChange after a ' || (j ->> 'SuppressionReason')
                    || ': Postmark reports that bounce or complaint as its own record'
        end as skip,
        raw,
    from typed
)

select * from final
