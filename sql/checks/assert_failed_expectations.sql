-- Asset check: Great Expectations results that failed in the latest batch of each imported
-- file of one entity. Parameter: $entity. Zero rows = pass.

with

latest_batches as (
    select *
    from validation_results
    where entity = $entity
    qualify validated_at = max(validated_at) over (partition by file)
),

final as (
    select file, expectation, element_count, unexpected_count, validated_at,
    from latest_batches
    where not success
)

select * from final
order by file, expectation
