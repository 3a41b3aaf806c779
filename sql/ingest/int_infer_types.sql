-- Per custom column of the file (new ones and stored BIGINT ones): how many non-empty values
-- it has and how many cast to each type. One statement over the file in long form (unpivot),
-- so its cost grows with the file's size, not with the square of its column count.
-- A value is an integer only when it is an integer literal (try_cast to BIGINT would round
-- '96572.85'). The choice of type from these counts is made in pipelines/ingest/check.py.
-- {{ numeric_only }}: only the BIGINT and DOUBLE counts (a first, cheaper pass: the date and
-- timestamp casts of a numeric column cost most of the scan; see check.custom_columns).
{% import 'ingest/_macros.sql' as m %}
with

wide as (
    select
        {%- for c in columns %}
        {{ c.source }} as {{ c.name | ident }},
        {%- endfor %}
    from ingest_raw
),

long as (
    unpivot wide on columns(*) into name column_name value raw_value
),

values_ as (
    select
        column_name,
        nullif({{ m.trimmed('raw_value') }}, '') as v,
    from long
),

final as (
    select
        column_name,
        count(v) as n,
        {%- for t in (['BIGINT', 'DOUBLE'] if numeric_only else
                      ['BIGINT', 'DOUBLE', 'BOOLEAN', 'DATE', 'TIMESTAMP']) %}
        count({{ m.cast_custom('v', t) }}) as {{ t | lower }}_ok,
        min(v) filter (where {{ m.cast_custom('v', t) }} is null) as {{ t | lower }}_bad,
        {%- endfor %}
    from values_
    where v is not null
    group by column_name
)

select * from final
