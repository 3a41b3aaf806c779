{#- Shared expressions for the ingest models. Structure only: values are bound parameters. -#}

{#- trim(expr), computed only when it may change the value: the first character is ' ' or
    non-ASCII, the last is ' ', or some character is non-ASCII (trim also removes Unicode
    spaces such as U+00A0; strlen counts bytes, length characters). trim builds a new string
    for every value: on a clean 1e7-row file it cost more than all the checks. The first
    guard (ord of the first and of the last character) cost as much as trim itself: `right`
    counts characters; this one is 0.53 s vs 1.39 s (trim: 1.23 s) for 3 columns of 8e6
    values. Equal to trim(expr) for every value (tests/ingest/test_quality_sample.py checks
    every BMP character at either end). Not for custom columns: a 2,000-column file's typing
    model grew too big to plan in time (151 s). -#}
{% macro trimmed(expr) -%}
case when ord({{ expr }}) = 32 or ord({{ expr }}) > 127 or ends_with({{ expr }}, ' ')
    or strlen({{ expr }}) <> length({{ expr }}) then trim({{ expr }}) else {{ expr }} end
{%- endmacro %}

{#- An ISO-8601 text as naive UTC: no offset means UTC, an offset is converted. The session
    time zone is UTC (pipelines.db.connect), so `timestamptz` reads an offset-less value as UTC. -#}
{% macro utc_ts(expr) -%}
timezone('UTC', try_cast({{ expr }} as timestamptz))
{%- endmacro %}

{#- A text value cast to the fixed type of a custom column; NULL when it does not cast. Only an
    integer literal is a BIGINT: try_cast('96572.85' as bigint) would round it. -#}
{% macro cast_custom(expr, type) -%}
{%- if type == 'TIMESTAMP' -%}{{ utc_ts(expr) }}
{%- elif type == 'BOOLEAN' -%}{{ boolean(expr) }}
{%- elif type == 'BIGINT' -%}
case when regexp_full_match(trim({{ expr }}), '[+-]?[0-9]+') then try_cast({{ expr }} as bigint) end
{%- else -%}try_cast({{ expr }} as {{ type }})
{%- endif -%}
{%- endmacro %}

{% macro boolean(expr) -%}
case
    when lower({{ expr }}) in ('true', 't', 'yes', 'y', '1') then true
    when lower({{ expr }}) in ('false', 'f', 'no', 'n', '0') then false
end
{%- endmacro %}

{#- Custom columns: the trimmed text, then its typed value and a reason when it does not cast. -#}
{% macro custom_raw(custom) -%}
{%- for c in custom %}
        nullif(trim({{ c.source }}), '') as {{ ('__raw_' ~ c.name) | ident }},
{%- endfor %}
{%- endmacro %}

{% macro custom_typed(custom) -%}
{%- for c in custom %}
        {{ cast_custom(('__raw_' ~ c.name) | ident, c.type) }} as {{ c.name | ident }},
{%- endfor %}
{%- endmacro %}

{#- Adds (condition, reason) pairs for custom columns to ns.checks: a value that does not cast
    (the reason names the column, the type and the value). -#}
{% macro add_custom_checks(ns, custom) -%}
{%- for c in custom -%}
{%- set ns.checks = ns.checks + [(
    ('__raw_' ~ c.name) | ident ~ ' is not null and ' ~ c.name | ident ~ ' is null',
    ('bad value for column ' ~ c.name ~ ': expected ' ~ c.type ~ ", got '") | literal
        ~ ' || ' ~ ('__raw_' ~ c.name) | ident ~ " || ''''",
)] -%}
{%- endfor -%}
{%- endmacro %}

{#- The reasons a row cannot load, from (condition, reason literal) pairs. The list is only
    built for rows where some condition holds: most rows are clean. -#}
{% macro reasons(checks) -%}
case
    when not (
        {%- for cond, _ in checks %}
        ({{ cond }}){{ " or" if not loop.last }}
        {%- endfor %}
    ) then []::varchar[]
    else list_filter([
        {%- for cond, reason in checks %}
        case when {{ cond }} then {{ reason }} end,
        {%- endfor %}
    ], lambda r: r is not null)
end
{%- endmacro %}
