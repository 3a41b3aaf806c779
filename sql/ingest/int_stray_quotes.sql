-- Good CSV rows whose raw text breaks the CSV grammar although DuckDB accepted them: a quote
-- inside an unquoted value (`O"Brien`) is read as a literal. Only rows with a quote in some
-- value are looked at. Parameter: $csv_re (one well-formed CSV record).
with

suspects as (
    select
        line_map.__rec,
        line_map.__line,
        line_map.nl,
    from ingest_line_map as line_map
    inner join ingest_raw as raw on raw.rowid + 1 = line_map.__rec
    where {{ quote_expr }}
),

suspect_lines as (
    select
        __rec,
        unnest(generate_series(__line, __line + nl)) as line,
    from suspects
),

texts as (
    select
        suspect_lines.__rec,
        string_agg(lines.text, chr(10) order by suspect_lines.line) as text,
    from suspect_lines
    inner join ingest_file_lines as lines on lines.line = suspect_lines.line
    group by suspect_lines.__rec
),

final as (
    select __rec from texts where not regexp_full_match(coalesce(text, ''), $csv_re)
)

select * from final
