-- One row per sequence email sent to a contact: (sequence, contact_id, step), with the date it
-- counts on, when it was sent and what the contact did with it. Read by fct_sequence_metrics.sql
-- and fct_step_metrics.sql (pipelines/metrics.py materializes it as a temp table first).
--
-- An email is *sent* when its action has status 'sent' or an `email_sent` activity belongs to
-- it. An activity belongs to an email by its `message_id` (matching actions.message_id), else
-- by its `sequence` and `step` columns; one with a `sequence` but no `step` belongs to the
-- contact's latest email of that sequence sent at or before it (else the earliest one).
-- Engagement is joined onto sent emails only, so no count can exceed `sent`.
--
-- metric_date (the "cohort date"): the local date of the occurrence that decided the email
-- (actions.occurrence_on); for an email known only from an activity, the local date of the
-- sequence's latest processed occurrence at or before it, else the UTC date it was sent.
-- Every engagement counts on its email's date, so a rate per date is a rate of that day's sends.

with

actions as (
    select * from actions where action = 'email'
),

activities as (
    select * from activities
    where type in (
        'email_sent', 'email_delivered', 'email_opened', 'email_clicked',
        'email_replied', 'email_bounced', 'unsubscribed',
        'email_soft_bounced', 'email_complained', 'email_auto_replied'
    )
),

occurrences as (
    select sequence, occurrence_on, occurrence_at from occurrences
),

actions_by_message as (
    select sequence, contact_id, step, message_id,
    from actions
    where message_id is not null
    qualify row_number() over (partition by message_id order by occurrence_at, step) = 1
),

attributed_activities as (
    select
        activities.activity_id,
        activities.type,
        activities.occurred_at,
        is_machine_open(activities.type, activities.detail) as machine,  -- sql/schema.sql
        coalesce(by_message.sequence, activities.sequence) as sequence,
        coalesce(by_message.contact_id, activities.contact_id) as contact_id,
        coalesce(by_message.step, activities.step) as step,
    from activities
    left join actions_by_message as by_message
        on activities.message_id = by_message.message_id
    where coalesce(by_message.sequence, activities.sequence) is not null
      and coalesce(by_message.contact_id, activities.contact_id) is not null
),

sends as (
    select sequence, contact_id, step, coalesce(finished_at, occurrence_at) as sent_at,
    from actions
    where status = 'sent'
    union all
    select sequence, contact_id, step, occurred_at as sent_at,
    from attributed_activities
    where type = 'email_sent' and step is not null
),

emails as (
    select sequence, contact_id, step, min(sent_at) as sent_at,
    from sends
    group by sequence, contact_id, step
),

action_dates as (
    select sequence, contact_id, step, min(occurrence_on) as occurrence_on,
    from actions
    group by sequence, contact_id, step
),

emails_from_activities_dated as (
    select
        emails.sequence,
        emails.contact_id,
        emails.step,
        occurrences.occurrence_on,
    from emails
    asof left join occurrences
        on emails.sequence = occurrences.sequence
       and emails.sent_at >= occurrences.occurrence_at
),

emails_dated as (
    select
        emails.*,
        coalesce(
            action_dates.occurrence_on,
            dated.occurrence_on,
            cast(emails.sent_at as date)
        ) as metric_date,
    from emails
    left join action_dates using (sequence, contact_id, step)
    left join emails_from_activities_dated as dated using (sequence, contact_id, step)
),

engagement as (
    select * from attributed_activities where type <> 'email_sent'
),

engagement_with_step as (
    select engagement.*
    from engagement
    where step is not null
),

engagement_by_nearest_email as (
    select
        engagement.activity_id,
        engagement.type,
        engagement.machine,
        engagement.occurred_at,
        engagement.sequence,
        engagement.contact_id,
        emails.step,
    from engagement
    join emails using (sequence, contact_id)
    where engagement.step is null
    qualify row_number() over (
        partition by engagement.activity_id
        order by
            emails.sent_at > engagement.occurred_at,
            abs(epoch(engagement.occurred_at) - epoch(emails.sent_at)),
            emails.step
    ) = 1
),

email_events as (
    select activity_id, type, machine, occurred_at, sequence, contact_id, step,
    from engagement_with_step
    union all
    select activity_id, type, machine, occurred_at, sequence, contact_id, step,
    from engagement_by_nearest_email
),

email_engagement as (
    select
        sequence,
        contact_id,
        step,
        bool_or(type = 'email_delivered') as delivered_event,
        -- a click counts as an open: the pixel is often blocked, the click is not. A machine
        -- open (a privacy proxy or scanner fetched the pixel, SPEC 10) is not the prospect's.
        bool_or(type = 'email_clicked' or (type = 'email_opened' and not machine)) as opened,
        bool_or(type = 'email_opened' and machine) as machine_opened,
        bool_or(type = 'email_auto_replied') as auto_replied,
        bool_or(type = 'email_clicked') as clicked,
        bool_or(type = 'email_replied') as replied,
        min(occurred_at) filter (where type = 'email_replied') as first_replied_at,
        bool_or(type = 'email_bounced') as bounced,
        bool_or(type = 'unsubscribed') as unsubscribed,
        bool_or(type = 'email_soft_bounced') as soft_bounced,
        bool_or(type = 'email_complained') as complained,
    from email_events
    group by sequence, contact_id, step
),

final as (
    select
        emails_dated.sequence,
        emails_dated.step,
        emails_dated.contact_id,
        emails_dated.metric_date,
        emails_dated.sent_at,
        -- an open (human or machine), click, reply or auto-reply proves delivery even when
        -- the ESP sent no delivered event
        coalesce(
            email_engagement.delivered_event
            or email_engagement.opened
            or email_engagement.machine_opened
            or email_engagement.replied
            or email_engagement.auto_replied,
            false
        ) as delivered,
        coalesce(email_engagement.opened, false) as opened,
        coalesce(email_engagement.machine_opened, false) as machine_opened,
        coalesce(email_engagement.clicked, false) as clicked,
        coalesce(email_engagement.replied, false) as replied,
        email_engagement.first_replied_at,
        case
            when email_engagement.first_replied_at >= emails_dated.sent_at
                then epoch(email_engagement.first_replied_at - emails_dated.sent_at) / 3600.0
        end as reply_hours,
        coalesce(email_engagement.bounced, false) as bounced,
        coalesce(email_engagement.unsubscribed, false) as unsubscribed,
        coalesce(email_engagement.soft_bounced, false) as soft_bounced,
        coalesce(email_engagement.complained, false) as complained,
    from emails_dated
    left join email_engagement using (sequence, contact_id, step)
)

select * from final
