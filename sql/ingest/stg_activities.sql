-- Typed, checked activities of one file: one row per record of `ingest_raw`, with the reasons
-- it cannot load (an empty list loads), and whether a CSV value of it holds a quote
-- (`__quoted`: then its lines are checked against the CSV grammar, pipelines/ingest/check.py).
-- JSONL records arrive as one text per line (`__text`).
-- Parameters: $email_re, $types (the built-in activity types).
{% import 'ingest/_macros.sql' as m %}
with

{% if jsonl %}
lines as (
    select
        rowid + 1 as __rec,
        __text,
        case when json_valid(__text) then __text::json end as j,
    from ingest_raw
),

parsed as (
    -- one parse for every member (a value of another JSON type comes as its text)
    select
        __rec,
        __text,
        j is null or json_type(j) <> 'OBJECT' as invalid_json,
        json_transform(j, '{
            "activity_id": "VARCHAR", "contact_id": "VARCHAR", "email": "VARCHAR",
            "type": "VARCHAR", "occurred_at": "VARCHAR", "sequence": "VARCHAR",
            "step": "VARCHAR", "message_id": "VARCHAR", "detail": "VARCHAR"
        }') as r,
    from lines
),

source as (
    select
        __rec,
        invalid_json,
        nullif({{ m.trimmed('r.activity_id') }}, '') as activity_id,
        nullif({{ m.trimmed('r.contact_id') }}, '') as contact_id,
        nullif({{ m.trimmed('r.email') }}, '') as email,
        nullif({{ m.trimmed('r.type') }}, '') as type,
        nullif({{ m.trimmed('r.occurred_at') }}, '') as occurred_at_raw,
        nullif(r.sequence, '') as sequence,
        nullif(r.step, '') as step,
        nullif({{ m.trimmed('r.message_id') }}, '') as message_id,
        nullif(r.detail, '') as detail,
        false as __quoted,
    from parsed
    where __text is not null
),
{% else %}
source as (
    select
        rowid + 1 as __rec,
        false as invalid_json,
        nullif({{ m.trimmed(src.activity_id) }}, '') as activity_id,
        nullif({{ m.trimmed(src.contact_id) }}, '') as contact_id,
        nullif({{ m.trimmed(src.email) }}, '') as email,
        nullif({{ m.trimmed(src.type) }}, '') as type,
        nullif({{ m.trimmed(src.occurred_at) }}, '') as occurred_at_raw,
        nullif({{ src.sequence }}, '') as sequence,
        nullif({{ src.step }}, '') as step,
        nullif({{ m.trimmed(src.message_id) }}, '') as message_id,
        nullif({{ src.detail }}, '') as detail,
        {{ quote_expr }} as __quoted,
    from ingest_raw as raw
),
{% endif %}

typed as (
    select
        *,
        timezone('UTC', try_cast(occurred_at_raw as timestamptz)) as occurred_at,
    from source
),

{%- set checks = [
    ("activity_id is null", "'missing id: activity_id'"),
    ("contact_id is null and email is null", "'no contact_id or email'"),
    ("email is not null and (not regexp_full_match(email, $email_re)"
        ~ " or length(email) > 254 or strpos(email, '@') > 65)", "'bad email'"),
    ("type is null or not (list_contains($types, type)"
        ~ " or regexp_full_match(type, 'sales_activity:\\S.*'))", "'unknown activity type'"),
    ("occurred_at_raw is null", "'missing timestamp: occurred_at'"),
    ("occurred_at_raw is not null and occurred_at is null",
        "'unparseable timestamp: occurred_at'"),
] %}
checked as (
    select
        *,
        case
            when invalid_json then ['invalid JSON']
            else {{ m.reasons(checks) | indent(12) }}
        end as __reasons,
    from typed
),

final as (
    select
        __rec,
        activity_id,
        contact_id,
        email,
        type,
        occurred_at,
        sequence,
        step,
        message_id,
        detail,
        __quoted,
        __reasons,
    from checked
)

select * from final
