-- DuckDB's CSV rejects of one scan, one row per rejected record (a broken quote can report
-- two errors for the same record). `line` counts records, header = 1.
with

errors as (
    select
        line::bigint as line,  -- UBIGINT in DuckDB: unioned with BIGINT lines it becomes HUGEINT
        error_type::varchar as error_type,
        csv_line,
    from ingest_rejects
),

final as (
    select
        line,
        case
            when bool_or(error_type = 'UNQUOTED VALUE') then 'unterminated quote'
            when bool_or(error_type in ('TOO MANY COLUMNS', 'MISSING COLUMNS'))
                then 'wrong column count'
            when bool_or(error_type = 'INVALID ENCODING') then 'invalid encoding'
            else 'unreadable CSV row: ' || lower(min(error_type))
        end as reason,
        rtrim(ltrim(min(csv_line), chr(13) || chr(10)), chr(13) || chr(10)) as raw,
    from errors
    group by line
)

select * from final
