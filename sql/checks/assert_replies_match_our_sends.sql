-- Asset check: engagement that a door matched to a Message-ID we never sent (mailbox `mail:`,
-- tracking server `srv:` and ESP `<provider>:` activity ids). A door may leave the
-- Message-ID empty when it matched by address only; a non-empty one must be one of our sends.
-- Zero rows = pass. Parameters: $prefixes (the doors' activity id prefixes).

with

ours as (
    select distinct message_id,
    from activities
    where type in ('email_sent', 'sms_sent') and message_id is not null
),

from_doors as (
    select activity_id, contact_id, type, occurred_at, message_id,
    from activities
    where
        list_contains($prefixes, split_part(activity_id, ':', 1) || ':')
        and type not in ('email_sent', 'sms_sent')
        and message_id is not null
),

final as (
    select from_doors.*,
    from from_doors
    anti join ours on ours.message_id = from_doors.message_id
)

select * from final
order by occurred_at, activity_id
