-- Treated vs holdout contacts per sequence with a holdout (SPEC 11): for each arm, the
-- enrolments compared and how many of their contacts had an outcome in the comparison window.
-- One row per (sequence, outcome): outcome `replied` (an email_replied activity of the
-- contact) or `meeting` (a meeting activity), in [enrolled_at, enrolled_at + window_days).
-- Any activity of the contact counts, in both arms: a holdout contact's reply answers nothing
-- we sent, so "replied" is the contact's behaviour, not a reply to this sequence.
-- Compared: the enrolments of the dates a holdout was drawn on, from the first holdout
-- enrolment's date to the last one's (a holdout added or removed later compares like with
-- like in time). `specs`: per sequence of the workspace, its window_days and holdout_percent.

with

specs as (
    {% if specs %}
    select *
    from (values
        {% for s in specs %}
        ({{ s.name | literal }}, {{ s.window_days | int }}, {{ s.holdout_percent | float }}){{ ',' if not loop.last }}
        {% endfor %}
    ) as t(sequence, window_days, holdout_percent)
    {% else %}
    select null::varchar as sequence, null::integer as window_days,
        null::double as holdout_percent,
    where false
    {% endif %}
),

enrolments as (
    select
        enrollments.sequence,
        enrollments.contact_id,
        enrollments.enrolled_on,
        enrollments.enrolled_at,
        enrollments.status = 'holdout' as holdout,
        enrollments.enrolled_at + to_days(specs.window_days) as window_end,
    from enrollments
    inner join specs using (sequence)
),

holdout_dates as (
    select sequence, min(enrolled_on) as first_on, max(enrolled_on) as last_on,
    from enrolments
    where holdout
    group by sequence
),

compared as (
    select enrolments.*
    from enrolments
    inner join holdout_dates
        on holdout_dates.sequence = enrolments.sequence
       and enrolments.enrolled_on between holdout_dates.first_on and holdout_dates.last_on
),

outcomes as (
    select
        compared.sequence,
        compared.contact_id,
        compared.holdout,
        bool_or(activities.type = 'email_replied') as replied,
        bool_or(activities.type = 'meeting') as meeting,
    from compared
    left join activities
        on activities.contact_id = compared.contact_id
       and activities.type in ('email_replied', 'meeting')
       and activities.occurred_at >= compared.enrolled_at
       and activities.occurred_at < compared.window_end
    group by all
),

arms as (
    select
        sequence,
        count(*) filter (where not holdout) as treated,
        count(*) filter (where holdout) as held_out,
        count(*) filter (where not holdout and replied) as treated_replied,
        count(*) filter (where holdout and replied) as holdout_replied,
        count(*) filter (where not holdout and meeting) as treated_meeting,
        count(*) filter (where holdout and meeting) as holdout_meeting,
    from outcomes
    group by sequence
),

final as (
    select
        specs.sequence,
        outcome.name as outcome,
        specs.window_days,
        specs.holdout_percent,
        coalesce(arms.treated, 0) as treated,
        coalesce(arms.held_out, 0) as holdout,
        coalesce(
            case outcome.name
                when 'replied' then arms.treated_replied else arms.treated_meeting
            end, 0
        ) as treated_outcomes,
        coalesce(
            case outcome.name
                when 'replied' then arms.holdout_replied else arms.holdout_meeting
            end, 0
        ) as holdout_outcomes,
    from specs
    cross join (values ('replied'), ('meeting')) as outcome(name)
    left join arms using (sequence)
    -- the sequences holding contacts out now, and those that did
    where specs.holdout_percent > 0 or arms.sequence is not null
)

select * from final
order by sequence, outcome desc
