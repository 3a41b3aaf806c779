-- Contacts/accounts: a staged row whose updated_at is newer than the stored one replaces the
-- columns the file carries. Older or equal rows change nothing, so a replay is a no-op.
update {{ table | ident }} as target
set
    {%- for c in set_columns %}
    {{ c | ident }} = stg.{{ c | ident }}{{ "," if not loop.last }}
    {%- endfor %}
from ingest_stg as stg
where
    len(stg.__reasons) = 0
    and stg.{{ key | ident }} = target.{{ key | ident }}
    and (
        stg.updated_at > target.updated_at
        or (target.updated_at is null and stg.updated_at is not null)
    )
