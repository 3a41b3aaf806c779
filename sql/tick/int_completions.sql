-- Enrolments of sequence S that complete at this occurrence (SPEC 6, step 4), after
-- this occurrence's steps. classic: on (or, after an edit shortened it, past) the day of the
-- last step, when exit.all_steps_done. smart: once every current step has been executed
-- (when exit.all_steps_done), or on day duration_days. An enrolment's actions are decided at
-- or after it: $min_enrolled_at (the earliest active enrolment) bounds the scan of actions.

with

-- tick_active, or (batched) this sequence's rows of it, without the batch's columns
tick_active as (
    select * from {{ active | default('tick_active') }}
),

{% if smart %}
executed as (
    select contact_id, count(distinct step) as steps_executed
    from actions
    where sequence = $sequence
      and occurrence_at >= $min_enrolled_at
      and coalesce(decided_status, status) <> 'skipped'  -- as decided, whatever send did
      and list_contains($step_ids::varchar[], step)
    group by contact_id
),
{% endif %}

final as (
    select tick_active.contact_id
    from tick_active
    {% if smart %}
    left join executed using (contact_id)
    where tick_active.day_index >= {{ duration_days }}
    {% if all_steps_done %}
       or coalesce(executed.steps_executed, 0) >= len($step_ids::varchar[])
    {% endif %}
    {% else %}
    where {{ 'true' if all_steps_done else 'false' }}
      and tick_active.day_index >= {{ last_day }}
    {% endif %}
)

select * from final
