-- Typed, checked contacts of one file: one row per record of `ingest_raw`, with the reasons
-- it cannot load (an empty list loads), and whether a CSV value of it holds a quote
-- (`__quoted`: then its lines are checked against the CSV grammar, pipelines/ingest/check.py).
-- Parameters: $email_re, $tag (NULL without --tag).
{% import 'ingest/_macros.sql' as m %}
with

source as (
    select
        rowid + 1 as __rec,
        nullif({{ m.trimmed(src.contact_id) }}, '') as contact_id,
        nullif({{ m.trimmed(src.email) }}, '') as email,
        nullif({{ src.first_name }}, '') as first_name,
        nullif({{ src.last_name }}, '') as last_name,
        nullif({{ m.trimmed(src.account_id) }}, '') as account_id,
        nullif({{ m.trimmed(src.owner_id) }}, '') as owner_id,
        nullif({{ m.trimmed(src.timezone) }}, '') as timezone,
        nullif({{ m.trimmed(src.unsubscribed) }}, '') as unsubscribed_raw,
        nullif({{ m.trimmed(src.created_at) }}, '') as created_at_raw,
        nullif({{ m.trimmed(src.updated_at) }}, '') as updated_at_raw,
        coalesce($tag, nullif({{ src.import_name }}, '')) as import_name,
        {{ quote_expr }} as __quoted,
        {{- m.custom_raw(custom) }}
    from ingest_raw as raw
),

typed as (
    select
        source.*,
        {{ m.boolean('unsubscribed_raw') }} as unsubscribed,
        {{ m.utc_ts('created_at_raw') }} as created_at,
        {{ m.utc_ts('updated_at_raw') }} as updated_at,
        source.timezone in (select name from ingest_timezones) as timezone_known,
        {{- m.custom_typed(custom) }}
    from source
),

{%- set ns = namespace(checks=[
    ("contact_id is null", "'missing id: contact_id'"),
    ("email is not null and (not regexp_full_match(email, $email_re)"
        ~ " or length(email) > 254 or strpos(email, '@') > 65)", "'bad email'"),
    ("timezone is not null and not timezone_known", "'unknown timezone'"),
    ("unsubscribed_raw is not null and unsubscribed is null", "'bad boolean: unsubscribed'"),
    ("created_at_raw is not null and created_at is null",
        "'unparseable timestamp: created_at'"),
    ("updated_at_raw is not null and updated_at is null",
        "'unparseable timestamp: updated_at'"),
]) %}
{{- m.add_custom_checks(ns, custom) }}
checked as (
    select
        *,
        {{ m.reasons(ns.checks) | indent(8) }} as __reasons,
    from typed
),

final as (
    select
        __rec,
        contact_id,
        email,
        first_name,
        last_name,
        account_id,
        owner_id,
        timezone,
        unsubscribed,
        created_at,
        updated_at,
        import_name,
        {%- for c in custom %}
        {{ c.name | ident }},
        {%- endfor %}
        __quoted,
        __reasons,
    from checked
)

select * from final
