-- One row per decision of a backtest (the scratch database's actions of $sequence): the
-- status is the decision (`due` | `skipped`), not what the assumed send made of it.
{% set variant = 'variant' if has_variant else 'null::varchar' %}
select
    sequence,
    contact_id,
    step,
    day,
    action,
    {{ variant }} as variant,
    occurrence_on,
    coalesce(decided_status, status) as status,
from actions
where sequence = $sequence
order by occurrence_on, contact_id, step_index, step
