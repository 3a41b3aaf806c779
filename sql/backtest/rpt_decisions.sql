-- One row per decision of a backtest (the scratch database's actions of $sequence): the
-- status is the decision (`due` | `skipped`), not what the assumed send made of it.
select
    sequence,
    contact_id,
    step,
    day,
    action,
    variant,
    occurrence_on,
    coalesce(decided_status, status) as status,
from actions
where sequence = $sequence
order by occurrence_on, contact_id, step_index, step
