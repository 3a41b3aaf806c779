-- Asset check: tracking-server events (activity ids `srv:…`) stored more than once, or a spool
-- file whose loaded offset lies beyond its content. Zero rows = pass.
-- Parameters: $sizes (spool file -> its size in bytes, as the asset saw it).

with

repeated as (
    select activity_id as what, count(*) as n, 'event stored more than once' as problem,
    from activities
    where starts_with(activity_id, 'srv:')
    group by activity_id
    having count(*) > 1
),

beyond as (
    select file as what, loaded_bytes as n, 'loaded past the end of the file' as problem,
    from event_spool
    where loaded_bytes > coalesce(map_extract($sizes, file)[1], 0)
),

final as (
    select * from repeated
    union all
    select * from beyond
)

select * from final
order by problem, what
