-- Merge activity_delta (int_activity_delta.sql) into contact_activity_state: the delta is
-- later than everything in the state, so its latest-activity columns replace the state's,
-- and the first unsubscribe / first bounce keep the state's.
insert into contact_activity_state by name (
    select * exclude (activities) from activity_delta
)
on conflict (contact_id) do update set
    last_activity_type = excluded.last_activity_type,
    last_activity_at = excluded.last_activity_at,
    last_contacted_type = coalesce(excluded.last_contacted_type, last_contacted_type),
    last_contacted_at = coalesce(excluded.last_contacted_at, last_contacted_at),
    unsubscribed_at = coalesce(unsubscribed_at, excluded.unsubscribed_at),
    bounced_at = coalesce(bounced_at, excluded.bounced_at),
    last_replied_at = coalesce(excluded.last_replied_at, last_replied_at)
