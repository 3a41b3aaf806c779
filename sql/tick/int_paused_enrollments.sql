-- The active enrolments of $sequences that a pause touched since they entered (SPEC 11), up to
-- and including this occurrence: how many of the sequence's processed occurrences fell inside
-- a pause (they do not count in the day index), whether this one does (then the enrolment
-- decides no step and does not complete), and the date it resumes. Pauses are the run's
-- tick_pauses (pipelines/tick/pause.py): intervals per sequence (null: any) and contact (null:
-- every enrolment of the sequence). Rendered only when the run has pauses at all.

with

layer as (
    select unnest($sequences::varchar[]) as sequence
),

sequence_occurrences as (
    select sequence, occurrence_on, occurrence_at
    from occurrences
    semi join layer using (sequence)
    where occurrence_on <= $occurrence_on::date
),

intervals as (
    select *
    from tick_pauses
    where sequence is null or list_contains($sequences::varchar[], sequence)
),

pause_days as (
    -- each processed occurrence inside a pause
    select
        sequence_occurrences.sequence,
        intervals.contact_id,
        sequence_occurrences.occurrence_on,
        intervals.resume_on,
    from sequence_occurrences
    inner join intervals
        on (intervals.sequence is null or intervals.sequence = sequence_occurrences.sequence)
       and intervals.from_at <= sequence_occurrences.occurrence_at
       and (intervals.until_on is null or sequence_occurrences.occurrence_on < intervals.until_on)
       and (intervals.until_at is null or sequence_occurrences.occurrence_at < intervals.until_at)
),

active as (
    select sequence, contact_id, enrolled_on
    from enrollments
    semi join layer using (sequence)
    where status = 'active'
),

touched as (
    select active.sequence, active.contact_id, pause_days.occurrence_on, pause_days.resume_on
    from active
    inner join pause_days
        on pause_days.sequence = active.sequence
       and pause_days.contact_id = active.contact_id
       and pause_days.occurrence_on >= active.enrolled_on
    union all
    select active.sequence, active.contact_id, pause_days.occurrence_on, pause_days.resume_on
    from active
    inner join (select * from pause_days where contact_id is null) as pause_days
        on pause_days.sequence = active.sequence
       and pause_days.occurrence_on >= active.enrolled_on
),

final as (
    select
        sequence,
        contact_id,
        count(distinct occurrence_on) as paused_days,
        bool_or(occurrence_on = $occurrence_on::date) as paused_now,
        max(resume_on) filter (where occurrence_on = $occurrence_on::date) as resume_on,
    from touched
    group by sequence, contact_id
)

select * from final
