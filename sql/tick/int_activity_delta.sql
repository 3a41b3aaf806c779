-- Activity-derived properties contributed by the activities in (from_at, to_at], one row
-- per contact (SPEC 5). The tick merges them into contact_activity_state: every activity
-- here is later than everything already in the state, so the latest-activity columns of
-- the delta replace the state's, and the first-unsubscribe/first-bounce columns keep the
-- state's. Ties on occurred_at break by activity_id, as in int_contact_properties.sql.
-- {{ source }} is `activities` (a first build) or `tick_window`, the run's activities after
-- the watermark, materialized once per run so that each instant reads only its slice.

with

new_activities as (
    select
        contact_id,
        activity_id,
        type,
        occurred_at,
        is_contact_mode(type) as is_contact_mode,  -- macro in sql/schema.sql
    from {{ source }}
    where contact_id is not null
      and occurred_at <= $to_at
      {% if from_at %}and occurred_at > $from_at{% endif %}
),

final as (
    select
        contact_id,
        count(*) as activities,
        arg_max(type, struct_pack(at := occurred_at, id := activity_id)) as last_activity_type,
        max(occurred_at) as last_activity_at,
        arg_max(type, struct_pack(at := occurred_at, id := activity_id))
            filter (where is_contact_mode) as last_contacted_type,
        max(occurred_at) filter (where is_contact_mode) as last_contacted_at,
        -- a spam complaint counts as an unsubscribe (SPEC 10): exit and suppression
        min(occurred_at) filter (where type in ('unsubscribed', 'email_complained'))
            as unsubscribed_at,
        min(occurred_at) filter (where type = 'email_bounced') as bounced_at,
        max(occurred_at) filter (where type = 'email_replied') as last_replied_at,
    from new_activities
    group by contact_id
)

select * from final
