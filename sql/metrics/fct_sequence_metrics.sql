-- Effectiveness per sequence and date (SPEC 7): one row per (sequence, metric_date) with
-- period = 'day', plus one row per sequence with period = 'all' and metric_date null (totals:
-- unique contacts over all dates, which are not the sum of the daily rows).
--
-- Dates: enrolled on enrollments.enrolled_on, exits on exited_on (local occurrence dates);
-- email counts on the email's cohort date (see int_emails.sql). `active` is the number of
-- enrolments active at the end of that date. Every count is of unique contacts; rates are
-- over `sent` and null when nothing was sent; reply hours run from the email's send to the
-- contact's first reply to that sequence. held / failed / deferred / expired / unknown: contacts
-- with an action in that status now (any action kind), on the action's occurrence date.
-- paused: contacts whose active enrolment a pause began for (SPEC 11: a `pause` of the contact
-- or of the whole sequence, or an out-of-office reply), on the pause's UTC date.
-- Holdout enrolments (SPEC 11) are not counted here: the sequence's contacts are the treated
-- ones; holdout_metrics (pipelines/holdouts.py) compares the two.

with

enrollments as (
    select sequence, contact_id, enrolled_on, enrolled_at, status, exit_reason, exited_on,
        exited_at,
    from enrollments
    where status <> 'holdout'
),

actions as (
    select sequence, contact_id, status, occurrence_on,
    from actions
    where status in ('held', 'failed', 'deferred', 'expired', 'unknown')
),

emails as (
    select * from int_emails
),

pauses_begun as (
    select pauses.sequence, enrollments.contact_id, pauses.paused_at::date as metric_date,
    from pauses
    inner join enrollments
        on enrollments.sequence = pauses.sequence
       and (pauses.contact_id is null or pauses.contact_id = enrollments.contact_id)
       and enrollments.enrolled_at <= pauses.paused_at
       and coalesce(enrollments.exited_at > pauses.paused_at, true)
    union all
    select enrollments.sequence, enrollments.contact_id, activities.occurred_at::date,
    from activities
    inner join enrollments
        on enrollments.contact_id = activities.contact_id
       and enrollments.enrolled_at <= activities.occurred_at
       and coalesce(enrollments.exited_at > activities.occurred_at, true)
    where activities.type = 'email_auto_replied'
),

paused_per_day as (
    select sequence, metric_date, count(distinct contact_id) as paused,
    from pauses_begun
    group by sequence, metric_date
),

paused_all as (
    select sequence, count(distinct contact_id) as paused,
    from pauses_begun
    group by sequence
),

enrolled_per_day as (
    select sequence, enrolled_on as metric_date, count(distinct contact_id) as enrolled,
    from enrollments
    group by sequence, enrolled_on
),

exits_per_day as (
    select
        sequence,
        exited_on as metric_date,
        count(distinct contact_id) as exited,
        count(distinct contact_id) filter (where exit_reason = 'completed') as exited_completed,
        count(distinct contact_id) filter (where exit_reason = 'replied') as exited_replied,
        count(distinct contact_id) filter (where exit_reason = 'unsubscribed')
            as exited_unsubscribed,
        count(distinct contact_id) filter (where exit_reason = 'bounced') as exited_bounced,
        count(distinct contact_id) filter (where exit_reason = 'condition') as exited_condition,
        count(distinct contact_id) filter (where exit_reason = 'manual') as exited_manual,
    from enrollments
    where status = 'exited' and exited_on is not null
    group by sequence, exited_on
),

exits_all as (
    select
        sequence,
        count(distinct contact_id) as enrolled,
        count(distinct contact_id) filter (where status = 'active') as active,
        count(distinct contact_id) filter (where status = 'exited') as exited,
        count(distinct contact_id) filter (where exit_reason = 'completed') as exited_completed,
        count(distinct contact_id) filter (where exit_reason = 'replied') as exited_replied,
        count(distinct contact_id) filter (where exit_reason = 'unsubscribed')
            as exited_unsubscribed,
        count(distinct contact_id) filter (where exit_reason = 'bounced') as exited_bounced,
        count(distinct contact_id) filter (where exit_reason = 'condition') as exited_condition,
        count(distinct contact_id) filter (where exit_reason = 'manual') as exited_manual,
    from enrollments
    group by sequence
),

contact_days as (
    select
        sequence,
        metric_date,
        contact_id,
        bool_or(delivered) as delivered,
        bool_or(opened) as opened,
        bool_or(machine_opened) as machine_opened,
        bool_or(clicked) as clicked,
        bool_or(replied) as replied,
        bool_or(bounced) as bounced,
        bool_or(unsubscribed) as unsubscribed,
        bool_or(soft_bounced) as soft_bounced,
        bool_or(complained) as complained,
        arg_min(reply_hours, first_replied_at) filter (where reply_hours is not null)
            as reply_hours,
    from emails
    group by sequence, metric_date, contact_id
),

contacts_all as (
    select
        sequence,
        contact_id,
        bool_or(delivered) as delivered,
        bool_or(opened) as opened,
        bool_or(machine_opened) as machine_opened,
        bool_or(clicked) as clicked,
        bool_or(replied) as replied,
        bool_or(bounced) as bounced,
        bool_or(unsubscribed) as unsubscribed,
        bool_or(soft_bounced) as soft_bounced,
        bool_or(complained) as complained,
        arg_min(reply_hours, first_replied_at) filter (where reply_hours is not null)
            as reply_hours,
    from emails
    group by sequence, contact_id
),

emails_per_day as (
    select
        sequence,
        metric_date,
        count(*) as sent,
        count(*) filter (where delivered) as delivered,
        count(*) filter (where opened) as opened,
        count(*) filter (where machine_opened) as machine_opened,
        count(*) filter (where clicked) as clicked,
        count(*) filter (where replied) as replied,
        count(*) filter (where bounced) as bounced,
        count(*) filter (where unsubscribed) as unsubscribed,
        count(*) filter (where soft_bounced) as soft_bounced,
        count(*) filter (where complained) as complained,
        quantile_cont(reply_hours, 0.5) as reply_hours_p50,
        quantile_cont(reply_hours, 0.9) as reply_hours_p90,
    from contact_days
    group by sequence, metric_date
),

emails_all as (
    select
        sequence,
        count(*) as sent,
        count(*) filter (where delivered) as delivered,
        count(*) filter (where opened) as opened,
        count(*) filter (where machine_opened) as machine_opened,
        count(*) filter (where clicked) as clicked,
        count(*) filter (where replied) as replied,
        count(*) filter (where bounced) as bounced,
        count(*) filter (where unsubscribed) as unsubscribed,
        count(*) filter (where soft_bounced) as soft_bounced,
        count(*) filter (where complained) as complained,
        quantile_cont(reply_hours, 0.5) as reply_hours_p50,
        quantile_cont(reply_hours, 0.9) as reply_hours_p90,
    from contacts_all
    group by sequence
),

outcomes_per_day as (
    select
        sequence,
        occurrence_on as metric_date,
        count(distinct contact_id) filter (where status = 'held') as held,
        count(distinct contact_id) filter (where status = 'failed') as failed,
        count(distinct contact_id) filter (where status = 'deferred') as deferred,
        count(distinct contact_id) filter (where status = 'expired') as expired,
        count(distinct contact_id) filter (where status = 'unknown') as unknown,
    from actions
    group by sequence, occurrence_on
),

outcomes_all as (
    select
        sequence,
        count(distinct contact_id) filter (where status = 'held') as held,
        count(distinct contact_id) filter (where status = 'failed') as failed,
        count(distinct contact_id) filter (where status = 'deferred') as deferred,
        count(distinct contact_id) filter (where status = 'expired') as expired,
        count(distinct contact_id) filter (where status = 'unknown') as unknown,
    from actions
    group by sequence
),

date_spine as (
    select sequence, metric_date from enrolled_per_day
    union
    select sequence, metric_date from exits_per_day
    union
    select sequence, metric_date from emails_per_day
    union
    select sequence, metric_date from outcomes_per_day
    union
    select sequence, metric_date from paused_per_day
),

days as (
    select
        'day' as period,
        date_spine.sequence,
        date_spine.metric_date,
        coalesce(enrolled_per_day.enrolled, 0) as enrolled,
        sum(coalesce(enrolled_per_day.enrolled, 0) - coalesce(exits_per_day.exited, 0)) over (
            partition by date_spine.sequence order by date_spine.metric_date
        ) as active,
        coalesce(exits_per_day.exited, 0) as exited,
        coalesce(exits_per_day.exited_completed, 0) as exited_completed,
        coalesce(exits_per_day.exited_replied, 0) as exited_replied,
        coalesce(exits_per_day.exited_unsubscribed, 0) as exited_unsubscribed,
        coalesce(exits_per_day.exited_bounced, 0) as exited_bounced,
        coalesce(exits_per_day.exited_condition, 0) as exited_condition,
        coalesce(exits_per_day.exited_manual, 0) as exited_manual,
        emails_per_day.* exclude (sequence, metric_date),
        outcomes_per_day.* exclude (sequence, metric_date),
        paused_per_day.paused,
    from date_spine
    left join enrolled_per_day using (sequence, metric_date)
    left join exits_per_day using (sequence, metric_date)
    left join emails_per_day using (sequence, metric_date)
    left join outcomes_per_day using (sequence, metric_date)
    left join paused_per_day using (sequence, metric_date)
),

sequences as (
    select sequence from exits_all
    union
    select sequence from emails_all
    union
    select sequence from outcomes_all
),

totals as (
    select
        'all' as period,
        sequences.sequence,
        null::date as metric_date,
        coalesce(exits_all.enrolled, 0) as enrolled,
        coalesce(exits_all.active, 0) as active,
        coalesce(exits_all.exited, 0) as exited,
        coalesce(exits_all.exited_completed, 0) as exited_completed,
        coalesce(exits_all.exited_replied, 0) as exited_replied,
        coalesce(exits_all.exited_unsubscribed, 0) as exited_unsubscribed,
        coalesce(exits_all.exited_bounced, 0) as exited_bounced,
        coalesce(exits_all.exited_condition, 0) as exited_condition,
        coalesce(exits_all.exited_manual, 0) as exited_manual,
        emails_all.* exclude (sequence),
        outcomes_all.* exclude (sequence),
        paused_all.paused,
    from sequences
    left join exits_all using (sequence)
    left join emails_all using (sequence)
    left join outcomes_all using (sequence)
    left join paused_all using (sequence)
),

counts as (
    select * from days
    union all by name
    select * from totals
),

final as (
    select
        sequence,
        period,
        metric_date,
        enrolled,
        cast(active as bigint) as active,
        exited,
        exited_completed,
        exited_replied,
        exited_unsubscribed,
        exited_bounced,
        exited_condition,
        exited_manual,
        coalesce(sent, 0) as sent,
        coalesce(delivered, 0) as delivered,
        coalesce(opened, 0) as opened,
        coalesce(machine_opened, 0) as machine_opened,
        coalesce(clicked, 0) as clicked,
        coalesce(replied, 0) as replied,
        coalesce(bounced, 0) as bounced,
        coalesce(unsubscribed, 0) as unsubscribed,
        coalesce(soft_bounced, 0) as soft_bounced,
        coalesce(complained, 0) as complained,
        opened / nullif(sent, 0) as open_rate,
        clicked / nullif(sent, 0) as click_rate,
        replied / nullif(sent, 0) as reply_rate,
        bounced / nullif(sent, 0) as bounce_rate,
        unsubscribed / nullif(sent, 0) as unsubscribe_rate,
        complained / nullif(sent, 0) as complaint_rate,
        reply_hours_p50,
        reply_hours_p90,
        coalesce(held, 0) as held,
        coalesce(failed, 0) as failed,
        coalesce(deferred, 0) as deferred,
        coalesce(expired, 0) as expired,
        coalesce(unknown, 0) as unknown,
        coalesce(paused, 0) as paused,
    from counts
)

select * from final
order by sequence, period desc, metric_date
