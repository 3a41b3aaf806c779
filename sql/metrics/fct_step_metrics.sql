-- Effectiveness per sequence step and date (SPEC 7): one row per (sequence, step, metric_date)
-- with period = 'day', plus one row per (sequence, step) with period = 'all' and metric_date
-- null (totals over all dates).
--
-- A step has no enrolments of its own, so the enrolment columns are step-shaped:
--   reached / skipped: contacts with a decision for the step on that occurrence date (any
--     status / 'skipped');
--   held / failed / deferred / expired / unknown: of those, contacts whose action is in that
--     status now (what the send did with the decision, as of the build);
--   active: enrolments still active whose latest decided step is this one at the end of the
--     date (where the contact currently "sits" in the sequence);
--   exited*: exits counted on the latest step decided for the enrolment at or before its exit
--     (an exit before any step is decided appears in sequence_metrics only).
-- Email columns, rates and reply hours as in sequence_metrics, per step; see int_emails.sql.

with

enrollments as (
    select sequence, contact_id, status, exit_reason, exited_on,
    from enrollments
),

actions as (
    select sequence, contact_id, step, step_index, status, occurrence_on, occurrence_at,
    from actions
),

emails as (
    select * from int_emails
),

positions as (
    select
        actions.*,
        lead(occurrence_on) over by_enrollment as next_decided_on,
        lead(occurrence_on) over by_enrollment is null as is_latest,
    from actions
    window by_enrollment as (
        partition by sequence, contact_id
        order by occurrence_at, step_index nulls last, step
    )
),

stays as (
    select
        positions.sequence,
        positions.step,
        positions.contact_id,
        positions.is_latest,
        positions.occurrence_on as entered_on,
        case
            when positions.is_latest then enrollments.exited_on
            else positions.next_decided_on
        end as left_on,
        enrollments.status,
        enrollments.exit_reason,
        enrollments.exited_on,
    from positions
    join enrollments using (sequence, contact_id)
),

active_deltas as (
    select sequence, step, entered_on as metric_date, 1 as delta from stays
    union all
    select sequence, step, left_on as metric_date, -1 as delta from stays
    where left_on is not null
),

active_changes as (
    select sequence, step, metric_date, sum(delta) as delta,
    from active_deltas
    group by sequence, step, metric_date
),

exits_at_step as (
    select * from stays where is_latest and status = 'exited'
),

decisions_per_day as (
    select
        sequence,
        step,
        occurrence_on as metric_date,
        count(distinct contact_id) as reached,
        count(distinct contact_id) filter (where status = 'skipped') as skipped,
        count(distinct contact_id) filter (where status = 'held') as held,
        count(distinct contact_id) filter (where status = 'failed') as failed,
        count(distinct contact_id) filter (where status = 'deferred') as deferred,
        count(distinct contact_id) filter (where status = 'expired') as expired,
        count(distinct contact_id) filter (where status = 'unknown') as unknown,
    from actions
    group by sequence, step, occurrence_on
),

exits_per_day as (
    select
        sequence,
        step,
        exited_on as metric_date,
        count(distinct contact_id) as exited,
        count(distinct contact_id) filter (where exit_reason = 'completed') as exited_completed,
        count(distinct contact_id) filter (where exit_reason = 'replied') as exited_replied,
        count(distinct contact_id) filter (where exit_reason = 'unsubscribed')
            as exited_unsubscribed,
        count(distinct contact_id) filter (where exit_reason = 'bounced') as exited_bounced,
        count(distinct contact_id) filter (where exit_reason = 'condition') as exited_condition,
        count(distinct contact_id) filter (where exit_reason = 'manual') as exited_manual,
    from exits_at_step
    where exited_on is not null
    group by sequence, step, exited_on
),

emails_per_day as (
    select
        sequence,
        step,
        metric_date,
        count(distinct contact_id) as sent,
        count(distinct contact_id) filter (where delivered) as delivered,
        count(distinct contact_id) filter (where opened) as opened,
        count(distinct contact_id) filter (where machine_opened) as machine_opened,
        count(distinct contact_id) filter (where clicked) as clicked,
        count(distinct contact_id) filter (where replied) as replied,
        count(distinct contact_id) filter (where bounced) as bounced,
        count(distinct contact_id) filter (where unsubscribed) as unsubscribed,
        count(distinct contact_id) filter (where soft_bounced) as soft_bounced,
        count(distinct contact_id) filter (where complained) as complained,
        quantile_cont(reply_hours, 0.5) as reply_hours_p50,
        quantile_cont(reply_hours, 0.9) as reply_hours_p90,
    from emails
    group by sequence, step, metric_date
),

date_spine as (
    select sequence, step, metric_date from decisions_per_day
    union
    select sequence, step, metric_date from active_changes
    union
    select sequence, step, metric_date from exits_per_day
    union
    select sequence, step, metric_date from emails_per_day
),

days as (
    select
        'day' as period,
        date_spine.sequence,
        date_spine.step,
        date_spine.metric_date,
        coalesce(decisions_per_day.reached, 0) as reached,
        coalesce(decisions_per_day.skipped, 0) as skipped,
        coalesce(decisions_per_day.held, 0) as held,
        coalesce(decisions_per_day.failed, 0) as failed,
        coalesce(decisions_per_day.deferred, 0) as deferred,
        coalesce(decisions_per_day.expired, 0) as expired,
        coalesce(decisions_per_day.unknown, 0) as unknown,
        sum(coalesce(active_changes.delta, 0)) over (
            partition by date_spine.sequence, date_spine.step order by date_spine.metric_date
        ) as active,
        exits_per_day.* exclude (sequence, step, metric_date),
        emails_per_day.* exclude (sequence, step, metric_date),
    from date_spine
    left join decisions_per_day using (sequence, step, metric_date)
    left join active_changes using (sequence, step, metric_date)
    left join exits_per_day using (sequence, step, metric_date)
    left join emails_per_day using (sequence, step, metric_date)
),

decisions_all as (
    select
        sequence,
        step,
        count(distinct contact_id) as reached,
        count(distinct contact_id) filter (where status = 'skipped') as skipped,
        count(distinct contact_id) filter (where status = 'held') as held,
        count(distinct contact_id) filter (where status = 'failed') as failed,
        count(distinct contact_id) filter (where status = 'deferred') as deferred,
        count(distinct contact_id) filter (where status = 'expired') as expired,
        count(distinct contact_id) filter (where status = 'unknown') as unknown,
    from actions
    group by sequence, step
),

positions_all as (
    select
        sequence,
        step,
        count(distinct contact_id) filter (where is_latest and status = 'active') as active,
        count(distinct contact_id) filter (where is_latest and status = 'exited') as exited,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'completed')
            as exited_completed,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'replied')
            as exited_replied,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'unsubscribed')
            as exited_unsubscribed,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'bounced')
            as exited_bounced,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'condition')
            as exited_condition,
        count(distinct contact_id) filter (where is_latest and exit_reason = 'manual')
            as exited_manual,
    from stays
    group by sequence, step
),

emails_all as (
    select
        sequence,
        step,
        count(distinct contact_id) as sent,
        count(distinct contact_id) filter (where delivered) as delivered,
        count(distinct contact_id) filter (where opened) as opened,
        count(distinct contact_id) filter (where machine_opened) as machine_opened,
        count(distinct contact_id) filter (where clicked) as clicked,
        count(distinct contact_id) filter (where replied) as replied,
        count(distinct contact_id) filter (where bounced) as bounced,
        count(distinct contact_id) filter (where unsubscribed) as unsubscribed,
        count(distinct contact_id) filter (where soft_bounced) as soft_bounced,
        count(distinct contact_id) filter (where complained) as complained,
        quantile_cont(reply_hours, 0.5) as reply_hours_p50,
        quantile_cont(reply_hours, 0.9) as reply_hours_p90,
    from emails
    group by sequence, step
),

steps as (
    select sequence, step from decisions_all
    union
    select sequence, step from emails_all
),

totals as (
    select
        'all' as period,
        steps.sequence,
        steps.step,
        null::date as metric_date,
        coalesce(decisions_all.reached, 0) as reached,
        coalesce(decisions_all.skipped, 0) as skipped,
        coalesce(decisions_all.held, 0) as held,
        coalesce(decisions_all.failed, 0) as failed,
        coalesce(decisions_all.deferred, 0) as deferred,
        coalesce(decisions_all.expired, 0) as expired,
        coalesce(decisions_all.unknown, 0) as unknown,
        positions_all.* exclude (sequence, step),
        emails_all.* exclude (sequence, step),
    from steps
    left join decisions_all using (sequence, step)
    left join positions_all using (sequence, step)
    left join emails_all using (sequence, step)
),

counts as (
    select * from days
    union all by name
    select * from totals
),

final as (
    select
        sequence,
        step,
        period,
        metric_date,
        reached,
        skipped,
        cast(coalesce(active, 0) as bigint) as active,
        coalesce(exited, 0) as exited,
        coalesce(exited_completed, 0) as exited_completed,
        coalesce(exited_replied, 0) as exited_replied,
        coalesce(exited_unsubscribed, 0) as exited_unsubscribed,
        coalesce(exited_bounced, 0) as exited_bounced,
        coalesce(exited_condition, 0) as exited_condition,
        coalesce(exited_manual, 0) as exited_manual,
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
        held,
        failed,
        deferred,
        expired,
        unknown,
    from counts
)

select * from final
order by sequence, step, period desc, metric_date
