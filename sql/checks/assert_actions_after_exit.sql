-- Asset check: actions decided after their enrolment exited. Exits come first in an
-- occurrence and completion last (SPEC 6), so an action at the exit's own instant is fine only
-- when the exit is `completed`. Zero rows = pass.

with

actions as (
    select idempotency_key, sequence, contact_id, step, occurrence_on, occurrence_at,
    from actions
),

exited as (
    select sequence, contact_id, exit_reason, exited_on, exited_at,
    from enrollments
    where status = 'exited'
),

final as (
    select actions.*, exited.exit_reason, exited.exited_on, exited.exited_at,
    from actions
    join exited using (sequence, contact_id)
    where case
        when exited.exited_at is not null then
            actions.occurrence_at > exited.exited_at
            or (actions.occurrence_at = exited.exited_at and exited.exit_reason <> 'completed')
        else actions.occurrence_on > exited.exited_on
    end
)

select * from final
order by sequence, contact_id, occurrence_at
