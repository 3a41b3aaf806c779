-- Entries (SPEC 6): every row of tick_entries (int_entries.sql) without a rejection reason
-- becomes an enrolment at the occurrence's instant: active, or `holdout` (SPEC 11) when its
-- bucket falls in the sequence's holdout (`holdouts`: sequence name -> buckets held out, the
-- sequences with a holdout; bucket < holdout_percent * 100). Batched (several sequences of
-- one instant in one tick_entries), each row carries its sequence and occurrence.
{% set batched = batched | default(false) %}
{% set holdouts = holdouts | default({}) %}
{% set sequence = 'sequence' if batched else '$sequence' %}
insert into enrollments (
    sequence, contact_id, enrollment_id, enrolled_on, enrolled_at, status, manual, email, bucket
)
select
    {{ sequence }}, contact_id, {{ sequence }} || ':' || contact_id,
    {{ 'occurrence_on' if batched else '$occurrence_on' }},
    {{ 'occurrence_at' if batched else '$occurrence_at' }},
    {% if holdouts %}
    case
        when bucket < case {{ sequence }}
            {% for name, buckets in holdouts | dictsort %}
            when {{ name | literal }} then {{ buckets | int }}
            {% endfor %}
            else 0
        end then 'holdout'
        else 'active'
    end,
    {% else %}
    'active',
    {% endif %}
    manual, email, bucket
from (
    select
        *,
        -- the bucket (issue 13): the first 32 bits of md5(sequence | contact) modulo 10000
        ('0x' || left(md5({{ sequence }} || '|' || contact_id), 8))::bigint % 10000 as bucket,
    from tick_entries
    where reason is null
)
