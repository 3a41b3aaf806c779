-- The `contact` relation analyst SQL reads at one occurrence: the contacts created at or
-- before occurrence_at (SPEC 6), from instant_contacts, plus
-- `sequences`, the sequences each contact is active in right now (after every occurrence
-- already processed, including earlier sequences at the same instant). Joined only when a
-- condition reads it ({{ with_sequences }}); included by the other models. With
-- `activity_features` (the activity functions the including phase's conditions call), the
-- contacts carry their generated columns at the occurrence (int_contact_activity.sql).

{% set features = activity_features | default([]) %}

with

{% if features %}
contacts_with_activity as (
    {% with relation = 'instant_contacts' %}
    {% include 'tick/int_contact_activity.sql' %}
    {% endwith %}
),
{% endif %}

{% if with_sequences %}
active_sequences as (
    select
        contact_id,
        list(sequence order by sequence) as sequences,
    from enrollments
    where status = 'active'
    group by contact_id
),
{% endif %}

final as (
    select
        instant_contacts.*,
        {% if with_sequences %}
        coalesce(active_sequences.sequences, []::varchar[]) as sequences,
        {% endif %}
    from {{ 'contacts_with_activity' if features else 'instant_contacts' }} as instant_contacts
    {% if with_sequences %}
    left join active_sequences using (contact_id)
    {% endif %}
    where instant_contacts.created_at is null
       or instant_contacts.created_at <= $occurrence_at
)

select * from final
