{#- Shared expressions of the ESP event models (sql/engagement/stg_esp_<provider>.sql). -#}

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
