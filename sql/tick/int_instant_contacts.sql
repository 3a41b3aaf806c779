-- Every contact's current row and its activity-derived properties as of the instant
-- contact_activity_state reflects (SPEC 5). Rendered over a slice of the contacts: the tick
-- materializes it ONCE per run for the contacts without activity in the run's window (their
-- state cannot change during the run), and once per instant for the few with activity
-- there ({{ contacts }} and {{ state }} are the engine's own relations). The view
-- `instant_contacts` is their union. The created_at filter and `sequences` are applied per
-- occurrence (int_occurrence_contact.sql). Engine-only columns start with `__`.

with

contacts_now as (
    select * from {{ contacts }}
),

activity_state as (
    select * from {{ state }}
),

final as (
    select
        contacts_now.*,
        activity_state.last_activity_type,
        activity_state.last_activity_at,
        contacted_mode(activity_state.last_contacted_type) as last_contacted_mode,
        activity_state.last_contacted_at,
        coalesce(contacts_now.unsubscribed, false)
            or activity_state.unsubscribed_at is not null as __unsubscribed,
        activity_state.bounced_at is not null as __bounced,
        activity_state.last_replied_at as __last_replied_at,
        lower(nullif(trim(contacts_now.email), '')) as __email_key,
    from contacts_now
    left join activity_state using (contact_id)
)

select * from final
