-- Before the occurrence at $occurrence_at: every recorded `unenroll` of the sequence at an
-- instant before it acts on the scratch state as `sequencer unenroll` did (pipelines/tick/
-- enrollment.py): the contact's active enrolment, if it began by then, exits with reason
-- `manual`; its pending requests made by then are cancelled.

update enrollments set
    status = 'exited',
    exit_reason = 'manual',
    exited_on = coalesce(
        u.unenrolled_on, timezone($timezone, u.unenrolled_at::timestamptz)::date
    ),
    exited_at = u.unenrolled_at
from (
    -- the first unenrolment at or after each active enrolment began
    select
        enrollments.contact_id,
        min(unenrolments.unenrolled_at) as unenrolled_at,
        arg_min(unenrolments.unenrolled_on, unenrolments.unenrolled_at) as unenrolled_on,
    from enrollments
    inner join backtest_unenrolments as unenrolments using (contact_id)
    where enrollments.sequence = $sequence
      and enrollments.status = 'active'
      and unenrolments.unenrolled_at >= enrollments.enrolled_at
      and unenrolments.unenrolled_at < $occurrence_at
    group by enrollments.contact_id
) as u
where enrollments.sequence = $sequence
  and enrollments.contact_id = u.contact_id;

update manual_requests set
    status = 'cancelled',
    reason = 'unenrolled',
    resolved_at = u.unenrolled_at
from backtest_unenrolments as u
where manual_requests.sequence = $sequence
  and manual_requests.contact_id = u.contact_id
  and manual_requests.status = 'pending'
  and manual_requests.requested_at <= u.unenrolled_at
  and u.unenrolled_at < $occurrence_at;
