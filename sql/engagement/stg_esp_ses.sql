-- Amazon SES events (event publishing or feedback notifications), delivered by SNS
-- (`{"Type": "Notification", "Message": "<the event as JSON text>"}`) or bare, as activity
-- rows for sql/engagement/int_esp_activities.sql: one per recipient the event names (bounced,
-- complained, delivered, delayed; else the first destination). The activity id is the SNS
-- MessageId (the same on every redelivery) and the recipient. SNS subscription and
-- unsubscribe confirmations are reported (their SubscribeURL), never loaded.
{% import 'engagement/_macros.sql' as esp %}
with

envelopes as (
    select
        __line,
        raw,
        j is null as invalid,
        json_transform(j, '{
            "Type": "VARCHAR", "MessageId": "VARCHAR", "SubscribeURL": "VARCHAR",
            "TopicArn": "VARCHAR", "Message": "VARCHAR"
        }') as sns,
        j,
    from esp_records
),

unwrapped as (
    select
        __line,
        raw,
        invalid,
        sns.Type as sns_type,
        sns.MessageId as sns_id,
        sns.SubscribeURL as subscribe_url,
        sns.TopicArn as topic_arn,
        case
            when sns.Type is null then j
            when json_valid(sns.Message) then sns.Message::json
        end as e,
    from envelopes
),

events as (
    -- one parse per event: json_transform reads every member the model uses at once
    select
        *,
        json_transform(e, '{
            "eventType": "VARCHAR", "notificationType": "VARCHAR",
            "mail": {"timestamp": "VARCHAR", "messageId": "VARCHAR",
                     "destination": ["VARCHAR"],
                     "headers": [{"name": "VARCHAR", "value": "VARCHAR"}],
                     "commonHeaders": {"messageId": "VARCHAR"}},
            "bounce": {"bounceType": "VARCHAR", "bounceSubType": "VARCHAR",
                       "timestamp": "VARCHAR",
                       "bouncedRecipients": [{"emailAddress": "VARCHAR", "status": "VARCHAR",
                                              "diagnosticCode": "VARCHAR"}]},
            "complaint": {"complaintFeedbackType": "VARCHAR", "timestamp": "VARCHAR",
                          "complainedRecipients": [{"emailAddress": "VARCHAR"}]},
            "delivery": {"timestamp": "VARCHAR", "smtpResponse": "VARCHAR",
                         "recipients": ["VARCHAR"]},
            "open": {"timestamp": "VARCHAR", "userAgent": "VARCHAR"},
            "click": {"timestamp": "VARCHAR", "userAgent": "VARCHAR", "link": "VARCHAR"},
            "deliveryDelay": {"timestamp": "VARCHAR", "delayType": "VARCHAR",
                              "delayedRecipients": [{"emailAddress": "VARCHAR",
                                                     "status": "VARCHAR",
                                                     "diagnosticCode": "VARCHAR"}]},
            "subscription": {"timestamp": "VARCHAR",
                             "newTopicPreferences": {"unsubscribeAll": "VARCHAR",
                                 "topicSubscriptionStatus": [{"subscriptionStatus": "VARCHAR"}]}},
            "reject": {"reason": "VARCHAR"},
            "failure": {"errorMessage": "VARCHAR"}
        }') as x,
    from unwrapped
),

listed as (
    select
        *,
        coalesce(x.eventType, x.notificationType) as event,
        coalesce(
            x.mail.commonHeaders.messageId,
            list_filter(x.mail.headers, lambda h: lower(h.name) = 'message-id')[1].value
        ) as provider_message_id,
        case coalesce(x.eventType, x.notificationType)
            when 'Bounce' then list_transform(
                x.bounce.bouncedRecipients,
                lambda r: {'address': r.emailAddress, 'status': r.status,
                           'diagnostic': r.diagnosticCode}
            )
            when 'Complaint' then list_transform(
                x.complaint.complainedRecipients,
                lambda r: {'address': r.emailAddress, 'status': null::varchar,
                           'diagnostic': null::varchar}
            )
            when 'DeliveryDelay' then list_transform(
                x.deliveryDelay.delayedRecipients,
                lambda r: {'address': r.emailAddress, 'status': r.status,
                           'diagnostic': r.diagnosticCode}
            )
            when 'Delivery' then list_transform(
                x.delivery.recipients,
                lambda r: {'address': r, 'status': null::varchar, 'diagnostic': null::varchar}
            )
        end as recipient_list,
    from events
),

recipients as (
    select
        * exclude (recipient_list, recipients),
        unnest(range(1, len(recipients)::bigint + 1)) as __sub,
        unnest(recipients) as r,
    from (
        select
            *,
            case
                when len(recipient_list) > 0 then recipient_list
                else [{'address': x.mail.destination[1], 'status': null::varchar,
                       'diagnostic': null::varchar}]
            end as recipients,
        from listed
    )
),

typed as (
    select
        *,
        nullif(trim(r.address), '') as recipient,
        case event
            when 'Delivery' then 'email_delivered'
            when 'Open' then 'email_opened'
            when 'Click' then 'email_clicked'
            when 'DeliveryDelay' then 'email_soft_bounced'
            when 'Bounce' then
                case x.bounce.bounceType
                    when 'Permanent' then 'email_bounced'
                    when 'Transient' then 'email_soft_bounced'
                    when 'Undetermined' then 'email_soft_bounced'
                end
            when 'Complaint' then
                case
                    when coalesce(x.complaint.complaintFeedbackType, '') <> 'not-spam'
                        then 'email_complained'
                end
            when 'Subscription' then
                case
                    when x.subscription.newTopicPreferences.unsubscribeAll = 'true'
                        or list_contains(
                            list_transform(
                                x.subscription.newTopicPreferences.topicSubscriptionStatus,
                                lambda t: t.subscriptionStatus
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
            x.bounce.timestamp,
            x.complaint.timestamp,
            x.delivery.timestamp,
            x.open.timestamp,
            x.click.timestamp,
            x.deliveryDelay.timestamp,
            x.subscription.timestamp,
            x.mail.timestamp
        ) as occurred_at,
        provider_message_id,
        {{ esp.detail(
            "'provider': 'ses', 'event': event, 'bounce_type': x.bounce.bounceType,"
            ~ " 'status': r.status,"
            ~ " 'reason': coalesce(x.bounce.bounceSubType, x.complaint.complaintFeedbackType,"
            ~ " x.deliveryDelay.delayType, x.reject.reason, x.failure.errorMessage),"
            ~ " 'diagnostic': coalesce(r.diagnostic, x.delivery.smtpResponse),"
            ~ " 'url': x.click.link,"
            ~ " 'user_agent': coalesce(x.open.userAgent, x.click.userAgent),"
            ~ " 'provider_message_id': x.mail.messageId"
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
