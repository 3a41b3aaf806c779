-- With --tag, every row of the import carries the tag, also rows whose data did not change
-- (an older or equal updated_at): only import_name is stamped on those. Parameter: $tag.
update {{ table | ident }} as target
set import_name = $tag
from ingest_stg as stg
where
    len(stg.__reasons) = 0
    and stg.{{ key | ident }} = target.{{ key | ident }}
    and target.import_name is distinct from $tag
