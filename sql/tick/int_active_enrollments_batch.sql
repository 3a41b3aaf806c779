-- int_active_enrollments.sql for several sequences at once (a batched layer,
-- pipelines/tick/batch.py, of one occurrence date and instant): the active enrolments of
-- every sequence of $sequences after this occurrence's exits and entries, with their day
-- index, counted in each sequence's own ledger of processed occurrences; one row per
-- enrolment, tagged with its sequence and occurrence, ordered by sequence (each sequence's
-- step and completion branch reads its own rows). Pauses: as in
-- int_active_enrollments.sql.

with

layer as (
    select unnest($sequences::varchar[]) as sequence
),

sequence_occurrences as (
    select
        occurrences.sequence,
        occurrences.occurrence_on,
        row_number() over (
            partition by occurrences.sequence order by occurrences.occurrence_on
        ) as ordinal,
    from occurrences
    semi join layer using (sequence)
),

current_occurrence as (
    select sequence, ordinal
    from sequence_occurrences
    where occurrence_on = $occurrence_on::date
),

final as (
    select
        enrollments.sequence,
        $occurrence_on::date as occurrence_on,
        $occurrence_at::timestamp as occurrence_at,
        enrollments.contact_id,
        enrollments.enrollment_id,
        enrollments.enrolled_on,
        enrollments.enrolled_at,
        current_occurrence.ordinal - sequence_occurrences.ordinal + 1
            {% if pauses %}- coalesce(tick_paused.paused_days, 0){% endif %} as day_index,
    from enrollments
    inner join sequence_occurrences
        on sequence_occurrences.sequence = enrollments.sequence
       and sequence_occurrences.occurrence_on = enrollments.enrolled_on
    inner join current_occurrence on current_occurrence.sequence = enrollments.sequence
    {% if pauses %}
    left join tick_paused
        on tick_paused.sequence = enrollments.sequence
       and tick_paused.contact_id = enrollments.contact_id
    {% endif %}
    where enrollments.status = 'active'
      {% if pauses %}
      and not coalesce(tick_paused.paused_now, false)
      {% endif %}
)

select * from final
order by sequence
