-- Every record of the file that does not load, with its line and raw text.
-- Parameters: $file, $entity.
with

bad_rows as (
    select
        {{ line_expr }} as line,
        array_to_string(stg.__reasons, '; ') as reason,
        {{ raw_expr }} as raw,
    from ingest_stg as stg
    inner join ingest_raw as raw on raw.rowid + 1 = stg.__rec
    {%- if csv %}
    left join ingest_line_map as line_map on line_map.__rec = stg.__rec
    {%- endif %}
    where len(stg.__reasons) > 0
),

{% if csv %}
rejected as (
    select
        line_map.__line as line,
        rejects.reason,
        rejects.raw,
    from ingest_reject_rows as rejects
    left join ingest_line_map as line_map on line_map.reject_line = rejects.line
),
{% endif %}

final as (
    select $file as file, line, $entity as entity, reason, raw from bad_rows
    {%- if csv %}
    union all
    select $file, line, $entity, reason, raw from rejected
    {%- endif %}
)

insert into quarantine (file, line, entity, reason, raw)
select * from final
order by line
