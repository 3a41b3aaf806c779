-- Why one contact did or did not enter sequence S at one past occurrence (`sequencer why`):
-- the entry rules of tick/int_entries.sql after the audience, in the same order, re-evaluated
-- now over the recorded history. The contact is why_contact (its current row with its derived
-- properties and `sequences` as of the instant: pipelines/tick/properties.py); enrolments are
-- read as of the instant from their timestamps (another sequence at the same instant counts
-- as processed before S when its name sorts first, as in the tick).

with

occurrence as (
    select
        $occurrence_at::timestamp as occurrence_at,
        $occurrence_on::date as occurrence_on,
),

contact as (
    select
        *,
        lower(nullif(trim(email), '')) as __email_key,
    from why_contact
),

-- the contact and every contact that exists at t with the same lower(email)
same_address as (
    select others.contact_id, others.unsubscribed
    from contacts as others
    inner join contact
        on others.contact_id = contact.contact_id
        or lower(nullif(trim(others.email), '')) = contact.__email_key
    where others.created_at is null
       or others.created_at <= $occurrence_at
),

opt_outs as (
    select
        coalesce(bool_or(type in ('unsubscribed', 'email_complained')), false) as unsubscribed,
        coalesce(bool_or(type = 'email_bounced'), false) as bounced,
    from activities
    where occurred_at <= $occurrence_at
      and type in ('unsubscribed', 'email_complained', 'email_bounced')
      and contact_id in (select contact_id from same_address)
),

flagged as (
    select coalesce(bool_or(unsubscribed), false) as unsubscribed
    from same_address
),

active_elsewhere as (
    select list(sequence order by sequence) as sequences
    from enrollments
    where contact_id = $contact_id
      and list_contains($exclusive_with::varchar[], sequence)
      and (enrolled_at < $occurrence_at or (enrolled_at = $occurrence_at and sequence < $sequence))
      and not coalesce(
          exited_at < $occurrence_at or (exited_at = $occurrence_at and sequence < $sequence),
          false
      )
),

same_email_enrolled as (
    select list(enrollments.contact_id order by enrollments.contact_id) as contact_ids
    from enrollments
    inner join contact on enrollments.email = contact.__email_key
    where enrollments.sequence = $sequence
      and enrollments.contact_id <> $contact_id
      and enrollments.enrolled_at <= $occurrence_at
),

final as (
    select
        case
            when flagged.unsubscribed or opt_outs.unsubscribed then 'unsubscribed'
            when opt_outs.bounced then 'bounced'
            {% if exit_sql %}
            when coalesce(({{ exit_sql }}), false) then 'exit_condition'
            {% endif %}
            when len(active_elsewhere.sequences) > 0 then 'exclusive_with'
            {% if needs_email %}
            when contact.__email_key is null then 'no_email'
            {% endif %}
            {% if prevent_duplicate_emails %}
            when len(same_email_enrolled.contact_ids) > 0 then 'duplicate_email'
            {% endif %}
        end as reason,
        active_elsewhere.sequences as exclusive_active,
        same_email_enrolled.contact_ids as same_email_enrolled,
    from contact
    left join accounts as account on account.account_id = contact.account_id
    cross join occurrence
    cross join opt_outs
    cross join flagged
    cross join active_elsewhere
    cross join same_email_enrolled
)

select * from final
