-- The `when` conditions of one step decision of one enrolment at one past occurrence
-- (`sequencer why`), re-evaluated now over the recorded history: the contact as of the
-- instant (why_contact), and the `enrollment` columns as tick/int_enrollment_engagement.sql
-- computes them, over the decisions of EARLIER occurrences only (the tick reads them before
-- it inserts the occurrence's own) and the human opens and the clicks (as tick/state.py).

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

actions as (
    select *
    from main.actions
    where not (
        sequence = $sequence
        and enrollment_id = $enrollment_id
        and occurrence_on >= $occurrence_on
    )
),

active_enrollments as (
    select
        $contact_id::varchar as contact_id,
        $enrollment_id::varchar as enrollment_id,
        $enrolled_on::date as enrolled_on,
        $enrolled_at::timestamp as enrolled_at,
        $day::integer as day_index,
),

tick_email_activities as (
    select contact_id, type, sequence, step, message_id, occurred_at
    from activities
    where contact_id = $contact_id
      and type in ('email_opened', 'email_clicked')
      and not is_machine_open(type, detail)
      and (sequence is not null or message_id is not null)
),

engagement as (
    {% include 'tick/int_enrollment_engagement.sql' %}
),

enrollment as (
    select
        active_enrollments.*,
        engagement.* exclude (contact_id),
    from active_enrollments
    left join engagement using (contact_id)
),

final as (
    select
        {% for sql in conditions %}
        coalesce(({{ sql }}), false) as c{{ loop.index0 }},
        {% endfor %}
    from why_contact as contact
    left join accounts as account on account.account_id = contact.account_id
    cross join enrollment
    cross join occurrence
)

select * from final
