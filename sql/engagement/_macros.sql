{#- Shared expressions of the engagement models: the ESP event models
    (sql/engagement/stg_esp_<provider>.sql) and the matching of the doors to our sends. -#}

{#- Our email sends, the one definition the doors match against: `email_sent` activities
    (source 0) and sent `email` actions (source 1) with a Message-ID; `email` is the
    activity's (null for actions), `sent_at` the send's time. -#}
{% macro our_sends() -%}
select
    message_id, contact_id, email, sequence, step, occurred_at as sent_at, 0 as source,
from activities
where type = 'email_sent' and message_id is not null
union all
select
    message_id, contact_id, null as email, sequence, step,
    coalesce(finished_at, claimed_at, occurrence_at) as sent_at, 1 as source,
from actions
where action = 'email' and status = 'sent' and message_id is not null
{%- endmacro %}

{#- An epoch (seconds, maybe fractional) as ISO-8601 UTC text; a value that is not a number is
    kept as it is, so the checks report it as an unparseable timestamp. -#}
{% macro epoch_iso(expr) -%}
coalesce(
    strftime(
        timezone('UTC', to_timestamp(try_cast({{ expr }} as double))), '%Y-%m-%dT%H:%M:%S.%fZ'
    ),
    {{ expr }}
)
{%- endmacro %}

{#- The record's detail: a JSON object without its null members (merge-patch drops them). -#}
{% macro detail(members) -%}
json_merge_patch('{}', to_json({{ '{' }}{{ members }}{{ '}' }}))
{%- endmacro %}

{#- A fallback event id when the provider gave none: the hash of the minified record. -#}
{% macro record_hash(j) -%}
'h' || md5(json({{ j }})::varchar)
{%- endmacro %}
