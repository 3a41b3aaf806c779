-- int_entries.sql for several sequences at once: the entry candidates of every sequence of a
-- batched layer (pipelines/tick/batch.py) at one occurrence date and instant, one row per
-- (sequence, contact) with the first entry rule it fails (`reason`), or null when it enters.
-- Same rules, same order as int_entries.sql; what differs is the shape: the sequences are
-- rows (`layer`), the enrolments, manual requests and exclusive_with checks are joined by
-- sequence, the audiences of contact-record sequences are evaluated in ONE scan (a list of
-- one CASE per sequence, unnested), the exit conditions are one CASE on the sequence, and
-- the contacts are joined once for all candidates. No sequence of a layer reads `sequences`
-- (it would see the others: it is alone in its layer), so `contact` has no such column.
-- tick_suppressed_emails (int_suppressed_emails.sql at this instant) is the caller's.

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

layer as (
    select *
    from (values
        {% for s in seqs %}
        ({{ s.name | literal }}, {{ s.exclusive_with }}::varchar[], {{ s.needs_email }}, {{ s.prevent_duplicate_emails }}){{ ',' if not loop.last }}
        {% endfor %}
    ) as t(sequence, exclusive_with, needs_email, prevent_duplicate_emails)
),

enrolled_before as (
    select enrollments.sequence, enrollments.contact_id, enrollments.email
    from enrollments
    semi join layer using (sequence)
),

enrolled_emails as (
    select distinct sequence, email
    from enrolled_before
    where email is not null
),

exclusive_active as (
    select distinct layer_exclusive.sequence, enrollments.contact_id
    from (select sequence, unnest(exclusive_with) as other from layer) as layer_exclusive
    inner join enrollments on enrollments.sequence = layer_exclusive.other
    where enrollments.status = 'active'
),

manual as (
    select distinct manual_requests.sequence, manual_requests.contact_id
    from manual_requests
    semi join layer using (sequence)
    where manual_requests.status = 'pending'
      and manual_requests.requested_at <= $occurrence_at
),

contact as not materialized (
    {% include 'tick/int_occurrence_contact.sql' %}
),

suppressed_emails as (
    select * from tick_suppressed_emails
),

window_contact as (
    select *
    from tick_contacts_window
    where created_at is null
       or created_at <= $occurrence_at
),

audience_all as (
    select null::varchar as sequence, null::varchar as contact_id
    where false
    {% set precomputed = seqs | selectattr('audience_sql') | selectattr('precomputed') | list %}
    {% set fresh = seqs | selectattr('audience_sql') | rejectattr('precomputed') | list %}
    {% if precomputed %}
    union all
    -- the audience among the static contacts was evaluated once for the run
    select sequence, contact_id
    from tick_audience_static
    where list_contains([{{ precomputed | map(attribute='name') | map('literal') | join(', ') }}], sequence)
      and (created_at is null or created_at <= $occurrence_at)
    {% endif %}
    {% for source, group in [('window_contact', precomputed), ('contact', fresh)] %}
    {% set by_contact = group | selectattr('record', 'ne', 'account') | list %}
    {% if by_contact %}
    union all
    -- contact-record audiences over {{ source }}: one scan, one CASE per sequence
    select sequence, contact_id
    from (
        select
            contact.contact_id,
            unnest([
                {% for s in by_contact %}
                case when {{ s.audience_sql }} then {{ s.name | literal }} end{{ ',' if not loop.last }}
                {% endfor %}
            ]) as sequence,
        from {{ source }} as contact
        left join accounts as account on account.account_id = contact.account_id
        cross join occurrence
    )
    where sequence is not null
    {% endif %}
    {% for s in group if s.record == 'account' %}
    union all
    -- account audience: evaluated over accounts, then every contact of a matching account
    select {{ s.name | literal }} as sequence, contact.contact_id
    from {{ source }} as contact
    semi join (
        select account.account_id
        from accounts as account
        cross join occurrence
        where {{ s.audience_sql }}
    ) as matched_accounts on matched_accounts.account_id = contact.account_id
    {% endfor %}
    {% endfor %}
),

audience as (
    select audience_all.*
    from audience_all
    anti join enrolled_before using (sequence, contact_id)
),

candidates as (
    select
        sequence,
        contact_id,
        bool_and(from_manual) as manual,
    from (
        select sequence, contact_id, false as from_manual from audience
        union all
        select sequence, contact_id, true as from_manual from manual
    )
    group by sequence, contact_id
),

checked as (
    select
        candidates.sequence,
        candidates.contact_id,
        candidates.manual,
        contact.__email_key as email,
        layer.prevent_duplicate_emails,
        case
            when contact.contact_id is null then 'unknown_contact'
            when enrolled_before.contact_id is not null then 'already_enrolled'
            when contact.__unsubscribed or suppressed.unsubscribed then 'unsubscribed'
            when contact.__bounced or suppressed.bounced then 'bounced'
            {% set exiting = seqs | selectattr('exit_sql') | list %}
            {% if exiting %}
            when coalesce(case candidates.sequence
                {% for s in exiting %}
                when {{ s.name | literal }} then ({{ s.exit_sql }})
                {% endfor %}
            end, false) then 'exit_condition'
            {% endif %}
            when exclusive_active.contact_id is not null then 'exclusive_with'
            when layer.needs_email and contact.__email_key is null then 'no_email'
            when layer.prevent_duplicate_emails and duplicate.email is not null
                then 'duplicate_email'
        end as reason,
    from candidates
    inner join layer on layer.sequence = candidates.sequence
    left join contact on contact.contact_id = candidates.contact_id
    left join accounts as account on account.account_id = contact.account_id
    left join enrolled_before
        on enrolled_before.sequence = candidates.sequence
       and enrolled_before.contact_id = candidates.contact_id
    left join exclusive_active
        on exclusive_active.sequence = candidates.sequence
       and exclusive_active.contact_id = candidates.contact_id
    left join suppressed_emails as suppressed on suppressed.email = contact.__email_key
    left join enrolled_emails as duplicate
        on duplicate.sequence = candidates.sequence
       and duplicate.email = contact.__email_key
    cross join occurrence
),

final as (
    select
        sequence,
        $occurrence_on::date as occurrence_on,
        $occurrence_at::timestamp as occurrence_at,
        contact_id,
        manual,
        email,
        -- one contact per lower(email) among those entering a sequence that prevents
        -- duplicate emails: the smallest contact_id
        case
            when prevent_duplicate_emails and reason is null and email is not null
                and row_number() over (
                    partition by sequence, email, reason is null order by contact_id
                ) > 1 then 'duplicate_email'
            else reason
        end as reason,
    from checked
)

select * from final
