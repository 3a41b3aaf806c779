-- The merge of dml_upsert_activity_state.sql, computed against the run's window state
-- (tick_window_state: every contact of an instant's delta is a window contact), so that
-- nothing scans all contacts. __new: the contact has no state row yet.
select
    delta.contact_id,
    delta.last_activity_type,
    delta.last_activity_at,
    coalesce(delta.last_contacted_type, state.last_contacted_type) as last_contacted_type,
    coalesce(delta.last_contacted_at, state.last_contacted_at) as last_contacted_at,
    coalesce(state.unsubscribed_at, delta.unsubscribed_at) as unsubscribed_at,
    coalesce(state.bounced_at, delta.bounced_at) as bounced_at,
    coalesce(delta.last_replied_at, state.last_replied_at) as last_replied_at,
    state.contact_id is null as __new,
from activity_delta as delta
left join tick_window_state as state using (contact_id)
