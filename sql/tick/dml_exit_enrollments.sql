-- Exits (SPEC 6): the active enrolments of this sequence named by `source` (a table or a
-- subquery with contact_id, exit_reason: tick_exits, or tick_completions as 'completed')
-- exit at the occurrence's instant. Batched (several sequences of one instant in one
-- source), each row of `source` carries its sequence and occurrence.
{% set batched = batched | default(false) %}
update enrollments set
    status = 'exited',
    exit_reason = exits.exit_reason,
    exited_on = {{ 'exits.occurrence_on' if batched else '$occurrence_on' }},
    exited_at = {{ 'exits.occurrence_at' if batched else '$occurrence_at' }}
from {{ source }} as exits
where enrollments.sequence = {{ 'exits.sequence' if batched else '$sequence' }}
  and enrollments.contact_id = exits.contact_id
  and enrollments.status = 'active'
