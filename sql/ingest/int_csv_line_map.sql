-- Physical line of every record of a CSV file (header = line 1), from the staged good rows (in
-- file order: rowid) and DuckDB's rejects (which number records, not physical lines). A record
-- spans 1 + (newlines inside its quoted values) lines.
-- When no record spans several lines ({{ single_line }}), the lines come straight from the
-- file's own lines (ingest_file_lines): the k-th good record is the k-th non-blank data line
-- that DuckDB did not reject (its reject lines are physical), so blank lines count right.
-- Otherwise records are counted, and a blank line between records shifts the lines of the
-- good rows after it by one until the next reject (documented limitation).
with

{% if single_line %}
data_lines as (
    select
        line,
        row_number() over (order by line) as k,
    from ingest_file_lines
    where line > 1
      and nullif(rtrim(text, chr(13)), '') is not null
      and line not in (select line from ingest_reject_rows)
),

final as (
    select
        raw.rowid + 1 as __rec,
        null::bigint as reject_line,
        data_lines.line as __line,
        0::bigint as nl,
    from ingest_raw as raw
    inner join data_lines on data_lines.k = raw.rowid + 1
    union all
    select null, line, line, 0 from ingest_reject_rows
)
{% else %}

rejects as (
    select
        line - 1 as record,
        len(raw) - len(replace(raw, chr(10), '')) as nl,
    from ingest_reject_rows
),

numbered_rejects as (
    select
        record,
        record - row_number() over (order by record) as goods_before,
        row_number() over (order by record) as rejects_so_far,
    from rejects
),

-- Consecutive rejects share goods_before: keep the last, so the count includes them all.
reject_steps as (
    select
        goods_before,
        max(rejects_so_far) as rejects_so_far,
    from numbered_rejects
    group by goods_before
),

goods as (
    select
        raw.rowid + 1 as __rec,
        {{ nl_expr }} as nl,
    from ingest_raw as raw
),

goods_placed as (
    select
        goods.__rec,
        goods.__rec + coalesce(reject_steps.rejects_so_far, 0) as record,
        goods.nl,
    from goods
    asof left join reject_steps on goods.__rec > reject_steps.goods_before
),

records as (
    select __rec, null::bigint as reject_record, record, nl from goods_placed
    union all
    select null, record, record, nl from rejects
),

final as (
    select
        __rec,
        reject_record + 1 as reject_line,
        (record + 1 + coalesce(
            sum(nl) over (order by record rows between unbounded preceding and 1 preceding), 0
        ))::bigint as __line,
        nl::bigint as nl,
    from records
)
{% endif %}

select * from final
