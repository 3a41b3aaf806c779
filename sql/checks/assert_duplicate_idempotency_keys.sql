-- Asset check: idempotency keys that are missing or shared by more than one action (the
-- primary key forbids the latter; this guards copies and schema changes). Zero rows = pass.

with

actions as (
    select idempotency_key, sequence, contact_id, step,
    from actions
),

final as (
    select idempotency_key, count(*) as actions,
    from actions
    group by idempotency_key
    having count(*) > 1 or coalesce(idempotency_key, '') = ''
)

select * from final
order by idempotency_key
