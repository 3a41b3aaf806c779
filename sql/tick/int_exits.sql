-- Exits of the active enrolments of sequence S at one occurrence (SPEC 6, step 1).
-- The first reason that holds, in SPEC order: unsubscribed (flag or activity <= t), bounced,
-- replied (a reply after enrolment, <= t), condition (any exit.where true). A reason whose
-- `exit:` toggle is off is left out of the case.

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

active_enrollments as (
    select contact_id, enrolled_at
    from enrollments
    where sequence = $sequence
      and status = 'active'
),

contact as (
    {% include 'tick/int_occurrence_contact.sql' %}
),

reasons as (
    select
        enrollment.contact_id,
        {% if exit_branches %}
        case
            {% if exit.unsubscribed %}
            when contact.__unsubscribed then 'unsubscribed'
            {% endif %}
            {% if exit.bounced %}
            when contact.__bounced then 'bounced'
            {% endif %}
            {% if exit.replied %}
            when contact.__last_replied_at > enrollment.enrolled_at then 'replied'
            {% endif %}
            {% if exit_sql %}
            when coalesce(({{ exit_sql }}), false) then 'condition'
            {% endif %}
        end
        {% else %}
        cast(null as varchar)
        {% endif %} as exit_reason,
    from active_enrollments as enrollment
    inner join contact on contact.contact_id = enrollment.contact_id
    left join accounts as account on account.account_id = contact.account_id
    cross join occurrence
),

final as (
    select * from reasons
    where exit_reason is not null
)

select * from final
