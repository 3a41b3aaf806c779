-- Postmark webhooks (`RecordType` Delivery, Bounce, SpamComplaint, Open, Click,
-- SubscriptionChange) as activity rows for sql/engagement/int_esp_activities.sql. `MessageID` is
-- Postmark's own id (kept in detail.provider_message_id); our Message-ID travels in the
-- `Metadata` (key message_id, message-id or messageid, any case) or in `Headers`. Bounces and
-- complaints carry a unique `ID`; other records are identified by type, message, recipient and
-- time.
{% import 'engagement/_macros.sql' as esp %}
with

records as (
    -- one parse per record: json_transform reads every member the model uses at once
    select
        __line,
        j,
        raw,
        j is null as invalid,
        json_transform(j, '{
            "RecordType": "VARCHAR", "ID": "VARCHAR", "Type": "VARCHAR",
            "TypeCode": "VARCHAR", "MessageID": "VARCHAR", "Recipient": "VARCHAR",
            "Email": "VARCHAR", "DeliveredAt": "VARCHAR", "BouncedAt": "VARCHAR",
            "ReceivedAt": "VARCHAR", "ChangedAt": "VARCHAR", "Description": "VARCHAR",
            "Details": "VARCHAR", "OriginalLink": "VARCHAR", "UserAgent": "VARCHAR",
            "Origin": "VARCHAR", "SuppressSending": "VARCHAR", "SuppressionReason": "VARCHAR",
            "Metadata": "JSON", "Headers": [{"Name": "VARCHAR", "Value": "VARCHAR"}]
        }') as s,
    from esp_records
),

named as (
    select
        *,
        s.RecordType as event,
        s.Type as bounce_type,
        coalesce(s.Recipient, s.Email) as recipient,
        coalesce(s.DeliveredAt, s.BouncedAt, s.ReceivedAt, s.ChangedAt) as occurred_at,
        list_filter(
            json_keys(s.Metadata), lambda k: lower(k) in ('message_id', 'message-id', 'messageid')
        )[1] as metadata_key,
    from records
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
                    when s.SuppressSending = 'true'
                        and coalesce(s.SuppressionReason, 'ManualSuppression')
                        = 'ManualSuppression' then 'unsubscribed'
                end
        end as mapped,
    from named
),

final as (
    select
        __line,
        0 as __sub,
        invalid,
        'postmark:' || case
            when s.ID is not null then coalesce(event, '') || ':' || s.ID
            when j is not null then concat_ws(':', event, s.MessageID, recipient, occurred_at)
        end as activity_id,
        recipient as email,
        coalesce(
            mapped,
            'postmark:' || coalesce(event, '(no RecordType)')
            || if(event = 'Bounce', ':' || coalesce(bounce_type, '?'), '')
        ) as type,
        occurred_at,
        coalesce(
            json_extract_string(s.Metadata, '$."' || metadata_key || '"'),
            list_filter(s.Headers, lambda h: lower(h.Name) = 'message-id')[1].Value
        ) as provider_message_id,
        {{ esp.detail(
            "'provider': 'postmark', 'event': event, 'bounce_type': bounce_type,"
            ~ " 'status': s.TypeCode, 'reason': coalesce(s.Description, s.SuppressionReason),"
            ~ " 'diagnostic': nullif(s.Details, ''), 'url': s.OriginalLink,"
            ~ " 'user_agent': s.UserAgent, 'origin': s.Origin,"
            ~ " 'until': case when bounce_type = 'AutoResponder' then nullif("
            ~ " regexp_extract(s.Details, '\\d{4}-\\d{2}-\\d{2}'), '') end,"
            ~ " 'provider_message_id': s.MessageID"
        ) }} as detail,
        case
            when event = 'SubscriptionChange' and s.SuppressSending = 'true'
                and s.SuppressionReason in ('HardBounce', 'SpamComplaint')
                then 'SubscriptionChange after a ' || s.SuppressionReason
                    || ': Postmark reports that bounce or complaint as its own record'
        end as skip,
        raw,
    from typed
)

select * from final
