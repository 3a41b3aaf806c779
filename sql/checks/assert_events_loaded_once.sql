-- Asset check: tracking-server events (activity ids `srv:…`) stored more than once, or a spool
-- file whose loaded offset lies beyond its content. Zero rows = pass.
-- Parameters: $files, $sizes (each spool file and its size in bytes, as the check saw it).

with

repeated as (
    select activity_id as what, count(*) as n, 'event stored more than once' as problem,
    from activities
    where starts_with(activity_id, 'srv:')
    group by activity_id
    having count(*) > 1
),

sizes as (
    select unnest($files::varchar[]) as file, unnest($sizes::bigint[]) as size,
),

beyond as (
    select event_spool.file as what, loaded_bytes as n,
        'loaded past the end of the file' as problem,
    from event_spool
    left join sizes on sizes.file = event_spool.file
    where loaded_bytes > coalesce(sizes.size, 0)
),

final as (
    select * from repeated
    union all
    select * from beyond
)

select * from final
order by problem, what
