-- Entry candidates of sequence S at one occurrence (SPEC 6, step 2): the audience at
-- this instant plus the pending manual requests, each with the first entry rule it fails
-- (`reason`), or null when it enters. Only called on or after starts_on. Unsubscribed and
-- bounced contacts never enter, whatever the `exit:` toggles say (those only govern exits).

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

enrolled_before as (
    select contact_id, email
    from enrollments
    where sequence = $sequence
),

exclusive_active as (
    {% if exclusive_with %}
    select distinct contact_id
    from enrollments
    where status = 'active'
      and list_contains($exclusive_with::varchar[], sequence)
    {% else %}
    select null::varchar as contact_id
    where false
    {% endif %}
),

manual as (
    select distinct contact_id
    from manual_requests
    where sequence = $sequence
      and status = 'pending'
      and requested_at <= $occurrence_at
),

-- read twice (the audience scans it, the checks look up the few candidates): inlined, never
-- materialized, which would copy every contact at every occurrence
contact as not materialized (
    {% include 'tick/int_occurrence_contact.sql' %}
),

-- addresses that unsubscribed or bounced under any contact
suppressed_emails as (
    {% include 'tick/int_suppressed_emails.sql' %}
),

{% if audience_sql %}
{% if precomputed %}
-- the audience among the static contacts was evaluated once for the run
-- (int_audience_static.sql); the window's contacts are evaluated here, at t
window_contact as (
    select *
    from tick_contacts_window
    where created_at is null
       or created_at <= $occurrence_at
),

audience as (
    select contact_id
    from tick_audience_static
    where sequence = $sequence
      and (created_at is null or created_at <= $occurrence_at)
      and contact_id not in (select contact_id from enrolled_before)
    union all
    {% if record == 'account' %}
    select contact.contact_id
    from window_contact as contact
    semi join (
        select account.account_id
        from accounts as account
        where {{ audience_sql }}
    ) as matched_accounts on matched_accounts.account_id = contact.account_id
    anti join enrolled_before using (contact_id)
    {% else %}
    select contact.contact_id
    from window_contact as contact
    left join accounts as account on account.account_id = contact.account_id
    anti join enrolled_before on enrolled_before.contact_id = contact.contact_id
    where {{ audience_sql }}
    {% endif %}
),
{% else %}
never_enrolled as (
    select contact.*
    from contact
    anti join enrolled_before using (contact_id)
),

audience as (
    {% if record == 'account' %}
    -- account audience: evaluated over accounts, then every contact of a matching account
    select contact.contact_id
    from never_enrolled as contact
    semi join (
        select account.account_id
        from accounts as account
        cross join occurrence
        where {{ audience_sql }}
    ) as matched_accounts on matched_accounts.account_id = contact.account_id
    {% else %}
    select contact.contact_id
    from never_enrolled as contact
    left join accounts as account on account.account_id = contact.account_id
    cross join occurrence
    where {{ audience_sql }}
    {% endif %}
),
{% endif %}
{% endif %}

candidates as (
    select
        contact_id,
        bool_and(from_manual) as manual,
    from (
        {% if audience_sql %}
        select contact_id, false as from_manual from audience
        union all
        {% endif %}
        select contact_id, true as from_manual from manual
    )
    group by contact_id
),

checked as (
    select
        candidates.contact_id,
        candidates.manual,
        contact.__email_key as email,
        case
            when contact.contact_id is null then 'unknown_contact'
            when enrolled_before.contact_id is not null then 'already_enrolled'
            when contact.__unsubscribed or suppressed.unsubscribed then 'unsubscribed'
            when contact.__bounced or suppressed.bounced then 'bounced'
            {% if exit_sql %}
            when coalesce(({{ exit_sql }}), false) then 'exit_condition'
            {% endif %}
            when exclusive_active.contact_id is not null then 'exclusive_with'
            {% if needs_email %}
            when contact.__email_key is null then 'no_email'
            {% endif %}
            {% if prevent_duplicate_emails %}
            when contact.__email_key in (
                select email from enrolled_before where email is not null
            ) then 'duplicate_email'
            {% endif %}
        end as reason,
    from candidates
    left join contact on contact.contact_id = candidates.contact_id
    left join accounts as account on account.account_id = contact.account_id
    left join enrolled_before on enrolled_before.contact_id = candidates.contact_id
    left join exclusive_active on exclusive_active.contact_id = candidates.contact_id
    left join suppressed_emails as suppressed on suppressed.email = contact.__email_key
    cross join occurrence
),

final as (
    select
        contact_id,
        manual,
        email,
        {% if prevent_duplicate_emails %}
        -- one contact per lower(email) among those entering: the smallest contact_id
        case
            when reason is null and email is not null and row_number() over (
                partition by email, reason is null order by contact_id
            ) > 1 then 'duplicate_email'
            else reason
        end as reason,
        {% else %}
        reason,
        {% endif %}
    from checked
)

select * from final
