-- Sends and engagement per variant of an email step (issue 13 item 2): one row per
-- (sequence, step, variant), over all dates. The variant is the one the tick recorded
-- (actions.variant); the counts are step_metrics' (unique contacts of int_emails: sent,
-- human opens — a click counts as an open, a machine open does not —, clicks, replies).
-- _variant_arms (filled by pipelines/variant_metrics.py from the sequence files) lists every
-- variant in file order with its weight, so a variant nobody was sent yet has a row of zeros;
-- a variant no longer in the file keeps its row (position null). The comparisons with the
-- control are computed in Python (pipelines/stats.py) on these counts.

with

decided as (
    -- one enrolment per (sequence, contact), so one action per step
    select sequence, contact_id, step, max(variant) as variant,
    from actions
    where action = 'email' and variant is not null
    group by sequence, contact_id, step
),

emails as (
    select * from int_emails
),

counts as (
    select
        emails.sequence,
        emails.step,
        decided.variant,
        count(distinct emails.contact_id) as sent,
        count(distinct emails.contact_id) filter (where emails.opened) as opened,
        count(distinct emails.contact_id) filter (where emails.clicked) as clicked,
        count(distinct emails.contact_id) filter (where emails.replied) as replied,
    from emails
    inner join decided using (sequence, contact_id, step)
    group by emails.sequence, emails.step, decided.variant
),

arms as (
    select sequence, step, variant, position, weight, from _variant_arms
    union all
    select sequence, step, variant, null, null, from counts
    anti join _variant_arms as listed
        on listed.sequence = counts.sequence
       and listed.step = counts.step
       and listed.variant = counts.variant
),

final as (
    select
        arms.sequence,
        arms.step,
        arms.variant,
        arms.position,
        arms.weight,
        coalesce(counts.sent, 0) as sent,
        coalesce(counts.opened, 0) as opened,
        coalesce(counts.clicked, 0) as clicked,
        coalesce(counts.replied, 0) as replied,
    from arms
    left join counts using (sequence, step, variant)
)

select * from final
order by sequence, step, position nulls last, variant
