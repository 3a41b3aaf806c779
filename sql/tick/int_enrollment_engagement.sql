-- The `enrollment` columns of step conditions (SPEC 5) for the active enrolments evaluated at
-- this occurrence. An enrolment's emails are its email actions decided `due` (any status but
-- `skipped`) at EARLIER occurrences: deciding, not sending, counts, so the value does not
-- depend on when the send step ran. This occurrence's decisions are inserted only after this
-- read, so `<= $occurrence_at` keeps every earlier occurrence, including an earlier date that
-- fell at the same instant (a schedule edited between the two: `<` lost its emails). The previous email is the latest of them (ties: the
-- later step in the file). An open/click counts when it belongs to the email (same sequence
-- and step, or the action's message_id), occurred after enrolment and at or before t; a
-- click counts as an open. Only actions at or after the earliest evaluated enrolment can be
-- its emails ($min_enrolled_at), and only opens/clicks attributed to a sequence or a message
-- can belong to one: tick_email_activities holds those of the run's window (once per run).

with

evaluated as (
    select contact_id, enrollment_id, enrolled_at
    from active_enrollments
),

emails as (
    select
        actions.contact_id,
        actions.step,
        actions.message_id,
        actions.occurrence_at,
        actions.step_index,
        evaluated.enrolled_at,
    from actions
    inner join evaluated on evaluated.enrollment_id = actions.enrollment_id
    where actions.sequence = $sequence
      and actions.action = 'email'
      and coalesce(actions.decided_status, actions.status) <> 'skipped'
      and actions.occurrence_at <= $occurrence_at
      and actions.occurrence_at >= $min_enrolled_at
),

previous_email as (
    select
        contact_id,
        arg_max(step, struct_pack(at := occurrence_at, i := step_index)) as step,
    from emails
    group by contact_id
),

email_activities as (
    select contact_id, type, sequence, step, message_id, occurred_at
    from tick_email_activities
    where occurred_at <= $occurrence_at
      and contact_id in (select contact_id from emails)
),

email_engagement as (
    select
        emails.contact_id,
        emails.step,
        bool_or(email_activities.type = 'email_clicked') as clicked,
    from emails
    inner join email_activities
        on email_activities.contact_id = emails.contact_id
       and email_activities.occurred_at > emails.enrolled_at
       and (
            (email_activities.sequence = $sequence and email_activities.step = emails.step)
            or (emails.message_id is not null and email_activities.message_id = emails.message_id)
       )
    group by emails.contact_id, emails.step
),

sent as (
    select contact_id, count(*) as emails_sent
    from emails
    group by contact_id
),

engaged as (
    select
        contact_id,
        true as opened_any_email,
        bool_or(clicked) as clicked_any_email,
    from email_engagement
    group by contact_id
),

final as (
    select
        evaluated.contact_id,
        coalesce(sent.emails_sent, 0) as emails_sent,
        previous_engagement.step is not null as opened_previous_email,
        coalesce(previous_engagement.clicked, false) as clicked_previous_email,
        coalesce(engaged.opened_any_email, false) as opened_any_email,
        coalesce(engaged.clicked_any_email, false) as clicked_any_email,
    from evaluated
    left join sent using (contact_id)
    left join engaged using (contact_id)
    left join previous_email using (contact_id)
    left join email_engagement as previous_engagement
        on previous_engagement.contact_id = evaluated.contact_id
       and previous_engagement.step = previous_email.step
)

select * from final
