-- Staged rows whose id is not stored yet. Activities are insert-only: a replay changes nothing.
-- Activities given an email instead of a contact_id are matched to a contact by lower(email)
-- (the smallest contact_id when several share it); unmatched ones keep contact_id NULL.
with

{% if match_emails %}
contact_emails as (
    select
        lower(email) as email_key,
        min(contact_id) as contact_id,
    from contacts
    where email is not null
    group by 1
),
{% endif %}

new_rows as (
    select
        {%- for c in columns %}
        {%- if match_emails and c == 'contact_id' %}
        coalesce(stg.contact_id, contact_emails.contact_id) as contact_id,
        {%- else %}
        stg.{{ c | ident }},
        {%- endif %}
        {%- endfor %}
    from ingest_stg as stg
    {%- if match_emails %}
    left join contact_emails
        on stg.contact_id is null and lower(stg.email) = contact_emails.email_key
    {%- endif %}
    where
        len(stg.__reasons) = 0
        and not exists (
            select 1 from {{ table | ident }} as target
            where target.{{ key | ident }} = stg.{{ key | ident }}
        )
)

insert into {{ table | ident }} (
    {%- for c in columns %}{{ c | ident }}{{ ", " if not loop.last }}{% endfor -%}
)
select * from new_rows
