-- Write tick_state_changed (int_state_changed.sql) into contact_activity_state.
-- tick_window_state mirrors contact_activity_state for the window's contacts, so __new says
-- which rows to insert; the others are updated (`insert or replace` cost twice as much: a
-- merge against every state row).
update contact_activity_state set
    last_activity_type = changed.last_activity_type,
    last_activity_at = changed.last_activity_at,
    last_contacted_type = changed.last_contacted_type,
    last_contacted_at = changed.last_contacted_at,
    unsubscribed_at = changed.unsubscribed_at,
    bounced_at = changed.bounced_at,
    last_replied_at = changed.last_replied_at
from tick_state_changed as changed
where contact_activity_state.contact_id = changed.contact_id
  and not changed.__new;

insert into contact_activity_state by name
select * exclude (__new) from tick_state_changed where __new;
