-- Exits (SPEC 6): the active enrolments of this sequence named by `source` (a table or a
-- subquery with contact_id, exit_reason: tick_exits, or tick_completions as 'completed')
-- exit at the occurrence's instant.
update enrollments set
    status = 'exited',
    exit_reason = exits.exit_reason,
    exited_on = $occurrence_on,
    exited_at = $occurrence_at
from {{ source }} as exits
where enrollments.sequence = $sequence
  and enrollments.contact_id = exits.contact_id
  and enrollments.status = 'active'
