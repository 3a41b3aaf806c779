-- Step decisions of sequence S at one occurrence (SPEC 6, step 3), one row per action.
-- classic: every step with `day` = the enrolment's day index, in file order: `when` holds
--   -> due, else skipped (never retried).
-- smart: on days 1, 1+N, 1+2N, ... up to duration_days, the first step in file order not yet
--   executed whose `when` holds -> due; at most one per evaluation.
-- A step already decided for the enrolment is never decided again (edits never rewrite).
-- variant (issue 13): for an email step with variants, the one whose range of buckets holds
--   the enrolment's stored bucket (pipelines/tick/experiments.py: `thresholds`, in file
--   order); null for every other step. Fixed by the bucket, so replays never change it.
{% set with_variants = steps | selectattr('variants') | list | length > 0 %}

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

active_enrollments as (
    -- tick_active, or (batched) this sequence's rows of it, without the batch's columns
    select * from {{ active | default('tick_active') }}
    {% if smart %}
    where (day_index - 1) % {{ interval_days }} = 0
      and day_index <= {{ duration_days }}
    {% else %}
    where day_index in ({{ steps | map(attribute='day') | join(', ') }})
    {% endif %}
),

-- A decision for (S, contact) belongs to the contact's only enrolment in S, so it was made at
-- or after that enrolment: $min_enrolled_at (the earliest active enrolment) bounds the scan.
decided as (
    select contact_id, step
    from actions
    where sequence = $sequence
      and occurrence_at >= $min_enrolled_at
),

{% if uses_enrollment %}
engagement as (
    {% include 'tick/int_enrollment_engagement.sql' %}
),
{% endif %}

enrollment as (
    select
        active_enrollments.*,
        {% if uses_enrollment %}
        engagement.* exclude (contact_id),
        {% endif %}
        {% if with_variants %}
        -- the stored bucket; an enrolment older than the column gets the same hash now
        coalesce(
            __enrolled.bucket,
            ('0x' || left(md5($sequence || '|' || active_enrollments.contact_id), 8))::bigint
                % 10000
        ) as __bucket,
        {% endif %}
    from active_enrollments
    {% if uses_enrollment %}
    left join engagement using (contact_id)
    {% endif %}
    {% if with_variants %}
    left join enrollments as __enrolled
        on __enrolled.sequence = $sequence
       and __enrolled.contact_id = active_enrollments.contact_id
    {% endif %}
),

contact as (
    {% include 'tick/int_occurrence_contact.sql' %}
),

-- the steps as rows (day is null for smart): each enrolment meets the contact once, and each
-- step's `when` is picked by its index
sequence_steps as (
    select *
    from (values
        {% for step in steps %}
        ({{ step.id | literal }}, {{ step.index }}, {{ step.day if step.day is not none else 'null' }}, {{ step.action | literal }}){{ ',' if not loop.last }}
        {% endfor %}
    ) as t(__step, __step_index, __step_day, __action)
),

evaluated as (
    select
        enrollment.contact_id,
        enrollment.enrollment_id,
        enrollment.day_index as day,
        __steps.__step as step,
        __steps.__step_index as step_index,
        __steps.__action as action,
        coalesce(case __steps.__step_index
            {% for step in steps %}
            when {{ step.index }} then ({{ step.sql }})
            {% endfor %}
        end, false) as holds,
        {% if with_variants %}
        case __steps.__step_index
            {% for step in steps if step.variants %}
            when {{ step.index }} then case
                {% for variant, limit in step.variants %}
                when enrollment.__bucket < {{ limit }} then {{ variant | literal }}
                {% endfor %}
            end
            {% endfor %}
        end::varchar as variant,
        {% else %}
        null::varchar as variant,
        {% endif %}
    from enrollment
    inner join contact on contact.contact_id = enrollment.contact_id
    left join accounts as account on account.account_id = contact.account_id
    cross join occurrence
    {% if smart %}
    cross join sequence_steps as __steps
    {% else %}
    inner join sequence_steps as __steps on __steps.__step_day = enrollment.day_index
    {% endif %}
),

undecided as (
    select evaluated.*
    from evaluated
    anti join decided
        on decided.contact_id = evaluated.contact_id
       and decided.step = evaluated.step
),

final as (
    {% if smart %}
    select undecided.* exclude (holds), 'due' as status,
    from undecided
    where holds
    qualify row_number() over (partition by contact_id order by step_index) = 1
    {% else %}
    select
        undecided.* exclude (holds),
        case when holds then 'due' else 'skipped' end as status,
    from undecided
    {% endif %}
)

select * from final
