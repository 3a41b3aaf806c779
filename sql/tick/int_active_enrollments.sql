-- The active enrolments of sequence S after this occurrence's exits and entries, with
-- their day index (SPEC 6): the occurrence of enrolment is day 1, the n-th occurrence of the
-- sequence since then is day n. Occurrences are always processed in full, so the ledger of
-- processed occurrences (which already holds this one) counts them, weekends skipped where
-- the schedule excludes them, whatever the schedule was at the time. When the run has pauses
-- (SPEC 11): occurrences inside a pause do not count, and an enrolment paused at this one is
-- left out (it decides no step and does not complete); tick_paused holds them
-- (int_paused_enrollments.sql).

with

sequence_occurrences as (
    select
        occurrence_on,
        row_number() over (order by occurrence_on) as ordinal,
    from occurrences
    where sequence = $sequence
),

current_occurrence as (
    select ordinal
    from sequence_occurrences
    where occurrence_on = $occurrence_on::date
),

final as (
    select
        enrollments.contact_id,
        enrollments.enrollment_id,
        enrollments.enrolled_on,
        enrollments.enrolled_at,
        current_occurrence.ordinal - sequence_occurrences.ordinal + 1
            {% if pauses %}- coalesce(tick_paused.paused_days, 0){% endif %} as day_index,
    from enrollments
    inner join sequence_occurrences
        on sequence_occurrences.occurrence_on = enrollments.enrolled_on
    cross join current_occurrence
    {% if pauses %}
    left join tick_paused
        on tick_paused.sequence = enrollments.sequence
       and tick_paused.contact_id = enrollments.contact_id
    {% endif %}
    where enrollments.sequence = $sequence
      and enrollments.status = 'active'
      {% if pauses %}
      and not coalesce(tick_paused.paused_now, false)
      {% endif %}
)

select * from final
