-- Derived contact properties as of one instant (SPEC 5), one row per contact with activity.
-- Parameter: $as_of (naive UTC timestamp). Ties on occurred_at break by activity_id so the
-- result is deterministic: a replayed run must decide exactly as the original did.

with

activities_as_of as (
    select
        contact_id,
        activity_id,
        type,
        occurred_at,
    from activities
    where contact_id is not null
      and occurred_at <= $as_of
),

contact_mode_activities as (
    select * from activities_as_of
    where is_contact_mode(type)  -- macro in sql/schema.sql
),

last_activity as (
    select
        contact_id,
        arg_max(type, struct_pack(at := occurred_at, id := activity_id)) as last_activity_type,
        max(occurred_at) as last_activity_at,
    from activities_as_of
    group by contact_id
),

last_contact as (
    select
        contact_id,
        arg_max(type, struct_pack(at := occurred_at, id := activity_id)) as last_contacted_type,
        max(occurred_at) as last_contacted_at,
    from contact_mode_activities
    group by contact_id
),

final as (
    select
        last_activity.contact_id,
        last_activity.last_activity_type,
        last_activity.last_activity_at,
        contacted_mode(last_contact.last_contacted_type) as last_contacted_mode,
        last_contact.last_contacted_at,
    from last_activity
    left join last_contact using (contact_id)
)

select * from final
