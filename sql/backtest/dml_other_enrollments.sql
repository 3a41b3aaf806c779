-- The other sequences' enrolments as they stood when the occurrence of $sequence at
-- $occurrence_at ran (SPEC 6: in an instant the sequences run in name order, so an earlier
-- name's entries and exits of the same instant are already done): entered by then; exited
-- only if the exit was by then, else active. Only for a sequence that reads them
-- (`exclusive_with`, `contact.sequences`).

delete from enrollments
where sequence <> $sequence;

insert into enrollments by name
with

recorded as (
    select
        *,
        exited_at is not null
            and (exited_at < $occurrence_at
                 or (exited_at = $occurrence_at and sequence < $sequence)) as exited_by_then,
    from backtest_other_enrollments
    where enrolled_at < $occurrence_at
       or (enrolled_at = $occurrence_at and sequence < $sequence)
),

final as (
    select
        * exclude (status, exit_reason, exited_on, exited_at, exited_by_then),
        case
            when exited_by_then then status
            when status = 'exited' then 'active'
            else status
        end as status,
        case when exited_by_then then exit_reason end as exit_reason,
        case when exited_by_then then exited_on end as exited_on,
        case when exited_by_then then exited_at end as exited_at,
    from recorded
)

select * from final;
