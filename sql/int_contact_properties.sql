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
    where type in (
        'email_sent', 'email_opened', 'email_clicked', 'email_replied',
        'call_incoming', 'call_outgoing', 'chat'
    )
       or starts_with(type, 'sales_activity:')
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
        case
            when last_contact.last_contacted_type = 'email_sent' then 'No reply'
            when last_contact.last_contacted_type in ('email_opened', 'email_clicked')
                then 'Opened but no reply'
            when last_contact.last_contacted_type = 'email_replied' then 'Replied'
            when last_contact.last_contacted_type = 'call_incoming' then 'Incoming call'
            when last_contact.last_contacted_type = 'call_outgoing' then 'Outgoing call'
            when last_contact.last_contacted_type = 'chat' then 'Chat'
            when starts_with(last_contact.last_contacted_type, 'sales_activity:')
                then 'Sales Activity'
            else 'Not yet contacted'
        end as last_contacted_mode,
        last_contact.last_contacted_at,
    from last_activity
    left join last_contact using (contact_id)
)

select * from final
