-- The type of each new custom column: the first of BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP
-- that every non-empty value casts to, else VARCHAR (also when the column is empty).
{% import 'ingest/_macros.sql' as m %}
select
    {%- for c in columns %}
    {%- set v = 'nullif(trim(' ~ (c.source) ~ '), \'\')' %}
    case
        when count({{ v }}) = 0 then 'VARCHAR'
        {%- for t in ['BIGINT', 'DOUBLE', 'BOOLEAN', 'DATE', 'TIMESTAMP'] %}
        when count({{ v }}) = count({{ m.cast_custom(v, t) }}) then '{{ t }}'
        {%- endfor %}
        else 'VARCHAR'
    end as {{ c.name | ident }},
    {%- endfor %}
from ingest_raw
