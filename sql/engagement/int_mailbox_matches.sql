-- Each classified mail message (one row per recipient, `mailbox_classified`) matched to the
-- send it answers (SPEC 10 door 3): by a Message-ID it names (the first of `candidates`
-- that is one of our sends), else by its address (`recipient`: the sender, or a DSN's failed
-- recipient) = an enrolled contact's email → that contact's latest send (match 'address').
-- Mail we sent (`from_us`, or its own Message-ID is one of our sends) is never a reply nor an
-- auto-reply. One row per input row; `loadable` rows carry the activity as JSON (`__text`).
{% import 'engagement/_macros.sql' as m %}
with

classified as (
    select * from mailbox_classified
),

sent as (
    select message_id, contact_id, sequence, step, sent_at,
    from ({{ m.our_sends() | indent(4) }})
    where source = 1 or contact_id is not null
),

sends as (
    select
        lower(message_id) as msg_key,
        message_id,
        contact_id,
        sequence,
        step,
        sent_at,
    from sent
    qualify row_number() over (
        partition by lower(message_id) order by sent_at desc nulls last
    ) = 1
),

named as (
    select
        rec,
        unnest(candidates) as candidate,
        generate_subscripts(candidates, 1) as pos,
    from classified
),

by_message_id as (
    select
        named.rec,
        sends.message_id,
        sends.contact_id,
        sends.sequence,
        sends.step,
    from named
    inner join sends on sends.msg_key = lower(named.candidate)
    qualify row_number() over (partition by named.rec order by named.pos) = 1
),

enrolled as (
    select distinct
        lower(contacts.email) as address,
        contacts.contact_id,
    from contacts
    inner join enrollments on enrollments.contact_id = contacts.contact_id
    where contacts.email is not null
),

by_address as (
    select
        classified.rec,
        sends.message_id,
        sends.contact_id,
        sends.sequence,
        sends.step,
    from classified
    inner join enrolled on enrolled.address = lower(classified.recipient)
    inner join sends on sends.contact_id = enrolled.contact_id
    where classified.rec not in (select by_message_id.rec from by_message_id)
    qualify row_number() over (
        partition by classified.rec order by sends.sent_at desc nulls last, sends.message_id
    ) = 1
),

matched as (
    select
        classified.*,
        coalesce(by_message_id.message_id, by_address.message_id) as send_message_id,
        coalesce(by_message_id.contact_id, by_address.contact_id) as contact_id,
        coalesce(by_message_id.sequence, by_address.sequence) as sequence,
        coalesce(by_message_id.step, by_address.step) as step,
        case
            when by_message_id.rec is not null then 'message_id'
            when by_address.rec is not null then 'address'
        end as match,
        classified.kind in ('reply', 'auto_reply')
        and (
            classified.from_us
            or coalesce(lower(classified.message_id) in (select msg_key from sends), false)
        ) as ours,
    from classified
    left join by_message_id on by_message_id.rec = classified.rec
    left join by_address on by_address.rec = classified.rec
),

activity as (
    select
        *,
        match is not null and not ours as loadable,
        'mail:' || substr(sha256(message_key || '|' || coalesce(lower(recipient), '')), 1, 32)
            as activity_id,
    from matched
),

final as (
    select
        rec,
        source,
        kind,
        recipient,
        status,
        coalesce(send_message_id, candidates[1]) as matched_message_id,
        match,
        ours,
        loadable,
        activity_id,
        json_object(
            'activity_id', activity_id,
            'contact_id', contact_id,
            'type', activity_type,
            'occurred_at', strftime(occurred_at, '%Y-%m-%dT%H:%M:%SZ'),
            'sequence', sequence,
            'step', step,
            'message_id', send_message_id,
            'detail', json_object(
                'kind', kind,
                'status', status,
                'diagnostic', diagnostic,
                'until', until,
                'match', match,
                'subject', subject,
                'recipient', recipient
            )::varchar
        )::varchar as __text,
        json_object(
            'source', source,
            'message_id', message_id,
            'from', sender,
            'subject', subject,
            'kind', kind,
            'recipient', recipient,
            'status', status,
            'diagnostic', diagnostic
        )::varchar as __raw,
    from activity
)

select * from final
order by rec
