-- The audience members among the run's STATIC contacts (tick_contacts_static: no activity in
-- the run's window, so their row is the same at every instant of the run), for every
-- sequence whose audience reads neither `occurrence` (now(), current_date) nor `sequences`:
-- one statement per run instead of a scan of every contact per occurrence. Only contacts
-- never enrolled in the sequence at the start of the run are kept (enrolments only grow);
-- each occurrence still applies created_at <= t and the never-enrolled rule at t, and adds
-- the window's contacts evaluated at t (int_entries.sql). Same predicates as int_entries.sql.

with

members as (
    {% for s in sequences %}
    {% if s.record == 'account' %}
    select {{ s.name | literal }} as sequence, contact.contact_id, contact.created_at
    from tick_contacts_static as contact
    semi join (
        select account.account_id
        from accounts as account
        where {{ s.audience_sql }}
    ) as matched_accounts on matched_accounts.account_id = contact.account_id
    {% else %}
    select {{ s.name | literal }} as sequence, contact.contact_id, contact.created_at
    from tick_contacts_static as contact
    left join accounts as account on account.account_id = contact.account_id
    where {{ s.audience_sql }}
    {% endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select members.*
    from members
    anti join enrollments
        on enrollments.sequence = members.sequence
       and enrollments.contact_id = members.contact_id
)

select * from final
