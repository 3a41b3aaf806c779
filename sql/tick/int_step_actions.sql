-- Step decisions of sequence S at one occurrence (SPEC 6, step 3), one row per action.
-- classic: every step with `day` = the enrolment's day index, in file order: `when` holds
--   -> due, else skipped (never retried).
-- smart: on days 1, 1+N, 1+2N, ... up to duration_days, the first step in file order not yet
--   executed whose `when` holds -> due; at most one per evaluation.
-- A step already decided for the enrolment is never decided again (edits never rewrite).

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

active_enrollments as (
    select * from tick_active
    {% if smart %}
    where (day_index - 1) % {{ interval_days }} = 0
      and day_index <= {{ duration_days }}
    {% else %}
    where day_index in ({{ steps | map(attribute='day') | join(', ') }})
    {% endif %}
),

decided as (
    select contact_id, step
    from actions
    where sequence = $sequence
),

{% if uses_enrollment %}
engagement as (
    {% include 'int_enrollment_engagement.sql' %}
),
{% endif %}

enrollment as (
    select
        active_enrollments.*,
        {% if uses_enrollment %}
        engagement.* exclude (contact_id),
        {% endif %}
    from active_enrollments
    {% if uses_enrollment %}
    left join engagement using (contact_id)
    {% endif %}
),

contact as (
    {% include 'int_occurrence_contact.sql' %}
),

evaluated as (
    {% for step in steps %}
    select
        enrollment.contact_id,
        enrollment.enrollment_id,
        enrollment.day_index as day,
        {{ step.id | literal }} as step,
        {{ step.index }} as step_index,
        {{ step.action | literal }} as action,
        coalesce(({{ step.sql }}), false) as holds,
    from enrollment
    inner join contact on contact.contact_id = enrollment.contact_id
    left join accounts as account on account.account_id = contact.account_id
    cross join occurrence
    {% if not smart %}
    where enrollment.day_index = {{ step.day }}
    {% endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
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
