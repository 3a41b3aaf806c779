-- Amazon SES events (event publishing or feedback notifications), delivered by SNS
-- (`{"Type": "Notification", "Message": "<the event as JSON text>"}`) or bare, as activity
-- rows for sql/engagement/esp_activities.sql: one per recipient the event names (bounced,
-- complained, delivered, delayed; else the first destination). The activity id is the SNS
-- MessageId (the same on every redelivery) and the recipient. SNS subscription and
-- unsubscribe confirmations are reported (their SubscribeURL), never loaded.
{% import 'engagement/_esp.sql' as esp %}
with

envelopes as (
    select
        __line,
        raw,
        j is null as invalid,
        j ->> 'Type' as sns_type,
        j ->> 'MessageId' as sns_id,
        j ->> 'SubscribeURL' as subscribe_url,
        j ->> 'TopicArn' as topic_arn,
        case
            when j ->> 'Type' is null then j
            when json_valid(j ->> 'Message') then (j ->> 'Message')::json
        end as e,
    from esp_records
),

events as (
    select
        *,
        coalesce(e ->> 'eventType', e ->> 'notificationType') as event,
        coalesce(
            e -> 'mail' -> 'commonHeaders' ->> 'messageId',
            list_filter(
                json_extract(e, '$.mail.headers[*]'), lambda h: lower(h ->> 'name') = 'message-id'
            )[1] ->> 'value'
        ) as provider_message_id,
        case coalesce(e ->> 'eventType', e ->> 'notificationType')
            when 'Bounce' then json_extract(e, '$.bounce.bouncedRecipients[*]')
            when 'Complaint' then json_extract(e, '$.complaint.complainedRecipients[*]')
            when 'DeliveryDelay' then json_extract(e, '$.deliveryDelay.delayedRecipients[*]')
            when 'Delivery' then list_transform(
                json_extract_string(e, '$.delivery.recipients[*]'),
                lambda r: json_object('emailAddress', r)
            )
        end as recipient_list,
    from envelopes
),

recipients as (
    select
        * exclude (recipient_list),
        unnest(range(1, len(recipients)::bigint + 1)) as __sub,
        unnest(recipients) as r,
    from (
        select
            *,
            case
                when len(recipient_list) > 0 then recipient_list
                else [json_object('emailAddress', e -> 'mail' -> 'destination' ->> 0)]
            end as recipients,
        from events
    )
),

typed as (
    select
        *,
        nullif(trim(r ->> 'emailAddress'), '') as recipient,
        case event
            when 'Delivery' then 'email_delivered'
            when 'Open' then 'email_opened'
            when 'Click' then 'email_clicked'
            when 'DeliveryDelay' then 'email_soft_bounced'
            when 'Bounce' then
                case e -> 'bounce' ->> 'bounceType'
                    when 'Permanent' then 'email_bounced'
                    when 'Transient' then 'email_soft_bounced'
                    when 'Undetermined' then 'email_soft_bounced'
                end
            when 'Complaint' then
                case
                    when coalesce(e -> 'complaint' ->> 'complaintFeedbackType', '') <> 'not-spam'
                        then 'email_complained'
                end
            when 'Subscription' then
                case
                    when (e -> 'subscription' -> 'newTopicPreferences' ->> 'unsubscribeAll')
                        = 'true'
                        or list_contains(
                            json_extract_string(
                                e, '$.subscription.newTopicPreferences'
                                || '.topicSubscriptionStatus[*].subscriptionStatus'
                            ),
                            'OptOut'
                        )
                        then 'unsubscribed'
                end
        end as mapped,
    from recipients
),

final as (
    select
        __line,
        __sub,
        invalid,
        'ses:' || coalesce(sns_id, {{ esp.record_hash('e') }}) || ':' || coalesce(recipient, '')
            as activity_id,
        recipient as email,
        coalesce(mapped, 'ses:' || coalesce(event, sns_type, '(no eventType)')) as type,
        coalesce(
            e -> 'bounce' ->> 'timestamp',
            e -> 'complaint' ->> 'timestamp',
            e -> 'delivery' ->> 'timestamp',
            e -> 'open' ->> 'timestamp',
            e -> 'click' ->> 'timestamp',
            e -> 'deliveryDelay' ->> 'timestamp',
            e -> 'subscription' ->> 'timestamp',
            e -> 'mail' ->> 'timestamp'
        ) as occurred_at,
        provider_message_id,
        {{ esp.detail(
            "'provider': 'ses', 'event': event,"
            ~ " 'bounce_type': e -> 'bounce' ->> 'bounceType',"
            ~ " 'status': r ->> 'status',"
            ~ " 'reason': coalesce(e -> 'bounce' ->> 'bounceSubType',"
            ~ " e -> 'complaint' ->> 'complaintFeedbackType', e -> 'deliveryDelay' ->> 'delayType',"
            ~ " e -> 'reject' ->> 'reason', e -> 'failure' ->> 'errorMessage'),"
            ~ " 'diagnostic': coalesce(r ->> 'diagnosticCode', e -> 'delivery' ->> 'smtpResponse'),"
            ~ " 'url': e -> 'click' ->> 'link',"
            ~ " 'user_agent': coalesce(e -> 'open' ->> 'userAgent', e -> 'click' ->> 'userAgent'),"
            ~ " 'provider_message_id': e -> 'mail' ->> 'messageId'"
        ) }} as detail,
        case
            when sns_type in ('SubscriptionConfirmation', 'UnsubscribeConfirmation')
                then 'SNS ' || if(sns_type = 'SubscriptionConfirmation', 'subscription',
                    'unsubscribe') || ' confirmation: visit SubscribeURL '
                    || coalesce(subscribe_url, '(none)') || ' to confirm topic '
                    || coalesce(topic_arn, '(none)')
            when event = 'Send'
                then 'Send: SES accepted the email (our send is its email_sent)'
        end as skip,
        raw,
    from typed
)

select * from final
