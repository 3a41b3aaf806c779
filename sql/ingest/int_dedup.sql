-- Records of one file that repeat an id: contacts/accounts keep the newest updated_at (ties:
-- the first occurrence), activities the first occurrence. Returns the __rec of the others.
with

repeated as (
    select {{ key | ident }}
    from ingest_stg
    where len(__reasons) = 0
    group by all
    having count(*) > 1
),

ranked as (
    select
        stg.__rec,
        row_number() over (
            partition by stg.{{ key | ident }}
            order by {% if has_updated_at %}stg.updated_at desc nulls last, {% endif %}stg.__rec
        ) as position,
    from ingest_stg as stg
    inner join repeated using ({{ key | ident }})
    where len(stg.__reasons) = 0
),

final as (
    select __rec from ranked where position > 1
)

select * from final
