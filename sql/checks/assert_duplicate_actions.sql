-- Asset check: more than one action for the same enrolment and step. Zero rows = pass.

with

actions as (
    select sequence, contact_id, enrollment_id, step, idempotency_key,
    from actions
),

final as (
    select
        sequence,
        contact_id,
        enrollment_id,
        step,
        count(*) as actions,
        list(idempotency_key order by idempotency_key) as idempotency_keys,
    from actions
    group by sequence, contact_id, enrollment_id, step
    having count(*) > 1
)

select * from final
order by sequence, contact_id, step
